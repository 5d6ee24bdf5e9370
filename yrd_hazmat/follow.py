"""Follow a topic without a consumer group: every partition, from its start (a compacted
topic read whole) or from its end (a live feed), until cancelled."""

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
    consumer = AIOKafkaConsumer(**kafka_options, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        while not partitions:
            await asyncio.sleep(0.5)
            await consumer._client.force_metadata_update()  # the topic was just created
            partitions = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        if from_start:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        ends = await consumer.end_offsets(tps)
        while True:
            if caught_up is not None and not caught_up.is_set() and await _at(consumer, ends):
                caught_up.set()
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    apply(record.key, record.value)
    finally:
        await consumer.stop()


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

    async def start(self, timeout_s: float = 30.0) -> None:
        consumer = self._consumer = AIOKafkaConsumer(**self._options, group_id=None,
                                                     enable_auto_commit=False)
        await consumer.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        partitions = consumer.partitions_for_topic(self.topic)
        while not partitions:
            if loop.time() > deadline:
                raise TimeoutError(f"topic {self.topic} has no partitions")
            await asyncio.sleep(0.2)
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(self.topic)
        self._tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(self._tps)
        await consumer.seek_to_beginning(*self._tps)

    async def catch_up(self) -> None:
        consumer = self._consumer
        assert consumer is not None, "start() first"
        ends = await consumer.end_offsets(self._tps)
        while not await _at(consumer, ends):
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    self.apply(record.key, record.value)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
