"""NO_VALID_PERMIT, PERMIT_TIME_WINDOW and ROUTE_DEVIATION: a loaded truck against its permit.

- NO_VALID_PERMIT (critical): a vehicle that must hold a permit moves, for
  ``min_moving_ms``, with none in force because it has none or it was revoked.
  Cleared once a permit covers it again.
- PERMIT_TIME_WINDOW (warning): it moves under a permit outside the permit's
  time window (not yet valid, or expired). Cleared back inside the window.
- ROUTE_DEVIATION (warning): farther than the permit's ``corridor_m`` from the
  route for ``deviation_raise_ms``; cleared after ``deviation_clear_ms`` back
  inside. Details give the distance and the nearest point on the route. Off the
  corridor since when the segment from the previous fix (inside) left it, by
  linear interpolation of the distance, when that segment is a plausible path.
"""

from __future__ import annotations

import re
from functools import lru_cache

import msgspec

from ..models import Alert, AlertType, Severity
from ..observation import Observation
from ..permits.route import nearest_route_point
from ..timeutil import from_ms
from . import sustained
from .context import StepContext
from .rule import Rule
from .sustained import Sustained, SustainedRule
from .thresholds import MOVING_KMH

NO_VALID_PERMIT = AlertType.NO_VALID_PERMIT
TIME_WINDOW = AlertType.PERMIT_TIME_WINDOW
ROUTE_DEVIATION = AlertType.ROUTE_DEVIATION


class PermitsConfig(msgspec.Struct, frozen=True, kw_only=True):
    required_pattern: str = ".*"
    """Vehicles (plates, as a regular expression matched in full) that must hold a permit
    to move: ``.*`` every vehicle, an empty pattern none."""
    moving_kmh: float = MOVING_KMH
    min_moving_ms: int = 60_000
    deviation_raise_ms: int = 60_000
    deviation_clear_ms: int = 30_000

    def required(self, vehicle_id: str) -> bool:
        return _required(self.required_pattern, vehicle_id)

    @property
    def no_permit(self) -> SustainedRule:
        return _sustained(NO_VALID_PERMIT, Severity.CRITICAL, self.min_moving_ms, 0)

    @property
    def window(self) -> SustainedRule:
        return _sustained(TIME_WINDOW, Severity.WARNING, self.min_moving_ms, 0)

    @property
    def deviation(self) -> SustainedRule:
        return _sustained(ROUTE_DEVIATION, Severity.WARNING, self.deviation_raise_ms,
                          self.deviation_clear_ms)


@lru_cache(maxsize=16)
def _sustained(alert_type: AlertType, severity: Severity, raise_after_ms: int,
               clear_after_ms: int) -> SustainedRule:
    return SustainedRule(alert_type=alert_type, severity=severity,
                         raise_after_ms=raise_after_ms, clear_after_ms=clear_after_ms)


@lru_cache(maxsize=1 << 17)
def _required(pattern: str, vehicle_id: str) -> bool:
    return _compiled(pattern).fullmatch(vehicle_id) is not None


@lru_cache(maxsize=8)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class PermitState(msgspec.Struct, kw_only=True, gc=False):
    no_permit: Sustained = msgspec.field(default_factory=Sustained)
    window: Sustained = msgspec.field(default_factory=Sustained)
    deviation: Sustained = msgspec.field(default_factory=Sustained)
    distance_m: float | None = None
    """Distance of the previous fix from the permitted route."""

    @property
    def open_incidents(self) -> list[str]:
        return [s.incident for s in (self.no_permit, self.window, self.deviation) if s.incident]


def step(
    state: PermitState, obs: Observation, ctx: StepContext, cfg: PermitsConfig
) -> tuple[PermitState, list[Alert]]:
    """Advance the permit rules of one vehicle by one observation."""
    status, where = ctx.permit, ctx.where
    validity = status.validity(obs.ts_ms)
    moving = obs.speed_kmh >= cfg.moving_kmh
    alerts: list[Alert] = []

    required = cfg.required(ctx.vehicle_id)
    lacking = required and validity in ("none", "revoked")
    # (each condition below runs only when it holds or was holding: a quiet one stays quiet)
    watched = state.no_permit
    active = lacking and (moving or watched.incident is not None)
    if active or watched.incident is not None or watched.since_ms is not None:
        def details() -> dict:
            out = {"reason": validity, "required": required}
            if status.permit is not None:
                out["permit_id"] = status.permit.permit_id
            return out

        state.no_permit, raised = sustained.step(watched, active, obs, ctx, cfg.no_permit,
                                                 details)
        alerts += raised

    outside = validity in ("not_yet_valid", "expired")
    watched = state.window
    active = outside and (moving or watched.incident is not None)
    if active or watched.incident is not None or watched.since_ms is not None:
        def window() -> dict:
            out = {"reason": validity}
            if status.permit is not None:
                out |= {"valid_from": from_ms(status.permit.valid_from_ms).isoformat(),
                        "valid_until": from_ms(status.permit.valid_until_ms).isoformat()}
            return out

        state.window, raised = sustained.step(watched, active, obs, ctx, cfg.window, window)
        alerts += raised

    if where is None or validity == "revoked":
        state.deviation, cleared = sustained.close(state.deviation, obs, ctx, cfg.deviation,
                                                   {"reason": f"permit {validity}"})
        state.distance_m = None
        return state, alerts + cleared
    assert status.permit is not None
    corridor = status.permit.permit.corridor_m
    off = where.distance_m > corridor
    watched = state.deviation
    if off or watched.incident is not None or watched.since_ms is not None:
        starts = off and watched.since_ms is None and watched.incident is None
        state.deviation, raised = sustained.step(
            watched, off, obs, ctx, cfg.deviation,
            lambda: {"distance_m": round(where.distance_m, 1), "corridor_m": corridor,
                     "nearest_route_point": nearest_route_point(status, where),
                     "permit_id": status.permit.permit_id},
            began_ms=_left_corridor(state.distance_m, where.distance_m, corridor, obs, ctx)
            if starts else None)
        alerts += raised
    state.distance_m = where.distance_m
    return state, alerts


def _left_corridor(before_m: float | None, after_m: float, corridor_m: float,
                   obs: Observation, ctx: StepContext) -> int | None:
    """When the segment from the previous fix (inside the corridor) left it, if it did."""
    previous = ctx.previous
    if previous is None or before_m is None or not (before_m <= corridor_m < after_m) \
            or not ctx.straight_to(obs):
        return None
    fraction = (corridor_m - before_m) / (after_m - before_m)
    return previous.ts_ms + round((obs.ts_ms - previous.ts_ms) * fraction)


RULE = Rule(name="permits", state_field="permit", state=PermitState, config=PermitsConfig,
            raises=(NO_VALID_PERMIT, TIME_WINDOW, ROUTE_DEVIATION), step=step,
            open_incidents=lambda state: state.open_incidents)
