"""Start registered workers as their own processes, wait until they report ready, stop them.

Used by ``complaints run``, the integration tests and the benches, so all of
them wait on ``/readyz`` (partitions assigned, tables recovered) instead of
sleeping and hoping.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from complaint_stream.settings import Settings, to_environ
from complaint_stream.workers.registry import get


class WorkerFailed(RuntimeError):
    """A worker exited, or did not become ready in time."""


@dataclass
class WorkerProcess:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""


def start_workers(settings: Settings, names: Iterable[str], log_dir: Path, *,
                  ports: Mapping[str, int] | None = None, extra_env: Mapping[str, str] | None = None,
                  log_prefix: str = "worker-", instance: int = 0) -> list[WorkerProcess]:
    """Start each named worker (``complaints worker NAME``) with its registry port unless given one.
    Each gets a static group membership id (``<host>-<instance>`` unless the settings name one), so a
    restarted worker takes its partitions back without a rebalance; start a second set of the same
    workers with another ``instance``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **to_environ(settings), **(extra_env or {})}
    if not env.get("COMPLAINTS_WORKER_INSTANCE"):
        env["COMPLAINTS_WORKER_INSTANCE"] = f"{socket.gethostname()}-{instance}"
    started = []
    for name in names:
        entry = get(name)
        port = (ports or {}).get(name) or entry.metrics_port
        log = log_dir / f"{log_prefix}{name}.log"
        with open(log, "ab") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "complaint_stream.cli.main", "worker", name],
                                    stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                    env={**env, "COMPLAINTS_METRICS_PORT": str(port)})
        started.append(WorkerProcess(name, port, proc, log))
    return started


def readiness(worker: WorkerProcess) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(f"{worker.url}/readyz", timeout=2) as resp:
            return resp.status == 200, resp.read().decode().strip()
    except urllib.error.HTTPError as exc:
        return False, exc.read().decode().strip()
    except OSError as exc:
        return False, f"no answer ({exc})"


def wait_ready(workers: Iterable[WorkerProcess], timeout: float = 120.0) -> None:
    """Return once every worker answers 200 on ``/readyz``; raise if one exits or time runs out."""
    deadline = time.monotonic() + timeout
    for worker in workers:
        while True:
            if worker.proc.poll() is not None:
                raise WorkerFailed(f"worker {worker.name} exited with {worker.proc.returncode}:\n{worker.tail()}")
            ready, why = readiness(worker)
            if ready:
                break
            if time.monotonic() > deadline:
                raise WorkerFailed(f"worker {worker.name} not ready after {timeout:.0f}s ({why}):\n{worker.tail()}")
            time.sleep(0.2)


def stop_workers(workers: Iterable[WorkerProcess], timeout: float = 30.0) -> None:
    """SIGTERM (finish the batch, commit, leave the group), then SIGKILL after ``timeout``."""
    workers = list(workers)
    for w in workers:
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait()
