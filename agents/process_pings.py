"""The pings agent and the worker's timers: fetched batches of ``yrd.pings`` (and the timer's
ticks) through the shell (:mod:`agents.processor`) to the output topics; a checkpoint when
due, the watchdog of delivery, the read model's writer, the silence check, the metrics."""

from __future__ import annotations

import asyncio
import logging
import signal

from yrd_hazmat import logs, metrics
from yrd_hazmat.loopwatch import LoopWatch, freeze_heap, watch_gc
from yrd_hazmat.readmodel import ReadModel

from agents.app import (
    app, permits_table, pings_topic, settings, ticks_topic, vehicle_table,
)
from agents.delivery.checkpoint import Checkpoint
from agents.delivery.outputs import Outputs
from agents.delivery.positions import Positions
from agents.processor import PingProcessor
from agents.vehicles import VehicleStates
from agents.zones import zone_loader, zone_registry

log = logging.getLogger(__name__)

states = VehicleStates(vehicle_table)
outputs = Outputs(lambda: app.producer._ensure_producer())
readmodel = ReadModel.from_settings(settings)
checkpoint = Checkpoint(lambda: app.consumer, outputs, states, settings.checkpoint_s, app.crash,
                        readmodel)
positions = Positions(app, checkpoint, settings.topic_pings)
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
            positions.arrived(message)
            async with processing:
                records = await positions.unprocessed(message)
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
        positions.assigned()


@app.timer(interval=2.0)
async def watch_delivery() -> None:
    """Every 2 s: resume a partition that has records waiting but delivers nothing
    (:meth:`agents.delivery.positions.Positions.watch`)."""
    await positions.watch()


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
