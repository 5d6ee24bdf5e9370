"""Sending a rejected input record to the dead-letter topic, with where it came from."""

from __future__ import annotations

import logging
from datetime import datetime

import faust
from faust.types import EventT

from yrd_hazmat.codec import Rejection, dead_letter, encode

log = logging.getLogger(__name__)


class DeadLetterSink:
    """Wraps an input event and its rejection; keyed like the input."""

    def __init__(self, topic: faust.TopicT, max_raw_bytes: int) -> None:
        self.topic = topic
        self.max_raw_bytes = max_raw_bytes

    async def send(self, event: EventT, rejection: Rejection, now: datetime) -> None:
        message = event.message
        record = dead_letter(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=event.key,
            value=event.value,
            rejection=rejection,
            received_at=now,
            max_raw_bytes=self.max_raw_bytes,
        )
        await self.topic.send(key=event.key, value=encode(record))
        log.debug("dead-lettered %s[%s]@%s: %s", message.topic, message.partition,
                  message.offset, rejection.error)
