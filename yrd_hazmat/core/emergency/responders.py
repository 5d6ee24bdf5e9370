"""The nearest emergency resources able to handle an incident, from any province.

Pure: an index of resources (positions in the metric projection) and a query that
returns, for an incident's place, province and hazard class, the nearest *available*
resources whose capabilities cover a hazmat response and whose hazard classes cover the
cargo, with the straight-line distance times a road factor, an arrival time at an
average speed, and whether the response crosses a provincial border. Resources come
from the compacted topic ``yrd.resources`` or a file (``yrd_hazmat/data/resources.json``
is an illustrative, approximate set).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

import msgspec
import numpy as np

from ..geo.projection import to_metric
from ..models import Resource

log = logging.getLogger(__name__)
_decoder = msgspec.json.Decoder(Resource)
RESPONSE = frozenset({"leak", "fire", "toxic_gas", "decontamination"})
"""Capabilities that make a resource a hazmat responder (hospitals are listed apart)."""


class Responder(msgspec.Struct, frozen=True, kw_only=True):
    resource_id: str
    name: str
    kind: str
    province: str
    distance_km: float
    """By road: straight line times the road factor."""
    eta_min: float
    crosses_border: bool
    capabilities: list[str]
    approximate: bool = False


def handles(resource: Resource, hazard_class: str | None) -> bool:
    """Whether the resource's hazard classes cover the cargo ("2" covers 2.1-2.3; an
    unknown cargo needs a resource for every class)."""
    classes = resource.hazard_classes
    if classes == "all":
        return True
    if hazard_class is None:
        return False
    return hazard_class in classes or hazard_class.split(".")[0] in classes


class ResourceIndex:
    """Resources by id, with their metric positions."""

    def __init__(self, resources: Iterable[Resource] = ()) -> None:
        self._by_id: dict[str, Resource] = {}
        self._arrays: tuple[list[Resource], np.ndarray, np.ndarray] | None = None
        for resource in resources:
            self.put(resource)

    def __len__(self) -> int:
        return len(self._by_id)

    def put(self, resource: Resource) -> None:
        self._by_id[resource.resource_id] = resource
        self._arrays = None

    def remove(self, resource_id: str) -> None:
        if self._by_id.pop(resource_id, None) is not None:
            self._arrays = None

    def get(self, resource_id: str) -> Resource | None:
        return self._by_id.get(resource_id)

    def all(self) -> list[Resource]:
        return sorted(self._by_id.values(), key=lambda r: r.resource_id)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record of the resources topic: a resource, or a null value removing one; an
        invalid record is logged and changes nothing."""
        if value is None:
            if key is not None:
                self.remove(key.decode("utf-8", "replace"))
            return
        try:
            resource = _decoder.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("resource record %r rejected: %s", key, exc)
            return
        self.put(resource)

    def _positions(self) -> tuple[list[Resource], np.ndarray, np.ndarray]:
        if self._arrays is None:
            resources = self.all()
            lon = np.array([r.lon for r in resources], dtype=float)
            lat = np.array([r.lat for r in resources], dtype=float)
            x, y = to_metric(lon, lat) if resources else (np.empty(0), np.empty(0))
            self._arrays = (resources, np.asarray(x), np.asarray(y))
        return self._arrays

    def nearest(self, x_m: float, y_m: float, province: str | None, hazard_class: str | None, *,
                capabilities: frozenset[str] = RESPONSE, limit: int = 5,
                road_factor: float = 1.35, speed_kmh: float = 60.0) -> list[Responder]:
        """The nearest available resources with one of ``capabilities`` that handle the
        hazard class, nearest first (ties by id)."""
        resources, x, y = self._positions()
        if not resources:
            return []
        road_km = np.hypot(x - x_m, y - y_m) * road_factor / 1000
        out: list[Responder] = []
        for i in np.lexsort((np.arange(len(resources)), road_km)):
            resource = resources[int(i)]
            if (resource.status != "available" or not capabilities & set(resource.capabilities)
                    or not handles(resource, hazard_class)):
                continue
            km = float(road_km[int(i)])
            out.append(Responder(
                resource_id=resource.resource_id, name=resource.name, kind=resource.kind,
                province=resource.province, distance_km=round(km, 1),
                eta_min=round(km / speed_kmh * 60, 1), crosses_border=resource.province != province,
                capabilities=list(resource.capabilities), approximate=resource.approximate))
            if len(out) >= limit:
                break
        return out


def load_resources(path: str | Path) -> list[Resource]:
    """Resources from a file like ``yrd_hazmat/data/resources.json`` (``{"resources": [...]}``)."""
    doc = json.loads(Path(path).read_text("utf-8"))
    return [msgspec.convert(r, Resource) for r in doc["resources"]]
