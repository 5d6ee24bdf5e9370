"""The archiver: ``yrd-hazmat archive run``. It reads every partition of ``yrd.pings``,
``yrd.alerts``, ``yrd.incidents``, ``yrd.link-states``, ``yrd.uplink-requests`` and
``yrd.uplink-answers``, ``yrd.platform-request-results``, ``yrd.audit`` from where its files
say it stopped
(:mod:`.writer`), turns the records into rows (:mod:`.rows`: province and city by the
jurisdiction index, the carrier by the vehicle register it follows), writes them every
``YRD_ARCHIVE_FLUSH_S`` or ``YRD_ARCHIVE_FLUSH_ROWS``, then commits the offsets to its
consumer group (``YRD_ARCHIVE_GROUP``; they show its lag: where to read comes from the
archive's files, a partition they say nothing of from its start). Every hour (and at start) it
compacts the small files of past days and deletes the days past their retention
(:mod:`.upkeep`). SIGTERM: a last flush, then exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from ..config import Settings
from ..core.geo.jurisdiction import default_index
from ..core.timeutil import CHINA_TZ
from ..follow import TopicReader
from ..register import Register
from ..topics import ensure_topics, wait_for_partitions
from . import metrics, register_snapshot, rows, upkeep, writer
from .store import Store

log = logging.getLogger(__name__)

UPKEEP_EVERY_S = 3600.0
RETRY_S = 2.0
"""A flush the store refused is tried again this often."""


CONVERT = {"link_states": rows.link_states, "uplink_requests": rows.uplink_requests,
           "uplink_answers": rows.uplink_answers, "platform_results": rows.platform_results,
           "audit": rows.audit}


class ArchiveMismatch(RuntimeError):
    """The archive's state does not fit the topics (see :meth:`Archiver._assign`)."""


class Archiver:
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store or Store.of(settings)
        self.register = Register()
        self.index = default_index()
        s = settings
        self.kinds = {s.topic_pings: "pings", s.topic_alerts: "alerts",
                      s.topic_incidents: "incidents", s.topic_link_states: "link_states",
                      s.topic_uplink_requests: "uplink_requests",
                      s.topic_uplink_answers: "uplink_answers",
                      s.topic_platform_request_results: "platform_results",
                      s.topic_audit: "audit"}
        self.batches = {topic: writer.Batch(kind, topic) for topic, kind in self.kinds.items()}
        self.consumer: AIOKafkaConsumer | None = None
        self.last_flush = time.monotonic()
        self.unwritten = False
        """A flush failed (the store away): it is tried again as it was before anything
        more is read, so its file names and pending notes stay what they were."""

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        if s.archive_metrics_port:
            from prometheus_client import start_http_server
            start_http_server(s.archive_metrics_port)
        await ensure_topics(s)
        readers = await self._register_readers()
        follow = [asyncio.create_task(r.follow()) for r in readers]
        consumer = self.consumer = AIOKafkaConsumer(
            **s.kafka_options(), group_id=s.archive_group, enable_auto_commit=False,
            auto_offset_reset="earliest",  # (an uplink answer with its picture: 6 MiB)
            max_partition_fetch_bytes=8 * 1024 * 1024)
        await consumer.start()
        upkeep_task: asyncio.Task | None = None
        try:
            await self._assign()
            log.info("archive: writing to %r", self.store)
            next_upkeep = 0.0
            while not stop.is_set():
                if self.unwritten:  # the store failed: the same batch again, nothing new read
                    try:
                        await asyncio.wait_for(stop.wait(), RETRY_S)
                    except asyncio.TimeoutError:
                        pass
                    await self._flush()
                    continue
                batch = await consumer.getmany(timeout_ms=500, max_records=20_000)
                self._take(batch)
                if self._due():
                    await self._flush()
                if time.monotonic() >= next_upkeep and (upkeep_task is None or
                                                        upkeep_task.done()):
                    next_upkeep = time.monotonic() + UPKEEP_EVERY_S
                    upkeep_task = asyncio.create_task(self._upkeep())
            await self._flush()
        finally:
            if upkeep_task is not None:
                await asyncio.gather(upkeep_task, return_exceptions=True)
            for task in follow:
                task.cancel()
            await asyncio.gather(*follow, return_exceptions=True)
            for reader in readers:
                await reader.stop()
            await consumer.stop()

    async def _register_readers(self) -> list[TopicReader]:
        s, reg = self.settings, self.register
        options = s.kafka_options()
        readers = [TopicReader(options, s.topic_vehicle_terminals, reg.vehicle_terminal),
                   TopicReader(options, s.topic_permits, reg.permit),
                   TopicReader(options, s.topic_platform_vehicles, reg.platform_vehicle),
                   TopicReader(options, s.topic_platforms, reg.platform)]
        for reader in readers:
            await reader.start(from_start=True, timeout_s=120)
            await reader.catch_up()
        log.info("archive: the register knows %d vehicles", len(reg))
        return readers

    async def _assign(self) -> None:
        """Every partition of the three topics, at the offset the archive's files say is
        next; where they say nothing, the start of what Kafka keeps. A state past the
        partition's end (the topic was made anew, or the archive is another cluster's)
        stops the archiver with the reason: nothing is written over."""
        consumer = self.consumer
        assert consumer is not None
        partitions = []
        for topic in self.kinds:
            ids = await asyncio.wait_for(wait_for_partitions(self.settings, topic,
                                                             poll_s=0.2), 120)
            partitions += [TopicPartition(topic, p) for p in ids]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            kind = self.kinds[tp.topic]
            written = await asyncio.to_thread(writer.recover, self.store, kind, tp.partition)
            if written is None:
                await consumer.seek_to_beginning(tp)
            elif written > ends[tp]:
                raise ArchiveMismatch(
                    f"the archive at {self.store!r} has {kind} of {tp.topic} partition "
                    f"{tp.partition} up to offset {written}, the topic ends at {ends[tp]}: "
                    "was the topic made anew? Point YRD_ARCHIVE_DIR / YRD_ARCHIVE_S3_URL "
                    "at this cluster's archive")
            else:
                consumer.seek(tp, written)
        log.info("archive: reading %d partitions", len(partitions))

    def _take(self, fetched: dict) -> None:
        s = self.settings
        carriers = self.register.carrier
        for tp, records in fetched.items():
            if not records:
                continue
            batch = self.batches[tp.topic]
            batch.read(tp.partition, records[0].offset, records[-1].offset)
            if batch.kind == "pings":
                refused = rows.pings(records, index=self.index, carriers=carriers,
                                     max_bytes=s.max_ping_bytes,
                                     tolerance_ms=int(s.future_tolerance_s * 1000),
                                     out=batch.rows)
            elif batch.kind == "alerts":
                refused = rows.alerts(records, carriers=carriers, out=batch.rows)
            elif batch.kind == "incidents":
                refused = rows.incidents(records, carriers=carriers, out=batch.rows)
            else:
                refused = CONVERT[batch.kind](records, out=batch.rows)
            if refused:
                metrics.REFUSED.labels(batch.kind).inc(refused)

    def _due(self) -> bool:
        waiting = sum(b.rows.count for b in self.batches.values())
        return waiting >= self.settings.archive_flush_rows or (
            time.monotonic() - self.last_flush >= self.settings.archive_flush_s)

    async def _flush(self) -> None:
        self.last_flush = time.monotonic()
        consumer = self.consumer
        assert consumer is not None
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for topic, batch in self.batches.items():
            if not batch.ranges:
                continue
            count, kind = batch.rows.count, batch.kind
            started = time.monotonic()
            try:
                done = await asyncio.to_thread(writer.flush, self.store, batch)
            except OSError as exc:
                if not self.unwritten:
                    log.warning("archive: %s not written, the store failed (again every "
                                "%.0f s, nothing more read meanwhile): %s", kind, RETRY_S, exc)
                metrics.FLUSH_FAILURES.labels(kind).inc()
                self.unwritten = True
                return
            if self.unwritten:
                log.info("archive: the store writes again")
                self.unwritten = False
            metrics.FLUSH_SECONDS.labels(kind).observe(time.monotonic() - started)
            metrics.ROWS.labels(kind).inc(count)
            metrics.WRITTEN_AT.labels(kind).set(time.time())
            offsets |= {TopicPartition(topic, p): OffsetAndMetadata(n, "")
                        for p, n in done.items()}
        if offsets:
            try:
                await consumer.commit(offsets)
            except Exception as exc:  # noqa: BLE001 - the files hold the truth; lag only
                log.warning("archive: offsets not committed (lag gauge only): %r", exc)

    async def _upkeep(self) -> None:
        try:
            today = datetime.now(CHINA_TZ).date()
            result = await asyncio.to_thread(upkeep.run, self.store, self.settings, today)
            plates = await asyncio.to_thread(register_snapshot.write, self.store,
                                             self.register, today)
            log.info("archive upkeep: %s; the register's %d vehicles kept", result, plates)
        except Exception:  # noqa: BLE001 - upkeep fails, writing goes on
            log.exception("archive upkeep failed")
            metrics.UPKEEP_FAILURES.inc()


async def run_until_signalled(settings: Settings) -> None:
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await Archiver(settings).run(stop)
    except ArchiveMismatch as exc:
        log.error("archive: %s", exc)
        raise SystemExit(2) from None
