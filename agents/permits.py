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
from yrd_hazmat.codec import Rejection
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
        key = event.key
        vehicle = key.decode("utf-8", "replace") if key is not None else None
        if event.value is None:
            stored = permits_table.get(key) if key is not None else None
            if stored is not None:
                revoked_at = int(event.message.timestamp * 1000)
                permits_table[key] = dump_entry(PermitEntry(load_entry(stored).raw, revoked_at))
                metrics.PERMIT_UPDATES.labels(result="revoked").inc()
                log.info("permit of %s revoked", vehicle)
            continue
        result = parse_permit(event.value, default_index(), key=vehicle)
        if isinstance(result, Rejection):
            await dead_letters.send(event, result, datetime.now(CHINA_TZ))
            metrics.PERMITS_REJECTED.labels(reason=result.reason).inc()
            log.warning("permit record for %s rejected (%s): %s", vehicle, result.reason, result.error)
            continue
        permits_table[key] = dump_entry(PermitEntry(event.value))
        metrics.PERMIT_UPDATES.labels(result="stored").inc()
        metrics.PERMITS_HELD.set(len(permits_table))
