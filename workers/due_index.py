"""When each key's timer is next due: the runtime's sweep looks only at what falls due.

:class:`DueIndex` keeps key -> ``next_due`` in a dict and a heap of ``(due, key)`` with lazy deletion:
changing or dropping a key's due leaves its old heap entry in place, and the entry is skipped when popped
(its due is no longer the key's). A key whose due is :data:`UNKNOWN` (stored without one, or whose
``next_due`` raised, or whose timer failed) waits in a set that the next sweep takes whole. A sweep's work
is the keys that fall due (plus the stale heap entries it skips), never every key the table holds.

Each state of a stage with timers is stored with its ``next_due`` in front of the codec's bytes
(:func:`pack`), so that after a rebalance the index is rebuilt from the stored values without decoding a
single state (:func:`peek`). The prefix is JSON whitespace -- 24 characters, each of space, tab, LF or CR
one base-4 digit of a 48-bit code -- so a stored value is still the state's JSON for every reader that
parses it (``complaints show --from changelog``, anything consuming a changelog topic), and a value
without it (written before, or by a stage without timers: the codec's JSON never starts with whitespace)
reads as itself with its due :data:`UNKNOWN`. Every reader of the runtime's table values goes through
:func:`unpack` (or :func:`state_bytes`) all the same, so what it hands on is the codec's bytes exactly.

Codes: 0 no timer (``None``), 1 :data:`~complaint_stream.domain.stage.ALWAYS`, 2 unknown, ``3 + ms`` a
time as milliseconds since 1970-01-01 UTC, rounded down (a due is never later than the stage's: earlier
only costs a look). Times before 1970 are stored as 1970: both have passed.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Final, TypeAlias

from complaint_stream.domain.stage import ALWAYS


class _Unknown(enum.Enum):
    UNKNOWN = "unknown"

    def __repr__(self) -> str:
        return "UNKNOWN"


#: The due of a key the index cannot tell without decoding its state: the next sweep looks at it.
UNKNOWN: Final = _Unknown.UNKNOWN

#: ``next_due`` as the index keeps it: a time, ``None`` (no timer until an event changes the state) or UNKNOWN.
Due: TypeAlias = datetime | None | _Unknown

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_DIGITS: Final = b" \t\n\r"  # JSON's insignificant whitespace: the base-4 digits 0, 1, 2, 3
_BYTES: Final = 6  # 48 bits: milliseconds to the year 10889 (datetime stops at 9999)
#: Length of the prefix :func:`pack` puts in front of a state's bytes.
PREFIX_LEN: Final = 4 * _BYTES
_NONE, _ALWAYS, _UNKNOWN_CODE, _FIRST_TIME = 0, 1, 2, 3
_MAX_MS: Final = 2 ** (8 * _BYTES) - 1 - _FIRST_TIME
#: byte value -> its four digits
_ENCODE: Final = tuple(bytes(_DIGITS[(b >> shift) & 3] for shift in (6, 4, 2, 0)) for b in range(256))
#: whitespace digit -> ASCII digit (for ``int(..., 4)``); any other byte -> ``x`` (not a digit)
_TO_ASCII: Final = bytes(b"0123"[_DIGITS.index(b)] if b in _DIGITS else ord("x") for b in range(256))
_ALWAYS_MS: Final = (ALWAYS - _EPOCH) // _MS


def to_ms(at: datetime) -> int:
    """Milliseconds since 1970-01-01 UTC, rounded down (a naive time is taken as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return (at - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    return ALWAYS if ms <= _ALWAYS_MS else _EPOCH + ms * _MS


def _code(due: Due) -> int:
    if due is None:
        return _NONE
    if due is UNKNOWN:
        return _UNKNOWN_CODE
    assert isinstance(due, datetime)
    if due == ALWAYS:
        return _ALWAYS
    return _FIRST_TIME + min(max(to_ms(due), 0), _MAX_MS)


def _due(code: int) -> Due:
    if code == _NONE:
        return None
    if code == _ALWAYS:
        return ALWAYS
    if code == _UNKNOWN_CODE:
        return UNKNOWN
    return _EPOCH + (code - _FIRST_TIME) * _MS


def prefix(due: Due) -> bytes:
    """The :data:`PREFIX_LEN` bytes of whitespace that carry ``due``."""
    return b"".join(_ENCODE[b] for b in _code(due).to_bytes(_BYTES, "big"))


def pack(due: Due, raw: bytes) -> bytes:
    """A state's bytes as stored by a stage with timers: ``due`` in front of the codec's ``raw`` bytes."""
    return prefix(due) + raw


def _read_code(value: bytes) -> int | None:
    if len(value) < PREFIX_LEN or value[0] not in _DIGITS:
        return None
    try:
        return int(bytes(value[:PREFIX_LEN]).translate(_TO_ASCII), 4)
    except ValueError:  # not our prefix: other bytes (JSON with leading whitespace of its own)
        return None


def peek(value: bytes) -> Due:
    """The due a stored value carries (:data:`UNKNOWN` when it has no prefix), reading only the prefix."""
    code = _read_code(value)
    return UNKNOWN if code is None else _due(code)


def unpack(value: bytes) -> tuple[Due, bytes]:
    """``(due, the codec's bytes)`` of a stored value; a value without the prefix is ``(UNKNOWN, value)``."""
    code = _read_code(value)
    if code is None:
        return UNKNOWN, bytes(value)
    return _due(code), bytes(value[PREFIX_LEN:])


def state_bytes(value: bytes | None) -> bytes | None:
    """The codec's bytes of a stored value (``None`` stays ``None``): what every reader of the table hands on."""
    return None if value is None else unpack(value)[1]


class DueIndex:
    """key -> when the sweep must next look at it; :meth:`pop_due` takes the keys that fall due.

    A key is in one of three places: ``_live`` (key -> due in milliseconds; the heap has an entry
    ``(due, key)`` for it), ``_idle`` (known, no timer until an event changes it: not in the heap) or
    ``_unknown``. Changing a key's due pushes a new heap entry and leaves the old one: an entry whose due is
    not its key's live due is stale and skipped when popped (the heap is compacted when stale entries
    outnumber live ones). A key in none of the three is not looked at until it is :meth:`set` again: a key
    popped by a sweep is out until the sweep stores or re-marks it.

    :meth:`begin_rebuild` empties the index and starts a rebuild whose :meth:`rebuild` calls fill it from the
    stored values in chunks while batches and sweeps go on: a key they :meth:`set` or :meth:`discard`
    meanwhile is newer than what the rebuild read, and the rebuild leaves it alone. Times are kept as integer
    milliseconds (rounded down: a key may be looked at up to a millisecond early, never late).
    """

    #: Compact the heap when it holds more than this many entries beyond twice the live keys.
    SLACK = 1024

    def __init__(self) -> None:
        self._live: dict[str, int] = {}
        self._idle: set[str] = set()
        self._unknown: set[str] = set()
        self._heap: list[tuple[int, str]] = []
        self._touched: set[str] | None = None  # keys changed since the rebuild began; None: no rebuild
        self._pending: list[tuple[int, str]] = []  # the rebuild's heap entries, heapified at its end
        self.generation = 0  # bumped by clear() and begin_rebuild(): a rebuild of an older one stops

    def __len__(self) -> int:
        """Keys the index knows (with a time, with none, or unknown)."""
        return len(self._live) + len(self._idle) + len(self._unknown)

    def __contains__(self, key: object) -> bool:
        return key in self._live or key in self._idle or key in self._unknown

    def due_of(self, key: str) -> Due:
        """The key's noted due: a time, ``None`` (no timer), :data:`UNKNOWN` (unknown, or not in the index)."""
        ms = self._live.get(key)
        if ms is not None:
            return from_ms(ms)
        return None if key in self._idle else UNKNOWN

    @property
    def unknown(self) -> int:
        """How many keys the next sweep looks at whatever their due."""
        return len(self._unknown)

    @property
    def heap_size(self) -> int:
        """Heap entries, stale ones included."""
        return len(self._heap) + len(self._pending)

    @property
    def rebuilding(self) -> bool:
        return self._touched is not None

    # -- changes ----------------------------------------------------------------------------------

    def set(self, key: str, due: Due) -> None:
        """Note the key's due (``None``: no timer; :data:`UNKNOWN`: the next sweep looks)."""
        if self._touched is not None:
            self._touched.add(key)
        self._put(key, due)

    def discard(self, key: str) -> None:
        """Forget the key (its state is gone)."""
        if self._touched is not None:
            self._touched.add(key)
        self._live.pop(key, None)
        self._idle.discard(key)
        self._unknown.discard(key)

    def clear(self) -> None:
        """Forget every key (and stop a rebuild in progress)."""
        self._live = {}
        self._idle = set()
        self._unknown = set()
        self._heap = []
        self._touched = None
        self._pending = []
        self.generation += 1

    def _put(self, key: str, due: Due) -> None:
        if due is UNKNOWN:
            self._live.pop(key, None)
            self._idle.discard(key)
            self._unknown.add(key)
            return
        self._unknown.discard(key)
        if due is None:
            self._live.pop(key, None)
            self._idle.add(key)
            return
        assert isinstance(due, datetime)
        self._idle.discard(key)
        ms = to_ms(due)
        if self._live.get(key) == ms:
            return  # its heap entry is live already
        self._live[key] = ms
        heapq.heappush(self._heap, (ms, key))
        if len(self._heap) > 2 * len(self._live) + self.SLACK:  # mostly stale: keep the live entries only
            self._heap = [(ms, key) for key, ms in self._live.items()]
            heapq.heapify(self._heap)
            self._pending = []  # a rebuild's entries are among them

    # -- the sweep --------------------------------------------------------------------------------

    def pop_due(self, now: datetime) -> list[str]:
        """Take the keys to look at now: every unknown key, then those due at or before ``now`` (earliest
        first). A taken key is out of the index until it is set again."""
        keys = list(self._unknown)
        self._unknown = set()
        limit = to_ms(now)
        heap, live = self._heap, self._live
        while heap and heap[0][0] <= limit:
            ms, key = heapq.heappop(heap)
            if live.get(key) != ms:  # stale: the key's due changed, or it was dropped or popped
                continue
            del live[key]
            keys.append(key)
        return keys

    # -- rebuilding from the stored values --------------------------------------------------------

    def begin_rebuild(self) -> int:
        """Empty the index and start a rebuild; returns its generation (see :meth:`rebuild`)."""
        self.clear()
        self._touched = set()
        return self.generation

    def rebuild(self, generation: int, items: Iterable[tuple[str, bytes]]) -> bool:
        """Note the due of each ``(key, stored value)`` read from the table -- its prefix only, no state
        decoded; a value without one is unknown -- but for keys changed since the rebuild began. Returns
        False (noting nothing) when the rebuild was superseded (:meth:`clear`, another rebuild)."""
        if generation != self.generation or self._touched is None:
            return False
        touched, pending = self._touched, self._pending
        live, idle, unknown = self._live, self._idle, self._unknown
        for key, value in items:
            if key in touched:
                continue
            code = _read_code(value)
            if code is None or code == _UNKNOWN_CODE:
                live.pop(key, None)
                idle.discard(key)
                unknown.add(key)
            elif code == _NONE:
                live.pop(key, None)
                unknown.discard(key)
                idle.add(key)
            else:
                ms = _ALWAYS_MS if code == _ALWAYS else code - _FIRST_TIME
                idle.discard(key)
                unknown.discard(key)
                live[key] = ms
                pending.append((ms, key))
        return True

    def end_rebuild(self, generation: int) -> bool:
        """Put the rebuilt keys in the heap (one heapify); False when the rebuild was superseded."""
        if generation != self.generation or self._touched is None:
            return False
        pending, self._pending = self._pending, []
        self._touched = None
        live = self._live
        self._heap.extend(entry for entry in pending if live.get(entry[1]) == entry[0])
        heapq.heapify(self._heap)
        return True
