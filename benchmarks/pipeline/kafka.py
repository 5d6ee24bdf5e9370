"""Kafka clients of the benchmark itself: confluent-kafka (librdkafka), a client
independent of the worker's aiokafka, as a carrier's gateway or a police desk would use.

Every producer partitions keys like the Java clients and aiokafka (murmur2)
and compresses with lz4, as the issue's target asks.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from .services import BenchmarkError

COMPRESSION = "lz4"


def confluent() -> Any:
    """confluent-kafka (the project's test extra)."""
    try:
        import confluent_kafka
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BenchmarkError("confluent-kafka is needed: pip install -e '.[test]'") from exc
    return confluent_kafka


def new_producer(bootstrap: str, linger_ms: int, idempotent: bool = True) -> Any:
    """A librdkafka producer: murmur2 partitioning, idempotent (unless asked not to), lz4."""
    return confluent().Producer({
        "bootstrap.servers": bootstrap,
        "partitioner": "murmur2_random",
        "enable.idempotence": idempotent,
        "compression.type": COMPRESSION,
        "linger.ms": linger_ms,
        "queue.buffering.max.messages": 1_000_000,
    })


def produce_all(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]],
                timeout: float, partition_of: dict[bytes, int] | None = None) -> dict[str, float]:
    """Produce every (key, value) as fast as possible; returns count, seconds, rate, bytes.
    ``partition_of``, if given, gets each key's partition from the delivery reports."""
    producer = new_producer(bootstrap, linger_ms=20)
    failures: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(str(err))
        elif partition_of is not None:
            partition_of[msg.key()] = msg.partition()

    started = time.perf_counter()
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    left = producer.flush(timeout)
    seconds = time.perf_counter() - started
    if left or failures:
        raise BenchmarkError(f"{topic}: {left} records undelivered, errors {failures[:3]}")
    return {"records": len(records), "seconds": seconds, "rate": len(records) / seconds,
            "bytes": sum(len(v) for _, v in records)}


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """Each partition's high watermark."""
    ck = confluent()
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})
    try:
        return {p: consumer.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)}
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offset per partition (-1: none)."""
    ck = confluent()
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                            "enable.auto.commit": False})
    try:
        tps = consumer.committed([ck.TopicPartition(topic, p) for p in range(partitions)],
                                 timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        consumer.close()


def group_lag(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """Records of ``topic`` the group has not committed yet."""
    ends = end_offsets(bootstrap, topic, partitions)
    done = committed_offsets(bootstrap, group, topic, partitions)
    return sum(end - max(done.get(p, -1), 0) for p, end in ends.items())


def read_json_topic(bootstrap: str, topic: str, partitions: int,
                    timeout: float = 120.0) -> list[dict]:
    """Every record of ``topic`` from the start to its current end, values as JSON."""
    ck = confluent()
    ends = end_offsets(bootstrap, topic, partitions)
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-reader",
                            "enable.auto.commit": False})
    out: list[dict] = []
    try:
        consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING)
                         for p, end in ends.items() if end > 0])
        position = {p: 0 for p in ends}
        deadline = time.monotonic() + timeout
        while any(position[p] < ends[p] for p in ends):
            if time.monotonic() > deadline:
                raise BenchmarkError(f"reading {topic} did not finish in {timeout:.0f} s")
            for msg in consumer.consume(10_000, 0.5):
                if msg.error():
                    continue
                position[msg.partition()] = msg.offset() + 1
                if msg.offset() < ends[msg.partition()] and msg.value() is not None:
                    out.append(msgspec.json.decode(msg.value()))
    finally:
        consumer.close()
    return out


def group_assignment(bootstrap: str, group: str, topic: str) -> dict[str, list[int]] | None:
    """The group's members (by ``group.instance.id``, else member id) and the partitions
    of ``topic`` each holds, as the broker sees them; None if it cannot be read now."""
    ck = confluent()
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        description = admin.describe_consumer_groups([group], request_timeout=5)[group].result(10)
    except ck.KafkaException:
        return None
    members: dict[str, list[int]] = {}
    for member in description.members:
        name = member.group_instance_id or member.member_id
        tps = member.assignment.topic_partitions if member.assignment else []
        members[name] = sorted(tp.partition for tp in tps if tp.topic == topic)
    return members
