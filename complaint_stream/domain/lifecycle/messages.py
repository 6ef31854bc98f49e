"""Messages to customers (TMF681 communication events): the texts, the channel, the language, quiet hours.

The texts are data an operator edits, ``templates.json`` in this package (or their own file):
for each template id a zh and an en text and email subject, with ``{name}`` placeholders filled
by :meth:`Templates.render` (``str.format_map``: named fields only); and the words messages use
for categories, resolution codes and ticket statuses. The file is read strictly
(:mod:`~complaint_stream.domain.policy_files`) and then checked as a whole: both languages for
every template, only the placeholders :data:`KNOWN_PARAMETERS` allows for its id, a name for every
category and status, no phone number. A broken file stops the start-up with one line per problem,
not a customer's message with ``{amount}`` in it at 3 a.m.

Everything here is pure: the lifecycle stage decides *when* a message is due and with which
parameters, this module what it says, where it goes (:func:`message_channel`,
:func:`message_language`) and not before when (:class:`QuietHours`).
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from importlib import resources
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from complaint_stream.domain.policy_files import PolicyFileError, PolicyModel, Readable, load_policy_file
from complaint_stream.schemas.base import Category, Channel, Priority, TicketStatus
from complaint_stream.schemas.case import MessageChannel
from complaint_stream.schemas.privacy import redact_phone_numbers

__all__ = [
    "CHINA",
    "DEFAULT_RESOLUTION_CODES",
    "KNOWN_PARAMETERS",
    "LANGUAGES",
    "Language",
    "LocalisedName",
    "QuietHours",
    "RenderedMessage",
    "TemplateEntry",
    "TemplateError",
    "TemplateFile",
    "TemplateFileError",
    "TemplateText",
    "Templates",
    "check_templates",
    "format_local",
    "load_templates",
    "message_channel",
    "message_language",
    "yuan",
]

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")

#: China Standard Time, the local time of messages and quiet hours.
CHINA = ZoneInfo("Asia/Shanghai")

#: The parameters each template id may use. A template id not listed here (an operator's own) may use
#: any of them; a placeholder outside its set is refused when the file is loaded.
KNOWN_PARAMETERS: dict[str, frozenset[str]] = {
    "acknowledgement": frozenset({"complaint_id", "promised_by", "category_name"}),
    "resolution": frozenset({"complaint_id", "category_name", "resolution_text"}),
    "resolution_refund": frozenset({"complaint_id", "category_name", "resolution_text", "amount_yuan"}),
    "survey": frozenset({"complaint_id", "category_name", "survey_options"}),
    "progress": frozenset({"complaint_id", "category_name", "status_text", "promised_by"}),
    "reopened": frozenset({"complaint_id", "category_name", "promised_by"}),
    "cancelled": frozenset({"complaint_id", "category_name", "reason_text"}),
    "regulator_ack": frozenset({"complaint_id", "category_name", "regulator_case_no", "promised_by"}),
}
_ANY_KNOWN: frozenset[str] = frozenset().union(*KNOWN_PARAMETERS.values())

#: Resolution codes the file must name (``Resolution.code``); ``other`` is the words of any code it does not.
DEFAULT_RESOLUTION_CODES = ("refund", "compensation", "replacement", "technical_fix", "explanation",
                            "no_fault_found", "tariff_change", "unsubscribed", "other")

_Code = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]
_Text = Annotated[str, Field(min_length=1)]


class TemplateError(ValueError):
    """A message cannot be rendered: an unknown template id or language, or a parameter missing."""


class TemplateFileError(PolicyFileError):
    """The templates file is malformed; one line per problem."""


class TemplateText(PolicyModel):
    """One language of one template: the email subject and the text (SMS, WeChat, app, email body)."""

    subject: _Text
    text: _Text


class TemplateEntry(PolicyModel):
    """One template id: both languages are required."""

    comment: str = Field(default="", alias="_comment")
    zh: TemplateText
    en: TemplateText


class LocalisedName(PolicyModel):
    """Words for a category, a resolution code or a status, in both languages."""

    zh: _Text
    en: _Text


class TemplateFile(PolicyModel):
    """``templates.json`` as an operator edits it."""

    comment: str = Field(default="", alias="_comment")
    templates: dict[_Code, TemplateEntry]
    categories: dict[Category, LocalisedName]
    resolution_codes: dict[_Code, LocalisedName]
    statuses: dict[TicketStatus, LocalisedName]


@dataclass(frozen=True)
class RenderedMessage:
    """A message ready for the gateway: ``subject`` is for email only."""

    subject: str
    text: str


def _placeholders(text: str) -> tuple[frozenset[str], list[str]]:
    """The field names of a ``str.format`` text, and what is wrong with its placeholders."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:  # a lone "{" or "}"
        return frozenset(), [f"malformed placeholder: {exc} (write {{{{ and }}}} for a literal brace)"]
    names: set[str] = set()
    problems = []
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if not name.isidentifier():
            problems.append(f"placeholder {{{name}}} is not a plain name (write {{complaint_id}}, not {{}}, {{0}},"
                            " {a.b} or {a[0]})")
        elif spec or conversion:
            problems.append(f"placeholder {{{name}}} has a conversion or format spec; write {{{name}}} only")
        else:
            names.add(name)
    return frozenset(names), problems


def _braced(names: frozenset[str] | set[str]) -> str:
    return ", ".join(f"{{{n}}}" for n in sorted(names))


def check_templates(data: TemplateFile) -> list[str]:
    """What a file that passed its model still gets wrong, one ``<key>: <problem>`` per line (empty: none):
    a required template missing, a placeholder not allowed for the template (or malformed), a phone number
    in a text, a category, status or default resolution code without names."""
    problems = [f"templates.{tid}: missing; this template is required" for tid in KNOWN_PARAMETERS
                if tid not in data.templates]
    for tid, entry in data.templates.items():
        allowed = KNOWN_PARAMETERS.get(tid, _ANY_KNOWN)
        for language in LANGUAGES:
            texts = _language(entry, language)
            for part, value in (("subject", texts.subject), ("text", texts.text)):
                key = f"templates.{tid}.{language}.{part}"
                names, bad = _placeholders(value)
                problems.extend(f"{key}: {line}" for line in bad)
                unknown = names - allowed
                if unknown:
                    whose = ("its parameters" if tid in KNOWN_PARAMETERS
                             else "the parameters of the known templates (this template id is not one of them)")
                    problems.append(f"{key}: unknown placeholder(s) {_braced(unknown)}; expected {whose}:"
                                    f" {_braced(allowed)}")
                if redact_phone_numbers(value) != value:
                    problems.append(f"{key}: contains a phone number; messages must not give one (customers are"
                                    " told never to call a number from a message)")
    problems.extend(f"categories.{c.value}: missing; every category needs a zh and an en name"
                    for c in Category if c not in data.categories)
    problems.extend(f"statuses.{s.value}: missing; every ticket status needs a zh and an en name"
                    for s in TicketStatus if s not in data.statuses)
    problems.extend(f"resolution_codes.{code}: missing; every default resolution code needs a zh and an en text"
                    for code in DEFAULT_RESOLUTION_CODES if code not in data.resolution_codes)
    return problems


def _language(entry: TemplateEntry, language: str) -> TemplateText:
    if language == "zh":
        return entry.zh
    if language == "en":
        return entry.en
    raise TemplateError(f"unknown language {language!r}; expected zh or en")


def _words(name: LocalisedName, language: str) -> str:
    if language == "zh":
        return name.zh
    if language == "en":
        return name.en
    raise TemplateError(f"unknown language {language!r}; expected zh or en")


@dataclass(frozen=True)
class Templates:
    """The checked templates file: render messages and name categories, resolutions and statuses."""

    file: TemplateFile
    #: (template id, language) -> the parameters its subject and text need.
    needs: Mapping[tuple[str, str], frozenset[str]] = field(repr=False)

    @classmethod
    def from_file(cls, data: TemplateFile, name: str = "templates") -> Templates:
        """Check ``data`` (:func:`check_templates`); raises :class:`TemplateFileError` naming ``name``."""
        problems = [f"{name}: {line}" for line in check_templates(data)]
        if problems:
            raise TemplateFileError("\n".join(problems), problems)
        needs: dict[tuple[str, str], frozenset[str]] = {}
        for tid, entry in data.templates.items():
            for language in LANGUAGES:
                texts = _language(entry, language)
                needs[(tid, language)] = _placeholders(texts.subject)[0] | _placeholders(texts.text)[0]
        return cls(data, needs)

    @property
    def template_ids(self) -> frozenset[str]:
        return frozenset(self.file.templates)

    def render(self, template_id: str, language: Language, params: Mapping[str, str]) -> RenderedMessage:
        """The subject and text of ``template_id`` in ``language`` with ``params`` filled in (extra ones are
        ignored). Raises :class:`TemplateError` for an unknown template or language or a missing parameter."""
        entry = self.file.templates.get(template_id)
        if entry is None:
            raise TemplateError(f"unknown template {template_id!r}; known: {', '.join(sorted(self.file.templates))}")
        texts = _language(entry, language)
        missing = self.needs[(template_id, language)] - params.keys()
        if missing:
            raise TemplateError(f"template {template_id!r} ({language}) needs parameter(s) {', '.join(sorted(missing))};"
                                f" given: {', '.join(sorted(params)) or 'none'}")
        return RenderedMessage(subject=texts.subject.format_map(params), text=texts.text.format_map(params))

    def category_name(self, category: Category | str, language: Language) -> str:
        """A category in words (``网络质量``, ``Network quality``)."""
        return _words(self.file.categories[Category(category)], language)

    def resolution_text(self, code: str, language: Language) -> str:
        """A resolution code in plain words; a code the file does not name reads as ``other``."""
        names = self.file.resolution_codes.get(code) or self.file.resolution_codes["other"]
        return _words(names, language)

    def status_text(self, status: TicketStatus | str, language: Language) -> str:
        """A ticket status in words (``处理中``, ``In progress``)."""
        return _words(self.file.statuses[TicketStatus(status)], language)


def load_templates(source: str | os.PathLike[str] | Readable | None = None) -> Templates:
    """Read and check the templates file (default: the packaged ``templates.json``).

    Raises :class:`TemplateFileError` (a :class:`PolicyFileError`) with one line per problem,
    ``<file>: <key>: <problem>``: first what the model refuses (unknown keys, wrong types, unknown
    categories or statuses), then, once the file has the right shape, :func:`check_templates`."""
    src = source if source is not None else resources.files("complaint_stream.domain.lifecycle") / "templates.json"
    data = load_policy_file(src, TemplateFile, error=TemplateFileError)
    return Templates.from_file(data, os.fspath(src) if isinstance(src, (str, os.PathLike)) else str(src))


def yuan(fen: int) -> str:
    """Integer fen (分) as yuan with 2 decimals: ``1234`` -> ``"12.34"``, ``5`` -> ``"0.05"``. No floats."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"an amount in fen must be an int, not {type(fen).__name__}")
    whole, cents = divmod(abs(fen), 100)
    return f"{'-' if fen < 0 else ''}{whole}.{cents:02d}"


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a timezone-aware time is needed, not {at.isoformat()}")
    return at


@dataclass(frozen=True)
class QuietHours:
    """No messages between ``start`` (included) and ``end`` (excluded), local time in ``tz``, except for the
    ``exempt`` priorities. The window may wrap midnight (21:00-08:00, the default) or not (13:00-14:00);
    ``start == end`` means no quiet hours. ``start`` and ``end`` are naive (local) times."""

    start: time = time(21, 0)
    end: time = time(8, 0)
    tz: tzinfo = CHINA
    exempt: frozenset[Priority] = frozenset({Priority.P1})

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours start and end are local times without a timezone (give tz instead)")

    def is_quiet(self, at: datetime) -> bool:
        """Whether ``at`` (aware) falls in the window, in local time."""
        local = _aware(at).astimezone(self.tz).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def send_after(self, at: datetime, priority: Priority) -> datetime:
        """When a message asked for at ``at`` (aware) may go: ``at`` itself when ``priority`` is exempt or
        it is not quiet then; otherwise the next local ``end`` (today's if before it, else tomorrow's), in UTC."""
        if priority in self.exempt or not self.is_quiet(at):
            return at
        local = at.astimezone(self.tz)
        day = local.date() if local.time() < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=self.tz).astimezone(UTC)


_PREFERENCES: dict[str, MessageChannel] = {"sms": "sms", "email": "email", "wechat": "wechat", "app": "app"}
_BY_COMPLAINT_CHANNEL: dict[Channel, MessageChannel] = {
    Channel.APP: "app",
    Channel.WECHAT: "wechat",
    Channel.EMAIL: "email",
}


def message_channel(complaint_channel: Channel, notify_by: str | None, has_email: bool) -> MessageChannel:
    """Where messages go: the customer's ``notify_by`` when usable (email only with an address), else by
    the channel the complaint came in (app, WeChat, email with an address); SMS for everything else."""
    preferred = _PREFERENCES.get(notify_by) if notify_by else None
    if preferred is not None and (preferred != "email" or has_email):
        return preferred
    chosen = _BY_COMPLAINT_CHANNEL.get(complaint_channel, "sms")
    return "sms" if chosen == "email" and not has_email else chosen


def message_language(notify_language: str | None, complaint_language: str | None) -> Language:
    """The customer's ``notify_language`` (zh or en); else en only for a complaint written in English
    (``mixed`` and unknown read as zh)."""
    if notify_language == "zh":
        return "zh"
    if notify_language == "en":
        return "en"
    return "en" if complaint_language == "en" else "zh"


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_local(dt: datetime, language: Language, tz: tzinfo = CHINA) -> str:
    """A time (aware) as messages show it, in local time: zh ``2026年12月3日 18:00``, en ``3 Dec 2026 18:00``."""
    local = _aware(dt).astimezone(tz)
    if language == "zh":
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
    if language == "en":
        return f"{local.day} {_MONTHS[local.month - 1]} {local.year} {local:%H:%M}"
    raise ValueError(f"unknown language {language!r}; expected zh or en")
