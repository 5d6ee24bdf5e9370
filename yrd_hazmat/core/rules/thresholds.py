"""Thresholds that mean the same thing in every rule, defined once.

The rules take them as the defaults of their configuration; the settings
(``YRD_MOVING_KMH``, ``YRD_SPEEDING_MAX_GAP_S``, ``YRD_SPEED_LIMIT_*``) set them for all rules at once
in :func:`yrd_hazmat.rules_config.rules_config`.
"""

from __future__ import annotations

from typing import Literal

import msgspec

MOVING_KMH = 5.0
"""At or above this GNSS speed a truck is moving; below it, standing (a receiver at rest
reports a few km/h of noise). Used by the permit, stop, fatigue, signal and handover rules."""

SPEEDING_MAX_GAP_MS = 5 * 60_000
"""A gap between pings longer than this restarts a speeding count (nothing is known of the
speed in between): for SPEEDING and ZONE_SPEEDING alike."""


class RoadLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The legal speed limits of a hazmat truck by road class (Measures for Road Transport
    of Dangerous Goods, 2019, Art. 46): what SPEEDING checks, and what a zone's own limit
    must be lower than for ZONE_SPEEDING to apply. Set by ``YRD_SPEED_LIMIT_*``."""

    expressway_kmh: float = 80.0
    other_kmh: float = 60.0
    unknown_road_as: Literal["expressway", "other"] = "expressway"

    def limit_for(self, road_class: str | None) -> float:
        """The limit on this road class; an unknown class counts as ``unknown_road_as``."""
        road = road_class or self.unknown_road_as
        return self.expressway_kmh if road == "expressway" else self.other_kmh
