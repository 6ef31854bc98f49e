"""The faust fixes install on the pinned faust-streaming only, and every app the runtime makes has them.
Their effect is tested against a real broker in tests/integration/test_restart.py."""

from __future__ import annotations

import pytest

from complaint_stream.workers import faust_fixes
from complaint_stream.workers.runtime import make_app


def test_making_an_app_installs_the_fixes(base_settings, tmp_path):
    make_app("fixes-test", base_settings.with_overrides(state_dir=str(tmp_path)))
    assert faust_fixes.applied()


def test_another_faust_version_is_refused_rather_than_patched_blindly(monkeypatch):
    monkeypatch.setattr(faust_fixes, "version", lambda _name: "0.16.0")
    with pytest.raises(faust_fixes.UntestedFaustVersion, match="0.16.0"):
        faust_fixes.apply()


async def test_an_empty_partition_set_fetches_nothing_and_a_live_set_is_copied(monkeypatch):
    seen = []

    async def original(self, active, timeout):
        seen.append(active)
        return {"fetched": True}

    monkeypatch.setattr(faust_fixes, "_original_getmany", original)
    live = {"tp0"}
    assert await faust_fixes._getmany(None, set(), 1.0) == {}
    assert await faust_fixes._getmany(None, live, 1.0) == {"fetched": True}
    assert seen == [{"tp0"}] and seen[0] is not live
