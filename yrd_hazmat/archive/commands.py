"""``yrd-hazmat track|evidence|evidence-verify``: a truck's track for a map, and an
evidence export for a case file, read back from the archive months later.

Times: ``2026-11-10T08:00`` (China time when it has no offset; ``+08:00`` or ``Z`` are
read too) or a date (``--from`` its start, ``--to`` its end: ``--from 2026-11-10 --to
2026-11-10`` is the whole day). A usage error (a bad time, from after to, a track over
31 days, an unknown format, an export that would overwrite) exits with 2.
"""

from __future__ import annotations

import os
import sys
from datetime import date, datetime, time, timedelta

import click

from ..config import get_settings

TRACK_MAX_DAYS = 31
FORMATS = ("geojson", "kml", "gpx", "csv")
SUFFIXES = {".geojson": "geojson", ".json": "geojson", ".kml": "kml", ".gpx": "gpx",
            ".csv": "csv"}


def parse_time(value: str, *, end: bool) -> datetime:
    """A time of the command line (see the module) as an aware datetime; ValueError."""
    from ..core.timeutil import CHINA_TZ

    text = value.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        if end:
            return datetime.combine(day, time(23, 59, 59, 999000), CHINA_TZ)
        return datetime.combine(day, time(0), CHINA_TZ)
    ts = datetime.fromisoformat(text)
    return ts.replace(tzinfo=CHINA_TZ) if ts.tzinfo is None else ts


def _time_option(name: str, *, end: bool):
    def convert(ctx, param, value):
        if value is None:
            return None
        try:
            return parse_time(value, end=end)
        except ValueError:
            raise click.BadParameter(
                f"{value!r}: a time like 2026-11-10T08:00 (China time unless it has an "
                f"offset) or a date like 2026-11-10") from None

    return click.option(name, "start" if not end else "end", required=True, metavar="TIME",
                        callback=convert,
                        help=("from this time (a date: its start)" if not end else
                              "to this time, included (a date: its end)"))


def _plate(value: str) -> str:
    import msgspec

    from ..core.models import VehicleId

    plate = value.strip()
    try:
        return msgspec.convert(plate, VehicleId)
    except msgspec.ValidationError:
        raise click.BadParameter(f"{value!r}: not a plate (e.g. 沪A12345)",
                                 param_hint="PLATE") from None


def _period(start: datetime, end: datetime, max_days: int | None = None) -> None:
    from .export import iso

    if start > end:
        raise click.UsageError(f"--from {iso(start)} is after --to {iso(end)}")
    if max_days is not None and end - start > timedelta(days=max_days):
        days = (end - start) / timedelta(days=1)
        raise click.UsageError(
            f"the period is {days:.1f} days: a track covers at most {max_days} days "
            f"(export it in parts, or use 'yrd-hazmat evidence')")


def _archive():
    """The archive the settings name; a missing local directory is an error (reading
    never creates one)."""
    from .read import Archive
    from .store import Store

    settings = get_settings()
    if not settings.archive_s3_url and not os.path.isdir(settings.archive_dir):
        raise click.ClickException(f"no archive at {os.path.abspath(settings.archive_dir)} "
                                   "(YRD_ARCHIVE_DIR, or YRD_ARCHIVE_S3_URL)")
    return settings, Archive(Store.of(settings, writing=False))


def _write_file(path: str, data: bytes) -> None:
    """``data`` at ``path``, whole or not at all."""
    parent = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(parent, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


@click.command("track")
@click.argument("plate")
@_time_option("--from", end=False)
@_time_option("--to", end=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="default: from --output's suffix, else geojson")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="the file to write (default: stdout)")
@click.option("--with-no-fix", is_flag=True,
              help="also the pings without a satellite fix (proof of life, no position)")
@click.option("--alerts/--no-alerts", "with_alerts", default=True,
              help="the truck's alerts of the period as points (not in csv)")
def track(plate: str, start: datetime, end: datetime, fmt: str | None, output: str | None,
          with_no_fix: bool, with_alerts: bool) -> None:
    """A truck's track from the archive as GeoJSON, KML, GPX or CSV (WGS-84 on the maps'
    formats; China time, UTC in GPX). At most 31 days."""
    plate = _plate(plate)
    _period(start, end, TRACK_MAX_DAYS)
    if fmt is None:
        fmt = SUFFIXES.get(os.path.splitext(output or "")[1].lower(), "geojson")
    from . import export

    _, archive = _archive()
    table = archive.track(plate, start, end, with_no_fix=with_no_fix)
    alerts = archive.alerts(plate, start, end) if with_alerts and fmt != "csv" else None
    data = export.render(fmt, table, alerts, vehicle_id=plate)
    fixes = sum(1 for v in table["fix_valid"].to_pylist() if v)
    where = output or "stdout"
    if output:
        try:
            _write_file(output, data)
        except OSError as exc:
            raise click.ClickException(f"{output}: {exc.strerror or exc}") from None
    else:
        out = click.get_binary_stream("stdout")
        out.write(data)
        out.flush()
    note = f"{plate} {export.iso(start)} – {export.iso(end)}: {table.num_rows} pings " \
           f"({fixes} with a fix)"
    if alerts is not None:
        note += f", {alerts.num_rows} alerts"
    click.echo(f"{note}, {fmt} → {where}", err=True)
    if table.num_rows == 0:
        click.echo(f"warning: the archive holds no ping of {plate} in this period", err=True)


@click.command("evidence")
@click.argument("plate")
@_time_option("--from", end=False)
@_time_option("--to", end=True)
@click.option("--output", "-o", required=True, type=click.Path(),
              help="a new (or empty) directory, or a file ending in .zip")
def evidence(plate: str, start: datetime, end: datetime, output: str) -> None:
    """An evidence export of a truck over a period: track.csv, track.geojson, alerts.csv,
    incidents.json and manifest.json (hashes, sizes, rows, Kafka offsets)."""
    plate = _plate(plate)
    _period(start, end)
    if os.path.exists(output) and (output.lower().endswith(".zip") or not os.path.isdir(output)
                                   or os.listdir(output)):
        raise click.BadParameter(f"{output}: exists (an evidence export never overwrites)",
                                 param_hint="--output")
    from . import evidence as ev

    settings, archive = _archive()
    topics = {"pings": settings.topic_pings, "alerts": settings.topic_alerts,
              "incidents": settings.topic_incidents}
    try:
        manifest = ev.export_evidence(archive, plate, start, end, output,
                                      location=ev.location_of(settings), topics=topics)
    except FileExistsError as exc:
        raise click.BadParameter(str(exc), param_hint="--output") from None
    except OSError as exc:
        raise click.ClickException(f"{output}: {exc.strerror or exc}") from None
    for entry in manifest["files"]:
        click.echo(f"{entry['name']:15} {entry['rows']:8d} rows {entry['bytes']:12,d} bytes "
                   f"sha256 {entry['sha256']}")
    click.echo(f"content_sha256 {manifest['content_sha256']}")
    click.echo(f"written to {output}; check it with: yrd-hazmat evidence-verify {output}")
    if manifest["records"]["pings"]["rows"] == 0:
        click.echo(f"warning: the archive holds no ping of {plate} in this period", err=True)


@click.command("evidence-verify")
@click.argument("path", type=click.Path(exists=True))
def evidence_verify(path: str) -> None:
    """Check an evidence export (directory or .zip) against its manifest: exit 0 when
    intact, 1 with the problems."""
    from . import evidence as ev

    problems = ev.verify(path)
    if problems:
        for problem in problems:
            click.echo(problem)
        click.echo(f"NOT INTACT: {len(problems)} problem(s)")
        sys.exit(1)
    manifest = ev.read_manifest(path)
    click.echo(f"intact: {manifest['vehicle_id']} {manifest['period']['from']} – "
               f"{manifest['period']['to']}, {len(manifest['files'])} files, generated "
               f"{manifest['generated_at']}, content_sha256 {manifest['content_sha256']}")
