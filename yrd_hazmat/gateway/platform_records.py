"""What lower platforms send up besides positions and alarms, as records of their topics
(the contract of ``yrd.platform-vehicles``, ``yrd.ewaybills`` and
``yrd.platform-reports``; JSON Schemas in ``schemas/``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ..core.models import EventTime, VehicleId
from .platforms import Platform

AccessCode = Annotated[int, Meta(ge=0, le=0xFFFFFFFF,
                                 description="the lower platform's access code (MSG_GNSSCENTERID)")]


class PlatformVehicle(msgspec.Struct, frozen=True, kw_only=True):
    """A vehicle a lower platform registered (JT/T 809 UP_EXG_MSG_REGISTER 0x1201): its
    terminal, as the platform knows it (compacted topic ``yrd.platform-vehicles``, key =
    plate; the latest registration holds)."""

    vehicle_id: VehicleId
    plate_colour: Annotated[int, Meta(ge=0, le=255, description="VEHICLE_COLOR (JT/T 415)")]
    platform: AccessCode
    platform_id: Annotated[str, Meta(description="PLATFORM_ID: the platform's own id")]
    producer_id: Annotated[str, Meta(description="PRODUCER_ID: the terminal's maker")]
    terminal_model: Annotated[str, Meta(description="TERMINAL_MODEL_TYPE")]
    terminal_id: Annotated[str, Meta(description="TERMINAL_ID")]
    sim: Annotated[str, Meta(description="TERMINAL_SIMCODE: the terminal's SIM number")]
    imei: Annotated[str, Meta(description="2019: the terminal's IMEI")] | None = None
    edition: Literal[2011, 2019] = 2011
    registered_at: Annotated[EventTime, Meta(description="when the gateway received it")]


class EWaybill(msgspec.Struct, frozen=True, kw_only=True):
    """An electronic waybill a lower platform sent for one of its vehicles (JT/T 809
    UP_EXG_MSG_REPORT_EWAYBILL_INFO 0x120D, sent unasked, or UP_EXG_MSG_TAKE_EWAYBILL_ACK
    0x120B, the answer to DOWN_EXG_MSG_TAKE_EWAYBILL_REQ 0x920B) (topic ``yrd.ewaybills``,
    key = plate)."""

    vehicle_id: VehicleId
    plate_colour: Annotated[int, Meta(ge=0, le=255)]
    platform: AccessCode
    kind: Annotated[Literal["report", "answer"], Meta(
        description="report: 0x120D; answer: 0x120B")]
    text: Annotated[str, Meta(description="EWAYBILL_INFO as sent (GBK, decoded)")]
    source_sn: Annotated[int, Meta(
        description="2019 0x120B: the MSG_SN of the request it answers")] | None = None
    received_at: EventTime


class PlatformReport(msgspec.Struct, frozen=True, kw_only=True):
    """Something else a lower platform sent up, kept as sent (topic
    ``yrd.platform-reports``, key = access code): a vehicle's static information (0x1601,
    the answer to DOWN_BASE_MSG_VEHICLE_ADDED 0x9601), an answer to a supervision order
    (0x1401) or a handling result (0x1412, 0x1403), an answer to an inspection (0x1301) or
    a platform message (0x1302), to a text (0x1503) or a photo request (0x1502: the picture
    itself on ``yrd.media``), who drives a vehicle (``driver_info``: 0x120A, the answer to
    DOWN_EXG_MSG_REPORT_DRIVER_INFO 0x920A, or 0x120C sent unasked), the answer to a
    listen-in request (``listen_answer`` 0x1501), to a tachograph-data request
    (``tachograph_answer`` 0x1504: the GB/T 19056 frame in hex), to an emergency-access
    request (``emergency_access_answer`` 0x1505), to an order to start or stop passing a
    vehicle's positions up (``exchange_answer`` 0x1205/0x1206), the link notices
    UP_DISCONNECT_INFORM 0x1007 and UP_CLOSELINK_INFORM 0x1008. Those answering a request
    of ``yrd.platform-requests`` are also matched to it (``yrd.platform-request-results``;
    an unasked 0x120C is not)."""

    platform: AccessCode
    kind: Annotated[Literal["static_info", "supervision_answer", "handling_result",
                            "disconnect_inform", "closelink_inform", "inspection_answer",
                            "info_ack", "text_answer", "photo_answer", "driver_info",
                            "listen_answer", "tachograph_answer", "emergency_access_answer",
                            "exchange_answer"], Meta(
        description="which message")]
    msg_id: Annotated[int, Meta(ge=0, le=0xFFFF, description="MSG_ID of the frame")]
    data_type: Annotated[int, Meta(ge=0, le=0xFFFF,
                                   description="DATA_TYPE of a business message")] | None = None
    serial: Annotated[int, Meta(ge=0, le=0xFFFFFFFF, description="MSG_SN of the frame")]
    vehicle_id: VehicleId | None = None
    plate_colour: Annotated[int, Meta(ge=0, le=255)] | None = None
    fields: Annotated[dict[str, Any], Meta(
        description="the message's fields (static_info: CAR_INFO's KEY:=VALUE pairs; "
                    "driver_info: name, driver_id, licence, org, valid_until; listen_answer, "
                    "emergency_access_answer: result; tachograph_answer: command, data (hex), "
                    "size; exchange_answer: started; 2019 answers: source_type, "
                    "source_sn)")] = {}
    text: str | None = None
    received_at: EventTime



TOPICS: dict[str, tuple[type[msgspec.Struct], str]] = {
    "platforms": (Platform, "access code (MSG_GNSSCENTERID, decimal; equal to access_code); "
                            "compacted, a null value removes the platform"),
    "platform_vehicles": (PlatformVehicle, "vehicle id (equal to vehicle_id); compacted: the "
                                           "latest registration holds"),
    "ewaybills": (EWaybill, "UTF-8 vehicle id (licence plate)"),
    "platform_reports": (PlatformReport, "access code of the platform (decimal)"),
}
"""Settings suffix -> (the struct that is the topic's value, its key): the JSON Schemas of
``schemas/`` for the platforms' topics."""
