"""A batch the broker serves but no client can read (bit rot in a segment) is skipped, not fatal.

The test corrupts one record batch of its own pings topic in the broker's log
segment, as a failing disk would, and starts the worker on that topic: the
batches before and after are processed, the unreadable one is skipped with a
log line naming topic, partition and offset and a metric, and the worker
keeps running.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from tests.harness import wait_until
from tests.integration.harness import WorkerProcess, scrape
from tests.integration.traces import drive, of, start_time
from yrd_hazmat.core.codec import encode

pytestmark = pytest.mark.integration

VEHICLE = "沪A30001"


def log_dirs(bootstrap: str) -> list[Path]:
    """The broker's log directories, as it reports them."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    node = admin.list_topics(timeout=10).brokers
    broker = str(next(iter(node)))
    resource = ConfigResource(ResourceType.BROKER, broker)
    config = admin.describe_configs([resource])[resource].result(timeout=10)
    return [Path(d) for d in config["log.dirs"].value.split(",")]


def segment_batches(segment: Path) -> list[tuple[int, int, int]]:
    """(base offset, file position, batch size in bytes) of every batch in a segment."""
    data = segment.read_bytes()
    out, pos = [], 0
    while pos + 12 <= len(data):
        base, length = struct.unpack(">qi", data[pos:pos + 12])
        if length <= 0:
            break
        out.append((base, pos, 12 + length))
        pos += 12 + length
    return out


def test_a_corrupt_batch_is_skipped_and_the_rest_processed(services, env, kafka, tmp_path):
    topic = env["YRD_TOPIC_PINGS"]
    subprocess.run([sys.executable, "-m", "yrd_hazmat.cli", "topics"], env=env, check=True,
                   capture_output=True)
    t0 = start_time()
    pings = drive(VEHICLE, t0, [95.0] * 8 + [60.0] * 4 + [60.0] * 4)
    producer = Producer({"bootstrap.servers": services["KAFKA_BOOTSTRAP"],
                         "partitioner": "murmur2_random", "linger.ms": 0})
    offsets: list[tuple[int, int]] = []

    def sent(err, msg):
        assert err is None, err
        offsets.append((msg.partition(), msg.offset()))

    # three separate batches: over the limit (raises), the victim, back under (clears)
    for chunk in (pings[:8], pings[8:12], pings[12:]):
        for p in chunk:
            producer.produce(topic, key=VEHICLE.encode(), value=encode(p), on_delivery=sent)
        assert producer.flush(30) == 0
    partition = offsets[0][0]
    victim_offset = offsets[8][1]

    segment = next(d / f"{topic}-{partition}" / "00000000000000000000.log"
                   for d in log_dirs(services["KAFKA_BOOTSTRAP"])
                   if (d / f"{topic}-{partition}").exists())
    end_offset = offsets[12][1]
    victims = [b for b in segment_batches(segment) if victim_offset <= b[0] < end_offset]
    assert victims and victims[0][0] == victim_offset
    with segment.open("r+b") as f:  # flip one byte inside each batch's records: CRC fails
        for _, pos, size in victims:  # (the producer may have split the 4 pings in batches)
            f.seek(pos + size - 8)
            byte = f.read(1)
            f.seek(pos + size - 8)
            f.write(bytes([byte[0] ^ 0xFF]))

    # no SIGNAL_LOST from the timer: the trace lies minutes in the past
    worker = WorkerProcess(env | {"YRD_SIGNAL_LOST_S": "10000000"},
                           tmp_path / "worker.log").start()
    try:
        alerts = kafka.read(env["YRD_TOPIC_ALERTS"], lambda r: len(of(r, VEHICLE)) >= 2,
                            timeout=90, settle=2)
        assert [(a["type"], a["state"]) for a in of(alerts, VEHICLE)] == [
            ("SPEEDING", "raised"), ("SPEEDING", "cleared")]
        # the clear comes from the third batch: the worker read past the corrupt one
        assert of(alerts, VEHICLE)[1]["ts"] == pings[12].ts.isoformat()

        def skipped() -> float:
            m = scrape(env["YRD_METRICS_PORT"])
            return m.get(("yrd_unreadable_records_skipped_total", (("topic", topic),)), 0)

        wait_until(lambda: skipped() == end_offset - victim_offset,
                   "every unreadable offset counted", 30)
        log = (tmp_path / "worker.log").read_text("utf-8", "replace")
        assert f"unreadable records in {topic}[{partition}] at offset {victim_offset}" in log
        time.sleep(2)
        assert worker.alive, worker.log_tail()
    finally:
        assert worker.stop() == 0, worker.log_tail()
