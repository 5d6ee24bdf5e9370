"""The zone contract: a GeoJSON Feature with its ban, checked and compiled.

A zone record on ``yrd.zones`` (key = zone id) or in a zones file is a GeoJSON
Feature whose geometry is a Polygon or MultiPolygon, or a LineString /
MultiLineString with ``buffer_m`` (a road section, a bridge, a tunnel).
:func:`parse_zone` turns it into a :class:`Zone` or a :class:`~yrd_hazmat.core.codec.Rejection`
(reason code and error); :func:`parse_zone_record` does the same for a zones-topic
record (size bound, key required); nothing here raises on bad input.

Bounds against hostile records: a record over ``YRD_MAX_ZONE_BYTES`` or a geometry of
more than :data:`MAX_VERTICES` vertices is ``too_large``; an invalid polygon
(self-intersecting, a ring that does not close properly, a hole outside its shell) is
``bad_geometry``: it is not repaired, because a repair such as ``make_valid`` can silently
change the area a ban covers; the operator fixes the outline and publishes it again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
import shapely
from msgspec import Meta
from shapely.geometry import shape

from ..models import Province
from ..codec import BAD_GEOMETRY, BAD_KEY, TOO_LARGE, Rejection, decoded, key_text
from ..geo.gcj02 import gcj02_to_wgs84
from ..geo.projection import geometry_to_metric
from ..hazard import ALL, HazardClass
from .schedule import Window

Kind = Literal[
    "city_core", "water_source", "tunnel", "bridge", "scenic", "school", "crowded_place", "custom",
    "depot",
]
"""``depot``: a yard where trucks may wait (no PROLONGED_STOP there); ban nothing in it."""
ZoneId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_.:\-]+$")]
REGION_BOUNDS = (114.0, 27.0, 124.0, 36.0)
"""lon/lat box around the YRD: a zone outside it is a mistake (swapped coordinates?)."""
MAX_VERTICES = 20_000
"""Vertices a zone geometry may have (a 256 KiB record holds about that many)."""
MAX_WINDOWS = 50
"""Schedule windows a zone may have (copied into every alert about it)."""


class ZoneProperties(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """The ``properties`` of a zone feature."""

    zone_id: ZoneId
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    kind: Kind
    province: Province | None = None
    banned_classes: Literal["all"] | Annotated[
        list[HazardClass | Literal["all"]], Meta(max_length=50)]
    schedule: Annotated[list[Window], Meta(max_length=MAX_WINDOWS)] | None = None
    speed_limit_kmh: Annotated[float, Meta(gt=0, le=200)] | None = None
    max_dwell_s: Annotated[float, Meta(gt=0)] | None = None
    buffer_m: Annotated[float, Meta(gt=0, le=5000)] | None = None
    crs: Literal["WGS84", "GCJ02"] = "WGS84"
    source: Annotated[str, Meta(max_length=500)] | None = None


class ZoneFeature(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """A restricted zone: a GeoJSON Feature (WGS-84 or GCJ-02 lon/lat) with its ban."""

    type: Literal["Feature"]
    geometry: dict[str, Any]
    properties: ZoneProperties


class Zone(msgspec.Struct, frozen=True, kw_only=True):
    """A valid zone: its properties, WGS-84 geometry and metric geometry."""

    props: ZoneProperties
    geometry: Any  # shapely Polygon/MultiPolygon, WGS-84 lon/lat
    metric: Any  # the same in the metric projection (metres)

    @property
    def zone_id(self) -> str:
        return self.props.zone_id

    @property
    def banned(self) -> frozenset[str]:
        classes = self.props.banned_classes
        return frozenset([ALL] if classes == ALL else classes)

    @property
    def windows(self) -> tuple[Window, ...] | None:
        return tuple(self.props.schedule) if self.props.schedule else None


_decoder = msgspec.json.Decoder(ZoneFeature)


def parse_zone(raw: bytes | str | dict, key: str | None = None) -> Zone | Rejection:
    """Validate one zone record; ``key`` (the Kafka key), if given, must equal ``zone_id``."""
    if isinstance(raw, dict):
        feature = decoded(lambda doc: msgspec.convert(doc, ZoneFeature), raw)
    else:
        feature = decoded(_decoder.decode, raw)
    if isinstance(feature, Rejection):
        return feature
    props = feature.properties
    if key is not None and key != props.zone_id:
        return Rejection(BAD_KEY, f"key {key!r} differs from zone_id {props.zone_id!r}")
    try:
        geometry = _geometry(feature.geometry, props)
    except _TooLarge as exc:
        return Rejection(TOO_LARGE, str(exc))
    except ValueError as exc:
        return Rejection(BAD_GEOMETRY, str(exc))
    return Zone(props=props, geometry=geometry, metric=_metric(geometry, props))


def parse_zone_record(key: bytes | None, value: bytes, max_bytes: int) -> Zone | Rejection:
    """Validate one non-null zones-topic record: at most ``max_bytes``, keyed by its zone id."""
    if len(value) > max_bytes:
        return Rejection(TOO_LARGE, f"value is {len(value)} bytes, limit {max_bytes}")
    if key is None:
        return Rejection(BAD_KEY, "record has no key; key zones by zone_id")
    return parse_zone(value, key=key_text(key))


def parse_collection(
    path: str | Path,
) -> tuple[list[tuple[Zone, dict[str, Any]]], list[tuple[str, Rejection]]]:
    """Parse every feature of a GeoJSON FeatureCollection file.

    Returns the valid zones (each with its feature as read) and, for the
    invalid ones, their zone id (or position) and rejection.
    """
    collection = msgspec.json.decode(Path(path).read_bytes())
    valid, rejected = [], []
    for i, feature in enumerate(collection.get("features", [])):
        result = parse_zone(feature)
        if isinstance(result, Rejection):
            props = feature.get("properties") if isinstance(feature, dict) else None
            name = (props or {}).get("zone_id") or f"feature #{i}"
            rejected.append((str(name), result))
        else:
            valid.append((result, feature))
    return valid, rejected


class _TooLarge(ValueError):
    """A geometry over the size bound (reason ``too_large``, not ``bad_geometry``)."""


def _geometry(doc: dict[str, Any], props: ZoneProperties) -> Any:
    """The zone's polygonal WGS-84 area (lines not yet buffered)."""
    try:
        geom = shape(doc)
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        raise ValueError(f"not a GeoJSON geometry: {exc}") from None
    vertices = shapely.get_num_coordinates(geom)
    if vertices > MAX_VERTICES:
        raise _TooLarge(f"geometry has {vertices} vertices, limit {MAX_VERTICES}")
    if geom.is_empty:
        raise ValueError("empty geometry")
    coords = shapely.get_coordinates(geom)
    if not np.isfinite(coords).all():
        raise ValueError("non-finite coordinate")
    if props.crs == "GCJ02":
        geom = shapely.transform(geom, lambda xy: np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1])))
    minx, miny, maxx, maxy = geom.bounds
    west, south, east, north = REGION_BOUNDS
    if minx < west or maxx > east or miny < south or maxy > north:
        raise ValueError(
            f"geometry bounds {tuple(round(v, 4) for v in geom.bounds)} lie outside the YRD "
            f"{REGION_BOUNDS} (lon, lat order? GeoJSON is [lon, lat])"
        )
    kind = geom.geom_type
    if kind in ("LineString", "MultiLineString"):
        if props.buffer_m is None:
            raise ValueError(f"a {kind} zone needs buffer_m (its half-width in metres)")
        return geom
    if kind not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"geometry type {kind} is not a zone (Polygon, MultiPolygon or a line)")
    if not geom.is_valid:
        raise ValueError(
            f"invalid polygon ({shapely.is_valid_reason(geom)}): self-intersecting or otherwise "
            "invalid outlines are not repaired, as a repair can change the area the ban covers; "
            "fix the outline (e.g. shapely.make_valid, then check it) and publish it again"
        )
    return geom


def _metric(geometry: Any, props: ZoneProperties) -> Any:
    metric = geometry_to_metric(geometry)
    if props.buffer_m is not None:
        metric = metric.buffer(props.buffer_m, cap_style="flat" if metric.geom_type.endswith(
            "LineString") else "round")
    return metric
