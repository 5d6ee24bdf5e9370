"""The archive's core on a local directory: rows of each kind, the flush protocol under a
kill at every step, late pings in their own day, compaction, retention, reading a track
back."""

from __future__ import annotations

from collections import namedtuple
from datetime import date, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from yrd_hazmat.archive import layout, upkeep, writer
from yrd_hazmat.archive.read import Archive
from yrd_hazmat.archive.rows import pings as ping_rows
from yrd_hazmat.archive.store import Store
from yrd_hazmat.config import Settings
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.geo.jurisdiction import default_index
from yrd_hazmat.core.models import Ping
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.register import Register

Record = namedtuple("Record", "key value timestamp partition offset")
DAY = datetime(2026, 11, 10, 8, 0, tzinfo=CHINA_TZ)
SHANGHAI, SUZHOU = (121.47, 31.23), (120.62, 31.30)


def record(plate: str, at: datetime, offset: int, where=SHANGHAI, partition: int = 0,
           arrived: datetime | None = None, **fields) -> Record:
    ping = Ping(vehicle_id=plate, ts=at, lat=where[1], lon=where[0], speed_kmh=50.0, **fields)
    received = arrived or at + timedelta(seconds=2)
    return Record(plate.encode(), encode(ping), int(received.timestamp() * 1000), partition,
                  offset)


def batch_of(records, register: Register | None = None) -> writer.Batch:
    batch = writer.Batch("pings", "yrd.pings")
    by_partition: dict[int, list] = {}
    for r in records:
        by_partition.setdefault(r.partition, []).append(r)
    for partition, recs in by_partition.items():
        batch.read(partition, recs[0].offset, recs[-1].offset)
        ping_rows(recs, index=default_index(), carriers=(register or Register()).carrier,
                  max_bytes=16_384, tolerance_ms=300_000, out=batch.rows)
    return batch


def rows_in(store: Store, kind: str = "pings") -> list[tuple]:
    """(partition, offset) of every row a reader sees, through the store's own filesystem
    (a directory or a bucket: tests/integration/test_archive_s3.py runs tests of this file
    on S3)."""
    files = layout.live([f for e in store.list(kind)
                         if (f := layout.parse(e.path, e.size)) is not None])
    table = store.read_table([f.path for f in files], columns=["partition", "offset"])
    if table is None:
        return []
    return sorted(zip(table["partition"].to_pylist(), table["offset"].to_pylist()))


@pytest.fixture
def store(tmp_path) -> Store:
    return Store.local_dir(str(tmp_path))


def test_rows_carry_the_place_the_carrier_and_the_quality(tmp_path):
    register = Register()
    register.permit(b"\xe6\xb2\xaaA00001", encode({"carrier": "上海危运"}))
    recs = [record("沪A00001", DAY, 0), record("沪A00001", DAY + timedelta(seconds=30), 1,
                                                where=SUZHOU, quality=["bad_speed"]),
            record("沪A00001", DAY + timedelta(seconds=60), 2, fix_valid=False),
            Record(b"\xe6\xb2\xaaA00001", b"{broken", 0, 0, 3),
            record("沪A00001", DAY + timedelta(hours=2), 4, arrived=DAY)]  # 2 h ahead
    store = Store.local_dir(str(tmp_path))
    batch = batch_of(recs, register)
    assert batch.rows.count == 3
    assert writer.flush(store, batch) == {0: 5}
    (f,) = store.list("pings")
    assert f.path == "pings/day=2026-11-10/yrd.pings-p000-" + "0" * 20 + "-" + \
        "4".rjust(20, "0") + ".parquet"
    t = pq.read_table(store.full(f.path)).to_pylist()
    assert [(r["province"], r["city_name"], r["carrier"]) for r in t] == \
        [("SH", "上海市", "上海危运"), ("JS", "苏州市", "上海危运"), (None, None, "上海危运")]
    assert t[1]["quality"] == ["bad_speed"] and t[2]["fix_valid"] is False
    assert t[0]["ts"] == DAY and t[0]["received_at"] == DAY + timedelta(seconds=2)


def test_a_late_ping_lands_in_its_own_day(tmp_path):
    store = Store.local_dir(str(tmp_path))
    late = record("沪A00001", DAY - timedelta(hours=20), 1, arrived=DAY)  # 0x0704, a day late
    writer.flush(store, batch_of([record("沪A00001", DAY, 0), late]))
    assert [e.path.split("/")[1] for e in store.list("pings")] == \
        ["day=2026-11-09", "day=2026-11-10"]


@pytest.mark.parametrize("killed_after", ["pending", "one file", "all files", "state"])
def test_a_flush_killed_at_any_step_is_written_once(store, killed_after, monkeypatch):
    """The records of a flush killed part way are in the archive exactly once after the
    restart reads them again, in batches cut differently."""
    first = [record("沪A00001", DAY + timedelta(seconds=i), i) for i in range(5)]
    writer.flush(store, batch_of(first))
    recs = [record("沪A00002", DAY + timedelta(hours=h), 5 + i)  # over three days
            for i, h in enumerate(range(-24, 24, 6))]
    # the flush's steps: its pending note, three files, its state, the note deleted
    steps = {"pending": 1, "one file": 2, "all files": 1 + 3, "state": 1 + 3 + 1}[killed_after]
    calls = {"n": 0}

    def counting(fn):
        def wrapped(*args):
            if calls["n"] == steps:
                raise KeyboardInterrupt("kill -9")
            calls["n"] += 1
            return fn(*args)
        return wrapped

    for name in ("put", "put_table", "delete"):
        monkeypatch.setattr(store, name, counting(getattr(store, name)))
    with pytest.raises(KeyboardInterrupt):
        writer.flush(store, batch_of(recs))
    monkeypatch.undo()
    resume = writer.recover(store, "pings", 0)
    assert resume == (5 + len(recs) if killed_after == "state" else 5)
    again = [r for r in recs if r.offset >= resume]
    for part in (again[:3], again[3:]):  # read again, cut in other places
        if part:
            writer.flush(store, batch_of(part))
    assert rows_in(store) == [(0, n) for n in range(5 + len(recs))]
    assert store.get(layout.pending_path("pings", 0)) is None


def test_compaction_merges_a_past_days_files_and_readers_never_see_two_copies(tmp_path):
    store = Store.local_dir(str(tmp_path))
    for k in range(10):
        writer.flush(store, batch_of([record(f"沪A{k % 3:05d}", DAY + timedelta(minutes=k),
                                             k)]))
    settings = Settings(archive_compact_files=8)
    assert len(store.list("pings")) == 10
    # killed between writing the compacted file and deleting the small ones
    files = upkeep.files_of(store, "pings", DAY.date())
    table = store.read_table([f.path for f in files])
    store.put_table(layout.data_path("pings", DAY.date(), "yrd.pings", 0, 0, 9, True), table)
    assert rows_in(store) == [(0, n) for n in range(10)]  # the live files only
    result = upkeep.run(store, settings, DAY.date() + timedelta(days=2))
    assert result["pings"]["files_merged"] == 0  # the leftovers deleted, nothing to merge
    (only,) = store.list("pings")
    assert only.path.endswith("-c.parquet") and rows_in(store) == [(0, n) for n in range(10)]


def test_compaction_waits_for_the_day_and_the_count(tmp_path):
    store = Store.local_dir(str(tmp_path))
    for k in range(9):
        writer.flush(store, batch_of([record("沪A00001", DAY + timedelta(minutes=k), k)]))
    settings = Settings(archive_compact_files=8, archive_compact_after_days=1)
    assert upkeep.run(store, settings, DAY.date())["pings"]["files_merged"] == 0  # today
    assert upkeep.run(store, settings, DAY.date() + timedelta(days=1))["pings"][
        "files_merged"] == 9
    (merged,) = store.list("pings")
    assert merged.path.endswith("-" + "8".rjust(20, "0") + "-c.parquet")
    writer.flush(store, batch_of([record("沪A00001", DAY + timedelta(minutes=30), 9)]))
    assert upkeep.run(store, settings, DAY.date() + timedelta(days=1))["pings"][
        "files_merged"] == 0  # one late file and the compacted one: under the count
    assert rows_in(store) == [(0, n) for n in range(10)]


def test_retention_deletes_only_what_is_due(store):
    old = datetime(2026, 5, 1, 12, tzinfo=CHINA_TZ)
    writer.flush(store, batch_of([record("沪A00001", old + timedelta(days=d), d)
                                  for d in range(4)]))
    settings = Settings(archive_keep_pings_days=183)
    today = date(2026, 11, 1)  # 2026-05-01 + 184 days: the 1st is due, the 2nd kept
    assert upkeep.due(upkeep.days(store, "pings"), today, 183) == [date(2026, 5, 1)]
    assert upkeep.run(store, settings, today)["pings"]["days_deleted"] == 1
    assert upkeep.days(store, "pings") == [date(2026, 5, 2), date(2026, 5, 3), date(2026, 5, 4)]
    assert rows_in(store) == [(0, 1), (0, 2), (0, 3)]


def test_a_track_is_exactly_the_pings_of_the_period(tmp_path):
    store = Store.local_dir(str(tmp_path))
    recs = [record("沪A00001", DAY + timedelta(minutes=10 * i), i) for i in range(12)]
    recs.append(record("沪A00001", DAY + timedelta(minutes=30), 12))  # the same fix again
    recs.append(record("沪A00002", DAY + timedelta(minutes=30), 13))  # another truck
    recs.append(record("沪A00001", DAY + timedelta(minutes=40), 14, fix_valid=False))
    writer.flush(store, batch_of(recs[:6]))
    writer.flush(store, batch_of(recs[6:]))
    archive = Archive(store)
    track = archive.track("沪A00001", DAY + timedelta(minutes=20), DAY + timedelta(minutes=80))
    assert track["ts"].to_pylist() == [DAY + timedelta(minutes=m) for m in range(20, 90, 10)]
    assert track["offset"].to_pylist()[1] == 3  # the first copy of 08:30
    every = archive.track("沪A00001", DAY - timedelta(days=1), DAY + timedelta(days=1),
                          with_no_fix=True)
    assert every.num_rows == 12  # 08:40 has one fix and one without: one per time


def test_a_gcj02_ping_is_placed_where_it_really_is(tmp_path):
    """At 121.0595 E, 31.25 N read as WGS84 a point is in Shanghai; as GCJ-02 (a Chinese
    map's coordinates, shifted about 500 m) it is 121.0549 E, 31.2519 N in WGS84, in
    Jiangsu (Suzhou): the archive must say Jiangsu, as the worker does."""
    store = Store.local_dir(str(tmp_path))
    writer.flush(store, batch_of([record("沪A00001", DAY, 0, where=(121.0595, 31.25),
                                         crs="GCJ02"),
                                  record("沪A00001", DAY + timedelta(seconds=5), 1,
                                         where=(121.0595, 31.25))]))
    (f,) = store.list("pings")
    t = pq.read_table(store.full(f.path)).to_pylist()
    assert [(r["crs"], r["province"]) for r in t] == [("GCJ02", "JS"), ("WGS84", "SH")]
    assert (t[0]["lon"], t[0]["lat"]) == (121.0595, 31.25)  # kept as sent
