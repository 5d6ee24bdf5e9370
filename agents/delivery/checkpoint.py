"""Checkpoints: what makes a processed batch durable, in an order a crash cannot break.

A checkpoint takes a *snapshot* between two batches: the offsets processed so
far, the records sent so far, and every vehicle state changed since the last
snapshot, encoded. Then, while processing goes on, it completes in this order,
each step waiting for the broker's acknowledgement of the one before:

1. the alerts, handovers and dead letters of the snapshot; and, while Redis answers,
   the read model's outbox (so a restart, which skips the pings a state already holds,
   does not leave a position or an alert of them out of the read model);
2. the snapshot's vehicle states (one changelog record per changed vehicle),
   each holding the offset of the newest ping it reflects;
3. the snapshot's input offsets (committed by Faust's commit loop from
   :meth:`agents.delivery.transport.BatchConsumer.checkpointed`).

A kill -9 at any moment replays input from the last committed offset:
vehicles whose state was written in step 2 recognise the pings they already
hold by offset and skip them (counted as replays, not late); the others run
them again from their earlier state and raise the same alerts under the same
deterministic ids, which step 1 may already have delivered: a consumer sees at
most a repeat of an id, never a loss or a different alert.
"""

from __future__ import annotations

import asyncio
import logging
import time

from faust.types import TP

from yrd_hazmat import metrics

from agents.delivery.outputs import Outputs
from agents.vehicles import VehicleStates

log = logging.getLogger(__name__)


class Checkpoint:
    """Tracks processed offsets and makes them durable every ``interval_s``."""

    def __init__(self, consumer, outputs: Outputs, states: VehicleStates,
                 interval_s: float, crash=None, readmodel=None) -> None:
        self._consumer = consumer
        self.readmodel = readmodel
        self._crash = crash
        self.outputs = outputs
        self.states = states
        self.interval_s = interval_s
        self.processed: dict[TP, int] = {}
        self._taken: dict[TP, int] = {}
        """The offsets of the last snapshot."""
        self._last = time.monotonic()
        self._completing: asyncio.Task | None = None
        self.stopping = False
        """Set when the worker stops: a failure then is not a crash."""

    def done(self, tp: TP, next_offset: int) -> None:
        """Every record of ``tp`` below ``next_offset`` has been processed."""
        self.processed[tp] = next_offset

    @property
    def due(self) -> bool:
        """Time for a snapshot (and the previous one is complete)."""
        return (time.monotonic() - self._last >= self.interval_s
                and (self._completing is None or self._completing.done()))

    @property
    def pending(self) -> bool:
        """Whether anything processed is not yet in a snapshot."""
        return bool(self.states.dirty) or len(self.outputs) > 0 or self.processed != self._taken

    def start(self) -> asyncio.Task:
        """Take a snapshot now (call between batches) and complete it in the background."""
        started = time.monotonic()
        offsets = dict(self.processed)
        sent = self.outputs.take()
        states = self.states.take()
        self._taken = offsets
        self._last = started
        previous = self._completing
        self._completing = asyncio.ensure_future(
            self._complete(previous, offsets, sent, states, started))
        return self._completing

    async def run(self) -> None:
        """A snapshot, completed before returning (rebalance, stop, tests)."""
        await self.start()

    async def _complete(self, previous, offsets, sent, states, started: float) -> None:
        try:
            if previous is not None:
                await asyncio.shield(previous)          # snapshots complete in order
            await self._steps(offsets, sent, states, started)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.stopping:  # the producer may be gone already: the restart replays
                log.warning("checkpoint at stop not completed (%s: %s); the restart replays "
                            "from the last one", type(exc).__name__, exc)
                return
            # Offsets beyond this snapshot would no longer be backed by durable states:
            # stop the worker; its restart replays from the last complete checkpoint.
            log.critical("checkpoint failed (%s: %s); stopping the worker", type(exc).__name__, exc)
            if self._crash is not None:
                await self._crash(exc)
            raise

    async def _steps(self, offsets, sent, states, started: float) -> None:
        await self.outputs.wait(sent)                   # 1. alerts, handovers, dead letters,
        if self.readmodel is not None and self.readmodel.healthy:
            await self.readmodel.flush()                #    the read model (Redis timeout bounds it)
        written = await self.outputs.send_batches(self.states.changelog_topic, states)
        await self.outputs.wait(written)                # 2. the states that record them
        consumer = self._consumer()
        consumer.checkpointed(offsets)                  # 3. offsets, committed by Faust,
        await consumer.commit()                         #    now rather than at its next turn
        metrics.CHECKPOINT_SECONDS.observe(time.monotonic() - started)
        metrics.CHECKPOINT_STATES.inc(len(states))
        metrics.VEHICLES_TRACKED.set(len(self.states))

    def forget(self, tps: set[TP]) -> None:
        for tp in tps:
            self.processed.pop(tp, None)
            self._taken.pop(tp, None)
        self._consumer().forget(tps)
