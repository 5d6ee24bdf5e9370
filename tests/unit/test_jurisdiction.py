"""Tests for yrd_hazmat.core.geo.jurisdiction against the packaged YRD boundaries."""

from __future__ import annotations

import json
from collections import Counter
from importlib.resources import files

import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import shape

from yrd_hazmat.core.geo.jurisdiction import JurisdictionIndex, Place, default_index

# (lon, lat) WGS-84 -> expected Place; each point is > 15 km from any city border.
KNOWN: dict[str, tuple[float, float, Place]] = {
    "Shanghai People's Square": (121.4737, 31.2304, Place("SH", "310000", "上海市")),
    "Nanjing Xinjiekou": (118.7841, 32.0415, Place("JS", "320100", "南京市")),
    "Suzhou": (120.5853, 31.2989, Place("JS", "320500", "苏州市")),
    "Hangzhou West Lake": (120.1485, 30.2425, Place("ZJ", "330100", "杭州市")),
    "Ningbo": (121.5440, 29.8683, Place("ZJ", "330200", "宁波市")),
    "Hefei": (117.2272, 31.8206, Place("AH", "340100", "合肥市")),
    "Beijing": (116.4074, 39.9042, Place(None, None, None)),
    "East China Sea off Shanghai": (123.5, 31.0, Place(None, None, None)),
}
# Known areas: SH 6,340 km² land (7,200-8,000 with tidal flats), JS ~103,000,
# ZJ ~104,000-107,000, AH ~141,000.
AREA_KM2 = {
    "SH": (6_300, 8_000),
    "JS": (100_000, 106_000),
    "ZJ": (102_000, 108_000),
    "AH": (137_000, 145_000),
}


@pytest.fixture(scope="module")
def index() -> JurisdictionIndex:
    """Return the shared default index."""
    return default_index()


@pytest.mark.parametrize("name", KNOWN)
def test_locate_one_known_places(index: JurisdictionIndex, name: str) -> None:
    lon, lat, expected = KNOWN[name]
    assert index.locate_one(lon, lat) == expected


def test_locate_vectorised_matches_scalar(index: JurisdictionIndex) -> None:
    lons = np.array([v[0] for v in KNOWN.values()] * 3)
    lats = np.array([v[1] for v in KNOWN.values()] * 3)
    provinces, codes, names = index.locate(lons, lats)
    assert provinces.dtype == codes.dtype == names.dtype == np.dtype(object)
    got = [Place(p, c, n) for p, c, n in zip(provinces, codes, names, strict=True)]
    assert got == [index.locate_one(x, y) for x, y in zip(lons, lats, strict=True)]
    assert got == [v[2] for v in KNOWN.values()] * 3


def test_locate_empty_nan_and_bad_shapes(index: JurisdictionIndex) -> None:
    provinces, codes, names = index.locate(np.array([]), np.array([]))
    assert len(provinces) == len(codes) == len(names) == 0
    assert index.locate_one(float("nan"), 31.2) == Place(None, None, None)
    with pytest.raises(ValueError):
        index.locate(np.array([121.0, 120.0]), np.array([31.0]))


def test_every_city_locates_to_itself(index: JurisdictionIndex) -> None:
    raw = json.loads(files("yrd_hazmat.data").joinpath("cities.geojson").read_text("utf-8"))
    props = [f["properties"] for f in raw["features"]]
    inner = shapely.point_on_surface([shape(f["geometry"]) for f in raw["features"]])
    provinces, codes, names = index.locate(shapely.get_x(inner), shapely.get_y(inner))
    assert list(codes) == [p["code"] for p in props]
    assert list(names) == [p["name"] for p in props]
    assert list(provinces) == [p["province"] for p in props]
    assert Counter(provinces) == {"SH": 1, "JS": 13, "ZJ": 11, "AH": 16}


def test_shared_border_goes_to_lowest_code(index: JurisdictionIndex) -> None:
    shapes = index.province_shapes()
    border = shapely.intersection(shapes["SH"].boundary, shapes["JS"].boundary)
    lon, lat = shapely.get_coordinates(border)[0]
    assert index.locate_one(lon, lat).city_code == "310000"


@pytest.mark.parametrize("abbr", AREA_KM2)
def test_province_areas(index: JurisdictionIndex, abbr: str) -> None:
    area_m2, _ = Geod(ellps="WGS84").geometry_area_perimeter(index.province_shapes()[abbr])
    low, high = AREA_KM2[abbr]
    assert low <= abs(area_m2) / 1e6 <= high


def test_default_index_is_cached() -> None:
    assert default_index() is default_index()


def test_bridges_over_the_sea_stay_in_a_jurisdiction(index: JurisdictionIndex) -> None:
    # The boundaries stop at the coast; trucks on these bridges are still policed.
    hangzhou_bay_bridge = index.locate_one(121.0767, 30.4337)
    donghai_bridge_north = index.locate_one(121.97, 30.80)  # nearest coast: the nearest city
    assert hangzhou_bay_bridge.province == "ZJ"
    assert donghai_bridge_north.province == "SH" and donghai_bridge_north.city_code == "310000"
    # ... while the open sea, farther than the territorial sea, is nobody's
    assert index.locate_one(122.6, 31.6) == Place(None, None, None)
    assert JurisdictionIndex.load(coastal_m=0).locate_one(121.0767, 30.4337).province is None
