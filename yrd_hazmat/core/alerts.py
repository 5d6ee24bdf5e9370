"""Alert construction with deterministic ids.

An *incident* is one episode of one alert type for one vehicle and subject
(the subject tells apart incidents that may be open together, e.g. two
zones). Its id hashes vehicle, type, subject and the raising ping's event
time, so replaying the same input yields the same ids. The raise and the
clear of an incident share that id; ``alert_id`` adds the state.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

import msgspec

from .models import Alert, AlertState, AlertType, Severity
from .observation import Observation
from .timeutil import from_ms


def incident_id(vehicle_id: str, alert_type: AlertType | str, subject: str,
                raised_ts_ms: int) -> str:
    """Deterministic id of one incident (24 hex characters)."""
    text = f"{vehicle_id}|{alert_type}|{subject}|{raised_ts_ms}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


MOMENTARY = frozenset({AlertType.PROVINCE_HANDOVER, AlertType.IMPLAUSIBLE_JUMP})
"""Alert types that mark a moment: raised only, never open, never cleared."""


class Cargo(msgspec.Struct, frozen=True):
    """The permit's cargo fields that every alert of a vehicle carries."""

    permit_id: str
    un_number: str
    hazard_class: str


def make_alert(
    *,
    vehicle_id: str,
    alert_type: AlertType | str,
    severity: Severity,
    state: AlertState,
    incident: str,
    at: Observation,
    emitted_at: datetime,
    details: dict[str, Any],
    cargo: Cargo | None = None,
    province: str | None | Literal["at"] = "at",
) -> Alert:
    """An alert at the time and place of the observation ``at``.

    ``province`` overrides the jurisdiction of the place (a pre-notice goes to
    the receiving province); by default it is the province of ``at``.
    """
    return Alert(
        alert_id=f"{incident}:{state.value}",
        incident_id=incident,
        type=str(alert_type),  # the contract's plain string (AlertType is a StrEnum)
        severity=severity,
        state=state,
        vehicle_id=vehicle_id,
        ts=from_ms(at.ts_ms),
        emitted_at=emitted_at,
        lat=at.lat,
        lon=at.lon,
        province=at.province if province == "at" else province,
        city=at.city if province == "at" else None,
        details=details,
        permit_id=cargo.permit_id if cargo else None,
        un_number=cargo.un_number if cargo else None,
        hazard_class=cargo.hazard_class if cargo else None,
    )
