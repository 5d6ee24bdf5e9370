"""Helpers of the fault suite: kill -9, a worker's metrics, offsets, complete reads and
the read model's view. Ports, waits and brokers or redis-servers of a test's own (a test
that stops one must never touch the shared ones) come from :mod:`tests.harness`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.integration.harness import WorkerProcess, scrape
from yrd_hazmat.readmodel import PROVINCES, ReadModel


# --------------------------------------------------------------------------
# The worker
# --------------------------------------------------------------------------


def kill9(worker: WorkerProcess) -> None:
    """SIGKILL the worker's whole process group (it runs in a session of its own)."""
    assert worker.proc is not None
    try:
        os.killpg(worker.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    worker.proc.wait(30)


def metric(env: dict[str, str], name: str, labels: dict[str, str] | None = None,
           default: float = 0.0) -> float:
    """One sample of the worker's /metrics (``default`` when absent or unreachable)."""
    try:
        samples = scrape(env["YRD_METRICS_PORT"])
    except OSError:
        return default
    return samples.get((name, tuple(sorted((labels or {}).items()))), default)


def metric_sum(env: dict[str, str], name: str) -> float | None:
    """The sum of a metric over all its labels; None when the worker does not expose it."""
    try:
        samples = scrape(env["YRD_METRICS_PORT"])
    except OSError:
        return None
    values = [v for (n, _), v in samples.items() if n == name]
    return sum(values) if values else None


# --------------------------------------------------------------------------
# Offsets and complete reads
# --------------------------------------------------------------------------


def _partitions(bootstrap: str, topic: str) -> list[int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    meta = admin.list_topics(topic, timeout=10)
    info = meta.topics.get(topic)
    if info is None or info.error is not None:
        raise KafkaException(info.error if info else f"no topic {topic}")
    return sorted(info.partitions)


def offsets(bootstrap: str, group: str, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    """(committed offset of ``group``, end offset) per partition of ``topic``; -1 = none.

    The consumer never subscribes, so it never joins the group it reads.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        parts = _partitions(bootstrap, topic)
        committed = consumer.committed([TopicPartition(topic, p) for p in parts], timeout=10)
        done = {tp.partition: tp.offset for tp in committed}
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in parts}
    finally:
        consumer.close()
    return done, ends


def lag(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """Records of ``topic`` not yet committed by ``group``, per partition."""
    done, ends = offsets(bootstrap, group, topic)
    return {p: ends[p] - max(done.get(p, 0), 0) for p in ends}


def read_all(bootstrap: str, topic: str, timeout: float = 30.0) -> list[tuple[bytes | None, dict | None]]:
    """Every record (key, JSON value) of ``topic``, up to its end offsets at the call."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"reader-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    try:
        try:
            parts = _partitions(bootstrap, topic)
        except KafkaException:
            return []
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                for p in parts}
        todo = {p for p, (low, high) in ends.items() if high > low}
        consumer.assign([TopicPartition(topic, p, ends[p][0]) for p in todo])
        records: list[tuple[bytes | None, dict | None]] = []
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            value = msg.value()
            records.append((msg.key(), json.loads(value) if value is not None else None))
            if msg.offset() >= ends[msg.partition()][1] - 1:
                todo.discard(msg.partition())
        if todo:
            raise TimeoutError(f"{topic}: partitions {sorted(todo)} not read to their end")
        return records
    finally:
        consumer.close()


def count(bootstrap: str, topic: str) -> int:
    """Records in ``topic`` (end minus start offsets); 0 if it does not exist."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"c-{uuid.uuid4().hex}"})
    try:
        try:
            parts = _partitions(bootstrap, topic)
        except KafkaException:
            return 0
        total = 0
        for p in parts:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def wait_quiet(bootstrap: str, topic: str, quiet_s: float, timeout: float) -> int:
    """Wait until ``topic`` gains no record for ``quiet_s``; returns its record count."""
    deadline = time.monotonic() + timeout
    last, since = count(bootstrap, topic), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = count(bootstrap, topic)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return now
    return last


# --------------------------------------------------------------------------
# The read model, through its read side
# --------------------------------------------------------------------------


async def read_model_view(url: str, prefix: str, vehicles: list[str]) -> dict:
    """What the read side shows: per vehicle its hash, its open incidents, whether its
    province lists it; open incidents per province; alert ids in the recent list."""
    model = ReadModel.from_url(url, prefix=prefix)
    try:
        view: dict = {"vehicle": {}, "open": {}, "listed": {}, "by_province": set(), "recent": set()}
        in_province = {p: set(await model.vehicles_in(None if p == "none" else p)) for p in PROVINCES}
        for v in vehicles:
            row = await model.vehicle(v)
            view["vehicle"][v] = row
            view["open"][v] = {a.incident_id for a in await model.open_alerts(vehicle_id=v)}
            province = row.get("province") or "none"
            view["listed"][v] = v in in_province.get(province, set())
        for p in PROVINCES:
            view["by_province"] |= {a.incident_id for a in
                                    await model.open_alerts(province=None if p == "none" else p)}
        view["recent"] = {a.alert_id for a in await model.recent_alerts()}
        return view
    finally:
        await model.close()



def read_model(url: str, prefix: str, vehicles: list[str]) -> dict:
    return asyncio.run(read_model_view(url, prefix, vehicles))


def compare_read_models(clean: dict, other: dict, show: int = 8) -> list[str]:
    """Problems if two read models (``read_model_view``) differ, ``updated_at`` aside."""
    problems = []
    rows = []
    for v, row in clean["vehicle"].items():
        a = {k: x for k, x in row.items() if k != "updated_at"}
        b = {k: x for k, x in other["vehicle"].get(v, {}).items() if k != "updated_at"}
        if a != b:
            diff = ", ".join(f"{k}: {a.get(k)} != {b.get(k)}" for k in sorted(set(a) | set(b))
                             if a.get(k) != b.get(k))
            rows.append(f"{v}: {diff}")
    if rows:
        problems.append(f"read model: {len(rows)} of {len(clean['vehicle'])} vehicles differ from "
                        "the clean run:\n  " + "\n  ".join(rows[:show]))
    opened = [v for v in clean["open"] if clean["open"][v] != other["open"].get(v)]
    if opened:
        problems.append(f"read model: open incidents differ for {len(opened)} vehicles: {opened[:show]}")
    unlisted = [v for v in clean["listed"] if clean["listed"][v] != other["listed"].get(v)]
    if unlisted:
        problems.append(f"read model: province sets differ for {len(unlisted)} vehicles: {unlisted[:show]}")
    if clean["by_province"] != other["by_province"]:
        problems.append("read model: open incidents per province differ: "
                        f"{len(clean['by_province'] - other['by_province'])} missing, "
                        f"{len(other['by_province'] - clean['by_province'])} extra")
    if clean["recent"] != other["recent"]:
        problems.append("read model: the recent list differs: "
                        f"{len(clean['recent'] - other['recent'])} alert ids missing, "
                        f"{len(other['recent'] - clean['recent'])} extra")
    return problems
