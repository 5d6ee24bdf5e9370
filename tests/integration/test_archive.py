"""The archiver end to end: a real broker, ``yrd-hazmat archive run`` as its own OS process.

- A clean run writes every accepted ping (late ones in their own day, refused ones not at
  all), every alert record and every incident record, each once, with its province, city
  and carrier.
- A run killed with SIGKILL at random moments while records keep arriving, restarted each
  time, ends with an archive equal to the clean one record for record: nothing lost,
  nothing doubled.
- A store that goes away in the middle of a flush (one file written, the next refused):
  the archiver reads nothing more, tries the same batch again, and once the store is back
  every record is there once.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.harness import CliProcess, wait_until
from tests.integration.harness import Kafka, run_env
from yrd_hazmat.archive import layout
from yrd_hazmat.archive.store import Store
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.models import Alert, AlertState, IncidentAction, IncidentLog, Ping, Severity
from yrd_hazmat.core.timeutil import CHINA_TZ

pytestmark = pytest.mark.integration

TRUCKS = [f"沪A{n:05d}" for n in range(1, 13)]
SHANGHAI, SUZHOU = (121.47, 31.23), (120.62, 31.30)


def pings(start: datetime, count: int, rng: random.Random
          ) -> list[tuple[bytes, bytes, bool]]:
    """``count`` records per truck every 30 s from ``start``, each with whether the worker
    accepts it: one in 40 a day late (a blind-area upload, accepted), one in 50 broken,
    one in 60 stamped hours ahead (both refused)."""
    out = []
    for k in range(count):
        for n, plate in enumerate(TRUCKS):
            at = start + timedelta(seconds=30 * k)
            where = SUZHOU if n % 3 == 0 else SHANGHAI
            roll = rng.random()
            if roll < 1 / 50:
                out.append((plate.encode(), b'{"vehicle_id": "' + plate.encode() + b'", "ts":',
                            False))
                continue
            ahead = roll < 1 / 50 + 1 / 60
            late = not ahead and roll < 1 / 50 + 1 / 60 + 1 / 40
            if ahead:
                at = datetime.now(CHINA_TZ) + timedelta(hours=3)  # a clock fault
            elif late:
                at -= timedelta(days=1)
            ping = Ping(vehicle_id=plate, ts=at, lat=where[1] + k / 10_000,
                        lon=where[0] + n / 1000, speed_kmh=40.0 + k % 30, blind=late)
            out.append((plate.encode(), encode(ping), not ahead))
    return out


def alerts_and_incidents(start: datetime) -> tuple[list, list]:
    alerts, incidents = [], []
    for n, plate in enumerate(TRUCKS[:4]):
        at = start + timedelta(minutes=5 * n)
        incident = f"{plate}:SPEEDING:{n}"
        for state in (AlertState.RAISED, AlertState.CLEARED):
            alert = Alert(alert_id=f"{incident}:{state.value}", incident_id=incident,
                          type="SPEEDING", severity=Severity.WARNING, state=state,
                          vehicle_id=plate, ts=at, emitted_at=at, lat=31.23, lon=121.47,
                          province="SH", details={"speed_kmh": 95})
            alerts.append((plate.encode(), encode(alert)))
            at += timedelta(minutes=2)
        for actions in (1, 2):
            log = IncidentLog(incident_id=incident, vehicle_id=plate, province="SH",
                              alert_type="SPEEDING", raised_at=start + timedelta(minutes=5 * n),
                              actions=[IncidentAction(kind="raised", by="worker",
                                                      at=start)] * actions)
            incidents.append((incident.encode(), encode(log)))
    return alerts, incidents


@pytest.fixture()
def env(services):
    e = run_env(services) | {"YRD_ARCHIVE_FLUSH_S": "0.3", "YRD_ARCHIVE_FLUSH_ROWS": "400",
                             "YRD_ARCHIVE_METRICS_PORT": "0"}
    admin = AdminClient({"bootstrap.servers": services["KAFKA_BOOTSTRAP"]})
    futures = admin.create_topics([NewTopic(e[name], 4, 1) for name in (
        "YRD_TOPIC_PINGS", "YRD_TOPIC_ALERTS", "YRD_TOPIC_INCIDENTS")])
    for future in futures.values():
        future.result(30)
    return e


class Archiver(CliProcess):
    def __init__(self, env: dict[str, str], directory: Path, log: Path) -> None:
        super().__init__(["archive", "run"], env | {
            "YRD_ARCHIVE_DIR": str(directory),
            "YRD_ARCHIVE_GROUP": f"archive-{uuid.uuid4().hex[:8]}"}, log)
        self.store = Store.local_dir(str(directory))


def contents(store: Store, kind: str) -> list[dict]:
    files = layout.live([f for e in store.list(kind)
                         if (f := layout.parse(e.path, e.size)) is not None])
    rows = []
    for f in files:
        for row in pq.read_table(store.full(f.path)).to_pylist():
            rows.append(row | {"day": f.day})
    return sorted(rows, key=lambda r: (r["partition"], r["offset"]))


def counted(store: Store) -> int:
    return sum(len(contents(store, kind)) for kind in layout.KINDS)


def test_a_killed_archiver_writes_what_a_clean_one_writes(services, env, tmp_path):
    kafka = Kafka(services["KAFKA_BOOTSTRAP"])
    rng = random.Random(25)
    start = datetime.now(CHINA_TZ).replace(microsecond=0) - timedelta(hours=30)
    kafka.send(env["YRD_TOPIC_PERMITS"], TRUCKS[0].encode(), encode({"carrier": "上海危运"}))
    first = pings(start, 120, rng)
    second = pings(start + timedelta(hours=1), 120, rng)
    alerts, incidents = alerts_and_incidents(start)
    for key, value, _ in first:
        kafka.send(env["YRD_TOPIC_PINGS"], key, value)
    kafka.flush()

    faulted = Archiver(env, tmp_path / "faulted", tmp_path / "faulted.log")
    faulted.start()
    chunks = [[(k, v) for k, v, _ in second[i::4]] for i in range(4)] + [alerts, incidents]
    topics = ["YRD_TOPIC_PINGS"] * 4 + ["YRD_TOPIC_ALERTS", "YRD_TOPIC_INCIDENTS"]
    for n, (chunk, topic) in enumerate(zip(chunks, topics), start=1):
        wait_until(lambda: faulted.log.read_text("utf-8", "replace").count(
            "archive: reading") >= n, "the archiver reading", 60)
        time.sleep(rng.uniform(0.0, 1.2))
        faulted.kill()  # kill -9 while it reads and writes, wherever it is
        for key, value in chunk:
            kafka.send(env[topic], key, value)
        kafka.flush()
        faulted.start()

    clean = Archiver(env, tmp_path / "clean", tmp_path / "clean.log")
    clean.start()
    total_records = len(first) + len(second) + len(alerts) + len(incidents)
    wait_until(lambda: _read_to(clean.store, env, total_records), "clean archive complete", 120)
    wait_until(lambda: _read_to(faulted.store, env, total_records), "faulted archive complete",
               120)
    assert clean.stop() == 0, clean.tail()
    assert faulted.stop() == 0, faulted.tail()

    for kind in layout.KINDS:
        ours, theirs = contents(faulted.store, kind), contents(clean.store, kind)
        keys = [(r["partition"], r["offset"]) for r in ours]
        assert len(keys) == len(set(keys)), f"{kind}: a record written twice"
        assert ours == theirs, f"{kind}: the killed run differs from the clean one"
    rows = contents(clean.store, "pings")
    assert len(rows) == sum(ok for _, _, ok in first + second)
    late = [r for r in rows if r["blind"]]
    assert late and all(r["day"] == layout.day_of(r["ts"]) for r in rows)
    assert {r["province"] for r in rows} == {"SH", "JS"}
    assert {r["carrier"] for r in rows if r["vehicle_id"] == TRUCKS[0]} == {"上海危运"}
    assert len(contents(clean.store, "alerts")) == len(alerts)
    assert len(contents(clean.store, "incidents")) == len(incidents)


def _read_to(store: Store, env: dict[str, str], total: int) -> bool:
    """Every record of the three topics is written (by the archive's own state files)."""
    written = 0
    for kind, name in (("pings", "YRD_TOPIC_PINGS"), ("alerts", "YRD_TOPIC_ALERTS"),
                       ("incidents", "YRD_TOPIC_INCIDENTS")):
        for p in range(4):
            raw = store.get(layout.state_path(kind, p))
            if raw is not None:
                written += int(json.loads(raw)["next"])
    return written >= total


def test_an_archive_ahead_of_its_topic_stops_the_archiver_with_the_reason(services, env,
                                                                          tmp_path):
    """The topic made anew under an old archive: the archiver refuses to write over it."""
    archiver = Archiver(env, tmp_path / "old", tmp_path / "old.log")
    archiver.store.put(layout.state_path("pings", 0), b'{"next": 5000}')
    archiver.start()
    assert archiver.proc is not None
    assert archiver.proc.wait(90) == 2, archiver.tail()
    assert "was the topic made anew?" in archiver.tail()


class FlakyStore(Store):
    """A local store that, while ``away`` is set, writes one file of a flush and then
    refuses: a store going away in the middle of a flush."""

    def __init__(self, root: Path) -> None:
        import pyarrow.fs as pafs

        root.mkdir(parents=True, exist_ok=True)
        super().__init__(pafs.LocalFileSystem(), str(root), local=True)
        self.away = False
        self.refused = 0
        self._written_while_away = 0

    def put_table(self, path, table) -> None:
        if self.away:
            if self._written_while_away >= 1:
                self.refused += 1
                raise OSError("the object store is away")
            self._written_while_away += 1
        super().put_table(path, table)


async def test_a_store_going_away_mid_flush_loses_and_doubles_nothing(services, env, tmp_path,
                                                                    monkeypatch):
    import asyncio

    from yrd_hazmat.archive.process import Archiver
    from yrd_hazmat.config import Settings

    for name, value in env.items():
        if name.startswith("YRD_") or name in ("KAFKA_BOOTSTRAP", "REDIS_URL"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("YRD_ARCHIVE_GROUP", f"archive-{uuid.uuid4().hex[:8]}")
    settings = Settings()
    store = FlakyStore(tmp_path / "flaky")
    kafka = Kafka(services["KAFKA_BOOTSTRAP"])
    records = pings(datetime.now(CHINA_TZ) - timedelta(hours=30), 60, random.Random(7))
    store.away = True  # from the first flush on, the second file of each is refused
    for key, value, _ in records:
        kafka.send(env["YRD_TOPIC_PINGS"], key, value)
    kafka.flush()
    stop = asyncio.Event()
    archiver = Archiver(settings, store)
    run = asyncio.create_task(archiver.run(stop))
    try:
        for _ in range(300):
            if store.refused >= 2 or run.done():
                break
            await asyncio.sleep(0.1)
        assert store.refused >= 2 and archiver.unwritten  # refused, tried again, waiting
        store.away = False  # back
        for _ in range(600):
            if _read_to(store, env, len(records)) or run.done():
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(run, 60)
    rows = contents(store, "pings")
    keys = [(r["partition"], r["offset"]) for r in rows]
    assert len(keys) == len(set(keys)) == sum(ok for _, _, ok in records)
    assert not archiver.unwritten
