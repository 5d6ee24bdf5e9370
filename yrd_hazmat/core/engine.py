"""The pure core: one vehicle's state plus a batch of its pings -> new state and alerts.

Pings are put in event-time order before the rules see them. A ping whose
time equals one already processed (the last accepted fix, a suspect fix that
jumped implausibly far, one waiting in the reorder buffer, or a kept fix
already judged) is a duplicate and changes nothing.

A fix older than the vehicle's latest processed one is the truck's history: a
terminal back from a dead zone reports where it is, then uploads the fixes it
kept (JT/T 808 0x0704), and a platform re-sends what its link lost. Those fixes
wait (``state.kept``) until a live fix follows them, or ``cfg.history_settle_ms``,
so that an upload split over several batches is judged whole; then they are
judged as of their own time by the rules (:func:`_judge_history`): the zones,
permit and limits at their times, the path between them, with their own event
time, without rewinding the truck's live state; what they raise is marked
``uploaded_late`` and closed at the last kept fix. Only a fix older than the
horizon (``cfg.history_horizon_ms`` before the truck's latest) is handed back
to the caller to be refused (it never silently disappears).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec
import numpy as np

from .alerts import Cargo
from .models import Alert, AlertState, Handover
from .observation import Observation
from .permits.route import RoutePosition, route_position, route_positions
from .permits.status import NO_PERMIT, PermitStatus
from .rules.context import StepContext
from .rules.rule import Rule
from .ruleset import RULES
from .state import VehicleState
from .timeutil import from_ms, to_ms
from .emergency.responders import ResourceIndex
from .zones.index import ZoneIndex
from .zones.model import Zone
from .zones.segments import Crossing, SegmentKey, SegmentLimits, crossings

RulesConfig = msgspec.defstruct(
    "RulesConfig",
    [(rule.name, rule.config, rule.config()) for rule in RULES if rule.config is not None]
    + [("lateness_ms", int, 0), ("segments", SegmentLimits, SegmentLimits()),
       ("history_horizon_ms", int, 7 * 24 * 3600_000), ("coverage_gap_ms", int, 60_000),
       ("history_settle_ms", int, 30_000)],
    frozen=True,
    kw_only=True,
    module=__name__,
    namespace={"__doc__": """Configuration of every rule of :data:`yrd_hazmat.core.ruleset.RULES`
    (one field per rule, named as the rule, its defaults the rule's), and ``lateness_ms``: how
    late (event time) a ping may arrive and still be put back in order; pings wait that long in
    the reorder buffer before the rules see them; ``segments``: when the straight line between
    two fixes is taken as the path (for the zones it passed through); ``history_horizon_ms``:
    how far before the truck's latest fix a kept fix is still judged; ``coverage_gap_ms``:
    judged fixes closer together than this cover the time between them (a fix uploaded
    late inside is not judged again); ``history_settle_ms``: kept fixes wait for the rest of
    their upload until a live fix follows them, or this long (processing time).
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
    :func:`yrd_hazmat.core.zones.segments.crossings_of`; segments absent here are checked one
    by one, with the same result."""


NO_REFERENCE = Reference()


class Outcome(msgspec.Struct, kw_only=True):
    state: VehicleState
    alerts: list[Alert]
    late: list[int]
    """Indices (into the input batch) of fixes older than the history horizon (refused)."""
    uploaded_late: int = 0
    """Kept fixes judged as history (older than the truck's latest)."""
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
    heard_ms: int | None = None,
) -> Outcome:
    """Admit a batch of pings and run ``rules`` (in order) over those whose turn has come.

    Pings wait in the vehicle's reorder buffer until a ping ``cfg.lateness_ms``
    newer has arrived (or, with ``now_ms``, until the clock is that far past
    them), then run in event-time order. So a trace shuffled within the
    lateness bound, or with duplicates, yields the same alerts as in order.
    A fix older than one already run is judged as history; one beyond the history
    horizon is *late* (its batch index is returned). ``heard_ms``: the latest report
    without a valid fix (proof of life, not a position: the truck is not silent).

    The two halves, :func:`admit` then :func:`judge`, let a caller with many vehicles
    (:mod:`.batch`) compute the reference data of exactly the fixes whose turn has come,
    for all of them at once, in between.
    """
    return judge(admit(state, vehicle_id, batch, cfg, emitted_at, now_ms, heard_ms),
                 cfg, emitted_at, ref, rules)


class Admitted(msgspec.Struct, kw_only=True):
    """A vehicle's batch admitted: what runs now (``ready``, in event-time order, after
    the kept fixes if ``history`` says they are to be judged)."""

    outcome: Outcome
    ready: list[Observation]
    history: bool


def admit(
    state: VehicleState | None,
    vehicle_id: str,
    batch: list[Observation],
    cfg: RulesConfig,
    emitted_at: datetime,
    now_ms: int | None = None,
    heard_ms: int | None = None,
) -> Admitted:
    """The first half of :func:`advance`: the pings into the vehicle's buffers, duplicates
    and late fixes counted, and which fixes run now."""
    if state is None:
        state = VehicleState(vehicle_id=vehicle_id)
    out = Outcome(state=state, alerts=[], late=[], duplicates=0, implausible=0, handovers=[])
    if heard_ms is not None and (state.heard_ms is None or heard_ms > state.heard_ms):
        state.heard_ms = heard_ms
    live_after = _admit(state, batch, out, cfg.history_horizon_ms, emitted_at)
    history = bool(state.kept) and (live_after or (
        now_ms is not None and now_ms - state.kept_at_ms >= cfg.history_settle_ms))
    pending = state.pending
    if not pending:
        return Admitted(outcome=out, ready=[], history=history)
    horizon = pending[-1].ts_ms - cfg.lateness_ms
    if now_ms is not None:
        horizon = max(horizon, now_ms - cfg.lateness_ms)
    if pending[-1].ts_ms <= horizon:  # (every fix waiting is due: the usual case)
        state.pending = []
        return Admitted(outcome=out, ready=pending, history=history)
    ready = [o for o in pending if o.ts_ms <= horizon]
    state.pending = pending[len(ready):]
    return Admitted(outcome=out, ready=ready, history=history)


def judge(admitted: Admitted, cfg: RulesConfig, emitted_at: datetime,
          ref: Reference = NO_REFERENCE, rules: Sequence[Rule] = RULES) -> Outcome:
    """The second half of :func:`advance`: the kept fixes judged as history if their time
    has come (before the live fixes: the past's alerts come before the present's), then
    the rules over the fixes whose turn has come."""
    out = admitted.outcome
    state = out.state
    if admitted.history:
        _judge_history(state, _configured(_for_history(rules), cfg), cfg, emitted_at, ref, out)
    _run(state, admitted.ready, _configured(rules, cfg), cfg.segments, emitted_at, ref, out)
    covered = state.covered
    if covered and (len(covered) > MAX_SPANS
                    or covered[0][1] < covered[-1][1] - cfg.history_horizon_ms):
        state.covered = _merged(covered, [], covered[-1][1] - cfg.history_horizon_ms)
    state.duplicates += out.duplicates
    state.late += len(out.late)
    state.implausible += out.implausible
    return out


def _admit(state: VehicleState, batch: list[Observation], out: Outcome,
           history_horizon_ms: int, arrived_at: datetime) -> bool:
    """Put new pings into the reorder buffer and kept fixes into theirs (``state.kept``);
    count duplicates. Returns whether a live fix came after the kept fixes waiting: the
    upload they belong to is over (a terminal resumes reporting live once it has sent
    what it kept), so they can be judged together.

    A ping at the time of one waiting in a buffer, or inside a span the rules have
    judged already (``state.covered``: every fix run, the suspect ones that jumped
    implausibly far included, and the kept fixes judged), is a duplicate: it changes
    nothing (a second copy of a suspect fix must not count as the fix that confirms
    it). One older than the newest already run is a kept fix, judged as history, unless
    it is older than the horizon: then it is late.
    """
    if not state.covered and state.last is not None:  # a state kept before spans were
        state.covered = sorted((o.ts_ms, o.ts_ms) for o in (state.last, state.suspect) if o)
    covered = state.covered
    newest_run = covered[-1][1] if covered else None
    waiting = ({o.ts_ms for o in state.pending} | {o.ts_ms for o in state.kept}
               if state.pending or state.kept else set())
    live_after = False
    for index, obs in enumerate(batch):
        ts_ms = obs.ts_ms
        if ts_ms in waiting or (
                newest_run is not None and ts_ms <= newest_run and _covered(covered, ts_ms)):
            out.duplicates += 1
        elif newest_run is not None and obs.ts_ms < newest_run - history_horizon_ms:
            out.late.append(index)
        elif newest_run is not None and obs.ts_ms < newest_run:
            waiting.add(obs.ts_ms)
            if not state.kept:
                state.kept_at_ms = to_ms(arrived_at)
            state.kept.append(obs)
            live_after = False
        else:
            waiting.add(obs.ts_ms)
            state.pending.append(obs)
            live_after = True
    pending = state.pending
    if len(pending) > 1 and any(a.ts_ms > b.ts_ms for a, b in zip(pending, pending[1:])):
        pending.sort(key=_ts_ms)
    return live_after


def _ts_ms(obs: Observation) -> int:
    return obs.ts_ms


def _covered(spans: list[tuple[int, int]], ts_ms: int) -> bool:
    """Whether ``ts_ms`` lies in one of the (sorted, disjoint) judged spans."""
    for start, end in reversed(spans):  # (the newest first: a re-sent ping is usually recent)
        if start <= ts_ms <= end:
            return True
        if end < ts_ms:
            return False
    return False


MAX_SPANS = 256
"""Judged spans remembered per vehicle (beyond them, the oldest are forgotten)."""


def _cover(spans: list[tuple[int, int]], ts_ms: int, gap_ms: int) -> None:
    """Add a fix run in event-time order to the judged spans (it extends the newest span
    when it follows it closely)."""
    if spans and spans[-1][0] <= ts_ms and ts_ms - spans[-1][1] <= gap_ms:
        if ts_ms > spans[-1][1]:
            spans[-1] = (spans[-1][0], ts_ms)
    else:
        spans.append((ts_ms, ts_ms))


def _merged(spans: list[tuple[int, int]], added: list[tuple[int, int]], floor_ms: int
            ) -> list[tuple[int, int]]:
    """Judged spans with ``added`` merged in, sorted; those ending before ``floor_ms``
    dropped, and at most :data:`MAX_SPANS` (the newest) kept."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans + added):
        if end < floor_ms:
            continue
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out[-MAX_SPANS:]


_NOT_FOR_HISTORY = frozenset({"handover", "signal"})
"""Rules that do not judge kept fixes: a handover is confirmed live (across the gap, with
its interpolated crossing); a silence is over once the fixes arrive."""
_HISTORY_RULES: dict[int, tuple[Sequence[Rule], tuple[Rule, ...]]] = {}


def _for_history(rules: Sequence[Rule]) -> tuple[Rule, ...]:
    """``rules`` without those that do not judge kept fixes (made once per rule list)."""
    known = _HISTORY_RULES.get(id(rules))
    if known is None or known[0] is not rules:
        known = _HISTORY_RULES[id(rules)] = (
            rules, tuple(r for r in rules if r.name not in _NOT_FOR_HISTORY))
    return known[1]


def _judge_history(state: VehicleState, plan: "_Plan", cfg: RulesConfig, emitted_at: datetime,
                   ref: Reference, out: Outcome) -> None:
    """Judge the kept fixes waiting (``state.kept``) as of their own time: the rules over
    them in event-time order, in a state of their own (the live state is not rewound);
    every alert marked ``uploaded_late``, every incident still open at the last kept fix
    closed there (the truck's present is known to be later)."""
    kept = sorted(state.kept, key=lambda o: o.ts_ms)
    state.kept, state.kept_at_ms = [], None
    past = VehicleState(vehicle_id=state.vehicle_id)
    judged = Outcome(state=past, alerts=[], late=[], duplicates=0, implausible=0, handovers=[])
    _run(past, kept, plan, cfg.segments, emitted_at, ref, judged)
    end = kept[-1]
    still_open = set(past.open_incidents)
    closed = [_closed_at(alert, end) for alert in judged.alerts
              if alert.state is AlertState.RAISED and alert.incident_id in still_open]
    out.alerts.extend(msgspec.structs.replace(alert, details=alert.details | {"uploaded_late": True})
                      for alert in judged.alerts + closed)
    out.implausible += judged.implausible
    out.uploaded_late += len(kept)
    newest = state.covered[-1][1] if state.covered else end.ts_ms
    state.covered = _merged(state.covered, past.covered, newest - cfg.history_horizon_ms)


def _closed_at(alert: Alert, end: Observation) -> Alert:
    """The clear of an incident raised by kept fixes and open at the last of them."""
    return msgspec.structs.replace(
        alert, alert_id=f"{alert.incident_id}:{AlertState.CLEARED.value}",
        state=AlertState.CLEARED, ts=from_ms(end.ts_ms), lat=end.lat, lon=end.lon,
        province=end.province, city=end.city,
        details={"closed": "at the last of the fixes uploaded late"})


def _cargo(status: PermitStatus) -> Cargo | None:
    permit = status.document
    return Cargo(permit.permit_id, permit.un_number, permit.hazard_class) if permit else None


class _Plan(msgspec.Struct, frozen=True):
    """The rules as the loop calls them, with their configurations."""

    rules: tuple[tuple[Rule, Any], ...]
    """Each rule with its configuration (``None`` for a rule without one)."""
    steps: tuple[tuple[str, Any, Any, bool], ...]
    """(state field, step, configuration, gate) per rule, in order."""
    coverage_gap_ms: int
    """See :class:`RulesConfig`."""


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
                               for rule, rule_cfg in paired), cfg.coverage_gap_ms)
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
                       resources=ref.resources, heard_ms=state.heard_ms)


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
    status = ref.permits.get(vehicle_id, NO_PERMIT)
    cargo, handovers = _cargo(status), out.handovers
    zones, provinces, resources = ref.zones, ref.provinces, ref.resources
    covered, gap_ms = state.covered, plan.coverage_gap_ms
    for obs in ready:
        _cover(covered, obs.ts_ms, gap_ms)
        where = ref.route_positions.get((vehicle_id, obs.ts_ms))
        if where is None:
            where = route_position(status, obs)
        previous = state.last
        crossed = ()
        if zoned and previous is not None and limits.plausible(previous, obs):
            crossed = _crossed(previous, obs, vehicle_id, ref)
        ctx = StepContext(vehicle_id=vehicle_id, previous=previous, emitted_at=emitted_at,
                          cargo=cargo, permit=status, where=where, zones=zones,
                          provinces=provinces, limits=limits, crossings=crossed,
                          resources=resources, handovers=handovers, heard_ms=state.heard_ms)
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
    if state.kept and now_ms - state.kept_at_ms >= cfg.history_settle_ms:
        return True
    if state.pending:
        return now_ms - cfg.lateness_ms >= state.pending[0].ts_ms
    last = state.last
    if last is None:
        return False
    ctx = StepContext(vehicle_id=state.vehicle_id, previous=last, emitted_at=_TIMER,
                      permit=status, heard_ms=state.heard_ms)
    return any(rule.due(getattr(state, rule.field), last, now_ms, ctx, rule_cfg)
               for rule, rule_cfg in _configured(rules, cfg).rules if rule.due is not None)
