"""FATIGUE_DRIVING: more than 4 h of driving without a rest of at least 20 min.

Road Traffic Safety Law Implementing Regulations, Art. 62 (both limits
configurable). A ping is *driving* when the ACC is on (JT/T 808 status bit 0)
and the speed is at least ``moving_kmh``; otherwise the truck rests. Only a
rest of ``min_rest_ms`` of event time ends a driving stint; a gap in the
pings counts as rest when the truck moved slower than ``moving_kmh`` on
average across it (it was parked), as driving otherwise.
"""

from __future__ import annotations

import math

import msgspec

from ..models import Alert, AlertType, Severity
from ..observation import Observation
from ..timeutil import from_ms
from . import incident
from .context import StepContext
from .incident import Kind
from .rule import Rule, incident_of
from .thresholds import MOVING_KMH

TYPE = AlertType.FATIGUE_DRIVING
KIND = Kind(alert_type=TYPE, severity=Severity.WARNING)
ACC_ON = 1 << 0


class FatigueConfig(msgspec.Struct, frozen=True, kw_only=True):
    max_driving_ms: int = 4 * 3600_000
    min_rest_ms: int = 20 * 60_000
    moving_kmh: float = MOVING_KMH


class FatigueState(msgspec.Struct, kw_only=True, gc=False):
    driving_since_ms: int | None = None
    resting_since_ms: int | None = None
    incident: str | None = None


def driving(obs: Observation, cfg: FatigueConfig) -> bool:
    return bool(obs.status_flags & ACC_ON) and obs.speed_kmh >= cfg.moving_kmh


def step(
    state: FatigueState, obs: Observation, ctx: StepContext, cfg: FatigueConfig
) -> tuple[FatigueState, list[Alert]]:
    """Advance the driving/rest accounting by one observation."""
    previous = ctx.previous
    if previous is not None and obs.ts_ms - previous.ts_ms >= cfg.min_rest_ms:
        hours = (obs.ts_ms - previous.ts_ms) / 3600_000
        average_kmh = math.hypot(obs.x_m - previous.x_m, obs.y_m - previous.y_m) / 1000 / hours
        if average_kmh < cfg.moving_kmh:  # parked through the gap: that was a rest
            state.resting_since_ms = previous.ts_ms
    if not driving(obs, cfg):
        if state.resting_since_ms is None:
            state.resting_since_ms = obs.ts_ms
        return _after_rest(state, obs, ctx, cfg)
    alerts = _after_rest(state, obs, ctx, cfg)[1] if state.resting_since_ms is not None else []
    state.resting_since_ms = None
    if state.driving_since_ms is None:
        state.driving_since_ms = obs.ts_ms
    driven = obs.ts_ms - state.driving_since_ms
    if driven > cfg.max_driving_ms:
        driving_since = state.driving_since_ms
        state.incident, raised = incident.raise_once(state.incident, ctx, KIND, obs, lambda: {
            "driving_since": from_ms(driving_since).isoformat(),
            "driven_h": round(driven / 3600_000, 2),
            "max_driving_h": cfg.max_driving_ms / 3600_000,
            "min_rest_min": cfg.min_rest_ms / 60_000,
        })
        alerts += raised
    return state, alerts


def _after_rest(
    state: FatigueState, obs: Observation, ctx: StepContext, cfg: FatigueConfig
) -> tuple[FatigueState, list[Alert]]:
    """A rest long enough ends the stint (and clears its alert)."""
    assert state.resting_since_ms is not None
    rested = obs.ts_ms - state.resting_since_ms
    if rested < cfg.min_rest_ms:
        return state, []
    resting_since = state.resting_since_ms
    state.incident, cleared = incident.clear(state.incident, ctx, KIND, obs, lambda: {
        "rested_min": round(rested / 60_000, 1),
        "rest_started": from_ms(resting_since).isoformat(),
    })
    state.driving_since_ms = None
    return state, cleared


RULE = Rule(name="fatigue", state=FatigueState, config=FatigueConfig, raises=(TYPE,),
            step=step, open_incidents=incident_of)
