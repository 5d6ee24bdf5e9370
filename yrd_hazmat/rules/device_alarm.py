"""DEVICE_ALARM: the terminal's own JT/T 808 alarm bits, as alerts of the right severity.

Each alarm bit is its own incident: raised when the bit goes on, cleared when
it goes off. Critical alarms (SOS, collision, rollover, illegal displacement)
carry what responders need first: the cargo, its UN number and hazard class,
an initial isolation distance for that substance or class (see
``yrd_hazmat/data/isolation_distances.json`` and its source), and the province
whose responders are nearest (the one the truck is in, or the closest one
when it is outside the region).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any

import msgspec
import shapely

from ..models import Alert, AlertType, Severity
from ..observation import Observation
from ..permits.status import PermitStatus
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
}
"""JT/T 808 alarm DWORD bit -> (name, severity); other bits are ignored."""
WATCHED = sum(1 << bit for bit in ALARMS)
KINDS = {bit: Kind(alert_type=TYPE, severity=severity, subject=name)
         for bit, (name, severity) in ALARMS.items()}
"""Each alarm bit is its own incident (subject: the alarm's name)."""


class DeviceAlarmConfig(msgspec.Struct, frozen=True, kw_only=True):
    responders_max: int = 5
    road_factor: float = 1.35
    """Road distance over straight-line distance, for the responders' arrival times."""
    speed_kmh: float = 60.0


class AlarmState(msgspec.Struct, kw_only=True, gc=False):
    incidents: dict[int, str] = {}
    """Alarm bit -> open incident id."""

    @property
    def open_incidents(self) -> list[str]:
        return list(self.incidents.values())


@cache
def isolation_table() -> dict[str, Any]:
    return json.loads(files("yrd_hazmat.data").joinpath("isolation_distances.json").read_text("utf-8"))


def isolation_distance(status: PermitStatus, ts_ms: int) -> tuple[int, str]:
    """Initial isolation distance in metres, and what it is based on."""
    table = isolation_table()
    permit = status.document
    if permit is None or status.validity(ts_ms) == "revoked":
        return table["unknown_cargo_m"], "unknown cargo: the largest class distance"
    if permit.un_number in table["by_un_number_m"]:
        return table["by_un_number_m"][permit.un_number], f"substance {permit.un_number}"
    return table["by_class_m"][permit.hazard_class], f"hazard class {permit.hazard_class}"


def nearest_responders(obs: Observation, provinces: Mapping[str, Any]) -> tuple[str | None, float]:
    """The province the truck is in, else the closest one, with the distance to it."""
    if obs.province is not None or not provinces:
        return obs.province, 0.0
    point = shapely.Point(obs.x_m, obs.y_m)
    name, distance = min(((n, float(g.distance(point))) for n, g in provinces.items()),
                         key=lambda item: item[1])
    return name, round(distance, 1)


def step(
    state: AlarmState, obs: Observation, ctx: StepContext,
    cfg: DeviceAlarmConfig = DeviceAlarmConfig(),
) -> tuple[AlarmState, list[Alert]]:
    """Raise alarms whose bit went on and clear those whose bit went off."""
    alerts: list[Alert] = []
    on = obs.alarm_flags & WATCHED
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
            details |= _responders(obs, ctx.permit, ctx.provinces)
            if ctx.resources:  # known resources (an empty index names no responders)
                details |= _resources(obs, ctx, cfg)
        state.incidents[bit], raised = incident.raise_once(None, ctx, KINDS[bit], obs, details)
        alerts += raised
    return state, alerts


def _resources(obs: Observation, ctx: StepContext, cfg: DeviceAlarmConfig) -> dict[str, Any]:
    """The nearest available responders for the cargo, from any province, and the
    nearest hospital (see :mod:`yrd_hazmat.emergency.responders`)."""
    assert ctx.resources is not None
    cargo = ctx.permit.cargo_class(obs.ts_ms)
    near = dict(limit=cfg.responders_max, road_factor=cfg.road_factor, speed_kmh=cfg.speed_kmh)
    responders = ctx.resources.nearest(obs.x_m, obs.y_m, obs.province, cargo, **near)
    hospitals = ctx.resources.nearest(obs.x_m, obs.y_m, obs.province, cargo,
                                      capabilities=frozenset({"medical"}), **(near | {"limit": 1}))
    return {"responders": msgspec.to_builtins(responders),
            "hospital": msgspec.to_builtins(hospitals[0]) if hospitals else None,
            "responders_cross_border": sum(r.crosses_border for r in responders)}


def _plain(bit: int) -> dict[str, Any]:
    return {"alarm": ALARMS[bit][0], "bit": bit}


def _responders(obs: Observation, status: PermitStatus, provinces: Mapping[str, Any]) -> dict[str, Any]:
    permit = status.document
    distance, basis = isolation_distance(status, obs.ts_ms)
    province, away = nearest_responders(obs, provinces)
    return {
        "cargo_name": permit.cargo_name if permit else None,
        "quantity_kg": permit.quantity_kg if permit else None,
        "un_number": permit.un_number if permit else None,
        "hazard_class": permit.hazard_class if permit else None,
        "isolation_distance_m": distance,
        "isolation_basis": basis,
        "responders_province": province,
        "distance_to_responders_province_m": away,
    }


RULE = Rule(name="device_alarm", state_field="alarms", state=AlarmState,
            config=DeviceAlarmConfig, raises=(TYPE,), step=step,
            open_incidents=lambda state: state.open_incidents)
