"""The follower of compacted topics (:class:`yrd_hazmat.follow.Follower`) on the real
broker: read whole over every partition, caught up exactly when the records there at the
start are applied, then kept following; a record its callback cannot take is skipped,
not fatal; a live feed starts at the end. The broker restart: tests/faults."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from yrd_hazmat.follow import Follower

pytestmark = pytest.mark.integration

PARTITIONS = 3


class Table:
    """What a follower's callback saw: the table it keeps and every record it applied."""

    def __init__(self, refuse: bytes | None = None) -> None:
        self.rows: dict[bytes, bytes] = {}
        self.applied: list[tuple[bytes | None, bytes | None]] = []
        self.refuse = refuse

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if value is not None and value == self.refuse:
            raise ValueError("a record the callback cannot take")
        self.applied.append((key, value))
        if value is None:
            self.rows.pop(key, None)
        else:
            self.rows[key] = value


def expected(records: list[tuple[bytes, bytes | None]]) -> dict[bytes, bytes]:
    rows: dict[bytes, bytes] = {}
    for key, value in records:
        if value is None:
            rows.pop(key, None)
        else:
            rows[key] = value
    return rows


def history(keys: int, rounds: int) -> list[tuple[bytes, bytes | None]]:
    """Every key written ``rounds`` times; every third key deleted at the end."""
    records = [(f"k{k}".encode(), f"v{k}.{r}".encode()) for r in range(rounds) for k in range(keys)]
    return records + [(f"k{k}".encode(), None) for k in range(0, keys, 3)]


async def make_topic(bootstrap: str, partitions: int = PARTITIONS) -> str:
    topic = f"follow-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1,
                                            topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()
    return topic


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def until(condition, timeout: float) -> None:
    """Until ``condition()`` holds, or ``timeout`` seconds (the caller asserts)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)


@pytest.fixture
def bootstrap(services) -> str:
    return services["KAFKA_BOOTSTRAP"]


async def test_reads_every_partition_whole_is_caught_up_then_keeps_following(bootstrap):
    topic = await make_topic(bootstrap)
    before = history(keys=12, rounds=3)
    await produce(bootstrap, topic, before)
    table = Table()
    follower = Follower({"bootstrap_servers": bootstrap}, topic, table.apply)
    task = asyncio.create_task(follower.run())
    try:
        await asyncio.wait_for(follower.caught_up.wait(), 60)
        assert len(table.applied) == len(before), "caught up before every record was applied"
        assert table.rows == expected(before)

        after = [(b"k1", b"v1.new"), (b"k0", b"back"), (b"k2", None), (b"new", b"n")]
        await produce(bootstrap, topic, after)
        await until(lambda: len(table.applied) >= len(before) + len(after), 30)
        assert table.rows == expected(before + after)
        assert len(table.applied) == len(before + after), "a record applied twice"
        assert not task.done() and follower.reconnects == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_record_the_callback_cannot_take_is_skipped_and_the_rest_applied(bootstrap):
    topic = await make_topic(bootstrap, partitions=1)
    records = [(b"a", b"1"), (b"b", b"poison"), (b"c", b"3")]
    await produce(bootstrap, topic, records)
    table = Table(refuse=b"poison")
    follower = Follower({"bootstrap_servers": bootstrap}, topic, table.apply)
    task = asyncio.create_task(follower.run())
    try:
        await asyncio.wait_for(follower.caught_up.wait(), 60)
        assert table.rows == {b"a": b"1", b"c": b"3"}
        await produce(bootstrap, topic, [(b"d", b"4")])
        await until(lambda: b"d" in table.rows, 30)
        assert table.rows == {b"a": b"1", b"c": b"3", b"d": b"4"}
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_live_feed_starts_at_the_end(bootstrap):
    topic = await make_topic(bootstrap)
    await produce(bootstrap, topic, [(b"old", b"1")])
    table = Table()
    follower = Follower({"bootstrap_servers": bootstrap}, topic, table.apply, from_start=False)
    task = asyncio.create_task(follower.run())
    try:
        await asyncio.wait_for(follower.caught_up.wait(), 60)  # its positions are fixed
        await produce(bootstrap, topic, [(b"new", b"2")])
        await until(lambda: b"new" in table.rows, 30)
        assert table.rows == {b"new": b"2"}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
