"""The pure core: one vehicle's state plus a batch of its pings -> new state and alerts.

Pings are put in event-time order before the rules see them. A ping whose
time equals one already processed is a duplicate and changes nothing; a ping
older than the vehicle's latest processed time is late and handed back to the
caller to be recorded (it never silently disappears).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from .models import Alert
from .observation import Observation
from .alerts import Cargo
from .permits.status import NO_PERMIT, PermitStatus
from .rules import (
    device_alarm, fatigue, handover, permits, plausibility, signal, speeding, stops, zones,
)
from .rules.context import StepContext
from .rules.handover import Handover
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


class Reference(msgspec.Struct, frozen=True, kw_only=True):
    """Reference data the rules read: zones in force, the batch's permits, province shapes."""

    zones: Mapping[str, Zone] = {}
    permits: Mapping[str, PermitStatus] = {}
    """Vehicle id -> its permit status (vehicles absent here have none)."""
    provinces: Mapping[str, Any] = {}
    """Province -> metric geometry; without it no handover is tracked."""


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
) -> Outcome:
    """Run every rule over ``batch`` in event-time order."""
    if state is None:
        state = VehicleState(vehicle_id=vehicle_id)
    alerts: list[Alert] = []
    handovers: list[Handover] = []
    late: list[int] = []
    duplicates = implausible = 0
    status = ref.permits.get(vehicle_id, NO_PERMIT)
    permit = status.permit.permit if status.permit is not None else None
    cargo = Cargo(permit.permit_id, permit.un_number, permit.hazard_class) if permit else None
    for index in sorted(range(len(batch)), key=lambda i: batch[i].ts_ms):
        obs = batch[index]
        previous = state.last
        if previous is not None and obs.ts_ms <= previous.ts_ms:
            if obs.ts_ms == previous.ts_ms:
                duplicates += 1
            else:
                late.append(index)
            continue
        ctx = StepContext(vehicle_id=vehicle_id, previous=previous, emitted_at=emitted_at,
                          cargo=cargo)
        state.suspect, jumped = plausibility.check(state.suspect, obs, ctx, cfg.plausibility)
        if jumped is not None:
            alerts.append(jumped)
            implausible += 1
            continue
        state.speeding, raised = speeding.step(state.speeding, obs, ctx, cfg.speeding)
        alerts.extend(raised)
        state.zones, raised = zones.step(state.zones, obs, ctx, ref.zones, cfg.zones,
                                         cfg.speeding, status.cargo_class(obs.ts_ms))
        alerts.extend(raised)
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
    state.duplicates += duplicates
    state.late += len(late)
    state.implausible += implausible
    return Outcome(state=state, alerts=alerts, late=late, duplicates=duplicates,
                   implausible=implausible, handovers=handovers)


def silence(
    state: VehicleState,
    now_ms: int,
    cfg: RulesConfig,
    emitted_at: datetime,
    ref: Reference = NO_REFERENCE,
) -> list[Alert]:
    """The timer's turn: rules that fire on the absence of pings, at clock time ``now_ms``."""
    if state.last is None:
        return []
    status = ref.permits.get(state.vehicle_id, NO_PERMIT)
    permit = status.permit.permit if status.permit is not None else None
    cargo = Cargo(permit.permit_id, permit.un_number, permit.hazard_class) if permit else None
    ctx = StepContext(vehicle_id=state.vehicle_id, previous=state.last, emitted_at=emitted_at,
                      cargo=cargo)
    state.signal, alerts = signal.on_silence(state.signal, state.last, now_ms, ctx, status,
                                             cfg.signal)
    return alerts
