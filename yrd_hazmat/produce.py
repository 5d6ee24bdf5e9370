"""Publishing a few records from a command line: one producer, every record acknowledged."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

from .config import Settings


async def publish(settings: Settings, topic: str,
                  records: Iterable[tuple[str, bytes | None]]) -> int:
    """Send (key, value) records to ``topic`` (a None value: a tombstone); returns once the
    broker has acknowledged all of them (every replica), with how many."""
    producer = AIOKafkaProducer(**settings.kafka_options(), acks="all", enable_idempotence=True)
    await producer.start()
    sent = 0
    try:
        for key, value in records:
            await producer.send(topic, key=key.encode("utf-8"), value=value)
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent
