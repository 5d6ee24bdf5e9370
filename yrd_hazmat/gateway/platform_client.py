"""The client side of the lower platforms (what ``yrd-hazmat platforms`` and ``yrd-hazmat
platform`` run): the platforms configured on ``yrd.platforms``, and a downward request
published on ``yrd.platform-requests`` with its steps followed on
``yrd.platform-request-results``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec

from ..config import Settings
from ..core.codec import encode
from ..follow import TopicReader, decoding
from ..produce import publish
from .platform_requests import PlatformRequest, PlatformRequestResult
from .platforms import Platforms

_results = msgspec.json.Decoder(PlatformRequestResult)


async def read_platforms(settings: Settings) -> Platforms:
    """The platforms of ``yrd.platforms`` as it is now (without the settings' one)."""
    platforms = Platforms()
    await TopicReader.read_all(settings.kafka_options(), settings.topic_platforms,
                               platforms.apply)
    return platforms


async def send_request(settings: Settings, request: PlatformRequest, wait_s: float,
                       on_step: Callable[[PlatformRequestResult], None] | None = None,
                       ) -> list[PlatformRequestResult]:
    """Publish ``request``; with ``wait_s`` > 0 follow its steps until it is answered,
    failed or expired, or ``wait_s`` passes. Returns the steps seen."""
    steps: list[PlatformRequestResult] = []
    finished = asyncio.Event()

    def apply(result: PlatformRequestResult) -> None:
        if result.request_id != request.request_id:
            return
        steps.append(result)
        if on_step is not None:
            on_step(result)
        if result.status in ("answered", "failed", "expired") or (
                result.status == "sent" and request.kind == "tip"):
            finished.set()

    record = [(str(request.platform), encode(request))]
    if wait_s <= 0:
        await publish(settings, settings.topic_platform_requests, record)
        return steps
    reader = TopicReader(settings.kafka_options(), settings.topic_platform_request_results,
                         decoding(_results.decode, apply))
    await reader.start(from_start=False)
    try:
        await reader.catch_up()
        await publish(settings, settings.topic_platform_requests, record)
        await reader.follow_until(finished, wait_s)
    finally:
        await reader.stop()
    return steps


def step_line(result: PlatformRequestResult) -> str:
    """One step, as the operator reads it."""
    line = f"{result.at:%H:%M:%S} {result.status}"
    if result.status == "sent":
        line += f" on the {result.route} link (MSG_SN {result.serial})"
    if result.status == "answered":
        line += f" ({result.answer_kind}) after {result.took_s:.1f} s"
        if result.late:
            line += ", late"
        shown = {k: v for k, v in result.answer.items() if k != "text"}
        if "text" in result.answer:
            line += f": {result.answer['text']}"
        if shown:
            line += f" {shown}"
    if result.detail:
        line += f": {result.detail}"
    return line


class Pending(msgspec.Struct, frozen=True):
    """A request sent and not answered (a supervision order: until the platform reports
    it handled), as ``yrd.platform-request-results`` tells."""

    sent: PlatformRequestResult
    late: bool
    answers: int


def pending(results: list[PlatformRequestResult], now) -> list[Pending]:
    """The open requests among ``results`` (in the topic's order), oldest first."""
    sent: dict[str, PlatformRequestResult] = {}
    late: set[str] = set()
    answers: dict[str, int] = {}
    done: set[str] = set()
    for result in results:
        rid = result.request_id
        if result.status == "sent" and result.kind != "tip":
            sent.setdefault(rid, result)
        elif result.status == "late":
            late.add(rid)
        elif result.status == "answered":
            answers[rid] = answers.get(rid, 0) + 1
            if result.kind != "supervision" or result.answer_kind == "handling_result" \
                    or result.answer.get("result") == 1:
                done.add(rid)
    out = []
    for rid, first in sent.items():
        if rid in done:
            continue
        overdue = rid in late or (first.deadline is not None and now > first.deadline)
        out.append(Pending(first, overdue, answers.get(rid, 0)))
    return sorted(out, key=lambda p: p.sent.at)


async def read_results(settings: Settings) -> list[PlatformRequestResult]:
    """Every step on ``yrd.platform-request-results`` now."""
    found: list[PlatformRequestResult] = []

    await TopicReader.read_all(settings.kafka_options(),
                               settings.topic_platform_request_results,
                               decoding(_results.decode, found.append))
    return found
