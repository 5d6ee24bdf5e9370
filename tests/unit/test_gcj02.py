"""GCJ-02 conversion: the shift is hundreds of metres, and the inverse undoes it."""

import numpy as np

from yrd_hazmat.core.geo.corridors import GEOD
from yrd_hazmat.core.geo.gcj02 import gcj02_to_wgs84, wgs84_to_gcj02


def test_shift_in_shanghai_is_a_few_hundred_metres():
    lon, lat = wgs84_to_gcj02(121.4737, 31.2304)
    _, _, metres = GEOD.inv(121.4737, 31.2304, float(lon), float(lat))
    assert 300 < metres < 700


def test_inverse_is_exact_to_a_centimetre():
    lons = np.linspace(117.0, 122.5, 50)
    lats = np.linspace(29.0, 34.5, 50)
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lons, lats))
    _, _, err = GEOD.inv(lons, lats, back_lon, back_lat)
    assert err.max() < 0.01


def test_no_shift_outside_china():
    lon, lat = wgs84_to_gcj02(139.69, 35.68)  # Tokyo
    assert (float(lon), float(lat)) == (139.69, 35.68)
