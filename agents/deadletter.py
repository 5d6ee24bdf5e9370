"""Sending a rejected input record to the dead-letter topic, with where it came from."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import faust
from faust.types import EventT

from yrd_hazmat.codec import Rejection, dead_letter, encode

log = logging.getLogger(__name__)


class DeadLetterSink:
    """Wraps an input record and its rejection; keyed like the input.

    Sent through Faust's producer, which Faust flushes before every offset commit, so a
    dead letter is on the broker before the offset of its input is committed.
    """

    def __init__(self, topic: faust.TopicT, max_raw_bytes: int) -> None:
        self.topic = topic
        self.max_raw_bytes = max_raw_bytes

    async def send(self, source: EventT | Any, rejection: Rejection, now: datetime) -> None:
        """Dead-letter a Faust event or a raw aiokafka record (both carry key and value)."""
        message = getattr(source, "message", source)
        record = dead_letter(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=source.key,
            value=source.value,
            rejection=rejection,
            received_at=now,
            max_raw_bytes=self.max_raw_bytes,
        )
        await self.topic.send(key=source.key, value=encode(record))
        log.debug("dead-lettered %s[%s]@%s: %s", message.topic, message.partition,
                  message.offset, rejection.error)
