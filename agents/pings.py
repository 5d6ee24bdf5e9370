"""The pings agent: fetched batches of ``yrd.pings`` through the rules to ``yrd.alerts``."""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from yrd_hazmat import logs, metrics
from yrd_hazmat.core.replays import unprocessed
from yrd_hazmat.loopwatch import LoopWatch, freeze_heap, watch_gc
from yrd_hazmat.readmodel import ReadModel

from agents.app import (
    app, permits_table, pings_topic, settings, ticks_topic, vehicle_table,
)
from agents.checkpoint import Checkpoint
from agents.outputs import Outputs
from agents.processor import PingProcessor
from agents.vehicles import VehicleStates
from agents.zones import zone_loader, zone_registry

log = logging.getLogger(__name__)

states = VehicleStates(vehicle_table)
outputs = Outputs(lambda: app.producer._ensure_producer())
readmodel = ReadModel.from_settings(settings)
checkpoint = Checkpoint(lambda: app.consumer, outputs, states, settings.checkpoint_s, app.crash,
                        readmodel)
processing = asyncio.Lock()
"""Held while a batch or a checkpoint runs, so a rebalance checkpoints between batches."""

processor = PingProcessor(
    settings,
    states=states,
    outputs=outputs,
    permits=permits_table,
    zones=zone_registry,
    readmodel=readmodel,
)


@app.agent(pings_topic, concurrency=1)
async def process_pings(stream):
    """One event per fetched partition batch of pings (or timer ticks), in offset order.

    Concurrency 1 keeps each vehicle's pings in order and lets a checkpoint see
    a consistent set of processed offsets. Records below the partition's next
    expected offset were processed by this worker already (Faust seeks back to
    the committed offset after a rebalance) and are skipped.
    """
    await zone_loader.ready.wait()  # no ping is judged against a partial set of zones
    processor.prepare()
    log.info("%d objects built at start moved out of the garbage collector's way",
             freeze_heap())
    try:
        async for event in stream.events():
            message = event.message
            _last_batch_at[message.tp] = time.monotonic()
            _time_delivery(message)
            async with processing:
                records = await _unprocessed(message)
                if records:
                    await processor.handle(message.tp, records)
                    checkpoint.done(message.tp, message.offset + 1)
                if checkpoint.due:
                    checkpoint.start()  # completes while the next batches are processed
    finally:
        checkpoint.stopping = True
        try:
            await asyncio.wait_for(asyncio.shield(checkpoint.run()), timeout=10)
        except Exception:  # a stop must not hang on a broker that is gone
            log.warning("final checkpoint not completed; the restart replays from the last one")


def _time_delivery(message) -> None:
    """Where a batch's oldest record waited before the agent took it: from its record
    timestamp until the consumer thread took it from the fetcher (producer linger, broker,
    fetch), and from there until the agent started on it (thread hop, stream queue, the
    previous batch)."""
    taken_at = getattr(message, "taken_at", None)
    if taken_at is None or message.tp.topic != settings.topic_pings:  # (not the timer's ticks)
        return
    first = message.records[0].timestamp if message.records else None
    if first is not None:
        metrics.DELIVERY_FETCH.observe(max(0.0, taken_at - first / 1000.0))
    metrics.DELIVERY_QUEUE.observe(max(0.0, time.time() - taken_at))


_last_batch_at: dict = {}
"""Per partition, when a batch of it last reached the agent (monotonic seconds)."""
_assigned_at = time.monotonic()

_resume_at: dict = {}
"""Per partition, where processing resumes after an assignment (asked of the broker)."""


async def _next_offset(tp) -> int:
    """The next offset of ``tp`` to process: after the last one processed here, or, for a
    partition not processed since its assignment, where the broker says it resumes."""
    expected = checkpoint.processed.get(tp)
    if expected is None:
        expected = _resume_at.get(tp)
    if expected is None:
        expected = _resume_at[tp] = await app.consumer.resume_offset(tp)
        log.info("%s: processing resumes at offset %d", tp, expected)
    return expected


async def _unprocessed(message) -> list:
    """The records of a batch this worker has not processed yet.

    Records below the partition's next expected offset (the last processed one, or
    after an assignment the one the broker says processing resumes at) were processed
    already and are dropped. A batch taken from a position beyond it means records were
    skipped on their way here (stock Faust drops events fetched before a rebalance, and
    after a restart the consumer was seen positioned at the log's end): the partition is
    sought back to the expected offset and the batch dropped, so nothing is lost. A gap
    with the position where expected is the log's own (transaction markers,
    compaction) and is accepted.
    """
    tp = message.tp
    expected = await _next_offset(tp)
    if message.first_offset == expected:
        return message.records
    if message.first_offset > expected:
        skipped_to = app.consumer.unreadable_until.get(tp, -1)
        if (message.fetched_from is not None and message.fetched_from > expected
                and not skipped_to >= message.fetched_from):  # (unreadable: skipped on purpose)
            metrics.DELIVERY_GAPS.inc()
            log.warning("%s: batch from offset %d, expected %d: seeking back", tp,
                        message.first_offset, expected)
            await app.consumer.seek(tp, expected)
            return []
        return message.records
    fresh = unprocessed(message.records, expected)
    metrics.PINGS_REPLAYED.inc(len(message.records) - len(fresh))
    return fresh


@app.on_partitions_revoked.connect
async def _checkpoint_before_revoke(sender, revoked, **kwargs) -> None:
    """Make everything processed durable before another worker may take the partitions."""
    async with processing:
        try:
            await checkpoint.run()
        except Exception:
            log.exception("checkpoint before a rebalance failed; the new owner replays")


@app.on_partitions_assigned.connect
async def _forget_revoked(sender, assigned, **kwargs) -> None:
    """Drop what this worker held for partitions it no longer has."""
    async with processing:
        held = {tp.partition for tp in assigned if tp.topic == settings.topic_pings}
        gone = {s.partition for s in states.live.values()} - held
        if gone:
            dropped = states.forget_partitions(gone)
            log.info("dropped %d vehicles of partitions %s", dropped, sorted(gone))
        checkpoint.forget({tp for tp in checkpoint.processed if tp not in assigned})
        _resume_at.clear()
        _last_batch_at.clear()
        global _assigned_at
        _assigned_at = time.monotonic()


QUIET_S = 5.0


@app.timer(interval=2.0)
async def watch_delivery() -> None:
    """Self-heal a partition that has records waiting but delivers nothing.

    The kill -9 test saw, rarely and under load, a restarted worker hold its partitions,
    report ready, and never receive a batch. Every 2 s: when the agent has received no
    batch at all for ``QUIET_S``, each pings partition whose log end is beyond what was
    processed has its flow resumed and is sought back to where processing must go on
    (logged, counted in ``yrd_delivery_stalls_total``)."""
    consumer = app.consumer
    if app.rebalancing or consumer is None:
        return
    now = time.monotonic()
    if now - max(_last_batch_at.values(), default=_assigned_at) < QUIET_S:
        return  # the agent is receiving batches: a partition behind others is not stuck
    tps = {tp for tp in consumer.assignment() if tp.topic == settings.topic_pings}
    quiet = [tp for tp in tps if now - _last_batch_at.get(tp, _assigned_at) > QUIET_S]
    if not quiet:
        return
    ends = await consumer.highwaters(*quiet)
    stalled = []
    for tp in quiet:
        done = await _next_offset(tp)
        if (ends.get(tp) or 0) > done:
            stalled.append((tp, done))
    if not stalled:
        return
    metrics.DELIVERY_STALLS.inc(len(stalled))
    log.warning("no batch for %.0f s from %s with records waiting: resuming and seeking back",
                QUIET_S,
                ", ".join(f"{tp.topic}[{tp.partition}]@{done}" for tp, done in stalled))
    app.flow_control.resume()
    consumer.resume_flow()
    consumer.resume_partitions({tp for tp, _ in stalled})
    for tp, done in stalled:
        await consumer.seek(tp, done)
        _last_batch_at[tp] = now


@app.timer(interval=settings.checkpoint_s)
async def checkpoint_when_idle() -> None:
    """A checkpoint also when no batch arrives, so the last pings of a burst become
    durable (and their offsets committed) within ``YRD_CHECKPOINT_S``."""
    if checkpoint.pending and checkpoint.due:
        async with processing:
            completing = checkpoint.start()
        await completing


@app.task
async def serve_metrics() -> None:
    """Expose Prometheus metrics once the worker starts; bound repeated log lines."""
    logs.install()
    logs.dump_tasks_on(signal.SIGUSR1, lambda: getattr(app.consumer._thread, "thread_loop", None))
    metrics.serve(settings.metrics_port, settings.metrics_host)
    _watch_loops()
    log.info("metrics on http://%s:%s/metrics; settings: %s",
             settings.metrics_host, settings.metrics_port, settings.summary())


def _watch_loops() -> None:
    """Lag metrics for the main loop and the consumer thread's, and a logged stack when
    one of them is blocked (see :mod:`yrd_hazmat.loopwatch`)."""
    watch_gc()
    asyncio.ensure_future(LoopWatch("main").run())
    thread_loop = getattr(app.consumer._thread, "thread_loop", None)
    if thread_loop is not None:
        asyncio.run_coroutine_threadsafe(LoopWatch("consumer").run(), thread_loop)


@app.task
async def flush_readmodel() -> None:
    """Write the read model every ``YRD_READMODEL_FLUSH_S``; catches up after an outage."""
    try:
        await processor.readmodel.run(settings.readmodel_flush_s)
    finally:
        await processor.readmodel.close()


@app.timer(interval=settings.signal_check_interval_s)
async def check_silence() -> None:
    """Tick every silent vehicle on a trip, so SIGNAL_LOST fires with no ping arriving."""
    sent = await processor.send_ticks(ticks_topic)
    if sent:
        log.info("ticked %d silent vehicles", sent)
