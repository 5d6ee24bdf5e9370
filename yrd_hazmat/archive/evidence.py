"""An evidence export: what the archive holds about one truck over one period, as files a
police officer can hand on and anyone can check later, in a directory or a ``.zip``:

- ``track.csv``: every accepted ping (those without a fix included), every column, the
  position as recorded and in WGS-84 (:func:`.export.track_csv`);
- ``track.geojson``: the track, its pings and its alerts on a map (:func:`.export.geojson`);
- ``alerts.csv``: the alert records of the period, raised and cleared;
- ``incidents.json``: the latest record of each incident raised in the period, as the
  platform wrote it;
- ``manifest.json``: who, what and when (vehicle, period, generated_at, the archive's
  location without any secret, the tool's version); per file its SHA-256, size and rows;
  per kind of record the Kafka topic and, per partition, the offset range and count of
  the rows used (so each row can be traced to its record); and ``content_sha256``, the
  SHA-256 of the manifest's canonical JSON without ``generated_at`` and itself.

Deterministic: the same archive and period give the same bytes in every file, and the
same manifest except ``generated_at`` (so the same ``content_sha256``). :func:`verify`
recomputes everything and lists what does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa

from .. import __version__
from ..core.timeutil import CHINA_TZ
from . import export
from .read import Archive

FORMAT = "yrd-hazmat-evidence/1"
MANIFEST = "manifest.json"
FILES = ("alerts.csv", "incidents.json", "track.csv", "track.geojson")
DEFAULT_TOPICS = {"pings": "yrd.pings", "alerts": "yrd.alerts", "incidents": "yrd.incidents"}


def location_of(settings) -> dict:
    """Where the archive is, without credentials: a local directory or a bucket (and the
    object store's endpoint, its user and query left out)."""
    if settings.archive_s3_url:
        parts = urlsplit(settings.archive_s3_url)
        path = "/".join([parts.hostname or "", *(p for p in parts.path.split("/") if p)])
        out = {"kind": "s3", "url": f"s3://{path}"}
        if settings.archive_s3_endpoint:
            ep = urlsplit(settings.archive_s3_endpoint)
            host = ep.hostname or ""
            out["endpoint"] = f"{ep.scheme}://{host}" + (f":{ep.port}" if ep.port else "")
        return out
    return {"kind": "local", "path": os.path.abspath(settings.archive_dir)}


def canonical(value) -> bytes:
    """JSON with sorted keys, no spaces, UTF-8: one text per value."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).encode("utf-8")


def content_sha256(manifest: dict) -> str:
    """The SHA-256 of the manifest's canonical JSON, ``generated_at`` and
    ``content_sha256`` left out."""
    body = {k: v for k, v in manifest.items() if k not in ("generated_at", "content_sha256")}
    return hashlib.sha256(canonical(body)).hexdigest()


def _sources(table: pa.Table | None, topic: str) -> dict:
    """The Kafka topic, and per partition the offset range and count of the rows."""
    parts: dict[int, list[int]] = {}
    if table is not None and table.num_rows:
        for p, o in zip(table["partition"].to_pylist(), table["offset"].to_pylist()):
            parts.setdefault(p, []).append(o)
    return {"topic": topic, "rows": sum(len(v) for v in parts.values()),
            "partitions": [{"partition": p, "first_offset": min(v), "last_offset": max(v),
                            "rows": len(v)} for p, v in sorted(parts.items())]}


def incidents_json(incidents: pa.Table | None) -> bytes:
    """The records as a JSON array, each as the platform wrote it (its keys in its order),
    in the order the archive gives them (by raising time)."""
    records = [json.loads(r) for r in incidents["record"].to_pylist()] \
        if incidents is not None else []
    return (json.dumps(records, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def build(archive: Archive, vehicle_id: str, start: datetime, end: datetime, *,
          location: dict, topics: dict[str, str] | None = None,
          generated_at: datetime | None = None) -> tuple[dict[str, bytes], dict]:
    """The files of the export (name -> bytes) and its manifest (without writing)."""
    topics = {**DEFAULT_TOPICS, **(topics or {})}
    track = archive.track(vehicle_id, start, end, with_no_fix=True)
    alerts = archive.alerts(vehicle_id, start, end)
    incidents = archive.incidents(vehicle_id, start, end)
    files = {
        "track.csv": export.track_csv(track),
        "track.geojson": export.geojson(track, alerts, vehicle_id=vehicle_id),
        "alerts.csv": export.alerts_csv(alerts),
        "incidents.json": incidents_json(incidents),
    }
    fixes = sum(1 for v in track["fix_valid"].to_pylist() if v)
    rows = {"track.csv": track.num_rows, "track.geojson": track.num_rows,
            "alerts.csv": alerts.num_rows, "incidents.json": incidents.num_rows}
    kinds = {"track.csv": "pings", "track.geojson": "pings", "alerts.csv": "alerts",
             "incidents.json": "incidents"}
    manifest = {
        "format": FORMAT,
        "vehicle_id": vehicle_id,
        "period": {"from": export.iso(start), "to": export.iso(end)},
        "generated_at": export.iso((generated_at or datetime.now(CHINA_TZ)).replace(
            microsecond=0)),
        "generated_by": {"tool": "yrd-hazmat", "version": __version__},
        "archive": location,
        "times": "China time (UTC+08:00) unless marked otherwise",
        "positions": "track.csv: as recorded (crs column) and WGS-84 (lat_wgs84, "
                     "lon_wgs84); track.geojson: WGS-84",
        "files": [{"name": name, "sha256": hashlib.sha256(files[name]).hexdigest(),
                   "bytes": len(files[name]), "rows": rows[name], "records": kinds[name]}
                  for name in sorted(files)],
        "records": {
            "pings": {**_sources(track, topics["pings"]), "fixes": fixes},
            "alerts": _sources(alerts, topics["alerts"]),
            "incidents": _sources(incidents, topics["incidents"]),
        },
    }
    manifest["content_sha256"] = content_sha256(manifest)
    return files, manifest


def manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def write(files: dict[str, bytes], manifest: dict, output: str | os.PathLike) -> Path:
    """The export at ``output``: a ``.zip`` (which must not exist), else a directory
    (new, or empty). Written aside and renamed into place: whole or not at all."""
    out = Path(output)
    body = {**files, MANIFEST: manifest_bytes(manifest)}
    if out.exists() and (out.suffix.lower() == ".zip" or not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out}: exists (an evidence export never overwrites)")
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if out.suffix.lower() == ".zip":
            target = temp / out.name
            stamp = datetime.fromisoformat(manifest["generated_at"]).astimezone(
                CHINA_TZ).timetuple()[:6]
            with zipfile.ZipFile(target, "w") as zf:
                for name in sorted(files) + [MANIFEST]:
                    info = zipfile.ZipInfo(name, date_time=stamp)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = 0o644 << 16
                    zf.writestr(info, body[name], compresslevel=6)
            _sync(target)
            os.replace(target, out)
        else:
            for name, data in body.items():
                (temp / name).write_bytes(data)
                _sync(temp / name)
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(temp, 0o777 & ~mask)  # as mkdir would (mkdtemp: owner only)
            if out.exists():
                out.rmdir()  # empty, checked above
            os.replace(temp, out)
            temp = None
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    return out


def _sync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def export_evidence(archive: Archive, vehicle_id: str, start: datetime, end: datetime,
                    output: str | os.PathLike, *, location: dict,
                    topics: dict[str, str] | None = None,
                    generated_at: datetime | None = None) -> dict:
    """Build and write the export (see the module); its manifest."""
    files, manifest = build(archive, vehicle_id, start, end, location=location,
                            topics=topics, generated_at=generated_at)
    write(files, manifest, output)
    return manifest


# --- verifying ----------------------------------------------------------------------------
def _read_all(path: Path) -> tuple[dict[str, bytes], list[str]]:
    """The files of an export (name -> bytes) and what could not be read."""
    found: dict[str, bytes] = {}
    problems: list[str] = []
    if path.is_dir():
        for f in sorted(path.iterdir()):
            if f.is_file():
                found[f.name] = f.read_bytes()
            else:
                problems.append(f"{f.name}: not a file, not in an export")
        return found, problems
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    problems.append(f"{info.filename}: a directory, not in an export")
                    continue
                try:
                    found[info.filename] = zf.read(info)
                except (zipfile.BadZipFile, OSError, ValueError) as exc:
                    problems.append(f"{info.filename}: unreadable in the zip ({exc})")
                    found[info.filename] = b""  # counted as present, not as intact
    except (zipfile.BadZipFile, OSError) as exc:
        problems.append(f"{path.name}: not a readable zip ({exc})")
    return found, problems


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest of an export (directory or .zip); KeyError, ValueError."""
    path = Path(path)
    if path.is_dir():
        return json.loads((path / MANIFEST).read_bytes())
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read(MANIFEST))


def verify(path: str | os.PathLike) -> list[str]:
    """Recompute an export's hashes, sizes and the manifest's own hash; the problems found
    (empty: intact). One line per file at most, naming it."""
    path = Path(path)
    if not path.exists():
        return [f"{path}: does not exist"]
    found, problems = _read_all(path)
    bad = {p.split(":", 1)[0] for p in problems}
    raw = found.pop(MANIFEST, None)
    if raw is None:
        return problems if MANIFEST in bad else problems + [f"{MANIFEST}: missing"]
    try:
        manifest = json.loads(raw)
        entries = {e["name"]: e for e in manifest["files"]}
        stated = manifest["content_sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        return problems + [f"{MANIFEST}: not a manifest of an evidence export ({exc!r})"]
    if content_sha256(manifest) != stated:
        problems.append(f"{MANIFEST}: its content does not match its content_sha256 "
                        f"{stated} (recomputed {content_sha256(manifest)})")
    for name in sorted(set(entries) | set(found)):
        if name in bad:
            continue
        entry, data = entries.get(name), found.get(name)
        if entry is None:
            problems.append(f"{name}: not in the manifest")
        elif data is None:
            problems.append(f"{name}: missing")
        else:
            digest = hashlib.sha256(data).hexdigest()
            if len(data) != entry.get("bytes") or digest != entry.get("sha256"):
                problems.append(f"{name}: {len(data)} bytes, SHA-256 {digest}; the manifest "
                                f"says {entry.get('bytes')} bytes, {entry.get('sha256')}")
    return problems
