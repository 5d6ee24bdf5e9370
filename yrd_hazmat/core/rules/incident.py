"""One incident's lifecycle, for every rule: raised once per episode, cleared once.

An incident is one episode of one alert type for one vehicle and subject (the
subject tells apart incidents that may be open together: two zones, two alarm
bits). A rule keeps the id of its open incident in its own state (``None``
while none is open) and moves it only through these functions:

- :func:`raise_once` opens it, unless one is open already: at most one
  RAISED alert per episode;
- :func:`clear` closes an open one with the episode's figures: one CLEARED
  alert, with the same incident id;
- :func:`settle` does whichever of the two a condition asks for;
- :func:`momentary` is for alerts that mark a moment and are never open
  (PROVINCE_HANDOVER, IMPLAUSIBLE_JUMP).

Ids are deterministic (:func:`yrd_hazmat.core.alerts.incident_id`: vehicle, type,
subject and the raising event time), so a replay raises the same ids. Details
may be given as a function, called only when an alert is actually made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union

import msgspec

from ..alerts import incident_id
from ..models import Alert, AlertState, AlertType, Severity
from ..observation import Observation
from .context import StepContext

Details = Union[dict[str, Any], Callable[[], dict[str, Any]]]
"""An alert's details, or a function that builds them (called only when an alert is made)."""


class Kind(msgspec.Struct, frozen=True, kw_only=True):
    """What an incident is about: its alert type, severity and subject."""

    alert_type: AlertType
    severity: Severity
    subject: str = ""


def details_of(details: Details) -> dict[str, Any]:
    return details() if callable(details) else details


def raise_once(
    open_id: str | None,
    ctx: StepContext,
    kind: Kind,
    at: Observation,
    details: Details,
    **overrides: Any,
) -> tuple[str, list[Alert]]:
    """(open id, alerts): a new incident raised at ``at``, or the open one left as it is."""
    if open_id is not None:
        return open_id, []
    incident = incident_id(ctx.vehicle_id, kind.alert_type, kind.subject, at.ts_ms)
    return incident, [ctx.alert(kind.alert_type, kind.severity, AlertState.RAISED, incident, at,
                                details_of(details), **overrides)]


def clear(
    open_id: str | None,
    ctx: StepContext,
    kind: Kind,
    at: Observation,
    details: Details,
    **overrides: Any,
) -> tuple[None, list[Alert]]:
    """(None, alerts): the open incident cleared at ``at`` (no alert when none is open)."""
    if open_id is None:
        return None, []
    return None, [ctx.alert(kind.alert_type, kind.severity, AlertState.CLEARED, open_id, at,
                            details_of(details), **overrides)]


def settle(
    open_id: str | None,
    active: bool,
    ctx: StepContext,
    kind: Kind,
    at: Observation,
    raised: Details,
    cleared: Details,
) -> tuple[str | None, list[Alert]]:
    """Raise while ``active`` (once), clear when it no longer is."""
    if active:
        return raise_once(open_id, ctx, kind, at, raised)
    return clear(open_id, ctx, kind, at, cleared)


def momentary(
    ctx: StepContext, kind: Kind, at: Observation, details: Details, *, id_ts_ms: int | None = None
) -> Alert:
    """An alert that marks a moment (raised only); its id from ``id_ts_ms`` (default: ``at``)."""
    ts = at.ts_ms if id_ts_ms is None else id_ts_ms
    incident = incident_id(ctx.vehicle_id, kind.alert_type, kind.subject, ts)
    return ctx.alert(kind.alert_type, kind.severity, AlertState.RAISED, incident, at,
                     details_of(details))
