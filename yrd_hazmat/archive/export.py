"""A truck's track (and its alerts) from the archive in the formats a map, a GPS tool or a
spreadsheet opens: GeoJSON, KML 2.2, GPX 1.1 and CSV. Pure: tables in, bytes out.

``track`` is what :meth:`.read.Archive.track` returns (pings in time order, one per fix
time); ``alerts`` what :meth:`.read.Archive.alerts` returns.

- Positions: the maps' formats (GeoJSON, KML, GPX) are WGS-84 by definition, so a ping
  recorded in GCJ-02 (its ``crs`` column) is converted with
  :func:`..core.geo.gcj02.gcj02_to_wgs84`; the CSV keeps the position as recorded, with
  its ``crs``, and gives the WGS-84 one beside it. Alerts are already WGS-84 (the engine
  converts before it locates). Coordinates are rounded to 7 decimals (about 1 cm): a
  recorded value (6 decimals) is unchanged.
- A ping without a fix (``fix_valid`` false, only when asked) is proof of life, not a
  position: it is a row of the CSV and a GeoJSON feature without geometry, and is left
  out of the line, of KML and of GPX.
- Times: China time (``+08:00``), except GPX, whose schema mandates UTC (``Z``).
- Everything is deterministic: the same tables give the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from .. import __version__
from ..core.geo.gcj02 import gcj02_to_wgs84
from ..core.timeutil import CHINA_TZ
from ..spreadsheet import cell  # the formula guard the desk's CSV uses too

KML_NS = "http://www.opengis.net/kml/2.2"
GPX_NS = "http://www.topografix.com/GPX/1/1"
CREATOR = f"yrd-hazmat {__version__}"
DIGITS = 7
"""Decimals of a coordinate (1e-7 degree: about 1 cm)."""

TRACK_CSV_COLUMNS = (
    "time", "vehicle_id", "lat", "lon", "crs", "lat_wgs84", "lon_wgs84", "speed_kmh",
    "heading", "altitude_m", "mileage_km", "fix_valid", "blind", "road_class", "alarm_flags",
    "status_flags", "quality", "province", "city_code", "city_name", "carrier", "alarm_extra",
    "raw_items", "partition", "offset", "received_at")
ALERTS_CSV_COLUMNS = (
    "time", "alert_id", "incident_id", "type", "severity", "state", "vehicle_id", "lat", "lon",
    "province", "city_code", "city_name", "permit_id", "un_number", "hazard_class", "carrier",
    "details", "emitted_at", "partition", "offset", "received_at")


# --- shared -------------------------------------------------------------------------------
def iso(ts: datetime | None) -> str | None:
    """China time, ISO 8601 with ``+08:00``; milliseconds only when there are any."""
    if ts is None:
        return None
    ts = ts.astimezone(CHINA_TZ)
    return ts.isoformat(timespec="milliseconds" if ts.microsecond else "seconds")


def iso_utc(ts: datetime) -> str:
    """UTC, ISO 8601 with ``Z`` (GPX)."""
    ts = ts.astimezone(timezone.utc)
    return ts.strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{ts.microsecond // 1000:03d}" if ts.microsecond else "") + "Z"


def coord(value: float) -> float:
    return round(float(value), DIGITS)


def text(value: float) -> str:
    """A coordinate as text, the shortest form that reads back as the same number."""
    return repr(coord(value))


def _speed(value) -> float | None:
    """float32 as stored, back to the 0.1 km/h a terminal reports."""
    return None if value is None or math.isnan(value) else round(float(value), 1)


def wgs84(track: pa.Table) -> tuple[list[float], list[float]]:
    """The pings' (lon, lat) in WGS-84, GCJ-02 ones converted."""
    lon = np.asarray(track["lon"].to_pylist(), dtype=float)
    lat = np.asarray(track["lat"].to_pylist(), dtype=float)
    gcj = np.asarray([c == "GCJ02" for c in track["crs"].to_pylist()], dtype=bool)
    if gcj.any():
        lon[gcj], lat[gcj] = gcj02_to_wgs84(lon[gcj], lat[gcj])
    return [coord(v) for v in lon.tolist()], [coord(v) for v in lat.tolist()]


def distance_km(lons: list[float], lats: list[float]) -> float:
    """The geodesic length (WGS-84 ellipsoid) of the line, km, to the metre."""
    if len(lons) < 2:
        return 0.0
    from pyproj import Geod

    return round(Geod(ellps="WGS84").line_length(lons, lats) / 1000, 3)


class _Pings:
    """The track's rows with their WGS-84 positions, and the fixes among them."""

    def __init__(self, track: pa.Table) -> None:
        self.rows = track.to_pylist()
        self.lon, self.lat = wgs84(track) if track.num_rows else ([], [])
        self.fixes = [i for i, r in enumerate(self.rows) if r["fix_valid"]]

    def line(self) -> tuple[list[float], list[float]]:
        return [self.lon[i] for i in self.fixes], [self.lat[i] for i in self.fixes]


def _alerts(alerts: pa.Table | None) -> list[dict]:
    return alerts.to_pylist() if alerts is not None else []


# --- GeoJSON ------------------------------------------------------------------------------
def geojson(track: pa.Table, alerts: pa.Table | None = None, *,
            vehicle_id: str | None = None) -> bytes:
    """A FeatureCollection (RFC 7946): the track as a LineString (null geometry under two
    fixes), then a Point per ping, then a Point per alert; every feature's ``kind`` says
    which. One feature a line."""
    p = _Pings(track)
    lons, lats = p.line()
    vehicle = vehicle_id or (p.rows[0]["vehicle_id"] if p.rows else None)
    features = [{
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[x, y] for x, y in zip(lons, lats)]}
        if len(lons) >= 2 else None,
        "properties": {
            "kind": "track", "vehicle_id": vehicle,
            "from": iso(p.rows[0]["ts"]) if p.rows else None,
            "to": iso(p.rows[-1]["ts"]) if p.rows else None,
            "points": len(lons), "distance_km": distance_km(lons, lats), "crs": "WGS84"}}]
    for i, r in enumerate(p.rows):
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [p.lon[i], p.lat[i]]}
            if r["fix_valid"] else None,
            "properties": {
                "kind": "ping", "ts": iso(r["ts"]), "speed_kmh": _speed(r["speed_kmh"]),
                "heading": r["heading"], "province": r["province"],
                "city_name": r["city_name"], "quality": list(r["quality"] or []),
                "fix_valid": r["fix_valid"], "recorded_crs": r["crs"]}})
    for a in _alerts(alerts):
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [coord(a["lon"]), coord(a["lat"])]},
            "properties": {
                "kind": "alert", "type": a["type"], "state": a["state"],
                "severity": a["severity"], "ts": iso(a["ts"]), "alert_id": a["alert_id"],
                "incident_id": a["incident_id"]}})
    body = ",\n".join(json.dumps(f, ensure_ascii=False, separators=(",", ":"))
                      for f in features)
    return ('{"type":"FeatureCollection","features":[\n' + body + "\n]}\n").encode("utf-8")


# --- KML ----------------------------------------------------------------------------------
def _sub(parent: ET.Element, tag: str, value: str | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrib)
    if value is not None:
        el.text = value
    return el


def _xml(root: ET.Element) -> bytes:
    ET.indent(root, space=" ")
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n'
            + ET.tostring(root, encoding="unicode").encode("utf-8") + b"\n")


def _data(parent: ET.Element, values: dict) -> None:
    extended = _sub(parent, "ExtendedData")
    for name, value in values.items():
        if value is not None:
            _sub(_sub(extended, "Data", name=name), "value", str(value))


def kml(track: pa.Table, alerts: pa.Table | None = None, *,
        vehicle_id: str | None = None) -> bytes:
    """KML 2.2 (OGC, no extension): a Document with the track as a LineString Placemark,
    a Folder of the pings (Points with a TimeStamp, so Google Earth's time slider replays
    them) and a Folder of the alerts. Text is escaped by ElementTree."""
    p = _Pings(track)
    lons, lats = p.line()
    vehicle = vehicle_id or (p.rows[0]["vehicle_id"] if p.rows else "")
    root = ET.Element("kml", xmlns=KML_NS)
    doc = _sub(root, "Document")
    first = iso(p.rows[0]["ts"]) if p.rows else None
    last = iso(p.rows[-1]["ts"]) if p.rows else None
    _sub(doc, "name", f"{vehicle} {first or ''} – {last or ''}".strip())
    _sub(doc, "description", f"{CREATOR}: {len(lons)} fixes, "
                             f"{distance_km(lons, lats)} km, WGS-84, China time")
    for sid, color, width in (("track", "ff0000ff", "3"), ("ping", "ffff0000", None),
                              ("alert", "ff00ffff", None)):
        style = _sub(doc, "Style", id=sid)
        if width:
            line = _sub(style, "LineStyle")
            _sub(line, "color", color)
            _sub(line, "width", width)
        else:
            icon = _sub(style, "IconStyle")
            _sub(icon, "color", color)
            _sub(icon, "scale", "0.6" if sid == "ping" else "1.0")
    mark = _sub(doc, "Placemark")
    _sub(mark, "name", vehicle)
    if first:
        span = _sub(mark, "TimeSpan")
        _sub(span, "begin", first)
        _sub(span, "end", last)
    _sub(mark, "styleUrl", "#track")
    _data(mark, {"vehicle_id": vehicle, "from": first, "to": last, "points": len(lons),
                 "distance_km": distance_km(lons, lats)})
    if len(lons) >= 2:
        line = _sub(mark, "LineString")
        _sub(line, "tessellate", "1")
        _sub(line, "coordinates", " ".join(f"{text(x)},{text(y)}"
                                           for x, y in zip(lons, lats)))
    folder = _sub(doc, "Folder")
    _sub(folder, "name", "pings")
    for i in p.fixes:
        r = p.rows[i]
        pm = _sub(folder, "Placemark")
        when = iso(r["ts"])
        _sub(pm, "name", when[11:19])
        _sub(_sub(pm, "TimeStamp"), "when", when)
        _sub(pm, "styleUrl", "#ping")
        _data(pm, {"ts": when, "speed_kmh": _speed(r["speed_kmh"]), "heading": r["heading"],
                   "province": r["province"], "city_name": r["city_name"],
                   "quality": ";".join(r["quality"] or []) or None,
                   "recorded_crs": r["crs"]})
        _sub(_sub(pm, "Point"), "coordinates", f"{text(p.lon[i])},{text(p.lat[i])}")
    rows = _alerts(alerts)
    if rows:
        folder = _sub(doc, "Folder")
        _sub(folder, "name", "alerts")
        for a in rows:
            pm = _sub(folder, "Placemark")
            when = iso(a["ts"])
            _sub(pm, "name", f"{a['type']} {a['state']}")
            _sub(_sub(pm, "TimeStamp"), "when", when)
            _sub(pm, "styleUrl", "#alert")
            _data(pm, {"type": a["type"], "state": a["state"], "severity": a["severity"],
                       "ts": when, "alert_id": a["alert_id"],
                       "incident_id": a["incident_id"]})
            _sub(_sub(pm, "Point"), "coordinates", f"{text(a['lon'])},{text(a['lat'])}")
    return _xml(root)


# --- GPX ----------------------------------------------------------------------------------
def gpx(track: pa.Table, alerts: pa.Table | None = None, *,
        vehicle_id: str | None = None) -> bytes:
    """GPX 1.1: the alerts as waypoints (``wpt``, the schema puts them first), the fixes as
    one ``trk``/``trkseg`` of ``trkpt`` (``ele`` from altitude_m, ``time`` in UTC)."""
    p = _Pings(track)
    vehicle = vehicle_id or (p.rows[0]["vehicle_id"] if p.rows else "")
    root = ET.Element("gpx", {"xmlns": GPX_NS, "version": "1.1", "creator": CREATOR})
    meta = _sub(root, "metadata")
    _sub(meta, "name", vehicle)
    _sub(meta, "desc", "WGS-84; times in UTC")
    for a in _alerts(alerts):
        wpt = _sub(root, "wpt", lat=text(a["lat"]), lon=text(a["lon"]))
        _sub(wpt, "time", iso_utc(a["ts"]))
        _sub(wpt, "name", f"{a['type']} {a['state']}")
        _sub(wpt, "desc", f"severity {a['severity']}; alert {a['alert_id']}; "
                          f"China time {iso(a['ts'])}")
        _sub(wpt, "type", a["type"])
    trk = _sub(root, "trk")
    _sub(trk, "name", vehicle)
    seg = _sub(trk, "trkseg")
    for i in p.fixes:
        r = p.rows[i]
        pt = _sub(seg, "trkpt", lat=text(p.lat[i]), lon=text(p.lon[i]))
        if r["altitude_m"] is not None:
            _sub(pt, "ele", str(r["altitude_m"]))
        _sub(pt, "time", iso_utc(r["ts"]))
        speed = _speed(r["speed_kmh"])
        _sub(pt, "desc", f"{speed} km/h" + (f", heading {r['heading']}"
                                              if r["heading"] is not None else ""))
    return _xml(root)


# --- CSV ----------------------------------------------------------------------------------
def _csv(columns: tuple[str, ...], rows: list[list]) -> bytes:
    """A header row, UTF-8 with a BOM (Excel reads the Chinese then), CRLF lines."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _s(value) -> str:
    """A text cell: empty for none, formula-like text quoted (the desk's guard)."""
    return "" if value is None else cell(str(value))


def _n(value) -> str:
    return "" if value is None else str(value)


def track_csv(track: pa.Table, alerts: pa.Table | None = None, *,
              vehicle_id: str | None = None) -> bytes:
    """One row per ping (every column of the archive), the position as recorded and in
    WGS-84; times in China time."""
    p = _Pings(track)
    rows = []
    for i, r in enumerate(p.rows):
        rows.append([
            iso(r["ts"]), _s(r["vehicle_id"]), text(r["lat"]), text(r["lon"]), _s(r["crs"]),
            text(p.lat[i]), text(p.lon[i]), _n(_speed(r["speed_kmh"])), _n(r["heading"]),
            _n(r["altitude_m"]), _n(r["mileage_km"]), _n(r["fix_valid"]).lower(),
            _n(r["blind"]).lower(), _s(r["road_class"]), _n(r["alarm_flags"]),
            _n(r["status_flags"]), _s(";".join(r["quality"] or [])), _s(r["province"]),
            _s(r["city_code"]), _s(r["city_name"]), _s(r["carrier"]), _s(r["alarm_extra"]),
            _s(r["raw_items"]), _n(r["partition"]), _n(r["offset"]),
            iso(r["received_at"]) or ""])
    return _csv(TRACK_CSV_COLUMNS, rows)


def alerts_csv(alerts: pa.Table | None) -> bytes:
    """One row per alert record (raised and cleared), times in China time."""
    rows = []
    for a in _alerts(alerts):
        rows.append([
            iso(a["ts"]), _s(a["alert_id"]), _s(a["incident_id"]), _s(a["type"]),
            _s(a["severity"]), _s(a["state"]), _s(a["vehicle_id"]), text(a["lat"]),
            text(a["lon"]), _s(a["province"]), _s(a["city_code"]), _s(a["city_name"]),
            _s(a["permit_id"]), _s(a["un_number"]), _s(a["hazard_class"]), _s(a["carrier"]),
            _s(a["details"]), iso(a["emitted_at"]) or "", _n(a["partition"]),
            _n(a["offset"]), iso(a["received_at"]) or ""])
    return _csv(ALERTS_CSV_COLUMNS, rows)


FORMATS: dict[str, Callable[..., bytes]] = {
    "geojson": geojson, "kml": kml, "gpx": gpx, "csv": track_csv}
"""Format name -> writer(track, alerts=None, *, vehicle_id=None) -> bytes. The CSV has
no place for alerts (the evidence export writes them to their own CSV)."""


def render(fmt: str, track: pa.Table, alerts: pa.Table | None = None, *,
           vehicle_id: str | None = None) -> bytes:
    try:
        write = FORMATS[fmt]
    except KeyError:
        raise ValueError(f"format {fmt!r}: one of {', '.join(FORMATS)}") from None
    return write(track, alerts, vehicle_id=vehicle_id)
