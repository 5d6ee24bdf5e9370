"""Flushing the outbox: when to write it, and what an outage does.

The worker calls :meth:`Flusher.submit` per batch: synchronous, no I/O, never
raises. A flusher task (:meth:`Flusher.run`) writes the outbox every
``interval_s`` in one round trip. If Redis is down or hung, the flush fails
within the socket timeout, the outbox keeps what it took (and goes on merging),
and the flusher retries with a capped backoff; once Redis is back the whole
outbox is written, so every vehicle's latest position and every alert raised
meanwhile catch up without waiting for the vehicle's next ping. An outage is
logged in two lines (a WARNING when it starts, an INFO when it ends).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import datetime

from redis.exceptions import (
    ConnectionError as RedisConnectionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TimeoutError as RedisTimeoutError,
)

from .. import metrics
from ..core.models import Alert
from .outbox import Outbox, PendingAlert, PendingVehicle, VehicleUpdate
from .writer import Writer

log = logging.getLogger(__package__)
"""The read model's one logger (``yrd_hazmat.readmodel``), whichever module logs."""

_OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError,
                  ReadOnlyError, OutOfMemoryError)
_TRANSIENT_PREFIXES = ("OOM", "BUSY", "LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")
_POISON_LIMIT = 5
"""Consecutive failures with a (non-transient) Redis error after which a flush's data is
dropped: a script error that retrying cannot fix must not block the read model for good."""


class FlushError(Exception):
    """A flush that did not reach Redis (the outbox keeps its data)."""


class Flusher:
    """Moves the outbox into Redis through the writer, and keeps it through outages."""

    def __init__(
        self,
        outbox: Outbox,
        writer: Writer,
        *,
        interval_s: float,
        max_backoff_s: float,
        timeout_s: float,
        secret: str | None,
    ) -> None:
        self.outbox = outbox
        self.writer = writer
        self.interval_s = interval_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self._secret = secret
        self._lock = asyncio.Lock()
        self._healthy = True
        self._closed = False
        self._outage_started = 0.0
        self._outage_failures = 0
        self._outage_dropped_logged = False
        self._dropped_reported = 0
        self._poison_failures = 0
        self._submit_errors = 0

    @property
    def healthy(self) -> bool:
        """False from a failed flush until one reaches Redis again."""
        return self._healthy

    @property
    def pending(self) -> tuple[int, int]:
        """(vehicles, alerts) waiting in the outbox."""
        return len(self.outbox.vehicles), len(self.outbox.alerts)

    def submit(
        self, updates: Iterable[VehicleUpdate], alerts: Iterable[Alert], now: datetime
    ) -> None:
        """Queue one processed batch for the next flush. No I/O; never raises."""
        try:
            self.outbox.add(updates, alerts, now)
            self._report_outbox()
        except Exception:  # a view must never stop the stream
            self._submit_errors += 1
            if self._submit_errors == 1 or self._submit_errors % 10_000 == 0:
                log.exception("read model: could not queue a batch (%d so far)",
                              self._submit_errors)

    async def flush(self) -> bool:
        """One attempt to write the outbox; False if Redis could not be reached (kept)."""
        try:
            await self.flush_or_raise()
        except FlushError:
            return False
        return True

    async def run(self, interval_s: float | None = None) -> None:
        """Flush every ``interval_s`` until :meth:`close` (or cancellation); after a
        failure retry with a backoff doubling up to ``max_backoff_s``."""
        interval = interval_s if interval_s is not None else self.interval_s
        delay = interval
        while not self._closed:
            await asyncio.sleep(delay)
            if self._closed:
                break
            if await self.flush():
                delay = interval
            else:
                delay = min(self.max_backoff_s, max(delay, interval, 0.1) * 2)

    async def close(self, timeout_s: float) -> None:
        """Stop flushing; one last flush attempt of at most ``timeout_s``."""
        self._closed = True
        vehicles, alerts = self.pending
        if vehicles or alerts:
            try:
                ok = await asyncio.wait_for(self.flush(), timeout_s)
            except asyncio.TimeoutError:
                ok = False
            if not ok:
                vehicles, alerts = self.pending
                log.warning("read model: closing with %d vehicle updates and %d alerts not "
                            "written to Redis", vehicles, alerts)

    async def flush_or_raise(self) -> None:
        """One attempt to write the outbox; raises :class:`FlushError` if it failed."""
        async with self._lock:
            vehicles, alerts = self.outbox.take()
            if not vehicles and not alerts and self._healthy:
                return
            started = time.perf_counter()
            try:
                if vehicles or alerts:
                    counts = await asyncio.wait_for(
                        self.writer.write(vehicles.values(), alerts), self.timeout_s
                    )
                else:  # in an outage with nothing to write: is Redis back?
                    await asyncio.wait_for(self.writer.ping(), self.timeout_s)
                    counts = [0, 0, 0, 0]
            except asyncio.CancelledError:  # the flusher was stopped mid-flush: keep the data
                self.outbox.restore(vehicles, alerts)
                raise
            except Exception as error:  # noqa: BLE001 - every failure keeps the data
                self._failed(vehicles, alerts, error)
                raise FlushError(self.text(error)) from None
            finally:
                metrics.READMODEL_FLUSH_SECONDS.observe(time.perf_counter() - started)
            self._succeeded(counts)
            self._report_outbox()

    def text(self, error: BaseException) -> str:
        """The error as one line, without the Redis password."""
        text = f"{type(error).__name__}: {error}".strip()
        if self._secret:
            text = text.replace(self._secret, "****")
        return text

    def _failed(
        self, vehicles: dict[str, PendingVehicle], alerts: list[PendingAlert], error: BaseException
    ) -> None:
        metrics.READMODEL_FLUSH_FAILURES.inc()
        outage = isinstance(error, _OUTAGE_ERRORS) or (
            isinstance(error, ResponseError) and str(error).startswith(_TRANSIENT_PREFIXES)
        )
        if outage or not (vehicles or alerts):
            self._poison_failures = 0
        else:
            self._poison_failures += 1
        if self._poison_failures >= _POISON_LIMIT:
            log.error("read model: Redis rejected the same flush %d times (%s); dropping "
                      "%d vehicle updates and %d alerts", self._poison_failures,
                      self.text(error), len(vehicles), len(alerts))
            self._poison_failures = 0
        else:
            self.outbox.restore(vehicles, alerts)
        if self._healthy:
            self._healthy = False
            self._outage_started = time.monotonic()
            self._outage_failures = 0
            self._outage_dropped_logged = False
            metrics.READMODEL_HEALTHY.set(0)
            log.warning(
                "read model: Redis unavailable (%s); keeping updates in memory and retrying "
                "every %.1f-%.1f s", self.text(error), self.interval_s, self.max_backoff_s,
                exc_info=not (outage or isinstance(error, RedisError)),
            )
        self._outage_failures += 1
        self._report_outbox()

    def _succeeded(self, counts: list[int]) -> None:
        self._poison_failures = 0
        if self._healthy:
            return
        self._healthy = True
        metrics.READMODEL_HEALTHY.set(1)
        log.info(
            "read model: Redis back after %.1f s (%d failed flushes); caught up %d vehicles "
            "(%d older than stored, skipped) and %d alerts (%d replays skipped)",
            time.monotonic() - self._outage_started, self._outage_failures, *counts,
        )

    def _report_outbox(self) -> None:
        outbox = self.outbox
        metrics.READMODEL_OUTBOX.labels(kind="vehicles").set(len(outbox.vehicles))
        metrics.READMODEL_OUTBOX.labels(kind="alerts").set(len(outbox.alerts))
        new_drops = outbox.dropped - self._dropped_reported
        if new_drops:
            self._dropped_reported = outbox.dropped
            metrics.READMODEL_ALERTS_DROPPED.inc(new_drops)
            if not self._outage_dropped_logged:
                self._outage_dropped_logged = True
                log.warning(
                    "read model: more than %d alerts waiting for Redis; older alerts keep "
                    "their open/clear change but not their recent-list entry (%d so far; "
                    "logged once per outage)", outbox.max_alerts, outbox.dropped,
                )
