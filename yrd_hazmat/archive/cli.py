"""``yrd-hazmat archive``: the archiver and its upkeep, and what the archive holds."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import click

from ..config import get_settings


@click.group()
def archive() -> None:
    """The record: every accepted ping, alert and incident record as Parquet files by day
    (YRD_ARCHIVE_DIR, or YRD_ARCHIVE_S3_URL)."""


@archive.command("run")
def archive_run() -> None:
    """Write the archive from Kafka until SIGTERM (then a last flush); compaction and
    retention every hour."""
    import logging

    from .process import run_until_signalled

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    asyncio.run(run_until_signalled(get_settings()))


@archive.command("upkeep")
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="count retention and compaction from this day (default: today)")
def archive_upkeep(today: datetime | None) -> None:
    """Delete the days past their retention and compact past days' small files, once."""
    from ..core.timeutil import CHINA_TZ
    from . import upkeep
    from .store import Store

    settings = get_settings()
    day = today.date() if today else datetime.now(CHINA_TZ).date()
    click.echo(json.dumps(upkeep.run(Store.of(settings), settings, day)))


@archive.command("ls")
@click.option("--kind", type=click.Choice(["pings", "alerts", "incidents"]), default=None)
def archive_ls(kind: str | None) -> None:
    """Days held per kind: files and bytes (the live files a reader takes)."""
    from . import layout, upkeep
    from .store import Store

    store = Store.of(get_settings(), writing=False)
    click.echo(f"archive at {store!r}")
    for k in ([kind] if kind else list(layout.KINDS)):
        for day in upkeep.days(store, k):
            files = layout.live(upkeep.files_of(store, k, day))
            click.echo(f"{k:9} {day.isoformat()}  {len(files):5d} files "
                       f"{sum(f.size for f in files):>14,d} bytes")
