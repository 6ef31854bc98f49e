"""Wires settings into the domain: the classifier, priority rules and policies (composition root)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from importlib import resources
from pathlib import Path

from complaint_stream.domain.assignment.roster import Roster
from complaint_stream.domain.assignment.stages import AssignStage, DispatchStage
from complaint_stream.domain.classification import Classifier, load_rules
from complaint_stream.domain.intake import IntakePolicy
from complaint_stream.domain.lifecycle.messages import load_templates
from complaint_stream.domain.lifecycle.policy import LifecyclePolicy
from complaint_stream.domain.lifecycle.stage import LifecycleStage
from complaint_stream.domain.priority import PriorityRules, load_priority_rules
from complaint_stream.domain.sla.calendar import WorkingCalendar
from complaint_stream.domain.sla.policy import SlaPolicy
from complaint_stream.domain.sla.stage import SlaStage
from complaint_stream.domain.triage import TriagePolicy
from complaint_stream.settings import Settings


def _fingerprint(*blobs: bytes) -> str:
    h = hashlib.sha256()
    for blob in blobs:
        h.update(blob)
    return h.hexdigest()[:12]


PACKAGE = resources.files("complaint_stream.domain.classification")
DEFAULT_MODEL = "default_model.npz"


def model_path(settings: Settings) -> Path | None:
    """The n-gram model to blend with the rules: the configured file, the packaged one, or none."""
    if settings.classifier_model.lower() == "none":
        return None
    if settings.classifier_model:
        return Path(settings.classifier_model)
    packaged = Path(str(PACKAGE.joinpath(DEFAULT_MODEL)))
    return packaged if packaged.is_file() else None


def build_classifier(settings: Settings) -> tuple[Classifier, str]:
    """The configured classifier and a version string (rules + model fingerprint)."""
    if settings.classifier_rules:
        rules_bytes = Path(settings.classifier_rules).read_bytes()
        rules = load_rules(settings.classifier_rules)
    else:
        rules_bytes = PACKAGE.joinpath("rules.json").read_bytes()
        rules = load_rules()
    model = None
    blobs = [rules_bytes]
    path = model_path(settings)
    if path is not None:
        from complaint_stream.domain.classification.portable import LinearTextModel

        model = LinearTextModel.load(path)
        blobs.append(path.read_bytes())
    version = ("rules+model-" if model is not None else "rules-") + _fingerprint(*blobs)
    if model is not None:
        version += f"-m{settings.classifier_model_margin:g}"
    return Classifier(rules, model=model, model_margin=settings.classifier_model_margin), version


def build_priority_rules(settings: Settings) -> PriorityRules:
    return load_priority_rules(settings.priority_rules or None)


def build_triage_policy(settings: Settings, classifier_version: str) -> TriagePolicy:
    return TriagePolicy(repeat_window=timedelta(days=settings.repeat_window_days),
                        review_confidence=settings.review_confidence,
                        classifier_version=classifier_version)


def build_intake_policy(settings: Settings) -> IntakePolicy:
    """The intake policy; the customer-key secret stays a ``SecretStr`` (hidden in reprs and logs)."""
    return IntakePolicy(dedup_window=timedelta(days=settings.dedup_window_days),
                        customer_key_secret=settings.customer_key_secret)


def build_lifecycle_stage(settings: Settings) -> LifecycleStage:
    """The lifecycle stage with the operator's policy, transition table and message templates."""
    policy = LifecyclePolicy.load(settings.lifecycle_policy or None, settings.lifecycle_transitions or None,
                                  repeat_window=timedelta(days=settings.repeat_window_days))
    return LifecycleStage(policy, load_templates(settings.message_templates or None))


def load_roster(settings: Settings) -> Roster:
    """The operator's roster (``COMPLAINTS_ROSTER``), or the packaged one."""
    return Roster.load(settings.roster or None)


def build_assign_stage(settings: Settings) -> AssignStage:
    """The router with the operator's roster."""
    return AssignStage(load_roster(settings))


def build_dispatch_stage(settings: Settings) -> DispatchStage:
    """The teams' dispatcher with the operator's roster."""
    return DispatchStage(load_roster(settings))


def load_sla_policy(settings: Settings) -> SlaPolicy:
    """The operator's SLA policy (``COMPLAINTS_SLA_POLICY``) on its working calendar
    (``COMPLAINTS_SLA_CALENDAR``: the official days with the file's additions), or the packaged ones."""
    working = WorkingCalendar.load(settings.sla_calendar) if settings.sla_calendar else None
    return SlaPolicy.load(settings.sla_policy or None, working=working)


def build_sla_stage(settings: Settings) -> SlaStage:
    """The SLA clocks and escalation ladder with the operator's policy and calendar."""
    return SlaStage(load_sla_policy(settings))
