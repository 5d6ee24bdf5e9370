"""SPEEDING: over the legal limit for longer than a minimum time.

Limits from the Measures for Road Transport of Dangerous Goods (2019),
Art. 46: 80 km/h on expressways, 60 km/h on other roads (configurable). One
alert per episode: raised once the truck has been over the limit for
``min_duration_ms`` of event time, cleared by the first ping at or under the
limit. A gap in the pings longer than ``max_gap_ms`` restarts the count,
since nothing is known about the speed in between.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ..alerts import incident_id
from ..models import Alert, AlertState, Severity
from ..observation import Observation
from ..timeutil import from_ms
from .context import StepContext

TYPE = "SPEEDING"


class SpeedingConfig(msgspec.Struct, frozen=True, kw_only=True):
    expressway_kmh: float = 80.0
    other_kmh: float = 60.0
    unknown_road_as: Literal["expressway", "other"] = "expressway"
    min_duration_ms: int = 30_000
    max_gap_ms: int = 300_000

    def limit_for(self, road_class: str | None) -> float:
        """The limit on this road class; an unknown class counts as ``unknown_road_as``."""
        road = road_class or self.unknown_road_as
        return self.expressway_kmh if road == "expressway" else self.other_kmh


class SpeedingState(msgspec.Struct, kw_only=True):
    over_since_ms: int | None = None
    max_speed_kmh: float = 0.0
    incident: str | None = None


def step(
    state: SpeedingState, obs: Observation, ctx: StepContext, cfg: SpeedingConfig
) -> tuple[SpeedingState, list[Alert]]:
    """Advance the speeding episode of one vehicle by one observation."""
    limit = cfg.limit_for(obs.road_class)
    if obs.speed_kmh <= limit:
        if state.incident is None:
            return SpeedingState(), []
        cleared = ctx.alert(
            TYPE,
            Severity.WARNING,
            AlertState.CLEARED,
            state.incident,
            obs,
            {
                "speed_kmh": obs.speed_kmh,
                "limit_kmh": limit,
                "max_speed_kmh": state.max_speed_kmh,
                "over_since": from_ms(state.over_since_ms or obs.ts_ms).isoformat(),
                "duration_s": (obs.ts_ms - (state.over_since_ms or obs.ts_ms)) / 1000,
            },
        )
        return SpeedingState(), [cleared]

    gap = obs.ts_ms - ctx.previous.ts_ms if ctx.previous is not None else 0
    if state.over_since_ms is None or (state.incident is None and gap > cfg.max_gap_ms):
        state = SpeedingState(over_since_ms=obs.ts_ms, max_speed_kmh=obs.speed_kmh)
    else:
        state = SpeedingState(
            over_since_ms=state.over_since_ms,
            max_speed_kmh=max(state.max_speed_kmh, obs.speed_kmh),
            incident=state.incident,
        )
    assert state.over_since_ms is not None
    over_for_ms = obs.ts_ms - state.over_since_ms
    if state.incident is not None or over_for_ms < cfg.min_duration_ms:
        return state, []
    state.incident = incident_id(ctx.vehicle_id, TYPE, "", obs.ts_ms)
    raised = ctx.alert(
        TYPE,
        Severity.WARNING,
        AlertState.RAISED,
        state.incident,
        obs,
        {
            "speed_kmh": obs.speed_kmh,
            "limit_kmh": limit,
            "road_class": obs.road_class or f"unknown (limit for {cfg.unknown_road_as})",
            "over_since": from_ms(state.over_since_ms).isoformat(),
            "over_for_s": over_for_ms / 1000,
        },
    )
    return state, [raised]
