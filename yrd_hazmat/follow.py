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
