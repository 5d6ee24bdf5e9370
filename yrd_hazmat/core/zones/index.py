"""Vectorised point-in-zone evaluation with hysteresis bands.

Each zone is kept three times in metres: as drawn, shrunk by the hysteresis
margin (*deep* inside) and grown by it (*near*). One STRtree over the grown
shapes gives bounding-box candidates for a whole batch of points; exact tests
run on prepared geometries with ``shapely.intersects_xy``. A point gets a
level per zone it is near: 2 deep inside, 1 inside, 0 outside but within the
margin. Points farther out produce nothing.

Segments (the straight line between two fixes of a truck) are checked the same
way, batch-wise (:meth:`ZoneIndex.crossings`): a segment passes through a zone
when it reaches its *core*, the zone shrunk by the margin, or, for a zone
thinner than twice the margin (a bridge, a water-source strip), by 90 % of its
half-width. A segment that only grazes a zone (a corner cut less deep than
that) passes through nothing.
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
    core: object
    """What a segment must reach to pass through the zone: ``deep``, or for a zone thinner
    than twice the margin, the zone shrunk by 90 % of its half-width (never empty)."""

    @classmethod
    def build(cls, zone: Zone, margin_m: float) -> "CompiledZone":
        deep = zone.metric.buffer(-margin_m) if margin_m > 0 else zone.metric
        near = zone.metric.buffer(margin_m) if margin_m > 0 else zone.metric
        core = deep
        if deep.is_empty:  # thinner than twice the margin
            half_width = shapely.length(shapely.maximum_inscribed_circle(zone.metric, 0.5))
            core = zone.metric.buffer(-0.9 * half_width)
            if core.is_empty:
                core = zone.metric
        for geom in (zone.metric, deep, near, core):
            shapely.prepare(geom)
        return cls(zone=zone, deep=deep, near=near, core=core)


class ZoneHits(msgspec.Struct, frozen=True):
    """Result of one evaluation: parallel arrays of (point, zone, level)."""

    point: np.ndarray
    zone: np.ndarray
    level: np.ndarray


class SegmentHits(msgspec.Struct, frozen=True):
    """Result of :meth:`ZoneIndex.crossings`: parallel arrays of (segment, zone, where the
    segment enters and leaves the zone as drawn, as fractions 0-1 of its length)."""

    segment: np.ndarray
    zone: np.ndarray
    enter: np.ndarray
    leave: np.ndarray


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
        self._core_tree = (shapely.STRtree([c.core for c in self.compiled])
                           if self.compiled else None)

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


    def crossings(self, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray,
                  y1: np.ndarray) -> SegmentHits:
        """Every (segment, zone) pair where the segment from (x0, y0) to (x1, y1) passes
        through the zone (reaches its core), with where it enters and leaves the zone."""
        empty = np.empty(0, dtype=np.intp)
        if self._core_tree is None or len(x0) == 0:
            return SegmentHits(empty, empty, np.empty(0), np.empty(0))
        starts = np.column_stack((x0, y0))
        ends = np.column_stack((x1, y1))
        moved = np.any(starts != ends, axis=1)
        segments = np.full(len(x0), None, dtype=object)
        segments[moved] = shapely.linestrings(np.stack((starts[moved], ends[moved]), axis=1))
        segments[~moved] = shapely.points(starts[~moved])
        s, z = self._core_tree.query(segments, predicate="intersects")
        if len(s) == 0:
            return SegmentHits(empty, empty, np.empty(0), np.empty(0))
        enter = np.ones(len(s))
        leave = np.zeros(len(s))
        # A segment with both ends in the zone enters it at 0 and leaves it at 1, whatever
        # it does in between (the usual case: a truck driving through a zone); only the
        # others need their chords through the zone.
        zones = self._raw[z]
        both = (moved[s] & shapely.intersects_xy(zones, x0[s], y0[s])
                & shapely.intersects_xy(zones, x1[s], y1[s]))
        enter[both] = 0.0
        leave[both] = 1.0
        rest = np.flatnonzero(~both)
        if len(rest):
            chords = shapely.intersection(zones[rest], segments[s[rest]])
            coords, pair = shapely.get_coordinates(chords, return_index=True)
            pair = rest[pair]
            a, b = starts[s[pair]], ends[s[pair]]
            ab = b - a
            length2 = np.einsum("ij,ij->i", ab, ab)
            frac = np.divide(np.einsum("ij,ij->i", coords - a, ab), length2,
                             out=np.zeros(len(pair)), where=length2 > 0)
            np.minimum.at(enter, pair, frac)
            np.maximum.at(leave, pair, frac)
        return SegmentHits(s, z, np.clip(enter, 0.0, 1.0), np.clip(leave, 0.0, 1.0))


def depth_m(zone: Zone, x: float, y: float) -> float:
    """Signed distance from the zone's edge in metres: positive inside, negative outside."""
    point = shapely.Point(x, y)
    distance = float(shapely.distance(zone.metric.boundary, point))
    return distance if zone.metric.intersects(point) else -distance
