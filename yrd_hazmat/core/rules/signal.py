"""SIGNAL_LOST: a truck on a trip that goes silent.

A vehicle whose trip is in progress (it moved within ``trip_recent_ms`` of
its last ping, or holds a permit in force) and sends nothing for
``lost_after_ms`` is SIGNAL_LOST (a report without a valid fix counts as being heard:
the truck is online, only without a position), with the event time at which the silence
passed the limit and the last known position. The worker's timer raises it
while no ping arrives (:func:`on_silence`); the next ping (:func:`step`) clears it, with the
gap and the distance jumped, and the zones the straight line across the gap
passed through (``zones_crossed``: the tunnel it was in). If pings resume before any timer noticed (a
replay, a burst of buffered positions), the ping itself raises and clears
it, so the alerts of a trace never depend on when it was delivered.
"""

from __future__ import annotations

import math

import msgspec

from ..models import Alert, AlertType, Severity
from ..observation import Observation
from ..permits.status import PermitStatus
from ..timeutil import from_ms
from ..zones.segments import time_at
from . import incident
from .context import StepContext
from .incident import Kind
from .rule import Rule, incident_of
from .thresholds import MOVING_KMH

TYPE = AlertType.SIGNAL_LOST
KIND = Kind(alert_type=TYPE, severity=Severity.WARNING)


class SignalConfig(msgspec.Struct, frozen=True, kw_only=True):
    lost_after_ms: int = 5 * 60_000
    trip_recent_ms: int = 10 * 60_000
    moving_kmh: float = MOVING_KMH


class SignalState(msgspec.Struct, kw_only=True, gc=False):
    last_moving_ms: int | None = None
    incident: str | None = None


def _on_trip(state: SignalState, last: Observation, status: PermitStatus, cfg: SignalConfig) -> bool:
    moved_recently = state.last_moving_ms is not None and (
        last.ts_ms - state.last_moving_ms <= cfg.trip_recent_ms)
    return moved_recently or status.validity(last.ts_ms) == "ok"


def _silent_since(last: Observation, ctx: StepContext, until_ms: int) -> int:
    """When the truck was last heard before ``until_ms``: its last fix, or a later report
    without a valid fix (proof of life: online, though without a position)."""
    heard = ctx.heard_ms
    if heard is not None and last.ts_ms < heard <= until_ms:
        return heard
    return last.ts_ms


def _raise(state: SignalState, last: Observation, since_ms: int, ctx: StepContext,
           cfg: SignalConfig) -> list[Alert]:
    """SIGNAL_LOST at the moment the silence since ``since_ms`` passed the limit, at the
    last known position (``last``)."""
    silent_at = msgspec.structs.replace(last, ts_ms=since_ms + cfg.lost_after_ms)
    state.incident, raised = incident.raise_once(state.incident, ctx, KIND, silent_at, {
        "last_ping": from_ms(last.ts_ms).isoformat(),
        "silent_for_s": cfg.lost_after_ms / 1000,
    })
    return raised


def step(
    state: SignalState, obs: Observation, ctx: StepContext, cfg: SignalConfig
) -> tuple[SignalState, list[Alert]]:
    """A ping arrived: clear a signal loss (raising it first if no timer did)."""
    alerts: list[Alert] = []
    last = ctx.previous
    if last is not None:
        since = _silent_since(last, ctx, obs.ts_ms)
        if obs.ts_ms - since >= cfg.lost_after_ms and _on_trip(state, last, ctx.permit, cfg):
            alerts += _raise(state, last, since, ctx, cfg)
        _, cleared = incident.clear(state.incident, ctx, KIND, obs, lambda: {
            "restored": True,
            "gap_s": (obs.ts_ms - last.ts_ms) / 1000,
            "distance_jumped_m": round(math.hypot(obs.x_m - last.x_m, obs.y_m - last.y_m), 1),
            "last_ping": from_ms(last.ts_ms).isoformat(),
        } | _zones_crossed(last, obs, ctx))
        alerts += cleared
    state.incident = None
    if obs.speed_kmh >= cfg.moving_kmh:
        state.last_moving_ms = obs.ts_ms
    return state, alerts


def _zones_crossed(last: Observation, obs: Observation, ctx: StepContext) -> dict:
    """The zones the silent stretch passed through (a tunnel, a bridge), if any."""
    if not ctx.crossings:
        return {}
    return {"zones_crossed": [
        {"zone_id": c.zone_id,
         "entered_at": from_ms(time_at(last, obs, c.enter)).isoformat(),
         "exited_at": from_ms(time_at(last, obs, c.leave)).isoformat()}
        for c in ctx.crossings]}


def due(
    state: SignalState, last: Observation, now_ms: int, ctx: StepContext, cfg: SignalConfig
) -> bool:
    """Whether a truck on a trip has been silent too long at ``now_ms`` and is not yet flagged."""
    return (state.incident is None
            and now_ms - _silent_since(last, ctx, now_ms) >= cfg.lost_after_ms
            and _on_trip(state, last, ctx.permit, cfg))


def on_silence(
    state: SignalState, last: Observation, now_ms: int, ctx: StepContext, cfg: SignalConfig,
) -> tuple[SignalState, list[Alert]]:
    """The timer's check: raise SIGNAL_LOST if the truck has been silent too long at ``now_ms``."""
    if not due(state, last, now_ms, ctx, cfg):
        return state, []
    return state, _raise(state, last, _silent_since(last, ctx, now_ms), ctx, cfg)


RULE = Rule(name="signal", state=SignalState, config=SignalConfig, raises=(TYPE,), step=step,
            open_incidents=incident_of, due=due, silence=on_silence)
