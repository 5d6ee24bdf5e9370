"""Reading the archive back: a truck's track and alerts for any period, and any query over
the kinds with DuckDB.

Only the live files of the days asked are read (a compacted file, not the small ones it
covers: :func:`.layout.live`), through :mod:`pyarrow.dataset` (a local directory or a
bucket alike), with the vehicle and the period pushed down to the files' row-group
statistics. A track is the accepted pings of the period in time order, one per fix time
(a terminal that sent a fix twice, or a platform that re-sent it, counts once: the first
to arrive).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from . import layout
from .rows import SCHEMAS
from .store import Store


def days_between(start: datetime, end: datetime) -> list[date]:
    first, last = layout.day_of(start), layout.day_of(end)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _query(src: pa.Table, sql: str) -> pa.Table:
    """``sql`` over ``src`` (the table ``src``) with DuckDB, as an Arrow table."""
    con = duckdb.connect()
    try:
        con.register("src", src)
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


class Archive:
    def __init__(self, store: Store) -> None:
        self.store = store

    def files(self, kind: str, days: list[date]) -> list[layout.DataFile]:
        found = []
        for day in days:
            for entry in self.store.list(layout.day_dir(kind, day)):
                f = layout.parse(entry.path, entry.size)
                if f is not None:
                    found.append(f)
        return layout.live(found)

    def dataset(self, kind: str, days: list[date]) -> ds.Dataset:
        paths = [self.store.full(f.path) for f in self.files(kind, days)]
        return ds.dataset(paths, schema=SCHEMAS[kind], format="parquet",
                          filesystem=self.store.fs)

    def _between(self, kind: str, start: datetime, end: datetime, vehicle_id: str | None,
                 time_column: str = "ts") -> pa.Table:
        dataset = self.dataset(kind, days_between(start, end))
        where = (ds.field(time_column) >= pa.scalar(start, SCHEMAS[kind].field(
            time_column).type)) & (ds.field(time_column) <= pa.scalar(
                end, SCHEMAS[kind].field(time_column).type))
        if vehicle_id is not None:
            where = where & (ds.field("vehicle_id") == vehicle_id)
        return dataset.to_table(filter=where)

    def track(self, vehicle_id: str, start: datetime, end: datetime, *,
              with_no_fix: bool = False) -> pa.Table:
        """The truck's accepted pings from ``start`` to ``end`` (both included), in time
        order, one per fix time; those without a fix only when asked."""
        src = self._between("pings", start, end, vehicle_id)
        fix = "" if with_no_fix else "WHERE fix_valid"
        return _query(src, 
            f"SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER (PARTITION BY ts "
            f"ORDER BY received_at, partition, \"offset\") AS rn FROM src {fix}) "
            f"WHERE rn = 1 ORDER BY ts")

    def alerts(self, vehicle_id: str | None, start: datetime, end: datetime) -> pa.Table:
        """The alert records (raised and cleared) of the period, in time order."""
        src = self._between("alerts", start, end, vehicle_id)
        return _query(src, "SELECT * FROM src ORDER BY ts, \"offset\"")

    def incidents(self, vehicle_id: str | None, start: datetime, end: datetime) -> pa.Table:
        """The latest record of each incident raised in the period."""
        src = self._between("incidents", start, end, vehicle_id, "raised_at")
        return _query(src, 
            "SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER (PARTITION BY "
            "incident_id ORDER BY received_at DESC, \"offset\" DESC) AS rn FROM src) "
            "WHERE rn = 1 ORDER BY raised_at")

    def connect(self, days: list[date],
                kinds: tuple[str, ...] = layout.KINDS) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with a view per kind (default: every kind) over the live
        files of ``days`` (each kind's day directories are listed: ask only for those the
        queries read)."""
        con = duckdb.connect()
        for kind in kinds:
            con.register(kind, self.dataset(kind, days))
        return con
