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
sends the changelog record itself, awaits the broker's acknowledgement, and
only then acks the event. If the broker refuses the record, the table is put
back as it was and the record is dead-lettered (``processing_error``) before
the ack. If the worker stops while waiting, the event is never acked and is
read again after the restart.
"""

from __future__ import annotations

import logging
from datetime import datetime

from yrd_hazmat import metrics
from yrd_hazmat.codec import PROCESSING_ERROR, Rejection
from yrd_hazmat.geo.jurisdiction import default_index
from yrd_hazmat.permits.store import entry_for, revoked_entry
from yrd_hazmat.timeutil import CHINA_TZ

from agents.app import app, dead_letters, permits_table, permits_topic, settings

log = logging.getLogger(__name__)


@app.agent(permits_topic)
async def store_permits(stream):
    """Keep the latest permit of each vehicle in the permits table."""
    manual = stream.noack()
    async for event in manual.events():
        try:
            rejection = await _store(event)
        except Exception as exc:  # never lose the record, never stop the agent
            log.exception("storing a permit record failed")
            rejection = Rejection(PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")
        if rejection is not None:
            await dead_letters.send(event, rejection, datetime.now(CHINA_TZ))
            metrics.PERMITS_REJECTED.labels(reason=rejection.reason).inc()
            log.warning("permit record %r rejected (%s): %s", event.key, rejection.reason,
                        rejection.error)
        metrics.PERMITS_HELD.set(len(permits_table))
        await manual.ack(event)  # only now may its offset be committed


async def _store(event) -> Rejection | None:
    """Apply one permits record to the table; the rejection if it is invalid."""
    key = event.key
    if event.value is None:
        revoked_at = int(event.message.timestamp * 1000)
        value = revoked_entry(permits_table.get(key) if key is not None else None, revoked_at)
        if value is None:
            metrics.PERMIT_UPDATES.labels(result="ignored").inc()
            log.info("permit tombstone %r at offset %s: no permit in force, nothing to revoke",
                     key, event.message.offset)
            return None
        await _put(event, key, value)
        metrics.PERMIT_UPDATES.labels(result="revoked").inc()
        return None
    value = entry_for(key, event.value, default_index(), settings.max_permit_bytes)
    if isinstance(value, Rejection):
        return value
    await _put(event, key, value)
    metrics.PERMIT_UPDATES.labels(result="stored").inc()
    return None


async def _put(event, key: bytes, value: bytes) -> None:
    """``permits_table[key] = value`` with its changelog record acknowledged by the broker.

    Written like Faust's ``Table.on_key_set`` (store, then a changelog record
    on the input record's partition), but awaiting the delivery; if the
    broker refuses it, or the worker stops meanwhile, the store is put back
    and the error raised.
    """
    store = permits_table.data
    previous = store.get(key)
    store[key] = value
    try:
        delivery = await permits_table.changelog_topic.send(
            key=key, value=value, partition=event.message.partition,
            key_serializer="raw", value_serializer="raw",
        )
        await delivery
    except BaseException as exc:
        if previous is None:
            store.pop(key, None)
        else:
            store[key] = previous
        if isinstance(exc, Exception):
            raise ChangelogRefused(f"the permits table's changelog did not take the record "
                                   f"({len(value)} bytes): {type(exc).__name__}: {exc}") from exc
        raise


class ChangelogRefused(Exception):
    """The broker did not acknowledge a permits-table changelog record."""
