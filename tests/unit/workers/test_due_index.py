"""The timer index and the due prefix of stored states (``complaint_stream.workers.due_index``), without faust."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from complaint_stream.domain.stage import ALWAYS
from complaint_stream.workers.due_index import (
    PREFIX_LEN,
    UNKNOWN,
    DueIndex,
    pack,
    peek,
    prefix,
    state_bytes,
    unpack,
)
from complaint_stream.workers.wiring import StateCodec

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
S = timedelta(seconds=1)


@dataclass(frozen=True)
class Case:
    cid: str
    due_at: datetime | None


# -- the prefix ------------------------------------------------------------------------------------

@pytest.mark.parametrize("due", [None, ALWAYS, UNKNOWN, T0, T0 + timedelta(milliseconds=1),
                                 datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)])
def test_pack_and_unpack_round_trip(due):
    raw = b'{"cid":"CMP-1"}'
    value = pack(due, raw)
    assert len(value) == PREFIX_LEN + len(raw) and value.endswith(raw)
    assert unpack(value) == (due, raw)
    assert peek(value) == due
    assert state_bytes(value) == raw


@given(st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(UTC)))
def test_a_stored_due_is_never_later_than_the_stages_and_at_most_a_millisecond_earlier(due):
    back = peek(pack(due, b"{}"))
    assert isinstance(back, datetime) and back <= due and due - back < timedelta(milliseconds=1)


def test_a_due_before_1970_reads_as_1970_both_have_passed():
    assert peek(pack(datetime(1960, 5, 1, tzinfo=UTC), b"{}")) == datetime(1970, 1, 1, tzinfo=UTC)
    assert peek(pack(datetime(2026, 1, 1), b"{}")) == datetime(2026, 1, 1, tzinfo=UTC)  # naive: UTC


@pytest.mark.parametrize("old", [b'{"cid":"CMP-1"}', b"[1,2]", b'"text"', b"12", b"true", b"null", b"",
                                 b"\x00\x01binary", b'  {"cid":"CMP-1"}', b" " * (PREFIX_LEN - 1),
                                 b"\t" * 10 + b"x" * 20])
def test_a_value_without_the_prefix_reads_as_itself_with_its_due_unknown(old):
    assert unpack(old) == (UNKNOWN, old)
    assert peek(old) is UNKNOWN
    assert state_bytes(old) == old
    assert state_bytes(None) is None


def test_the_prefix_is_json_whitespace_so_every_json_reader_still_reads_the_state():
    """``complaints show --from changelog``, the fault suite and anything else consuming a changelog parse the
    value as JSON: the prefix must not stop them."""
    codec = StateCodec(Case)
    case = Case("CMP-1", T0)
    value = pack(T0 + 5 * S, codec.dumps(case))
    assert set(prefix(T0)) <= set(b" \t\n\r")
    assert json.loads(value) == {"cid": "CMP-1", "due_at": "2026-12-01T08:00:00Z"}
    assert codec.loads(value) == case
    assert codec.loads(unpack(value)[1]) == case


# -- the index -------------------------------------------------------------------------------------

def test_only_the_keys_due_are_popped_earliest_first():
    index = DueIndex()
    for n, at in enumerate([T0 + 30 * S, T0 + 10 * S, T0 + 20 * S, T0 + 40 * S]):
        index.set(f"k{n}", at)
    index.set("idle", None)
    assert index.pop_due(T0 + 5 * S) == []
    assert index.pop_due(T0 + 25 * S) == ["k1", "k2"]
    assert index.pop_due(T0 + 25 * S) == []  # a popped key is out until it is set again
    assert index.pop_due(T0 + 365 * 86400 * S) == ["k0", "k3"]
    assert "idle" in index and len(index) == 1 and index.due_of("idle") is None


def test_always_is_due_at_every_sweep():
    index = DueIndex()
    index.set("team", ALWAYS)
    for _ in range(3):
        assert index.pop_due(T0) == ["team"]
        index.set("team", ALWAYS)


def test_a_changed_due_leaves_a_stale_entry_that_is_skipped():
    index = DueIndex()
    index.set("k", T0 + 10 * S)
    index.set("k", T0 + 60 * S)  # later: the entry at +10 s is stale
    assert index.heap_size == 2
    assert index.pop_due(T0 + 30 * S) == []
    assert index.heap_size == 1  # the stale entry went when it reached the top
    index.set("k", T0 + 5 * S)  # earlier
    assert index.pop_due(T0 + 90 * S) == ["k"]  # once, though two entries were due
    assert index.heap_size == 0


def test_a_discarded_key_or_one_without_a_timer_is_never_popped():
    index = DueIndex()
    index.set("gone", T0)
    index.set("quiet", T0)
    index.discard("gone")
    index.set("quiet", None)
    assert index.pop_due(T0 + 60 * S) == [] and "gone" not in index and index.due_of("quiet") is None


def test_a_due_set_back_to_an_earlier_value_is_popped_once():
    index = DueIndex()
    index.set("k", T0)
    index.set("k", None)
    index.set("k", T0)  # two heap entries with the same due, both matching
    assert index.pop_due(T0) == ["k"]
    assert index.pop_due(T0) == []


def test_unknown_keys_are_looked_at_once_by_the_next_sweep():
    index = DueIndex()
    index.set("restored", UNKNOWN)
    index.set("timed", T0 + 60 * S)
    index.set("timed", UNKNOWN)  # its next_due raised
    assert index.unknown == 2
    assert sorted(index.pop_due(T0)) == ["restored", "timed"]
    assert index.pop_due(T0 + 3600 * S) == []  # the timed key's old heap entry is stale


def test_the_heap_is_compacted_when_stale_entries_outnumber_live_ones():
    index = DueIndex()
    for n in range(20_000):  # one key whose due keeps moving
        index.set("k", T0 + n * S)
    assert index.heap_size <= 2 * len(index) + DueIndex.SLACK + 1
    assert index.pop_due(T0 + 19_998 * S) == []
    assert index.pop_due(T0 + 19_999 * S) == ["k"]


def test_a_million_keys_of_which_ten_are_due_pop_ten():
    """The work of a sweep is what falls due: popping touches the ten due keys (and no stale entry)."""
    index = DueIndex()
    generation = index.begin_rebuild()
    far = pack(T0 + 86400 * S, b"{}")
    values = [(f"CMP-{n:07d}", far) for n in range(1_000_000 - 10)]
    values += [(f"DUE-{n}", pack(T0 - n * S, b"{}")) for n in range(10)]
    for start in range(0, len(values), 50_000):
        assert index.rebuild(generation, values[start:start + 50_000])
    assert index.end_rebuild(generation)
    assert len(index) == 1_000_000 and index.heap_size == 1_000_000
    due = index.pop_due(T0)
    assert len(due) == 10 and sorted(due) == [f"DUE-{n}" for n in range(10)]
    assert index.heap_size == 1_000_000 - 10


# -- rebuilding from stored values -----------------------------------------------------------------

def test_a_rebuild_reads_the_prefixes_and_old_values_are_unknown():
    index = DueIndex()
    index.set("left-over", T0)  # from before the rebalance
    generation = index.begin_rebuild()
    assert "left-over" not in index and index.rebuilding
    assert index.rebuild(generation, [("due", pack(T0, b"{}")), ("later", pack(T0 + 60 * S, b"{}")),
                                      ("quiet", pack(None, b"{}")), ("old", b'{"cid":"x"}'),
                                      ("failed", pack(UNKNOWN, b"{}")), ("team", pack(ALWAYS, b"{}"))])
    assert index.end_rebuild(generation) and not index.rebuilding
    assert index.due_of("later") == T0 + 60 * S and index.due_of("quiet") is None
    assert sorted(index.pop_due(T0)) == ["due", "failed", "old", "team"]


def test_keys_changed_during_a_rebuild_keep_their_newer_due():
    index = DueIndex()
    generation = index.begin_rebuild()
    index.set("stored-meanwhile", T0 + 3600 * S)  # a batch stored it after the rebuild began
    index.discard("deleted-meanwhile")
    assert index.rebuild(generation, [("stored-meanwhile", pack(T0, b"{}")),
                                      ("deleted-meanwhile", pack(T0, b"{}")), ("other", pack(T0, b"{}"))])
    index.set("other", T0 + 7200 * S)  # changed after the rebuild read it: its rebuilt entry is stale
    assert index.end_rebuild(generation)
    assert index.pop_due(T0) == []
    assert "deleted-meanwhile" not in index
    assert index.pop_due(T0 + 3600 * S) == ["stored-meanwhile"]


def test_a_superseded_rebuild_notes_nothing():
    index = DueIndex()
    first = index.begin_rebuild()
    index.clear()  # partitions revoked
    assert not index.rebuild(first, [("k", pack(T0, b"{}"))])
    assert not index.end_rebuild(first)
    assert len(index) == 0
    second = index.begin_rebuild()
    assert not index.rebuild(first, [("k", pack(T0, b"{}"))])
    assert index.rebuild(second, [("k", pack(T0, b"{}"))]) and index.end_rebuild(second)
    assert index.pop_due(T0) == ["k"]
