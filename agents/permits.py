"""Permits: validated from ``yrd.permits`` into a changelog-backed table, co-partitioned
with the pings (same key, same partition count), so the worker that owns a vehicle's
pings holds its permit, and a restarted worker recovers it from the changelog.

A valid record replaces the vehicle's permit; a null value revokes it (the
record's timestamp is the revocation time); an invalid record goes to the
dead-letter topic and leaves the permit in force untouched.
"""

from __future__ import annotations

import logging
from datetime import datetime

from yrd_hazmat import metrics
from yrd_hazmat.codec import PROCESSING_ERROR, Rejection, key_text
from yrd_hazmat.geo.jurisdiction import default_index
from yrd_hazmat.permits.model import parse_permit
from yrd_hazmat.permits.store import PermitEntry, dump_entry, load_entry
from yrd_hazmat.timeutil import CHINA_TZ

from agents.app import app, dead_letters, permits_table, permits_topic

log = logging.getLogger(__name__)


@app.agent(permits_topic)
async def store_permits(stream):
    """Keep the latest permit of each vehicle in the permits table."""
    async for event in stream.events():
        try:
            rejection = _store(event)
        except Exception as exc:  # never lose the record, never stop the agent
            log.exception("storing a permit record failed")
            rejection = Rejection(PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")
        if rejection is not None:
            await dead_letters.send(event, rejection, datetime.now(CHINA_TZ))
            metrics.PERMITS_REJECTED.labels(reason=rejection.reason).inc()
            log.warning("permit record %r rejected (%s): %s", event.key, rejection.reason,
                        rejection.error)
        metrics.PERMITS_HELD.set(len(permits_table))


def _store(event) -> Rejection | None:
    """Apply one permits record to the table; the rejection if it is invalid."""
    key = event.key
    if event.value is None:
        stored = permits_table.get(key) if key is not None else None
        if stored is not None:
            revoked_at = int(event.message.timestamp * 1000)
            permits_table[key] = dump_entry(PermitEntry(load_entry(stored).raw, revoked_at))
            metrics.PERMIT_UPDATES.labels(result="revoked").inc()
        return None
    vehicle = key_text(key)
    result = parse_permit(event.value, default_index(), key=vehicle)
    if isinstance(result, Rejection):
        return result
    permits_table[key] = dump_entry(PermitEntry(event.value))
    metrics.PERMIT_UPDATES.labels(result="stored").inc()
    return None
