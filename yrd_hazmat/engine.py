"""The pure core: one vehicle's state plus a batch of its pings -> new state and alerts.

Pings are put in event-time order before the rules see them. A ping whose
time equals one already processed (the last accepted fix, a suspect fix that
jumped implausibly far, or one waiting in the reorder buffer) is a duplicate
and changes nothing; a ping older than the vehicle's latest processed time is
late and handed back to the caller to be recorded (it never silently
disappears).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
import numpy as np

from .models import Alert, Handover
from .observation import Observation
from .alerts import Cargo
from .permits.status import NO_PERMIT, PermitStatus
from .rules import (
    device_alarm, fatigue, handover, permits, plausibility, signal, speeding, stops, zones,
)
from .rules.context import StepContext
from .state import VehicleState
from .zones.model import Zone


class RulesConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Configuration of every rule."""

    speeding: speeding.SpeedingConfig = speeding.SpeedingConfig()
    zones: zones.ZonesConfig = zones.ZonesConfig()
    permits: permits.PermitsConfig = permits.PermitsConfig()
    handover: handover.HandoverConfig = handover.HandoverConfig()
    plausibility: plausibility.PlausibilityConfig = plausibility.PlausibilityConfig()
    fatigue: fatigue.FatigueConfig = fatigue.FatigueConfig()
    stops: stops.StopsConfig = stops.StopsConfig()
    signal: signal.SignalConfig = signal.SignalConfig()
    lateness_ms: int = 0
    """How late (event time) a ping may arrive and still be put back in order; pings wait
    that long in the reorder buffer before the rules see them."""


class Reference(msgspec.Struct, frozen=True, kw_only=True):
    """Reference data the rules read: zones in force, the batch's permits, province shapes."""

    zones: Mapping[str, Zone] = {}
    permits: Mapping[str, PermitStatus] = {}
    """Vehicle id -> its permit status (vehicles absent here have none)."""
    provinces: Mapping[str, Any] = {}
    """Province -> metric geometry; without it no handover is tracked."""
    route_positions: Mapping[tuple[str, int], permits.RoutePosition] = {}
    """(vehicle id, ping ms) -> the ping's position on its permit's route, computed for a
    whole batch at once by :func:`route_positions_of`; pings absent here (e.g. from the
    reorder buffer) are placed one by one, with the same result."""


NO_REFERENCE = Reference()


class Outcome(msgspec.Struct, kw_only=True):
    state: VehicleState
    alerts: list[Alert]
    late: list[int]
    """Indices (into the input batch) of pings older than the vehicle's latest."""
    duplicates: int
    implausible: int
    """Pings that jumped implausibly far and did not move the truck."""
    handovers: list[Handover]


def advance(
    state: VehicleState | None,
    vehicle_id: str,
    batch: list[Observation],
    cfg: RulesConfig,
    emitted_at: datetime,
    ref: Reference = NO_REFERENCE,
    now_ms: int | None = None,
) -> Outcome:
    """Admit a batch of pings and run every rule over those whose turn has come.

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
    _run(state, ready, cfg, emitted_at, ref, out)
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


def _run(
    state: VehicleState,
    ready: list[Observation],
    cfg: RulesConfig,
    emitted_at: datetime,
    ref: Reference,
    out: Outcome,
) -> None:
    """Every rule over pings in event-time order."""
    if not ready:
        return
    vehicle_id = state.vehicle_id
    alerts, handovers = out.alerts, out.handovers
    status = ref.permits.get(vehicle_id, NO_PERMIT)
    cargo = _cargo(status)
    for obs in ready:
        ctx = StepContext(vehicle_id=vehicle_id, previous=state.last, emitted_at=emitted_at,
                          cargo=cargo)
        state.suspect, jumped = plausibility.check(state.suspect, obs, ctx, cfg.plausibility)
        if jumped is not None:
            alerts.append(jumped)
            out.implausible += 1
            continue
        state.speeding, raised = speeding.step(state.speeding, obs, ctx, cfg.speeding)
        alerts.extend(raised)
        state.zones, raised = zones.step(state.zones, obs, ctx, ref.zones, cfg.zones,
                                         cfg.speeding, status.cargo_class(obs.ts_ms))
        alerts.extend(raised)
        where = ref.route_positions.get((vehicle_id, obs.ts_ms))
        if where is None:
            where = permits.route_position(status, obs)
        state.permit, raised = permits.step(state.permit, obs, ctx, status, where, cfg.permits)
        alerts.extend(raised)
        if ref.provinces:
            state.handover, raised, crossed = handover.step(
                state.handover, obs, ctx, status, where, ref.provinces, cfg.handover)
            alerts.extend(raised)
            handovers.extend(crossed)
        state.alarms, raised = device_alarm.step(state.alarms, obs, ctx, status, ref.provinces)
        alerts.extend(raised)
        state.fatigue, raised = fatigue.step(state.fatigue, obs, ctx, cfg.fatigue)
        alerts.extend(raised)
        state.stop, raised = stops.step(state.stop, obs, ctx, ref.zones, cfg.stops)
        alerts.extend(raised)
        state.signal, raised = signal.on_ping(state.signal, obs, ctx, status, cfg.signal)
        alerts.extend(raised)
        state.last = obs
        state.pings += 1


def route_positions_of(
    observations: Mapping[str, list[Observation]], statuses: Mapping[str, PermitStatus]
) -> dict[tuple[str, int], permits.RoutePosition]:
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
    found = permits.route_positions(routes, np.asarray(xs), np.asarray(ys))
    return dict(zip(keys, found))


def silence(
    state: VehicleState,
    now_ms: int,
    cfg: RulesConfig,
    emitted_at: datetime,
    ref: Reference = NO_REFERENCE,
) -> Outcome:
    """The timer's turn at clock time ``now_ms``: run buffered pings whose lateness bound
    has passed, then the rules that fire on the absence of pings."""
    out = advance(state, state.vehicle_id, [], cfg, emitted_at, ref, now_ms=now_ms)
    if state.last is None:
        return out
    status = ref.permits.get(state.vehicle_id, NO_PERMIT)
    ctx = StepContext(vehicle_id=state.vehicle_id, previous=state.last, emitted_at=emitted_at,
                      cargo=_cargo(status))
    state.signal, alerts = signal.on_silence(state.signal, state.last, now_ms, ctx, status,
                                             cfg.signal)
    out.alerts.extend(alerts)
    return out


def timer_due(state: VehicleState, now_ms: int, cfg: RulesConfig, status: PermitStatus) -> bool:
    """Whether the timer should prompt this vehicle: buffered pings due, or a silence."""
    if state.pending:
        return now_ms - cfg.lateness_ms >= state.pending[0].ts_ms
    return state.last is not None and signal.due(state.signal, state.last, now_ms, status,
                                                 cfg.signal)
