"""A condition that must hold for a while before it raises, and stop for a while to clear.

The shared core of the permit rules: raised once the condition has held
continuously for ``raise_after_ms`` of event time, cleared once it has been
false continuously for ``clear_after_ms`` (0: at the first observation where
it is false). Flapping inside either delay changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union

import msgspec

from ..alerts import incident_id
from ..models import Alert, AlertState, AlertType, Severity
from ..observation import Observation
from ..timeutil import from_ms
from .context import StepContext


class Sustained(msgspec.Struct, kw_only=True, gc=False):
    since_ms: int | None = None
    """Start of the current run of the condition (or, while raised, of its absence)."""
    incident: str | None = None


Details = Union[dict[str, Any], Callable[[], dict[str, Any]]]
"""An alert's details, or a function that builds them (called only when an alert is made)."""


def _details(details: Details) -> dict[str, Any]:
    return details() if callable(details) else details


class SustainedRule(msgspec.Struct, frozen=True, kw_only=True):
    alert_type: AlertType
    severity: Severity
    raise_after_ms: int
    clear_after_ms: int = 0
    subject: str = ""


def step(
    state: Sustained,
    active: bool,
    obs: Observation,
    ctx: StepContext,
    rule: SustainedRule,
    details: Details,
) -> tuple[Sustained, list[Alert]]:
    """Advance by one observation where the condition is ``active`` or not."""
    if state.incident is None:
        if not active:
            return Sustained(), []
        since = state.since_ms if state.since_ms is not None else obs.ts_ms
        if obs.ts_ms - since < rule.raise_after_ms:
            return Sustained(since_ms=since), []
        incident = incident_id(ctx.vehicle_id, rule.alert_type, rule.subject, obs.ts_ms)
        raised = ctx.alert(rule.alert_type, rule.severity, AlertState.RAISED, incident, obs,
                           _details(details) | {"since": from_ms(since).isoformat()})
        return Sustained(incident=incident), [raised]
    if active:
        return Sustained(incident=state.incident), []
    since = state.since_ms if state.since_ms is not None else obs.ts_ms
    if obs.ts_ms - since < rule.clear_after_ms:
        return Sustained(since_ms=since, incident=state.incident), []
    return Sustained(), [close(state, obs, ctx, rule, details)]


def close(
    state: Sustained, obs: Observation, ctx: StepContext, rule: SustainedRule, details: Details
) -> Alert:
    """The clear of an open incident at ``obs``."""
    assert state.incident is not None
    return ctx.alert(rule.alert_type, rule.severity, AlertState.CLEARED, state.incident, obs,
                     _details(details))
