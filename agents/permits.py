"""Permits: validated from ``yrd.permits`` into a changelog-backed table, co-partitioned
with the pings (same key, same partition count), so the worker that owns a vehicle's
pings holds its permit, and a restarted worker recovers it from the changelog.

A valid record replaces the vehicle's permit; a null value revokes it (the
record's timestamp is the revocation time); a null value for a vehicle with no
permit, or one already revoked, changes nothing (counted as ``ignored``). An
invalid record, or one larger than ``YRD_MAX_PERMIT_BYTES``, goes to the
dead-letter topic and leaves the permit in force untouched.

Crash consistency: a record's offset may be committed only once its table
write is durable. Faust's own ``table[key] = value`` does not guarantee that:

- ``__setitem__`` -> ``Table.on_key_set`` -> ``send_changelog`` ->
  ``changelog_topic.send_soon``: the record goes into Faust's ``ProducerBuffer``
  and is handed to aiokafka later by a background task;
- the stream acks the event as soon as the loop body returns (the ``finally``
  in ``Stream._py_aiter``), so the offset becomes committable at once;
- ``Consumer._commit_offsets`` calls ``app.producer.flush()`` before
  committing, but ``ProducerBuffer.flush`` gives up after 0.1 s without
  progress (``flush_atmost``: ``asyncio.wait_for(..., timeout=0.1)``), and
  aiokafka's ``flush`` only waits for batches to *finish*, successfully or
  not: a changelog record the broker refused (e.g. over its record limit)
  still lets the commit go ahead. That is how a 5 MB permit was lost.

So this agent acks by hand (``stream.noack()``): it writes the table's store and
sends the changelog records itself, awaits the broker's acknowledgements, and
only then acks the events. If the broker refuses a record, the table is put
back and the record is dead-lettered (``processing_error``) before the ack. If
the worker stops while waiting, the table is put back, the events are never
acked and are read again after the restart.

Batches: awaiting each delivery before reading the next record held a bulk
load to about 60 permits/s. The agent takes what the stream has already
received, up to ``BATCH_MAX`` records, as one :class:`Batch`, in offset order:

1. each record is validated and compiled, its table value written to the
   store and its changelog record sent (on the input record's partition),
   without awaiting the delivery; a later record of the same vehicle
   overwrites an earlier one, as one by one;
2. all deliveries are awaited; for a vehicle whose changelog record was
   refused, the store is put back to its last delivered value of the batch,
   else to its value before the batch (what a restart would recover from the
   changelog), and exactly the refused records are dead-lettered;
3. only then are the batch's events acked, in offset order.

A tombstone for a vehicle with a write still in flight first settles the
batch, so it revokes (or ignores) what is really in force, as one by one. The
stream yields to the event loop between records (a route compiles in a few
milliseconds), so a batch never holds the loop for long. Faust's
``take_events`` is not used: its ``finally`` acks the buffered events even when
the worker stops mid-batch (``Stream.on_stop`` closes the generator).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from yrd_hazmat import metrics
from yrd_hazmat.core.codec import PROCESSING_ERROR, Rejection
from yrd_hazmat.core.geo.jurisdiction import default_index
from yrd_hazmat.core.permits.store import entry_for, revoked_entry
from yrd_hazmat.core.timeutil import CHINA_TZ

from agents.app import app, dead_letters, permits_table, permits_topic, settings

log = logging.getLogger(__name__)

BATCH_MAX = 256
"""Records of one batch at most (a second or so of route compiling), acked together."""


@app.agent(permits_topic)
async def store_permits(stream):
    """Keep the latest permit of each vehicle in the permits table."""
    manual = stream.noack()
    received = manual.channel.queue  # events delivered to this stream, not yet read
    batch = Batch()
    try:
        async for event in manual.events():
            if event.value is None and event.key in batch.keys:
                await batch.settle(manual)  # revoke what is in force, not what is in flight
            await batch.add(event)
            if len(batch.events) >= BATCH_MAX or received.empty():
                await batch.settle(manual)
    except BaseException:  # the worker stops mid-batch: put the table back, ack nothing
        batch.put_back(batch.writes)
        raise


@dataclass(eq=False)
class Write:
    """A table write of the batch whose changelog record is in flight."""

    key: bytes
    value: bytes
    previous: bytes | None
    """The store's value before this write."""
    result: str
    """``stored`` or ``revoked`` (the metric's label) once delivered."""
    index: int
    """The record's place in the batch."""
    delivery: Any = None
    """Faust's future of the changelog record's delivery."""
    error: BaseException | None = None


class Batch:
    """Permit records read but not acked yet, in offset order, and their writes in flight."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.events: list[Any] = []
        self.rejections: dict[int, Rejection] = {}
        self.writes: list[Write] = []
        self.keys: set[bytes] = set()
        """Vehicles with a write in this batch."""

    async def add(self, event) -> None:
        """Validate and apply one record: store written, changelog record sent."""
        index = len(self.events)
        self.events.append(event)
        try:
            rejection = await self._apply(event, index)
        except Exception as exc:  # never lose the record, never stop the agent
            log.exception("storing a permit record failed")
            rejection = Rejection(PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")
        if rejection is not None:
            self.rejections[index] = rejection

    async def _apply(self, event, index: int) -> Rejection | None:
        key = event.key
        if event.value is None:
            revoked_at = int(event.message.timestamp * 1000)
            value = revoked_entry(permits_table.get(key) if key is not None else None,
                                  revoked_at)
            if value is None:
                metrics.PERMIT_UPDATES.labels(result="ignored").inc()
                log.info("permit tombstone %r at offset %s: no permit in force, nothing to "
                         "revoke", key, event.message.offset)
                return None
            await self._write(event, index, key, value, "revoked")
            return None
        value = entry_for(key, event.value, default_index(), settings.max_permit_bytes)
        if isinstance(value, Rejection):
            return value
        await self._write(event, index, key, value, "stored")
        return None

    async def _write(self, event, index: int, key: bytes, value: bytes, result: str) -> None:
        """``permits_table[key] = value`` as Faust's ``Table.on_key_set`` does it (store,
        then a changelog record on the input record's partition), keeping the delivery."""
        store = permits_table.data
        write = Write(key, value, store.get(key), result, index)
        store[key] = value
        self.writes.append(write)
        self.keys.add(key)
        try:
            write.delivery = await permits_table.changelog_topic.send(
                key=key, value=value, partition=event.message.partition,
                key_serializer="raw", value_serializer="raw",
            )
        except Exception as exc:  # refused before it was sent; put back in settle()
            write.error = exc

    async def settle(self, stream) -> None:
        """Await the batch's deliveries, put back and dead-letter the refused writes, then
        ack the batch's events in offset order."""
        sent = [w for w in self.writes if w.error is None]
        results = await asyncio.gather(*(w.delivery for w in sent), return_exceptions=True)
        for write, result in zip(sent, results):
            if isinstance(result, BaseException):
                write.error = result
        self.put_back([w for w in self.writes if w.error is not None])
        for write in self.writes:
            if write.error is None:
                metrics.PERMIT_UPDATES.labels(result=write.result).inc()
            else:
                exc = write.error
                log.error("the permits changelog did not take %r: %s: %s", write.key,
                          type(exc).__name__, exc)
                self.rejections[write.index] = Rejection(PROCESSING_ERROR, (
                    f"the permits table's changelog did not take the record "
                    f"({len(write.value)} bytes): {type(exc).__name__}: {exc}"))
        now = datetime.now(CHINA_TZ)
        for index, rejection in sorted(self.rejections.items()):
            event = self.events[index]
            await dead_letters.send(event, rejection, now)
            metrics.PERMITS_REJECTED.labels(reason=rejection.reason).inc()
            log.warning("permit record %r rejected (%s): %s", event.key, rejection.reason,
                        rejection.error)
        metrics.PERMITS_HELD.set(len(permits_table))
        events = self.events
        self.clear()
        for event in events:
            await stream.ack(event)  # only now may its offset be committed

    def put_back(self, failed: list[Write]) -> None:
        """For each vehicle with a failed write, its last delivered value of the batch in
        the store, else its value before the batch (or none), as the changelog has it."""
        store = permits_table.data
        for key in {w.key for w in failed}:
            writes = [w for w in self.writes if w.key == key]
            delivered = [w.value for w in writes if w not in failed]
            value = delivered[-1] if delivered else writes[0].previous
            if value is None:
                store.pop(key, None)
            else:
                store[key] = value
