"""PROLONGED_STOP: a loaded truck standing still too long where it should not.

Stopped (slower than ``moving_kmh``) for longer than ``max_stop_ms``, or
``max_stop_sensitive_ms`` inside a restricted zone; never inside a zone of
kind ``depot`` (where trucks are meant to wait). Cleared when it moves again.
"""

from __future__ import annotations

from functools import lru_cache

import msgspec

from ..models import Alert, AlertType, Severity
from ..observation import Observation
from ..timeutil import from_ms
from ..zones.index import NEAR
from . import sustained
from .context import StepContext
from .rule import Rule, incident_of
from .sustained import Sustained, SustainedRule
from .thresholds import MOVING_KMH

TYPE = AlertType.PROLONGED_STOP


class StopsConfig(msgspec.Struct, frozen=True, kw_only=True):
    moving_kmh: float = MOVING_KMH
    max_stop_ms: int = 30 * 60_000
    max_stop_sensitive_ms: int = 10 * 60_000


def step(
    state: Sustained, obs: Observation, ctx: StepContext, cfg: StopsConfig
) -> tuple[Sustained, list[Alert]]:
    """Advance the stop accounting of one vehicle by one observation."""
    in_depot, sensitive = False, []
    if obs.zones:
        zones = ctx.zones
        inside = [zones[z] for z, level in obs.zones if level > NEAR and z in zones]
        in_depot = any(z.props.kind == "depot" for z in inside)
        sensitive = [z.zone_id for z in inside if z.props.kind != "depot"]
    stopped = obs.speed_kmh < cfg.moving_kmh and not in_depot
    limit = cfg.max_stop_sensitive_ms if sensitive else cfg.max_stop_ms

    def details() -> dict:
        out = {"max_stop_min": limit / 60_000, "in_zones": sensitive}
        if state.since_ms is not None and state.incident is None:
            out["stopped_since"] = from_ms(state.since_ms).isoformat()
        return out

    return sustained.step(state, stopped, obs, ctx, _rule(limit), details)


@lru_cache(maxsize=16)
def _rule(raise_after_ms: int) -> SustainedRule:
    return SustainedRule(alert_type=TYPE, severity=Severity.WARNING, raise_after_ms=raise_after_ms)


RULE = Rule(name="stops", state_field="stop", state=Sustained, config=StopsConfig,
            raises=(TYPE,), step=step, open_incidents=incident_of)
