"""What every rule's step receives besides its own state, the observation and its config.

One :class:`StepContext` per ping, shared by all the rules that run on it: the
vehicle, the observation before this one, and what the rules share about the
ping (the permit in force and the cargo it declares, where the ping lies on the
permitted route, the zones in force, the province shapes). The province of the
ping itself is on the observation. Records other than alerts that a step
produces (a confirmed :class:`~yrd_hazmat.core.models.Handover`) go to ``handovers``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from ..alerts import Cargo, make_alert
from ..models import Alert, AlertState, AlertType, Handover, Severity
from ..observation import Observation
from ..permits.route import RoutePosition
from ..permits.status import NO_PERMIT, PermitStatus
from ..zones.model import Zone
from ..zones.segments import Crossing, SegmentLimits
from ..emergency.responders import ResourceIndex


class StepContext(msgspec.Struct, frozen=True, kw_only=True):
    """The vehicle being processed, the previous observation, the publish time, and the
    facts about this ping that the rules share."""

    vehicle_id: str
    previous: Observation | None
    emitted_at: datetime
    cargo: Cargo | None = None
    permit: PermitStatus = NO_PERMIT
    """The vehicle's permit status (validity is checked at each ping's time)."""
    where: RoutePosition | None = None
    """The ping's position on the permitted route (None: no permit)."""
    zones: Mapping[str, Zone] = {}
    """The zones in force, by id (the observation says which ones the ping is in or near)."""
    provinces: Mapping[str, Any] = {}
    """Province -> metric geometry; empty: provinces are not tracked."""
    limits: SegmentLimits | None = None
    """When the straight segment from ``previous`` is taken as the path (see
    :meth:`straight_to`)."""
    crossings: tuple[Crossing, ...] = ()
    """The zones the straight segment from ``previous`` to this ping passes through (only
    for a plausible segment: see :class:`~yrd_hazmat.core.zones.segments.SegmentLimits`)."""
    resources: "ResourceIndex | None" = None
    """Emergency resources (for the responders of critical alarms); None: none known."""
    handovers: list[Handover] = []
    """Where a step puts the handovers it confirms (published beside the alerts)."""
    heard_ms: int | None = None
    """The vehicle's latest report without a valid fix (proof of life, not a position)."""

    def straight_to(self, obs: Observation) -> bool:
        """Whether the straight segment from ``previous`` to ``obs`` is taken as the path
        (a plausible gap and speed: :class:`~yrd_hazmat.core.zones.segments.SegmentLimits`)."""
        return (self.previous is not None and self.limits is not None
                and self.limits.plausible(self.previous, obs))

    def alert(
        self,
        alert_type: AlertType,
        severity: Severity,
        state: AlertState,
        incident: str,
        at: Observation,
        details: dict[str, Any],
        **overrides: Any,
    ) -> Alert:
        """An alert about this context's vehicle, with its cargo (``overrides``: province)."""
        return make_alert(
            vehicle_id=self.vehicle_id,
            alert_type=alert_type,
            severity=severity,
            state=state,
            incident=incident,
            at=at,
            emitted_at=self.emitted_at,
            details=details,
            cargo=self.cargo,
            **overrides,
        )
