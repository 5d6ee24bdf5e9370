"""Track replay and evidence from the archive: each format read back on its own and point by
point against the pings written (a GCJ-02 one converted), formula-like text kept out of a
spreadsheet, an evidence export intact, tampered, and the same twice, and the commands."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
import zipfile
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from tests.unit.test_archive import DAY, SUZHOU, Record, batch_of, record
from yrd_hazmat import __version__
from yrd_hazmat.archive import evidence, export, writer
from yrd_hazmat.archive.read import Archive
from yrd_hazmat.archive.rows import alerts as alert_rows
from yrd_hazmat.archive.rows import incidents as incident_rows
from yrd_hazmat.archive.store import Store
from yrd_hazmat.cli import main
from yrd_hazmat.config import get_settings
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.geo.gcj02 import gcj02_to_wgs84
from yrd_hazmat.core.models import Alert, AlertState, IncidentLog, Severity
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.register import Register

PLATE = "沪A00001"
EVIL = '=HYPERLINK("http://evil.example/?x","点我")'
GCJ = (121.4801, 31.2402)
KML = {"k": export.KML_NS}
GPX = {"g": export.GPX_NS}
START, END = DAY, DAY + timedelta(hours=2)


def _register() -> Register:
    register = Register()
    register.permit(PLATE.encode(), encode({"carrier": EVIL}))
    return register


def _alert(state: AlertState, at: datetime, **extra) -> Alert:
    return Alert(alert_id=f"inc-1:{state.value}", incident_id="inc-1", type="SPEEDING",
                 severity=Severity.WARNING, state=state, vehicle_id=PLATE, ts=at,
                 emitted_at=at + timedelta(seconds=1), lat=31.25, lon=121.3, province="SH",
                 **extra)


def _kind_batch(kind: str, topic: str, values: list[tuple[object, datetime]], first: int,
                register: Register) -> writer.Batch:
    batch = writer.Batch(kind, topic)
    recs = [Record(PLATE.encode(), encode(v), int(at.timestamp() * 1000), 0, first + i)
            for i, (v, at) in enumerate(values)]
    batch.read(0, recs[0].offset, recs[-1].offset)
    convert = alert_rows if kind == "alerts" else incident_rows
    convert(recs, carriers=register.carrier, out=batch.rows)
    return batch


@pytest.fixture
def archive_dir(tmp_path):
    """Pings of PLATE every 10 minutes from 08:00 (one GCJ-02, one without a fix, an
    altitude, Shanghai then Suzhou), a copy of one fix, another truck, a ping outside the
    period; an alert raised and cleared; an incident in two versions and one outside."""
    root = tmp_path / "archive"
    store = Store.local_dir(str(root))
    register = _register()
    recs = []
    for i in range(10):
        fields = {"altitude_m": 10 + i, "heading": 90}
        where = SUZHOU if i >= 5 else (121.47 + i / 100, 31.23)
        if i == 3:
            where, fields["crs"] = GCJ, "GCJ02"
        recs.append(record(PLATE, DAY + timedelta(minutes=10 * i), i, where=where, **fields))
    recs.append(record(PLATE, DAY + timedelta(minutes=15), 10, fix_valid=False))
    recs.append(record(PLATE, DAY + timedelta(minutes=20), 11))  # a copy of 08:20
    recs.append(record("沪A00002", DAY + timedelta(minutes=20), 12))
    recs.append(record(PLATE, DAY + timedelta(hours=5), 13))  # after the period
    writer.flush(store, batch_of(recs[:7], register))
    writer.flush(store, batch_of(recs[7:], register))
    raised = DAY + timedelta(minutes=30)
    writer.flush(store, _kind_batch("alerts", "yrd.alerts", [
        (_alert(AlertState.RAISED, raised, permit_id="-2+3", un_number="@SUM(A1)"), raised),
        (_alert(AlertState.CLEARED, raised + timedelta(minutes=20)),
         raised + timedelta(minutes=20))], 0, register))
    first = IncidentLog(incident_id="inc-1", vehicle_id=PLATE, province="SH",
                        alert_type="SPEEDING", actions=[], severity=Severity.WARNING,
                        raised_at=raised)
    later = IncidentLog(incident_id="inc-1", vehicle_id=PLATE, province="SH",
                        alert_type="SPEEDING", actions=[], severity=Severity.WARNING,
                        raised_at=raised, cleared_at=raised + timedelta(minutes=20),
                        closed_at=raised + timedelta(minutes=40))
    outside = IncidentLog(incident_id="inc-0", vehicle_id=PLATE, province="SH",
                          alert_type="SPEEDING", actions=[], raised_at=DAY - timedelta(days=2))
    writer.flush(store, _kind_batch("incidents", "yrd.incidents", [
        (first, raised), (outside, raised), (later, raised + timedelta(minutes=40))], 0,
        register))
    return root


def expected_pings(with_no_fix: bool = False) -> list[dict]:
    """What the period holds of PLATE, in time order: (time, recorded lon/lat, crs, fix,
    WGS-84 lon/lat)."""
    out = []
    for i in range(10):
        where, crs = (SUZHOU if i >= 5 else (121.47 + i / 100, 31.23)), "WGS84"
        if i == 3:
            where, crs = GCJ, "GCJ02"
        out.append({"ts": DAY + timedelta(minutes=10 * i), "lon": where[0], "lat": where[1],
                    "crs": crs, "fix": True, "alt": 10 + i})
    if with_no_fix:
        out.insert(2, {"ts": DAY + timedelta(minutes=15), "lon": 121.47, "lat": 31.23,
                       "crs": "WGS84", "fix": False, "alt": None})
    for p in out:
        if p["crs"] == "GCJ02":
            lon, lat = gcj02_to_wgs84(p["lon"], p["lat"])
            p["wgs"] = (round(float(lon), 7), round(float(lat), 7))
        else:
            p["wgs"] = (p["lon"], p["lat"])
    return out


def _tables(root, with_no_fix: bool = False):
    archive = Archive(Store.local_dir(str(root)))
    return (archive.track(PLATE, START, END, with_no_fix=with_no_fix),
            archive.alerts(PLATE, START, END))


def test_the_gcj02_ping_moves_and_the_others_do_not():
    lon, lat = gcj02_to_wgs84(*GCJ)
    assert 0.001 < abs(float(lon) - GCJ[0]) < 0.01 and 0.001 < abs(float(lat) - GCJ[1]) < 0.01


def test_geojson_point_by_point(archive_dir):
    track, alerts = _tables(archive_dir, with_no_fix=True)
    doc = json.loads(export.geojson(track, alerts, vehicle_id=PLATE))
    assert doc["type"] == "FeatureCollection"
    line, *rest = doc["features"]
    pings = [f for f in rest if f["properties"]["kind"] == "ping"]
    marks = [f for f in rest if f["properties"]["kind"] == "alert"]
    want = expected_pings(with_no_fix=True)
    fixes = [p for p in want if p["fix"]]
    assert line["geometry"]["type"] == "LineString"
    assert line["geometry"]["coordinates"] == [list(p["wgs"]) for p in fixes]
    props = line["properties"]
    assert (props["vehicle_id"], props["points"]) == (PLATE, len(fixes))
    assert props["from"] == "2026-11-10T08:00:00+08:00"
    assert props["to"] == "2026-11-10T09:30:00+08:00"
    assert 40 < props["distance_km"] < 120  # Shanghai to Suzhou and about
    assert len(pings) == len(want)
    for f, p in zip(pings, want):
        assert f["properties"]["ts"] == p["ts"].isoformat()
        assert f["properties"]["ts"].endswith("+08:00")
        if p["fix"]:
            assert f["geometry"] == {"type": "Point", "coordinates": list(p["wgs"])}
        else:
            assert f["geometry"] is None and f["properties"]["fix_valid"] is False
        assert f["properties"]["speed_kmh"] == 50.0
    assert pings[4]["properties"]["recorded_crs"] == "GCJ02"  # 08:30, after the no-fix one
    assert pings[4]["geometry"]["coordinates"] != list(GCJ)
    assert pings[0]["properties"]["province"] == "SH"
    assert pings[-1]["properties"]["city_name"] == "苏州市"
    assert [(m["properties"]["state"], m["properties"]["ts"]) for m in marks] == [
        ("raised", "2026-11-10T08:30:00+08:00"), ("cleared", "2026-11-10T08:50:00+08:00")]
    assert marks[0]["geometry"]["coordinates"] == [121.3, 31.25]
    assert marks[0]["properties"]["alert_id"] == "inc-1:raised"


def test_kml_point_by_point(archive_dir):
    track, alerts = _tables(archive_dir, with_no_fix=True)
    root = ET.fromstring(export.kml(track, alerts, vehicle_id=PLATE))
    assert root.tag == f"{{{export.KML_NS}}}kml"
    doc = root.find("k:Document", KML)
    want = [p for p in expected_pings() if p["fix"]]  # no fix: no position, not in KML
    coords = doc.find("k:Placemark/k:LineString/k:coordinates", KML).text.split()
    assert [tuple(map(float, c.split(","))) for c in coords] == [p["wgs"] for p in want]
    folders = {f.find("k:name", KML).text: f for f in doc.findall("k:Folder", KML)}
    pings = folders["pings"].findall("k:Placemark", KML)
    assert len(pings) == len(want)
    for pm, p in zip(pings, want):
        assert pm.find("k:TimeStamp/k:when", KML).text == p["ts"].isoformat()
        lon, lat = map(float, pm.find("k:Point/k:coordinates", KML).text.split(","))
        assert (lon, lat) == p["wgs"]
    alerts_ = folders["alerts"].findall("k:Placemark", KML)
    assert [a.find("k:name", KML).text for a in alerts_] == ["SPEEDING raised",
                                                             "SPEEDING cleared"]


def test_kml_escapes_text():
    track, _ = _tables_from_rows([{"city_name": "<b>&\"'</b>"}])
    out = export.kml(track, vehicle_id=PLATE)
    assert b"<b>" not in out
    data = ET.fromstring(out).findall(".//k:Data[@name='city_name']/k:value", KML)
    assert [d.text for d in data] == ["<b>&\"'</b>"]


def test_gpx_point_by_point(archive_dir):
    track, alerts = _tables(archive_dir, with_no_fix=True)
    root = ET.fromstring(export.gpx(track, alerts, vehicle_id=PLATE))
    assert root.tag == f"{{{export.GPX_NS}}}gpx" and root.get("version") == "1.1"
    want = [p for p in expected_pings() if p["fix"]]
    points = root.findall("g:trk/g:trkseg/g:trkpt", GPX)
    assert len(root.findall("g:trk", GPX)) == 1 and len(points) == len(want)
    for pt, p in zip(points, want):
        assert (float(pt.get("lon")), float(pt.get("lat"))) == p["wgs"]
        when = pt.find("g:time", GPX).text
        assert when.endswith("Z")
        assert datetime.fromisoformat(when.replace("Z", "+00:00")) == p["ts"]
        assert when == p["ts"].astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert int(pt.find("g:ele", GPX).text) == p["alt"]
    wpts = root.findall("g:wpt", GPX)
    assert [w.find("g:name", GPX).text for w in wpts] == ["SPEEDING raised", "SPEEDING cleared"]
    assert wpts[0].find("g:time", GPX).text == "2026-11-10T00:30:00Z"
    # the schema's order: metadata, wpt, then trk
    tags = [child.tag.split("}")[1] for child in root]
    assert tags == ["metadata", "wpt", "wpt", "trk"]


def test_csv_point_by_point_and_no_formula(archive_dir):
    track, _ = _tables(archive_dir, with_no_fix=True)
    raw = export.track_csv(track)
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads the Chinese
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    want = expected_pings(with_no_fix=True)
    assert len(rows) == len(want)
    for row, p in zip(rows, want):
        assert row["time"] == p["ts"].isoformat()
        assert (float(row["lon"]), float(row["lat"])) == (p["lon"], p["lat"])  # as recorded
        assert row["crs"] == p["crs"]
        assert (float(row["lon_wgs84"]), float(row["lat_wgs84"])) == p["wgs"]
        assert row["fix_valid"] == ("true" if p["fix"] else "false")
        assert row["vehicle_id"] == PLATE
        assert row["carrier"] == "'" + EVIL  # no formula
    assert rows[0]["city_name"] == "上海市"
    assert [r["offset"] for r in rows][:3] == ["0", "1", "10"]


def test_alerts_csv_escapes_formula_like_text(archive_dir):
    _, alerts = _tables(archive_dir)
    rows = list(csv.DictReader(io.StringIO(export.alerts_csv(alerts).decode("utf-8-sig"))))
    assert [r["state"] for r in rows] == ["raised", "cleared"]
    assert rows[0]["permit_id"] == "'-2+3" and rows[0]["un_number"] == "'@SUM(A1)"
    assert rows[0]["carrier"] == "'" + EVIL
    assert rows[0]["time"] == "2026-11-10T08:30:00+08:00"
    assert json.loads(rows[0]["details"]) == {}


def test_a_period_without_pings_is_an_empty_export(archive_dir):
    archive = Archive(Store.local_dir(str(archive_dir)))
    track = archive.track("沪Z99999", START, END)
    doc = json.loads(export.geojson(track, vehicle_id="沪Z99999"))
    assert doc["features"][0]["geometry"] is None
    assert doc["features"][0]["properties"]["points"] == 0
    assert len(doc["features"]) == 1
    assert ET.fromstring(export.gpx(track)).findall("g:trk/g:trkseg/g:trkpt", GPX) == []
    assert ET.fromstring(export.kml(track)).find("k:Document", KML) is not None
    assert export.track_csv(track).decode("utf-8-sig").count("\n") == 1
    with pytest.raises(ValueError):
        export.render("shp", track)


def _tables_from_rows(overrides: list[dict]):
    """A one-ping track table, its fields overridden (for text no record would carry)."""
    import pyarrow as pa

    from yrd_hazmat.archive.rows import PINGS

    base = {"vehicle_id": PLATE, "ts": DAY, "lat": 31.23, "lon": 121.47, "speed_kmh": 1.0,
            "heading": 0, "crs": "WGS84", "alarm_flags": 0, "status_flags": 0,
            "fix_valid": True, "blind": False, "quality": [], "partition": 0, "offset": 0}
    return pa.Table.from_pylist([{**base, **o} for o in overrides], schema=PINGS), None


# --- evidence -----------------------------------------------------------------------------
def _export(root, out, at=None):
    archive = Archive(Store.local_dir(str(root)))
    return evidence.export_evidence(archive, PLATE, START, END, out,
                                    location={"kind": "local", "path": str(root)},
                                    generated_at=at)


def test_evidence_to_a_directory_is_intact_and_traceable(archive_dir, tmp_path):
    out = tmp_path / "case-1"
    manifest = _export(archive_dir, out)
    assert sorted(p.name for p in out.iterdir()) == sorted([*evidence.FILES, "manifest.json"])
    assert evidence.verify(out) == []
    on_disk = json.loads((out / "manifest.json").read_bytes())
    assert on_disk == manifest
    assert on_disk["vehicle_id"] == PLATE and on_disk["generated_by"]["version"] == __version__
    assert on_disk["period"] == {"from": "2026-11-10T08:00:00+08:00",
                                 "to": "2026-11-10T10:00:00+08:00"}
    rows = {f["name"]: f["rows"] for f in on_disk["files"]}
    assert rows == {"track.csv": 11, "track.geojson": 11, "alerts.csv": 2,
                    "incidents.json": 1}
    assert on_disk["records"]["pings"] == {
        "topic": "yrd.pings", "rows": 11, "fixes": 10,
        "partitions": [{"partition": 0, "first_offset": 0, "last_offset": 10, "rows": 11}]}
    assert on_disk["records"]["incidents"]["partitions"] == [
        {"partition": 0, "first_offset": 2, "last_offset": 2, "rows": 1}]
    (incident,) = json.loads((out / "incidents.json").read_bytes())
    assert incident["incident_id"] == "inc-1" and incident["closed_at"] is not None
    assert evidence.content_sha256(on_disk) == on_disk["content_sha256"]
    for entry in on_disk["files"]:
        assert entry["bytes"] == (out / entry["name"]).stat().st_size


def test_one_byte_changed_is_found_in_that_file_only(archive_dir, tmp_path):
    out = tmp_path / "case-1"
    _export(archive_dir, out)
    data = bytearray((out / "track.csv").read_bytes())
    data[200] ^= 0x01
    (out / "track.csv").write_bytes(bytes(data))
    problems = evidence.verify(out)
    assert len(problems) == 1 and problems[0].startswith("track.csv: ")


def test_the_manifest_changed_or_a_file_added_or_gone_is_found(archive_dir, tmp_path):
    out = tmp_path / "case-1"
    _export(archive_dir, out)
    manifest = json.loads((out / "manifest.json").read_bytes())
    manifest["vehicle_id"] = "沪A99999"
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (out / "extra.txt").write_text("x")
    (out / "alerts.csv").unlink()
    problems = evidence.verify(out)
    assert [p.split(":")[0] for p in problems] == ["manifest.json", "alerts.csv", "extra.txt"]
    assert evidence.verify(tmp_path / "nothing") != []


def test_evidence_to_a_zip(archive_dir, tmp_path):
    out = tmp_path / "case-1.zip"
    _export(archive_dir, out)
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == sorted([*evidence.FILES, "manifest.json"])
        members = {name: zf.read(name) for name in zf.namelist()}
    assert evidence.verify(out) == []
    members["track.csv"] = members["track.csv"][:-3] + b"X" + members["track.csv"][-2:]
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as zf:  # rewritten whole: the CRCs agree
        for name, data in members.items():
            zf.writestr(name, data)
    problems = evidence.verify(tampered)
    assert len(problems) == 1 and problems[0].startswith("track.csv: ")
    raw = bytearray(out.read_bytes())  # one byte of the zip itself, inside track.csv's data
    with zipfile.ZipFile(out) as zf:
        info = zf.getinfo("track.csv")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + info.compress_size // 2] ^= 0x01
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(bytes(raw))
    problems = evidence.verify(flipped)
    assert len(problems) == 1 and problems[0].startswith("track.csv: ")
    with pytest.raises(FileExistsError):
        _export(archive_dir, out)  # never overwrites


def test_the_same_archive_and_period_give_the_same_files(archive_dir, tmp_path):
    one = _export(archive_dir, tmp_path / "a", datetime(2026, 12, 7, 9, 0, tzinfo=CHINA_TZ))
    two = _export(archive_dir, tmp_path / "b", datetime(2026, 12, 7, 10, 0, tzinfo=CHINA_TZ))
    for name in evidence.FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert one["content_sha256"] == two["content_sha256"]
    assert {k: v for k, v in one.items() if k != "generated_at"} == \
        {k: v for k, v in two.items() if k != "generated_at"}
    a = (tmp_path / "a" / "manifest.json").read_text(encoding="utf-8").splitlines()
    b = (tmp_path / "b" / "manifest.json").read_text(encoding="utf-8").splitlines()
    assert [i for i, (x, y) in enumerate(zip(a, b)) if x != y] == \
        [next(i for i, line in enumerate(a) if '"generated_at"' in line)]


def test_the_location_keeps_no_secret():
    class S:
        archive_s3_url = "s3://bucket//yrd/"
        archive_s3_endpoint = "https://key:secret@minio.example:9000/?token=x"
        archive_dir = "unused"

    assert evidence.location_of(S) == {"kind": "s3", "url": "s3://bucket/yrd",
                                       "endpoint": "https://minio.example:9000"}


# --- the commands -------------------------------------------------------------------------
@pytest.fixture
def cli(archive_dir):
    get_settings.cache_clear()
    runner = CliRunner(env={"YRD_ARCHIVE_DIR": str(archive_dir), "YRD_ARCHIVE_S3_URL": ""})

    def invoke(*args):
        get_settings.cache_clear()  # the settings of this runner's environment
        return runner.invoke(main, list(args), catch_exceptions=False)

    yield invoke
    get_settings.cache_clear()


def test_track_command_to_stdout_and_to_a_file(cli, tmp_path):
    result = cli("track", PLATE, "--from", "2026-11-10T08:00", "--to", "2026-11-10T10:00",
                 "--format", "geojson")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout_bytes)
    assert doc["features"][0]["properties"]["points"] == 10
    assert "10 pings" in result.stderr and "2 alerts" in result.stderr
    out = tmp_path / "t.gpx"
    result = cli("track", PLATE, "--from", "2026-11-10", "--to", "2026-11-10", "--output",
                 str(out), "--no-alerts", "--with-no-fix")  # the format from the suffix
    assert result.exit_code == 0, result.output
    root = ET.fromstring(out.read_bytes())
    assert len(root.findall("g:trk/g:trkseg/g:trkpt", GPX)) == 11  # the whole day: 13:00 too
    assert root.findall("g:wpt", GPX) == []
    result = cli("track", PLATE, "--from", "2026-11-10T08:00+08:00", "--to",
                 "2026-11-10T00:25:00Z", "--format", "csv")  # 08:00 to 08:25 China time
    rows = list(csv.DictReader(io.StringIO(result.stdout_bytes.decode("utf-8-sig"))))
    assert [r["time"] for r in rows] == ["2026-11-10T08:00:00+08:00",
                                         "2026-11-10T08:10:00+08:00",
                                         "2026-11-10T08:20:00+08:00"]


def test_track_command_refuses_what_it_cannot_do(cli):
    base = ("track", PLATE)
    result = cli(*base, "--from", "2026-11-10T10:00", "--to", "2026-11-10T08:00")
    assert result.exit_code == 2 and "after" in result.output
    result = cli(*base, "--from", "2026-10-01", "--to", "2026-11-10")
    assert result.exit_code == 2 and "at most 31 days" in result.output
    result = cli(*base, "--from", "2026-11-10", "--to", "2026-11-10", "--format", "shp")
    assert result.exit_code == 2 and "shp" in result.output
    result = cli(*base, "--from", "yesterday", "--to", "2026-11-10")
    assert result.exit_code == 2 and "2026-11-10T08:00" in result.output
    result = cli("track", "沪A 0=1", "--from", "2026-11-10", "--to", "2026-11-10")
    assert result.exit_code == 2 and "plate" in result.output


def test_evidence_commands(cli, tmp_path):
    out = tmp_path / "case.zip"
    result = cli("evidence", PLATE, "--from", "2026-11-10T08:00", "--to", "2026-11-10T10:00",
                 "--output", str(out))
    assert result.exit_code == 0, result.output
    assert "content_sha256" in result.output
    assert json.loads(zipfile.ZipFile(out).read("manifest.json"))["archive"]["kind"] == "local"
    result = cli("evidence-verify", str(out))
    assert result.exit_code == 0 and result.output.startswith("intact")
    result = cli("evidence", PLATE, "--from", "2026-11-10", "--to", "2026-11-10", "--output",
                 str(out))
    assert result.exit_code == 2 and "exists" in result.output
    folder = tmp_path / "case"
    assert cli("evidence", PLATE, "--from", "2026-11-10", "--to", "2026-11-10", "--output",
               str(folder)).exit_code == 0
    (folder / "alerts.csv").write_bytes(b"\xef\xbb\xbfnothing here\r\n")
    result = cli("evidence-verify", str(folder))
    assert result.exit_code == 1 and result.output.startswith("alerts.csv: ")
