"""Read a topic without a consumer group, every partition: the one way this project keeps
a table from a compacted topic (zones, resources, terminal profiles, commands...), and
reads a topic up to its end on demand.

- :class:`Follower` (a task for as long as the process runs): reads a topic from its
  start (or its end), gives each record (key, value or tombstone) to a callback, sets
  :attr:`Follower.caught_up` once the records there at the start are applied, and keeps
  following. When the broker goes away it comes back by itself: a failing or stalled
  consumer is replaced (with a capped backoff, logged, counted in
  ``yrd_follower_reconnects_total``) and the new one continues at the next record, so a
  table is never read twice nor missing a record.
- :class:`TopicReader`: applies every record up to the topic's end *as it is now*, when
  asked (e.g. the incident keeper, before writing the next version of a record).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter

from .core.codec import Rejection, decoded

log = logging.getLogger(__name__)
T = TypeVar("T")

Apply = Callable[[bytes | None, bytes | None], object]
"""Takes one record's key and value (None: a tombstone); what it returns is ignored."""


def decoding(decode: Callable[[bytes], T], apply: Callable[[T], object]) -> Apply:
    """An :data:`Apply` giving each record's value, decoded, to ``apply``; a record that
    does not decode (or a tombstone) is skipped: another writer's fault, not the reader's
    to judge."""
    def record(key: bytes | None, value: bytes | None) -> None:
        found = decoded(decode, value or b"")
        if not isinstance(found, Rejection):
            apply(found)
    return record

RECONNECTS = Counter(
    "yrd_follower_reconnects_total",
    "Consumers of a followed topic replaced because they failed or stalled (broker away)",
    ["topic"],
)

FETCH_BYTES = 16 * 1024 * 1024
"""Room for any record a topic accepts (too large ones are rejected by the callbacks)."""


class Stalled(Exception):
    """A consumer behind the topic's end that has read nothing for a while."""


class Backoff:
    """Delays between reconnections: ``first_s``, doubling up to ``max_s``; back to
    ``first_s`` after a consumer that worked."""

    def __init__(self, first_s: float = 0.5, max_s: float = 30.0) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._next = first_s

    def next(self) -> float:
        delay = self._next
        self._next = min(delay * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self._next = self.first_s


class Follower:
    """Keeps applying the records of ``topic`` to ``apply`` for as long as :meth:`run`
    runs (a task; cancel it to stop).

    ``from_start``: read the topic whole (a compacted table), else only what comes after
    the start (a live feed; :attr:`caught_up` is set at once). A consumer that raises, or
    has read nothing for ``stall_s`` while the topic has records beyond its position (or
    the broker does not answer), is replaced by a new one after a backoff. ``apply`` is
    never awaited (an await inside it would let records through in another order) and
    must not raise; if it does, the record is logged and skipped: no record stops a
    follower."""

    def __init__(self, kafka_options: dict, topic: str, apply: Apply, *,
                 from_start: bool = True, stall_s: float = 30.0,
                 backoff: Backoff | None = None) -> None:
        self.topic = topic
        self.apply = apply
        self.from_start = from_start
        self.stall_s = stall_s
        self.backoff = backoff or Backoff()
        self.caught_up = asyncio.Event()
        """Set once every record there when the follower started has been applied."""
        self.reconnects = 0
        self.record: ConsumerRecord | None = None
        """The record being applied (for the callback's logs)."""
        self._options = kafka_options
        self._next: dict[TopicPartition, int] = {}
        """Partition -> offset of its next record, once one was read: where a new
        consumer continues."""

    def where(self) -> str:
        """``topic[partition]@offset`` of the record being applied."""
        r = self.record
        return f"{r.topic}[{r.partition}]@{r.offset}" if r is not None else self.topic

    async def run(self) -> None:
        """Follow the topic until cancelled, replacing a consumer that fails or stalls."""
        RECONNECTS.labels(topic=self.topic)
        while True:
            consumer = AIOKafkaConsumer(
                **self._options, group_id=None, enable_auto_commit=False,
                auto_offset_reset="earliest" if self.from_start else "latest",
                max_partition_fetch_bytes=FETCH_BYTES)
            try:
                await consumer.start()
                await self._follow(consumer)  # returns only by raising
            except asyncio.CancelledError as exc:
                if _stopping():
                    raise
                failure = exc  # aiokafka cancelled a future of its own: not a stop
            except Exception as exc:  # a broker away, a stalled consumer: a new one
                failure = exc
            finally:
                await _stop_quietly(consumer)
            delay = self.backoff.next()
            self.reconnects += 1
            RECONNECTS.labels(topic=self.topic).inc()
            log.warning("following %s: %s: %s; a new consumer in %.1f s (reconnection %d)",
                        self.topic, type(failure).__name__, failure, delay, self.reconnects)
            await asyncio.sleep(delay)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        """One consumer's life: assign every partition where the last one stopped, catch
        up if not done yet, then apply what comes; raises :class:`Stalled` if it stalls."""
        tps = await assign_all(consumer, self.topic)
        fresh = [tp for tp in tps if tp not in self._next]
        for tp in tps:
            if tp in self._next:
                consumer.seek(tp, self._next[tp])
        if fresh and self.from_start:
            await consumer.seek_to_beginning(*fresh)  # together: one wait, not one each
        elif fresh:  # a live feed: from the end now, and from there after a reconnection
            await consumer.seek_to_end(*fresh)
            for tp in fresh:
                self._next[tp] = await consumer.position(tp)
        if self.reconnects:
            at = ", ".join(f"[{tp.partition}]@{o}" for tp, o in sorted(self._next.items()))
            log.info("following %s again, a new consumer at %s", self.topic, at or "the start")
        ends = None
        if not self.caught_up.is_set():
            if self.from_start:
                ends = await consumer.end_offsets(tps)
            else:
                self.caught_up.set()
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        while True:
            if ends is not None and await _reached(consumer, ends):
                ends = None
                self.backoff.reset()
                self.caught_up.set()
                log.info("%s caught up (%d partitions)", self.topic, len(tps))
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            if batches:
                self.backoff.reset()
                quiet_since = loop.time()
                self._apply(batches)
                await asyncio.sleep(0)  # let the process breathe between big batches
            if loop.time() - quiet_since > self.stall_s:
                why = await _stalled(consumer, tps)
                if why:
                    raise Stalled(f"nothing read for {self.stall_s:.0f} s, {why}")
                quiet_since = loop.time()
                self.backoff.reset()  # at the end and the broker answers: it works

    def _apply(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        for tp, records in batches.items():
            for record in records:
                self.record = record
                try:
                    self.apply(record.key, record.value)
                except Exception:  # a bug must not stop the follower: the table stays
                    log.exception("following %s: applying the record at %s failed",
                                  self.topic, self.where())
                self._next[tp] = record.offset + 1
        self.record = None


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Whether the consumer has read every partition up to ``ends``; False if it cannot
    tell within 5 s (a consumer that never resolved its starting position, seen once
    under load, is then caught by the stall check)."""
    try:
        return await asyncio.wait_for(_at(consumer, ends), 5.0)
    except asyncio.TimeoutError:
        return False


async def _stalled(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> str | None:
    """Why a consumer that read nothing for a while is stalled: records wait beyond its
    positions, or the broker does not answer (a new consumer will find it when it is
    back); None if it is simply at the end."""
    try:
        ends = await asyncio.wait_for(consumer.end_offsets(tps), 10.0)
    except asyncio.TimeoutError:
        return "the broker did not answer in 10 s"
    try:
        return None if await asyncio.wait_for(_at(consumer, ends), 5.0) else "records waiting"
    except asyncio.TimeoutError:
        return "its positions unknown"


async def _at(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


async def assign_all(consumer: AIOKafkaConsumer, topic: str,
                     timeout_s: float | None = None) -> list[TopicPartition]:
    """Assign every partition of ``topic``, waiting at most ``timeout_s`` (None: as long
    as it takes; 0: one metadata update) for a topic just created to have partitions;
    TimeoutError if it has none by then."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout_s is None else loop.time() + timeout_s
    partitions = consumer.partitions_for_topic(topic)
    while not partitions:
        await consumer._client.force_metadata_update()  # the topic was just created
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            break
        if deadline is not None and loop.time() >= deadline:
            raise TimeoutError(f"topic {topic} has no partitions")
        await asyncio.sleep(0.2)
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    return tps


async def _stop_quietly(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer that may have failed. With the broker away, aiokafka's ``stop``
    raises the CancelledError of its own fetch task: that is no reason to stop following
    (and, uncaught, it ended the follower's task as if cancelled)."""
    try:
        await consumer.stop()
    except asyncio.CancelledError as exc:
        if _stopping():
            raise
        log.debug("stopping a consumer: %r", exc)
    except Exception as exc:  # a consumer that never started, a broker away
        log.debug("stopping a consumer: %s: %s", type(exc).__name__, exc)


def _stopping() -> bool:
    """Whether the running task itself is being cancelled (not a CancelledError that
    aiokafka raised from a task of its own)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


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

    async def start(self, *, from_start: bool = True, timeout_s: float | None = 30.0,
                    since: datetime | None = None) -> None:
        """Assign every partition, at its start (or its end; or, with ``since``, at the
        first record stamped then or later); wait at most ``timeout_s`` (None: as long as
        it takes) for a topic just created to have partitions."""
        consumer = self._consumer = AIOKafkaConsumer(**self._options, group_id=None,
                                                     enable_auto_commit=False)
        await consumer.start()
        self._tps = await assign_all(consumer, self.topic, timeout_s)
        if since is not None:
            found = await consumer.offsets_for_times(
                {tp: int(since.timestamp() * 1000) for tp in self._tps})
            later = [tp for tp, at in found.items() if at is None]  # nothing since: its end
            if later:  # (no argument would mean every partition)
                await consumer.seek_to_end(*later)
            for tp, at in found.items():
                if at is not None:
                    consumer.seek(tp, at.offset)
        elif from_start:
            await consumer.seek_to_beginning(*self._tps)
        else:
            await consumer.seek_to_end(*self._tps)

    async def catch_up(self) -> None:
        consumer = self._consumer
        assert consumer is not None, "start() first"
        ends = await consumer.end_offsets(self._tps)
        while not await _at(consumer, ends):
            await self._poll(200)

    @classmethod
    async def read_all(cls, kafka_options: dict, topic: str, apply: Apply) -> None:
        """Apply every record of ``topic`` up to its end as it is now, once (a reader
        started, caught up and stopped)."""
        reader = cls(kafka_options, topic, apply)
        await reader.start(from_start=True)
        try:
            await reader.catch_up()
        finally:
            await reader.stop()

    async def follow(self) -> None:
        """Apply every record as it comes, until cancelled."""
        while True:
            await self._poll(500)

    async def follow_until(self, finished: asyncio.Event, wait_s: float) -> None:
        """:meth:`follow` until ``finished`` is set or ``wait_s`` passes (a failing read
        raises): waiting for the answer to what was just published."""
        follow = asyncio.create_task(self.follow())
        done = asyncio.create_task(finished.wait())
        try:
            await asyncio.wait({follow, done}, timeout=wait_s,
                               return_when=asyncio.FIRST_COMPLETED)
            if follow.done():
                follow.result()
        finally:
            for task in (follow, done):
                task.cancel()
            await asyncio.gather(follow, done, return_exceptions=True)

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
