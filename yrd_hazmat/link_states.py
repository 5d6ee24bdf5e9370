"""Which JT/T 809 links are up, for the desk: the contract of ``yrd.link-states``
(compacted) and the one way to read it.

Each process holding links reports them: a gateway, for every lower platform whose main or
slave link it holds or held (key ``platform:<access code>@<gateway>``), and the uplink for
its link to the upper platform (key ``uplink@<uplink>``). A report is written when a link
goes up or down and every :attr:`LinkState.heartbeat_s` while one is up, so a report older
than :data:`STALE_HEARTBEATS` heartbeats means its reporter went away (a killed gateway
never says its links are down): :func:`current` says ``unknown`` for it. With several
gateways, the platform is up if any fresh report of it says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from .core.models import EventTime

log = logging.getLogger(__name__)

STALE_HEARTBEATS = 3
"""A report older than this many heartbeats is no longer believed."""


class LinkState(msgspec.Struct, frozen=True, kw_only=True):
    """One reporter's view of one link pair (topic ``yrd.link-states``, compacted)."""

    link: Annotated[Literal["platform", "uplink"], Meta(
        description="platform: a lower platform's links to this gateway; uplink: ours to "
                    "the upper (national) platform")]
    access_code: Annotated[int, Meta(ge=0, le=0xFFFFFFFF, description=(
        "platform: its access code; uplink: ours there"))]
    name: str = ""
    edition: Literal[2011, 2019] = 2011
    reporter: Annotated[str, Meta(min_length=1, max_length=128, description=(
        "the gateway (or uplink) holding the links"))]
    main_up: bool
    slave_up: bool
    since: Annotated[EventTime, Meta(description="when the main link last went up or down")] \
        | None = None
    positions: Annotated[int, Meta(ge=0, description=(
        "platform: positions received (0x1202, 0x1203) by this reporter since it started; "
        "uplink: positions sent up"))] = 0
    last_position_at: EventTime | None = None
    resend_lag_s: Annotated[float, Meta(ge=0, description=(
        "uplink: age of the oldest record of the last re-sent batch (0 once live)"))] | None = None
    reconnects: Annotated[int, Meta(ge=0)] = 0
    reported_at: EventTime
    heartbeat_s: Annotated[float, Meta(gt=0, description=(
        "written again at least this often while a link is up"))]

    @property
    def key(self) -> str:
        return link_key(self.link, self.access_code, self.reporter)


def link_key(link: str, access_code: int, reporter: str) -> str:
    return f"{link}:{access_code}@{reporter}" if link == "platform" else f"uplink@{reporter}"


Status = Literal["up", "main_only", "down", "unknown"]
"""up: main and slave links up; main_only: the main link up, the slave link not (downward
messages take the main link); down: no main link; unknown: no fresh report."""


class LinkView(msgspec.Struct, frozen=True, kw_only=True):
    """A link pair as the desk shows it: the freshest belief of every reporter merged."""

    link: Literal["platform", "uplink"]
    access_code: int
    name: str
    status: Status
    since: datetime | None
    positions: int
    last_position_at: datetime | None
    resend_lag_s: float | None
    reconnects: int
    reporters: tuple[str, ...]
    """The reporters whose report is fresh and says the main link is up."""
    reported_at: datetime | None


def fresh(state: LinkState, now: datetime) -> bool:
    return now - state.reported_at <= timedelta(seconds=state.heartbeat_s * STALE_HEARTBEATS)


def status_of(state: LinkState, now: datetime) -> Status:
    if not fresh(state, now):
        return "unknown" if state.main_up else "down"
    if not state.main_up:
        return "down"
    return "up" if state.slave_up else "main_only"


_RANK = {"up": 3, "main_only": 2, "down": 1, "unknown": 0}


def current(states: Iterable[LinkState], now: datetime) -> list[LinkView]:
    """One :class:`LinkView` per (link, access code), ordered uplink first, then by code.
    The best status among the reporters wins (a platform moved from a dead gateway to a
    live one is up); positions add up over reporters."""
    groups: dict[tuple[str, int], list[LinkState]] = {}
    for state in states:
        groups.setdefault((state.link, state.access_code), []).append(state)
    views = []
    for (link, code), group in groups.items():
        ranked = sorted(group, key=lambda s: (_RANK[status_of(s, now)], s.reported_at))
        best = ranked[-1]
        ups = tuple(sorted(s.reporter for s in group if fresh(s, now) and s.main_up))
        lasts = [s.last_position_at for s in group if s.last_position_at is not None]
        views.append(LinkView(
            link=link, access_code=code, name=best.name, status=status_of(best, now),  # type: ignore[arg-type]
            since=best.since, positions=sum(s.positions for s in group),
            last_position_at=max(lasts) if lasts else None, resend_lag_s=best.resend_lag_s,
            reconnects=sum(s.reconnects for s in group), reporters=ups,
            reported_at=max(s.reported_at for s in group)))
    views.sort(key=lambda v: (v.link != "uplink", v.access_code))
    return views


decoder = msgspec.json.Decoder(LinkState)


class LinkStates:
    """The reports read on ``yrd.link-states`` (key -> state; a null value removes one),
    those ``keep`` accepts."""

    def __init__(self, keep: Callable[[LinkState], bool] = lambda state: True) -> None:
        self.keep = keep
        self.states: dict[str, LinkState] = {}

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        name = key.decode("utf-8", "replace")
        if value is None:
            self.states.pop(name, None)
            return
        try:
            state = decoder.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if self.keep(state):
            self.states[name] = state

    def values(self) -> Iterable[LinkState]:
        return self.states.values()

    def linked(self, access_code: int, now: datetime) -> bool:
        """Whether a fresh report says a link of the platform is up."""
        return any(state.access_code == access_code and (state.main_up or state.slave_up)
                   and fresh(state, now) for state in self.states.values())


class Reporter:
    """Writes a process's link states: :meth:`changed` at once, and every ``heartbeat_s``
    all those with a link up (a state that went down is written once more, then left).
    ``snapshot`` gives the states now; ``publish`` writes (key, value) records."""

    def __init__(self, snapshot: Callable[[], list[LinkState]],
                 publish: Callable[[list[tuple[bytes, bytes]]], Awaitable[object]],
                 heartbeat_s: float) -> None:
        self.snapshot = snapshot
        self.publish = publish
        self.heartbeat_s = heartbeat_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._written: dict[str, bool] = {}
        """key -> main_up of its last write."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="link-states")

    async def stop(self) -> None:
        """Stop writing; the last word is that every link held here is down (the
        process that held them stops)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        gone = [msgspec.structs.replace(state, main_up=False, slave_up=False,
                                        since=state.reported_at if state.main_up else state.since)
                for state in self.snapshot()]
        try:
            if gone:
                await self.publish([(state.key.encode(), msgspec.json.encode(state))
                                    for state in gone])
        except Exception as exc:  # noqa: BLE001 - stopping anyway
            log.debug("last link states not written: %s", exc)

    def changed(self) -> None:
        """A link went up or down: write now."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.heartbeat_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._write()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Kafka away: the next beat tries again
                log.warning("link states not written: %s", exc)

    async def _write(self) -> None:
        records = []
        written = {}
        for state in self.snapshot():
            key = state.key
            up = state.main_up or state.slave_up
            if up or self._written.get(key, True):  # up, or down since the last write
                records.append((key.encode(), msgspec.json.encode(state)))
            written[key] = up
        if records:
            await self.publish(records)
        self._written = written
