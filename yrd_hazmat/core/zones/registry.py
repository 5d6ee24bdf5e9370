"""The live set of zones of one worker: loaded from a file, changed from the zones topic."""

from __future__ import annotations

from pathlib import Path

from .index import CompiledZone, ZoneIndex
from ..codec import Rejection
from .model import Zone, parse_collection


class ZoneRegistry:
    """Zones by id, compiled once per version; :attr:`index` is rebuilt only after a change."""

    def __init__(self, margin_m: float) -> None:
        self.margin_m = margin_m
        self._compiled: dict[str, CompiledZone] = {}
        self._index = ZoneIndex([])
        self._dirty = False
        self.version = 0

    def put(self, zone: Zone) -> None:
        self._compiled[zone.zone_id] = CompiledZone.build(zone, self.margin_m)
        self._changed()

    def delete(self, zone_id: str) -> bool:
        """Remove a zone; returns whether it existed."""
        existed = self._compiled.pop(zone_id, None) is not None
        if existed:
            self._changed()
        return existed

    def _changed(self) -> None:
        self._dirty = True
        self.version += 1

    @property
    def index(self) -> ZoneIndex:
        """The current index (rebuilding the tree is cheap: zones stay compiled)."""
        if self._dirty:
            self._index = ZoneIndex(self._compiled.values())
            self._dirty = False
        return self._index

    def __len__(self) -> int:
        return len(self._compiled)

    def load_file(self, path: str | Path) -> list[tuple[str, Rejection]]:
        """Add every valid zone of a GeoJSON FeatureCollection; returns the rejected ones."""
        valid, rejected = parse_collection(path)
        for zone, _ in valid:
            self.put(zone)
        return rejected
