"""Approximate expressway corridors between real YRD cities (WGS-84).

No installable package ships Chinese road networks, so these polylines are
drawn through the main towns each expressway serves. They are approximate
(a few km off the real carriageway) and meant for simulation and for
illustrative permits, not for navigation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from pyproj import Geod

GEOD = Geod(ellps="WGS84")

CITIES: dict[str, tuple[float, float]] = {
    "Shanghai": (121.4737, 31.2304),
    "Suzhou": (120.5853, 31.2989),
    "Wuxi": (120.3119, 31.4912),
    "Changzhou": (119.9741, 31.8112),
    "Zhenjiang": (119.4250, 32.1880),
    "Nanjing": (118.7969, 32.0603),
    "Jiaxing": (120.7555, 30.7469),
    "Hangzhou": (120.1551, 30.2741),
    "Shaoxing": (120.5821, 29.9971),
    "Ningbo": (121.5440, 29.8683),
    "Huzhou": (120.0868, 30.8940),
    "Hefei": (117.2272, 31.8206),
    "Wuhu": (118.4329, 31.3526),
}


@dataclass(frozen=True)
class Corridor:
    """A named expressway between two cities, as a WGS-84 polyline."""

    name: str
    origin: str
    destination: str
    points: tuple[tuple[float, float], ...]

    @cached_property
    def _cumulative_m(self) -> np.ndarray:
        lons = [p[0] for p in self.points]
        lats = [p[1] for p in self.points]
        _, _, dist = GEOD.inv(lons[:-1], lats[:-1], lons[1:], lats[1:])
        return np.concatenate([[0.0], np.cumsum(dist)])

    @property
    def length_m(self) -> float:
        return float(self._cumulative_m[-1])

    def position(self, distance_m: float) -> tuple[float, float, int]:
        """(lon, lat, heading in degrees) at ``distance_m`` along the corridor."""
        cum = self._cumulative_m
        d = min(max(distance_m, 0.0), self.length_m)
        i = int(min(np.searchsorted(cum, d, side="right") - 1, len(self.points) - 2))
        (lon1, lat1), (lon2, lat2) = self.points[i], self.points[i + 1]
        azimuth, _, _ = GEOD.inv(lon1, lat1, lon2, lat2)
        lon, lat, _ = GEOD.fwd(lon1, lat1, azimuth, d - cum[i])
        return float(lon), float(lat), int(round(azimuth)) % 360

    def reversed(self) -> "Corridor":
        return Corridor(self.name, self.destination, self.origin, tuple(reversed(self.points)))


def _corridor(name: str, *stops: str | tuple[float, float]) -> Corridor:
    points = tuple(CITIES[s] if isinstance(s, str) else s for s in stops)
    first, last = stops[0], stops[-1]
    assert isinstance(first, str) and isinstance(last, str)
    return Corridor(name, first, last, points)


CORRIDORS: tuple[Corridor, ...] = (
    _corridor(
        "G2 Shanghai-Nanjing",
        "Shanghai", (121.25, 31.30), (120.98, 31.38), "Suzhou", "Wuxi", "Changzhou",
        (119.60, 32.00), "Zhenjiang", "Nanjing",
    ),
    _corridor(
        "G60 Shanghai-Hangzhou",
        "Shanghai", (121.22, 31.03), (120.92, 30.84), "Jiaxing", (120.68, 30.51), "Hangzhou",
    ),
    _corridor(
        "G92 Hangzhou-Ningbo",
        "Hangzhou", "Shaoxing", (120.87, 30.03), (121.15, 30.04), "Ningbo",
    ),
    _corridor(
        "G42 Nanjing-Hefei",
        "Nanjing", (118.62, 32.06), (118.27, 32.09), (117.70, 31.95), "Hefei",
    ),
    _corridor(
        "G50 Shanghai-Huzhou-Wuhu",
        "Shanghai", (121.12, 31.15), (120.64, 31.16), "Huzhou", (119.91, 31.03),
        (118.76, 30.94), "Wuhu",
    ),
    _corridor(
        "G15 Jiaxing-Ningbo (Hangzhou Bay Bridge)",
        "Jiaxing", (121.00, 30.55), (121.25, 30.17), "Ningbo",
    ),
)
