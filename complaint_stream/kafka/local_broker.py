"""A real single-node Apache Kafka (KRaft) broker on 127.0.0.1, assembled from Maven Central jars.

Used by ``complaints kafka start|stop|status`` when no external cluster is
configured, and by the test suite for a throwaway broker on free ports.
The recipe: the broker's jars from Maven Central, one KRaft node (broker and controller) on loopback.

Optionally (:class:`BrokerSecurity`) the broker also listens for clients with SASL_SSL (SCRAM) on a
third loopback port, with a certificate the caller provides and SCRAM users written into the cluster
metadata when the data directory is formatted.
"""

from __future__ import annotations

import base64
import fcntl
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from complaint_stream.kafka import kafka_python_fixes
from complaint_stream.settings import Settings

# Kafka's POMs leave out the slf4j->log4j binding; its version follows Kafka's log4j.
_LOG4J_FOR_KAFKA = {"4.1": "2.24.3", "4.2": "2.25.3", "4.3": "2.25.4"}
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

_LOG4J2_PROPERTIES = """\
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
logger.srv.name = kafka.server.KafkaRaftServer
logger.srv.level = INFO
"""


class BrokerError(RuntimeError):
    """The local broker could not be provisioned, started or reached."""


def _pom(kafka_version: str) -> str:
    minor = ".".join(kafka_version.split(".")[:2])
    log4j = _LOG4J_FOR_KAFKA.get(minor)
    if log4j is None:
        raise BrokerError(
            f"Kafka {kafka_version} is not supported by the local broker provisioner;"
            f" use one of {', '.join(sorted(_LOG4J_FOR_KAFKA))}.x"
        )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.complaintstream</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>{kafka_version}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka_version}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
"""


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise BrokerError(f"`{tool}` was not found on PATH; {hint}")
    return path


def ensure_jars(cache_dir: Path, kafka_version: str, maven_repo: Path | None = None) -> Path:
    """Download the broker's jars once into ``cache_dir`` and return the library directory.

    ``maven_repo`` overrides Maven's local repository (~/.m2/repository), e.g. to measure a cold start.
    """
    home = cache_dir / f"kafka-{kafka_version}"
    libdir = home / "libs"
    marker = home / ".complete"
    if marker.is_file() and any(libdir.glob("kafka_2.13-*.jar")):
        return libdir
    cache_dir.mkdir(parents=True, exist_ok=True)
    # one download at a time: two commands (or two test processes) starting on a fresh machine would
    # otherwise both write (and one delete) the same library directory
    with open(cache_dir / f"kafka-{kafka_version}.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file() and any(libdir.glob("kafka_2.13-*.jar")):
            return libdir  # the other one finished it
        return _download_jars(home, libdir, marker, kafka_version, maven_repo)


def _download_jars(home: Path, libdir: Path, marker: Path, kafka_version: str, maven_repo: Path | None) -> Path:
    _require("java", "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)")
    mvn = _require("mvn", "install Apache Maven (Debian: apt-get install maven)")
    home.mkdir(parents=True, exist_ok=True)
    (home / "pom.xml").write_text(_pom(kafka_version), encoding="utf-8")
    if libdir.exists():
        shutil.rmtree(libdir)
    cmd = [
        mvn, "-B", "-q", "-f", str(home / "pom.xml"),
        f"{_DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={libdir}",
    ]
    if maven_repo is not None:
        cmd.append(f"-Dmaven.repo.local={maven_repo}")
    with open(home / "maven.log", "w", encoding="utf-8") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0 or not any(libdir.glob("kafka_2.13-*.jar")):
        raise BrokerError(
            f"Maven could not fetch the Kafka {kafka_version} jars (exit {proc.returncode});"
            f" see {home / 'maven.log'}"
        )
    marker.write_text(kafka_version, encoding="utf-8")
    return libdir


def new_cluster_id() -> str:
    """16 random bytes, URL-safe base64 without padding, never starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


#: The kernel's range of ports for outgoing connections (and for binding port 0).
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: Linux's default, used when the file is absent or unreadable.
DEFAULT_EPHEMERAL_RANGE = (32768, 60999)
#: Ports below this are left alone (well-known and commonly configured service ports, the local
#: broker's default 19092/19093).
LOWEST_TEST_PORT = 20000
_handed_out: set[int] = set()  # never hand the same port out twice in one process


def ephemeral_port_range(path: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """``(first, last)`` of the kernel's ephemeral port range; Linux's default when ``path`` is unusable."""
    try:
        first, last = (int(v) for v in path.read_text(encoding="ascii").split()[:2])
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL_RANGE
    if not 1 <= first <= last <= 65535:
        return DEFAULT_EPHEMERAL_RANGE
    return first, last


def _port_bindable(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a listener could bind ``host:port`` now (no SO_REUSEADDR: a port in TIME_WAIT counts as taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(*, ephemeral: tuple[int, int] | None = None, range_file: Path = EPHEMERAL_RANGE_FILE,
              rng: random.Random | None = None, attempts: int = 500) -> int:
    """A random port on 127.0.0.1 that can be bound now and lies outside the kernel's ephemeral range.

    Binding port 0 would take a port from the ephemeral range, where a client's own outgoing
    connection can take it first (a connect retry to a closed local port can even connect the port
    to itself), keeping a restarted broker from binding it. So the port is drawn at random from the
    ports below the range (from 20000 up; from 1024 below its start when it starts lower) and above
    it, and checked by binding it. With Linux's default range that is 20000-32767 and 61000-65535:
    random choice spreads concurrent test sessions over ~17,000 ports, and within one process a port
    is never handed out twice. ``ephemeral`` (or ``range_file``) overrides the range read from /proc.
    """
    first, last = ephemeral if ephemeral is not None else ephemeral_port_range(range_file)
    floor = max(1024, min(LOWEST_TEST_PORT, first - 1024))
    below = range(floor, first)
    above = range(last + 1, 65536)
    size = len(below) + len(above)
    if size == 0:
        raise BrokerError(f"no port outside the ephemeral range {first}-{last} to listen on")
    rng = rng or random.SystemRandom()
    for _ in range(attempts):
        i = rng.randrange(size)
        port = below[i] if i < len(below) else above[i - len(below)]
        if port not in _handed_out and _port_bindable(port):
            _handed_out.add(port)
            return port
    raise BrokerError(
        f"no free port found on 127.0.0.1 outside the ephemeral range {first}-{last} after {attempts} tries"
    )


ScramMechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512"]
_SCRAM_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]{1,128}")


@dataclass(frozen=True)
class BrokerSecurity:
    """A SASL_SSL client listener with SCRAM users, in addition to the plaintext one.

    ``certfile`` is the broker's certificate (PEM, optionally followed by intermediates; it must name
    127.0.0.1 in its subject alternative names for clients that check host names), ``keyfile`` its
    unencrypted PKCS#8 PEM key (``BEGIN PRIVATE KEY``), ``cafile`` the CA that clients trust.
    ``users`` (name -> password) are created when the data directory is formatted: changing them later
    needs a fresh data directory. Names and passwords are restricted to ``[A-Za-z0-9._~+/-]``.
    """

    cafile: Path
    certfile: Path
    keyfile: Path
    users: Mapping[str, str] = field(repr=False, hash=False)
    mechanism: ScramMechanism = "SCRAM-SHA-512"

    def __post_init__(self) -> None:
        if not self.users:
            raise BrokerError("BrokerSecurity needs at least one SCRAM user")
        for name, password in self.users.items():
            if not (_SCRAM_TOKEN.fullmatch(name) and _SCRAM_TOKEN.fullmatch(password)):
                raise BrokerError(f"SCRAM user {name!r}: names and passwords may only use [A-Za-z0-9._~+/-]")

    def scram_arguments(self) -> list[str]:
        """The ``kafka-storage format`` arguments that create the users."""
        args = []
        for name, password in self.users.items():
            args += ["--add-scram", f"{self.mechanism}=[name={name},password={password}]"]
        return args


@dataclass(frozen=True)
class BrokerLayout:
    """Where one broker keeps its files, and the ports it listens on."""

    home: Path
    port: int
    controller_port: int
    heap: str = "1g"
    #: A SASL_SSL client listener on ``secure_port`` besides the plaintext one on ``port``, which stays
    #: for inter-broker traffic and for the harness (readiness checks, administration without credentials).
    security: BrokerSecurity | None = None
    secure_port: int = 0

    def __post_init__(self) -> None:
        if self.security is not None and not self.secure_port:
            raise BrokerError("a broker with a SASL_SSL listener needs secure_port")

    @property
    def bootstrap(self) -> str:
        """The plaintext listener."""
        return f"127.0.0.1:{self.port}"

    @property
    def secure_bootstrap(self) -> str:
        """The SASL_SSL listener (only with ``security``)."""
        if self.security is None:
            raise BrokerError("this broker has no SASL_SSL listener")
        return f"127.0.0.1:{self.secure_port}"

    @property
    def keystore_file(self) -> Path:
        """The broker's PEM key store (key, then certificate chain), written at start from ``security``."""
        return self.home / "sasl-ssl-keystore.pem"

    def client_overrides(self, username: str) -> dict[str, Any]:
        """Settings fields (for :meth:`Settings.with_overrides`) that connect ``username`` over SASL_SSL."""
        sec = self.security
        if sec is None:
            raise BrokerError("this broker has no SASL_SSL listener")
        if username not in sec.users:
            raise BrokerError(f"no SCRAM user {username!r} on this broker")
        return {"kafka_bootstrap": self.secure_bootstrap, "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": sec.mechanism, "kafka_sasl_username": username,
                "kafka_sasl_password": sec.users[username], "kafka_ssl_cafile": str(sec.cafile)}

    def kafka_python_security(self, username: str) -> dict[str, Any]:
        """kafka-python keyword arguments for ``username`` on the SASL_SSL listener."""
        o = self.client_overrides(username)
        return {"security_protocol": "SASL_SSL", "sasl_mechanism": o["kafka_sasl_mechanism"],
                "sasl_plain_username": username, "sasl_plain_password": o["kafka_sasl_password"],
                "ssl_cafile": o["kafka_ssl_cafile"]}

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    def server_properties(self) -> str:
        p, c = self.port, self.controller_port
        listeners = f"PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}"
        protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        if self.security is not None:
            listeners += f",SASL_SSL://127.0.0.1:{self.secure_port}"
            protocols += ",SASL_SSL:SASL_SSL"
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{c}",
            f"listeners={listeners}",
            f"advertised.listeners={listeners}",
            "inter.broker.listener.name=PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            f"listener.security.protocol.map={protocols}",
            *self._security_properties(),
            f"log.dirs={self.data_dir}",
            "num.partitions=1",
            "default.replication.factor=1",
            "min.insync.replicas=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "log.cleaner.dedupe.buffer.size=2097152",
            "auto.create.topics.enable=false",
            "",
        ])

    def _security_properties(self) -> list[str]:
        sec = self.security
        if sec is None:
            return []
        mech = sec.mechanism
        prefix = "listener.name.sasl_ssl."
        return [
            f"sasl.enabled.mechanisms={mech}",
            f"{prefix}sasl.enabled.mechanisms={mech}",
            f"{prefix}{mech.lower()}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
            f"{prefix}ssl.keystore.type=PEM",
            f"{prefix}ssl.keystore.location={self.keystore_file}",
            f"{prefix}ssl.truststore.type=PEM",
            f"{prefix}ssl.truststore.location={sec.cafile}",
            f"{prefix}ssl.client.auth=none",
        ]

    def write_keystore(self) -> None:
        """The PEM key store Kafka reads: the private key, then the certificate chain (owner-only)."""
        sec = self.security
        if sec is None:
            return
        try:
            key = sec.keyfile.read_text(encoding="ascii")
            chain = sec.certfile.read_text(encoding="ascii")
        except OSError as exc:
            raise BrokerError(f"cannot read the broker's TLS key or certificate: {exc}") from exc
        if "-----BEGIN PRIVATE KEY-----" not in key:
            raise BrokerError(f"{sec.keyfile}: Kafka's PEM key store needs an unencrypted PKCS#8 key"
                              " (-----BEGIN PRIVATE KEY-----)")
        if "-----BEGIN CERTIFICATE-----" not in chain:
            raise BrokerError(f"{sec.certfile}: no PEM certificate")
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.keystore_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key.rstrip("\n") + "\n" + chain.rstrip("\n") + "\n")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _is_kafka(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"kafka.Kafka" in fh.read()
    except OSError:
        return False


def wait_until_ready(bootstrap: str, timeout: float = 90.0, proc_pid: int | None = None,
                     client_options: Mapping[str, Any] | None = None) -> float:
    """Block until a metadata request to ``bootstrap`` succeeds; return the seconds waited.

    ``client_options``: extra kafka-python arguments (security protocol, SASL credentials, CA file)."""
    from kafka import KafkaAdminClient  # adapter import kept local: this module is also used without kafka-python

    host, port = bootstrap.rsplit(":", 1)
    start = time.monotonic()
    last_error: Exception | None = None
    while time.monotonic() - start < timeout:
        if proc_pid is not None and not _pid_alive(proc_pid):
            raise BrokerError("the broker process exited during start-up")
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                pass
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000,
                                     client_id="complaint-stream-readiness", **(client_options or {}))
            try:
                admin.list_topics()
                admin.describe_cluster()
            finally:
                admin.close()
            return time.monotonic() - start
        except Exception as exc:
            last_error = exc
            time.sleep(0.25)
    raise BrokerError(f"broker at {bootstrap} not ready after {timeout:.0f}s: {last_error}")


class LocalBroker:
    """Start, stop and inspect one broker described by a :class:`BrokerLayout`."""

    def __init__(self, layout: BrokerLayout, cache_dir: Path, kafka_version: str):
        self.layout = layout
        self.cache_dir = cache_dir
        self.kafka_version = kafka_version

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBroker:
        layout = BrokerLayout(
            home=settings.state_dir / "kafka",
            port=settings.local_kafka_port,
            controller_port=settings.local_controller_port,
            heap=settings.local_kafka_heap,
        )
        return cls(layout, settings.cache_dir, settings.kafka_version)

    # -- inspection ----------------------------------------------------------------
    def running_pid(self) -> int | None:
        try:
            pid = int(self.layout.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) and _is_kafka(pid) else None

    # -- lifecycle -----------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> StartReport:
        """Start the broker unless it already runs; wait until it answers metadata requests."""
        t0 = time.monotonic()
        pid = self.running_pid()
        if pid is not None:
            self._wait_ready(t0, timeout, pid)
            return StartReport(self.layout.bootstrap, pid, already_running=True,
                               jars_seconds=0.0, start_seconds=time.monotonic() - t0)
        self._check_ports_free()
        libdir = ensure_jars(self.cache_dir, self.kafka_version)
        jars_seconds = time.monotonic() - t0
        java = _require("java", "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)")

        lay = self.layout
        lay.home.mkdir(parents=True, exist_ok=True)
        lay.write_keystore()
        lay.properties_file.write_text(lay.server_properties(), encoding="utf-8")
        log4j = lay.home / "log4j2.properties"
        log4j.write_text(_LOG4J2_PROPERTIES, encoding="utf-8")
        classpath = f"{libdir}/*"
        log_opt = f"-Dlog4j2.configurationFile={log4j}"
        if not (lay.data_dir / "meta.properties").exists():
            lay.data_dir.mkdir(parents=True, exist_ok=True)
            fmt = subprocess.run(
                [java, log_opt, "-cp", classpath, "kafka.tools.StorageTool", "format",
                 "-t", new_cluster_id(), "-c", str(lay.properties_file), "--ignore-formatted",
                 *(lay.security.scram_arguments() if lay.security else [])],
                capture_output=True, text=True, check=False,
            )
            if fmt.returncode != 0:
                raise BrokerError(f"formatting {lay.data_dir} failed: {fmt.stderr.strip() or fmt.stdout.strip()}")

        with open(lay.log_file, "ab") as log:
            proc = subprocess.Popen(
                [java, "-Xms256m", f"-Xmx{lay.heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                 log_opt, "-cp", classpath, "kafka.Kafka", str(lay.properties_file)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the CLI; SIGTERM from `stop` ends it
            )
        lay.pid_file.write_text(str(proc.pid), encoding="ascii")
        try:
            self._wait_ready(t0, timeout, proc.pid)
        except BrokerError as exc:
            self.stop()
            raise BrokerError(f"{exc}; see {lay.log_file}") from exc
        return StartReport(lay.bootstrap, proc.pid, already_running=False,
                           jars_seconds=jars_seconds, start_seconds=time.monotonic() - t0)

    def _wait_ready(self, t0: float, timeout: float, pid: int) -> None:
        """The plaintext listener, then (with security) the SASL_SSL one as its first SCRAM user."""
        lay = self.layout
        wait_until_ready(lay.bootstrap, timeout=timeout, proc_pid=pid)
        if lay.security is not None:
            user = next(iter(lay.security.users))
            kafka_python_fixes.apply()  # a refused login then says so instead of "socket disconnected"
            wait_until_ready(lay.secure_bootstrap, timeout=max(5.0, timeout - (time.monotonic() - t0)),
                             proc_pid=pid, client_options={**lay.kafka_python_security(user),
                                                           "bootstrap_timeout_ms": 5000})

    def stop(self, timeout: float = 45.0) -> bool:
        """Shut the broker down cleanly (SIGTERM, then SIGKILL after ``timeout``). True if one was running."""
        pid = self.running_pid()
        if pid is None:
            self.layout.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _pid_alive(pid):
            self._reap(pid)
            time.sleep(0.2)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            self._reap(pid)
        self.layout.pid_file.unlink(missing_ok=True)
        return True

    def destroy(self) -> None:
        """Stop and delete every file of this broker (for throwaway test brokers)."""
        self.stop(timeout=20)
        shutil.rmtree(self.layout.home, ignore_errors=True)

    @staticmethod
    def _reap(pid: int) -> None:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass

    def _check_ports_free(self) -> None:
        ports = [self.layout.port, self.layout.controller_port]
        if self.layout.security is not None:
            ports.append(self.layout.secure_port)
        for port in ports:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    raise BrokerError(
                        f"port 127.0.0.1:{port} is already in use by another program;"
                        " set COMPLAINTS_LOCAL_KAFKA_PORT / COMPLAINTS_LOCAL_CONTROLLER_PORT,"
                        " or point COMPLAINTS_KAFKA_BOOTSTRAP at that cluster"
                    )


@dataclass(frozen=True)
class StartReport:
    """What ``start`` did, with timings for the operator."""

    bootstrap: str
    pid: int
    already_running: bool
    jars_seconds: float
    start_seconds: float


def ephemeral_broker(root: Path, cache_dir: Path, kafka_version: str, heap: str = "768m",
                     security: BrokerSecurity | None = None) -> LocalBroker:
    """A broker on free ports (outside the ephemeral range) with a fresh data directory under ``root``
    (for tests and benches); with ``security``, also a SASL_SSL listener on a third port."""
    layout = BrokerLayout(home=root, port=free_port(), controller_port=free_port(), heap=heap,
                          security=security, secure_port=free_port() if security is not None else 0)
    return LocalBroker(layout, cache_dir, kafka_version)
