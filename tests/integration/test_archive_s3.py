"""The archive on S3-compatible object storage: a real SeaweedFS (``object_store``,
tests/conftest.py), the store's operations, then the archive's core as on a local
directory (tests/unit/test_archive.py): flushes, a flush killed at any step and recovered,
compaction and retention, a track equal record for record to the same archive on a disk,
DuckDB over the dataset. No Kafka: nothing here asks for ``services``."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pyarrow as pa
import pytest

from tests.unit.test_archive import DAY, batch_of, record, rows_in
from tests.unit.test_archive import (  # noqa: F401 - run here again, on S3 (the store fixture)
    test_a_flush_killed_at_any_step_is_written_once,
    test_retention_deletes_only_what_is_due,
)
from yrd_hazmat.archive import layout, upkeep, writer
from yrd_hazmat.archive.read import Archive
from yrd_hazmat.archive.store import Store
from yrd_hazmat.config import Settings

pytestmark = pytest.mark.integration


def settings_of(env: dict[str, str], **more) -> Settings:
    """Settings from the fixture's environment variables (YRD_ARCHIVE_S3_URL -> ...)."""
    return Settings(**{key.removeprefix("YRD_").lower(): value for key, value in env.items()},
                    **more)


@pytest.fixture
def s3_env(object_store, request) -> dict[str, str]:
    """The session's store with a prefix of this test's own."""
    return {**object_store, "YRD_ARCHIVE_S3_URL":
            f"{object_store['YRD_ARCHIVE_S3_URL']}/{request.node.name[:40]}-{uuid.uuid4().hex[:6]}"}


@pytest.fixture
def store(s3_env) -> Store:
    store = Store.of(settings_of(s3_env))
    assert not store.local and store.list("") == []
    return store


def test_put_get_list_dirs_delete(store):
    assert store.get("_state/pings/p000.json") is None  # a missing key
    store.put("_state/pings/p000.json", b'{"next": 5}')
    store.put("_state/pings/p001.json", b'{"next": 7}')
    store.put("pings/day=2026-11-10/a.parquet", b"x" * 10)
    store.put("pings/day=2026-11-11/b.parquet", b"y")
    store.put("alerts/day=2026-11-10/c.parquet", b"z")
    assert store.get("_state/pings/p000.json") == b'{"next": 5}'
    store.put("_state/pings/p000.json", b'{"next": 6}')  # overwritten whole
    assert store.get("_state/pings/p000.json") == b'{"next": 6}'
    assert [(e.path, e.size) for e in store.list("pings")] == [
        ("pings/day=2026-11-10/a.parquet", 10), ("pings/day=2026-11-11/b.parquet", 1)]
    assert [e.path for e in store.list("")] == [  # relative to the root, recursive
        "_state/pings/p000.json", "_state/pings/p001.json", "alerts/day=2026-11-10/c.parquet",
        "pings/day=2026-11-10/a.parquet", "pings/day=2026-11-11/b.parquet"]
    assert [e.path for e in store.list("pings", recursive=False)] == []
    assert store.list("nothing/here") == [] and store.dirs("nothing") == []
    assert store.dirs("") == ["_state", "alerts", "pings"]
    assert store.dirs("pings") == ["day=2026-11-10", "day=2026-11-11"]
    assert store.delete(["_state/pings/p001.json", "_state/pings/p009.json"]) == 1
    assert store.get("_state/pings/p001.json") is None
    store.delete_dir("pings/day=2026-11-10")
    store.delete_dir("pings/day=2000-01-01")  # none: nothing happens
    assert [e.path for e in store.list("pings")] == ["pings/day=2026-11-11/b.parquet"]
    assert store.dirs("pings") == ["day=2026-11-11"]
    table = pa.table({"n": [1, 2, 3]})
    store.put_table("t/one.parquet", table)
    assert store.read_table(["t/one.parquet", "t/one.parquet"]).to_pylist() == \
        table.to_pylist() * 2
    assert store.read_table([]) is None


def test_a_write_that_fails_half_way_leaves_no_object(store):
    """Whole or not at all: what was written before the failure is never stored."""
    def half(stream):
        stream.write(b"the first half")
        raise KeyboardInterrupt("kill")

    with pytest.raises(KeyboardInterrupt):
        store._atomic("pings/day=2026-11-10/half.parquet", half)
    assert store.list("") == [] and store.get("pings/day=2026-11-10/half.parquet") is None


def test_the_secret_key_is_never_shown(s3_env, store):
    secret = s3_env["YRD_ARCHIVE_S3_SECRET_KEY"]
    settings = settings_of(s3_env)
    assert settings.archive_s3_secret_key.get_secret_value() == secret
    assert secret not in repr(settings) and secret not in str(settings)
    assert secret not in repr(store) and secret not in str(store)
    assert repr(store) == f"Store(s3:{store.root})"


def test_wrong_keys_are_refused_at_the_start(s3_env):
    with pytest.raises(OSError, match="bucket"):
        Store.of(settings_of({**s3_env, "YRD_ARCHIVE_S3_SECRET_KEY": "not-the-key"}))


def test_flushes_of_several_batches(store):
    recs = [record(f"沪A{k % 3:05d}", DAY + timedelta(minutes=k), k) for k in range(12)]
    late = record("沪A00001", DAY - timedelta(hours=20), 12, arrived=DAY)  # a day late
    assert writer.flush(store, batch_of(recs[:5])) == {0: 5}
    assert writer.flush(store, batch_of(recs[5:9])) == {0: 9}
    assert writer.flush(store, batch_of([*recs[9:], late])) == {0: 13}
    assert [e.path.split("/")[1] for e in store.list("pings")] == \
        ["day=2026-11-09", "day=2026-11-10", "day=2026-11-10", "day=2026-11-10"]
    assert rows_in(store) == [(0, n) for n in range(13)]
    assert json.loads(store.get(layout.state_path("pings", 0))) == {"next": 13}
    assert store.get(layout.pending_path("pings", 0)) is None
    assert writer.recover(store, "pings", 0) == 13


def test_recover_undoes_a_flush_killed_before_its_state(store):
    """The unit test's kill by hand: a pending note ahead of the state and one of its
    files written; recover deletes both and resumes at the state."""
    writer.flush(store, batch_of([record("沪A00001", DAY + timedelta(seconds=i), i)
                                  for i in range(5)]))
    path = layout.data_path("pings", DAY.date(), "yrd.pings", 0, 5, 9)
    other = layout.data_path("pings", DAY.date() + timedelta(days=1), "yrd.pings", 0, 5, 9)
    store.put(layout.pending_path("pings", 0),
              json.dumps({"next": 10, "files": [path, other]}).encode())
    half = batch_of([record("沪A00002", DAY + timedelta(seconds=i), i) for i in range(5, 10)])
    store.put_table(path, next(iter(half.rows.tables().values())))
    assert len(store.list("pings")) == 2
    assert writer.recover(store, "pings", 0) == 5
    assert [e.path for e in store.list("pings")] == [
        layout.data_path("pings", DAY.date(), "yrd.pings", 0, 0, 4)]
    assert store.get(layout.pending_path("pings", 0)) is None
    assert rows_in(store) == [(0, n) for n in range(5)]


def test_compaction_on_s3(store):
    for k in range(10):
        writer.flush(store, batch_of([record(f"沪A{k % 3:05d}", DAY + timedelta(minutes=k),
                                             k)]))
    settings = Settings(archive_compact_files=8)
    assert len(store.list("pings")) == 10
    # killed between writing the compacted file and deleting the small ones
    files = upkeep.files_of(store, "pings", DAY.date())
    table = store.read_table([f.path for f in files])
    store.put_table(layout.data_path("pings", DAY.date(), "yrd.pings", 0, 0, 9, True), table)
    assert rows_in(store) == [(0, n) for n in range(10)]
    assert upkeep.run(store, settings, DAY.date() + timedelta(days=2))["pings"][
        "files_merged"] == 0  # the leftovers deleted, nothing to merge
    (only,) = store.list("pings")
    assert only.path.endswith("-c.parquet") and rows_in(store) == [(0, n) for n in range(10)]
    # a later day's files merged by the next run, sorted by vehicle and time
    next_day = DAY + timedelta(days=1)
    for k in range(10, 19):
        writer.flush(store, batch_of([record(f"沪A{k % 2:05d}", next_day + timedelta(minutes=k),
                                             k)]))
    assert upkeep.run(store, settings, DAY.date() + timedelta(days=2))["pings"][
        "files_merged"] == 9
    assert [e.path for e in store.list("pings")] == [
        only.path, layout.data_path("pings", next_day.date(), "yrd.pings", 0, 10, 18, True)]
    merged = store.read_table([store.list("pings")[1].path])
    assert merged["vehicle_id"].to_pylist() == ["沪A00000"] * 5 + ["沪A00001"] * 4
    assert rows_in(store) == [(0, n) for n in range(19)]


def test_a_track_on_s3_equals_the_same_on_a_disk(store, tmp_path):
    local = Store.local_dir(str(tmp_path))
    recs = [record("沪A00001", DAY + timedelta(minutes=10 * i), i) for i in range(12)]
    recs.append(record("沪A00001", DAY + timedelta(minutes=30), 12))  # the same fix again
    recs.append(record("沪A00002", DAY + timedelta(minutes=30), 13))  # another truck
    recs.append(record("沪A00001", DAY + timedelta(minutes=40), 14, fix_valid=False))
    recs.append(record("沪A00001", DAY - timedelta(hours=20), 15, arrived=DAY))  # a day late
    for target in (store, local):
        writer.flush(target, batch_of(recs[:6]))
        writer.flush(target, batch_of(recs[6:]))
    assert rows_in(store) == rows_in(local) == [(0, n) for n in range(16)]
    on_s3, on_disk = Archive(store), Archive(local)
    for start, end, with_no_fix in [
            (DAY + timedelta(minutes=20), DAY + timedelta(minutes=80), False),
            (DAY - timedelta(days=1), DAY + timedelta(days=1), True)]:
        a = on_s3.track("沪A00001", start, end, with_no_fix=with_no_fix)
        b = on_disk.track("沪A00001", start, end, with_no_fix=with_no_fix)
        assert a.schema == b.schema and a.num_rows > 0
        assert a.to_pylist() == b.to_pylist()  # record for record
    track = on_s3.track("沪A00001", DAY + timedelta(minutes=20), DAY + timedelta(minutes=80))
    assert track["ts"].to_pylist() == [DAY + timedelta(minutes=m) for m in range(20, 90, 10)]
    assert track["offset"].to_pylist()[1] == 3  # the first copy of 08:30


def test_duckdb_reads_the_dataset_on_s3(store):
    recs = [record(f"沪A{k % 3:05d}", DAY + timedelta(minutes=k), k) for k in range(9)]
    recs.append(record("沪A00001", DAY - timedelta(hours=20), 9, arrived=DAY))  # the day before
    writer.flush(store, batch_of(recs[:4]))
    writer.flush(store, batch_of(recs[4:]))
    days = [DAY.date() - timedelta(days=1), DAY.date()]
    con = Archive(store).connect(days)
    try:
        assert con.sql("SELECT vehicle_id, count(*) FROM pings GROUP BY vehicle_id "
                       "ORDER BY vehicle_id").fetchall() == [
            ("沪A00000", 3), ("沪A00001", 4), ("沪A00002", 3)]
        assert con.sql('SELECT min("offset"), max("offset") FROM pings').fetchall() == [(0, 9)]
        assert con.sql("SELECT count(*) FROM alerts").fetchall() == [(0,)]
    finally:
        con.close()
    con = Archive(store).connect([DAY.date()])  # one day only
    try:
        assert con.sql("SELECT count(*) FROM pings").fetchall() == [(9,)]
    finally:
        con.close()
