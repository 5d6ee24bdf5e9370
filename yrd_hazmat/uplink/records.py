"""What the uplink reads and writes on Kafka.

In: ``yrd.pings`` (a ping goes up when the worker would accept it: :func:`accepted`; not
the positions the upper platform itself sent down, header :data:`ORIGIN`), ``yrd.alerts``
(:mod:`.warn` says which), ``yrd.uplink-answers`` (:class:`UplinkAnswer`, the desk's
answers), ``yrd.permits`` (who drives, the e-waybill: :mod:`.permits`). Out:
``yrd.uplink-requests`` (:class:`UplinkRequest`, the upper platform's requests with their
deadline, key = request id), ``yrd.commands`` (those for a truck's terminal, as
:class:`~yrd_hazmat.core.models.Command`) and ``yrd.pings`` (positions of vehicles from
elsewhere, 0x9202/0x9203, marked with :data:`ORIGIN`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from ..core.codec import decode_ping, time_ahead
from ..core.models import Media, Ping
from ..core.timeutil import to_ms
from ..jt809.exchange import Driver
from ..jt809.gnss import Fix


ORIGIN = ("yrd-origin", b"upper-platform")
"""The Kafka header of a ping the upper platform sent down (never sent back up)."""


def from_upper(headers) -> bool:
    return bool(headers) and ORIGIN in headers


def accepted(key: bytes | None, value: bytes | None, timestamp_ms: int | None, *,
             max_bytes: int, tolerance_ms: int, now_ms: int) -> Ping | None:
    """The ping of a ``yrd.pings`` record when the worker accepts it (decodes, keyed by
    its vehicle, not stamped ahead of its arrival: :func:`~yrd_hazmat.core.codec.decode_ping`,
    :func:`~yrd_hazmat.core.codec.time_ahead`) and it holds a valid fix; else None."""
    ping = decode_ping(key, value, max_bytes)
    if not isinstance(ping, Ping):
        return None
    received = timestamp_ms if timestamp_ms is not None else now_ms
    if time_ahead(ping, received, tolerance_ms, to_ms(ping.ts)) is not None:
        return None
    return ping if ping.fix_valid else None


def to_fix(ping: Ping) -> Fix:
    """GNSS_DATA of a ping (0x1202, 0x1203)."""
    return Fix(ts=ping.ts, lat=ping.lat, lon=ping.lon, speed_kmh=min(ping.speed_kmh, 6553.0),
               heading=ping.heading or 0, altitude_m=ping.altitude_m or 0,
               status=ping.status_flags, alarm=ping.alarm_flags, gcj02=ping.crs == "GCJ02",
               mileage_km=ping.mileage_km)


RequestKind = Literal["inspection", "supervision", "message", "notice", "text", "photo",
                      "listen", "tachograph", "emergency_access", "exchange_start",
                      "exchange_stop", "driver", "waybill", "static_info"]
"""inspection 0x9301 and supervision 0x9401 await a person's answer; message 0x9302
(acknowledged on receipt, 0x1302) and notice 0x9402/0x9403 (an alarm passed down) and
0x9204 (a vehicle from elsewhere) are for the desk to read; text 0x9503, photo 0x9502,
listen 0x9501, tachograph 0x9504 and emergency_access 0x9505 go to a truck's terminal as
a command and are answered from its result (0x1503, 0x1502, 0x1501, 0x1504, 0x1505:
:mod:`.terminal_answers`); exchange_start 0x9205 / exchange_stop 0x9206 are acknowledged
at once (0x1205, 0x1206), driver 0x920A, waybill 0x920B and static_info 0x9601 are
answered at once from the truck's permit (0x120A, 0x120B, 0x1601)."""


class UplinkRequest(msgspec.Struct, frozen=True, kw_only=True):
    """An upper platform's request for a person to answer (``yrd.uplink-requests``)."""

    request_id: str
    kind: RequestKind
    received_at: datetime
    deadline: datetime | None
    """inspection: received + ANSWER_TIME (2019, minutes) or YRD_UPLINK_INSPECTION_ANSWER_S;
    supervision: SUPERVISION_ENDTIME."""
    edition: int
    serial: int
    """The request frame's MSG_SN (2019 answers quote it as SOURCE_MSG_SN)."""
    link: Literal["main", "slave"]
    question: str | None = None
    """inspection: INFO_CONTENT."""
    info_id: int | None = None
    object_type: int | None = None
    object_id: str = ""
    answer_time: int | None = None
    plate: str | None = None
    """supervision (2011): the vehicle of the envelope."""
    colour: int | None = None
    supervision_id: int | None = None
    level: int | None = None
    supervisor: str | None = None
    tel: str | None = None
    email: str | None = None
    warn_type: int | None = None
    warn_time: datetime | None = None
    source_type: int | None = None
    """supervision (2019): the alarm report the order is about."""
    source_sn: int | None = None
    command_id: str | None = None
    """text, photo: the command that carries it to the truck (``yrd.commands``)."""
    sequence: int | None = None
    """text: MSG_SEQUENCE (2011 answers quote it)."""
    lens: int | None = None
    """photo: LENS_ID."""
    size: int | None = None
    """photo: SIZE_TYPE."""
    reason: int | None = None
    """exchange_start/_stop: REASON_CODE; tachograph: COMMAND_TYPE."""


class UplinkAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """An answer to a request (``yrd.uplink-answers``, key = request id): a person's to an
    inspection (its text, 0x1301) or an order (its result, 0x1401: 0 in progress, 1 done,
    2 not handled, 3 later); the terminal's to a text (``answered_by`` terminal, result 0
    delivered, 1 failed: 0x1503) or a photo (result PHOTO_RSP_FLAG, 1 taken, with the
    picture: 0x1502). ``request`` is the request answered, as read from the requests
    topic."""

    request: UplinkRequest
    answered_by: str
    answered_at: datetime
    content: str | None = None
    responder_tel: str = ""
    result: int | None = None
    media: Media | None = None
    """photo taken: the picture, as on ``yrd.media``."""
    driver: Driver | None = None
    """driver: who drives (0x120A), from the truck's permit."""
    data: str | None = None
    """tachograph: TRAVELDATA_INFO, the GB/T 19056 frame the terminal sent (hex)."""


request_decoder = msgspec.json.Decoder(UplinkRequest)
answer_decoder = msgspec.json.Decoder(UplinkAnswer)


TOPICS: dict[str, tuple[type[msgspec.Struct], str]] = {
    "uplink_requests": (UplinkRequest, "request id (equal to request_id)"),
    "uplink_answers": (UplinkAnswer, "request id (equal to request.request_id)"),
}
"""Settings suffix -> (the struct that is the topic's value, its key): the JSON Schemas of
``schemas/`` for the uplink's topics."""
