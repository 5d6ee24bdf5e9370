"""What responders need first about an emergency: the cargo, the isolation distance, who
can come, and what is exposed.

Pure: given the observation where the emergency happens and the step's context, it
builds the details every emergency alert carries (a critical DEVICE_ALARM: SOS,
collision, rollover, illegal displacement, a tank leak; a ZONE_VIOLATION inside a
water-source zone):

- the cargo (name, quantity, UN number, hazard class) from the permit;
- an initial isolation distance for that substance or class (see
  ``yrd_hazmat/data/isolation_distances.json`` and its source), and what it is based on;
- the province whose responders are nearest (the one the truck is in, or the closest);
- ``responders``: the nearest available resources able to handle the hazard class, from
  any province (:mod:`.responders`), and the nearest hospital;
- ``exposure.zones``: the zones within the isolation distance (water sources, crowded
  places, tunnels...), nearest first. The other trucks within that distance come from
  the read model and are added by the worker (``exposure.trucks``), outside the core.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any

import msgspec
import shapely

from ..models import Alert, AlertState, AlertType, Severity
from ..observation import Observation
from ..permits.status import PermitStatus
from ..zones.model import Zone

EXPOSED_ZONES_MAX = 20
EMERGENCY_ZONE_KINDS = frozenset({"water_source"})
"""Zone kinds where a banned truck inside is an emergency (drinking-water sources)."""


class ResponseConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How responders are proposed (``YRD_RESPONDERS_MAX``, ``YRD_RESPONDER_*``)."""

    responders_max: int = 5
    road_factor: float = 1.35
    """Road distance over straight-line distance, for the responders' arrival times."""
    speed_kmh: float = 60.0


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


def responders_province(obs: Observation, provinces: Mapping[str, Any]) -> tuple[str | None, float]:
    """The province the truck is in, else the closest one, with the distance to it."""
    if obs.province is not None or not provinces:
        return obs.province, 0.0
    point = shapely.Point(obs.x_m, obs.y_m)
    name, distance = min(((n, float(g.distance(point))) for n, g in provinces.items()),
                         key=lambda item: item[1])
    return name, round(distance, 1)


def exposed_zones(zones: Mapping[str, Zone], obs: Observation, radius_m: float,
                  limit: int = EXPOSED_ZONES_MAX) -> list[dict[str, Any]]:
    """The zones within ``radius_m`` of the observation (0: it is inside), nearest first
    (ties by id)."""
    if not zones:
        return []
    items, tree = _tree(zones)
    point = shapely.Point(obs.x_m, obs.y_m)
    found = tree.query(point, predicate="dwithin", distance=radius_m)
    distance = {int(i): float(shapely.distance(items[int(i)].metric, point)) for i in found}
    near = sorted(distance, key=lambda i: (distance[i], items[i].zone_id))
    return [{"zone_id": items[i].zone_id, "zone_name": items[i].props.name,
             "zone_kind": items[i].props.kind, "distance_m": round(distance[i], 1)}
            for i in near[:limit]]


_TREES: dict[int, tuple[Mapping[str, Zone], list[Zone], shapely.STRtree]] = {}


def _tree(zones: Mapping[str, Zone]) -> tuple[list[Zone], shapely.STRtree]:
    """The zones in id order and their STRtree, built once per set of zones (a new set of
    zones is a new mapping)."""
    hit = _TREES.get(id(zones))
    if hit is not None and hit[0] is zones:
        return hit[1], hit[2]
    items = sorted(zones.values(), key=lambda z: z.zone_id)
    tree = shapely.STRtree([z.metric for z in items])
    if len(_TREES) >= 8:
        _TREES.clear()
    _TREES[id(zones)] = (zones, items, tree)
    return items, tree


def emergency_details(obs: Observation, ctx: Any, cfg: ResponseConfig) -> dict[str, Any]:
    """The details of an emergency alert raised at ``obs`` (``ctx``: the rule's
    :class:`~yrd_hazmat.core.rules.context.StepContext`)."""
    status: PermitStatus = ctx.permit
    permit = status.document
    distance, basis = isolation_distance(status, obs.ts_ms)
    province, away = responders_province(obs, ctx.provinces)
    details: dict[str, Any] = {
        "emergency": True,
        "cargo_name": permit.cargo_name if permit else None,
        "quantity_kg": permit.quantity_kg if permit else None,
        "un_number": permit.un_number if permit else None,
        "hazard_class": permit.hazard_class if permit else None,
        "isolation_distance_m": distance,
        "isolation_basis": basis,
        "responders_province": province,
        "distance_to_responders_province_m": away,
        "exposure": {"radius_m": distance, "zones": exposed_zones(ctx.zones, obs, distance)},
    }
    if ctx.resources:  # known resources (an empty index names no responders)
        cargo = status.cargo_class(obs.ts_ms)
        near = dict(limit=cfg.responders_max, road_factor=cfg.road_factor,
                    speed_kmh=cfg.speed_kmh)
        responders = ctx.resources.nearest(obs.x_m, obs.y_m, obs.province, cargo, **near)
        hospitals = ctx.resources.nearest(obs.x_m, obs.y_m, obs.province, cargo,
                                          capabilities=frozenset({"medical"}),
                                          **(near | {"limit": 1}))
        details |= {"responders": msgspec.to_builtins(responders),
                    "hospital": msgspec.to_builtins(hospitals[0]) if hospitals else None,
                    "responders_cross_border": sum(r.crosses_border for r in responders)}
    return details


def is_emergency(alert: Alert) -> bool:
    """Whether the alert raises or clears an emergency (see the module docstring)."""
    if alert.state is AlertState.RAISED:
        return bool(alert.details.get("emergency"))
    if alert.severity is not Severity.CRITICAL or alert.details.get("inferred"):
        return False
    return (alert.type == AlertType.DEVICE_ALARM
            or (alert.type == AlertType.ZONE_VIOLATION
                and alert.details.get("zone_kind") in EMERGENCY_ZONE_KINDS))


def replayable(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert's JSON without what a replay may change: ``emitted_at`` (the wall clock) and
    an emergency's ``exposure.trucks`` (a snapshot of the read model, not a function of the
    pings). Two runs over the same pings give the same of this, alert by alert."""
    out = {k: v for k, v in alert.items() if k != "emitted_at"}
    exposure = out.get("details", {}).get("exposure")
    if exposure is not None:
        out["details"] = out["details"] | {"exposure": {
            k: v for k, v in exposure.items() if k not in ("trucks", "trucks_unknown")}}
    return out


def with_trucks(alert: Alert, nearby: list[dict[str, Any]] | None, *, max_age_s: float,
                unknown: str | None = None) -> Alert:
    """The emergency alert with ``exposure.trucks``: the other vehicles the read model
    places within the isolation distance, seen at most ``max_age_s`` before the alert
    (None with ``exposure.trucks_unknown`` when the read model could not say)."""
    exposure = dict(alert.details.get("exposure") or {})
    if nearby is None:
        exposure |= {"trucks": None, "trucks_unknown": unknown or "read model unavailable"}
    else:
        ts_ms = int(alert.ts.timestamp() * 1000)
        exposure["trucks"] = [
            {k: v for k, v in truck.items() if k != "ts_ms"}
            | {"seen_s_before": round((ts_ms - truck["ts_ms"]) / 1000, 1)}
            for truck in nearby
            if truck["vehicle_id"] != alert.vehicle_id and truck["ts_ms"] is not None
            and ts_ms - truck["ts_ms"] <= max_age_s * 1000]
    return msgspec.structs.replace(alert, details=alert.details | {"exposure": exposure})
