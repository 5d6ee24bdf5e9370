"""Records the worker produces, tracked until the broker has acknowledged every one.

A checkpoint may only commit input offsets whose effects are durable, so each
send is kept (with its payload) until its future resolves. :meth:`Outputs.take`
hands the records sent so far to a checkpoint, which waits for them with
:meth:`Outputs.wait` while processing goes on and sends new ones. Sends go
straight to the aiokafka producer Faust holds (one call per record, no
per-record Faust future), batched by the producer's linger.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from yrd_hazmat import metrics

log = logging.getLogger(__name__)


class Sent(NamedTuple):
    """One record (``batched`` False) or one batch of records for one partition."""

    topic: str
    records: list[tuple[bytes | None, bytes | None]]
    partition: int | None
    future: Any
    batched: bool = False


class Outputs:
    """Sends records through a producer and remembers them until acknowledged."""

    def __init__(self, producer: Callable[[], Any], *, retry_backoff_s: float = 1.0) -> None:
        self._producer = producer
        self._sent: list[Sent] = []
        self.retry_backoff_s = retry_backoff_s

    def __len__(self) -> int:
        return len(self._sent)

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None = None) -> None:
        """Send one record; its acknowledgement is awaited by a checkpoint."""
        self._sent.append(await self._send(topic, key, value, partition))

    async def _send(self, topic: str, key: bytes | None, value: bytes | None,
                    partition: int | None) -> Sent:
        future = await self._producer().send(topic, value, key=key, partition=partition)
        return Sent(topic, [(key, value)], partition, future)

    async def send_batches(self, topic: str, records: list[tuple[bytes, bytes, int]]
                           ) -> list[Sent]:
        """Send many records, each to its given partition, as whole producer batches
        (one append per record instead of one ``send``); returns them for :meth:`wait`."""
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        for key, value, partition in records:
            by_partition.setdefault(partition, []).append((key, value))
        out = []
        for partition, items in by_partition.items():
            out += await self._send_partition(topic, partition, items)
        return out

    async def _send_partition(self, topic: str, partition: int,
                              items: list[tuple[bytes | None, bytes | None]]) -> list[Sent]:
        producer = self._producer()
        out: list[Sent] = []
        start = 0
        while start < len(items):
            batch = producer.create_batch()
            end = start
            while end < len(items) and batch.append(
                    timestamp=None, key=items[end][0], value=items[end][1]) is not None:
                end += 1
            if end == start:  # a record larger than a whole batch: send it on its own
                out.append(await self._send(topic, *items[start], partition))
                start += 1
                continue
            batch.close()
            future = await producer.send_batch(batch, topic, partition=partition)
            out.append(Sent(topic, items[start:end], partition, future, True))
            start = end
            await asyncio.sleep(0)  # let the stream go on between batches
        return out

    def take(self) -> list[Sent]:
        """The records sent since the last take (for :meth:`wait`)."""
        sent, self._sent = self._sent, []
        return sent

    async def wait(self, sent: list[Sent]) -> None:
        """Wait until every record of ``sent`` is acknowledged, sending failed ones again.

        Retriable errors (the broker away, a leader moving) are retried until
        the broker takes the record; a record the broker can never take (e.g.
        larger than its limit) is given up after a few attempts, logged and
        counted in ``yrd_output_records_dropped``.
        """
        attempts = 0
        while sent:
            results = await asyncio.gather(*(s.future for s in sent), return_exceptions=True)
            failed = [(s, r) for s, r in zip(sent, results) if isinstance(r, BaseException)]
            if not failed:
                return
            attempts += 1
            error = failed[0][1]
            log.warning("%d of %d records not acknowledged (%s: %s); sending them again",
                        len(failed), len(sent), type(error).__name__, error)
            await asyncio.sleep(min(self.retry_backoff_s * attempts, 10.0))
            sent = []
            for s, exc in failed:
                if not getattr(exc, "retriable", True) and attempts >= 3:
                    metrics.OUTPUT_DROPPED.labels(topic=s.topic).inc(len(s.records))
                    log.error("giving up on %d records for %s after %d attempts: %s: %s",
                              len(s.records), s.topic, attempts, type(exc).__name__, exc)
                    continue
                if s.batched:
                    sent += await self._send_partition(s.topic, s.partition, s.records)
                else:
                    sent.append(await self._send(s.topic, *s.records[0], s.partition))
