"""``yrd-hazmat assess``: the month's assessment from the archive, as CSV, HTML and PDF."""

from __future__ import annotations

import re
import time

import click

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def _month(ctx, param, value: str) -> str:
    if not MONTH.match(value or ""):
        raise click.BadParameter(f"{value!r} is not a month: YYYY-MM, e.g. 2026-11")
    return value


@click.command()
@click.option("--month", required=True, callback=_month, help="the month, YYYY-MM (China time)")
@click.option("--output", type=click.Path(file_okay=False), default=None,
              help="the directory written (default ./assessment-YYYY-MM)")
@click.option("--province", "provinces", multiple=True,
              type=click.Choice(["SH", "JS", "ZJ", "AH"], case_sensitive=False),
              metavar="[SH|JS|ZJ|AH]",
              help="only this province's rows, cities, days and violations (repeatable)")
@click.option("--carrier", default=None, help="only this carrier's row and violations")
@click.option("--pdf/--no-pdf", "with_pdf", default=True,
              help="also report.pdf, printed by Chromium headless (default: on)")
def assess(month: str, output: str | None, provinces: tuple[str, ...], carrier: str | None,
           with_pdf: bool) -> None:
    """The monthly assessment (networked, online, qualified, track completeness, drift,
    overspeeds, fatigue, alarm handling) for the region, provinces, cities and carriers:
    figures.csv, daily.csv, violations.csv, report.html and report.pdf in --output."""
    from datetime import datetime, timedelta
    from pathlib import Path

    from ..archive import register_snapshot
    from ..archive.read import Archive
    from ..archive.store import Store
    from ..config import get_settings
    from ..core.timeutil import CHINA_TZ
    from . import report
    from .figures import Bounds, compute, month_bounds

    began = time.monotonic()
    settings = get_settings()
    start, end = month_bounds(month)
    last_day = (end - timedelta(days=1)).date()
    if datetime.now(CHINA_TZ) < end:
        click.echo(f"warning: {month} is not over yet: its figures are partial", err=True)
    store = Store.of(settings)  # it keeps the figures there for the desk
    registered_at, registered = register_snapshot.read(store, last_day)
    if registered_at is None:
        click.echo(f"WARNING: no register snapshot in the archive on or before "
                   f"{last_day.isoformat()} ({store!r}/register/): registered = 0 and the "
                   "networked rate is empty", err=True)
    figures = compute(Archive(store), month, registered, Bounds.of(settings),
                      registered_at=registered_at,
                      platforms=register_snapshot.read_platforms(store, registered_at))
    if carrier is not None and not any(r["level"] == "carrier" and r["key"] == carrier
                                       for r in figures.rows):
        known = sorted(r["key"] for r in figures.rows if r["level"] == "carrier")
        raise click.UsageError(f"no carrier {carrier!r} in {month}'s figures; the carriers: "
                               + (", ".join(known) or "none"))
    from . import stored

    stored.save(store, figures)  # the desk's 月度考核 shows it from there
    out = Path(output or f"assessment-{month}")
    written = report.write_csv(figures, out, provinces=provinces or None, carrier=carrier)
    page = out / "report.html"
    generated = datetime.now(CHINA_TZ).strftime("%Y-%m-%d %H:%M (China time)")
    page.write_text(report.html(figures, provinces=provinces or None, carrier=carrier,
                                generated_at=generated), encoding="utf-8")
    written.append(page)
    if with_pdf:
        if report.pdf(page, out / "report.pdf"):
            written.append(out / "report.pdf")
        elif report.browser() is None:
            click.echo("no Chromium installed (chromium, chromium-browser): report.pdf not "
                       "written; open report.html and print it", err=True)
        else:
            click.echo("Chromium failed: report.pdf not written (see the log)", err=True)

    view = report.select(figures, provinces or None, carrier)
    if carrier is not None:
        head, label = (view.level("carrier") or [None])[0], f"carrier {carrier}"
    else:
        head, label = view.region, "region YRD"
    click.echo(f"assessment {month} ({report._scope(view)})")
    if head:
        click.echo(f"  {label}: registered {head['registered']}, networked "
                   f"{report.pct(head['networked_rate'])}, online "
                   f"{report.pct(head['online_rate'])}, qualified "
                   f"{report.pct(head['qualified_rate'])}, completeness "
                   f"{report.pct(head['completeness'])}, drift {report.pct(head['drift_rate'])}"
                   f", overspeeds/vehicle {report.per_vehicle(head['overspeeds_per_vehicle'])}"
                   f", fatigue/vehicle {report.hmm(head['fatigue_s_per_vehicle'])}, handling "
                   f"{report.pct(head['handling_rate'])}")
    else:
        click.echo(f"  no figures: the archive holds no record of {month}")
    click.echo(f"  {len(view.violations)} violations; register snapshot "
               f"{registered_at.isoformat() if registered_at else 'none'}")
    click.echo(f"  written to {out.resolve()}: " + ", ".join(p.name for p in written))
    click.echo(f"  took {time.monotonic() - began:.1f} s")
