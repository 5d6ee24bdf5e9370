"""Publishing zones to the compacted zones topic (the operator's side)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import msgspec
from aiokafka import AIOKafkaProducer

from ..codec import Rejection
from ..config import Settings
from .model import parse_collection


async def publish_file(settings: Settings, path: str | Path) -> tuple[int, list[tuple[str, Rejection]]]:
    """Publish every valid feature of a FeatureCollection, keyed by zone id.

    Invalid features are not sent; they come back with their rejection.
    """
    valid, rejected = parse_collection(path)
    await _send(settings, [(zone.zone_id, msgspec.json.encode(feature)) for zone, feature in valid])
    return len(valid), rejected


async def delete(settings: Settings, zone_ids: Iterable[str]) -> None:
    """Tombstone the zones: every worker drops them."""
    await _send(settings, [(zone_id, None) for zone_id in zone_ids])


async def _send(settings: Settings, records: list[tuple[str, bytes | None]]) -> None:
    producer = AIOKafkaProducer(**settings.kafka_options(), acks="all")
    await producer.start()
    try:
        for zone_id, value in records:
            await producer.send(settings.topic_zones, key=zone_id.encode("utf-8"), value=value)
        await producer.flush()
    finally:
        await producer.stop()
