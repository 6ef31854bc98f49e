"""Fixes to faust-streaming 0.15.3 that the runtime applies before it creates an app.

**End-of-recovery race (records skipped, repeated, or a partition stuck).** When a worker with tables
(re)joins its group, faust pauses the stream partitions, restores the tables from their changelogs and
then calls ``Recovery.on_recovery_completed``. That method, as released:

1. resumes the stream partitions,
2. *awaits* ``consumer.perform_seek()`` (seek to the committed offsets), and only then
3. calls ``app.flow_control.resume()``, which clears every stream queue, and ``consumer.resume_flow()``.

The fetcher runs all through recovery. During the await in step 2 an aiokafka fetch that was already in
flight — it was handed the consumer's *live* set of active partitions, which step 1 had just grown —
delivers records of the stream partitions. Some reach the agent and are processed; the rest sit in the
stream queue and are wiped by step 3 without being processed or acknowledged. The seek then resets the
read offsets, so the re-fetch repeats what was processed (a duplicate per partition), and the offsets
faust had already recorded leave gaps in its acknowledgement bookkeeping: a one-offset gap is committed
over (the record is lost), a longer one freezes the partition's committed offset until the next
rebalance. Measured on a single-node broker, publishing while two workers restored: 13 of 36,000 and
19 of 60,000 submissions lost, 4–6 duplicates in each bad trial; with these fixes 0 lost, 0 repeated
and none stuck in 14 of 14 trials. Related upstream reports: robinhood/faust#625 and
faust-streaming/faust#596.

The fixes:

* ``Recovery.on_recovery_completed`` seeks while the stream partitions are still paused, then resumes
  the partitions, clears the queues and resumes the flow with no ``await`` in between, so nothing can be
  delivered between the seek and the clearing of the queues. Everything else is as released.
* ``ThreadDelegateConsumer._getmany`` hands the consumer thread a snapshot of the active partitions
  instead of the live set, and fetches nothing for an empty set (aiokafka reads an empty set as "every
  assigned partition", which includes paused ones).

Both replace private methods, so :func:`apply` refuses any faust-streaming other than the version they
were written and tested against (pinned in ``pyproject.toml``); review this module when upgrading.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from typing import Any, cast

from faust.tables import recovery as _recovery
from faust.transport import consumer as _consumer

TESTED_VERSION = "0.15.3"

_original_getmany = _consumer.ThreadDelegateConsumer._getmany


class UntestedFaustVersion(RuntimeError):
    """The installed faust-streaming is not the version these fixes were written for."""


async def on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    """``Recovery.on_recovery_completed`` with the seek done before the stream partitions resume."""
    consumer = self.app.consumer
    self.log.info("Restore complete!")
    await self.app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callbacks = [asyncio.ensure_future(table.on_recovery_completed(self.actives_for_table[table],
                                                                   self.standbys_for_table[table]))
                 for table in self.tables.values()]
    if callbacks:
        await asyncio.wait(callbacks)
    assignment = consumer.assignment()
    if self.app.consumer_generation_id != generation_id:
        self.log.warning("Recovery rebalancing again app id %r param %r",
                         self.app.consumer_generation_id, generation_id)
        return
    if assignment:
        self.log.info("Seek stream partitions to committed offsets (partitions still paused).")
        await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
    self.completed.set()
    # No await between these three calls: nothing can be delivered before the queues are cleared.
    consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
    self.app.flow_control.resume()
    consumer.resume_flow()
    await cast(Any, self.app)._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if not self.app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    self.app.on_rebalance_end()
    self.log.info("Worker ready")


async def _getmany(self: Any, active_partitions: Any, timeout: float) -> Any:
    """``ThreadDelegateConsumer._getmany`` on a snapshot of the active partitions; none means no fetch."""
    if active_partitions is None:
        return await _original_getmany(self, None, timeout)
    snapshot = set(active_partitions)
    if not snapshot:
        return {}
    return await _original_getmany(self, snapshot, timeout)


def apply() -> None:
    """Install the fixes (idempotent). Raises :class:`UntestedFaustVersion` on another faust version."""
    installed = version("faust-streaming")
    if installed != TESTED_VERSION:
        raise UntestedFaustVersion(f"faust-streaming {installed} is installed; complaint_stream.workers.faust_fixes"
                                   f" was written for {TESTED_VERSION}. Review the fixes against the new release.")
    _recovery.Recovery.on_recovery_completed = on_recovery_completed  # type: ignore[method-assign]
    _consumer.ThreadDelegateConsumer._getmany = _getmany  # type: ignore[method-assign]


def applied() -> bool:
    """Whether :func:`apply` has installed the fixes in this process."""
    return (_recovery.Recovery.on_recovery_completed is on_recovery_completed
            and _consumer.ThreadDelegateConsumer._getmany is _getmany)
