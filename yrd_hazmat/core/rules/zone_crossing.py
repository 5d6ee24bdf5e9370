"""ZONE_VIOLATION between fixes: a banned zone passed through with no fix inside it.

Between two consecutive fixes the truck is taken to have driven the straight
segment, when that is plausible (:class:`~yrd_hazmat.core.zones.segments.SegmentLimits`:
a gap of at most 15 min, at most 130 km/h on average). A zone the segment passes
through (deeper than the zone margin: grazing a corner does not count) while
neither fix is inside it raises ZONE_VIOLATION with ``inferred: true``, the
estimated entry and exit (points and times interpolated along the segment) and
the gap; raised at the entry and cleared at the exit, at once. The ban counts if
it is in force at any moment between entry and exit (a schedule that starts in
between counts) for the cargo class of the permit at entry (unknown cargo counts
as banned, as at a fix).

This is how a truck is caught crossing a water-source strip between two fixes,
or driving through a banned tunnel where it has no signal: the gap is the
tunnel, and the SIGNAL_LOST clear lists the zones it passed through.

A segment whose second fix is inside the zone is an entry, and the zone rule
raises (an open alert, its time inside counted from the inferred entry); one whose
first fix is inside is an exit, and the zone rule clears.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..hazard import is_banned
from ..models import Alert, AlertType, Severity
from ..observation import Observation
from ..timeutil import from_ms
from ..zones.index import NEAR
from ..zones.schedule import first_in_force
from ..zones.model import Zone
from ..zones.segments import Point, point_at
from . import incident
from .context import StepContext
from .incident import Kind
from .rule import Rule
from .zones import ban_details

TYPE = AlertType.ZONE_VIOLATION


def step(state: None, obs: Observation, ctx: StepContext, cfg: None = None
         ) -> tuple[None, list[Alert]]:
    """Raise and clear a violation for each banned zone the segment from the previous
    fix to ``obs`` passed through with neither fix inside it."""
    previous = ctx.previous
    if previous is None or not ctx.crossings:
        return state, []
    alerts: list[Alert] = []
    for crossing in ctx.crossings:
        zone = ctx.zones.get(crossing.zone_id)
        if zone is None or _seen_at_a_fix(crossing.zone_id, previous, obs):
            continue
        enter = point_at(previous, obs, crossing.enter)
        leave = point_at(previous, obs, crossing.leave)
        cargo_class = ctx.permit.cargo_class(enter.ts_ms)
        banned_from = first_in_force(zone.windows, enter.ts_ms, leave.ts_ms)
        if banned_from is None or not is_banned(cargo_class, zone.banned):
            continue
        details = _details(zone, previous, obs, enter, leave) | ban_details(zone, cargo_class)
        details["in_force_from"] = from_ms(banned_from).isoformat()
        kind = Kind(alert_type=TYPE, severity=Severity.CRITICAL, subject=crossing.zone_id)
        opened, raised = incident.raise_once(None, ctx, kind, _at(obs, enter), details)
        _, cleared = incident.clear(opened, ctx, kind, _at(obs, leave),
                                    details | {"reason": "exited"})
        alerts += raised + cleared
    return state, alerts


def _seen_at_a_fix(zone_id: str, previous: Observation, obs: Observation) -> bool:
    """Whether either fix is inside the zone (then the zone rule sees the entry or exit)."""
    return any((level := fix.zone_level(zone_id)) is not None and level > NEAR
               for fix in (previous, obs))


def _at(obs: Observation, point: Point) -> Observation:
    """``obs`` moved to a point of the segment (the alert's time and place)."""
    return msgspec.structs.replace(obs, ts_ms=point.ts_ms, x_m=point.x_m, y_m=point.y_m,
                                   lon=point.lon, lat=point.lat)


def _details(zone: Zone, previous: Observation, obs: Observation, enter: Point,
             leave: Point) -> dict[str, Any]:
    return {
        "zone_id": zone.zone_id,
        "zone_name": zone.props.name,
        "zone_kind": zone.props.kind,
        "inferred": True,
        "entered_at": from_ms(enter.ts_ms).isoformat(),
        "exited_at": from_ms(leave.ts_ms).isoformat(),
        "entry_point": [enter.lon, enter.lat],
        "exit_point": [leave.lon, leave.lat],
        "inside_s": (leave.ts_ms - enter.ts_ms) / 1000,
        "gap_s": (obs.ts_ms - previous.ts_ms) / 1000,
        "fixes": [from_ms(previous.ts_ms).isoformat(), from_ms(obs.ts_ms).isoformat()],
    }


RULE = Rule(name="zone_crossing", state=None, new_state=lambda: None, raises=(TYPE,), step=step)
