"""The one place that reads configuration.

Values come, in increasing precedence, from the defaults below, an optional
TOML file (``COMPLAINTS_CONFIG`` or ``./complaints.toml``) and environment
variables named ``COMPLAINTS_<FIELD>`` in upper case (for example
``COMPLAINTS_KAFKA_BOOTSTRAP``). Nothing else in the code base reads
``os.environ``; everything receives a :class:`Settings` value.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

PREFIX = "COMPLAINTS_"
DEV_CUSTOMER_SECRET = "dev-only-customer-key-secret-change-me"


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "complaint-stream"


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "complaint-stream"


@dataclass(frozen=True)
class Settings:
    """Every tunable of the product. Field names map to ``COMPLAINTS_<NAME>``."""

    # --- Kafka connection ---------------------------------------------------
    #: Bootstrap servers of an existing cluster. Empty: use the local broker
    #: that ``complaints kafka start`` provisions on 127.0.0.1.
    kafka_bootstrap: str = ""
    kafka_security_protocol: str = "PLAINTEXT"  # PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
    kafka_sasl_mechanism: str = ""  # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    kafka_client_id: str = "complaint-stream"
    #: Replication factor for every topic; 0 = the catalogue's value, capped to 1 on the local broker.
    topic_replication_factor: int = 0

    # --- Local broker (only used when kafka_bootstrap is empty) --------------
    kafka_version: str = "4.1.1"
    local_kafka_port: int = 19092
    local_controller_port: int = 19093
    local_kafka_heap: str = "1g"
    cache_dir: Path = field(default_factory=_default_cache_dir)
    state_dir: Path = field(default_factory=_default_state_dir)

    # --- Domain policy --------------------------------------------------------
    #: HMAC secret that turns a phone number into the customer key used for re-keying.
    customer_key_secret: str = DEV_CUSTOMER_SECRET
    dedup_window_days: float = 7.0
    repeat_window_days: float = 30.0
    max_text_chars: int = 4000
    max_future_skew_minutes: float = 10.0
    max_age_days: float = 365.0
    classifier_rules: str = ""  # path; empty = packaged rules
    classifier_model: str = ""  # path of a model trained with `complaints classifier train`
    #: The model is asked only when the rules' top two categories are closer
    #: than this (probability difference); above 1 = always.
    classifier_model_margin: float = 0.6
    priority_rules: str = ""  # path; empty = packaged rules
    review_confidence: float = 0.55

    # --- Workers --------------------------------------------------------------
    metrics_host: str = "127.0.0.1"
    #: Port for a worker's /metrics; 0 = the worker's default port.
    metrics_port: int = 0
    worker_concurrency: int = 1
    log_level: str = "INFO"

    @property
    def uses_local_broker(self) -> bool:
        return not self.kafka_bootstrap

    @property
    def local_bootstrap(self) -> str:
        return f"127.0.0.1:{self.local_kafka_port}"

    @property
    def bootstrap(self) -> str:
        """The bootstrap address every client uses."""
        return self.kafka_bootstrap or self.local_bootstrap

    def with_overrides(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


def to_environ(settings: Settings) -> dict[str, str]:
    """The ``COMPLAINTS_*`` variables that reproduce ``settings`` in a child process."""
    return {PREFIX + f.name.upper(): str(getattr(settings, f.name)) for f in dataclasses.fields(settings)}


def _coerce(name: str, raw: Any, typ: Any) -> Any:
    try:
        if typ in (int, "int"):
            return int(raw)
        if typ in (float, "float"):
            return float(raw)
        if typ in (Path, "Path"):
            return Path(str(raw)).expanduser()
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{PREFIX}{name.upper()}: cannot read {raw!r} as {typ}") from exc


def load_settings(
    environ: Mapping[str, str] | None = None, config_file: str | os.PathLike | None = None
) -> Settings:
    """Build settings from defaults, the config file and the environment."""
    env = os.environ if environ is None else environ
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}

    path = config_file or env.get(PREFIX + "CONFIG") or (
        "complaints.toml" if Path("complaints.toml").is_file() else None
    )
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise SettingsError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path}: {exc}") from exc
        for key, raw in data.items():
            if key not in fields:
                raise SettingsError(f"config file {path}: unknown setting {key!r}")
            values[key] = _coerce(key, raw, fields[key].type)

    for name, f in fields.items():
        raw = env.get(PREFIX + name.upper())
        if raw is not None:
            values[name] = _coerce(name, raw, f.type)

    settings = Settings(**values)
    if settings.kafka_security_protocol not in {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}:
        raise SettingsError(
            f"{PREFIX}KAFKA_SECURITY_PROTOCOL must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL,"
            f" not {settings.kafka_security_protocol!r}"
        )
    return settings
