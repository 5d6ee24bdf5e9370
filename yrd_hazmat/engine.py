"""The pure core: one vehicle's state plus a batch of its pings -> new state and alerts.

Pings are put in event-time order before the rules see them. A ping whose
time equals one already processed (the last accepted fix, a suspect fix that
jumped implausibly far, or one waiting in the reorder buffer) is a duplicate
and changes nothing; a ping older than the vehicle's latest processed time is
late and handed back to the caller to be recorded (it never silently
disappears).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec
import numpy as np

from .alerts import Cargo
from .models import Alert, Handover
from .observation import Observation
from .permits.route import RoutePosition, route_position, route_positions
from .permits.status import NO_PERMIT, PermitStatus
from .rules.context import StepContext
from .rules.rule import Rule
from .ruleset import RULES
from .state import VehicleState
from .emergency.responders import ResourceIndex
from .zones.index import ZoneIndex
from .zones.model import Zone
from .zones.segments import Crossing, SegmentKey, SegmentLimits, crossings

RulesConfig = msgspec.defstruct(
    "RulesConfig",
    [(rule.name, rule.config, rule.config()) for rule in RULES if rule.config is not None]
    + [("lateness_ms", int, 0), ("segments", SegmentLimits, SegmentLimits())],
    frozen=True,
    kw_only=True,
    module=__name__,
    namespace={"__doc__": """Configuration of every rule of :data:`yrd_hazmat.ruleset.RULES`
    (one field per rule, named as the rule, its defaults the rule's), and ``lateness_ms``: how
    late (event time) a ping may arrive and still be put back in order; pings wait that long in
    the reorder buffer before the rules see them; ``segments``: when the straight line between
    two fixes is taken as the path (for the zones it passed through).
    :func:`yrd_hazmat.rules_config.rules_config` builds it from the settings."""},
)


class Reference(msgspec.Struct, frozen=True, kw_only=True):
    """Reference data the rules read: zones in force, the batch's permits, province shapes."""

    zones: Mapping[str, Zone] = {}
    permits: Mapping[str, PermitStatus] = {}
    """Vehicle id -> its permit status (vehicles absent here have none)."""
    provinces: Mapping[str, Any] = {}
    """Province -> metric geometry; without it no handover is tracked."""
    route_positions: Mapping[tuple[str, int], RoutePosition] = {}
    """(vehicle id, ping ms) -> the ping's position on its permit's route, computed for a
    whole batch at once by :func:`route_positions_of`; pings absent here (e.g. from the
    reorder buffer) are placed one by one, with the same result."""
    zone_index: ZoneIndex | None = None
    """The zones' spatial index: with it, the segments between fixes are checked too."""
    resources: ResourceIndex | None = None
    """Emergency resources: critical alarms propose the nearest responders."""
    crossings: Mapping[SegmentKey, tuple[Crossing, ...]] = {}
    """The zones each segment passes through, computed for a whole batch at once by
    :func:`yrd_hazmat.zones.segments.crossings_of`; segments absent here are checked one
    by one, with the same result."""


NO_REFERENCE = Reference()


class Outcome(msgspec.Struct, kw_only=True):
    state: VehicleState
    alerts: list[Alert]
    late: list[int]
    """Indices (into the input batch) of pings older than the vehicle's latest."""
    duplicates: int
    implausible: int
    """Pings a gate rule stopped: fixes that jumped implausibly far and did not move the truck."""
    handovers: list[Handover]


def advance(
    state: VehicleState | None,
    vehicle_id: str,
    batch: list[Observation],
    cfg: RulesConfig,
    emitted_at: datetime,
    ref: Reference = NO_REFERENCE,
    now_ms: int | None = None,
    rules: Sequence[Rule] = RULES,
) -> Outcome:
    """Admit a batch of pings and run ``rules`` (in order) over those whose turn has come.

    Pings wait in the vehicle's reorder buffer until a ping ``cfg.lateness_ms``
    newer has arrived (or, with ``now_ms``, until the clock is that far past
    them), then run in event-time order. So a trace shuffled within the
    lateness bound, or with duplicates, yields the same alerts as in order.
    A ping older than one already run is *late* (its batch index is returned).
    """
    if state is None:
        state = VehicleState(vehicle_id=vehicle_id)
    out = Outcome(state=state, alerts=[], late=[], duplicates=0, implausible=0, handovers=[])
    _admit(state, batch, out)
    horizon = state.pending[-1].ts_ms - cfg.lateness_ms if state.pending else None
    if now_ms is not None and horizon is not None:
        horizon = max(horizon, now_ms - cfg.lateness_ms)
    ready = [o for o in state.pending if horizon is not None and o.ts_ms <= horizon]
    state.pending = state.pending[len(ready):]
    _run(state, ready, _configured(rules, cfg), cfg.segments, emitted_at, ref, out)
    state.duplicates += out.duplicates
    state.late += len(out.late)
    state.implausible += out.implausible
    return out


def _admit(state: VehicleState, batch: list[Observation], out: Outcome) -> None:
    """Put new pings into the reorder buffer; count duplicates, note late ones.

    The pings already run are ``state.last`` and, after it, a ``state.suspect``
    (a fix that jumped implausibly far: it ran through the rules but did not
    move the truck). A ping at the time of either, or of one waiting in the
    buffer, is a duplicate: it changes nothing (a second copy of a suspect fix
    must not count as the fix that confirms it). One older than the newest
    already run is late.
    """
    seen = {o.ts_ms for o in (state.last, state.suspect) if o is not None}
    newest_run = max(seen, default=None)
    waiting = {o.ts_ms for o in state.pending}
    for index, obs in enumerate(batch):
        if obs.ts_ms in waiting or obs.ts_ms in seen:
            out.duplicates += 1
        elif newest_run is not None and obs.ts_ms < newest_run:
            out.late.append(index)
        else:
            waiting.add(obs.ts_ms)
            state.pending.append(obs)
    state.pending.sort(key=lambda o: o.ts_ms)


def _cargo(status: PermitStatus) -> Cargo | None:
    permit = status.document
    return Cargo(permit.permit_id, permit.un_number, permit.hazard_class) if permit else None


class _Plan(msgspec.Struct, frozen=True):
    """The rules as the loop calls them, with their configurations."""

    rules: tuple[tuple[Rule, Any], ...]
    """Each rule with its configuration (``None`` for a rule without one)."""
    steps: tuple[tuple[str, Any, Any, bool], ...]
    """(state field, step, configuration, gate) per rule, in order."""


_PLANS: dict[tuple[int, int], tuple[Sequence[Rule], RulesConfig, _Plan]] = {}


def _configured(rules: Sequence[Rule], cfg: RulesConfig) -> _Plan:
    """The plan of ``rules`` under ``cfg``, made once per (rules, cfg) object pair: hashing
    a configuration on every batch cost more than running a rule."""
    key = (id(rules), id(cfg))
    known = _PLANS.get(key)
    if known is not None and known[0] is rules and known[1] is cfg:
        return known[2]
    paired = tuple((rule, getattr(cfg, rule.name) if rule.config else None) for rule in rules)
    plan = _Plan(paired, tuple((rule.field, rule.step, rule_cfg, rule.gate)
                               for rule, rule_cfg in paired))
    if len(_PLANS) > 64:
        _PLANS.clear()
    _PLANS[key] = (rules, cfg, plan)  # (holding both keeps their ids from being reused)
    return plan


def _context(state: VehicleState, ref: Reference, emitted_at: datetime,
             handovers: list[Handover], limits: SegmentLimits | None = None) -> StepContext:
    """The context of the vehicle's next step (its previous observation is ``state.last``)."""
    status = ref.permits.get(state.vehicle_id, NO_PERMIT)
    return StepContext(vehicle_id=state.vehicle_id, previous=state.last, emitted_at=emitted_at,
                       cargo=_cargo(status), permit=status, zones=ref.zones,
                       provinces=ref.provinces, handovers=handovers, limits=limits,
                       resources=ref.resources)


def _run(
    state: VehicleState,
    ready: list[Observation],
    plan: _Plan,
    limits: SegmentLimits,
    emitted_at: datetime,
    ref: Reference,
    out: Outcome,
) -> None:
    """The rules over pings in event-time order, each ping through every rule in turn
    (a gate rule that raises stops it: it does not move the truck)."""
    if not ready:
        return
    alerts = out.alerts
    vehicle_id = state.vehicle_id
    steps = plan.steps
    zoned = ref.zone_index is not None and len(ref.zone_index) > 0
    base = _context(state, ref, emitted_at, out.handovers, limits)
    status = base.permit
    for obs in ready:
        where = ref.route_positions.get((vehicle_id, obs.ts_ms))
        if where is None:
            where = route_position(status, obs)
        previous = state.last
        crossed = ()
        if zoned and previous is not None and limits.plausible(previous, obs):
            crossed = _crossed(previous, obs, vehicle_id, ref)
        ctx = msgspec.structs.replace(base, previous=previous, where=where, crossings=crossed)
        for field, step, rule_cfg, gate in steps:
            new, raised = step(getattr(state, field), obs, ctx, rule_cfg)
            setattr(state, field, new)
            if raised:
                alerts.extend(raised)
                if gate:
                    out.implausible += 1
                    break
        else:
            state.last = obs
            state.pings += 1


def _crossed(previous: Observation, obs: Observation, vehicle_id: str,
             ref: Reference) -> tuple[Crossing, ...]:
    """The zones the (plausible) segment from the previous fix to ``obs`` passes through."""
    index = ref.zone_index
    assert index is not None
    found = ref.crossings.get((vehicle_id, previous.ts_ms, obs.ts_ms))
    return found if found is not None else crossings(index, [(previous, obs)])[0]


def route_positions_of(
    observations: Mapping[str, list[Observation]], statuses: Mapping[str, PermitStatus]
) -> dict[tuple[str, int], RoutePosition]:
    """Every ping's position on its vehicle's permitted route, in one vectorised call."""
    keys: list[tuple[str, int]] = []
    routes: list[Any] = []
    xs: list[float] = []
    ys: list[float] = []
    for vehicle_id, batch in observations.items():
        status = statuses.get(vehicle_id)
        if status is None or status.permit is None:
            continue
        route = status.permit.route_m
        for obs in batch:
            keys.append((vehicle_id, obs.ts_ms))
            routes.append(route)
            xs.append(obs.x_m)
            ys.append(obs.y_m)
    found = route_positions(routes, np.asarray(xs), np.asarray(ys))
    return dict(zip(keys, found))


def silence(
    state: VehicleState,
    now_ms: int,
    cfg: RulesConfig,
    emitted_at: datetime,
    ref: Reference = NO_REFERENCE,
    rules: Sequence[Rule] = RULES,
) -> Outcome:
    """The timer's turn at clock time ``now_ms``: run buffered pings whose lateness bound
    has passed, then the rules that fire on the absence of pings."""
    out = advance(state, state.vehicle_id, [], cfg, emitted_at, ref, now_ms=now_ms, rules=rules)
    last = state.last
    if last is None:
        return out
    ctx = _context(state, ref, emitted_at, out.handovers)
    for rule, rule_cfg in _configured(rules, cfg).rules:
        if rule.silence is not None:
            new, raised = rule.silence(getattr(state, rule.field), last, now_ms, ctx, rule_cfg)
            setattr(state, rule.field, new)
            out.alerts.extend(raised)
    return out


_TIMER = datetime.min
"""The emitted time of a context only asked whether something is due (no alert is made)."""


def timer_due(state: VehicleState, now_ms: int, cfg: RulesConfig, status: PermitStatus,
              rules: Sequence[Rule] = RULES) -> bool:
    """Whether the timer should prompt this vehicle: buffered pings due, or a silence."""
    if state.pending:
        return now_ms - cfg.lateness_ms >= state.pending[0].ts_ms
    last = state.last
    if last is None:
        return False
    ctx = StepContext(vehicle_id=state.vehicle_id, previous=last, emitted_at=_TIMER,
                      permit=status)
    return any(rule.due(getattr(state, rule.field), last, now_ms, ctx, rule_cfg)
               for rule, rule_cfg in _configured(rules, cfg).rules if rule.due is not None)
