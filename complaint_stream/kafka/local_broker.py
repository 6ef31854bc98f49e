"""A real single-node Apache Kafka (KRaft) broker on 127.0.0.1, assembled from Maven Central jars.

Used by ``complaints kafka start|stop|status`` when no external cluster is
configured, and by the test suite for a throwaway broker on free ports.
The recipe: the broker's jars from Maven Central, one KRaft node (broker and controller) on loopback.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class BrokerLayout:
    """Where one broker keeps its files, and the ports it listens on."""

    home: Path
    port: int
    controller_port: int
    heap: str = "1g"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

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
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{c}",
            f"listeners=PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}",
            "inter.broker.listener.name=PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
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


def wait_until_ready(bootstrap: str, timeout: float = 90.0, proc_pid: int | None = None) -> float:
    """Block until a metadata request to ``bootstrap`` succeeds; return the seconds waited."""
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
                                     client_id="complaint-stream-readiness")
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
            wait_until_ready(self.layout.bootstrap, timeout=timeout, proc_pid=pid)
            return StartReport(self.layout.bootstrap, pid, already_running=True,
                               jars_seconds=0.0, start_seconds=time.monotonic() - t0)
        self._check_ports_free()
        libdir = ensure_jars(self.cache_dir, self.kafka_version)
        jars_seconds = time.monotonic() - t0
        java = _require("java", "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)")

        lay = self.layout
        lay.home.mkdir(parents=True, exist_ok=True)
        lay.properties_file.write_text(lay.server_properties(), encoding="utf-8")
        log4j = lay.home / "log4j2.properties"
        log4j.write_text(_LOG4J2_PROPERTIES, encoding="utf-8")
        classpath = f"{libdir}/*"
        log_opt = f"-Dlog4j2.configurationFile={log4j}"
        if not (lay.data_dir / "meta.properties").exists():
            lay.data_dir.mkdir(parents=True, exist_ok=True)
            fmt = subprocess.run(
                [java, log_opt, "-cp", classpath, "kafka.tools.StorageTool", "format",
                 "-t", new_cluster_id(), "-c", str(lay.properties_file), "--ignore-formatted"],
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
            wait_until_ready(lay.bootstrap, timeout=timeout, proc_pid=proc.pid)
        except BrokerError as exc:
            self.stop()
            raise BrokerError(f"{exc}; see {lay.log_file}") from exc
        return StartReport(lay.bootstrap, proc.pid, already_running=False,
                           jars_seconds=jars_seconds, start_seconds=time.monotonic() - t0)

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
        for port in (self.layout.port, self.layout.controller_port):
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


def ephemeral_broker(root: Path, cache_dir: Path, kafka_version: str, heap: str = "768m") -> LocalBroker:
    """A broker on free ports with a fresh data directory under ``root`` (for tests and benches)."""
    layout = BrokerLayout(home=root, port=free_port(), controller_port=free_port(), heap=heap)
    return LocalBroker(layout, cache_dir, kafka_version)
