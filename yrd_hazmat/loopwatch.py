"""Event-loop lag: how late the worker's event loop runs, and what held it when it was late.

Every alert waits for the event loop: a callback that runs for half a second
holds every ping behind it for half a second. :class:`LoopWatch` keeps a small
task on the loop that asks to wake every ``interval_s`` and records how late it
woke (``yrd_event_loop_lag_seconds``, per loop). A daemon thread looks at the
same heartbeat; when the loop has not come back for ``report_s`` it logs the
loop thread's Python stack at that moment (once per stall, at most one every
:data:`STACK_LOG_INTERVAL_S`), so the code that blocks the loop is named in the log, not
guessed.

:func:`watch_gc` times Python's garbage collections (``yrd_gc_pause_seconds`` by
generation): a full collection walks every object the worker holds and stops
every thread meanwhile, which is a stall of the same kind.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
import traceback

from . import metrics

log = logging.getLogger(__name__)


class LoopWatch:
    """Measures the lag of one asyncio loop; reports what blocks it for ``report_s``."""

    def __init__(self, name: str, interval_s: float = 0.05, report_s: float = 0.1) -> None:
        self.name = name
        self.interval_s = interval_s
        self.report_s = report_s
        self._beat = time.monotonic()
        self._thread_id: int | None = None
        self._lag = metrics.LOOP_LAG.labels(loop=name)
        self._blocked = metrics.LOOP_BLOCKED.labels(loop=name)

    async def run(self) -> None:
        """The heartbeat; run it as a task on the loop to watch (returns when cancelled)."""
        self._thread_id = threading.get_ident()
        self._beat = time.monotonic()
        running = threading.Event()
        running.set()
        if self.report_s > 0:
            threading.Thread(target=self._watch, args=(running,), name=f"loopwatch-{self.name}",
                             daemon=True).start()
        try:
            while True:
                asked = time.monotonic() + self.interval_s
                await asyncio.sleep(self.interval_s)
                self._beat = now = time.monotonic()
                self._lag.observe(max(0.0, now - asked))
        finally:
            running.clear()

    def _watch(self, running: threading.Event) -> None:
        reported = 0.0
        logged_at, unlogged = -STACK_LOG_INTERVAL_S, 0
        while running.is_set():
            time.sleep(self.interval_s)
            beat = self._beat
            now = time.monotonic()
            late = now - beat - self.interval_s
            if late < self.report_s or reported == beat:
                continue
            reported = beat
            self._blocked.inc()
            if now - logged_at < STACK_LOG_INTERVAL_S:  # a stack costs a stat of every file
                unlogged += 1                           # on it: one a while is enough
                continue
            frame = sys._current_frames().get(self._thread_id)
            stack = "".join(traceback.format_stack(frame, limit=25)) if frame else "(no frame)"
            log.warning("event loop %s blocked for %.0f ms so far (%d stalls since the last "
                        "stack logged), now at:\n%s", self.name, late * 1000, unlogged, stack)
            logged_at, unlogged = now, 0


STACK_LOG_INTERVAL_S = 10.0
"""At most one stack logged per loop in this time (every stall is counted in
``yrd_event_loop_blocked_total``): under a backlog, every long batch is a stall, and the
stack of each cost the worker a few per cent of its time."""


def freeze_heap() -> int:
    """Move every object alive now out of the collector's generations (``gc.freeze``).

    Called once the worker holds what it built at start (Faust, the geography, the
    zones, the permits recovered from the changelog): a full collection then walks only
    what changed since, not tens of thousands of long-lived objects, and stops the
    worker for milliseconds instead of a tenth of a second. Frozen objects are still
    freed when their last reference goes; only a reference cycle among them would stay.
    Returns how many objects were frozen.

    Also spaces the collections out (``GC_THRESHOLDS``): a young collection after
    10,000 allocations instead of 700 (most of a batch's objects are freed by their
    reference count before that), and a full one after 100 collections of the middle
    generation instead of 10. Under load the worker did 17 full collections in 20 s
    (80 ms each); cyclic garbage, which the worker's own data never forms, is still
    collected, only later."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return gc.get_freeze_count()


GC_THRESHOLDS = (10_000, 10, 100)
"""The worker's ``gc.set_threshold`` (Python's defaults: 700, 10, 10)."""


def watch_gc(slow_s: float = 0.1) -> None:
    """Time every garbage collection; log those slower than ``slow_s``. Idempotent."""
    if any(getattr(cb, "_yrd", False) for cb in gc.callbacks):
        return
    started: list[float] = [0.0]

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        generation = info.get("generation", 0)
        metrics.GC_PAUSE.labels(generation=str(generation)).observe(took)
        if took >= slow_s:
            log.warning("garbage collection of generation %d took %.0f ms (%d collected)",
                        generation, took * 1000, info.get("collected", 0))

    callback._yrd = True  # type: ignore[attr-defined]
    gc.callbacks.append(callback)
