"""Restricted zones at run time: every worker loads all of them; one dead-letters bad ones.

- :class:`ZoneLoader` (a task on every worker): follows the compacted zones topic
  from its start over all partitions (:class:`~yrd_hazmat.follow.Follower`, which
  reconnects by itself when the broker goes away), so each worker holds every zone:
  an update takes effect on the next batch, without a restart. A null value deletes
  (a null value for a zone that does not exist changes nothing: counted as
  ``ignored``). Invalid records, and records over ``YRD_MAX_ZONE_BYTES``, leave the
  current zones untouched; no record can stop the loader.
- ``validate_zones`` (an agent, partitions shared by the worker group): sends
  each invalid zone record to the dead-letter topic once, with its reason. Both
  judge a record with the same function and settings, so they always agree.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from yrd_hazmat import metrics
from yrd_hazmat.core.codec import PROCESSING_ERROR, Rejection, key_text
from yrd_hazmat.config import Settings
from yrd_hazmat.follow import Follower
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.core.zones.model import Zone, parse_zone_record
from yrd_hazmat.core.zones.registry import ZoneRegistry

from agents.app import app, dead_letters, settings, zones_topic

log = logging.getLogger(__name__)


class ZoneLoader:
    """Keeps a :class:`ZoneRegistry` equal to the zones file plus the zones topic;
    :attr:`ready` is set once the topic is read up to its end at the start (no ping is
    judged against a partial set of zones)."""

    def __init__(self, settings: Settings, registry: ZoneRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.follower = Follower(settings.kafka_options(), settings.topic_zones, self.record)
        self.ready = self.follower.caught_up

    def load_file(self) -> None:
        if not self.settings.zones_file:
            return
        for name, rejection in self.registry.load_file(self.settings.zones_file):
            log.error("zones file: %s rejected (%s): %s", name, rejection.reason, rejection.error)
        log.info("zones file %s: %d zones", self.settings.zones_file, len(self.registry))

    def apply(self, key: bytes | None, value: bytes | None) -> str:
        """Apply one zones-topic record; returns the result label. Never raises."""
        zone_id = key_text(key)
        if value is None:
            if zone_id is not None and self.registry.delete(zone_id):
                return "deleted"
            return "ignored"
        zone = judge(key, value, self.settings)
        if isinstance(zone, Rejection):
            return "rejected"
        try:
            self.registry.put(zone)
        except Exception:  # a bug must not stop the loader: the zones in force stay
            log.exception("zone %s: compiling it failed", zone_id)
            return "rejected"
        return "applied"

    def record(self, key: bytes | None, value: bytes | None) -> None:
        """The follower's callback: apply, count and log one record."""
        result = self.apply(key, value)
        metrics.ZONE_UPDATES.labels(result=result).inc()
        metrics.ZONES_LOADED.set(len(self.registry))
        log.info("zone %s (%s): %s", key_text(key), self.follower.where(), result)

    async def run(self) -> None:
        """Load the file, then follow the topic for good."""
        self.load_file()
        metrics.ZONES_LOADED.set(len(self.registry))
        follower = asyncio.create_task(self.follower.run(), name="follow-zones")
        try:
            await self.ready.wait()
            log.info("zones caught up: %d zones in force", len(self.registry))
            await follower
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)


def judge(key: bytes | None, value: bytes, settings: Settings) -> Zone | Rejection:
    """The zone of a non-null zones-topic record, or why it is rejected (never raises)."""
    try:
        return parse_zone_record(key, value, settings.max_zone_bytes)
    except Exception as exc:  # a bug in validation must not stop the loader or the agent
        log.exception("validating zone record %r failed", key)
        return Rejection(PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")


zone_registry = ZoneRegistry(margin_m=settings.zone_margin_m)
zone_loader = ZoneLoader(settings, zone_registry)


@app.task
async def load_zones() -> None:
    """Follow the zones topic for as long as the worker runs."""
    await zone_loader.run()


@app.agent(zones_topic)
async def validate_zones(stream):
    """Dead-letter invalid zone records (once per worker group)."""
    async for event in stream.events():
        if event.value is None:
            continue
        zone = judge(event.key, event.value, settings)
        if not isinstance(zone, Rejection):
            continue
        await dead_letters.send(event, zone, datetime.now(CHINA_TZ))
        metrics.ZONES_REJECTED.labels(reason=zone.reason).inc()
        log.warning("zone record %s rejected (%s): %s", key_text(event.key), zone.reason,
                    zone.error)
