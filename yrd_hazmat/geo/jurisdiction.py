"""Locate positions in the Yangtze River Delta provinces and prefecture-level cities.

Boundaries ship as package data (``yrd_hazmat/data/*.geojson``, see ``SOURCE.md``
there). Points are lon/lat in WGS-84/CGCS2000; GCJ-02 ("Mars") coordinates from
Chinese map SDKs must be converted first: their offset of several hundred metres
matters at borders.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Geod
from shapely.geometry import shape

_DATA_PACKAGE = "yrd_hazmat.data"
_GEOD = Geod(ellps="WGS84")
COASTAL_WATERS_M = 22_224.0
"""Width of the territorial sea (12 nautical miles): offshore points this close to a
city's coast (bridges, port causeways, ferries) belong to that city."""
_M_PER_DEGREE_MIN = 90_000.0
"""Fewest metres in a degree of longitude or latitude south of 35.9°N: a safe search box."""


@dataclass(frozen=True)
class Place:
    """Jurisdiction of one position; all fields are None outside the four provinces."""

    province: str | None  # "SH", "JS", "ZJ" or "AH"
    city_code: str | None  # 6-digit administrative code, e.g. "320100"
    city_name: str | None  # e.g. "南京市"


def _features(name: str) -> list[dict[str, Any]]:
    """Features of a GeoJSON file in the package data, in file order."""
    text = files(_DATA_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    features: list[dict[str, Any]] = json.loads(text)["features"]
    return features


class JurisdictionIndex:
    """Vectorised point-in-city lookup over prepared city polygons in an STRtree.

    Cities are ordered by code; where borders touch or overlap, a point gets the
    city with the lowest code. The boundaries stop at the coastline, so a point
    at sea within ``coastal_m`` of a city (the Hangzhou Bay and Donghai bridges)
    gets the nearest city: a truck on a bridge is still in a jurisdiction.
    """

    def __init__(
        self,
        cities: list[tuple[str, str, str, shapely.Geometry]],
        provinces: dict[str, shapely.Geometry],
        coastal_m: float = COASTAL_WATERS_M,
    ) -> None:
        """Build from ``(code, name, province abbr, geometry)`` city tuples and province shapes."""
        self.coastal_m = coastal_m
        cities = sorted(cities, key=lambda c: c[0])
        self._geoms = np.array([c[3] for c in cities], dtype=object)
        shapely.prepare(self._geoms)
        self._tree = shapely.STRtree(self._geoms)
        # One extra trailing None slot: index len(cities) means "no city".
        self._codes = np.array([c[0] for c in cities] + [None], dtype=object)
        self._names = np.array([c[1] for c in cities] + [None], dtype=object)
        self._provinces = np.array([c[2] for c in cities] + [None], dtype=object)
        self._province_shapes = dict(provinces)

    @classmethod
    def load(cls, coastal_m: float = COASTAL_WATERS_M) -> JurisdictionIndex:
        """Build a new index from the packaged boundary files; ``default_index()`` shares one."""
        cities = [
            (
                f["properties"]["code"],
                f["properties"]["name"],
                f["properties"]["province"],
                shape(f["geometry"]),
            )
            for f in _features("cities.geojson")
        ]
        provinces = {
            f["properties"]["abbr"]: shape(f["geometry"]) for f in _features("provinces.geojson")
        }
        return cls(cities, provinces, coastal_m)

    def locate(
        self, lons: npt.ArrayLike, lats: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_], npt.NDArray[np.object_]]:
        """Return ``(provinces, city_codes, city_names)`` object arrays for 1-D lon/lat arrays.

        Points on a boundary count as inside; points at sea within ``coastal_m``
        of a city get that city; points farther out, and NaN coordinates, give
        None in all three arrays.
        """
        x = np.asarray(lons, dtype=np.float64)
        y = np.asarray(lats, dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape:
            raise ValueError(f"lons and lats must be 1-D of equal length, got {x.shape}, {y.shape}")
        # Bounding-box candidates from the tree, then an exact test against the
        # prepared polygons: measured ~4x faster than query(..., predicate="intersects").
        point_idx, city_idx = self._tree.query(shapely.points(np.column_stack((x, y))))
        inside = shapely.intersects_xy(self._geoms[city_idx], x[point_idx], y[point_idx])
        hit = np.full(len(x), len(self._geoms), dtype=np.intp)
        np.minimum.at(hit, point_idx[inside], city_idx[inside])
        if self.coastal_m > 0:
            self._assign_coastal(x, y, hit)
        return self._provinces[hit], self._codes[hit], self._names[hit]

    def _assign_coastal(self, x: np.ndarray, y: np.ndarray, hit: np.ndarray) -> None:
        """Give unlocated points within ``coastal_m`` (geodesic) of a city that city."""
        missing = np.flatnonzero((hit == len(self._geoms)) & np.isfinite(x) & np.isfinite(y))
        if missing.size == 0:
            return
        points = shapely.points(np.column_stack((x[missing], y[missing])))
        point_idx, city_idx = self._tree.query_nearest(
            points, max_distance=self.coastal_m / _M_PER_DEGREE_MIN, all_matches=False
        )
        if point_idx.size == 0:
            return
        coast = shapely.get_coordinates(
            shapely.shortest_line(self._geoms[city_idx], points[point_idx])
        ).reshape(-1, 2, 2)
        _, _, metres = _GEOD.inv(coast[:, 0, 0], coast[:, 0, 1], coast[:, 1, 0], coast[:, 1, 1])
        near = metres <= self.coastal_m
        hit[missing[point_idx[near]]] = city_idx[near]

    def locate_one(self, lon: float, lat: float) -> Place:
        """Scalar convenience wrapper around :meth:`locate`."""
        provinces, codes, names = self.locate(np.array([lon]), np.array([lat]))
        return Place(provinces[0], codes[0], names[0])

    def province_shapes(self) -> dict[str, shapely.Geometry]:
        """Province geometries (lon/lat) keyed by abbreviation: SH, JS, ZJ, AH."""
        return dict(self._province_shapes)


@functools.cache
def default_index() -> JurisdictionIndex:
    """Process-wide shared index, built on first use."""
    return JurisdictionIndex.load()


@functools.cache
def province_shapes_metric() -> dict[str, shapely.Geometry]:
    """The provinces in the metric projection (prepared), for distances to their borders."""
    from .projection import geometry_to_metric

    shapes = {k: geometry_to_metric(v) for k, v in default_index().province_shapes().items()}
    for shape_ in shapes.values():
        shapely.prepare(shape_)
    return shapes
