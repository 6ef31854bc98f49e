"""The one place that reads configuration.

Values come, in increasing precedence, from the defaults below, an optional
TOML file (``--config``, ``COMPLAINTS_CONFIG`` or ``./complaints.toml``) and
environment variables named ``COMPLAINTS_<FIELD>`` in upper case (for example
``COMPLAINTS_KAFKA_BOOTSTRAP``). Nothing else in the code base reads
``os.environ``; everything receives a :class:`Settings` value.

Secrets (:data:`SECRET_FIELDS`) are :class:`pydantic.SecretStr`: they print as
``**********`` in a repr, a log line or ``model_dump_json``; code that needs the
value calls ``.get_secret_value()``.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources import InitSettingsSource

PREFIX = "COMPLAINTS_"
#: The built-in customer-key secret: fine on a laptop, refused by workers on a real cluster.
DEV_CUSTOMER_SECRET = "dev-only-customer-key-secret-change-me"
SECRET_FIELDS = ("kafka_sasl_password", "customer_key_secret")
#: The shortest customer-key secret a worker accepts on a cluster off this machine.
MIN_SECRET_CHARS = 32

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


class UnsafeWorkerStart(SettingsError):
    """A worker was about to process real data with development-only settings.

    A :class:`SettingsError`, so a command that reports bad settings reports this too."""


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "complaint-stream"


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "complaint-stream"


def bootstrap_hosts(bootstrap: str) -> list[str]:
    """The host part of each ``host:port`` (``[v6]:port``, ``scheme://host:port``) in a bootstrap list."""
    hosts = []
    for item in bootstrap.split(","):
        entry = item.strip()
        if not entry:
            continue
        entry = entry.split("://", 1)[-1]
        if entry.startswith("["):
            host = entry[1:].split("]", 1)[0]
        elif entry.count(":") > 1:  # a bare IPv6 address without a port
            host = entry
        else:
            host = entry.rsplit(":", 1)[0] if ":" in entry else entry
        hosts.append(host)
    return hosts


def is_loopback_host(host: str) -> bool:
    """``localhost`` (and ``*.localhost``), 127.0.0.0/8 or ::1."""
    name = host.strip().lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Every tunable of the product. Field names map to ``COMPLAINTS_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX,
        case_sensitive=False,
        extra="forbid",
        frozen=True,
        coerce_numbers_to_str=True,  # `kafka_client_id = 7` in TOML is the string "7", as before
        hide_input_in_errors=True,  # errors never echo a value (it may be a secret)
    )

    # --- Kafka connection ---------------------------------------------------
    #: Bootstrap servers of an existing cluster. Empty: use the local broker
    #: that ``complaints kafka start`` provisions on 127.0.0.1.
    kafka_bootstrap: str = ""
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: str = ""  # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    kafka_client_id: str = "complaint-stream"
    #: Replication factor for every topic; 0 = the catalogue's value, capped to 1 on the local broker.
    topic_replication_factor: int = 0
    #: How long a command waits to reach the cluster (connect and first metadata) before it gives up with
    #: one line naming the cluster; also the longest a producer's send waits for a topic's metadata.
    kafka_connect_timeout_seconds: float = Field(default=10.0, gt=0, le=600)

    # --- Local broker (only used when kafka_bootstrap is empty) --------------
    kafka_version: str = "4.1.1"
    local_kafka_port: int = 19092
    local_controller_port: int = 19093
    local_kafka_heap: str = "1g"
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    state_dir: Path = Field(default_factory=_default_state_dir)

    # --- Domain policy --------------------------------------------------------
    #: HMAC secret that turns a phone number into the customer key used for re-keying.
    customer_key_secret: SecretStr = SecretStr(DEV_CUSTOMER_SECRET)
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
    lifecycle_policy: str = ""  # path of a lifecycle.json; empty = packaged defaults
    lifecycle_transitions: str = ""  # path of a transitions.json; empty = packaged table
    message_templates: str = ""  # path of a templates.json for customer messages; empty = packaged
    roster: str = ""  # path of a roster.json (teams, agents, routing rules); empty = packaged
    sla_policy: str = ""  # path of an SLA policy.json (clocks, targets, escalation ladder); empty = packaged
    sla_calendar: str = ""  # path of a working calendar file (days added or overridden); empty = official days
    review_confidence: float = 0.55

    # --- Workers --------------------------------------------------------------
    metrics_host: str = "127.0.0.1"
    #: Port for a worker's /metrics; 0 = the worker's default port.
    metrics_port: int = 0
    log_level: str = "INFO"
    #: A batch is handed to the stage when it has this many records, or after
    #: this long without filling up (the extra latency at low rates).
    batch_max_records: int = 500
    batch_max_wait_ms: float = 10.0
    #: The producer waits this long to fill a request (fewer, larger produce requests).
    producer_linger_ms: float = 5.0
    #: Offsets are committed every N acknowledged records or every interval, whichever first.
    commit_every: int = 1000
    commit_interval_seconds: float = 2.0
    #: This process's identity in its consumer group (static membership, KIP-345): a worker restarted
    #: with the same value gets its partitions back at once, without a rebalance. Two live processes
    #: of one worker must never share it. Empty = dynamic membership. The launcher sets it.
    worker_instance: str = ""
    #: A member that sends no heartbeat for this long is dropped and its partitions move on;
    #: heartbeats go out every ``consumer_heartbeat_seconds``.
    consumer_session_timeout_seconds: float = 6.0  # the broker's minimum (group.min.session.timeout.ms)
    consumer_heartbeat_seconds: float = 1.5

    @field_validator("cache_dir", "state_dir", mode="after")
    @classmethod
    def _expand_user(cls, value: Path) -> Path:
        return value.expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """``Settings()``: keyword arguments, then ``COMPLAINTS_*``, then the TOML file (no .env, no secrets dir)."""
        return (init_settings, env_settings, TomlFileSource(settings_cls, config_path(os.environ)))

    # --- derived ----------------------------------------------------------------
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

    @property
    def uses_loopback_cluster(self) -> bool:
        """True when every bootstrap host is on this machine (localhost, 127.0.0.0/8, ::1)."""
        hosts = bootstrap_hosts(self.bootstrap)
        return bool(hosts) and all(is_loopback_host(h) for h in hosts)

    @property
    def uses_dev_customer_secret(self) -> bool:
        return self.customer_key_secret.get_secret_value() == DEV_CUSTOMER_SECRET

    def check_production_safety(self) -> list[str]:
        """Why a worker must not start with these settings; empty when it may."""
        problems = []
        if self.uses_dev_customer_secret and not self.uses_loopback_cluster:
            problems.append(
                f"the cluster {self.bootstrap} is not on this machine, but {PREFIX}CUSTOMER_KEY_SECRET is the"
                " built-in development secret: customer keys (HMAC of phone numbers) would be computable by"
                f" anyone who has the source. Set {PREFIX}CUSTOMER_KEY_SECRET (or customer_key_secret in the"
                " config file) to a long random value kept secret, the same for every worker."
            )
        elif len(self.customer_key_secret.get_secret_value()) < MIN_SECRET_CHARS and not self.uses_loopback_cluster:
            problems.append(
                f"{PREFIX}CUSTOMER_KEY_SECRET is shorter than {MIN_SECRET_CHARS} characters: with a short secret"
                " the customer keys (HMAC of phone numbers) can be brute-forced. Use a long random value,"
                " e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
            )
        return problems

    def refuse_unsafe_worker_start(self) -> None:
        """Raise :class:`UnsafeWorkerStart` (with the reasons) when a worker must not start."""
        problems = self.check_production_safety()
        if problems:
            raise UnsafeWorkerStart("refusing to start the worker: " + " ".join(problems))

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields changed, validated like the original."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        values.update(changes)
        try:
            return type(self).model_validate(values)
        except ValidationError as exc:
            raise SettingsError(_describe(exc, None)) from exc


class MappingEnvSource(EnvSettingsSource):
    """``COMPLAINTS_*`` variables from a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items() if k.upper().startswith(PREFIX)}


class TomlFileSource(InitSettingsSource):
    """The TOML config file; a missing named file, bad TOML or an unknown key is a :class:`SettingsError`."""

    def __init__(self, settings_cls: type[BaseSettings], path: str | os.PathLike[str] | None):
        self.path = path
        super().__init__(settings_cls, self._read(settings_cls, path))

    @staticmethod
    def _read(settings_cls: type[BaseSettings], path: str | os.PathLike[str] | None) -> dict[str, Any]:
        if not path:
            return {}
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise SettingsError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path}: {exc}") from exc
        for key in data:
            if key not in settings_cls.model_fields:
                raise SettingsError(f"config file {path}: unknown setting {key!r}")
        return data


def config_path(environ: Mapping[str, str], config_file: str | os.PathLike[str] | None = None
                ) -> str | os.PathLike[str] | None:
    """``--config``, else ``COMPLAINTS_CONFIG``, else ``./complaints.toml`` when it exists."""
    return config_file or environ.get(PREFIX + "CONFIG") or (
        "complaints.toml" if Path("complaints.toml").is_file() else None
    )


def _describe(exc: ValidationError, path: str | os.PathLike[str] | None) -> str:
    """One line per bad field, naming its variable; the value only when it is not a secret."""
    parts = []
    for err in exc.errors(include_url=False):
        name = str(err["loc"][0]) if err["loc"] else ""
        where = f"{PREFIX}{name.upper()}" + (f" (or {name} in {path})" if path else "")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown setting"
        elif name not in SECRET_FIELDS and isinstance(err.get("input"), (str, int, float)):
            msg += f", not {str(err['input'])[:60]!r}"
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def load_settings(
    environ: Mapping[str, str] | None = None, config_file: str | os.PathLike[str] | None = None
) -> Settings:
    """Build settings from defaults, the config file and the environment (the environment wins)."""
    env = os.environ if environ is None else environ
    path = config_path(env, config_file)
    toml_values = TomlFileSource(Settings, path)()
    env_values = MappingEnvSource(Settings, env)()
    try:
        return Settings.model_validate({**toml_values, **env_values})
    except ValidationError as exc:
        raise SettingsError(_describe(exc, path)) from exc


def to_environ(settings: Settings) -> dict[str, str]:
    """The ``COMPLAINTS_*`` variables that reproduce ``settings`` in a child process (secrets revealed)."""
    out = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        out[PREFIX + name.upper()] = str(value)
    return out
