"""Zones passed through between two fixes: the straight segment from one fix to the next.

A truck pinging every 30 s at 80 km/h moves 670 m between fixes, and in a
tunnel it sends nothing: it can cross a narrow zone with no fix inside. So
each segment between consecutive fixes of a vehicle is checked against the
zones (batch-wise, :meth:`~.index.ZoneIndex.crossings`), and the rules see the
zones it passed through as :class:`Crossing`\\ s, with where and when (by
linear interpolation along the segment) it entered and left each.

A segment is only taken as the path if it is plausible (:class:`SegmentLimits`):
over a longer gap, or faster on average, the truck need not have driven straight.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import msgspec
import numpy as np

from ..geo.projection import to_lonlat
from ..observation import Observation
from .index import ZoneIndex


class SegmentLimits(msgspec.Struct, frozen=True, kw_only=True):
    """When the straight line between two fixes is taken as the truck's path."""

    max_gap_ms: int = 15 * 60_000
    """Longest gap between the fixes (a tunnel, a bridge without signal)."""
    max_speed_kmh: float = 130.0
    """Highest average speed between them (faster: not a straight drive, or a bad fix)."""

    def plausible(self, a: Observation, b: Observation) -> bool:
        gap_ms = b.ts_ms - a.ts_ms
        if gap_ms <= 0 or gap_ms > self.max_gap_ms:
            return False
        metres = math.hypot(b.x_m - a.x_m, b.y_m - a.y_m)
        return metres / (gap_ms / 1000) * 3.6 <= self.max_speed_kmh


class Crossing(msgspec.Struct, frozen=True, gc=False):
    """A zone the segment passes through: where it enters and leaves, as fractions 0-1
    of the segment (0: at the first fix, 1: at the second)."""

    zone_id: str
    enter: float
    leave: float


class Point(msgspec.Struct, frozen=True):
    """A point on a segment: event time, metres, WGS-84."""

    ts_ms: int
    x_m: float
    y_m: float
    lon: float
    lat: float


def time_at(a: Observation, b: Observation, fraction: float) -> int:
    """When the truck was at ``fraction`` of the way from fix ``a`` to ``b`` (event ms)."""
    return a.ts_ms + round((b.ts_ms - a.ts_ms) * fraction)


def point_at(a: Observation, b: Observation, fraction: float) -> Point:
    """Where and when the truck was at ``fraction`` of the way from fix ``a`` to ``b``."""
    x = a.x_m + (b.x_m - a.x_m) * fraction
    y = a.y_m + (b.y_m - a.y_m) * fraction
    lon, lat = to_lonlat(x, y)
    return Point(ts_ms=time_at(a, b, fraction), x_m=x, y_m=y,
                 lon=round(float(lon), 6), lat=round(float(lat), 6))


def _ts_ms(obs: Observation) -> int:
    return obs.ts_ms


SegmentKey = tuple[str, int, int]
"""(vehicle id, event time of the first fix, of the second)."""


def crossings(index: ZoneIndex, pairs: Sequence[tuple[Observation, Observation]]
              ) -> list[tuple[Crossing, ...]]:
    """The zones each segment passes through, for many segments at once."""
    out: list[list[Crossing]] = [[] for _ in pairs]
    if not pairs or len(index) == 0:
        return [()] * len(pairs)
    coords = np.array([(a.x_m, a.y_m, b.x_m, b.y_m) for a, b in pairs], dtype=float)
    hits = index.crossings(coords[:, 0], coords[:, 1], coords[:, 2], coords[:, 3])
    zones = index.zones
    for s, z, enter, leave in zip(hits.segment.tolist(), hits.zone.tolist(),
                                  hits.enter.tolist(), hits.leave.tolist()):
        out[s].append(Crossing(zones[z].zone_id, enter, leave))
    return [tuple(sorted(c, key=_zone_id)) if len(c) > 1 else tuple(c) for c in out]


def _zone_id(crossing: Crossing) -> str:
    return crossing.zone_id


def crossings_of(
    observations: Mapping[str, list[Observation]],
    lasts: Mapping[str, Observation | None],
    index: ZoneIndex,
    limits: SegmentLimits,
) -> dict[SegmentKey, tuple[Crossing, ...]]:
    """The crossings of every plausible segment of a batch, in one vectorised call: per
    vehicle, from its last fix (``lasts``) through its new ones in event-time order."""
    keys: list[SegmentKey] = []
    pairs: list[tuple[Observation, Observation]] = []
    plausible = limits.plausible
    for vehicle_id, batch in observations.items():
        previous = lasts.get(vehicle_id)
        if len(batch) > 1:
            batch = sorted(batch, key=_ts_ms)
        for obs in batch:
            if previous is not None and plausible(previous, obs):
                keys.append((vehicle_id, previous.ts_ms, obs.ts_ms))
                pairs.append((previous, obs))
            previous = obs
    return dict(zip(keys, crossings(index, pairs)))
