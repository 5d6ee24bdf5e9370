"""Where each partition's processing stands, and what to do when delivery disagrees.

The worker processes a partition's records exactly once, in offset order. Faust and
aiokafka do not promise that by themselves: after a rebalance Faust seeks back to the
committed offset (records come again), stock Faust drops events fetched before a
rebalance, after a restart the consumer was seen positioned at the log's end, and under
load a partition was seen to stop delivering for good. :class:`Positions` keeps, per
partition, the next offset to process and decides for each delivered batch which of its
records are new (:meth:`Positions.unprocessed`); :meth:`Positions.watch` resumes a
partition that has records waiting but delivers nothing.
"""

from __future__ import annotations

import logging
import time

from faust.types import TP

from yrd_hazmat import metrics
from yrd_hazmat.core.replays import unprocessed

from agents.delivery.checkpoint import Checkpoint

log = logging.getLogger(__name__)

QUIET_S = 5.0
"""No batch at all for this long, with records waiting: a partition is stalled."""


class Positions:
    """Per partition of the batched topics: the next offset to process, when a batch last
    arrived; asked of the broker after an assignment."""

    def __init__(self, app, checkpoint: Checkpoint, topic: str) -> None:
        self.app = app
        self.checkpoint = checkpoint
        self.topic = topic
        """The pings topic (the one whose delivery is timed and watched)."""
        self._resume_at: dict[TP, int] = {}
        """Per partition, where processing resumes after an assignment (asked of the broker)."""
        self._last_batch_at: dict[TP, float] = {}
        """Per partition, when a batch of it last reached the agent (monotonic seconds)."""
        self._assigned_at = time.monotonic()

    def arrived(self, message) -> None:
        """A batch reached the agent: note when, and time its way here (metrics): from its
        oldest record's timestamp until the consumer thread took it from the fetcher
        (producer linger, broker, fetch), and from there until now (thread hop, stream
        queue, the previous batch)."""
        self._last_batch_at[message.tp] = time.monotonic()
        taken_at = getattr(message, "taken_at", None)
        if taken_at is None or message.tp.topic != self.topic:  # (not the timer's ticks)
            return
        first = message.records[0].timestamp if message.records else None
        if first is not None:
            metrics.DELIVERY_FETCH.observe(max(0.0, taken_at - first / 1000.0))
        metrics.DELIVERY_QUEUE.observe(max(0.0, time.time() - taken_at))

    async def next_offset(self, tp: TP) -> int:
        """The next offset of ``tp`` to process: after the last one processed here, or, for
        a partition not processed since its assignment, where the broker says it resumes."""
        expected = self.checkpoint.processed.get(tp)
        if expected is None:
            expected = self._resume_at.get(tp)
        if expected is None:
            expected = self._resume_at[tp] = await self.app.consumer.resume_offset(tp)
            log.info("%s: processing resumes at offset %d", tp, expected)
        return expected

    async def unprocessed(self, message) -> list:
        """The records of a batch this worker has not processed yet.

        Records below the partition's next expected offset (the last processed one, or
        after an assignment the one the broker says processing resumes at) were processed
        already and are dropped. A batch taken from a position beyond it means records
        were skipped on their way here (stock Faust drops events fetched before a
        rebalance, and after a restart the consumer was seen positioned at the log's
        end): the partition is sought back to the expected offset and the batch dropped,
        so nothing is lost. A gap with the position where expected is the log's own
        (transaction markers, compaction) and is accepted.
        """
        tp = message.tp
        expected = await self.next_offset(tp)
        if message.first_offset == expected:
            return message.records
        consumer = self.app.consumer
        if message.first_offset > expected:
            skipped_to = consumer.unreadable_until.get(tp, -1)
            if (message.fetched_from is not None and message.fetched_from > expected
                    and not skipped_to >= message.fetched_from):  # (unreadable: skipped on purpose)
                metrics.DELIVERY_GAPS.inc()
                log.warning("%s: batch from offset %d, expected %d: seeking back", tp,
                            message.first_offset, expected)
                await consumer.seek(tp, expected)
                return []
            return message.records
        fresh = unprocessed(message.records, expected)
        metrics.PINGS_REPLAYED.inc(len(message.records) - len(fresh))
        return fresh

    def assigned(self) -> None:
        """A new assignment: every partition asks the broker again where it resumes."""
        self._resume_at.clear()
        self._last_batch_at.clear()
        self._assigned_at = time.monotonic()

    async def watch(self) -> None:
        """Self-heal a partition that has records waiting but delivers nothing.

        The kill -9 test saw, rarely and under load, a restarted worker hold its
        partitions, report ready, and never receive a batch. When the agent has received
        no batch at all for :data:`QUIET_S`, each partition of the topic whose log end is
        beyond what was processed has its flow resumed and is sought back to where
        processing must go on (logged, counted in ``yrd_delivery_stalls_total``)."""
        app = self.app
        consumer = app.consumer
        if app.rebalancing or consumer is None:
            return
        now = time.monotonic()
        last = self._last_batch_at
        if now - max(last.values(), default=self._assigned_at) < QUIET_S:
            return  # the agent is receiving batches: a partition behind others is not stuck
        tps = {tp for tp in consumer.assignment() if tp.topic == self.topic}
        quiet = [tp for tp in tps if now - last.get(tp, self._assigned_at) > QUIET_S]
        if not quiet:
            return
        ends = await consumer.highwaters(*quiet)
        stalled = []
        for tp in quiet:
            done = await self.next_offset(tp)
            if (ends.get(tp) or 0) > done:
                stalled.append((tp, done))
        if not stalled:
            return
        metrics.DELIVERY_STALLS.inc(len(stalled))
        log.warning("no batch for %.0f s from %s with records waiting: resuming and seeking "
                    "back", QUIET_S,
                    ", ".join(f"{tp.topic}[{tp.partition}]@{done}" for tp, done in stalled))
        app.flow_control.resume()
        consumer.resume_flow()
        consumer.resume_partitions({tp for tp, _ in stalled})
        for tp, done in stalled:
            await consumer.seek(tp, done)
            last[tp] = now
