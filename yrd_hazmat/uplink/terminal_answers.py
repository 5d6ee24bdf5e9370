"""Answers to the upper platform's requests that reach a truck's terminal as commands:
UP_CTRL_MSG_TEXT_INFO_ACK 0x1503 (RESULT 0 delivered, 1 failed),
UP_CTRL_MSG_TAKE_PHOTO_ACK 0x1502 (PHOTO_RSP_FLAG, and the picture when taken),
UP_CTRL_MSG_MONITOR_VEHICLE_ACK 0x1501 (0 listening: the terminal took the call-back
0x8400; 1 failed), UP_CTRL_MSG_TAKE_TRAVEL_DATA_ACK 0x1504 (the tachograph's data block of
the terminal's 0x0700; empty when it sent none) and UP_CTRL_MSG_EMERGENCY_MONITORING_ACK
0x1505 (0 the terminal took 0x8105, 1 no such vehicle, 2 failed).

Kafka holds everything an answer needs, so a restart of ours loses none: the request on
``yrd.uplink-requests`` (kind text / photo, naming its command), the command's final step
on ``yrd.command-results`` (:data:`~yrd_hazmat.gateway.commands.FINAL`: ok delivered;
failed, wrong, unsupported, timeout, expired, refused not), the picture on ``yrd.media``.
:class:`TerminalAnswers` turns them into an :class:`~.records.UplinkAnswer` (answered by
``terminal``; a photo's carries its picture), which the uplink publishes on
``yrd.uplink-answers`` and reads back like a person's answer: sent up while the link is up,
sent again until a link test confirms it. At start it reads the requests and answers to
find what is still unanswered, then the results and pictures since the oldest of those.
This module is pure: no Kafka, no clock.
"""

from __future__ import annotations

from datetime import datetime

from ..core.models import CommandResult, Media
from ..gateway.commands import FINAL
from ..jt809 import control
from .records import UplinkAnswer, UplinkRequest

KINDS = frozenset({"text", "photo", "listen", "tachograph", "emergency_access"})
ANSWERED_BY = "terminal"

_PHOTO_FLAGS = {"unsupported": control.NOT_SUPPORTED, "timeout": control.OFFLINE,
                "expired": control.OFFLINE, "refused": control.OFFLINE}
"""A command's final status (but ok) -> PHOTO_RSP_FLAG; others: NOT_TAKEN."""
FAILED = {"text": control.FAILED, "listen": control.LISTEN_FAILED,
          "emergency_access": control.ACCESS_FAILED}
"""The result of a command that did not succeed (ok: 0, in each)."""
NO_COMMAND = {"text": control.FAILED, "photo": control.WRONG_PLATE,
              "listen": control.LISTEN_FAILED, "tachograph": 1,
              "emergency_access": control.NO_SUCH_VEHICLE}
"""The result when no command could carry the request (a plate no terminal can have)."""


class TerminalAnswers:
    def __init__(self) -> None:
        self.pending: dict[str, UplinkRequest] = {}
        """command id -> the text or photo request it carries, unanswered."""
        self.answered: set[str] = set()
        """Request ids answered (seen on ``yrd.uplink-answers`` or made here)."""
        self.pictures: dict[str, Media] = {}
        """media id -> picture, kept while a pending photo may need it."""
        self.waiting: dict[str, UplinkRequest] = {}
        """media id -> the photo request whose command finished with it, the picture not
        read yet."""
        self._out: list[UplinkAnswer] = []

    # --- what is read --------------------------------------------------------------------
    def request(self, request: UplinkRequest, now: datetime) -> None:
        """A text or photo request (others are not ours)."""
        if request.kind not in KINDS or request.request_id in self.answered:
            return
        if request.command_id is None:  # no command could carry it
            self._answer(request, now, NO_COMMAND[request.kind])
            return
        self.pending[request.command_id] = request

    def answer_seen(self, answer: UplinkAnswer) -> None:
        """An answer on ``yrd.uplink-answers``: its request needs no other."""
        request = answer.request
        self.answered.add(request.request_id)
        if request.command_id is not None:
            self.pending.pop(request.command_id, None)

    def result(self, result: CommandResult) -> None:
        """A step of a command (``yrd.command-results``)."""
        if result.status not in FINAL:
            return
        request = self.pending.get(result.command_id)
        if request is None:
            return
        if request.kind in FAILED:
            self._answer(request, result.at, 0 if result.status == "ok" else FAILED[request.kind])
        elif request.kind == "tachograph":
            self._answer(request, result.at, 0 if result.status == "ok" else 1,
                         data=result.data if result.status == "ok" else None)
        elif result.status == "ok" and result.media_id is not None:
            picture = self.pictures.pop(result.media_id, None)
            if picture is None:
                del self.pending[result.command_id]
                self.waiting[result.media_id] = request
            else:
                self._answer(request, result.at, control.TAKEN, picture)
        elif result.status == "ok":
            self._answer(request, result.at, control.TAKEN_SENT_LATER)
        else:
            self._answer(request, result.at, _PHOTO_FLAGS.get(result.status, control.NOT_TAKEN))

    def media(self, media: Media) -> None:
        """A picture (``yrd.media``): kept if a pending photo request may be answered
        with it."""
        request = self.waiting.pop(media.media_id, None)
        if request is not None:
            self._answer(request, media.received_at, control.TAKEN, media)
        elif media.command_id is not None and media.command_id in self.pending:
            self.pictures[media.media_id] = media

    # --- what comes out ------------------------------------------------------------------
    def take(self) -> list[UplinkAnswer]:
        """The answers made since the last call, to publish on ``yrd.uplink-answers``."""
        out, self._out = self._out, []
        return out

    def oldest(self) -> datetime | None:
        """When the oldest unanswered request arrived (what to read the results from)."""
        requests = [*self.pending.values(), *self.waiting.values()]
        return min((r.received_at for r in requests), default=None)

    def expire(self, now: datetime) -> None:
        """Forget requests long past their deadline whose command never finished (a
        result lost to retention): answered as failed / offline."""
        for command_id, request in list(self.pending.items()):
            if request.deadline is not None and (now - request.deadline).total_seconds() > 3600:
                self._answer(request, now, control.OFFLINE if request.kind == "photo"
                             else FAILED.get(request.kind, 1))
        for media_id, request in list(self.waiting.items()):
            if request.deadline is not None and (now - request.deadline).total_seconds() > 3600:
                del self.waiting[media_id]
                self._answer(request, now, control.TAKEN_SENT_LATER)

    def _answer(self, request: UplinkRequest, at: datetime, result: int,
                picture: Media | None = None, data: str | None = None) -> None:
        if request.command_id is not None:
            self.pending.pop(request.command_id, None)
        if request.request_id in self.answered:
            return
        self.answered.add(request.request_id)
        self._out.append(UplinkAnswer(request=request, answered_by=ANSWERED_BY, answered_at=at,
                                      result=result, media=picture, data=data))
