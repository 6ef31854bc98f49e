"""Trainable character n-gram model that complements the rules.

scikit-learn is imported lazily, so the rest of the package (and the rules
classifier) works without it.  Models are saved with :mod:`pickle`; only
load files you produced yourself.
"""

from __future__ import annotations

import os
import pickle
from typing import Any, Iterable, Sequence

from .text import normalise

_FORMAT = "complaint-classifier-textmodel/1"


class ModelError(RuntimeError):
    """The model is unfitted or a saved model file is not one of ours."""


class TextModel:
    """TF-IDF over character 1–3-grams + multinomial logistic regression."""

    def __init__(self, c: float = 10.0, ngram_range: tuple[int, int] = (1, 3)):
        self.c = c
        self.ngram_range = ngram_range
        self._pipeline: Any = None
        self.classes: tuple[str, ...] = ()

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> "TextModel":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        if len(texts) != len(labels) or not texts:
            raise ValueError("need as many labels as texts, and at least one")
        if len(set(labels)) < 2:
            raise ValueError("need at least two categories to train")
        self._pipeline = make_pipeline(
            TfidfVectorizer(analyzer="char_wb", ngram_range=self.ngram_range,
                            preprocessor=normalise, sublinear_tf=True),
            LogisticRegression(C=self.c, max_iter=3000),
        )
        self._pipeline.fit(list(texts), list(labels))
        self.classes = tuple(self._pipeline.classes_)
        return self

    def predict_proba(self, text: str) -> dict[str, float]:
        if self._pipeline is None:
            raise ModelError("model is not fitted")
        probs = self._pipeline.predict_proba([text])[0]
        return {c: float(p) for c, p in zip(self.classes, probs)}

    def save(self, path: str | os.PathLike) -> None:
        if self._pipeline is None:
            raise ModelError("cannot save an unfitted model")
        payload = {"format": _FORMAT, "c": self.c, "ngram_range": self.ngram_range,
                   "classes": self.classes, "pipeline": self._pipeline}
        with open(path, "wb") as fh:
            pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TextModel":
        with open(path, "rb") as fh:
            payload = pickle.load(fh)  # trusted, self-produced files only
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ModelError(f"{os.fspath(path)} is not a saved TextModel")
        model = cls(c=payload["c"], ngram_range=tuple(payload["ngram_range"]))
        model._pipeline = payload["pipeline"]
        model.classes = tuple(payload["classes"])
        return model


def train_model(rows: Iterable[dict]) -> TextModel:
    """Fit a :class:`TextModel` on rows with ``text`` and ``category``."""
    rows = list(rows)
    return TextModel().fit([r["text"] for r in rows], [r["category"] for r in rows])
