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


def _xy(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(lons, dtype=np.float64)
    y = np.asarray(lats, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"lons and lats must be 1-D of equal length, got {x.shape}, {y.shape}")
    return x, y


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
        self._boundaries: shapely.Geometry | None = None  # see city_boundaries()

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
        x, y = _xy(lons, lats)
        hit = self._inside(x, y)
        if self.coastal_m > 0:
            self._assign_coastal(x, y, hit)
        return self._provinces[hit], self._codes[hit], self._names[hit]

    def locate_path(
        self, lons: npt.ArrayLike, lats: npt.ArrayLike, chunk: int = 10
    ) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_], npt.NDArray[np.object_]]:
        """Same result as :meth:`locate` for the points of a path, many times faster
        when consecutive points are close (a route sampled every 100 m).

        Why it is exact: the points are cut into runs of ``chunk`` (>= 1) steps (a
        run shares its last point with the next one), and each run's polyline
        (straight lon/lat segments through its points) is tested against all city
        boundaries at once. A run that neither crosses nor touches a boundary lies
        in one face of the boundaries, so all its points are inside the same cities
        (none on a boundary) and :meth:`locate` gives them the same city: its first
        point's, if that point is inside a city. So do consecutive such runs, which
        share a point. The points of the other runs (touching a boundary, outside
        every city where the coastal rule depends on each point's distance, or with
        a non-finite coordinate) are located one by one. GEOS decides both the
        segment test and point-in-polygon with the same robust orientation
        predicate, so rounding cannot make them disagree.
        """
        x, y = _xy(lons, lats)
        if len(x) < 2:
            return self.locate(x, y)
        starts = np.arange(0, len(x) - 1, chunk)
        counts = np.minimum(starts + chunk, len(x) - 1) - starts + 1
        offsets = np.cumsum(counts) - counts
        run = np.repeat(np.arange(len(starts)), counts)  # runs' points, one after the other
        idx = starts[run] + np.arange(len(run)) - offsets[run]  # their index in x, y
        ok = np.isfinite(x[idx]) & np.isfinite(y[idx])
        # GEOS refuses NaN/inf in lines: put 0 there, in runs that are not clean anyway.
        xy = np.where(ok[:, None], np.column_stack((x[idx], y[idx])), 0.0)
        lines = shapely.linestrings(xy, indices=run)
        clean = np.logical_and.reduceat(ok, offsets)
        clean &= ~shapely.intersects(self.city_boundaries(), lines)
        # Consecutive clean runs share a point, so they lie in one face too: locate one
        # point (the first) of each stretch of them.
        head = clean & ~np.append(False, clean[:-1])
        city = np.full(len(starts), len(self._geoms), dtype=np.intp)
        city[clean] = self._inside(x[starts[head]], y[starts[head]])[np.cumsum(head)[clean] - 1]
        same = (city < len(self._geoms))[run]
        hit = np.empty(len(x), dtype=np.intp)
        hit[idx[same]] = city[run[same]]
        rest = np.unique(idx[~same])  # also points shared with a `same` run: same answer
        rest_hit = self._inside(x[rest], y[rest])
        if self.coastal_m > 0:
            self._assign_coastal(x[rest], y[rest], rest_hit)
        hit[rest] = rest_hit
        return self._provinces[hit], self._codes[hit], self._names[hit]

    def city_boundaries(self) -> shapely.Geometry:
        """All city boundaries (outer and inner rings) as one prepared MultiLineString,
        built on first use: a line touching none of it stays inside the same cities."""
        if self._boundaries is None:
            rings = shapely.get_parts(shapely.boundary(self._geoms))
            boundaries = shapely.multilinestrings(rings)
            shapely.prepare(boundaries)
            self._boundaries = boundaries
        return self._boundaries

    def _inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Index of the lowest-coded city containing each point, ``len(cities)`` if none."""
        # Bounding-box candidates from the tree, then an exact test against the
        # prepared polygons: measured ~4x faster than query(..., predicate="intersects").
        point_idx, city_idx = self._tree.query(shapely.points(np.column_stack((x, y))))
        inside = shapely.intersects_xy(self._geoms[city_idx], x[point_idx], y[point_idx])
        hit = np.full(len(x), len(self._geoms), dtype=np.intp)
        np.minimum.at(hit, point_idx[inside], city_idx[inside])
        return hit

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
