"""Downward requests to the lower platforms and what became of them: the contract of
``yrd.platform-requests`` (key = access code) and ``yrd.platform-request-results`` (key =
access code); JSON Schemas in ``schemas/``.

A request (the desk, ``yrd-hazmat platform``) is one of: an inspection
(DOWN_PLATFORM_MSG_POST_QUERY_REQ 0x9301, answered 0x1301), a supervision order
(DOWN_WARN_MSG_URGE_TODO_REQ 0x9401, answered 0x1401, its handling result 0x1412/0x1403),
a text to a vehicle (DOWN_CTRL_MSG_TEXT_INFO 0x9503, answered 0x1503), a photo of a
vehicle (DOWN_CTRL_MSG_TAKE_PHOTO_REQ 0x9502, answered 0x1502), a warning tip
(DOWN_WARN_MSG_INFORM_TIPS 0x9402, no answer), a vehicle's static information
(DOWN_BASE_MSG_VEHICLE_ADDED 0x9601, answered 0x1601), who drives a vehicle
(DOWN_EXG_MSG_REPORT_DRIVER_INFO 0x920A, answered 0x120A), listening in to a vehicle
(DOWN_CTRL_MSG_MONITOR_VEHICLE_REQ 0x9501: its terminal calls ``tel`` back; answered
0x1501), a vehicle's tachograph data (DOWN_CTRL_MSG_TAKE_TRAVEL_DATA_REQ 0x9504, answered
0x1504) or a vehicle's terminal to connect to another platform
(DOWN_CTRL_MSG_EMERGENCY_MONITORING_REQ 0x9505, answered 0x1505). The dial password of
the last (``dial_password``) is a secret: it is on the topic, which the gateway needs,
and nowhere else (not in a request's repr nor its id's digest; the desk leaves it out).

Each step is a :class:`PlatformRequestResult`: ``sent`` (its MSG_SN and route),
``failed`` (no link up), ``expired`` (not sent by ``expires_at``), ``late`` (no answer by
``deadline``), ``answered`` (one per answer: the answer, the time it took, whether late).
"""

from __future__ import annotations

import hashlib
import zlib
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ..core.models import EventTime, VehicleId
from .platform_records import AccessCode

RequestKind = Literal["inspection", "supervision", "text", "photo", "tip", "static_info",
                      "driver_info", "listen", "tachograph", "emergency_access"]
ResultStatus = Literal["sent", "failed", "expired", "late", "answered"]
AnswerKind = Literal["inspection_answer", "supervision_answer", "handling_result",
                     "text_answer", "photo_answer", "static_info", "driver_info",
                     "listen_answer", "tachograph_answer", "emergency_access_answer"]
Byte = Annotated[int, Meta(ge=0, le=255)]
UInt16 = Annotated[int, Meta(ge=0, le=0xFFFF)]
UInt32 = Annotated[int, Meta(ge=0, le=0xFFFFFFFF)]
RequestId = Annotated[str, Meta(min_length=1, max_length=80, pattern=r"^[0-9A-Za-z_.:\-]+$")]

VEHICLE_KINDS = frozenset({"supervision", "text", "photo", "tip", "static_info",
                           "driver_info", "listen", "tachograph", "emergency_access"})
TEXT_KINDS = frozenset({"inspection", "text", "tip"})
ANSWERED_KINDS = frozenset({"inspection", "supervision", "text", "photo", "static_info",
                            "driver_info", "listen", "tachograph", "emergency_access"})
"""Kinds the platform answers (a tip is done once sent)."""
SECRETS = frozenset({"dial_password"})
"""Fields never shown: not in a request's repr, its id's digest, the desk's views."""
EMERGENCY_TEXTS = (("server", "SERVER_IP", 32), ("apn", "ACCESS_POINT_NAME", 20),
                   ("dial_user", "USERNAME", 49), ("dial_password", "PASSWORD", 22))
"""emergency_access's texts, their 0x9505 fields and widths in bytes (GBK)."""
TEL_BYTES = 20
"""MONITOR_TEL: 20 bytes."""
AUTH_DIGITS = 20
"""AUTHENTICATION_CODE: 10 BCD bytes."""


class PlatformRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A downward message to a lower platform (topic ``yrd.platform-requests``, key = its
    access code in decimal), sent by the gateway holding the platform's links until
    ``expires_at``; its answer is due by ``deadline``."""

    request_id: RequestId
    platform: AccessCode
    kind: Annotated[RequestKind, Meta(
        description="inspection 0x9301, supervision 0x9401, text 0x9503, photo 0x9502, "
                    "tip 0x9402, static_info 0x9601, driver_info 0x920A, listen 0x9501, "
                    "tachograph 0x9504, emergency_access 0x9505")]
    issued_by: Annotated[str, Meta(min_length=1, max_length=64)]
    issued_at: EventTime
    expires_at: Annotated[EventTime, Meta(description="not sent by then: expired")]
    deadline: Annotated[EventTime, Meta(
        description="the answer is due by then (supervision: SUPERVISION_ENDTIME); "
                    "later: late")] | None = None
    text: Annotated[str, Meta(min_length=1, max_length=1000, description=(
        "inspection: the question (INFO_CONTENT); text: MSG_CONTENT; tip: the tip's "
        "INFO_CONTENT"))] | None = None
    object_type: Annotated[int, Meta(ge=1, le=3, description=(
        "inspection OBJECT_TYPE: 1 the platform, 2 one carrier, 3 all its carriers"))] = 1
    object_id: Annotated[str, Meta(max_length=20, description="inspection OBJECT_ID")] = ""
    vehicle_id: VehicleId | None = None
    """The vehicle (supervision, text, photo, tip, static_info, driver_info, listen,
    tachograph, emergency_access)."""
    plate_colour: Annotated[Byte, Meta(description="VEHICLE_COLOR (JT/T 415; 2 yellow)")] = 2
    incident_id: Annotated[str, Meta(max_length=128, description=(
        "supervision: the incident of the alert the order is about (its answers are "
        "recorded there)"))] | None = None
    warn_type: Annotated[int, Meta(ge=0, le=0xFFFF, description="supervision, tip: WARN_TYPE")] = 0
    warn_time: Annotated[EventTime, Meta(description="supervision, tip: WARN_TIME")] | None = None
    warn_src: Annotated[Byte, Meta(description="WARN_SRC (2011): 1 terminal, 2 enterprise, "
                                               "3 government, 9 other")] = 3
    supervision_id: Annotated[UInt32, Meta(description=(
        "SUPERVISION_ID (2011; default: a number derived from the request id)"))] | None = None
    alarm_sn: Annotated[UInt32, Meta(description=(
        "2019: SOURCE_MSG_SN, the MSG_SN of the alarm report 0x1402 the order is about"))] \
        | None = None
    alarm_info_id: Annotated[UInt32, Meta(description=(
        "2011: INFO_ID of that alarm (0x1403 handling results quote it)"))] | None = None
    source_platform_id: Annotated[str, Meta(max_length=11, description=(
        "2019: SOURCE_PLATFORM_ID, the platform that raised the alarm"))] = ""
    level: Annotated[Literal[0, 1], Meta(description="SUPERVISION_LEVEL: 0 urgent, 1 normal "
                                                     "(text: MSG_PRIORITY alike)")] = 1
    supervisor: Annotated[str, Meta(max_length=16)] = ""
    supervisor_tel: Annotated[str, Meta(max_length=20)] = ""
    supervisor_email: Annotated[str, Meta(max_length=32)] = ""
    camera: Annotated[int, Meta(ge=0, le=255, description="photo: LENS_ID")] = 1
    size: Annotated[int, Meta(ge=1, le=8, description="photo: SIZE_TYPE (2 640x480)")] = 2
    driver_flag: Annotated[int, Meta(ge=0, le=1, description=(
        "driver_info, 2019 FLAG: 0 the driver the platform knows last, 1 ask the "
        "terminal"))] = 0
    tel: Annotated[str, Meta(max_length=TEL_BYTES, description=(
        "listen (required): MONITOR_TEL, the number the terminal calls back (digits)"))] \
        | None = None
    command_word: Annotated[Byte, Meta(description=(
        "tachograph (required): COMMAND_TYPE, the GB/T 19056 command word (0x08-0x15: the "
        "records between start and end)"))] | None = None
    start: Annotated[EventTime, Meta(description="tachograph: START_TIME")] | None = None
    end: Annotated[EventTime, Meta(description=(
        "tachograph: END_TIME; emergency_access: END_TIME, until when the terminal stays "
        "connected to the other platform"))] | None = None
    max_blocks: Annotated[UInt16, Meta(description=(
        "tachograph, 2011 record queries: the most data blocks"))] | None = None
    server: Annotated[str, Meta(max_length=32, description=(
        "emergency_access (required): SERVER_IP, the platform the terminal connects to"))] \
        | None = None
    tcp_port: Annotated[UInt16, Meta(description="emergency_access (required): TCP_PORT")] \
        | None = None
    udp_port: Annotated[UInt16, Meta(description="emergency_access: UDP_PORT")] = 0
    apn: Annotated[str, Meta(max_length=20, description=(
        "emergency_access: ACCESS_POINT_NAME of the dial-up"))] = ""
    dial_user: Annotated[str, Meta(max_length=49, description=(
        "emergency_access: USERNAME of the dial-up"))] = ""
    dial_password: Annotated[str, Meta(max_length=22, description=(
        "emergency_access: PASSWORD of the dial-up, a secret (never shown)"))] = ""
    auth_code: Annotated[str, Meta(max_length=AUTH_DIGITS, description=(
        "emergency_access (required): AUTHENTICATION_CODE the terminal gives the other "
        "platform, up to 20 digits"))] | None = None

    def __repr__(self) -> str:  # the dial password is a secret
        shown = ", ".join(
            f"{name}={'****' if name in SECRETS and value else value!r}"
            for name, value in msgspec.structs.asdict(self).items())
        return f"PlatformRequest({shown})"


class PlatformRequestResult(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a downward request (topic ``yrd.platform-request-results``, key = the
    platform's access code): sent, failed, expired, late or answered."""

    request_id: str
    platform: AccessCode
    kind: RequestKind
    status: ResultStatus
    at: EventTime
    gateway: str | None = None
    route: Annotated[Literal["slave", "main"], Meta(
        description="sent: the link it took")] | None = None
    serial: Annotated[UInt32, Meta(description="sent: the frame's MSG_SN (2019 answers quote "
                                               "it as SOURCE_MSG_SN)")] | None = None
    number: Annotated[UInt32, Meta(description=(
        "sent: the id 2011 answers quote (INFO_ID, SUPERVISION_ID, MSG_SEQUENCE)"))] | None = None
    detail: str | None = None
    vehicle_id: VehicleId | None = None
    incident_id: str | None = None
    deadline: EventTime | None = None
    answer_kind: Annotated[AnswerKind, Meta(
        description="answered: 0x1301, 0x1401, 0x1412/0x1403, 0x1503, 0x1502, 0x1601, "
                    "0x120A, 0x1501, 0x1504, 0x1505")] | None = None
    answer: Annotated[dict[str, Any], Meta(description="answered: the answer's fields")] = {}
    sent_at: EventTime | None = None
    took_s: Annotated[float, Meta(ge=0, description="answered: answered_at - sent_at")] | None = None
    late: bool = False
    """answered: after the deadline."""
    media_id: Annotated[str, Meta(description="photo answered: the picture on yrd.media")] \
        | None = None


def request_id(platform: int, kind: str, by: str, at: datetime, content: str = "") -> str:
    """Unique and readable, as command ids are: when, what, and a digest of the rest."""
    digest = hashlib.sha256("\x1f".join((str(platform), kind, by, content)).encode()).hexdigest()
    return f"{at:%Y%m%dT%H%M%S}.{at.microsecond // 1000:03d}-{kind}-{digest[:10]}"


def number(request_id_: str) -> int:
    """The request's id in the 32-bit fields 2011 answers quote (INFO_ID, SUPERVISION_ID,
    MSG_SEQUENCE): derived from its id, the same in every gateway."""
    return zlib.crc32(request_id_.encode()) or 1


def problem(request: PlatformRequest) -> str | None:
    """What makes a well-typed request unusable (None: nothing)."""
    kind = request.kind
    if kind in VEHICLE_KINDS and request.vehicle_id is None:
        return f"a {kind} request names its vehicle (vehicle_id)"
    if kind in TEXT_KINDS and not request.text:
        return f"a {kind} request needs its text"
    if kind == "supervision" and request.deadline is None:
        return "a supervision order needs its deadline (SUPERVISION_ENDTIME)"
    if kind == "listen" and not request.tel:
        return "a listen request needs the number the terminal calls back (tel)"
    if request.tel and not (request.tel.isascii() and request.tel.isdigit()):
        return f"tel {request.tel!r} is not a telephone number (digits only)"
    if kind == "tachograph" and request.command_word is None:
        return "a tachograph request needs its GB/T 19056 command word (command_word)"
    if request.start is not None and request.end is not None and request.end < request.start:
        return "end is before start"
    if kind == "emergency_access":
        found = _emergency_problem(request)
        if found is not None:
            return found
    if request.expires_at <= request.issued_at:
        return "expires_at is not after issued_at"
    if request.text is not None:
        try:
            request.text.encode("gbk")
        except UnicodeEncodeError:
            return "the text is not GBK (JT/T 809's encoding)"
    return None


def _emergency_problem(request: PlatformRequest) -> str | None:
    """What makes an emergency_access request unusable (its messages never quote the
    password)."""
    code = request.auth_code
    if not code:
        return "an emergency_access request needs its authentication code (auth_code)"
    if not (code.isascii() and code.isdigit()):
        return f"the authentication code (auth_code) is {AUTH_DIGITS} digits at most, " \
               "nothing else"
    if not request.server:
        return "an emergency_access request needs the server to connect to (server)"
    if not request.tcp_port:
        return "an emergency_access request needs the server's TCP port (tcp_port)"
    for name, field, size in EMERGENCY_TEXTS:
        try:
            data = getattr(request, name).encode("gbk")
        except UnicodeEncodeError:
            return f"{name} ({field}) is not GBK (JT/T 809's encoding)"
        if len(data) > size:
            return f"{name} ({field}) is {len(data)} bytes in GBK: at most {size}"
    return None


def make_request(platform: int, kind: str, *, by: str, now: datetime, expires_in_s: float,
                 answer_within_s: float | None = None, **fields) -> PlatformRequest:
    """A valid request, or ValueError saying what is wrong."""
    if expires_in_s <= 0:
        raise ValueError(f"expires in {expires_in_s:g} s: must be after now")
    fields = {k: v for k, v in fields.items() if v is not None}
    if "deadline" not in fields and answer_within_s is not None and kind in ANSWERED_KINDS:
        fields["deadline"] = now + timedelta(seconds=answer_within_s)
    content = repr(sorted((k, str(v)) for k, v in fields.items() if k not in SECRETS))
    try:
        request = msgspec.convert(
            {"request_id": request_id(platform, kind, by, now, content), "platform": platform,
             "kind": kind, "issued_by": by, "issued_at": now,
             "expires_at": now + timedelta(seconds=expires_in_s), **fields}, PlatformRequest)
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc)) from None
    found = problem(request)
    if found is not None:
        raise ValueError(found)
    return request


TOPICS: dict[str, tuple[type[msgspec.Struct], str]] = {
    "platform_requests": (PlatformRequest, "access code of the platform (decimal; equal to "
                                           "platform)"),
    "platform_request_results": (PlatformRequestResult, "access code of the platform (decimal; "
                                                        "equal to platform)"),
}
