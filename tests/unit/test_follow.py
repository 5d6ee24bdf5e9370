"""The follower's reconnection without a broker: a fake consumer whose broker can be away
or whose fetches can stall. A new consumer replaces a failing or stalled one after a
growing delay, counted, and continues at the next record (nothing applied twice, nothing
missed). With a real broker: tests/integration/test_follower.py, tests/faults."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from yrd_hazmat import follow
from yrd_hazmat.follow import RECONNECTS, Backoff, Follower

TOPIC = "zones"


class FakeBroker:
    """A topic's partitions; ``up`` False is a broker away; ``stall_next`` makes the next
    consumer fetch nothing, ever (a consumer that never resolved its position)."""

    def __init__(self, partitions: int = 2) -> None:
        self.logs: list[list[tuple[bytes, bytes | None]]] = [[] for _ in range(partitions)]
        self.up = True
        self.stall_next = False
        self.consumers: list[FakeConsumer] = []

    def write(self, partition: int, key: bytes, value: bytes | None) -> None:
        self.logs[partition].append((key, value))

    def consumer(self, **options) -> "FakeConsumer":
        consumer = FakeConsumer(self, stalled=self.stall_next)
        self.stall_next = False
        self.consumers.append(consumer)
        return consumer


class FakeConsumer:
    def __init__(self, broker: FakeBroker, stalled: bool) -> None:
        self.broker = broker
        self.stalled = stalled
        self.positions: dict[TopicPartition, int] = {}
        self.stopped = False

    def _check(self) -> None:
        if not self.broker.up:
            raise KafkaConnectionError("broker away")

    async def start(self) -> None:
        self._check()

    async def stop(self) -> None:
        """As aiokafka with the broker away: the CancelledError of its own fetch task."""
        self.stopped = True
        if not self.broker.up:
            raise asyncio.CancelledError()

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(len(self.broker.logs)))

    def assign(self, tps: list[TopicPartition]) -> None:
        self.positions = {tp: 0 for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self.positions[tp] = 0

    async def seek_to_end(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self.positions[tp] = len(self.broker.logs[tp.partition])

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        self._check()
        return {tp: len(self.broker.logs[tp.partition]) for tp in tps}

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        """As aiokafka: no records (after a short wait) while the broker is away."""
        if self.stalled or not self.broker.up:
            await asyncio.sleep(0.01)
            return {}
        batches = {}
        for tp, offset in self.positions.items():
            log = self.broker.logs[tp.partition][offset:offset + max_records]
            if log:
                batches[tp] = [SimpleNamespace(topic=tp.topic, partition=tp.partition,
                                               offset=offset + i, key=k, value=v)
                               for i, (k, v) in enumerate(log)]
                self.positions[tp] = offset + len(log)
        if not batches:
            await asyncio.sleep(0.01)
        return batches


@pytest.fixture
def broker(monkeypatch) -> FakeBroker:
    fake = FakeBroker()
    monkeypatch.setattr(follow, "AIOKafkaConsumer", fake.consumer)
    return fake


class Applied:
    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes | None]] = []

    def __call__(self, key, value) -> None:
        self.records.append((key, value))


def reconnects_counted() -> float:
    return RECONNECTS.labels(topic=TOPIC)._value.get()


async def until(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def running(follower: Follower) -> asyncio.Task:
    return asyncio.create_task(follower.run())


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_backoff_doubles_up_to_its_cap_and_starts_again_after_a_good_consumer():
    backoff = Backoff(0.5, 3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5


async def test_a_broker_away_at_the_start_is_waited_for_with_a_growing_delay(broker):
    broker.write(0, b"a", b"1")
    broker.write(1, b"b", b"2")
    broker.up = False
    applied = Applied()
    delays: list[float] = []
    follower = Follower({}, TOPIC, applied, backoff=Backoff(0.01, 0.04))
    real_next = follower.backoff.next
    follower.backoff.next = lambda: delays.append(real_next()) or delays[-1]
    before = reconnects_counted()
    task = running(follower)
    try:
        await until(lambda: follower.reconnects >= 4)
        assert not follower.caught_up.is_set()
        broker.up = True
        await asyncio.wait_for(follower.caught_up.wait(), 5)
        assert sorted(applied.records) == [(b"a", b"1"), (b"b", b"2")]
        assert delays[:4] == [0.01, 0.02, 0.04, 0.04]
        assert reconnects_counted() - before == follower.reconnects
        assert all(c.stopped for c in broker.consumers[:-1]), "a failed consumer left open"
    finally:
        await stop(task)


async def test_after_an_outage_a_new_consumer_continues_at_the_next_record(broker):
    for i in range(5):
        broker.write(i % 2, f"k{i}".encode(), f"v{i}".encode())
    applied = Applied()
    follower = Follower({}, TOPIC, applied, stall_s=0.05, backoff=Backoff(0.01, 0.05))
    task = running(follower)
    try:
        await asyncio.wait_for(follower.caught_up.wait(), 5)
        broker.up = False
        broker.write(0, b"k1", None)  # written while this follower cannot read
        broker.write(1, b"k9", b"v9")
        await until(lambda: follower.reconnects >= 2)
        broker.up = True
        await until(lambda: len(applied.records) == 7)
        await asyncio.sleep(0.1)
        expected = [r for log in broker.logs for r in log]
        assert sorted(applied.records, key=repr) == sorted(expected, key=repr)
        assert len(applied.records) == 7, "a record applied twice"
        assert not task.done()
    finally:
        await stop(task)


async def test_a_consumer_that_fetches_nothing_while_records_wait_is_replaced(broker):
    broker.write(0, b"z", b"1")
    broker.stall_next = True
    applied = Applied()
    follower = Follower({}, TOPIC, applied, stall_s=0.1, backoff=Backoff(0.01, 0.05))
    task = running(follower)
    try:
        await asyncio.wait_for(follower.caught_up.wait(), 5)
        assert applied.records == [(b"z", b"1")]
        assert follower.reconnects == 1 and len(broker.consumers) == 2
    finally:
        await stop(task)


async def test_a_quiet_topic_read_to_its_end_keeps_its_consumer(broker):
    broker.write(0, b"z", b"1")
    follower = Follower({}, TOPIC, Applied(), stall_s=0.05)
    task = running(follower)
    try:
        await asyncio.wait_for(follower.caught_up.wait(), 5)
        await asyncio.sleep(0.3)  # several stall checks: nothing waits, nothing replaced
        assert follower.reconnects == 0 and len(broker.consumers) == 1
    finally:
        await stop(task)


async def test_a_record_the_callback_cannot_take_does_not_stop_the_follower(broker):
    broker.write(0, b"bad", b"x")
    broker.write(0, b"good", b"y")
    applied = Applied()

    def apply(key, value):
        if key == b"bad":
            raise ValueError("cannot take it")
        applied(key, value)

    follower = Follower({}, TOPIC, apply)
    task = running(follower)
    try:
        await asyncio.wait_for(follower.caught_up.wait(), 5)
        assert applied.records == [(b"good", b"y")] and follower.reconnects == 0
    finally:
        await stop(task)
