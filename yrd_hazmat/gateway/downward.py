"""Downward requests to lower platforms, the pure rules: which frame a request is, when
it is sent, failed or expired, and which request a platform's answer answers.

No sockets, no Kafka, no clock: :class:`Ledger` is fed the requests read on
``yrd.platform-requests``, the steps read on ``yrd.platform-request-results`` (its own
and other gateways') and the platforms' answers (:class:`.platform_records.PlatformReport`),
and returns the steps to record.

Matching an answer to its request (JT/T 809):

- 0x1301 UP_PLATFORM_MSG_POST_QUERY_ACK: 2019 SOURCE_MSG_SN = the 0x9301 frame's MSG_SN;
  2011 INFO_ID = the question's INFO_ID (:func:`.platform_requests.number`).
- 0x1401 UP_WARN_MSG_URGE_TODO_ACK: SUPERVISION_ID = the 0x9401's (2011), or the order
  frame's MSG_SN (2019, as Yordroid's platform answers), else its SOURCE_MSG_SN = the
  alarm report (0x1402) the order was about.
- 0x1412 UP_WARN_MSG_ADPT_TODO_INFO (2019): SOURCE_DATA_TYPE/SOURCE_MSG_SN = the order
  (0x9401 and its MSG_SN) or the alarm (0x1402 and its MSG_SN); 0x1403 (2011): the
  alarm's INFO_ID. A platform's only open order on that vehicle otherwise.
- 0x1503 UP_CTRL_MSG_TEXT_INFO_ACK: 2019 SOURCE_MSG_SN; 2011 MSG_ID = the MSG_SEQUENCE.
- 0x1502 UP_CTRL_MSG_TAKE_PHOTO_ACK: 2019 SOURCE_MSG_SN; 2011 (no id): the vehicle's
  oldest unanswered photo request. 0x1601 alike (its 2019 SOURCE_MSG_SN, else the vehicle),
  and so are the answers of the requests about a vehicle that quote no id in 2011:
  0x120A UP_EXG_MSG_REPORT_DRIVER_INFO_ACK (to 0x920A), 0x1501
  UP_CTRL_MSG_MONITOR_VEHICLE_ACK (to 0x9501), 0x1504 UP_CTRL_MSG_TAKE_TRAVEL_DATA_ACK (to
  0x9504), 0x1505 UP_CTRL_MSG_EMERGENCY_MONITORING_ACK (to 0x9505). A 0x120C (who drives,
  sent unasked) answers nothing.

An answer after the request's deadline is ``late``; so is, once, a request still
unanswered at its deadline (the desk's "open and late"). The steps of a supervision order
are also notes on its incident (:func:`incident_note`, ``yrd.incident-actions``).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..core.models import IncidentAction, IncidentCommand
from ..jt808.frame import FrameError
from ..jt809 import alarms as a
from ..jt809 import control as c
from ..jt809 import exchange as x
from ..jt809 import inspection as i
from ..jt809 import static as st
from .platform_records import PlatformReport
from .platform_requests import ANSWERED_KINDS, PlatformRequest, PlatformRequestResult, number

FINAL = frozenset({"failed", "expired"})
LATE_GRACE = timedelta(seconds=60)
"""How long past a deadline another gateway waits for the sender to note it late."""

ANSWERS = {"inspection_answer": "inspection", "supervision_answer": "supervision",
           "handling_result": "supervision", "text_answer": "text",
           "photo_answer": "photo", "static_info": "static_info",
           "driver_info": "driver_info", "listen_answer": "listen",
           "tachograph_answer": "tachograph", "emergency_access_answer": "emergency_access"}
"""A platform report's kind -> the kind of request it answers."""
UNASKED = frozenset({x.REPORT_DRIVER_INFO})
"""DATA_TYPEs of reports of an answer's kind that the platform sends unasked (0x120C):
they answer no request."""
MULTIPLE = frozenset({"supervision"})
"""Kinds answered more than once (0x1401 in progress, then done; 0x1412)."""


# --- frames ---------------------------------------------------------------------------------

def frame(request: PlatformRequest, edition: int, now: datetime) -> tuple[int, bytes]:
    """(MSG_ID, body) of the request in the platform's edition (ValueError if it cannot be
    written: a text too long for its field...)."""
    try:
        return _frame(request, edition, now)
    except (FrameError, UnicodeEncodeError, OverflowError, struct.error) as exc:
        raise ValueError(str(exc)) from None


def _frame(r: PlatformRequest, edition: int, now: datetime) -> tuple[int, bytes]:
    plate, colour = r.vehicle_id or "", r.plate_colour
    kind = r.kind
    if kind == "inspection":
        minutes = 10
        if r.deadline is not None:
            minutes = min(255, max(1, math.ceil((r.deadline - now).total_seconds() / 60)))
        question = i.Inspection(info_id=number(r.request_id), content=r.text or "",
                                object_type=r.object_type, object_id=r.object_id,
                                answer_time=minutes)
        return i.DOWN_PLATFORM_MSG, i.write(i.POST_QUERY_REQ,
                                            i.write_inspection(question, edition))
    if kind == "supervision":
        order = a.SupervisionOrder(
            deadline=r.deadline, level=r.level, supervisor=r.supervisor, tel=r.supervisor_tel,
            email=r.supervisor_email, warn_time=r.warn_time or r.issued_at, warn_src=r.warn_src,
            warn_type=r.warn_type, supervision_id=supervision_id(r),
            platform_id=r.source_platform_id, source_type=a.ADPT_INFO, source_sn=r.alarm_sn or 0)
        return a.DOWN_WARN_MSG, a.write(a.URGE_TODO_REQ, a.write_order(order, edition),
                                        edition, plate, colour)
    if kind == "tip":
        tip = a.Alarm(warn_type=r.warn_type, warn_time=r.warn_time or r.issued_at,
                      content=r.text or "", warn_src=r.warn_src, plate=plate, colour=colour,
                      platform_id=r.source_platform_id)
        return a.DOWN_WARN_MSG, a.write(a.INFORM_TIPS, a.write_alarm(tip, a.INFORM_TIPS, edition),
                                        edition, plate, colour)
    if kind == "text":
        text = c.TextRequest(msg_id=number(r.request_id), text=r.text or "", priority=r.level)
        return c.DOWN_CTRL_MSG, c.write(plate, colour, c.TEXT_INFO, c.write_text(text))
    if kind == "photo":
        photo = c.PhotoRequest(lens=r.camera, size=r.size)
        return c.DOWN_CTRL_MSG, c.write(plate, colour, c.TAKE_PHOTO_REQ,
                                        c.write_photo_request(photo))
    if kind == "driver_info":
        ask = x.DriverRequest(flag=r.driver_flag)
        return x.DOWN_EXG_MSG, x.write(plate, colour, x.DOWN_REPORT_DRIVER_INFO,
                                       x.write_driver_request(ask, edition))
    if kind == "listen":
        return c.DOWN_CTRL_MSG, c.write(plate, colour, c.MONITOR_VEHICLE_REQ,
                                        c.write_listen(c.ListenRequest(tel=r.tel or "")))
    if kind == "tachograph":
        travel = c.TachographRequest(command=r.command_word or 0, start=r.start, end=r.end,
                                     max_blocks=r.max_blocks)
        return c.DOWN_CTRL_MSG, c.write(plate, colour, c.TAKE_TRAVEL_DATA_REQ,
                                        c.write_tachograph_request(travel, edition))
    if kind == "emergency_access":
        access = c.EmergencyAccess(auth_code=r.auth_code or "", apn=r.apn, user=r.dial_user,
                                   password=r.dial_password, server=r.server or "",
                                   tcp_port=r.tcp_port or 0, udp_port=r.udp_port, end=r.end)
        return c.DOWN_CTRL_MSG, c.write(plate, colour, c.EMERGENCY_MONITORING_REQ,
                                        c.write_emergency(access))
    return st.DOWN_BASE_MSG, st.write(plate, colour, st.VEHICLE_ADDED)


def supervision_id(request: PlatformRequest) -> int:
    return request.supervision_id if request.supervision_id is not None \
        else number(request.request_id)


def answer_number(request: PlatformRequest) -> int | None:
    """The id a 2011 answer quotes (None for kinds whose answers quote none)."""
    if request.kind == "supervision":
        return supervision_id(request)
    if request.kind in ("inspection", "text"):
        return number(request.request_id)
    return None


# --- the ledger -----------------------------------------------------------------------------

@dataclass
class Send:
    """Send this request now (the links of its platform are up here)."""

    request: PlatformRequest


@dataclass
class _Open:
    """A request sent, its answers awaited."""

    sent: PlatformRequestResult
    request: PlatformRequest | None = None
    answers: int = 0
    late_noted: bool = False


@dataclass
class Ledger:
    """What this gateway knows of the downward requests and their steps."""

    gateway: str
    link_wait_s: float
    waiting: dict[str, tuple[PlatformRequest, datetime]] = field(default_factory=dict)
    """Requests not sent yet, with when this gateway read them."""
    open: dict[str, _Open] = field(default_factory=dict)
    closed: dict[str, datetime] = field(default_factory=dict)
    """Requests done (failed, expired, answered; a tip sent), with when."""
    _serials: dict[tuple[int, int], str] = field(default_factory=dict)
    _numbers: dict[tuple[int, str, int], str] = field(default_factory=dict)
    _alarms: dict[tuple[int, str, int], str] = field(default_factory=dict)
    """(platform, 'sn' or 'info', the alarm's MSG_SN or INFO_ID) -> supervision request."""

    # --- what is read ------------------------------------------------------------------
    def apply_request(self, request: PlatformRequest, now: datetime) -> None:
        rid = request.request_id
        if rid in self.closed:
            return
        known = self.open.get(rid)
        if known is not None:
            if known.request is None:
                known.request = request
                self._index_alarm(request)
            return
        self.waiting.setdefault(rid, (request, now))

    def apply_result(self, result: PlatformRequestResult) -> None:
        """A step read on the results topic (also this gateway's own: idempotent)."""
        rid = result.request_id
        if result.status in FINAL:
            self.closed[rid] = result.at
            self.waiting.pop(rid, None)
            return
        if result.status == "sent" and rid not in self.open:
            waiting = self.waiting.pop(rid, None)
            request = waiting[0] if waiting is not None else None
            if result.kind not in ANSWERED_KINDS:
                self.closed[rid] = result.at
                return
            self.open[rid] = _Open(result, request)
            if result.serial is not None:
                self._serials[(result.platform, result.serial)] = rid
            if result.number is not None:
                self._numbers[(result.platform, result.kind, result.number)] = rid
            if request is not None:
                self._index_alarm(request)
        elif result.status == "late" and rid in self.open:
            self.open[rid].late_noted = True
        elif result.status == "answered" and rid in self.open:
            entry = self.open[rid]
            entry.answers += 1
            if result.kind not in MULTIPLE:
                self._close(rid, result.at)

    def _index_alarm(self, request: PlatformRequest) -> None:
        if request.kind != "supervision":
            return
        if request.alarm_sn is not None:
            self._alarms[(request.platform, "sn", request.alarm_sn)] = request.request_id
        if request.alarm_info_id is not None:
            self._alarms[(request.platform, "info", request.alarm_info_id)] = request.request_id

    def _close(self, rid: str, at: datetime) -> None:
        self.open.pop(rid, None)
        self.closed[rid] = at

    def forget(self, before: datetime) -> None:
        """Drop what is older than ``before`` (past the requests topic's retention: never
        read again), so that the ledger does not grow for ever."""
        for rid, at in list(self.closed.items()):
            if at < before:
                del self.closed[rid]
        for rid, entry in list(self.open.items()):
            if entry.sent.at < before:
                del self.open[rid]
        for index in (self._serials, self._numbers, self._alarms):
            for key, rid in list(index.items()):
                if rid not in self.open:
                    del index[key]

    # --- what to do now ----------------------------------------------------------------
    def due(self, now: datetime, link_up: Callable[[int], bool],
            elsewhere: Callable[[int], bool] = lambda code: False
            ) -> list[Send | PlatformRequestResult]:
        """The waiting requests to send now, and those to record expired or failed. A
        request whose platform is linked to another gateway (``elsewhere``) is left to it:
        its ``sent`` step ends the wait here."""
        out: list[Send | PlatformRequestResult] = []
        for rid, (request, read_at) in list(self.waiting.items()):
            if now >= request.expires_at:
                out.append(self.step(request, "expired", now, detail="not sent before it "
                                                                      "expired"))
                del self.waiting[rid]
            elif link_up(request.platform):
                out.append(Send(request))
                del self.waiting[rid]
            elif elsewhere(request.platform):
                continue
            elif (now - read_at).total_seconds() >= self.link_wait_s:
                out.append(self.step(request, "failed", now, detail="link down: neither link "
                                                                    "of the platform is up"))
                del self.waiting[rid]
        return out

    def late(self, now: datetime) -> list[PlatformRequestResult]:
        """Requests unanswered at their deadline (each once): noted by the gateway that
        sent it, or by any other :data:`LATE_GRACE` later (the sender is gone)."""
        out = []
        for entry in self.open.values():
            sent = entry.sent
            if entry.answers or entry.late_noted or sent.deadline is None or now <= sent.deadline:
                continue
            if sent.gateway != self.gateway and now - sent.deadline < LATE_GRACE:
                continue
            entry.late_noted = True
            out.append(_derive(sent, "late", now, detail="no answer by the deadline",
                               gateway=self.gateway))
        return out

    def step(self, request: PlatformRequest, status: str, now: datetime, **fields
             ) -> PlatformRequestResult:
        """A step of ``request``, by this gateway."""
        return PlatformRequestResult(
            request_id=request.request_id, platform=request.platform, kind=request.kind,
            status=status, at=now, gateway=self.gateway, vehicle_id=request.vehicle_id,
            incident_id=request.incident_id, deadline=request.deadline, **fields)

    def sent(self, request: PlatformRequest, route: str, serial: int,
             now: datetime) -> PlatformRequestResult:
        """The ``sent`` step, applied here at once (so that a quick answer finds it)."""
        result = self.step(request, "sent", now, route=route, serial=serial,
                           number=answer_number(request), sent_at=now)
        self.apply_request(request, now)
        self.waiting[request.request_id] = (request, now)
        self.apply_result(result)
        return result

    # --- answers -------------------------------------------------------------------------
    def answer(self, report: PlatformReport) -> PlatformRequestResult | None:
        """The ``answered`` step of the request ``report`` answers (None: no open request
        of this gateway's log)."""
        kind = ANSWERS.get(report.kind)
        if kind is None or report.data_type in UNASKED:
            return None
        rid = self._match(report, kind)
        entry = self.open.get(rid) if rid is not None else None
        if entry is None:
            return None
        sent = entry.sent
        at = report.received_at
        fields = dict(report.fields)
        if report.text is not None:
            fields["text"] = report.text
        late = sent.deadline is not None and at > sent.deadline
        result = _derive(sent, "answered", at, answer_kind=report.kind, answer=fields,
                         took_s=max(0.0, (at - (sent.sent_at or sent.at)).total_seconds()),
                         late=late, media_id=fields.get("media_id"))
        self.apply_result(result)
        return result

    def _match(self, report: PlatformReport, kind: str) -> str | None:
        p, f = report.platform, report.fields
        source_sn, source_type = f.get("source_sn"), f.get("source_type")
        if report.kind == "supervision_answer":
            sid = f.get("supervision_id")
            return (self._numbered(p, kind, sid) or self._serial(p, kind, sid)
                    or self._alarm(p, "sn", source_sn) or self._only(p, kind, report))
        if report.kind == "handling_result":
            if source_type == a.URGE_TODO_REQ:
                found = self._serial(p, kind, source_sn)
            else:
                found = self._alarm(p, "sn", source_sn) or self._alarm(p, "info", f.get("info_id"))
            return found or self._only(p, kind, report)
        if source_sn is not None:
            return self._serial(p, kind, source_sn)
        quoted = f.get("info_id") if kind == "inspection" else f.get("msg_id")
        if kind in ("inspection", "text"):
            return self._numbered(p, kind, quoted)
        return self._oldest(p, kind, report.vehicle_id)

    def _serial(self, platform: int, kind: str, serial) -> str | None:
        rid = self._serials.get((platform, serial)) if isinstance(serial, int) else None
        return rid if rid in self.open and self.open[rid].sent.kind == kind else None

    def _numbered(self, platform: int, kind: str, value) -> str | None:
        rid = self._numbers.get((platform, kind, value)) if isinstance(value, int) else None
        return rid if rid in self.open else None

    def _alarm(self, platform: int, field_: str, value) -> str | None:
        rid = self._alarms.get((platform, field_, value)) if isinstance(value, int) else None
        return rid if rid in self.open else None

    def _oldest(self, platform: int, kind: str, vehicle: str | None) -> str | None:
        found = [e.sent for e in self.open.values() if e.sent.platform == platform
                 and e.sent.kind == kind and e.answers == 0 and e.sent.vehicle_id == vehicle]
        return min(found, key=lambda s: s.at).request_id if found else None

    def _only(self, platform: int, kind: str, report: PlatformReport) -> str | None:
        found = [e.sent.request_id for e in self.open.values()
                 if e.sent.platform == platform and e.sent.kind == kind
                 and (report.vehicle_id is None or e.sent.vehicle_id == report.vehicle_id)]
        return found[0] if len(found) == 1 else None


RESULTS = {a.IN_PROGRESS: "in progress", a.DONE: "done", a.NOT_HANDLED: "not handled",
           a.LATER: "to be handled later"}
"""RESULT of 0x1401, 0x1412 and 0x1403."""


def incident_note(result: PlatformRequestResult) -> IncidentCommand | None:
    """A step of a supervision order as a note on the order's incident (None for the
    steps of other requests, or an order about no incident)."""
    if result.kind != "supervision" or not result.incident_id:
        return None
    p, status = result.platform, result.status
    if status == "sent":
        text = (f"supervision order (0x9401) sent to platform {p} (MSG_SN {result.serial}), "
                f"due {result.deadline.isoformat() if result.deadline else '-'}")
    elif status == "answered":
        outcome = result.answer.get("result")
        said = RESULTS.get(outcome, f"result {outcome}") if isinstance(outcome, int) else "?"
        what = ("answered the supervision order (0x1401)"
                if result.answer_kind == "supervision_answer"
                else "reported its handling (0x1412/0x1403)")
        text = (f"platform {p} {what}: {said}, {result.took_s or 0:.0f} s after the order"
                + (", late" if result.late else ""))
    elif status == "late":
        text = f"platform {p} has not answered the supervision order by its deadline"
    else:
        text = f"supervision order to platform {p} {status}: {result.detail or ''}".rstrip(": ")
    action_id = ":".join(("jt809", result.request_id, status, result.answer_kind or "",
                          result.at.isoformat()))
    return IncidentCommand(incident_id=result.incident_id, action=IncidentAction(
        kind="note", by=f"jt809 platform {p}", at=result.at, action_id=action_id, text=text))


def _derive(sent: PlatformRequestResult, status: str, at: datetime,
            **fields) -> PlatformRequestResult:
    """A later step of a sent request (its ids, vehicle, incident and deadline kept; the
    sender's gateway unless ``gateway`` names the one that took the step)."""
    gateway = fields.pop("gateway", sent.gateway)
    return PlatformRequestResult(
        request_id=sent.request_id, platform=sent.platform, kind=sent.kind, status=status,
        at=at, gateway=gateway, route=sent.route, serial=sent.serial, number=sent.number,
        vehicle_id=sent.vehicle_id, incident_id=sent.incident_id, deadline=sent.deadline,
        sent_at=sent.sent_at or sent.at, **fields)
