"""The desk's view of the JT/T 809 chain: the links to the lower platforms and to the
national platform above, the requests sent down to the lower platforms and what became
of them, and the national platform's requests to the region with their answers.

The desk follows (compacted or not) ``yrd.platforms`` (the platforms configured: their
passwords and cipher constants never leave this module), ``yrd.link-states`` (what the
gateways and the uplink report of their links: :func:`~yrd_hazmat.link_states.current`),
``yrd.platform-vehicles`` (which platform a vehicle came from), ``yrd.platform-requests``
and ``yrd.platform-request-results`` (ours, down), ``yrd.uplink-requests`` and
``yrd.uplink-answers`` (the national platform's, and the answers the desks gave).
:class:`LinkBook` keeps them and makes the views the API answers; the bodies of the
desk's requests (:class:`UplinkAnswerRequest`, :class:`InspectionRequest`,
:class:`SupervisionRequest`) are checked here, each fault a ValueError saying what is
wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ..core.models import Alert, IncidentLog
from ..follow import decoding
from ..gateway.platform_client import pending
from ..gateway.platform_records import PlatformVehicle
from ..gateway.platform_requests import (SECRETS, PlatformRequest, PlatformRequestResult,
                                         make_request)
from ..gateway.platforms import Platform, Platforms
from ..link_states import LinkStates, current
from ..uplink.records import UplinkAnswer, UplinkRequest, answer_decoder, request_decoder
from ..uplink.warn import other as other_warning, warn_type as alert_warn_type
from .users import User

KEPT_FOR = timedelta(days=30)
"""How long the desk remembers a request: as long as the results and uplink topics keep
their records."""
ANSWER_MAX = 1000
"""Characters of an inspection's answer (INFO_CONTENT)."""
QUESTION_MAX = 1000
DEADLINE_MAX_MIN = 7 * 24 * 60
ANSWERED = ("inspection", "supervision")
"""Kinds of the national platform's requests a person answers."""
RELAYED = ("text", "photo")
"""Kinds passed on to a truck's terminal, answered from its result (not by a person);
the others (message, notice) are read."""
FINAL_RESULTS = (1, 2)
"""A supervision order's results after which it takes no other answer: 1 done, 2 not
handled. 0 (in progress) and 3 (later) may be followed by another."""

_platform_request = msgspec.json.Decoder(PlatformRequest)
_platform_result = msgspec.json.Decoder(PlatformRequestResult)
_platform_vehicle = msgspec.json.Decoder(PlatformVehicle)


# --- bodies of the desk's requests ---------------------------------------------------------

class UplinkAnswerRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``POST /api/uplink/requests/{request_id}/answer``: an inspection's
    answer (``content``), or a supervision order's ``result`` (0 in progress, 1 done,
    2 not handled, 3 later) with an optional remark kept on the desk (0x1401 has no text)."""

    content: Annotated[str, Meta(max_length=ANSWER_MAX)] | None = None
    result: Annotated[int, Meta(ge=0, le=3)] | None = None


class InspectionRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``POST /api/platforms/{access_code}/inspections``."""

    question: Annotated[str, Meta(max_length=QUESTION_MAX)]
    deadline_min: Annotated[float, Meta(gt=0, le=DEADLINE_MAX_MIN)] | None = None


class SupervisionRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``POST /api/incidents/{incident_id}/supervision``."""

    deadline_min: Annotated[float, Meta(gt=0, le=DEADLINE_MAX_MIN)]
    supervisor: Annotated[str, Meta(max_length=64)]
    level: Literal["urgent", "normal"] = "normal"
    tel: Annotated[str, Meta(max_length=20)] = ""
    email: Annotated[str, Meta(max_length=32)] = ""


class VehicleRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``POST /api/trucks/{vehicle_id}/platform-requests``: a text for the
    driver (0x9503), a photo (0x9502), a warning tip (0x9402), who drives (0x920A),
    listening in (0x9501: the terminal calls ``tel`` back) or its tachograph data (0x9504,
    GB/T 19056 ``command_word``), through the lower platform the truck came from."""

    kind: Literal["text", "photo", "tip", "driver_info", "listen", "tachograph"]
    text: Annotated[str, Meta(max_length=QUESTION_MAX)] | None = None
    urgent: bool = False
    camera: Annotated[int, Meta(ge=1, le=255)] = 1
    tel: Annotated[str, Meta(max_length=20)] | None = None
    command_word: Annotated[int, Meta(ge=0, le=255)] | None = None


def vehicle_request_of(body: VehicleRequest, platform: Platform, vehicle: PlatformVehicle, *,
                       by: str, now: datetime, expires_in_s: float,
                       answer_within_s: float) -> PlatformRequest:
    """The request for a vehicle of a platform, or ValueError."""
    fields: dict[str, Any] = {"vehicle_id": vehicle.vehicle_id,
                              "plate_colour": vehicle.plate_colour}
    text = (body.text or "").strip()
    if body.kind in ("driver_info", "listen", "tachograph"):
        if text or body.urgent:
            raise ValueError(f"a {body.kind} request takes no text and no urgency")
        fields |= {"tel": (body.tel or "").strip() or None, "command_word": body.command_word}
    elif body.kind == "photo":
        if text or body.urgent:
            raise ValueError("a photo request takes no text and no urgency")
        fields["camera"] = body.camera
    else:
        if not text:
            raise ValueError(f"the {body.kind}'s text is empty")
        fields["text"] = text
        if body.kind == "text":
            fields["level"] = 0 if body.urgent else 1
    return make_request(platform.access_code, body.kind, by=by, now=now,
                        expires_in_s=expires_in_s, answer_within_s=answer_within_s, **fields)


def answer_of(body: UplinkAnswerRequest, request: UplinkRequest, *, by: str,
              now: datetime) -> UplinkAnswer:
    """The answer a desk user gave, or ValueError saying what is wrong with it."""
    content = (body.content or "").strip() or None
    if request.kind == "inspection":
        if body.result is not None:
            raise ValueError("an inspection is answered with a text (content), not a result")
        if content is None:
            raise ValueError("the answer is empty")
    elif body.result is None:
        raise ValueError("a supervision order is answered with a result: 0 in progress, "
                         "1 done, 2 not handled, 3 later")
    if content is not None:
        _gbk(content, "the answer")
    return UplinkAnswer(request=request, answered_by=by, answered_at=now, content=content,
                        result=body.result)


def _gbk(text: str, what: str, max_bytes: int | None = None) -> None:
    try:
        data = text.encode("gbk")
    except UnicodeEncodeError:
        raise ValueError(f"{what} has characters JT/T 809 cannot carry (GBK)") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise ValueError(f"{what} is {len(data)} bytes in GBK: at most {max_bytes}")


def inspection_of(body: InspectionRequest, platform: Platform, *, by: str, now: datetime,
                  expires_in_s: float, answer_within_s: float) -> PlatformRequest:
    """An inspection (0x9301) of the platform, or ValueError."""
    question = body.question.strip()
    if not question:
        raise ValueError("the question is empty")
    deadline = now + timedelta(minutes=body.deadline_min) if body.deadline_min else None
    return make_request(platform.access_code, "inspection", by=by, now=now,
                        expires_in_s=expires_in_s, answer_within_s=answer_within_s,
                        text=question, deadline=deadline)


def supervision_of(body: SupervisionRequest, target: "SupervisionTarget", *, by: str,
                   now: datetime, expires_in_s: float) -> PlatformRequest:
    """A supervision order (0x9401) about the target's alert, or ValueError."""
    supervisor = body.supervisor.strip()
    if not supervisor:
        raise ValueError("the supervisor is empty")
    _gbk(supervisor, "the supervisor", 16)
    _gbk(body.tel, "the telephone", 20)
    _gbk(body.email, "the e-mail", 32)
    return make_request(
        target.platform.access_code, "supervision", by=by, now=now, expires_in_s=expires_in_s,
        incident_id=target.incident_id, vehicle_id=target.vehicle_id,
        plate_colour=target.plate_colour, warn_type=target.warn_type, warn_time=target.warn_time,
        alarm_info_id=target.alarm_info_id, source_platform_id=target.source_platform_id,
        deadline=now + timedelta(minutes=body.deadline_min),
        level=0 if body.level == "urgent" else 1, supervisor=supervisor,
        supervisor_tel=body.tel.strip(), supervisor_email=body.email.strip())


class SupervisionTarget(msgspec.Struct, frozen=True, kw_only=True):
    """Where a supervision order about an incident's alert goes, and what it quotes."""

    incident_id: str
    vehicle_id: str
    platform: Platform
    plate_colour: int
    warn_type: int
    warn_time: datetime | None
    alarm_info_id: int | None = None
    source_platform_id: str = ""


# --- the book ------------------------------------------------------------------------------

class LinkBook:
    """Everything the desk shows of the chain, from the topics it follows. ``listeners``
    hear ``(what, id)``: ``("platform-request", request id)`` when a request down or one of
    its steps arrives, ``("uplink-request", request id)`` for a request of the national
    platform, ``("uplink-answer", request id)`` for an answer to one."""

    def __init__(self, fallback: Platform | None = None) -> None:
        self.platforms = Platforms(fallback)
        """The platforms of ``yrd.platforms`` over the one of the ``YRD_JT809_*`` settings
        (as the gateway has them)."""
        self.states = LinkStates()
        self.vehicles: dict[str, PlatformVehicle] = {}
        self.requests: dict[str, PlatformRequest] = {}
        self.results: dict[str, list[PlatformRequestResult]] = {}
        self.upward: dict[str, UplinkRequest] = {}
        self.answers: dict[str, list[UplinkAnswer]] = {}
        self.media_ids: dict[tuple[str, str, datetime], str] = {}
        """(request id, answered by, answered at) -> the picture of a photo's answer (the
        picture itself is not kept here: it is on the media topic)."""
        self.listeners: list[Callable[[str, str], None]] = []
        # what the desk follows (each a record of its topic; an unreadable one skipped)
        self.apply_request = decoding(_platform_request.decode, self.add_request)
        self.apply_result = decoding(_platform_result.decode, self.add_result)
        self.apply_uplink_request = decoding(request_decoder.decode, self.add_uplink_request)
        self.apply_uplink_answer = decoding(answer_decoder.decode, self.add_answer)

    def _changed(self, what: str, request_id: str) -> None:
        for listener in list(self.listeners):
            listener(what, request_id)

    # --- the topics -----------------------------------------------------------------------
    def apply_platform(self, key: bytes | None, value: bytes | None) -> None:
        self.platforms.apply(key, value)

    def apply_state(self, key: bytes | None, value: bytes | None) -> None:
        self.states.apply(key, value)

    def apply_vehicle(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        plate = key.decode("utf-8", "replace")
        if value is None:
            self.vehicles.pop(plate, None)
            return
        try:
            vehicle = _platform_vehicle.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if vehicle.vehicle_id == plate:
            self.vehicles[plate] = vehicle

    def add_request(self, request: PlatformRequest) -> None:
        """A request down, read or just published (the same one again changes nothing)."""
        if request.request_id in self.requests:
            return
        self.requests[request.request_id] = request
        self._changed("platform-request", request.request_id)

    def add_result(self, result: PlatformRequestResult) -> None:
        self.results.setdefault(result.request_id, []).append(result)
        self._changed("platform-request", result.request_id)

    def add_uplink_request(self, request: UplinkRequest) -> None:
        if request.request_id in self.upward:
            return
        self.upward[request.request_id] = request
        self._changed("uplink-request", request.request_id)

    def add_answer(self, answer: UplinkAnswer) -> None:
        """An answer, read or just published (the same one read back changes nothing)."""
        request_id = answer.request.request_id
        answers = self.answers.setdefault(request_id, [])
        if any((a.answered_by, a.answered_at) == (answer.answered_by, answer.answered_at)
               for a in answers):
            return
        media = answer.media
        if media is not None:
            self.media_ids[(request_id, answer.answered_by, answer.answered_at)] = media.media_id
            answer = msgspec.structs.replace(answer, media=None)
        answers.append(answer)
        self.upward.setdefault(request_id, answer.request)
        self._changed("uplink-answer", request_id)

    def prune(self, now: datetime) -> None:
        """Forget what the topics no longer keep."""
        for request_id, request in list(self.requests.items()):
            if request.issued_at + KEPT_FOR < now:
                del self.requests[request_id]
                self.results.pop(request_id, None)
        for request_id, steps in list(self.results.items()):
            if request_id not in self.requests and steps[-1].at + KEPT_FOR < now:
                del self.results[request_id]
        for request_id, up in list(self.upward.items()):
            if up.received_at + KEPT_FOR < now:
                del self.upward[request_id]
                for answer in self.answers.pop(request_id, []):
                    self.media_ids.pop((request_id, answer.answered_by, answer.answered_at),
                                       None)

    # --- who sees what --------------------------------------------------------------------
    def platform(self, access_code: int) -> Platform | None:
        return self.platforms.get(access_code)

    def sees_request(self, user: User, request: PlatformRequest,
                     incident: Callable[[str], IncidentLog | None]) -> bool:
        """A request down is the user's when they sent it, its platform reports for their
        jurisdiction, or it is about an incident of theirs (a region user sees them all)."""
        if user.jurisdiction == "region" or request.issued_by == user.name:
            return True
        platform = self.platform(request.platform)
        if platform is not None and platform.province is not None \
                and user.sees(platform.province):
            return True
        record = incident(request.incident_id) if request.incident_id else None
        return record is not None and user.sees(record.home)

    # --- the views ------------------------------------------------------------------------
    def links(self, now: datetime, uplink_configured: bool = False) -> list[dict[str, Any]]:
        """The uplink and every lower platform: configured ones that never reported are
        down; reported ones no longer configured are listed too (``configured`` false)."""
        views = {(v.link, v.access_code): v for v in current(self.states.values(), now)}
        out = []
        uplinks = [v for (link, _), v in views.items() if link == "uplink"]
        if not uplinks and uplink_configured:
            out.append({"link": "uplink", "access_code": None, "name": "", "status": "down",
                        "since": None, "positions": 0, "last_position_at": None,
                        "resend_lag_s": None, "reconnects": 0, "reporters": [],
                        "reported_at": None, "configured": True})
        out += [msgspec.to_builtins(v) | {"configured": True} for v in uplinks]
        codes = sorted(set(self.platforms) | {code for (link, code) in views
                                              if link == "platform"})
        for code in codes:
            platform = self.platform(code)
            view = views.get(("platform", code))
            entry = (msgspec.to_builtins(view) if view is not None else
                     {"link": "platform", "access_code": code, "name": "", "status": "down",
                      "since": None, "positions": 0, "last_position_at": None,
                      "resend_lag_s": None, "reconnects": 0, "reporters": [],
                      "reported_at": None})
            entry["configured"] = platform is not None
            if platform is not None:
                entry |= {"name": platform.name, "edition": platform.edition,
                          "enabled": platform.enabled, "province": platform.province}
            out.append(entry)
        return out

    def request_view(self, request_id: str, now: datetime) -> dict[str, Any] | None:
        """A request down with its steps: ``status`` (waiting: no gateway took it yet;
        sent; answered_partly: a supervision order answered, not handled yet; answered;
        failed; expired), ``open`` (waiting for its answer), ``late``, the answers."""
        request = self.requests.get(request_id)
        if request is None:
            return None
        steps = self.results.get(request_id, [])
        statuses = {s.status for s in steps}
        open_ = pending(steps, now)
        answers = [s for s in steps if s.status == "answered"]
        sent = next((s for s in steps if s.status == "sent"), None)
        if answers:
            status = "answered_partly" if open_ else "answered"
        elif "failed" in statuses:
            status = "failed"
        elif "expired" in statuses:
            status = "expired"
        elif sent is not None:
            status = "sent"
        else:
            status = "waiting"
        deadline = request.deadline
        late = bool(open_ and open_[0].late) or any(a.late for a in answers) or (
            status == "waiting" and deadline is not None and now > deadline)
        platform = self.platform(request.platform)
        shown = {k: v for k, v in msgspec.to_builtins(request).items() if k not in SECRETS}
        return shown | {
            "platform_name": platform.name if platform is not None else "",
            "status": status, "open": bool(open_) or status == "waiting", "late": late,
            "sent_at": sent.at if sent is not None else None,
            "route": sent.route if sent is not None else None,
            "detail": next((s.detail for s in reversed(steps) if s.detail), None),
            "answers": [{"at": a.at, "answer_kind": a.answer_kind, "answer": a.answer,
                         "took_s": a.took_s, "late": a.late, "media_id": a.media_id}
                        for a in answers],
            "steps": [{"status": s.status, "at": s.at, "gateway": s.gateway} for s in steps],
        }

    def request_views(self, user: User, incident: Callable[[str], IncidentLog | None],
                      now: datetime, *, incident_id: str | None = None,
                      vehicle_id: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """The user's requests down, newest first (``incident_id``, ``vehicle_id``: those
        about an incident or a truck the caller found the user's)."""
        if incident_id is not None:
            chosen = [r for r in self.requests.values() if r.incident_id == incident_id]
        elif vehicle_id is not None:
            chosen = [r for r in self.requests.values() if r.vehicle_id == vehicle_id]
        else:
            chosen = [r for r in self.requests.values() if self.sees_request(user, r, incident)]
        chosen.sort(key=lambda r: r.issued_at, reverse=True)
        return [v for r in chosen[:limit] if (v := self.request_view(r.request_id, now))]

    def uplink_view(self, request_id: str, now: datetime) -> dict[str, Any] | None:
        """A request of the national platform: ``status`` open, answered (no other answer
        taken), ``read`` (a message or notice) or, for a text or photo passed on to a
        truck, ``waiting`` for the terminal's result; ``late``: past its deadline without
        a final answer, or answered after it; the answers, who gave them and when."""
        request = self.upward.get(request_id)
        if request is None:
            return None
        answers = sorted(self.answers.get(request_id, []), key=lambda a: a.answered_at)
        deadline = request.deadline
        if request.kind in RELAYED:
            status = "answered" if answers else "waiting"
        elif request.kind not in ANSWERED:
            status = "read"
        elif final_answer(request, answers) is not None:
            status = "answered"
        else:
            status = "open"
        first = answers[0] if answers else None
        late = deadline is not None and (
            (status in ("open", "waiting") and now > deadline)
            or (first is not None and first.answered_at > deadline))
        return msgspec.to_builtins(request) | {
            "status": status, "late": late,
            "answers": [{"answered_by": a.answered_by, "answered_at": a.answered_at,
                         "content": a.content, "result": a.result,
                         "media_id": self.media_ids.get((request_id, a.answered_by,
                                                         a.answered_at)),
                         "late": deadline is not None and a.answered_at > deadline}
                        for a in answers]}

    def uplink_views(self, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
        """The national platform's requests, newest first."""
        chosen = sorted(self.upward.values(), key=lambda r: r.received_at, reverse=True)
        return [v for r in chosen[:limit] if (v := self.uplink_view(r.request_id, now))]

    def supervision_target(self, incident_id: str, alert: Alert | None,
                           record: IncidentLog | None) -> SupervisionTarget:
        """Where an order about the incident's alert goes: the platform that raised it (a
        platform alarm), else the one that registered its vehicle; ValueError when none."""
        vehicle_id = (alert.vehicle_id if alert is not None
                      else record.vehicle_id if record is not None else None)
        if vehicle_id is None:
            raise ValueError("no such incident")
        details = (alert.details if alert is not None else None) or {}
        registered = self.vehicles.get(vehicle_id)
        code = details.get("platform") if details.get("source") == "jt809" else None
        if not isinstance(code, int):
            code = registered.platform if registered is not None else None
        if code is None:
            raise ValueError(f"{vehicle_id} was not registered by a lower platform: "
                             "there is no platform to supervise")
        platform = self.platform(code)
        if platform is None:
            raise ValueError(f"{vehicle_id} came from platform {code}, which is not "
                             "configured any more")
        colour = details.get("plate_colour")
        if not isinstance(colour, int):
            colour = registered.plate_colour if registered is not None else 2
        warn = details.get("warn_type")
        if not isinstance(warn, int):
            warn = (alert_warn_type(alert, platform.edition) if alert is not None else None)
            if warn is None:
                warn = other_warning(platform.edition)
        info_id = details.get("info_id")
        source = details.get("source_platform_id")
        return SupervisionTarget(
            incident_id=incident_id, vehicle_id=vehicle_id, platform=platform,
            plate_colour=colour, warn_type=warn,
            warn_time=alert.ts if alert is not None else (record.raised_at if record else None),
            alarm_info_id=info_id if isinstance(info_id, int) else None,
            source_platform_id=source if isinstance(source, str) else "")


def final_answer(request: UplinkRequest, answers: list[UplinkAnswer]) -> UplinkAnswer | None:
    """The answer after which a request takes no other: an inspection's first, a
    supervision order's first result of done or not handled."""
    for answer in answers:
        if request.kind == "inspection" or answer.result in FINAL_RESULTS:
            return answer
    return None


def platform_view(platform: Platform) -> dict[str, Any]:
    """What the desk may show of a platform: never its password or cipher constants."""
    return {"access_code": platform.access_code, "name": platform.name,
            "edition": platform.edition, "enabled": platform.enabled,
            "province": platform.province}
