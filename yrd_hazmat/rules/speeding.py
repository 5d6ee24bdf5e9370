"""SPEEDING: over the legal limit for longer than a minimum time.

Limits from the Measures for Road Transport of Dangerous Goods (2019),
Art. 46: 80 km/h on expressways, 60 km/h on other roads (configurable). One
alert per episode (see :mod:`.speed_episode`).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ..models import Alert, AlertType
from ..observation import Observation
from . import speed_episode
from .context import StepContext
from .speed_episode import EpisodeRule, SpeedEpisode
from .thresholds import SPEEDING_MAX_GAP_MS

TYPE = AlertType.SPEEDING


class SpeedingConfig(msgspec.Struct, frozen=True, kw_only=True):
    expressway_kmh: float = 80.0
    other_kmh: float = 60.0
    unknown_road_as: Literal["expressway", "other"] = "expressway"
    min_duration_ms: int = 30_000
    max_gap_ms: int = SPEEDING_MAX_GAP_MS

    def limit_for(self, road_class: str | None) -> float:
        """The limit on this road class; an unknown class counts as ``unknown_road_as``."""
        road = road_class or self.unknown_road_as
        return self.expressway_kmh if road == "expressway" else self.other_kmh

    @property
    def episode(self) -> EpisodeRule:
        return EpisodeRule(
            alert_type=TYPE, min_duration_ms=self.min_duration_ms, max_gap_ms=self.max_gap_ms
        )


def step(
    state: SpeedEpisode, obs: Observation, ctx: StepContext, cfg: SpeedingConfig
) -> tuple[SpeedEpisode, list[Alert]]:
    """Advance the speeding episode of one vehicle by one observation."""
    road = obs.road_class or f"unknown (limit for {cfg.unknown_road_as})"
    return speed_episode.step(
        state, obs, ctx, cfg.episode, cfg.limit_for(obs.road_class), {"road_class": road}
    )
