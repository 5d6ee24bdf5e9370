"""The notifier: ``yrd-hazmat notify run``. Run one.

At start it reads ``yrd.notifications`` to its end (every delivery's latest state: the
book), follows ``yrd.subscriptions`` and the vehicle register (the carrier of each
plate), and turns every delivery found ``sending`` (stopped during an attempt) into a
re-send marked as a possible repeat. Then, in one loop:

1. it reads ``yrd.alerts`` (every partition; from its consumer group's offsets, else
   ``YRD_NOTIFY_START``), makes each record an event and each event's deliveries
   (:func:`.deliveries.plan`: one per matching subscription, or into its digest), writes
   them to ``yrd.notifications``, and only when Kafka has them commits the alerts'
   offsets: a restart re-reads at most what it had not committed, and finds those
   deliveries in the book (their ids are the event's and the subscription's), so nothing
   is told twice and nothing is missed;
2. it keeps the clock of every alert with a deadline (:mod:`.deadlines`, the policy on
   ``yrd.deadlines``, acknowledgements and closes from ``yrd.incidents``): one past its
   deadline is escalated, an ``escalate`` action sent to the incident keeper and an
   ``escalated`` event to the subscriptions of that level; at a restart the alerts of
   ``YRD_NOTIFY_CLOCK_HORIZON_S`` before its offsets are read again for their clocks only;
3. it sends what is due, at most ``YRD_NOTIFY_CONCURRENCY`` at once: ``sending`` is
   written before each attempt, the outcome after it (sent, again later with backoff, or
   given up); a digest whose time has come is released.

A broker away: nothing is committed nor sent until the record that must come first is
written; a channel away: retried with backoff, up to ``YRD_NOTIFY_MAX_ATTEMPTS``.
SIGTERM: the attempts under way finish, then exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from ..config import Settings
from ..core.codec import Rejection, decoded, encode
from ..core.emergency.records import IncidentLogs
from ..core.models import Alert, AlertState, IncidentAction, IncidentCommand
from ..core.timeutil import CHINA_TZ
from ..follow import Follower, TopicReader
from ..register import Register
from ..topics import ensure_topics, wait_for_partitions
from . import deadlines as dlines
from . import deliveries as dl
from . import messages, metrics
from .channels import Answer, Email
from .deliveries import Book, Delivery
from .send import SmtpSettings, deliver
from .subscriptions import Event, Subscriptions

log = logging.getLogger(__name__)

TICK_S = 0.25
CLOCK_EVERY_S = 1.0
KEEP_DONE = timedelta(days=2)
"""Finished deliveries are kept in memory this long (the topic keeps them a month)."""
_decode_alert = msgspec.json.Decoder(Alert).decode


@dataclass
class Watch:
    """An alert whose deadlines are watched."""
    alert: Alert
    replayed: bool
    """Read again at a restart (its acknowledgement time was measured before)."""
    cleared: bool = False
    acked: bool = False
    level: str | None = None
    """The level it was escalated to by this process."""


def smtp_of(settings: Settings) -> SmtpSettings | None:
    s = settings
    if not s.smtp_host:
        return None
    return SmtpSettings(host=s.smtp_host, port=s.smtp_port, username=s.smtp_username or None,
                        password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                        starttls=s.smtp_starttls, ssl=s.smtp_ssl, sender=s.smtp_sender,
                        timeout_s=s.notify_timeout_s)


class Notifier:
    def __init__(self, settings: Settings, *, now=lambda: datetime.now(CHINA_TZ)) -> None:
        self.settings = settings
        self.now = now
        self.subscriptions = Subscriptions()
        self.book = Book()
        self.register = Register()
        self.incidents = IncidentLogs()
        self.incidents.listeners.append(self._incident_changed)
        self.told: set[str] = set()
        """Appeal actions already made events (their action ids)."""
        self.deferred: dict[str, object] = {}
        """Incident records read before the subscriptions were: looked at once ready."""
        self.policy = dlines.Policy()
        self.watches: dict[str, Watch] = {}
        """Incident id -> the alert whose deadlines are watched."""
        self.resume: dict[TopicPartition, int] = {}
        """Partition -> the first offset not yet planned (below: read again for clocks)."""
        self.smtp = smtp_of(settings)
        self.producer: AIOKafkaProducer | None = None
        self.inflight: dict[str, asyncio.Task] = {}
        self.unwritten: dict[str, Delivery] = {}
        """Deliveries planned and not yet on Kafka (their alerts' offsets wait)."""
        self.commands: list[IncidentCommand] = []
        """Escalations for the incident keeper, not yet on Kafka."""
        self.uncommitted: dict[TopicPartition, OffsetAndMetadata] = {}
        self.ready = asyncio.Event()
        """Set once the book is read and the alerts' partitions are assigned."""

    # --- start ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        if s.notify_metrics_port:
            from prometheus_client import start_http_server
            start_http_server(s.notify_metrics_port)
        await ensure_topics(s)
        options = s.kafka_options()
        book = TopicReader(options, s.topic_notifications, self.book.apply)
        await book.start(from_start=True, timeout_s=120)
        await book.catch_up()
        await book.stop()
        followers = [Follower(options, s.topic_subscriptions, self.subscriptions.apply),
                     Follower(options, s.topic_vehicle_terminals, self.register.vehicle_terminal),
                     Follower(options, s.topic_permits, self.register.permit),
                     Follower(options, s.topic_platform_vehicles, self.register.platform_vehicle),
                     Follower(options, s.topic_incidents, self.incidents.apply),
                     Follower(options, s.topic_deadlines, self.policy.apply)]
        tasks = [asyncio.create_task(f.run()) for f in followers]
        producer = self.producer = AIOKafkaProducer(**options, acks="all",
                                                    enable_idempotence=True)
        await producer.start()
        consumer = AIOKafkaConsumer(**options, group_id=s.notify_group,
                                    enable_auto_commit=False,
                                    auto_offset_reset=s.notify_start)
        await consumer.start()
        session = aiohttp.ClientSession()
        try:
            for f in followers:
                await f.caught_up.wait()
            log.info("notifier: %d subscriptions, %d deliveries known, the register knows "
                     "%d vehicles", len(self.subscriptions), len(self.book), len(self.register))
            await self._resume_in_doubt()
            ids = await asyncio.wait_for(wait_for_partitions(s, s.topic_alerts, poll_s=0.2), 120)
            await self._assign(consumer, [TopicPartition(s.topic_alerts, p) for p in ids])
            self.ready.set()
            for record in self.deferred.values():
                self._incident_changed(record)
            self.deferred = {}
            await self._loop(stop, consumer, session)
        finally:
            if self.inflight:
                await asyncio.gather(*self.inflight.values(), return_exceptions=True)
            await session.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await consumer.stop()
            await producer.stop()

    async def _assign(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        """Each partition from its committed offset, but from ``YRD_NOTIFY_CLOCK_HORIZON_S``
        before it: what lies between is read for the deadlines' clocks only. A partition
        with no committed offset starts where ``YRD_NOTIFY_START`` says."""
        consumer.assign(tps)
        since = int((time.time() - self.settings.notify_clock_horizon_s) * 1000)
        found = await consumer.offsets_for_times({tp: since for tp in tps})
        for tp in tps:
            committed = await consumer.committed(tp)
            if committed is None:
                continue
            self.resume[tp] = committed
            at = found.get(tp)
            consumer.seek(tp, min(committed, at.offset) if at is not None else committed)

    async def _resume_in_doubt(self) -> None:
        now = self.now()
        resent = frozenset(filter(None, self.settings.notify_resend_in_doubt.split(",")))
        for d in [d for d in self.book.by_id.values() if d.state == "sending"]:
            after = dl.in_doubt(d, now, resent)
            log.warning("notifier: delivery %s (%s) was being sent when the notifier stopped: "
                        "%s", d.delivery_id, d.channel, after.reason)
            await self._write(after)
            metrics.IN_DOUBT.labels(d.channel, "resent" if after.state == "retrying"
                                    else "not_resent").inc()

    # --- the loop ---------------------------------------------------------------------------
    async def _loop(self, stop: asyncio.Event, consumer: AIOKafkaConsumer,
                    session: aiohttp.ClientSession) -> None:
        last_forget = last_clock = time.monotonic()
        while not stop.is_set():
            if time.monotonic() - last_clock >= CLOCK_EVERY_S and not self._pending():
                last_clock = time.monotonic()
                self._escalate(self.now())
            if not self._pending():
                self._take(await consumer.getmany(timeout_ms=int(TICK_S * 1000),
                                                  max_records=2000))
            if self._pending() and not await self._write_planned():
                await asyncio.sleep(1.0)  # Kafka away: the same records again, nothing read
                continue
            if self.uncommitted:
                try:
                    await consumer.commit(self.uncommitted)
                    self.uncommitted = {}
                except Exception as exc:  # noqa: BLE001 - the book has them: a re-read is skipped
                    log.warning("notifier: offsets not committed yet: %r", exc)
            self._dispatch(session)
            metrics.OPEN.set(self.book.open_count())
            if time.monotonic() - last_forget > 600:
                last_forget = time.monotonic()
                self.book.forget(self.now() - KEEP_DONE)

    def _take(self, fetched: dict) -> None:
        """Each alert record's deliveries, into the book and ``unwritten``; the records'
        offsets into ``uncommitted`` (committed once those are written)."""
        now = self.now()
        for tp, records in fetched.items():
            resume = self.resume.get(tp, -1)
            for record in records:
                alert = decoded(_decode_alert, record.value or b"")
                if isinstance(alert, Rejection):
                    metrics.REFUSED.labels("alerts").inc()
                    log.warning("notifier: %s[%d]@%d is not an alert (%s): skipped",
                                tp.topic, tp.partition, record.offset, alert.reason)
                    continue
                self._watch(alert, replayed=record.offset < resume)
                if record.offset < resume:
                    continue  # read again for its clock: told before
                event = messages.alert_event(alert, self.register.carrier)
                metrics.EVENTS.labels(event.kind).inc()
                for d in self._plan(event, now):
                    self.unwritten[d.delivery_id] = d
            if records and records[-1].offset >= resume:
                self.uncommitted[tp] = OffsetAndMetadata(records[-1].offset + 1, "")

    def _incident_changed(self, record) -> None:
        """A carrier's appeal or the police's decision on it, newly on an incident record:
        an event for the subscriptions (``appealed``, ``appeal_decided``). Records read
        again at a start count when their action is within the clock's horizon (the book
        drops what was told before)."""
        if not self.ready.is_set():
            self.deferred[record.incident_id] = record
            return
        horizon = self.now() - timedelta(seconds=self.settings.notify_clock_horizon_s)
        for action in record.actions:
            if action.kind not in messages.APPEAL_KINDS or action.action_id in self.told:
                continue
            self.told.add(action.action_id or "")
            if action.at < horizon:
                continue
            event = messages.appeal_event(record, action, self.register.carrier)
            metrics.EVENTS.labels(event.kind).inc()
            for d in self._plan(event, self.now()):
                self.unwritten[d.delivery_id] = d

    def _pending(self) -> bool:
        return bool(self.unwritten or self.commands)

    # --- deadlines ----------------------------------------------------------------------
    def _watch(self, alert: Alert, *, replayed: bool) -> None:
        """Start (raised) or mark (cleared) the clock of the alert's incident."""
        if alert.state is AlertState.CLEARED:
            watch = self.watches.get(alert.incident_id)
            if watch is not None:
                watch.cleared = True
            return
        deadline = self.policy.of(alert.type, alert.severity.value)
        if deadline.ack_s is None and deadline.close_s is None:
            return
        self.watches.setdefault(alert.incident_id, Watch(alert=alert, replayed=replayed))

    def _escalate(self, now: datetime) -> None:
        """Every watched alert against its deadlines: escalations due are planned (an
        action for the keeper, an event for the subscriptions); finished clocks dropped."""
        for incident_id, watch in list(self.watches.items()):
            alert = watch.alert
            record = self.incidents.get(incident_id)
            deadline = self.policy.of(alert.type, alert.severity.value)
            c = dlines.clock(deadline, alert.emitted_at, record, watch.cleared, now)
            if c.acknowledged_at is not None and not watch.acked:
                watch.acked = True
                if not watch.replayed:
                    metrics.ACK_SECONDS.labels(alert.province or "outside").observe(
                        (c.acknowledged_at - alert.emitted_at).total_seconds())
            recorded = watch.level or (record.level if record is not None else None)
            for level in dlines.escalations(c, recorded):
                self._escalation(watch, level, c, now)
                watch.level = level
            if c.done:
                del self.watches[incident_id]

    def _escalation(self, watch: "Watch", level: str, c: dlines.Clock, now: datetime) -> None:
        alert = watch.alert
        missed = c.missed[min(dlines.LEVELS.index(level), len(c.missed)) - 1]
        due = c.ack_due if missed == "ack" else c.close_due
        text = {"ack": "未按时确认 (not acknowledged in time)",
                "close": "未按时办结 (not closed in time)"}[missed]
        action = IncidentAction(kind="escalate", by="notifier", at=due or now, level=level,
                                text=text, action_id=f"{alert.incident_id}:escalate:{level}")
        self.commands.append(IncidentCommand(incident_id=alert.incident_id, action=action,
                                             alert=alert))
        metrics.ESCALATIONS.labels(level, alert.province or "outside").inc()
        log.info("notifier: %s escalated to %s (%s)", alert.incident_id, level, missed)
        base = messages.alert_event(alert, self.register.carrier)
        event = msgspec.structs.replace(
            base, event_id=f"{alert.incident_id}:escalated:{level}", kind="escalated",
            level=level, ts=due or now, text=text)
        for d in self._plan(event, now):
            self.unwritten[d.delivery_id] = d

    async def _write_planned(self) -> bool:
        """Write what was planned; False when Kafka did not take all of it (kept to try
        again: the book has it, so nothing plans it twice)."""
        producer = self.producer
        assert producer is not None
        s = self.settings
        try:
            futures = [await producer.send(s.topic_notifications, dl.encode(d),
                                           key=d.delivery_id.encode())
                       for d in self.unwritten.values()]
            futures += [await producer.send(s.topic_incident_actions, encode(c),
                                            key=c.incident_id.encode())
                        for c in self.commands]
            await asyncio.gather(*futures)
        except Exception as exc:  # noqa: BLE001 - a broker away
            log.warning("notifier: %d deliveries, %d escalations not written yet (%r)",
                        len(self.unwritten), len(self.commands), exc)
            return False
        self.unwritten, self.commands = {}, []
        return True

    def _plan(self, event: Event, now: datetime) -> list[Delivery]:
        """The event's deliveries, put in the book (written by the caller)."""
        made: list[Delivery] = []
        subs = self.subscriptions.matching(event)
        if not subs:
            return made
        notice = messages.notice(event, self.settings.notify_desk_url or None)
        line = messages.digest_line(event)
        for sub in subs:
            for d in dl.plan(self.book, sub, event, notice, line, now):
                self.book.put(d)
                made.append(d)
                if d.state == "in_digest":
                    metrics.DIGESTED.labels(d.channel).inc()
        return made

    # --- sending ----------------------------------------------------------------------------
    def _dispatch(self, session: aiohttp.ClientSession) -> None:
        now = self.now()
        room = self.settings.notify_concurrency - len(self.inflight)
        for d in self.book.due(now):
            if room <= 0:
                break
            if d.delivery_id in self.inflight or d.delivery_id in self.unwritten:
                continue
            task = asyncio.create_task(self._send(d, session))
            self.inflight[d.delivery_id] = task
            task.add_done_callback(lambda _t, i=d.delivery_id: self.inflight.pop(i, None))
            room -= 1

    async def _send(self, d: Delivery, session: aiohttp.ClientSession) -> None:
        try:
            if d.state == "held":
                await self._write(dl.released(d, self.now()))
                return
            sub = self.subscriptions.get(d.subscription_id)
            if sub is None:
                await self._write(dl.failed(d, self.now(), "the subscription was removed",
                                            retry=False, max_attempts=0))
                metrics.DELIVERIES.labels(d.channel, "given_up").inc()
                return
            trying = dl.attempt(d, self.now())
            await self._write(trying)
            assert trying.notice is not None
            started = time.monotonic()
            if isinstance(sub.channel, Email) and self.smtp is None:
                answer = Answer(ok=False, retry=False,
                                reason="no SMTP server configured (YRD_SMTP_HOST)")
            else:
                answer = await deliver(sub.channel, trying.notice, now=self.now(),
                                       session=session, smtp=self.smtp,
                                       timeout_s=self.settings.notify_timeout_s)
            metrics.SEND_SECONDS.labels(d.channel).observe(time.monotonic() - started)
            if answer.ok:
                after = dl.succeeded(trying, self.now())
            else:
                after = dl.failed(trying, self.now(), answer.reason, retry=answer.retry,
                                  max_attempts=self.settings.notify_max_attempts)
            metrics.DELIVERIES.labels(d.channel, after.state).inc()
            await self._write_until_written(after)
        except Exception:  # noqa: BLE001 - Kafka away before the attempt: tried again later
            log.exception("notifier: delivery %s not attempted", d.delivery_id)
            await asyncio.sleep(1.0)

    async def _write(self, d: Delivery) -> None:
        producer = self.producer
        assert producer is not None
        await producer.send_and_wait(self.settings.topic_notifications, dl.encode(d),
                                     key=d.delivery_id.encode())
        self.book.put(d)

    async def _write_until_written(self, d: Delivery) -> None:
        """An attempt's outcome: kept in the book at once (nothing sends it again), written
        as soon as Kafka takes it."""
        self.book.put(d)
        delay = 1.0
        while True:
            try:
                await self._write(d)
                return
            except Exception as exc:  # noqa: BLE001
                log.warning("notifier: outcome of %s not written yet (%r)", d.delivery_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)


async def run_until_signalled(settings: Settings) -> None:
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Notifier(settings).run(stop)
