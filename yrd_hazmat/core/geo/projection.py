"""The metric projection in which distances and buffers are computed.

A transverse Mercator centred on 119.5°E (the middle of the YRD, 114.9-122.9°E)
on the WGS-84 ellipsoid: over the region its scale error stays under 0.25 %,
so metres here are metres on the ground to within a few per mille.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import shapely
from pyproj import Transformer

YRD_METRIC_CRS = "+proj=tmerc +lat_0=0 +lon_0=119.5 +k=1 +x_0=500000 +y_0=0 +ellps=WGS84 +units=m +no_defs"


@cache
def _forward() -> Transformer:
    return Transformer.from_crs("EPSG:4326", YRD_METRIC_CRS, always_xy=True)


@cache
def _inverse() -> Transformer:
    return Transformer.from_crs(YRD_METRIC_CRS, "EPSG:4326", always_xy=True)


def to_metric(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 lon/lat (arrays) -> x, y metres."""
    x, y = _forward().transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return np.asarray(x), np.asarray(y)


def to_lonlat(x, y) -> tuple[np.ndarray, np.ndarray]:
    """x, y metres -> WGS-84 lon/lat."""
    lon, lat = _inverse().transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return np.asarray(lon), np.asarray(lat)


def geometry_to_metric(geom: shapely.Geometry) -> shapely.Geometry:
    """A lon/lat geometry in the metric projection."""
    return shapely.transform(geom, lambda xy: np.column_stack(to_metric(xy[:, 0], xy[:, 1])))
