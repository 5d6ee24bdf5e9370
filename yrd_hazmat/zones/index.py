"""Vectorised point-in-zone evaluation with hysteresis bands.

Each zone is kept three times in metres: as drawn, shrunk by the hysteresis
margin (*deep* inside) and grown by it (*near*). One STRtree over the grown
shapes gives bounding-box candidates for a whole batch of points; exact tests
run on prepared geometries with ``shapely.intersects_xy``. A point gets a
level per zone it is near: 2 deep inside, 1 inside, 0 outside but within the
margin. Points farther out produce nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
import numpy as np
import shapely

from .model import Zone

DEEP, INSIDE, NEAR = 2, 1, 0


class CompiledZone(msgspec.Struct, frozen=True):
    """A zone with its hysteresis bands, built once per zone version."""

    zone: Zone
    deep: object  # metric geometry shrunk by the margin (may be empty)
    near: object  # metric geometry grown by the margin

    @classmethod
    def build(cls, zone: Zone, margin_m: float) -> "CompiledZone":
        deep = zone.metric.buffer(-margin_m) if margin_m > 0 else zone.metric
        near = zone.metric.buffer(margin_m) if margin_m > 0 else zone.metric
        for geom in (zone.metric, deep, near):
            shapely.prepare(geom)
        return cls(zone=zone, deep=deep, near=near)


class ZoneHits(msgspec.Struct, frozen=True):
    """Result of one evaluation: parallel arrays of (point, zone, level)."""

    point: np.ndarray
    zone: np.ndarray
    level: np.ndarray


class ZoneIndex:
    """An immutable spatial index over a set of compiled zones."""

    def __init__(self, compiled: Iterable[CompiledZone]) -> None:
        self.compiled = sorted(compiled, key=lambda c: c.zone.zone_id)
        self.zones = [c.zone for c in self.compiled]
        self.by_id = {z.zone_id: z for z in self.zones}
        self._raw = np.array([c.zone.metric for c in self.compiled], dtype=object)
        self._deep = np.array([c.deep for c in self.compiled], dtype=object)
        near = np.array([c.near for c in self.compiled], dtype=object)
        self._near = near
        self._tree = shapely.STRtree(near) if len(near) else None

    def __len__(self) -> int:
        return len(self.zones)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> ZoneHits:
        """Levels of every (point, zone) pair where the point is within the zone's margin."""
        empty = np.empty(0, dtype=np.intp)
        if self._tree is None or len(x) == 0:
            return ZoneHits(empty, empty, empty)
        points = shapely.points(np.column_stack((x, y)))
        p, z = self._tree.query(points)
        near = shapely.intersects_xy(self._near[z], x[p], y[p])
        p, z = p[near], z[near]
        level = np.full(len(p), NEAR, dtype=np.intp)
        inside = shapely.intersects_xy(self._raw[z], x[p], y[p])
        level[inside] = INSIDE
        idx = np.flatnonzero(inside)
        deep = shapely.intersects_xy(self._deep[z[idx]], x[p[idx]], y[p[idx]])
        level[idx[deep]] = DEEP
        return ZoneHits(p, z, level)


def depth_m(zone: Zone, x: float, y: float) -> float:
    """Signed distance from the zone's edge in metres: positive inside, negative outside."""
    point = shapely.Point(x, y)
    distance = float(shapely.distance(zone.metric.boundary, point))
    return distance if zone.metric.intersects(point) else -distance
