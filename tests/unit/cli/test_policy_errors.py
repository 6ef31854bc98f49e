"""A bad operator-edited policy file stops a command with what is wrong, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_a_misspelled_category_in_the_priority_rules_is_one_clear_error(tmp_path):
    bad = tmp_path / "priority.json"
    bad.write_text('{"category_baseline": {"netwrok": "P3"}}', encoding="utf-8")
    env = {**os.environ, "COMPLAINTS_PRIORITY_RULES": str(bad)}
    done = subprocess.run([sys.executable, "-m", "complaint_stream.cli.main", "classify", "-"], input='{"text": "没信号"}',
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f'{bad}: category_baseline.netwrok (key): unknown category "netwrok"' in done.stderr
