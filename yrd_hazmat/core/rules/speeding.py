"""SPEEDING: over the legal limit for longer than a minimum time.

Limits from the Measures for Road Transport of Dangerous Goods (2019),
Art. 46: 80 km/h on expressways, 60 km/h on other roads (configurable, see
:class:`~.thresholds.RoadLimits`). One alert per episode (see
:mod:`.speed_episode`).
"""

from __future__ import annotations

from functools import lru_cache

import msgspec

from ..models import Alert, AlertType
from ..observation import Observation
from . import speed_episode
from .context import StepContext
from .rule import Rule, incident_of
from .speed_episode import EpisodeRule, SpeedEpisode
from .thresholds import SPEEDING_MAX_GAP_MS, RoadLimits

TYPE = AlertType.SPEEDING


class SpeedingConfig(msgspec.Struct, frozen=True, kw_only=True):
    limits: RoadLimits = RoadLimits()
    min_duration_ms: int = 30_000
    max_gap_ms: int = SPEEDING_MAX_GAP_MS

    @property
    def episode(self) -> EpisodeRule:
        return _episode(self.min_duration_ms, self.max_gap_ms)


@lru_cache(maxsize=16)
def _episode(min_duration_ms: int, max_gap_ms: int) -> EpisodeRule:
    return EpisodeRule(alert_type=TYPE, min_duration_ms=min_duration_ms, max_gap_ms=max_gap_ms)


def step(
    state: SpeedEpisode, obs: Observation, ctx: StepContext, cfg: SpeedingConfig
) -> tuple[SpeedEpisode, list[Alert]]:
    """Advance the speeding episode of one vehicle by one observation."""
    road = obs.road_class
    return speed_episode.step(
        state, obs, ctx, cfg.episode, cfg.limits.limit_for(road),
        lambda: {"road_class": road or f"unknown (limit for {cfg.limits.unknown_road_as})"})


RULE = Rule(name="speeding", state=SpeedEpisode, config=SpeedingConfig, raises=(TYPE,),
            step=step, open_incidents=incident_of)
