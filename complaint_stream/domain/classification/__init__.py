"""Complaint classification: taxonomy category, confidence and risk flags.

Pure domain code.  Rules (``rules.json``) decide on their own; a character
n-gram model can be blended in: trained with scikit-learn (:mod:`.model`, the
``train`` extra), run with numpy from a ``.npz`` file (:mod:`.portable`).
"""

from .classifier import Classification, Classifier, detect_risk
from .rules import RISK_FLAGS, RulesError, RuleSet, load_rules

CATEGORIES: tuple[str, ...] = (
    "network",
    "broadband",
    "billing",
    "vas_subscription",
    "marketing",
    "service_quality",
    "business_handling",
    "number_portability",
    "device",
    "security_fraud",
    "other",
)

__all__ = [
    "CATEGORIES",
    "RISK_FLAGS",
    "Classification",
    "Classifier",
    "RuleSet",
    "RulesError",
    "detect_risk",
    "load_rules",
]
