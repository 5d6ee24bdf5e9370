"""Read a topic without a consumer group: every partition, from its start (a compacted
topic read whole) or from its end (a live feed); followed until cancelled
(:func:`follow_topic`), or read up to its end on demand (:class:`TopicReader`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

Apply = Callable[[bytes | None, bytes | None], None]


async def follow_topic(kafka_options: dict, topic: str, apply: Apply,
                       caught_up: asyncio.Event | None = None, *,
                       from_start: bool = True) -> None:
    """Call ``apply(key, value)`` for every record of ``topic``; set ``caught_up`` once
    the records there at the start have been applied (at once when reading from the end)."""
    reader = TopicReader(kafka_options, topic, apply)
    await reader.start(from_start=from_start, timeout_s=None)
    try:
        await reader.catch_up()
        if caught_up is not None:
            caught_up.set()
        await reader.follow()
    finally:
        await reader.stop()


async def _at(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


class TopicReader:
    """A whole topic read on demand, without a consumer group: :meth:`catch_up` applies
    every record up to the topic's end as it is *now* (so a record acknowledged before the
    call is seen by it). For a compacted topic that one writer keeps, e.g. the incident
    records: read what the previous writer left before writing the next version."""

    def __init__(self, kafka_options: dict, topic: str, apply: Apply) -> None:
        self.topic = topic
        self.apply = apply
        self._options = kafka_options
        self._consumer: AIOKafkaConsumer | None = None
        self._tps: list[TopicPartition] = []

    async def start(self, *, from_start: bool = True, timeout_s: float | None = 30.0) -> None:
        """Assign every partition, at its start (or its end); wait at most ``timeout_s``
        (None: as long as it takes) for a topic just created to have partitions."""
        consumer = self._consumer = AIOKafkaConsumer(**self._options, group_id=None,
                                                     enable_auto_commit=False)
        await consumer.start()
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        partitions = consumer.partitions_for_topic(self.topic)
        while not partitions:
            if deadline is not None and loop.time() > deadline:
                raise TimeoutError(f"topic {self.topic} has no partitions")
            await asyncio.sleep(0.2)
            await consumer._client.force_metadata_update()  # the topic was just created
            partitions = consumer.partitions_for_topic(self.topic)
        self._tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(self._tps)
        if from_start:
            await consumer.seek_to_beginning(*self._tps)
        else:
            await consumer.seek_to_end(*self._tps)

    async def catch_up(self) -> None:
        consumer = self._consumer
        assert consumer is not None, "start() first"
        ends = await consumer.end_offsets(self._tps)
        while not await _at(consumer, ends):
            await self._poll(200)

    async def follow(self) -> None:
        """Apply every record as it comes, until cancelled."""
        while True:
            await self._poll(500)

    async def _poll(self, timeout_ms: int) -> None:
        assert self._consumer is not None, "start() first"
        batches = await self._consumer.getmany(timeout_ms=timeout_ms)
        for records in batches.values():
            for record in records:
                self.apply(record.key, record.value)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
