"""Zone evaluation alone: points per second per core against 100, 1,000 and 10,000 zones.

    python benchmarks/zones.py [--points 200000] [--zones 100,1000,10000] [--repeat 5]

Zones are random irregular polygons (200 m to 3 km across) and buffered road
sections, spread over the four provinces; points are uniform over the same
area, in batches like the worker's. Three stages are timed, each on one core
(numpy and shapely run single-threaded here):

- ``evaluate``: ZoneIndex.evaluate on points already in metres (the spatial step);
- ``project+evaluate``: WGS-84 -> metres with pyproj, then evaluate;
- ``observe``: the worker's whole per-batch geometry (GCJ-02 check, province and
  city lookup, projection, zones) building Observation objects.

The figures are compared with the issue's target of 300,000 points/s per core
for 10,000 zones, and each stage with the same stage run with no zones at all
(its floor: projection alone, or the per-ping work of building observations).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import numpy as np
import shapely
import shapely.geometry

from yrd_hazmat.core.enrich import observe
from yrd_hazmat.core.geo.jurisdiction import default_index
from yrd_hazmat.core.geo.projection import to_lonlat, to_metric
from yrd_hazmat.core.models import Ping
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.core.zones.index import CompiledZone, ZoneIndex
from yrd_hazmat.core.zones.model import Zone, ZoneProperties

TARGET = 300_000
BATCH = 2_000


def region_sampler(rng: np.random.Generator):
    """Uniform random (x, y) metres inside the four provinces."""
    region = shapely.union_all(list(default_index().province_shapes().values()))
    lon0, lat0, lon1, lat1 = region.bounds
    shapely.prepare(region)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        lons, lats = [], []
        while sum(map(len, lons)) < n:
            lon = rng.uniform(lon0, lon1, n)
            lat = rng.uniform(lat0, lat1, n)
            keep = shapely.contains_xy(region, lon, lat)
            lons.append(lon[keep])
            lats.append(lat[keep])
        x, y = to_metric(np.concatenate(lons)[:n], np.concatenate(lats)[:n])
        return x, y

    return sample


def random_zones(count: int, rng: np.random.Generator, sample) -> list[CompiledZone]:
    """Irregular polygons (4 in 5) and 30 m-wide road sections (1 in 5)."""
    cx, cy = sample(count)
    zones = []
    for i in range(count):
        if i % 5 == 4:
            angle = rng.uniform(0, np.pi)
            length = rng.uniform(500, 5000)
            dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
            metric = shapely.LineString([(cx[i] - dx, cy[i] - dy), (cx[i] + dx, cy[i] + dy)]).buffer(
                30, cap_style="flat")
            kind = "bridge"
        else:
            vertices = rng.integers(8, 40)
            theta = np.sort(rng.uniform(0, 2 * np.pi, vertices))
            radius = rng.uniform(100, 1500) * rng.uniform(0.6, 1.0, vertices)
            metric = shapely.Polygon(np.column_stack(
                (cx[i] + radius * np.cos(theta), cy[i] + radius * np.sin(theta))))
            kind = "custom"
        props = ZoneProperties(zone_id=f"bench-{i}", name=f"zone {i}", kind=kind,
                               banned_classes="all")
        zones.append(CompiledZone.build(Zone(props=props, geometry=None, metric=metric), 30.0))
    return zones


def zone_features(zones: list[CompiledZone]) -> dict:
    """The random zones as a GeoJSON FeatureCollection (WGS-84), for a worker's zones file."""
    features = []
    for compiled in zones:
        metric = compiled.zone.metric
        lonlat = shapely.transform(metric, lambda xy: np.column_stack(to_lonlat(xy[:, 0], xy[:, 1])))
        props = msgspec.to_builtins(compiled.zone.props)
        features.append({"type": "Feature", "geometry": shapely.geometry.mapping(lonlat),
                         "properties": {k: v for k, v in props.items() if v is not None}})
    return {"type": "FeatureCollection", "features": features}


def rate(fn, n_points: int, repeat: int) -> float:
    """Median points per second of ``fn()`` over ``repeat`` runs."""
    fn()  # warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n_points / statistics.median(times)


def batches(n: int):
    return [slice(i, min(i + BATCH, n)) for i in range(0, n, BATCH)]


def pings_for(x: np.ndarray, y: np.ndarray) -> list[Ping]:
    lon, lat = to_lonlat(x, y)
    t0 = datetime(2026, 11, 30, 10, tzinfo=CHINA_TZ)
    return [Ping(vehicle_id=f"沪A{i % 100_000:05d}", ts=t0 + timedelta(seconds=i), lat=float(b),
                 lon=float(a), speed_kmh=60.0) for i, (a, b) in enumerate(zip(lon, lat))]


SEGMENT_M = 670.0
"""Length of the segments: 30 s between fixes at 80 km/h."""


def segment_ends(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The other end of a SEGMENT_M segment from each point, in a random direction."""
    angle = np.random.default_rng(seed).uniform(0, 2 * np.pi, len(x))
    return x + SEGMENT_M * np.cos(angle), y + SEGMENT_M * np.sin(angle)


def measure(index: ZoneIndex, x, y, pings, repeat: int) -> dict[str, float]:
    n = len(x)
    lon, lat = to_lonlat(x, y)
    x1, y1 = segment_ends(x, y, n)
    places = default_index()
    parts = batches(n)
    return {
        "evaluate": rate(lambda: [index.evaluate(x[s], y[s]) for s in parts], n, repeat),
        "segments": rate(lambda: [index.crossings(x[s], y[s], x1[s], y1[s]) for s in parts],
                         n, repeat),
        "project+evaluate": rate(
            lambda: [index.evaluate(*to_metric(lon[s], lat[s])) for s in parts], n, repeat),
        "observe": rate(lambda: [observe(pings[s], places, index) for s in parts], n,
                        max(1, repeat // 2)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--zones", default="100,1000,10000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--write-geojson", metavar="N:PATH",
                        help="only write N random zones as a zones file (YRD_ZONES_FILE)")
    args = parser.parse_args()
    if args.write_geojson:
        count, path = args.write_geojson.split(":", 1)
        rng = np.random.default_rng(args.seed)
        zones = random_zones(int(count), rng, region_sampler(rng))
        Path(path).write_text(json.dumps(zone_features(zones)), encoding="utf-8")
        print(f"wrote {count} zones to {path}")
        return

    rng = np.random.default_rng(args.seed)
    sample = region_sampler(rng)
    x, y = sample(args.points)
    pings = pings_for(x, y)
    print(f"zone evaluation benchmark, {datetime.now(CHINA_TZ):%Y-%m-%d %H:%M %Z}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, shapely {shapely.__version__}")
    print(f"{args.points:,} points uniform over SH/JS/ZJ/AH, batches of {BATCH}, one core\n")
    floor = measure(ZoneIndex([]), x, y, pings, args.repeat)
    header = f"{'zones':>7} {'build s':>8} {'hits/pt':>8} " + " ".join(
        f"{k + ' pts/s':>22}" for k in floor)
    print(header)
    print(f"{0:>7} {'-':>8} {0:>8.3f} " + " ".join(f"{v:>22,.0f}" for v in floor.values()))
    results = {}
    for count in (int(c) for c in args.zones.split(",")):
        start = time.perf_counter()
        index = ZoneIndex(random_zones(count, rng, sample))
        built = time.perf_counter() - start
        hits = len(index.evaluate(x, y).point) / len(x)
        results[count] = measure(index, x, y, pings, args.repeat)
        print(f"{count:>7,} {built:>8.1f} {hits:>8.3f} " + " ".join(
            f"{v:>22,.0f}" for v in results[count].values()))
    largest = max(results)
    got = results[largest]["evaluate"]
    print(f"\ntarget: >= {TARGET:,} points/s per core with 10,000 zones; "
          f"evaluate with {largest:,} zones: {got:,.0f} ({got / TARGET:.2f}x the target)")
    for stage in ("project+evaluate", "observe"):
        print(f"{stage} with {largest:,} zones runs at "
              f"{results[largest][stage] / floor[stage]:.2f}x the same stage with no zones")
    for count, row in results.items():
        print(f"segments ({SEGMENT_M:.0f} m, between fixes) with {count:,} zones: "
              f"{row['segments']:,.0f}/s, {row['evaluate'] / row['segments']:.2f}x the time of "
              "the point check")
    smallest = min(results)
    growth = results[smallest]["evaluate"] / results[largest]["evaluate"]
    print(f"cost growth from {smallest:,} to {largest:,} zones ({largest // smallest}x): "
          f"{growth:.2f}x")


if __name__ == "__main__":
    main()
