"""The lifecycle's rules as data: the transition table and the policy an operator edits.

Both are files (``transitions.json``, ``lifecycle.json`` in this package; an operator points
``COMPLAINTS_LIFECYCLE_POLICY`` / ``COMPLAINTS_LIFECYCLE_TRANSITIONS`` at their own) read strictly
through :mod:`~complaint_stream.domain.policy_files`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Literal

from pydantic import Field, model_validator

from complaint_stream.domain.policy_files import PolicyModel, load_policy_file
from complaint_stream.schemas import Priority, TicketStatus

TERMINAL_DEFAULT = (TicketStatus.CLOSED, TicketStatus.REJECTED, TicketStatus.CANCELLED)


class TransitionFile(PolicyModel):
    comment: str = Field(default="", alias="_comment")
    initial: TicketStatus
    terminal: tuple[TicketStatus, ...]
    reopen_from: tuple[TicketStatus, ...]
    allowed: dict[TicketStatus, tuple[TicketStatus, ...]]
    refusals: dict[str, str] = Field(default_factory=dict)
    default_refusal: str
    closed_refusal: str
    ended_refusal: str

    @model_validator(mode="after")
    def _complete(self) -> TransitionFile:
        missing = [s.value for s in TicketStatus if s not in self.allowed]
        if missing:
            raise ValueError(f"allowed: no entry for status(es) {', '.join(missing)}")
        names = {s.value for s in TicketStatus} | {"*"}
        for pair in self.refusals:
            parts = pair.split("->")
            if len(parts) != 2 or not set(parts) <= names:
                raise ValueError(f"refusals: {pair!r} is not '<status>-><status>' ('*' for any)")
        return self


@dataclass(frozen=True)
class Verdict:
    """What the table says about one status update: ``change`` (a transition), ``same`` (a progress
    update at the same status), ``reopen``, or refused with ``rule``."""

    kind: Literal["change", "same", "reopen", "refused"]
    rule: str = ""


@dataclass(frozen=True)
class TransitionTable:
    file: TransitionFile

    @classmethod
    def load(cls, source: str | os.PathLike[str] | None = None) -> TransitionTable:
        src = source if source else resources.files("complaint_stream.domain.lifecycle") / "transitions.json"
        return cls(load_policy_file(src, TransitionFile))

    def is_terminal(self, status: TicketStatus) -> bool:
        return status in self.file.terminal

    def check(self, current: TicketStatus, target: TicketStatus) -> Verdict:
        f = self.file
        if target is TicketStatus.IN_PROGRESS and current in f.reopen_from and target in f.allowed[current]:
            return Verdict("reopen")
        if target is current and not self.is_terminal(current):
            if current is TicketStatus.RESOLVED:
                return Verdict("refused", self._rule(current, target))
            return Verdict("same")
        if target in f.allowed[current]:
            return Verdict("change")
        return Verdict("refused", self._rule(current, target))

    def _rule(self, current: TicketStatus, target: TicketStatus) -> str:
        f = self.file
        for pair in (f"{current.value}->{target.value}", f"*->{target.value}", f"{current.value}->*"):
            if pair in f.refusals:
                return f.refusals[pair]
        if current is TicketStatus.CLOSED:
            return f.closed_refusal
        if self.is_terminal(current):
            return f.ended_refusal
        return f.default_refusal


class SurveyAnswer(PolicyModel):
    answer: str = Field(min_length=1, max_length=20)
    zh: str
    en: str
    satisfied: bool
    aliases: tuple[str, ...] = ()


class CallbackPolicy(PolicyModel):
    delay_hours: float = Field(ge=0)
    attempts: int = Field(ge=1, le=10)
    spacing_hours: float = Field(gt=0)
    reopen_on_dissatisfied: bool
    scale: tuple[SurveyAnswer, ...] = Field(min_length=2)


class LifecycleFile(PolicyModel):
    comment: str = Field(default="", alias="_comment")
    reopen_window_hours: float = Field(gt=0)
    auto_close_hours: float = Field(gt=0)
    promised_reply_hours: dict[Priority, float]
    follow_up_raise_every: int = Field(ge=0, description="0: follow-ups never raise the priority")
    follow_up_raise_to_at_most: Priority
    progress_message_hours: float = Field(ge=0, description="0: no progress messages")
    unknown_complaint_grace_minutes: float = Field(gt=0)
    timer_seconds: float = Field(default=60.0, gt=0, description="How often the worker's timers run (callbacks,"
                                                                 " held messages, parked updates).")
    retention_days: float = Field(gt=0)
    resolution_codes: tuple[str, ...] = Field(min_length=1)
    callback: CallbackPolicy
    quiet_hours_start: str = Field(pattern=r"^[0-2][0-9]:[0-5][0-9]$")
    quiet_hours_end: str = Field(pattern=r"^[0-2][0-9]:[0-5][0-9]$")
    quiet_hours_exempt: tuple[Priority, ...] = (Priority.P1,)

    @model_validator(mode="after")
    def _complete(self) -> LifecycleFile:
        missing = [p.value for p in Priority if p not in self.promised_reply_hours]
        if missing:
            raise ValueError(f"promised_reply_hours: no entry for {', '.join(missing)}")
        return self


@dataclass(frozen=True)
class LifecyclePolicy:
    """The lifecycle policy in the units the state machine uses."""

    file: LifecycleFile
    transitions: TransitionTable
    repeat_window: timedelta

    @classmethod
    def load(cls, source: str | os.PathLike[str] | None = None, transitions: str | os.PathLike[str] | None = None,
             *, repeat_window: timedelta = timedelta(days=30)) -> LifecyclePolicy:
        src = source if source else resources.files("complaint_stream.domain.lifecycle") / "lifecycle.json"
        return cls(load_policy_file(src, LifecycleFile), TransitionTable.load(transitions), repeat_window)

    @property
    def reopen_window(self) -> timedelta:
        return timedelta(hours=self.file.reopen_window_hours)

    @property
    def auto_close_after(self) -> timedelta:
        return timedelta(hours=self.file.auto_close_hours)

    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.file.unknown_complaint_grace_minutes)

    @property
    def retention(self) -> timedelta:
        return timedelta(days=self.file.retention_days)

    @property
    def progress_every(self) -> timedelta | None:
        hours = self.file.progress_message_hours
        return timedelta(hours=hours) if hours else None

    def promised_reply(self, priority: Priority) -> timedelta:
        return timedelta(hours=self.file.promised_reply_hours[priority])

    def survey_answer(self, answer: str) -> SurveyAnswer | None:
        """The scale's entry for an answer, by its code, its zh or en label, or an alias."""
        wanted = answer.strip().casefold()
        for entry in self.file.callback.scale:
            if wanted in {entry.answer.casefold(), entry.zh.casefold(), entry.en.casefold(),
                          *(a.casefold() for a in entry.aliases)}:
                return entry
        return None
