"""Run the real ``complaints`` command in a subprocess with settings passed by environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from complaint_stream.settings import Settings, to_environ

REPO = Path(__file__).resolve().parents[2]


def settings_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTS_")}
    env.update(to_environ(settings))
    env["PYTHONPATH"] = str(REPO)
    return env


def run_cli(settings: Settings, *args: str, input: str | None = None, timeout: float = 120):
    return subprocess.run([sys.executable, "-m", "complaint_stream.cli.main", *args], cwd=REPO,
                          env=settings_env(settings), input=input, capture_output=True, text=True,
                          timeout=timeout)
