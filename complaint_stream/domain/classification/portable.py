"""A trained n-gram model in a portable form: numpy arrays in one ``.npz`` file.

Training uses scikit-learn (:mod:`.model`); prediction needs only numpy and
gives the same probabilities as the scikit-learn pipeline it was exported
from. The file holds no pickled objects (``allow_pickle=False``), so it loads
on any numpy/scikit-learn version and is safe to ship with the package.
It also records fingerprints of its training texts, so evaluation can refuse
to score a model on the data it learned from.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections import Counter
from operator import add
from typing import Iterable, Sequence

import numpy as np

from .text import normalise

FORMAT = "complaint-classifier-linear/1"
_WHITE_SPACES = re.compile(r"\s\s+")


def text_fingerprint(text: str) -> str:
    """Identifies a training text regardless of spacing (16 hex chars)."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()[:16]


class PortableModelError(ValueError):
    """The file is not a portable model of this format."""


class LinearTextModel:
    """TF-IDF over character n-grams inside word boundaries + multinomial logistic regression."""

    def __init__(self, vocabulary: Sequence[str], idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 classes: Sequence[str], ngram_range: tuple[int, int], sublinear_tf: bool,
                 fingerprints: Iterable[str] = ()):
        self.vocabulary = {term: i for i, term in enumerate(vocabulary)}
        self.idf = np.asarray(idf, dtype=np.float64)
        self.coef = np.asarray(coef, dtype=np.float64)  # (n_features, n_classes)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.classes = tuple(classes)
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
        self.sublinear_tf = bool(sublinear_tf)
        self.fingerprints = frozenset(fingerprints)

    # -- features ------------------------------------------------------------------
    def _ngrams(self, text: str) -> list[str]:
        """scikit-learn's ``char_wb`` analyser, with the same pre-processing.

        The same n-grams in the same order as scikit-learn's loop (each word
        padded with spaces, n from low to high, a word shorter than n counted
        once as a whole, which ends its loop), but each run of n-grams is cut
        by C-level ``map`` calls instead of one slice per interpreter step.
        """
        doc = _WHITE_SPACES.sub(" ", normalise(text))
        lo, hi = self.ngram_range
        out: list[str] = []
        for w in doc.split():
            w = f" {w} "
            w_len = len(w)
            grams: Iterable[str] = w  # the 1-grams
            for n in range(1, hi + 1):
                if n > 1:
                    # n-grams are the (n-1)-grams each extended by the next character
                    grams = list(map(add, grams, w[n - 1:]))
                if n < lo:
                    continue
                if w_len <= n:
                    out.append(w)
                    break
                out += grams
        return out

    def _vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        # n-gram index -> count, in order of first occurrence (the order fixes
        # the summation order below, hence the exact floats); counted in C.
        counts = Counter(map(self.vocabulary.get, self._ngrams(text)))
        counts.pop(None, None)  # n-grams outside the vocabulary
        if not counts:
            return np.empty(0, dtype=np.int64), np.empty(0)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if self.sublinear_tf:
            tf = np.log(tf) + 1.0
        values = tf * self.idf[idx]
        norm = math.sqrt(float(values @ values))
        return idx, (values / norm if norm else values)

    # -- prediction ----------------------------------------------------------------
    def predict_proba(self, text: str) -> dict[str, float]:
        idx, values = self._vector(text)
        logits = self.intercept + (values @ self.coef[idx] if idx.size else 0.0)
        logits = logits - logits.max()
        p = np.exp(logits)
        p /= p.sum()
        return dict(zip(self.classes, p.tolist()))

    def predict_proba_many(self, texts: Iterable[str]) -> list[dict[str, float]]:
        return [self.predict_proba(t) for t in texts]

    def trained_on(self, text: str) -> bool:
        return text_fingerprint(text) in self.fingerprints

    # -- files -----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        vocab = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        with open(path, "wb") as fh:
            np.savez_compressed(
                fh,
                format=np.array(FORMAT),
                vocabulary=np.array(vocab, dtype=np.str_),
                idf=self.idf,
                coef=self.coef.astype(np.float32),
                intercept=self.intercept,
                classes=np.array(self.classes, dtype=np.str_),
                ngram_range=np.array(self.ngram_range, dtype=np.int64),
                sublinear_tf=np.array(self.sublinear_tf),
                fingerprints=np.array(sorted(self.fingerprints), dtype=np.str_),
            )

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LinearTextModel":
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["format"]) != FORMAT:
                    raise PortableModelError(f"{os.fspath(path)}: format {data['format']}, expected {FORMAT}")
                return cls(data["vocabulary"].tolist(), data["idf"], data["coef"].astype(np.float64),
                           data["intercept"], data["classes"].tolist(), tuple(data["ngram_range"].tolist()),
                           bool(data["sublinear_tf"]), data["fingerprints"].tolist())
        except (OSError, KeyError, ValueError) as exc:
            if isinstance(exc, PortableModelError):
                raise
            raise PortableModelError(f"{os.fspath(path)} is not a portable classifier model: {exc}") from exc

    @classmethod
    def from_pipeline(cls, pipeline, fingerprints: Iterable[str] = ()) -> "LinearTextModel":
        """Export a fitted ``TfidfVectorizer`` + ``LogisticRegression`` pipeline."""
        vectorizer, classifier = pipeline[0], pipeline[-1]
        if vectorizer.analyzer != "char_wb" or vectorizer.norm != "l2" or not vectorizer.use_idf:
            raise PortableModelError("only char_wb, l2-normalised TF-IDF features can be exported")
        vocab = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
        coef = classifier.coef_
        intercept = classifier.intercept_
        if coef.shape[0] == 1:  # binary: scikit-learn keeps one row; make it a two-class softmax
            coef = np.vstack([-coef, coef]) / 2
            intercept = np.array([-intercept[0], intercept[0]]) / 2
        return cls(vocab, vectorizer.idf_, coef.T.copy(), intercept, [str(c) for c in classifier.classes_],
                   vectorizer.ngram_range, vectorizer.sublinear_tf, fingerprints)


def train_portable(rows: Iterable[dict]) -> LinearTextModel:
    """Fit the n-gram model on rows with ``text`` and ``category`` (scikit-learn) and export it."""
    from .model import train_model

    rows = list(rows)
    fitted = train_model(rows)
    return LinearTextModel.from_pipeline(fitted._pipeline, (text_fingerprint(r["text"]) for r in rows))
