"""Batch delivery: one Faust event per fetched partition batch, offsets committed by checkpoint.

Faust delivers every Kafka record as its own event: the conductor, a channel
queue and the stream's drain loop run per record, which caps a worker at a few
thousand records per second whatever the rules cost. This module extends Faust
where it is meant to be extended, its transport (registered under the URL
scheme ``yrdkafka://`` through the ``faust.transports`` entry point, the way
Faust registers its own), with a consumer that changes two things for the
topics an app declares *batched* (``app.batch_topics``):

- **Delivery**: all records fetched for one partition arrive as one
  :class:`BatchMessage` whose ``value`` is the list of aiokafka records, in
  offset order. Records of other topics are delivered one by one, as stock
  Faust does.
- **Commits**: Faust's per-record acknowledgement is off for batched topics
  (``acks=False`` on their topics). The consumer commits, for each partition,
  the offset the application declared *checkpointed* with
  :meth:`BatchConsumer.checkpointed`: every record below it has been processed
  and its effects (alerts, dead letters, vehicle state) acknowledged by the
  broker. Faust's own commit loop, its commit on rebalance and on stop then
  commit exactly that, never an offset whose records were dropped or still in
  flight (stock Faust acknowledges events it skips after a rebalance, and the
  event a stopping worker was processing).

Everything else is Faust's: group membership, rebalancing, table recovery,
seeking back to the committed offsets after a rebalance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.tuples import ConsumerMessage

SCHEME = "yrdkafka"


class BatchMessage(ConsumerMessage):
    """The records fetched for one partition in one poll, as one Faust message.

    ``offset`` is the last record's offset (what Faust's bookkeeping sees),
    ``first_offset`` the first one's; ``value`` holds the aiokafka records.
    """

    __slots__ = ("records", "first_offset")

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
        return consumer


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, delivering batched topics a partition batch at a time."""

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._checkpointed: dict[TP, int] = {}
        super().__init__(*args, **kwargs)

    @property
    def batch_topics(self) -> frozenset[str]:
        return getattr(self.app, "batch_topics", frozenset())

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        """Fetch; yield one :class:`BatchMessage` per partition of a batched topic."""
        records, active_partitions = await self._wait_next_records(timeout)
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

    def committed_offset(self, tp: TP) -> int | None:
        """The offset committed for ``tp`` as this consumer last saw it (None: unknown)."""
        return self._committed_offset.get(tp)


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`BatchConsumer`."""

    Consumer = BatchConsumer


def register() -> None:
    """Make ``yrdkafka://`` known to Faust even when the entry point is not installed."""
    TRANSPORTS.aliases.setdefault(SCHEME, f"{__name__}:Transport")
