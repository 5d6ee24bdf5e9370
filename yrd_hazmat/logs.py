"""Bounded logging: repeated log lines (a broker or Redis outage) are rate limited.

During a broker outage the Kafka client logs the same few errors in a tight
loop (aiokafka's ``Unable connect to node with id %s: %s``, ``Unable to update
metadata from %s``, ``Failed fetch messages from %s: %s``, ``Group Coordinator
Request failed: %s``; Faust's producer and mode's services add theirs, some
with a traceback): tens of thousands of lines in 30 s, which fill disks and
bury the one line that matters. During a Redis outage the worker logs the same
exception for every batch.

:class:`RateLimitFilter` lets through at most ``burst`` records of one *kind*
(logger, level, message template with its digits blanked, exception type) per
``window_s`` window; the rest of the window's records of that kind are
counted, and when the window ends (or, at the latest, before the next record
of that kind) one summary line says how many were suppressed::

    [aiokafka] suppressed 1984 similar messages in the last 30 s: 'Unable connect to node with id %s: %s'

Within a window only the first record of a kind keeps its traceback; the
following ones say "(traceback as above)". Records of any other kind pass
untouched, so an outage costs a bounded number of lines: about
``kinds x (burst + 1)`` per window.

``install()`` is called once the worker's logging is configured (Faust/mode
set up the root logger's handlers at worker start); it attaches one filter to
every handler of the root logger, is idempotent, and starts a daemon thread
that writes the summaries of windows that ended while nothing else was logged.
"""

from __future__ import annotations

import atexit
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from dataclasses import dataclass

BURST = 5
"""Records of one kind let through per window."""
WINDOW_S = 30.0
"""Length of a rate-limiting window, seconds."""
SWEEP_INTERVAL_S = 1.0
"""How often the background thread writes the summaries of ended windows."""

_DIGITS = re.compile(r"\d+")
_SUMMARY = "_yrd_rate_limit_summary"


def kind_of(record: logging.LogRecord) -> tuple[str, int, str, str]:
    """What makes two records "similar": logger, level, message template (digits
    blanked, for messages formatted before logging), exception type."""
    template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
    exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
    return record.name, record.levelno, _DIGITS.sub("#", template[:500]), exc


@dataclass
class _Window:
    started: float
    template: str
    passed: int = 1
    suppressed: int = 0
    example: logging.LogRecord | None = None
    """The last suppressed record: the summary takes its logger, level and place."""


class RateLimitFilter(logging.Filter):
    """At most ``burst`` records of a kind per ``window_s``, then one summary line.

    A filter instance belongs to one handler (summaries go to that handler), so
    give each handler its own; :func:`install` does.
    """

    def __init__(
        self,
        handler: logging.Handler | None = None,
        *,
        burst: int = BURST,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.handler = handler
        self.burst = burst
        self.window_s = window_s
        self.clock = clock
        self._windows: dict[tuple, _Window] = {}
        self._lock = threading.RLock()
        self._next_due = float("inf")  # earliest end of a window with suppressed records
        self._next_cleanup = clock() + window_s  # forget ended windows (bounded memory)

    # --- logging.Filter -----------------------------------------------------------
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _SUMMARY, False):
            return True
        now = self.clock()
        with self._lock:
            if now >= self._next_due or now >= self._next_cleanup:
                self._sweep(now)
            key = kind_of(record)
            window = self._windows.get(key)
            if window is None or now - window.started >= self.window_s:
                if window is not None and window.suppressed:
                    self._emit(window, now)
                self._windows[key] = _Window(started=now, template=key[2])
                return True
            if window.passed < self.burst:
                window.passed += 1
                if record.exc_info:  # the first one of the window showed it
                    record.msg = f"{record.msg} (traceback as above)"
                    record.exc_info = None
                    record.exc_text = None
                return True
            window.suppressed += 1
            window.example = record
            self._next_due = min(self._next_due, window.started + self.window_s)
            return False

    # --- summaries ----------------------------------------------------------------
    def sweep(self) -> None:
        """Write the summaries of windows that have ended (the background thread calls
        this every second; :func:`flush` at exit)."""
        with self._lock:
            now = self.clock()
            if now >= self._next_due or now >= self._next_cleanup:
                self._sweep(now)

    def flush(self) -> None:
        """Write the summaries of every window with suppressed records, ended or not."""
        with self._lock:
            now = self.clock()
            for window in self._windows.values():
                if window.suppressed:
                    self._emit(window, now)
            self._windows.clear()
            self._next_due = float("inf")

    def _sweep(self, now: float) -> None:
        """Summarise and forget the windows that have ended."""
        due = float("inf")
        for key, window in list(self._windows.items()):
            end = window.started + self.window_s
            if now >= end:
                if window.suppressed:
                    self._emit(window, now)
                del self._windows[key]
            elif window.suppressed:
                due = min(due, end)
        self._next_due = due
        self._next_cleanup = now + self.window_s

    def _emit(self, window: _Window, now: float) -> None:
        example = window.example
        if example is None or self.handler is None:
            window.suppressed = 0
            return
        span = min(self.window_s, max(1.0, now - window.started))
        summary = logging.LogRecord(
            example.name, example.levelno, example.pathname, example.lineno,
            "[%s] suppressed %d similar messages in the last %d s: %r",
            (example.name, window.suppressed, round(span), window.template), None,
            func=example.funcName,
        )
        setattr(summary, _SUMMARY, True)
        window.suppressed = 0
        window.example = None
        self.handler.handle(summary)


_installed: list[RateLimitFilter] = []
_install_lock = threading.Lock()
_sweeper: threading.Thread | None = None


def install(*, burst: int = BURST, window_s: float = WINDOW_S) -> list[RateLimitFilter]:
    """Attach a :class:`RateLimitFilter` to every handler of the root logger that has
    none yet (idempotent: call it again after handlers are added); returns the filters
    in force."""
    global _sweeper
    with _install_lock:
        for handler in logging.getLogger().handlers:
            if any(isinstance(f, RateLimitFilter) for f in handler.filters):
                continue
            limiter = RateLimitFilter(handler, burst=burst, window_s=window_s)
            handler.addFilter(limiter)
            _installed.append(limiter)
        if _sweeper is None:
            _sweeper = threading.Thread(target=_sweep_forever, name="log-rate-limit",
                                        daemon=True)
            _sweeper.start()
            atexit.register(_flush_all)
        return [f for h in logging.getLogger().handlers for f in h.filters
                if isinstance(f, RateLimitFilter)]


def _sweep_forever() -> None:
    while True:
        time.sleep(SWEEP_INTERVAL_S)
        for limiter in list(_installed):
            try:
                limiter.sweep()
            except Exception:  # noqa: BLE001  (a closed stream at exit: nothing to do)
                pass


def _flush_all() -> None:
    for limiter in list(_installed):
        try:
            limiter.flush()
        except Exception:  # noqa: BLE001
            pass


def dump_tasks_on(signum: int, *other_loops: Callable[[], Any]) -> None:
    """On ``signum`` (``kill -USR1 <pid>``), log where every asyncio task of the running
    loop (and of ``other_loops()``, e.g. Faust's consumer thread) is waiting: for a worker
    that seems stuck, without stopping it."""
    import asyncio

    loop = asyncio.get_running_loop()

    def dump() -> None:
        lines = []
        loops = [loop] + [get() for get in other_loops]
        for task in [t for each in loops if each is not None for t in asyncio.all_tasks(each)]:
            lines.append(f"{task.get_name()}:")
            coro = task.get_coro()
            while coro is not None:  # the whole await chain, innermost last
                frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
                if frame is not None:
                    lines.append(f"    {frame.f_code.co_filename}:{frame.f_lineno} "
                                 f"{frame.f_code.co_name}")
                coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        logging.getLogger(__name__).warning("asyncio tasks:\n%s", "\n".join(lines))

    loop.add_signal_handler(signum, dump)
