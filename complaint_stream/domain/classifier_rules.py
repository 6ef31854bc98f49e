"""The classifier's rules file (``classification/rules.json``) as a strict policy-file model.

:func:`complaint_stream.domain.classification.load_rules` validates a file
with :class:`RulesFile` before compiling it, so an operator's copy with an
unknown key, a weight written as a string, a category or risk flag that does
not exist, or a boundary with keys of another kind is refused at start-up
with the file, the key and what was expected (see
:mod:`~complaint_stream.domain.policy_files`).  The compiler then checks what
a schema cannot: that cues and conditions refer to declared names, and that
each regex's declared literals occur in it.

The model lives outside the classification package so that classifying
imports no pydantic (only loading a rules file does).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, FiniteFloat

from complaint_stream.domain.policy_files import PolicyModel
from complaint_stream.schemas import Category, Channel, RiskFlag

Lang = Literal["zh", "en"]
Weight = FiniteFloat
Terms = list[str]


class Scoring(PolicyModel):
    """Softmax temperature and the baseline score of the fallback category."""

    fallback_score: Weight
    temperature: Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Pattern(PolicyModel):
    """A regex with what a match means; ``needs``: literals one of which every match contains."""

    pattern: str
    target: str  # a category, "cue:<name>" or "risk:<flag>" (checked by the compiler)
    weight: Weight = 1.0
    needs: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)


class ContextPattern(PolicyModel):
    """A background clause (when I signed up ...)."""

    pattern: str
    needs: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)


class Context(PolicyModel):
    comment: str = ""
    factor: Weight = 0.5
    patterns: list[ContextPattern] = Field(default_factory=list)


class Negation(PolicyModel):
    """Negation cues with their windows in characters."""

    comment: str = ""
    before: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    after: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    clause_breaks: str = ",.;!?，。；！？"


class Numbers(PolicyModel):
    """When a term of digits is a mention of that number (``text.NumberContext``)."""

    comment: str = ""
    joiners: str = ""
    units: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    separators: str = " "


class Route(PolicyModel):
    when: list[str] = Field(default_factory=list)
    to: Category
    fraction: Weight | None = None


class RouteBoundary(PolicyModel):
    """Give a cue's weight to the first route whose conditions hold."""

    kind: Literal["route"]
    name: str
    explain: str = ""
    cue: str
    when: list[str] = Field(default_factory=list)
    fraction: Weight | None = None
    routes: list[Route]


class MoveBoundary(PolicyModel):
    """Move a fraction of each source category's score to the target."""

    kind: Literal["move"]
    name: str
    explain: str = ""
    when: list[str] = Field(default_factory=list)
    sources: list[Category]
    target: Category
    fraction: Weight = 1.0


class ScaleBoundary(PolicyModel):
    """Multiply the target category's score."""

    kind: Literal["scale"]
    name: str
    explain: str = ""
    when: list[str] = Field(default_factory=list)
    target: Category
    fraction: Weight = 1.0


Boundary = Annotated[RouteBoundary | MoveBoundary | ScaleBoundary, Field(discriminator="kind")]


class RulesFile(PolicyModel):
    """Every key a rules file may have (``sections`` in the file says what each is for)."""

    version: Literal[1]
    description: str = ""
    sections: dict[str, str] = Field(default_factory=dict)
    categories: list[Category]
    fallback_category: Category = Category.OTHER
    scoring: Scoring
    terms: dict[Category, dict[Lang, dict[str, Weight]]]
    cues: dict[str, dict[Lang, dict[str, Weight]]] = Field(default_factory=dict)
    patterns: list[Pattern] = Field(default_factory=list)
    stop_terms: Terms = Field(default_factory=list)
    words: Terms = Field(default_factory=list)
    numbers: Numbers = Numbers()
    context: Context = Context()
    negation: Negation = Negation()
    boundaries: list[Boundary] = Field(default_factory=list)
    risk: dict[RiskFlag, dict[Lang, Terms]] = Field(default_factory=dict)
    risk_channels: dict[Channel, list[RiskFlag]] = Field(default_factory=dict)
