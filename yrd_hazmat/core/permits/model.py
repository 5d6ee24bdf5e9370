"""Route permits (剧毒化学品道路运输通行证) with the trip's electronic waybill (电子运单).

A permit record on ``yrd.permits`` is keyed by vehicle id; a null value
revokes the vehicle's permit. :func:`parse_permit` checks it and compiles its
route into metres; bad records come back as a
:class:`~yrd_hazmat.core.codec.Rejection`, never as an exception.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt
import shapely
from msgspec import Meta

from ..codec import BAD_GEOMETRY, BAD_KEY, INVALID, Rejection, decoded
from ..geo.gcj02 import gcj02_to_wgs84
from ..geo.jurisdiction import JurisdictionIndex
from ..geo.projection import geometry_to_metric, to_lonlat
from ..hazard import HazardClass
from ..models import EventTime, Province, VehicleId
from ..timeutil import to_ms
from ..zones.model import REGION_BOUNDS



MAX_ROUTE_POINTS = 20_000
"""Route vertices a permit may have (a 256 KiB record holds about that many)."""
MAX_ROUTE_M = 5_000_000.0
"""A permitted route in the region is far shorter; a longer one is a hostile or broken record
(checking it for borders every 100 m would stall the worker)."""

Text = Annotated[str, Meta(min_length=1, max_length=200)]
"""A name or reference in a permit: bounded, as it may be copied into alerts."""
OptionalText = Annotated[str, Meta(max_length=200)]


class LineStringGeometry(msgspec.Struct, frozen=True):
    type: Literal["LineString"]
    coordinates: Annotated[
        list[tuple[float, float]], Meta(min_length=2, max_length=MAX_ROUTE_POINTS)
    ]


class Permit(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """A road transport permit for dangerous goods, with its waybill's cargo and crew."""

    permit_id: Annotated[str, Meta(min_length=1, max_length=64)]
    vehicle_id: VehicleId
    un_number: Annotated[str, Meta(pattern=r"^UN\d{4}$", description="e.g. UN1017 (chlorine)")]
    hazard_class: HazardClass
    cargo_name: Annotated[str, Meta(min_length=1, max_length=200)]
    quantity_kg: Annotated[float, Meta(gt=0, le=100_000)]
    valid_from: EventTime
    valid_until: EventTime
    route: LineStringGeometry
    corridor_m: Annotated[float, Meta(gt=0, le=20_000, description="allowed distance from route")]
    origin: Text
    destination: Text
    issuer: Annotated[str, Meta(min_length=1, max_length=200,
                                description="issuing public security organ")]
    provinces: Annotated[list[Province], Meta(min_length=1, max_length=8)]
    crs: Literal["WGS84", "GCJ02"] = "WGS84"
    driver_id: Annotated[OptionalText, Meta(
        description="the driver's identity card number")] | None = None
    escort_id: OptionalText | None = None
    driver_name: Annotated[OptionalText, Meta(description="the driver's name")] | None = None
    driver_licence: Annotated[OptionalText, Meta(
        description="the driver's qualification certificate for dangerous goods "
                    "(从业资格证) number")] | None = None
    driver_licence_issuer: Annotated[OptionalText, Meta(
        description="who issued the qualification certificate")] | None = None
    driver_licence_until: Annotated[EventTime, Meta(
        description="when the qualification certificate expires")] | None = None
    carrier: OptionalText | None = None
    waybill_id: OptionalText | None = None
    packing_group: Literal["I", "II", "III"] | None = None
    consignor: OptionalText | None = None
    consignee: OptionalText | None = None
    via: Annotated[list[OptionalText], Meta(max_length=100)] = []
    issued_at: EventTime | None = None


class BorderCrossing(msgspec.Struct, frozen=True):
    """Where the permitted route passes from one province (or outside) into another."""

    along_m: float
    from_province: str | None
    to_province: str | None
    lon: float
    lat: float


class CompiledPermit(msgspec.Struct, frozen=True, kw_only=True):
    """A valid permit with its route in metres, its border crossings and time bounds in ms."""

    permit: Permit
    route_m: Any  # shapely LineString in the metric projection
    borders: tuple[BorderCrossing, ...]
    valid_from_ms: int
    valid_until_ms: int

    @property
    def permit_id(self) -> str:
        return self.permit.permit_id


_decoder = msgspec.json.Decoder(Permit)


def parse_permit(
    raw: bytes, places: JurisdictionIndex, key: str | None = None
) -> CompiledPermit | Rejection:
    """Validate one permit record; the key, if given, must be its ``vehicle_id``."""
    permit = decoded(_decoder.decode, raw)
    if isinstance(permit, Rejection):
        return permit
    if key is not None and key != permit.vehicle_id:
        return Rejection(BAD_KEY, f"key {key!r} differs from vehicle_id {permit.vehicle_id!r}")
    if permit.valid_until <= permit.valid_from:
        return Rejection(INVALID, "valid_until must be after valid_from")
    try:
        route = _route_metres(permit)
    except ValueError as exc:
        return Rejection(BAD_GEOMETRY, str(exc))
    return CompiledPermit(
        permit=permit,
        route_m=route,
        borders=border_crossings(route, places),
        valid_from_ms=to_ms(permit.valid_from),
        valid_until_ms=to_ms(permit.valid_until),
    )


def _route_metres(permit: Permit) -> Any:
    coords = np.asarray(permit.route.coordinates, dtype=float)
    if not np.isfinite(coords).all():
        raise ValueError("route has a non-finite coordinate")
    if permit.crs == "GCJ02":
        coords = np.column_stack(gcj02_to_wgs84(coords[:, 0], coords[:, 1]))
    west, south, east, north = REGION_BOUNDS
    if (coords[:, 0] < west).any() or (coords[:, 0] > east).any() or (
        coords[:, 1] < south).any() or (coords[:, 1] > north).any():
        raise ValueError(f"route leaves the YRD {REGION_BOUNDS} (GeoJSON is [lon, lat])")
    route = geometry_to_metric(shapely.LineString(coords))
    if route.length < 1.0:
        raise ValueError("route has no length")
    if route.length > MAX_ROUTE_M:
        raise ValueError(f"route is {route.length / 1000:,.0f} km long, more than "
                         f"{MAX_ROUTE_M / 1000:,.0f} km")
    shapely.prepare(route)
    return route


def border_crossings(route: Any, places: JurisdictionIndex, step_m: float = 100.0) -> tuple[
        BorderCrossing, ...]:
    """Province changes along the route, located to ``step_m``: the province of every
    sample is :meth:`~JurisdictionIndex.locate`'s (through the faster, exact
    :meth:`~JurisdictionIndex.locate_path`); a crossing is placed midway between the
    samples either side of it."""
    along = np.append(np.arange(0.0, route.length, step_m), route.length)
    xy = points_along(route, along)
    lon, lat = to_lonlat(xy[:, 0], xy[:, 1])
    provinces, _, _ = places.locate_path(lon, lat)
    changes = np.flatnonzero(provinces[1:] != provinces[:-1])
    if changes.size == 0:
        return ()
    mid = (along[changes] + along[changes + 1]) / 2
    mxy = shapely.get_coordinates(shapely.line_interpolate_point(route, mid))
    mlon, mlat = to_lonlat(mxy[:, 0], mxy[:, 1])
    return tuple(BorderCrossing(float(m), provinces[i], provinces[i + 1], float(lo), float(la))
                 for i, m, lo, la in zip(changes, mid, mlon, mlat))


def points_along(line: Any, distances: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``get_coordinates(line_interpolate_point(line, distances))`` for a LineString and
    distances >= 0, bit for bit, without GEOS's walk from the line's start for each one.

    It computes what GEOS's ``LengthIndexedLine`` does: segment lengths
    ``sqrt(dx*dx + dy*dy)`` summed in order, the first segment whose summed end is
    beyond the distance (else the last vertex), ``(p1 - p0) * fraction + p0`` with
    fractions <= 0 or >= 1 giving p0 or p1, a distance <= 0 giving the first vertex.
    ``tests/unit/test_border_crossings.py``
    checks the equality.
    """
    xy = shapely.get_coordinates(line)
    d = np.diff(xy, axis=0)
    seg_len = np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])
    cum = np.concatenate(([0.0], np.cumsum(seg_len)))  # adds in order, like GEOS
    seg = np.searchsorted(cum[1:], distances, side="right")
    beyond = seg == len(d)
    seg[beyond] = len(d) - 1
    out = np.empty((len(distances), 2))
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 only where beyond
        frac = (distances - cum[seg]) / seg_len[seg]
        for k in (0, 1):
            p0, p1 = xy[seg, k], xy[seg + 1, k]
            out[:, k] = np.where(frac <= 0.0, p0,
                                 np.where(frac >= 1.0, p1, (p1 - p0) * frac + p0))
    out[beyond] = xy[-1]
    # GEOS gives the start for a distance <= 0, also when the first segment is too short
    # for its squared length to be non-zero (found by the hypothesis test)
    out[distances <= 0.0] = xy[0]
    return out
