"""The uplink process: :func:`run_uplink`.

Its own consumer group (YRD_UPLINK_GROUP) reads every partition of ``yrd.pings``,
``yrd.alerts`` and ``yrd.uplink-answers``. While the main link is up, a ping the worker
accepts goes up as UP_EXG_MSG_REAL_LOCATION 0x1202, an alert as UP_WARN_MSG_ADPT_INFO
0x1402 (:mod:`.warn`), a desk answer as 0x1301 / 0x1401. Kafka is the buffer: offsets are
committed only when known delivered (:mod:`.ledger`: a link test's answer confirms what
was written before it). When the link drops, reading goes back to the confirmed offsets;
after the next login everything from there to the end of the topics at that moment is
sent as history, UP_EXG_MSG_HISTORY_LOCATION 0x1203 (per vehicle, at most 5 positions a
frame, in GNSS-time order; alerts and answers as they are), then live again. A restart
of ours starts from the committed offsets and does the same. The upper platform's
requests arrive on our slave-link server (:mod:`.slave`) or the main link and go to Kafka
(:mod:`.requests`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import defaultdict
from datetime import datetime

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from ..config import Settings
from ..core.codec import encode
from ..core.models import Alert, CommandResult, Media, Ping
from ..core.timeutil import CHINA_TZ
from ..jt808.frame import FrameError
from ..jt809 import inspection, links
from ..jt809.frame import Frame
from ..follow import TopicReader, decoding
from ..link_states import LinkState, Reporter
from ..topics import ensure_topics, wait_for_partitions
from . import metrics, requests
from .ledger import Ledger
from .link import LinkDown, MainLink
from .permits import Permits
from .records import ORIGIN, accepted, answer_decoder, from_upper, request_decoder
from .session import LinkConfig, Session
from .slave import SlaveServer
from .terminal_answers import KINDS, TerminalAnswers

log = logging.getLogger(__name__)
_alert_decoder = msgspec.json.Decoder(Alert)
_result_decoder = msgspec.json.Decoder(CommandResult)
_media_decoder = msgspec.json.Decoder(Media)

HOLD_RESENT = 20_000
"""Re-sent pings held across fetches before their 0x1203s go out (with 10,000 trucks a
fetch of 1,000 records gave one position a packet)."""
ANSWER_BYTES = 6 * 1024 * 1024
"""The largest record the uplink writes or reads: an answer carrying a photo (a picture
on ``yrd.media`` takes up to 4 MiB)."""


async def run_uplink(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run the uplink until ``stop`` is set (never, without one). Does nothing when
    YRD_UPLINK_HOST is empty."""
    if not settings.uplink_host:
        log.info("YRD_UPLINK_HOST is empty: no uplink")
        return
    await Uplink(settings).run(stop or asyncio.Event())


async def run_until_signalled(settings: Settings) -> None:
    """:func:`run_uplink` until SIGTERM or SIGINT (then a last confirmation, a logout)."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run_uplink(settings, stop)


class Uplink:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config = LinkConfig.of(settings)
        self.session = Session(self.config)
        self.link: MainLink | None = None
        self.verify_code: int | None = None
        self.ledger = Ledger({})
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.partitions: list[TopicPartition] = []
        self.slave: SlaveServer | None = None
        self.link_states: Reporter | None = None
        self.reporter = f"{socket.gethostname()}:{settings.uplink_access_code}"
        """Our name on ``yrd.link-states``."""
        self.since: datetime | None = None
        self.positions = 0
        self.last_position_at: datetime | None = None
        self.resend_lag_s = 0.0
        self.reconnects = 0
        self._history: dict[str, list[Ping]] = defaultdict(list)
        """Re-sent pings held for their 0x1203s, per truck."""
        self._held: dict[TopicPartition, int] = {}
        """Partitions behind held history: the last offset read."""
        self._final_answers: set[str] = set()
        """Requests whose (final) answer went up on this link: a second is not sent (two
        desks answering at once). Forgotten with the link: what is read again goes again."""
        self._requests: asyncio.Queue[tuple[Frame, str]] = asyncio.Queue()
        self.terminal = TerminalAnswers()
        self.permits = Permits()

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        if s.uplink_metrics_port:
            from prometheus_client import start_http_server
            start_http_server(s.uplink_metrics_port)
        await ensure_topics(s)  # (the contract's topics, the uplink's included)
        self.producer = AIOKafkaProducer(**s.kafka_options(), acks="all",
                                         enable_idempotence=True,
                                         max_request_size=ANSWER_BYTES)
        self.consumer = AIOKafkaConsumer(**s.kafka_options(), group_id=s.uplink_group,
                                         enable_auto_commit=False,
                                         auto_offset_reset=s.uplink_start,
                                         max_partition_fetch_bytes=ANSWER_BYTES)
        await self.producer.start()
        await self.consumer.start()
        slave = self.slave = SlaveServer(self.config, lambda: self.verify_code,
                                         self._queue_request, changed=self._changed)
        reporter = self.link_states = Reporter(self._link_states, self._write_states,
                                               s.link_state_heartbeat_s)
        reporter.start()
        tasks: list[asyncio.Task] = []
        readers: list[TopicReader] = []
        try:
            readers = [*await self._terminal_readers(), await self._permit_reader()]
            tasks = [asyncio.create_task(self._handle_requests()),
                     asyncio.create_task(self._publish_terminal_answers()),
                     *(asyncio.create_task(reader.follow()) for reader in readers)]
            await self._assign()
            if s.uplink_down_port:
                await slave.start(s.uplink_down_bind, s.uplink_down_port)
            await self._links(stop)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for reader in readers:
                await reader.stop()
            await slave.stop()
            await reporter.stop()
            await self.consumer.stop()
            await self.producer.stop()

    # --- the terminals' answers to text and photo requests (:mod:`.terminal_answers`) ---
    async def _terminal_readers(self) -> list[TopicReader]:
        """What is still to answer (the answers, then the requests, read whole), then
        readers of the commands' results and pictures from the oldest of it."""
        s, terminal = self.settings, self.terminal
        options = s.kafka_options() | {"max_partition_fetch_bytes": ANSWER_BYTES}
        now = datetime.now(CHINA_TZ)

        await TopicReader.read_all(options, s.topic_uplink_answers,
                                   decoding(answer_decoder.decode, terminal.answer_seen))
        await TopicReader.read_all(options, s.topic_uplink_requests, decoding(
            request_decoder.decode, lambda request: terminal.request(request, now)))
        since = terminal.oldest()
        log.info("uplink: %d text and photo requests unanswered; following %s and %s%s",
                 len(terminal.pending), s.topic_command_results, s.topic_media,
                 f" from {since:%Y-%m-%d %H:%M:%S}" if since else "")
        readers = [TopicReader(options, s.topic_command_results,
                               decoding(_result_decoder.decode, terminal.result)),
                   TopicReader(options, s.topic_media,
                               decoding(_media_decoder.decode, terminal.media))]
        for reader in readers:
            await reader.start(from_start=False, timeout_s=120, since=since)
            await reader.catch_up()
        return readers

    async def _permit_reader(self) -> TopicReader:
        """``yrd.permits`` read to its end, then followed: who drives (0x920A, 0x120C) and
        the e-waybill (0x920B)."""
        reader = TopicReader(self.settings.kafka_options(), self.settings.topic_permits,
                             self.permits.apply)
        await reader.start(from_start=True, timeout_s=120)
        await reader.catch_up()
        self.permits.live = True
        log.info("uplink: %d trucks' permits read", len(self.permits.by_plate))
        return reader

    def _report_drivers(self) -> None:
        """0x120C for each driver new or changed since the last call (while the main link
        is down they are not sent: the upper platform asks with 0x920A)."""
        for plate, driver in self.permits.changed():
            if self.link is None:
                continue
            try:
                self.link.write(self.session.driver(plate, driver))
                metrics.ANSWERS.labels("driver_report").inc()
            except LinkDown:
                pass

    async def _publish_terminal_answers(self) -> None:
        """The terminals' answers onto ``yrd.uplink-answers`` (whence they go up); a
        request whose command never finished is answered failed an hour past its deadline."""
        s, producer, terminal = self.settings, self.producer, self.terminal
        assert producer is not None
        loop = asyncio.get_running_loop()
        last_expiry = loop.time()
        while True:
            await asyncio.sleep(0.2)
            self._report_drivers()
            if loop.time() - last_expiry > 60:
                terminal.expire(datetime.now(CHINA_TZ))
                last_expiry = loop.time()
            for answer in terminal.take():
                while True:
                    try:
                        await producer.send_and_wait(
                            s.topic_uplink_answers, key=answer.request.request_id.encode(),
                            value=encode(answer))
                        break
                    except KafkaError as exc:  # the broker away: kept until it is back
                        log.warning("terminal answer not published: %r", exc)
                        await asyncio.sleep(1)
                log.info("%s request %s answered by the terminal: %s", answer.request.kind,
                         answer.request.request_id, answer.result)

    async def _assign(self) -> None:
        """Every partition of the input topics, at the committed offsets (a new group: its
        start, committed at once, so that a crash before the first confirmation loses
        nothing)."""
        s, consumer = self.settings, self.consumer
        assert consumer is not None
        topics = (s.topic_pings, s.topic_alerts, s.topic_uplink_answers)
        partitions: list[TopicPartition] = []
        for topic in topics:
            ids = await asyncio.wait_for(wait_for_partitions(s, topic, poll_s=0.2), 120)
            partitions += [TopicPartition(topic, p) for p in ids]
        consumer.assign(partitions)
        confirmed, fresh = {}, {}
        for tp in partitions:
            offset = await consumer.committed(tp)
            if offset is None:
                offset = fresh[tp] = await consumer.position(tp)
            confirmed[tp] = offset
            consumer.seek(tp, offset)
        if fresh:
            await consumer.commit(fresh)
        self.partitions = partitions
        self.ledger = Ledger(confirmed)
        log.info("uplink reads %d partitions from the confirmed offsets", len(partitions))

    async def _links(self, stop: asyncio.Event) -> None:
        s = self.settings
        backoff, first = s.uplink_retry_min_s, True
        while not stop.is_set():
            try:
                link = await self._connect()
            except (OSError, asyncio.TimeoutError, LinkDown) as exc:
                log.warning("uplink to %s:%d not up: %r (again in %.1f s)", s.uplink_host,
                            s.uplink_port, exc, backoff)
                try:
                    await asyncio.wait_for(stop.wait(), backoff)
                except asyncio.TimeoutError:
                    pass
                backoff = min(backoff * 2, s.uplink_retry_max_s)
                continue
            if not first:
                metrics.RECONNECTS.inc()
                self.reconnects += 1
            first, backoff = False, s.uplink_retry_min_s
            self.link = link
            metrics.UP.set(1)
            self._main_changed()
            log.info("uplink logged in to %s:%d", s.uplink_host, s.uplink_port)
            try:
                await self._pump(link, stop)
            except LinkDown as exc:
                metrics.DROPS.labels(exc.reason).inc()
                log.warning("uplink dropped: %s", exc)
                if self.slave is not None and self.slave.inform():
                    log.info("upper platform told on the slave link (UP_DISCONNECT_INFORM)")
            finally:
                metrics.UP.set(0)
                self.link = None
                self._main_changed()
                await link.close()
                assert self.consumer is not None
                self._history.clear()  # read again from the confirmed offsets
                self._held.clear()
                self._final_answers.clear()
                for tp, offset in self.ledger.dropped().items():
                    self.consumer.seek(tp, offset)
                await self._commit()
                metrics.UNCONFIRMED.set(0)

    async def _connect(self) -> MainLink:
        s = self.settings
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(s.uplink_host, s.uplink_port), s.uplink_timeout_s)
        except (OSError, asyncio.TimeoutError):
            metrics.CONNECTS.labels("failed").inc()
            raise
        link = MainLink(self.session, reader, writer, on_answer=self._answered,
                        on_request=self._queue_request)
        try:
            link.write(self.session.login())
            answer = await asyncio.wait_for(asyncio.shield(link.login_answer),
                                            s.uplink_timeout_s)
        except (OSError, asyncio.TimeoutError, LinkDown):
            metrics.CONNECTS.labels("failed").inc()
            await link.close()
            raise
        if answer.result != links.OK:
            metrics.CONNECTS.labels("refused").inc()
            await link.close()
            raise LinkDown("refused", f"UP_CONNECT_RSP result {answer.result}")
        metrics.CONNECTS.labels("ok").inc()
        self.verify_code = answer.verify_code
        return link

    def _answered(self) -> None:
        self.ledger.answered()
        metrics.UNCONFIRMED.set(self.ledger.unconfirmed())

    async def _commit(self) -> None:
        offsets = self.ledger.to_commit()
        if offsets:
            assert self.consumer is not None
            try:
                await self.consumer.commit(offsets)
            except KafkaError as exc:
                # delivered all the same: committed at the next try (a crash before it
                # sends these records again)
                log.warning("uplink offsets not committed: %r", exc)
                self.ledger.commit_failed(offsets)

    async def _pump(self, link: MainLink, stop: asyncio.Event) -> None:
        """Re-send what was not confirmed, then send live, until the link drops (raises
        :class:`LinkDown`) or ``stop`` (returns after a last confirmation and a logout)."""
        s, consumer, ledger = self.settings, self.consumer, self.ledger
        assert consumer is not None
        loop = asyncio.get_running_loop()
        ends = await consumer.end_offsets(self.partitions)
        behind = sum(max(0, ends[tp] - ledger.confirmed.get(tp, 0)) for tp in self.partitions)
        if behind:
            log.info("uplink re-sends up to %d records kept since the last confirmation", behind)
        last_probe = loop.time()
        while not stop.is_set():
            link.check(s.uplink_timeout_s)
            batch = await consumer.getmany(*self.partitions, timeout_ms=100, max_records=1000)
            link.check()
            resent = self._send(link, batch, ends)
            metrics.RESEND_LAG.set(resent)
            self.resend_lag_s = resent
            await link.drain(s.uplink_timeout_s)
            now = loop.time()
            if (ledger.pending and now - last_probe >= s.uplink_confirm_s) or \
                    now - last_probe >= s.uplink_keepalive_s:
                link.probe()
                ledger.probe()
                last_probe = now
            await self._commit()
            metrics.UNCONFIRMED.set(ledger.unconfirmed())
            metrics.CONFIRMED_LAG.set(sum(
                max(0, (consumer.highwater(tp) or 0) - ledger.confirmed.get(tp, 0))
                for tp in self.partitions))
        # stopping: what is held goes out, is confirmed, then we leave
        if self._history:
            link.write(b"".join(self._history_frames()))
        if ledger.pending:
            link.probe()
            ledger.probe()
        deadline = loop.time() + s.uplink_timeout_s
        while ledger.probes and loop.time() < deadline and link.down is None:
            await asyncio.sleep(0.05)
        await self._commit()
        try:
            link.write(self.session.logout())
            await link.drain(2.0)
        except LinkDown:
            pass

    def _send(self, link: MainLink, batch: dict, ends: dict) -> float:
        """Write a batch's frames (in one write); returns the age in seconds of the oldest
        record re-sent (0: none was). Re-sent pings are held across fetches, up to
        :data:`HOLD_RESENT`, so that each truck's 0x1203 carries up to 5 positions; the
        offsets they stand behind are marked written only once they went out."""
        s, ledger, session = self.settings, self.ledger, self.session
        now_ms = int(time.time() * 1000)
        tolerance_ms = int(s.future_tolerance_s * 1000)
        history, held = self._history, self._held
        out: list[bytes] = []
        lag_ms = live = kept = 0
        alerts = {"live": 0, "resent": 0}
        for tp, records in batch.items():
            if not records:
                continue
            end = ends.get(tp, 0)
            topic = tp.topic
            if records[0].offset < end and records[0].timestamp is not None:
                lag_ms = max(lag_ms, now_ms - records[0].timestamp)
            kept_before = kept
            if topic == s.topic_pings:
                for rec in records:
                    if from_upper(rec.headers):  # sent down by the upper platform itself
                        continue
                    ping = accepted(rec.key, rec.value, rec.timestamp, max_bytes=s.max_ping_bytes,
                                    tolerance_ms=tolerance_ms, now_ms=now_ms)
                    if ping is None:
                        continue
                    self._sent_position(ping)
                    if rec.offset < end:
                        history[ping.vehicle_id].append(ping)
                        kept += 1
                    else:
                        out.append(session.position(ping))
                        live += 1
            else:
                for rec in records:
                    frame = self._alarm(rec.value) if topic == s.topic_alerts else \
                        self._answer(rec.value)
                    if frame is not None:
                        out.append(frame)
                        if topic == s.topic_alerts:
                            alerts["resent" if rec.offset < end else "live"] += 1
            if kept > kept_before or tp in held:  # behind held history: written with it
                held[tp] = records[-1].offset
            else:
                ledger.wrote(tp, records[-1].offset)
        if history and (not kept or sum(map(len, history.values())) >= HOLD_RESENT):
            out += self._history_frames()
        if out:
            link.write(b"".join(out))
        if live:
            metrics.POSITIONS.labels("live").inc(live)
        for mode, count in alerts.items():
            if count:
                metrics.ALERTS.labels(mode).inc(count)
        return lag_ms / 1000

    def _history_frames(self) -> list[bytes]:
        """The held re-sent pings as 0x1203s (per truck, time order, at most 5 a frame);
        their offsets marked written."""
        frames: list[bytes] = []
        resent = 0
        for plate, pings in self._history.items():
            frames += self.session.history(plate, pings)
            resent += len(pings)
        metrics.HISTORY_PACKETS.inc(len(frames))
        metrics.POSITIONS.labels("resent").inc(resent)
        for tp, offset in self._held.items():
            self.ledger.wrote(tp, offset)
        self._history.clear()
        self._held.clear()
        return frames

    def _sent_position(self, ping: Ping) -> None:
        self.positions += 1
        if self.last_position_at is None or ping.ts > self.last_position_at:
            self.last_position_at = ping.ts

    # --- link state (yrd.link-states) ----------------------------------------------------
    def _main_changed(self) -> None:
        self.since = datetime.now(CHINA_TZ)
        self._changed()

    def _changed(self) -> None:
        if self.link_states is not None:
            self.link_states.changed()

    def _link_states(self) -> list[LinkState]:
        s = self.settings
        return [LinkState(
            link="uplink", access_code=s.uplink_access_code, name=s.uplink_host,
            edition=2019 if s.uplink_edition == 2019 else 2011, reporter=self.reporter,
            main_up=self.link is not None, slave_up=self.slave is not None and self.slave.up,
            since=self.since, positions=self.positions, last_position_at=self.last_position_at,
            resend_lag_s=self.resend_lag_s, reconnects=self.reconnects,
            reported_at=datetime.now(CHINA_TZ), heartbeat_s=s.link_state_heartbeat_s)]

    async def _write_states(self, records: list[tuple[bytes, bytes]]) -> None:
        assert self.producer is not None
        for key, value in records:
            await self.producer.send(self.settings.topic_link_states, value, key=key)
        await self.producer.flush()

    def _alarm(self, value: bytes | None) -> bytes | None:
        try:
            alert = _alert_decoder.decode(value or b"")
            return self.session.alarm(alert)
        except (msgspec.DecodeError, ValueError) as exc:
            log.warning("alert not sent up: %s", exc)
            return None

    def _answer(self, value: bytes | None) -> bytes | None:
        """The frame of an answer on ``yrd.uplink-answers`` (None: it cannot go up)."""
        try:
            answer = answer_decoder.decode(value or b"")
            frame = self.session.answer(answer)
        except (msgspec.DecodeError, ValueError) as exc:
            log.warning("answer not sent up: %s", exc)
            return None
        if frame is None:
            log.warning("answer to %s lacks its content or result", answer.request.request_id)
            return None
        request = answer.request
        if request.request_id in self._final_answers:  # two desks answered at the same moment
            log.warning("%s %s already answered: a second answer not sent up", request.kind,
                        request.request_id)
            return None
        if request.kind != "supervision" or answer.result in (1, 2):  # (0, 3: more follow)
            self._final_answers.add(request.request_id)
        metrics.ANSWERS.labels(request.kind).inc()
        return frame

    async def _queue_request(self, frame: Frame, link: str) -> None:
        await self._requests.put((frame, link))

    async def _handle_requests(self) -> None:
        s, producer = self.settings, self.producer
        assert producer is not None
        while True:
            frame, link = await self._requests.get()
            try:
                outcome = requests.handle(frame, link=link, edition=self.config.edition,
                                          now=datetime.now(CHINA_TZ),
                                          inspection_answer_s=s.uplink_inspection_answer_s,
                                          command_expiry_s=s.command_expiry_s,
                                          permits=self.permits)
            except FrameError as exc:
                log.warning("request 0x%04x unreadable: %s", frame.header.msg_id, exc)
                continue
            if outcome is None:
                continue
            try:
                if outcome.request is not None:
                    await producer.send_and_wait(s.topic_uplink_requests,
                                                 key=outcome.request.request_id.encode(),
                                                 value=encode(outcome.request))
                    metrics.REQUESTS.labels(outcome.request.kind).inc()
                    log.info("upper platform's %s %s, deadline %s", outcome.request.kind,
                             outcome.request.request_id, outcome.request.deadline)
                if outcome.command is not None:
                    await producer.send_and_wait(s.topic_commands,
                                                 key=outcome.command.vehicle_id.encode(),
                                                 value=encode(outcome.command))
                if outcome.request is not None and outcome.request.kind in KINDS:
                    self.terminal.request(outcome.request, datetime.now(CHINA_TZ))
                if outcome.answer is not None:  # made at once: goes up as a person's does
                    await producer.send_and_wait(s.topic_uplink_answers,
                                                 key=outcome.answer.request.request_id.encode(),
                                                 value=encode(outcome.answer))
                for ping in outcome.pings:  # a vehicle from elsewhere, for the worker
                    await producer.send(s.topic_pings, key=ping.vehicle_id.encode(),
                                        value=encode(ping), headers=[ORIGIN])
                if outcome.pings:
                    metrics.REQUESTS.labels("position").inc(len(outcome.pings))
                if outcome.info_ack is not None and self.link is not None:
                    data = inspection.write_info_ack(outcome.info_ack, self.config.edition)
                    self.link.write(self.session.frame(
                        inspection.UP_PLATFORM_MSG,
                        inspection.write(inspection.INFO_ACK, data)))
            except LinkDown:
                pass
            except Exception:  # noqa: BLE001 - a request must not stop the uplink
                log.exception("request 0x%04x not passed on", frame.header.msg_id)

