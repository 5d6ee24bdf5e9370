"""Publishing zones to the compacted zones topic (the operator's side)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import msgspec

from ..config import Settings
from ..core.codec import TOO_LARGE, Rejection
from ..core.zones.model import parse_collection
from ..produce import publish


async def publish_file(settings: Settings, path: str | Path) -> tuple[int, list[tuple[str, Rejection]]]:
    """Publish every valid feature of a FeatureCollection, keyed by zone id.

    Invalid features, and features whose record would exceed ``YRD_MAX_ZONE_BYTES``
    (the workers would reject them), are not sent; they come back with their rejection.
    """
    valid, rejected = parse_collection(path)
    records = []
    for zone, feature in valid:
        value = msgspec.json.encode(feature)
        if len(value) > settings.max_zone_bytes:
            rejected.append((zone.zone_id, Rejection(
                TOO_LARGE, f"value is {len(value)} bytes, limit {settings.max_zone_bytes}")))
        else:
            records.append((zone.zone_id, value))
    await _send(settings, records)
    return len(records), rejected


async def delete(settings: Settings, zone_ids: Iterable[str]) -> None:
    """Tombstone the zones: every worker drops them."""
    await _send(settings, [(zone_id, None) for zone_id in zone_ids])


async def _send(settings: Settings, records: list[tuple[str, bytes | None]]) -> None:
    await publish(settings, settings.topic_zones, records)
