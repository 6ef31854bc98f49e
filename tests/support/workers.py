"""Run the real workers (``complaints worker NAME``) as subprocesses against the test broker."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from complaint_stream.kafka.local_broker import free_port
from tests.support.cli import REPO, settings_env


def scrape(port: int) -> dict[str, float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


@contextmanager
def running_workers(settings, names, log_dir: Path):
    procs = {}
    ports = {}
    try:
        for name in names:
            port = free_port()
            env = settings_env(settings.with_overrides(metrics_port=port))
            log = open(log_dir / f"{name}.log", "wb")
            procs[name] = (subprocess.Popen([sys.executable, "-m", "complaint_stream.cli.main", "worker", name],
                                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT), log)
            ports[name] = port
        deadline = time.monotonic() + 60
        for name, port in ports.items():
            while True:
                assert procs[name][0].poll() is None, (log_dir / f"{name}.log").read_text()[-3000:]
                try:
                    scrape(port)
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"worker {name} exposed no metrics in 60s"
                    time.sleep(0.3)
        yield ports
    finally:
        for proc, _log in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, log in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
