"""The zone contract: a GeoJSON Feature with its ban, checked and compiled.

A zone record on ``yrd.zones`` (key = zone id) or in a zones file is a GeoJSON
Feature whose geometry is a Polygon or MultiPolygon, or a LineString /
MultiLineString with ``buffer_m`` (a road section, a bridge, a tunnel).
:func:`parse_zone` turns it into a :class:`Zone` or a :class:`~yrd_hazmat.codec.Rejection`
(reason code and error); nothing here raises on bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
import shapely
from msgspec import Meta
from shapely.geometry import shape

from ..codec import BAD_GEOMETRY, BAD_KEY, Rejection, decoded
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
MAX_VERTICES = 200_000



class ZoneProperties(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """The ``properties`` of a zone feature."""

    zone_id: ZoneId
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    kind: Kind
    province: Literal["SH", "JS", "ZJ", "AH"] | None = None
    banned_classes: Literal["all"] | list[HazardClass | Literal["all"]]
    schedule: list[Window] | None = None
    speed_limit_kmh: Annotated[float, Meta(gt=0, le=200)] | None = None
    max_dwell_s: Annotated[float, Meta(gt=0)] | None = None
    buffer_m: Annotated[float, Meta(gt=0, le=5000)] | None = None
    crs: Literal["WGS84", "GCJ02"] = "WGS84"
    source: str | None = None


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
    repaired: bool = False

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
        geometry, repaired = _geometry(feature.geometry, props)
    except ValueError as exc:
        return Rejection(BAD_GEOMETRY, str(exc))
    return Zone(props=props, geometry=geometry, metric=_metric(geometry, props), repaired=repaired)


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


def _geometry(doc: dict[str, Any], props: ZoneProperties) -> tuple[Any, bool]:
    """The zone's polygonal WGS-84 area (lines not yet buffered), and whether it was repaired."""
    try:
        geom = shape(doc)
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        raise ValueError(f"not a GeoJSON geometry: {exc}") from None
    if geom.is_empty:
        raise ValueError("empty geometry")
    if shapely.get_num_coordinates(geom) > MAX_VERTICES:
        raise ValueError(f"more than {MAX_VERTICES} vertices")
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
        return geom, False
    if kind not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"geometry type {kind} is not a zone (Polygon, MultiPolygon or a line)")
    if geom.is_valid:
        return geom, False
    reason = shapely.is_valid_reason(geom)
    fixed = shapely.make_valid(geom)
    polygons = shapely.get_parts(fixed)
    polygons = [p for p in polygons if p.geom_type in ("Polygon", "MultiPolygon") and p.area > 0]
    if not polygons:
        raise ValueError(f"invalid geometry that cannot be repaired: {reason}")
    return shapely.union_all(polygons), True


def _metric(geometry: Any, props: ZoneProperties) -> Any:
    metric = geometry_to_metric(geometry)
    if props.buffer_m is not None:
        metric = metric.buffer(props.buffer_m, cap_style="flat" if metric.geom_type.endswith(
            "LineString") else "round")
    return metric
