"""Faust's transport with batch delivery and commits by checkpoint (see the package)."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from aiokafka import errors as Errors
from aiokafka.consumer.fetcher import FetchResult
from aiokafka.errors import ConsumerStoppedError
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.tuples import ConsumerMessage

from yrd_hazmat import metrics

SCHEME = "yrdkafka"
log = logging.getLogger(__name__)


class BatchMessage(ConsumerMessage):
    """The records fetched for one partition in one poll, as one Faust message.

    ``offset`` is the last record's offset (what Faust's bookkeeping sees),
    ``first_offset`` the first one's; ``value`` holds the aiokafka records.
    """

    __slots__ = ("records", "first_offset", "fetched_from", "taken_at")

    def __init__(self, tp: TP, records: list[Any], generation_id: int | None) -> None:
        last = records[-1]
        super().__init__(
            tp.topic, tp.partition, last.offset,
            last.timestamp / 1000.0 if last.timestamp is not None else None,
            last.timestamp_type, None, None, records, None, 0, 0, tp,
            generation_id=generation_id,
        )
        self.records = records
        self.first_offset: int = records[0].offset
        self.fetched_from: int | None = getattr(records, "fetched_from", None)
        """The consumer's position when it took these records (None: unknown)."""
        self.taken_at: float | None = getattr(records, "taken_at", None)
        """When the consumer thread took these records from the fetcher (epoch seconds)."""


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, with a short broker-side fetch wait.

    Faust fixes ``fetch_max_wait_ms`` at 1,500 ms. aiokafka keeps one fetch in
    flight per broker, for the partitions that have nothing buffered at that
    moment; when those are quiet (the ticks, the permits) the broker holds the
    fetch the whole wait while pings pile up on the others, so pings waited up
    to 1.5 s before the rules saw them. The app's ``fetch_wait_ms`` bounds it.
    """

    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = getattr(self.app, "fetch_wait_ms", 20)
        consumer._fetch_min_bytes = getattr(self.app, "fetch_min_bytes", 1)
        return consumer

    async def _fetch_records(self, consumer, active_partitions, timeout=None, max_records=None):
        """aiokafka's ``fetched_records``, one partition at a time, so that a batch that
        cannot be read (corrupt on the broker, or a codec the client lacks) is skipped
        with a metric and a log line instead of stopping the worker.

        aiokafka raises such an error from the middle of a fetch, after the records of
        other partitions were taken out of its buffer: one call for all partitions
        would lose those, and the same batch would be read, and raise, again forever.
        """
        if not self.consumer.flow_active:
            return {}
        fetcher = consumer._fetcher
        if consumer._closed or fetcher._closed:
            raise ConsumerStoppedError()
        with fetcher._subscriptions.fetch_context():
            if not self._buffered(fetcher, active_partitions) and timeout:
                waiter = fetcher._create_fetch_waiter()
                done, pending = await asyncio.wait([waiter], timeout=timeout)
                for future in pending:
                    future.cancel()
                if done:
                    waiter.result()  # authorization errors and the like, as aiokafka does
            drained: dict = {}
            for tp in self._buffered(fetcher, active_partitions):
                left = None if max_records is None else max_records - sum(map(len, drained.values()))
                if left == 0:
                    break
                result = fetcher._records.get(tp)  # a seek may have dropped it meanwhile
                if result is None:
                    continue
                if type(result) is FetchResult:
                    records = take_readable(consumer, fetcher, tp, result, left,
                                            self.consumer.unreadable_until)
                    if records:
                        drained[tp] = records
                else:  # a fetch error (authorization, out of range...): aiokafka's way
                    drained.update(await fetcher.fetched_records({tp}, timeout=0,
                                                                 max_records=left))
            return drained

    @staticmethod
    def _buffered(fetcher, active_partitions) -> list:
        return [tp for tp in fetcher._records if not active_partitions or tp in active_partitions]


UNREADABLE = (Errors.CorruptRecordException, Errors.UnsupportedCodecError,
              Errors.UnsupportedVersionError, ValueError, IndexError, struct.error)
"""What a fetched batch can raise when its bytes cannot be turned into records."""


class Taken(list):
    """Records taken from one partition, with the offset the take started from."""

    fetched_from: int | None = None
    taken_at: float | None = None


def take_readable(consumer, fetcher, tp, result: FetchResult, max_records: int | None,
                  skipped: dict | None = None) -> list:
    """``FetchResult.getall`` (aiokafka 0.14), except that a batch that cannot be read ends
    the take: the records before it are returned, and the partition moves past it."""
    if not result.check_assignment(tp) or not result.has_more():
        fetcher._records.pop(tp, None)
        fetcher._notify(fetcher._wait_consume_future)
        return []
    partition_records = result._partition_records
    taken = Taken()
    taken.fetched_from = partition_records.next_fetch_offset
    taken.taken_at = time.time()
    try:
        for record in partition_records:
            taken.append(record)
            if max_records is not None and len(taken) >= max_records:
                result._update_position()
                return taken
    except UNREADABLE as exc:
        bad = partition_records.next_fetch_offset  # where the unreadable batch starts
        result._update_position()                  # the partition is read up to it
        target = bad + 1
        try:
            rest = partition_records._records
            if rest.has_next():
                target = max(target, rest.next_batch().base_offset)
        except Exception:  # the rest of the response is no better: step one offset
            pass
        metrics.UNREADABLE_SKIPPED.labels(topic=tp.topic).inc(target - bad)
        if skipped is not None:  # not a gap to seek back over (positions.py)
            skipped[tp] = target
        log.error("unreadable records in %s[%d] at offset %d (%s: %s): skipped to offset %d",
                  tp.topic, tp.partition, bad, type(exc).__name__, exc, target)
        consumer.seek(tp, target)
    else:
        result._update_position()
    fetcher._records.pop(tp, None)  # (a seek has already dropped it)
    fetcher._notify(fetcher._wait_consume_future)
    return taken


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, delivering batched topics a partition batch at a time."""

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._checkpointed: dict[TP, int] = {}
        self.unreadable_until: dict[TP, int] = {}
        """Per partition, the offset the last unreadable batch was skipped to."""
        super().__init__(*args, **kwargs)

    @property
    def batch_topics(self) -> frozenset[str]:
        return getattr(self.app, "batch_topics", frozenset())

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        """Fetch; yield one :class:`BatchMessage` per partition of a batched topic."""
        try:
            records, active_partitions = await self._wait_next_records(timeout)
        except (asyncio.CancelledError, *self.consumer_stopped_errors):
            raise
        except Exception:
            # Faust's fetcher dies on any error here and the worker lives on without
            # consuming: log it (rate limited) and fetch again instead.
            log.exception("fetching records failed; fetching again in 1 s")
            await asyncio.sleep(1.0)
            return
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            await self.perform_seek()  # as Faust does when asked to fetch while paused
            return
        generation_id = self.app.consumer_generation_id
        batched = self.batch_topics
        to_message = self._to_message
        for tp, tp_records in records.items():
            if not self.flow_active or self.app.consumer_generation_id != generation_id:
                break
            if not (active_partitions is None or tp in active_partitions
                    or tp in self._buffered_partitions):
                continue
            if not tp_records:
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            if tp.topic in batched:
                yield tp, BatchMessage(tp, tp_records, generation_id)
            else:
                for record in tp_records:
                    yield tp, to_message(tp, record)

    async def _seek(self, partition: TP, offset: int) -> None:
        """Seek on the consumer thread, where aiokafka's fetcher lives.

        Faust's thread-delegating consumer calls aiokafka's ``seek`` from the main
        thread. The fetcher's position and buffers belong to the consumer thread's
        loop, and a take in progress there ends by moving the position to where its
        records end: a seek made meanwhile was undone. Seen in the two-worker
        benchmark: a partition sought back from offset 22,000 to 4,000 kept delivering
        from 22,000, about 30 times a second for minutes, and its records in between
        were never processed. Run on the consumer thread, the seek happens between
        takes."""
        thread = self._thread
        consumer = thread._ensure_consumer()
        await thread.call_thread(consumer.seek, partition, offset)

    # --- back pressure ----------------------------------------------------------
    def on_buffer_full(self, tp: TP) -> None:
        """Faust stops fetching a partition whose stream buffer runs high and resumes it
        when the buffer drains. For batched topics the buffer holds whole batches and a
        full one already blocks delivery (the conductor's put waits); partitions were
        seen to stay stopped for good after restarts. So batched topics keep fetching."""
        if tp.topic not in self.batch_topics:
            super().on_buffer_full(tp)

    # --- commits -----------------------------------------------------------
    def checkpointed(self, offsets: Mapping[TP, int]) -> None:
        """Every record below ``offsets[tp]`` is processed and its effects acknowledged."""
        for tp, offset in offsets.items():
            if offset > self._checkpointed.get(tp, -1):
                self._checkpointed[tp] = offset

    def forget(self, tps: Iterable[TP]) -> None:
        """Drop checkpoints of partitions this worker no longer holds."""
        for tp in tps:
            self._checkpointed.pop(tp, None)

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Iterable[TP]:
        tps = set(super()._filter_tps_with_pending_acks(topics))
        tps.update(tp for tp in self._checkpointed
                   if topics is None or tp in topics or tp.topic in topics)
        return tps

    def _new_offset(self, tp: TP) -> int | None:
        if tp.topic in self.batch_topics:
            return self._checkpointed.get(tp)
        return super()._new_offset(tp)

    async def resume_offset(self, tp: TP) -> int:
        """Where processing of ``tp`` must resume, asked of the broker: the group's
        committed offset, or (nothing committed) the start of the log.

        Not the consumer's position: after a restart that position was seen to be the
        log's end, or an offset nobody committed, so records in between were never
        delivered."""
        consumer = self._thread._ensure_consumer()
        committed = await self._thread.call_thread(consumer.committed, tp)
        if committed is not None and committed >= 0:
            return committed
        return (await self.earliest_offsets(tp))[tp]


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`BatchConsumer`."""

    Consumer = BatchConsumer


def register() -> None:
    """Make ``yrdkafka://`` known to Faust even when the entry point is not installed."""
    TRANSPORTS.aliases.setdefault(SCHEME, f"{__name__}:Transport")
