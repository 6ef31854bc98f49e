"""Training the character n-gram model that complements the rules.

Needs scikit-learn (the ``train`` extra: ``pip install complaint-stream[train]``),
imported only when a model is fitted, so the rest of the package (and
classification) works without it.  A fitted model is exported and saved as
plain numpy arrays (:mod:`.portable`); this module keeps nothing on disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .text import normalise


class ModelError(RuntimeError):
    """The model is not fitted."""


class TextModel:
    """TF-IDF over character 1–3-grams + multinomial logistic regression."""

    def __init__(self, c: float = 10.0, ngram_range: tuple[int, int] = (1, 3)):
        self.c = c
        self.ngram_range = ngram_range
        self._pipeline: Any = None
        self.classes: tuple[str, ...] = ()

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> TextModel:
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

    @property
    def pipeline(self) -> Any:
        """The fitted scikit-learn pipeline (for :meth:`.portable.LinearTextModel.from_pipeline`)."""
        if self._pipeline is None:
            raise ModelError("model is not fitted")
        return self._pipeline

    def predict_proba(self, text: str) -> dict[str, float]:
        probs = self.pipeline.predict_proba([text])[0]
        return {c: float(p) for c, p in zip(self.classes, probs)}


def train_model(rows: Iterable[Mapping[str, Any]]) -> TextModel:
    """Fit a :class:`TextModel` on rows with ``text`` and ``category``."""
    rows = list(rows)
    return TextModel().fit([r["text"] for r in rows], [r["category"] for r in rows])
