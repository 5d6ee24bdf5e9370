"""A condition that must hold for a while before it raises, and stop for a while to clear.

The shared core of the permit rules and PROLONGED_STOP: raised once the
condition has held continuously for ``raise_after_ms`` of event time, cleared
once it has been false continuously for ``clear_after_ms`` (0: at the first
observation where it is false). Flapping inside either delay changes nothing.
"""

from __future__ import annotations

import msgspec

from ..models import Alert
from ..observation import Observation
from ..timeutil import from_ms
from . import incident
from .context import StepContext
from .incident import Details, Kind, details_of


class Sustained(msgspec.Struct, kw_only=True, gc=False):
    since_ms: int | None = None
    """Start of the current run of the condition (or, while raised, of its absence)."""
    incident: str | None = None


class SustainedRule(Kind, frozen=True, kw_only=True):
    raise_after_ms: int
    clear_after_ms: int = 0


def step(
    state: Sustained,
    active: bool,
    obs: Observation,
    ctx: StepContext,
    rule: SustainedRule,
    details: Details,
    began_ms: int | None = None,
) -> tuple[Sustained, list[Alert]]:
    """Advance by one observation where the condition is ``active`` or not (``began_ms``:
    when a condition first seen active at ``obs`` began, if known to be earlier)."""
    if state.incident is None:
        if not active:  # (the usual case: nothing to watch; a quiet state stays as it is)
            return (state if state.since_ms is None else Sustained()), []
        since = state.since_ms if state.since_ms is not None else (
            began_ms if began_ms is not None else obs.ts_ms)
        if obs.ts_ms - since < rule.raise_after_ms:
            return Sustained(since_ms=since), []
        opened, raised = incident.raise_once(
            None, ctx, rule, obs,
            lambda: details_of(details) | {"since": from_ms(since).isoformat()})
        return Sustained(incident=opened), raised
    if active:
        return Sustained(incident=state.incident), []
    since = state.since_ms if state.since_ms is not None else obs.ts_ms
    if obs.ts_ms - since < rule.clear_after_ms:
        return Sustained(since_ms=since, incident=state.incident), []
    return close(state, obs, ctx, rule, details)


def close(
    state: Sustained, obs: Observation, ctx: StepContext, rule: SustainedRule, details: Details
) -> tuple[Sustained, list[Alert]]:
    """End the condition at ``obs``: clears its incident if one is open."""
    if state.incident is None:
        return Sustained(), []
    _, cleared = incident.clear(state.incident, ctx, rule, obs, details)
    return Sustained(), cleared
