"""One speeding episode against some limit: the shared core of SPEEDING and ZONE_SPEEDING.

Raised once the speed has stayed over the limit for ``min_duration_ms`` of
event time; cleared by the first observation at or under it (or by
:func:`close`, e.g. when the truck leaves the zone whose limit it broke). A gap
in the pings longer than ``max_gap_ms`` restarts the count, since nothing is
known about the speed in between.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ..models import Alert, Severity
from ..observation import Observation
from ..timeutil import from_ms
from . import incident
from .context import StepContext
from .incident import Kind
from .thresholds import SPEEDING_MAX_GAP_MS


class SpeedEpisode(msgspec.Struct, kw_only=True, gc=False):
    over_since_ms: int | None = None
    max_speed_kmh: float = 0.0
    incident: str | None = None


class EpisodeRule(Kind, frozen=True, kw_only=True):
    """What an episode is about: alert type, subject (e.g. a zone id) and thresholds."""

    severity: Severity = Severity.WARNING
    min_duration_ms: int
    max_gap_ms: int = SPEEDING_MAX_GAP_MS


def step(
    state: SpeedEpisode,
    obs: Observation,
    ctx: StepContext,
    rule: EpisodeRule,
    limit_kmh: float,
    details: Callable[[], dict[str, Any]],
) -> tuple[SpeedEpisode, list[Alert]]:
    """Advance the episode by one observation. ``details``: the alert's details, asked only
    when an alert is made (they may cost more than the step)."""
    if obs.speed_kmh <= limit_kmh:
        if state.incident is None:  # (the usual case: nothing to close)
            return close(state, obs, ctx, rule, details)
        return close(state, obs, ctx, rule, lambda: details() | {"limit_kmh": limit_kmh})
    gap = obs.ts_ms - ctx.previous.ts_ms if ctx.previous is not None else 0
    if state.over_since_ms is None or (state.incident is None and gap > rule.max_gap_ms):
        state = SpeedEpisode(over_since_ms=obs.ts_ms, max_speed_kmh=obs.speed_kmh)
    else:
        state = SpeedEpisode(
            over_since_ms=state.over_since_ms,
            max_speed_kmh=max(state.max_speed_kmh, obs.speed_kmh),
            incident=state.incident,
        )
    over_since = state.over_since_ms
    assert over_since is not None
    over_for_ms = obs.ts_ms - over_since
    if state.incident is not None or over_for_ms < rule.min_duration_ms:
        return state, []
    state.incident, raised = incident.raise_once(None, ctx, rule, obs, details() | {
        "speed_kmh": obs.speed_kmh,
        "limit_kmh": limit_kmh,
        "over_since": from_ms(over_since).isoformat(),
        "over_for_s": over_for_ms / 1000,
    })
    return state, raised


def close(
    state: SpeedEpisode,
    obs: Observation,
    ctx: StepContext,
    rule: EpisodeRule,
    details: Callable[[], dict[str, Any]],
) -> tuple[SpeedEpisode, list[Alert]]:
    """End the episode at ``obs``; clears its alert if one was raised."""
    if state.incident is None:
        return (state if state.over_since_ms is None and not state.max_speed_kmh
                else SpeedEpisode()), []
    over_since = state.over_since_ms if state.over_since_ms is not None else obs.ts_ms
    _, cleared = incident.clear(state.incident, ctx, rule, obs, lambda: details() | {
        "speed_kmh": obs.speed_kmh,
        "max_speed_kmh": state.max_speed_kmh,
        "over_since": from_ms(over_since).isoformat(),
        "duration_s": (obs.ts_ms - over_since) / 1000,
    })
    return SpeedEpisode(), cleared
