"""A trained n-gram model in a portable form: numpy arrays in one ``.npz`` file.

Training uses scikit-learn (:mod:`.model`); prediction needs only numpy and
gives the same probabilities as the scikit-learn pipeline it was exported
from. The file holds no pickled objects (``allow_pickle=False``), so it loads
on any numpy/scikit-learn version and is safe to ship with the package.
It also records fingerprints of its training texts, so evaluation can refuse
to score a model on the data it learned from.

Prediction works on batches: the n-grams of all texts of a batch are found,
looked up and weighted by a fixed number of numpy operations, with no Python
work per n-gram (:class:`_NgramCodes`, :meth:`LinearTextModel.predict_proba_many`).
The straightforward per-text computation is kept as the reference
(:meth:`LinearTextModel._predict_proba_reference`); both give the same
probabilities up to rounding (the sums are taken in a different order).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import count
from operator import add
from typing import Any

import numpy as np
import numpy.typing as npt

from .text import normalise

FORMAT = "complaint-classifier-linear/1"


def text_fingerprint(text: str) -> str:
    """Identifies a training text regardless of spacing (16 hex chars)."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()[:16]


class PortableModelError(ValueError):
    """The file is not a portable model of this format."""


# Fibonacci hashing: multiply by 2**64 / golden ratio (mod 2**64) and keep the
# top bits; consecutive or patterned codes spread evenly over the table.
_FIBONACCI = np.uint64(0x9E3779B97F4A7C15)
_SPACE = ord(" ")


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Where each run of equal neighbours starts in ``values`` (not empty)."""
    starts = np.empty(values.size, dtype=bool)
    starts[0] = True
    np.not_equal(values[1:], values[:-1], out=starts[1:])
    return starts.nonzero()[0]


class _NgramCodes:
    """The ``char_wb`` n-grams of a batch of texts, found in the vocabulary with numpy.

    **Codes.**  Every character of the vocabulary gets a rank 1..A (its place
    in the sorted alphabet of the vocabulary), and an n-gram ``c1 .. cn`` the
    integer whose digits in base ``2**bits`` (``bits = A.bit_length()``) are
    the ranks of ``c1 .. cn``.  No rank is 0, so the code of an n-gram lies in
    ``[2**(bits*(n-1)), 2**(bits*n))``: different strings, of the same or of
    different lengths, get different codes, and the code fits in 64 bits for
    ``n <= 64 // bits`` (5 with 11 bits for the 1,116 characters of the
    packaged model).  Integers, unlike strings, can be computed for every
    window of the batch at once: the codes of the n-grams are those of the
    (n-1)-grams shifted by ``bits`` plus the rank of the next character.  A
    1-gram's code is its rank, looked up in a small table; the longer
    vocabulary entries go into an open-addressing hash table (two arrays),
    which answers all look-ups of a batch with a few gathers and compares
    (a binary search in the sorted codes, ``np.searchsorted``, measured
    several times slower).

    **Same n-grams as scikit-learn's ``char_wb``.**  The analyser splits the
    pre-processed text on whitespace, pads each word with one space on both
    sides and takes, for n from low to high, every window of n characters of
    the padded word; a padded word not longer than n is taken once as a
    whole, and then larger n are skipped for that word.  Here the padded
    words of all texts are laid end to end, each followed by a separator (a
    character outside the vocabulary's alphabet), and encoded as one array of
    code points.  The separator and every character outside the alphabet get
    rank 0, and a window containing a rank 0 is dropped: such a window
    either crosses a word boundary (so ``char_wb`` never produces it) or
    contains a character no vocabulary entry has (so the model ignores it).
    The remaining windows of n characters are exactly the in-vocabulary
    candidates among the n-grams of the padded words.  The whole-word rule
    needs no extra work for ``n >= low``: the window as long as the padded
    word *is* the padded word, and longer windows do not fit in it.  Only a
    padded word shorter than the lowest n (possible when ``low > 3``: a
    padded word has 3 characters or more) is an extra n-gram, added
    explicitly.  N-grams outside the vocabulary count for nothing in the
    TF-IDF vector, so dropping them early changes no feature.

    Windows are computed up to the length of the longest vocabulary entry (no
    longer n-gram can match).  :meth:`build` returns ``None`` when an entry
    is too long to be coded in 64 bits; the model then keeps to the
    per-text path.
    """

    __slots__ = (
        "_features",
        "_keys",
        "_mask",
        "_max_probe",
        "_ranks",
        "_shift",
        "_unigrams",
        "bits",
        "high",
        "low",
        "separator",
    )

    #: Hash table size: the power of two with at least this many slots per entry.
    SLOTS_PER_ENTRY = 4

    def __init__(self, vocabulary: Sequence[str], lengths: np.ndarray, alphabet: Sequence[str],
                 ngram_range: tuple[int, int]):
        """Use :meth:`build`, which checks that the vocabulary can be coded."""
        self.bits = max(len(alphabet).bit_length(), 1)
        self.low = ngram_range[0]
        self.high = min(ngram_range[1], int(lengths.max(initial=0)))
        in_alphabet = frozenset(alphabet)
        # The first character outside the alphabet: NUL, unless the vocabulary has it.
        self.separator = next(chr(cp) for cp in count() if chr(cp) not in in_alphabet)

        # code point -> rank; the last entry (beyond every character of the
        # alphabet) is 0 and stands for all larger code points.
        size = max(map(ord, alphabet), default=-1) + 2
        self._ranks = np.zeros(size, dtype=np.uint16 if len(alphabet) < 2 ** 16 else np.uint32)
        self._ranks[[ord(ch) for ch in alphabet]] = np.arange(1, len(alphabet) + 1)

        # The codes of all terms, a character position at a time.  A numpy
        # string array pads terms with code point 0; ``lengths`` tells the
        # padding from a real NUL.
        width = int(lengths.max(initial=1))
        chars = np.array(vocabulary, dtype=f"<U{width}").view(np.uint32).reshape(len(vocabulary), width)
        digits = self._ranks.take(np.minimum(chars, size - 1)).astype(np.uint64)
        codes = np.zeros(len(vocabulary), dtype=np.uint64)
        for j in range(width):
            inside = j < lengths
            codes[inside] = (codes[inside] << np.uint64(self.bits)) | digits[inside, j]

        # rank -> feature index of the 1-gram (-1: not a feature; rank 0 never is).
        self._unigrams = np.full(len(alphabet) + 1, -1, dtype=np.int32)
        unigrams = np.flatnonzero(lengths == 1)
        self._unigrams[codes[unigrams]] = unigrams
        longer = np.flatnonzero(lengths > 1)
        self._build_table(codes[longer], longer.astype(np.int32))

    @classmethod
    def build(cls, vocabulary: Sequence[str], ngram_range: tuple[int, int]) -> _NgramCodes | None:
        """The batch extractor for this vocabulary, or ``None`` if it cannot code it."""
        lengths = np.fromiter(map(len, vocabulary), dtype=np.intp, count=len(vocabulary))
        alphabet = sorted(set("".join(vocabulary)))
        longest = 64 // max(len(alphabet).bit_length(), 1)  # characters per 64-bit code
        if ngram_range[0] < 1 or not 1 <= lengths.min(initial=1) <= lengths.max(initial=1) <= longest:
            return None
        return cls(vocabulary, lengths, alphabet, ngram_range)

    # -- the hash table --------------------------------------------------------------
    def _build_table(self, codes: np.ndarray, features: np.ndarray) -> None:
        """Open addressing with linear probing, filled in rounds: in round d every
        entry not yet placed tries slot ``home + d``, and the first of the
        entries trying a free slot takes it, so no entry is more than
        ``_max_probe`` slots past its home slot.  A load factor of at most
        1/4 keeps the chains short (for the packaged model: 26,593 entries of
        2 or 3 characters in 2**17 slots, 1.5 MB; 10 % of them sit past their
        home slot, none more than 9 slots).  Code 0 (no n-gram) marks an
        empty slot.
        """
        capacity = 8
        while capacity < self.SLOTS_PER_ENTRY * codes.size:
            capacity *= 2
        self._shift = np.uint64(65 - capacity.bit_length())  # keep the top log2(capacity) bits
        self._mask = capacity - 1
        self._keys = np.zeros(capacity, dtype=np.uint64)
        self._features = np.full(capacity, -1, dtype=np.int32)
        home = ((codes * _FIBONACCI) >> self._shift).astype(np.intp)
        waiting = np.arange(codes.size)
        probe = 0
        while waiting.size:
            slots = (home[waiting] + probe) & self._mask
            free = self._keys[slots] == 0
            slots, claimants = np.unique(slots[free], return_index=True)  # first claimant per slot
            placed = waiting[free][claimants]
            self._keys[slots] = codes[placed]
            self._features[slots] = features[placed]
            waiting = np.setdiff1d(waiting, placed, assume_unique=True)
            probe += 1
        self._max_probe = max(probe - 1, 0)

    def lookup(self, codes: np.ndarray) -> np.ndarray:
        """Feature index of each code (of 2 characters or more), -1 for codes
        not in the vocabulary."""
        # (``take`` and ``nonzero`` are used throughout: faster than fancy
        # indexing and ``np.flatnonzero``, which matters for small batches.)
        home = ((codes * _FIBONACCI) >> self._shift).astype(np.intp)
        keys = self._keys.take(home)
        features = self._features.take(home)
        mismatched = (keys != codes).nonzero()[0]
        features[mismatched] = -1
        # Past an occupied home slot, the entry may be further on: all the
        # slots it could be in are compared at once (at most ``_max_probe``
        # per code, for the few codes concerned).  A table holds each code
        # once, so a match anywhere is the entry, even past an empty slot.
        searching = mismatched[keys.take(mismatched) != 0]
        if searching.size and self._max_probe:
            slots = (home.take(searching)[:, None] + np.arange(1, self._max_probe + 1)) & self._mask
            row, column = (self._keys.take(slots) == codes.take(searching)[:, None]).nonzero()
            features[searching.take(row)] = self._features.take(slots[row, column])
        return features

    # -- n-grams ---------------------------------------------------------------------
    def occurrences(self, docs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every vocabulary n-gram occurrence in ``docs`` (normalised texts):
        ``(document number, feature index)`` arrays, one entry per occurrence,
        in no particular order.

        ``str.split()`` splits at runs of whitespace, so the words are those of
        the reference path (which first collapses whitespace runs, as
        scikit-learn does).
        """
        sep = self.separator
        glue = f" {sep} "
        # " w1 ␀ w2 ␀" for the words w1, w2 (␀ = separator); nothing for a text without words.
        pieces = [f" {glue.join(words)} {sep}" if words else "" for words in map(str.split, docs)]
        document = np.repeat(np.arange(len(pieces), dtype=np.int32),
                             np.fromiter(map(len, pieces), np.intp, len(pieces)))
        # One code point per character (UTF-32), lone surrogates included.
        chars = np.frombuffer("".join(pieces).encode("utf-32-le", "surrogatepass"), dtype="<u4")
        ranks = self._ranks.take(np.minimum(chars, self._ranks.size - 1)).astype(np.uint64)
        known = ranks != 0

        # Feature index (-1: none) of the candidate windows, by window size,
        # and where they start.
        features, starts = [], []
        if self.low <= 1:
            features.append(self._unigrams.take(ranks))
            starts.append(np.arange(ranks.size))
        bits = np.uint64(self.bits)
        codes, valid = ranks, known  # windows of n characters, by start position
        long_codes = []
        for n in range(2, self.high + 1):
            codes = (codes[:-1] << bits) | ranks[n - 1:]
            valid = valid[:-1] & known[n - 1:]
            if n >= self.low:
                take = valid
            elif n >= 3:  # a whole padded word shorter than the lowest n
                take = valid & (chars[:valid.size] == _SPACE) & (chars[n - 1:] == _SPACE)
            else:
                continue
            starts.append(take.nonzero()[0])
            long_codes.append(codes.take(starts[-1]))
        if long_codes:
            features.append(self.lookup(np.concatenate(long_codes)))
        if not features:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32)
        found = np.concatenate(features)
        hit = (found >= 0).nonzero()[0]
        return document.take(np.concatenate(starts).take(hit)), found.take(hit)


class LinearTextModel:
    """TF-IDF over character n-grams inside word boundaries + multinomial logistic regression.

    The features are those of scikit-learn's ``TfidfVectorizer(analyzer="char_wb")``
    (optionally sublinear tf, l2 norm) with :func:`.text.normalise` as
    pre-processor.  :meth:`predict_proba_many` computes them for a whole
    batch with numpy (see :class:`_NgramCodes`); :meth:`predict_proba` is
    the same for one text.  A vocabulary that cannot be coded that way
    (entries too long for 64-bit codes, or repeated entries) falls back to
    the per-text reference path, :meth:`_predict_proba_reference`.
    """

    #: Texts per numpy pass in :meth:`predict_proba_many`: bounds the memory of
    #: one pass (about 55 bytes per n-gram occurrence at the peak, 5 MB for
    #: 512 texts of the dev set's length); fewer texts per pass pay the fixed
    #: cost of the numpy calls more often.
    BATCH = 512

    def __init__(self, vocabulary: Sequence[str], idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 classes: Sequence[str], ngram_range: tuple[int, int], sublinear_tf: bool,
                 fingerprints: Iterable[str] = ()):
        vocabulary = list(vocabulary)
        self.vocabulary = {term: i for i, term in enumerate(vocabulary)}
        self.idf = np.asarray(idf, dtype=np.float64)
        self.coef = np.asarray(coef, dtype=np.float64)  # (n_features, n_classes)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.classes = tuple(classes)
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
        self.sublinear_tf = bool(sublinear_tf)
        self.fingerprints = frozenset(fingerprints)
        # The coefficients class by class for the batch path; a model read from
        # a file has float32 coefficients (see :meth:`save`), kept as float32
        # here (exact, half the memory traffic).
        coef32 = self.coef.astype(np.float32)
        exact = np.array_equal(coef32, self.coef)
        self._coef_by_class: npt.NDArray[np.floating[Any]] = np.ascontiguousarray((coef32 if exact else self.coef).T)
        # The batch path, or None (repeated terms would make the two paths disagree on their index).
        self._codes = (_NgramCodes.build(vocabulary, self.ngram_range)
                       if len(self.vocabulary) == len(vocabulary) else None)

    # -- features (reference path, one text at a time) -------------------------------
    def _ngrams(self, text: str) -> list[str]:
        """scikit-learn's ``char_wb`` analyser, with the same pre-processing.

        The same n-grams in the same order as scikit-learn's loop (each word
        padded with spaces, n from low to high, a word shorter than n counted
        once as a whole, which ends its loop), but each run of n-grams is cut
        by C-level ``map`` calls instead of one slice per interpreter step.
        """
        doc = normalise(text)  # already one space between words, as char_wb makes it
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

    def _predict_proba_reference(self, text: str) -> dict[str, float]:
        """The straightforward per-text computation: the reference the batch
        path is tested against, and its fallback.  Per text of a batch it is
        several times slower (the n-grams are Python strings); for one text
        alone it is about as fast, the batch path's numpy calls costing about
        as much as the string work they replace."""
        idx, values = self._vector(text)
        logits = self.intercept + (values @ self.coef[idx] if idx.size else 0.0)
        logits = logits - logits.max()
        p = np.exp(logits)
        p /= p.sum()
        return dict(zip(self.classes, p.tolist()))

    # -- prediction (batch path) -----------------------------------------------------
    def _proba_matrix(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities of ``texts``, one row per text, columns in class order."""
        assert self._codes is not None
        document, feature = self._codes.occurrences([normalise(text) for text in texts])
        logits = np.empty((len(texts), self.intercept.size))
        logits[:] = self.intercept
        if document.size:
            # Each (text, feature) pair as one integer (int32 when it fits:
            # sorts twice as fast).  Sorting puts equal pairs side by side
            # (the length of a run is the count) and orders the pairs by
            # text, so each text's features form one run.
            shift = max(self.idf.size - 1, 1).bit_length()
            dtype: np.dtype[np.signedinteger[Any]] = np.dtype(
                np.int32 if (len(texts) - 1).bit_length() + shift <= 31 else np.int64)
            pairs = np.sort((document.astype(dtype) << shift) | feature)
            first = _run_starts(pairs)
            counts = np.empty(first.size)
            np.subtract(first[1:], first[:-1], out=counts[:-1])
            counts[-1] = pairs.size - first[-1]
            pairs = pairs.take(first)
            # (``take`` converts its indices to intp: once here, not at every use.)
            document, feature = pairs >> shift, (pairs & ((1 << shift) - 1)).astype(np.intp)
            tf = np.log(counts) + 1.0 if self.sublinear_tf else counts
            values = tf * self.idf.take(feature)  # tf-idf, not yet normalised
            # The runs of features of each text; texts with no known n-gram
            # have none and keep the intercept.
            runs = _run_starts(document)
            norms = np.sqrt(np.add.reduceat(values * values, runs))
            norms[norms == 0.0] = 1.0  # as the reference: an all-zero vector stays as it is
            # Per run, the sum of tf-idf * coefficients, divided by the norm
            # afterwards (one division per text and class, not per feature).
            # The products are laid out class by class, so that a run is a
            # contiguous block of each row: ``reduceat`` sums those several
            # times faster than blocks of rows.
            weighted = self._coef_by_class.take(feature, axis=1) * values
            logits[document.take(runs)] += np.add.reduceat(weighted, runs, axis=1).T / norms[:, None]
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits

    def predict_proba(self, text: str) -> dict[str, float]:
        """Class -> probability for one text (``predict_proba_many([text])[0]``)."""
        return self.predict_proba_many([text])[0]

    def predict_proba_many(self, texts: Iterable[str]) -> list[dict[str, float]]:
        """Class -> probability for each text, computed :attr:`BATCH` texts at a time."""
        texts = list(texts)
        if self._codes is None:
            return [self._predict_proba_reference(t) for t in texts]
        classes = self.classes
        out: list[dict[str, float]] = []
        for start in range(0, len(texts), self.BATCH):
            rows = self._proba_matrix(texts[start:start + self.BATCH]).tolist()
            out.extend(dict(zip(classes, row)) for row in rows)
        return out

    def trained_on(self, text: str) -> bool:
        return text_fingerprint(text) in self.fingerprints

    # -- files -----------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
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
    def load(cls, path: str | os.PathLike[str]) -> LinearTextModel:
        try:
            with np.load(path, allow_pickle=False) as data:
                file_format = str(data["format"])
                if file_format == FORMAT:
                    return cls(data["vocabulary"].tolist(), data["idf"], data["coef"],
                               data["intercept"], data["classes"].tolist(), tuple(data["ngram_range"].tolist()),
                               bool(data["sublinear_tf"]), data["fingerprints"].tolist())
        except (OSError, KeyError, ValueError) as exc:
            raise PortableModelError(f"{os.fspath(path)} is not a portable classifier model: {exc}") from exc
        raise PortableModelError(f"{os.fspath(path)}: format {file_format}, expected {FORMAT}")

    @classmethod
    def from_pipeline(cls, pipeline: Any, fingerprints: Iterable[str] = ()) -> LinearTextModel:
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


def train_portable(rows: Iterable[Mapping[str, Any]]) -> LinearTextModel:
    """Fit the n-gram model on rows with ``text`` and ``category`` (scikit-learn) and export it."""
    from .model import train_model

    rows = list(rows)
    fitted = train_model(rows)
    return LinearTextModel.from_pipeline(fitted.pipeline, (text_fingerprint(r["text"]) for r in rows))
