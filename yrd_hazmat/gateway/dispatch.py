"""The gateway's side of downward requests to lower platforms: :class:`.downward.Ledger`
(the pure rules) wired to Kafka and to :class:`.platform_links.PlatformLinks`.

Every gateway follows ``yrd.platform-request-results`` and ``yrd.platform-requests`` from
their start (no consumer group: each gateway reads every request, the one holding the
platform's links sends it; a step already on the results topic is not taken again), then
every :data:`TICK_S`: sends the requests whose platform has a link up here
(:meth:`.PlatformLinks.send`, on the slave link, else the main one), records those not
sent by ``expires_at`` (``expired``) or without a link for ``YRD_JT809_REQUEST_LINK_WAIT_S``
(``failed``), and those unanswered at their deadline (``late``). With several gateways: a
request whose platform another gateway reports linked (``yrd.link-states``) is left to
that one instead of failing here, and ``late`` is the sender's to note (another notes it
a minute later if the sender is gone). The platforms' answers,
read on their main links, are matched by the server through :meth:`Dispatcher.answered`.
The steps of a supervision order are also notes on its incident (``yrd.incident-actions``).
An unreadable request is a dead letter (``yrd_jt809_requests_total{result="unreadable"}``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

import msgspec

from ..config import Settings
from ..core.codec import Rejection, dead_letter, encode
from ..core.timeutil import CHINA_TZ
from ..follow import Follower, decoding
from . import metrics
from .downward import Ledger, Send, frame, incident_note
from .platform_links import LinkDown, PlatformLinks
from .platform_records import PlatformReport
from .platform_requests import PlatformRequest, PlatformRequestResult, problem
from .platforms import Platform

log = logging.getLogger(__name__)

TICK_S = 0.2
"""How often waiting requests, expiries and deadlines are looked at."""
FORGET_AFTER = timedelta(days=8)
"""Requests done (or sent and never answered) this long ago are forgotten: the requests
topic keeps 7 days."""
FORGET_EVERY = 3000
"""Ticks between two clean-ups (10 minutes)."""

Record = tuple[str, bytes | None, bytes | None]
Publish = Callable[[list[Record]], Awaitable[None]]

_requests = msgspec.json.Decoder(PlatformRequest)
_results = msgspec.json.Decoder(PlatformRequestResult)


def _now() -> datetime:
    return datetime.now(CHINA_TZ)


class Dispatcher:
    """Carries downward requests to the platforms linked to this gateway and records
    their steps and answers."""

    def __init__(self, settings: Settings, links: PlatformLinks,
                 platforms: Mapping[int, Platform], publish: Publish, name: str,
                 clock: Callable[[], datetime] = _now,
                 elsewhere: Callable[[int], bool] = lambda code: False) -> None:
        self.settings = settings
        self.elsewhere = elsewhere
        """Whether another gateway holds a link of the platform (``yrd.link-states``)."""
        self.links = links
        self.platforms = platforms
        self.publish = publish
        self.clock = clock
        self.ledger = Ledger(name, settings.jt809_request_link_wait_s)
        self._queue: asyncio.Queue[list[Record]] = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self.ready = False
        self._ticks = 0

    # --- life cycle --------------------------------------------------------------------
    async def start(self) -> None:
        options = self.settings.kafka_options()
        results = Follower(options, self.settings.topic_platform_request_results,
                           decoding(_results.decode, self.ledger.apply_result))
        requests = Follower(options, self.settings.topic_platform_requests, self._read_request)
        for follower in (results, requests):  # the steps first: what is done stays done
            self._tasks.append(asyncio.create_task(follower.run(),
                                                   name=f"follow-{follower.topic}"))
            await follower.caught_up.wait()
        self.ready = True
        self._tasks += [asyncio.create_task(self._execute(), name="platform-requests-out"),
                        asyncio.create_task(self._tick(), name="platform-requests-tick")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- what is read ------------------------------------------------------------------
    def _read_request(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            return
        try:
            request = _requests.decode(value)
            found = problem(request)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            request, found = None, f"not a platform request: {exc}"
        if found is not None:
            self._refuse(key, value, found, request)
            return
        assert request is not None
        self.ledger.apply_request(request, self.clock())

    def _refuse(self, key: bytes | None, value: bytes, reason: str,
                request: PlatformRequest | None) -> None:
        settings = self.settings
        label = str(request.platform) if request is not None else metrics.UNKNOWN_PLATFORM
        metrics.REQUESTS.labels(label, request.kind if request is not None else "unknown",
                                "unreadable").inc()
        log.warning("platform request refused: %s", reason)
        letter = dead_letter(topic=settings.topic_platform_requests, partition=-1, offset=-1,
                             key=key, value=value, rejection=Rejection("invalid", reason),
                             received_at=self.clock(),
                             max_raw_bytes=settings.deadletter_max_raw_bytes)
        self._queue.put_nowait([(settings.topic_deadletter, key, encode(letter))])

    # --- what is done ------------------------------------------------------------------
    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                self.step()
            except Exception:  # a bug must not stop the requests of every platform
                log.exception("platform requests")

    def step(self) -> None:
        """Send what can go, record what failed, expired or is late."""
        now = self.clock()
        results: list[PlatformRequestResult] = []
        for due in self.ledger.due(now, self._link_up, self.elsewhere):
            results.append(self._send(due.request, now) if isinstance(due, Send) else due)
        results += self.ledger.late(now)
        self._record(results)
        self._ticks += 1
        if self._ticks % FORGET_EVERY == 0:
            self.ledger.forget(now - FORGET_AFTER)

    def _link_up(self, access_code: int) -> bool:
        return self.links.main_link(access_code) or self.links.slave_link(access_code)

    def _send(self, request: PlatformRequest, now: datetime) -> PlatformRequestResult:
        platform = self.platforms.get(request.platform)
        edition = platform.edition if platform is not None else 2011
        try:
            msg_id, body = frame(request, edition, now)
        except ValueError as exc:
            return self.ledger.step(request, "failed", now, detail=f"cannot be written: {exc}")
        try:
            sent = self.links.send(request.platform, msg_id, body)
        except LinkDown:
            return self.ledger.step(request, "failed", now, detail="link down: neither link "
                                                                   "of the platform is up")
        return self.ledger.sent(request, sent.route, sent.serial, now)

    def answered(self, reports: list[PlatformReport]) -> None:
        """A platform's reports, read on its main link: those answering a request are
        recorded as its ``answered`` step."""
        self._record([r for r in map(self.ledger.answer, reports) if r is not None])

    def _record(self, results: list[PlatformRequestResult]) -> None:
        if not results:
            return
        settings = self.settings
        records: list[Record] = []
        for result in results:
            self.ledger.apply_result(result)
            _count(result)
            records.append((settings.topic_platform_request_results,
                            str(result.platform).encode(), encode(result)))
            note = incident_note(result)
            if note is not None:
                records.append((settings.topic_incident_actions, note.incident_id.encode(),
                                encode(note)))
        self._queue.put_nowait(records)

    async def _execute(self) -> None:
        while True:
            records = await self._queue.get()
            try:
                await self.publish(records)
            except Exception as exc:  # the broker away: the steps are lost, logged
                log.warning("platform request steps not recorded: %s", exc)


def _count(result: PlatformRequestResult) -> None:
    label, kind = str(result.platform), result.kind
    status = "answered_late" if result.status == "answered" and result.late else result.status
    metrics.REQUESTS.labels(label, kind, status).inc()
    if result.status == "answered" and result.took_s is not None:
        metrics.ANSWER_SECONDS.labels(label, kind).observe(result.took_s)
