"""DEVICE_ALARM: the terminal's own JT/T 808 alarm bits, as alerts of the right severity.

Each alarm bit is its own incident: raised when the bit goes on, cleared when
it goes off. Besides the DWORD's bits, bit 32 is the tank's leak sensor (a
``tank_leak`` alarm extension item, see :data:`yrd_hazmat.core.observation.TANK_LEAK`).
Critical alarms (SOS, collision, rollover, illegal displacement, tank leak) are
emergencies: they carry what responders need first (:mod:`yrd_hazmat.core.emergency.scene`:
cargo, isolation distance, the nearest responders from any province, the zones
exposed).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..emergency.scene import ResponseConfig, emergency_details
from ..models import Alert, AlertType, Severity
from ..observation import TANK_LEAK, Observation
from . import incident
from .context import StepContext
from .incident import Kind
from .rule import Rule

TYPE = AlertType.DEVICE_ALARM

ALARMS: dict[int, tuple[str, Severity]] = {
    0: ("sos", Severity.CRITICAL),
    1: ("overspeed", Severity.WARNING),
    2: ("fatigue", Severity.WARNING),
    19: ("overtime_parking", Severity.WARNING),
    20: ("area_enter_exit", Severity.INFO),
    23: ("route_deviation", Severity.WARNING),
    27: ("illegal_ignition", Severity.WARNING),
    28: ("illegal_displacement", Severity.CRITICAL),
    29: ("collision", Severity.CRITICAL),
    30: ("rollover", Severity.CRITICAL),
    TANK_LEAK.bit_length() - 1: ("tank_leak", Severity.CRITICAL),
}
"""Alarm bit -> (name, severity); other bits are ignored. Bits 0-31 are the JT/T 808
alarm DWORD's; bit 32 is the tank's leak sensor (an alarm extension item)."""
WATCHED = sum(1 << bit for bit in ALARMS)
KINDS = {bit: Kind(alert_type=TYPE, severity=severity, subject=name)
         for bit, (name, severity) in ALARMS.items()}
"""Each alarm bit is its own incident (subject: the alarm's name)."""


DeviceAlarmConfig = ResponseConfig
"""The device alarm's configuration: how responders are proposed."""


class AlarmState(msgspec.Struct, kw_only=True, gc=False):
    incidents: dict[int, str] = {}
    """Alarm bit -> open incident id."""

    @property
    def open_incidents(self) -> list[str]:
        return list(self.incidents.values())


def step(
    state: AlarmState, obs: Observation, ctx: StepContext,
    cfg: DeviceAlarmConfig = DeviceAlarmConfig(),
) -> tuple[AlarmState, list[Alert]]:
    """Raise alarms whose bit went on and clear those whose bit went off."""
    on = obs.alarm_flags & WATCHED
    if not on and not state.incidents:  # (nearly every ping: no alarm, none open)
        return state, []
    alerts: list[Alert] = []
    for bit, open_id in sorted(state.incidents.items()):
        if not on & (1 << bit):
            _, cleared = incident.clear(open_id, ctx, KINDS[bit], obs, _plain(bit))
            alerts += cleared
            del state.incidents[bit]
    for bit, (_, severity) in ALARMS.items():
        if not on & (1 << bit) or bit in state.incidents:
            continue
        details = _plain(bit)
        if severity is Severity.CRITICAL:
            details |= emergency_details(obs, ctx, cfg)
        state.incidents[bit], raised = incident.raise_once(None, ctx, KINDS[bit], obs, details)
        alerts += raised
    return state, alerts


def _plain(bit: int) -> dict[str, Any]:
    return {"alarm": ALARMS[bit][0], "bit": bit}


RULE = Rule(name="device_alarm", state_field="alarms", state=AlarmState,
            config=DeviceAlarmConfig, raises=(TYPE,), step=step,
            open_incidents=lambda state: state.open_incidents)
