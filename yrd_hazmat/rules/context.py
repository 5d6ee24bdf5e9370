"""What every rule step receives besides its own state and the observation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from ..alerts import Cargo, make_alert
from ..models import Alert, AlertState, AlertType, Severity
from ..observation import Observation


class StepContext(msgspec.Struct, frozen=True, kw_only=True):
    """The vehicle being processed, the previous observation and the publish time."""

    vehicle_id: str
    previous: Observation | None
    emitted_at: datetime
    cargo: Cargo | None = None

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
