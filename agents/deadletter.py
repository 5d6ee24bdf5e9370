"""Sending a rejected input record to the dead-letter topic, with where it came from."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import faust
from faust.types import EventT

from yrd_hazmat.core.codec import Rejection, dead_letter, encode

log = logging.getLogger(__name__)


class DeadLetterSink:
    """Wraps an input record and its rejection; keyed like the input.

    The pings path sends :meth:`record` through its checkpointed outputs (acknowledged
    before the state and offsets that cover the input); the reference-data agents send
    through Faust's producer with :meth:`send`, which waits for the broker's
    acknowledgement: they ack the input record only after it (Faust's flush before a
    commit gives up after 0.1 s, see :mod:`agents.permits`).
    """

    def __init__(self, topic: faust.TopicT, max_raw_bytes: int) -> None:
        self.topic = topic
        self.max_raw_bytes = max_raw_bytes

    def record(self, source: EventT | Any, rejection: Rejection, now: datetime
               ) -> tuple[bytes | None, bytes]:
        """The dead-letter record (key, value) for a Faust event or a raw aiokafka record."""
        message = getattr(source, "message", source)
        log.debug("dead-lettered %s[%s]@%s: %s", message.topic, message.partition,
                  message.offset, rejection.error)
        return source.key, encode(dead_letter(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=source.key,
            value=source.value,
            rejection=rejection,
            received_at=now,
            max_raw_bytes=self.max_raw_bytes,
        ))

    async def send(self, source: EventT | Any, rejection: Rejection, now: datetime) -> None:
        """Send the dead letter through Faust's producer (the reference-data agents) and
        wait until the broker has acknowledged it; raises if the broker refuses it."""
        key, value = self.record(source, rejection, now)
        delivery = await self.topic.send(key=key, value=value)
        await delivery
