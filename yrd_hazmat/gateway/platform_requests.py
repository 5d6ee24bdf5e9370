"""Downward requests to the lower platforms and what became of them: the contract of
``yrd.platform-requests`` (key = access code) and ``yrd.platform-request-results`` (key =
access code); JSON Schemas in ``schemas/``.

A request (the desk, ``yrd-hazmat platform``) is one of: an inspection
(DOWN_PLATFORM_MSG_POST_QUERY_REQ 0x9301, answered 0x1301), a supervision order
(DOWN_WARN_MSG_URGE_TODO_REQ 0x9401, answered 0x1401, its handling result 0x1412/0x1403),
a text to a vehicle (DOWN_CTRL_MSG_TEXT_INFO 0x9503, answered 0x1503), a photo of a
vehicle (DOWN_CTRL_MSG_TAKE_PHOTO_REQ 0x9502, answered 0x1502), a warning tip
(DOWN_WARN_MSG_INFORM_TIPS 0x9402, no answer) or a vehicle's static information
(DOWN_BASE_MSG_VEHICLE_ADDED 0x9601, answered 0x1601).

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

RequestKind = Literal["inspection", "supervision", "text", "photo", "tip", "static_info"]
ResultStatus = Literal["sent", "failed", "expired", "late", "answered"]
AnswerKind = Literal["inspection_answer", "supervision_answer", "handling_result",
                     "text_answer", "photo_answer", "static_info"]
Byte = Annotated[int, Meta(ge=0, le=255)]
UInt32 = Annotated[int, Meta(ge=0, le=0xFFFFFFFF)]
RequestId = Annotated[str, Meta(min_length=1, max_length=80, pattern=r"^[0-9A-Za-z_.:\-]+$")]

VEHICLE_KINDS = frozenset({"supervision", "text", "photo", "tip", "static_info"})
TEXT_KINDS = frozenset({"inspection", "text", "tip"})
ANSWERED_KINDS = frozenset({"inspection", "supervision", "text", "photo", "static_info"})
"""Kinds the platform answers (a tip is done once sent)."""


class PlatformRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A downward message to a lower platform (topic ``yrd.platform-requests``, key = its
    access code in decimal), sent by the gateway holding the platform's links until
    ``expires_at``; its answer is due by ``deadline``."""

    request_id: RequestId
    platform: AccessCode
    kind: Annotated[RequestKind, Meta(
        description="inspection 0x9301, supervision 0x9401, text 0x9503, photo 0x9502, "
                    "tip 0x9402, static_info 0x9601")]
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
    """The vehicle (supervision, text, photo, tip, static_info)."""
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
        description="answered: 0x1301, 0x1401, 0x1412/0x1403, 0x1503, 0x1502, 0x1601")] | None = None
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
    if request.expires_at <= request.issued_at:
        return "expires_at is not after issued_at"
    if request.text is not None:
        try:
            request.text.encode("gbk")
        except UnicodeEncodeError:
            return "the text is not GBK (JT/T 809's encoding)"
    return None


def make_request(platform: int, kind: str, *, by: str, now: datetime, expires_in_s: float,
                 answer_within_s: float | None = None, **fields) -> PlatformRequest:
    """A valid request, or ValueError saying what is wrong."""
    if expires_in_s <= 0:
        raise ValueError(f"expires in {expires_in_s:g} s: must be after now")
    fields = {k: v for k, v in fields.items() if v is not None}
    if "deadline" not in fields and answer_within_s is not None and kind in ANSWERED_KINDS:
        fields["deadline"] = now + timedelta(seconds=answer_within_s)
    content = repr(sorted((k, str(v)) for k, v in fields.items()))
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
