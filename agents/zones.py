"""Restricted zones at run time: every worker loads all of them; one dead-letters bad ones.

- :class:`ZoneLoader` (a task on every worker): reads the compacted zones topic
  from its start with a group-less consumer over all partitions, so each
  worker holds every zone, and keeps following it: an update takes effect on
  the next batch, without a restart. A null value deletes (a null value for a
  zone that does not exist changes nothing: counted as ``ignored``). Invalid
  records, and records over ``YRD_MAX_ZONE_BYTES``, leave the current zones
  untouched; no record can stop the loader.
- ``validate_zones`` (an agent, partitions shared by the worker group): sends
  each invalid zone record to the dead-letter topic once, with its reason. Both
  judge a record with the same function and settings, so they always agree.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from yrd_hazmat import metrics
from yrd_hazmat.codec import PROCESSING_ERROR, Rejection, key_text
from yrd_hazmat.config import Settings
from yrd_hazmat.timeutil import CHINA_TZ
from yrd_hazmat.topics import wait_for_partitions
from yrd_hazmat.zones.model import Zone, parse_zone_record
from yrd_hazmat.zones.registry import ZoneRegistry

from agents.app import app, dead_letters, settings, zones_topic

log = logging.getLogger(__name__)


class ZoneLoader:
    """Keeps a :class:`ZoneRegistry` equal to the zones file plus the zones topic."""

    def __init__(self, settings: Settings, registry: ZoneRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.ready = asyncio.Event()

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

    async def run(self, catch_up_s: float = 30.0) -> None:
        """Load the file, then follow the topic for good. A consumer that has not caught
        up within ``catch_up_s`` is replaced by a new one (seen once under load: a new
        consumer never resolved its starting position, and the pings waited for it)."""
        self.load_file()
        while True:
            consumer = AIOKafkaConsumer(
                **self.settings.kafka_options(),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                # room for any record the topic accepts (too large ones are rejected after reading)
                max_partition_fetch_bytes=16 * 1024 * 1024,
            )
            await consumer.start()
            try:
                if await self._follow(consumer, catch_up_s):
                    return
                log.warning("zones not caught up in %.0f s: reading the topic again", catch_up_s)
            finally:
                await consumer.stop()

    async def _follow(self, consumer: AIOKafkaConsumer, catch_up_s: float) -> bool:
        """Read (from the start) and keep applying; False if not caught up in time."""
        partitions = await self._assign_all(consumer)
        end = await consumer.end_offsets(partitions)
        deadline = asyncio.get_running_loop().time() + catch_up_s
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batches.values():
                for record in records:
                    result = self.apply(record.key, record.value)
                    metrics.ZONE_UPDATES.labels(result=result).inc()
                    log.info("zone %s (%s[%s]@%s): %s", key_text(record.key), record.topic,
                             record.partition, record.offset, result)
            metrics.ZONES_LOADED.set(len(self.registry))
            if not self.ready.is_set():
                try:
                    caught_up = await asyncio.wait_for(_caught_up(consumer, end), 5.0)
                except asyncio.TimeoutError:
                    caught_up = False
                if caught_up:
                    log.info("zones caught up: %d zones in force", len(self.registry))
                    self.ready.set()
                elif asyncio.get_running_loop().time() > deadline:
                    return False

    async def _assign_all(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """Assign every partition of the zones topic, from its start."""
        topic = self.settings.topic_zones
        partitions = await wait_for_partitions(self.settings, topic)
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        return tps


def judge(key: bytes | None, value: bytes, settings: Settings) -> Zone | Rejection:
    """The zone of a non-null zones-topic record, or why it is rejected (never raises)."""
    try:
        return parse_zone_record(key, value, settings.max_zone_bytes)
    except Exception as exc:  # a bug in validation must not stop the loader or the agent
        log.exception("validating zone record %r failed", key)
        return Rejection(PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")


async def _caught_up(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    """Whether the consumer has read every partition up to the given end offsets."""
    for tp, offset in end.items():
        if await consumer.position(tp) < offset:
            return False
    return True


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
