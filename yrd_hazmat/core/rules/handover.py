"""PROVINCE_HANDOVER, HANDOVER_NOT_PERMITTED and HANDOVER_EXPECTED: borders as handovers.

A truck's province is *confirmed*; a ping in another province (or outside the
region) starts a pending crossing, confirmed once the truck is ``margin_m``
beyond the old province or has stayed across for ``min_across_ms``. Driving
along a border therefore never hands over back and forth. A crossing seen
only across a gap in the pings (signal lost on one side, back on the other)
confirms like any other: the crossing point is where the straight line
between the last ping before and the first ping after meets the old
province's border, and its time is interpolated along that line.

Each confirmed crossing yields a :class:`Handover` (for ``yrd.handovers``) and
a PROVINCE_HANDOVER alert (info, for the receiving province). If the receiving
province is not among the permit's provinces, HANDOVER_NOT_PERMITTED
(critical) is raised until the truck crosses again. A truck on its permitted
route that will reach the route's next border within ``notice_ms`` at its
recent speed raises HANDOVER_EXPECTED (info) for the receiving province, once
per crossing, cleared by the handover.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import shapely

from ..alerts import incident_id
from ..geo.projection import to_lonlat
from ..models import Alert, AlertType, Handover, Severity
from ..observation import Observation
from ..permits.route import RoutePosition
from ..permits.status import PermitStatus
from ..timeutil import from_ms
from . import incident
from .context import StepContext
from .incident import Kind
from .rule import Rule
from .thresholds import MOVING_KMH

HANDOVER = AlertType.PROVINCE_HANDOVER
NOT_PERMITTED = AlertType.HANDOVER_NOT_PERMITTED
EXPECTED = AlertType.HANDOVER_EXPECTED
OUTSIDE = "outside"


def _kind(alert_type: AlertType, severity: Severity, subject: str) -> Kind:
    return Kind(alert_type=alert_type, severity=severity, subject=subject)


class HandoverConfig(msgspec.Struct, frozen=True, kw_only=True):
    margin_m: float = 200.0
    min_across_ms: int = 60_000
    notice_ms: int = 15 * 60_000
    moving_kmh: float = MOVING_KMH
    """Slower than this, no HANDOVER_EXPECTED (no arrival time to announce)."""
    speed_smoothing: float = 0.2
    """Weight of each new ping in the moving average of speed used for ETAs."""


class Fix(msgspec.Struct, frozen=True, gc=False):
    ts_ms: int
    x_m: float
    y_m: float


class HandoverState(msgspec.Struct, kw_only=True, gc=False):
    known: bool = False
    province: str | None = None
    last_inside: Fix | None = None
    """Latest ping in the confirmed province."""
    pending: str | None = None
    pending_first: Fix | None = None
    not_permitted: str | None = None
    expected: dict[str, str] = {}
    """Pre-noticed route borders (key: position along the route) -> incident id."""
    speed_kmh: float | None = None
    along_m: float | None = None
    """Position along the permitted route at the previous ping (gives the direction)."""

    @property
    def open_incidents(self) -> list[str]:
        return [i for i in (self.not_permitted, *self.expected.values()) if i]


def step(
    state: HandoverState, obs: Observation, ctx: StepContext, cfg: HandoverConfig
) -> tuple[HandoverState, list[Alert]]:
    """Advance the handover tracking of one vehicle by one observation; a confirmed
    crossing's :class:`Handover` goes to ``ctx.handovers``. Without province shapes in
    the context, provinces are not tracked."""
    provinces, status, where = ctx.provinces, ctx.permit, ctx.where
    if not provinces:
        return state, []
    fix = Fix(obs.ts_ms, obs.x_m, obs.y_m)
    w = cfg.speed_smoothing
    state.speed_kmh = obs.speed_kmh if state.speed_kmh is None else (
        (1 - w) * state.speed_kmh + w * obs.speed_kmh)
    if not state.known:
        state.known, state.province, state.last_inside = True, obs.province, fix
        return state, _pre_notice(state, obs, ctx, status, where, cfg)
    if obs.province == state.province:
        state.pending, state.pending_first, state.last_inside = None, None, fix
        return state, _pre_notice(state, obs, ctx, status, where, cfg)
    if state.pending != obs.province:
        state.pending, state.pending_first = obs.province, fix
    assert state.pending_first is not None
    beyond = _distance_beyond(state.province, obs, provinces)
    if beyond < cfg.margin_m and obs.ts_ms - state.pending_first.ts_ms < cfg.min_across_ms:
        return state, []
    alerts, handover = _hand_over(state, obs, ctx, status, provinces)
    ctx.handovers.append(handover)
    return state, alerts + _pre_notice(state, obs, ctx, status, where, cfg)


def _distance_beyond(old: str | None, obs: Observation, provinces: Mapping[str, Any]) -> float:
    """How far the ping is from the old province (or, coming from outside, into the new one)."""
    point = shapely.Point(obs.x_m, obs.y_m)
    if old is not None:
        return float(provinces[old].distance(point))
    if obs.province is None:
        return 0.0
    return float(provinces[obs.province].boundary.distance(point))


def _crossing(old: str | None, before: Fix, after: Fix, provinces: Mapping[str, Any]) -> Fix:
    """Where and when the straight line between two fixes left the old province."""
    if old is None or (before.x_m, before.y_m) == (after.x_m, after.y_m):
        return after
    segment = shapely.LineString([(before.x_m, before.y_m), (after.x_m, after.y_m)])
    meets = segment.intersection(provinces[old].boundary)
    if meets.is_empty:
        return after
    along = min(segment.project(part.centroid) for part in shapely.get_parts(meets))
    point = segment.interpolate(along)
    ts = before.ts_ms + round((after.ts_ms - before.ts_ms) * along / segment.length)
    return Fix(ts, point.x, point.y)


def _hand_over(
    state: HandoverState,
    obs: Observation,
    ctx: StepContext,
    status: PermitStatus,
    provinces: Mapping[str, Any],
) -> tuple[list[Alert], Handover]:
    old, new = state.province, state.pending
    before = state.last_inside or state.pending_first
    assert before is not None and state.pending_first is not None
    cross = _crossing(old, before, state.pending_first, provinces)
    lon, lat = (float(v) for v in to_lonlat(cross.x_m, cross.y_m))
    subject = f"{old or OUTSIDE}>{new or OUTSIDE}"
    permit = status.document
    handover = Handover(
        handover_id=incident_id(ctx.vehicle_id, HANDOVER, subject, cross.ts_ms),
        vehicle_id=ctx.vehicle_id,
        from_province=old,
        to_province=new,
        crossing_time=from_ms(cross.ts_ms).isoformat(),
        crossing_lon=round(lon, 6),
        crossing_lat=round(lat, 6),
        confirmed_at=from_ms(obs.ts_ms).isoformat(),
        gap_s=(state.pending_first.ts_ms - before.ts_ms) / 1000,
        permit_id=permit.permit_id if permit else None,
        un_number=permit.un_number if permit else None,
        hazard_class=permit.hazard_class if permit else None,
        cargo_name=permit.cargo_name if permit else None,
        quantity_kg=permit.quantity_kg if permit else None,
    )
    details = msgspec.to_builtins(handover)
    alerts = [incident.momentary(ctx, _kind(HANDOVER, Severity.INFO, subject), obs,
                                 details, id_ts_ms=cross.ts_ms)]
    # an open HANDOVER_NOT_PERMITTED (raised at an earlier crossing; clearing needs its
    # id, not its subject) ends when the truck leaves that province
    state.not_permitted, cleared = incident.clear(
        state.not_permitted, ctx, _kind(NOT_PERMITTED, Severity.CRITICAL, subject), obs,
        lambda: details | {"reason": "left"}, province=old)
    alerts += cleared
    for key, open_id in list(state.expected.items()):
        if key.endswith(f">{new or OUTSIDE}"):
            _, cleared = incident.clear(open_id, ctx, _kind(EXPECTED, Severity.INFO, key),
                                        obs, details, province=new)
            alerts += cleared
            del state.expected[key]
    if permit is not None and new is not None and new not in permit.provinces \
            and status.validity(obs.ts_ms) == "ok":
        state.not_permitted, raised = incident.raise_once(
            None, ctx, _kind(NOT_PERMITTED, Severity.CRITICAL, subject), obs,
            details | {"permitted_provinces": list(permit.provinces)})
        alerts += raised
    state.province, state.last_inside = new, Fix(obs.ts_ms, obs.x_m, obs.y_m)
    state.pending, state.pending_first = None, None
    return alerts, handover


def _pre_notice(
    state: HandoverState,
    obs: Observation,
    ctx: StepContext,
    status: PermitStatus,
    where: RoutePosition | None,
    cfg: HandoverConfig,
) -> list[Alert]:
    """HANDOVER_EXPECTED for the route's next border if the truck will reach it soon."""
    if where is None or status.permit is None or status.validity(obs.ts_ms) != "ok":
        return []
    permit = status.permit
    previous_along, state.along_m = state.along_m, where.along_m
    if where.distance_m > permit.permit.corridor_m or not state.speed_kmh or state.speed_kmh < cfg.moving_kmh:
        return []
    here, province = where.along_m, state.province
    backwards = previous_along is not None and here < previous_along
    for b in (reversed(permit.borders) if backwards else permit.borders):
        # (backwards: driving the route from its destination towards its origin)
        if backwards and b.along_m < here and b.to_province == province:
            along, to_province = b.along_m, b.from_province
            break
        if not backwards and b.along_m > here and b.from_province == province:
            along, to_province = b.along_m, b.to_province
            break
    else:
        return []
    distance = abs(along - here)
    eta_s = distance / (state.speed_kmh / 3.6)
    if eta_s * 1000 > cfg.notice_ms:
        return []
    key = f"{along:.0f}:{state.province or OUTSIDE}>{to_province or OUTSIDE}"
    if key in state.expected:
        return []
    border = next(b for b in permit.borders if b.along_m == along)
    state.expected[key], raised = incident.raise_once(
        None, ctx, _kind(EXPECTED, Severity.INFO, key), obs,
        {
            "from_province": state.province,
            "to_province": to_province,
            "eta": from_ms(obs.ts_ms + round(eta_s * 1000)).isoformat(),
            "eta_s": round(eta_s, 1),
            "distance_m": round(distance, 1),
            "border_point": [round(border.lon, 6), round(border.lat, 6)],
            "speed_kmh": round(state.speed_kmh, 1),
        },
        province=to_province,
    )
    return raised


RULE = Rule(name="handover", state=HandoverState, config=HandoverConfig,
            raises=(HANDOVER, NOT_PERMITTED, EXPECTED), step=step,
            open_incidents=lambda state: state.open_incidents)
