"""The uplink's main-link session, pure (no I/O): the frames YRD, as lower platform, sends
to the upper one, and what the frames it receives mean.

Sent on the main link: UP_CONNECT_REQ 0x1001 (with DOWN_LINK_IP/PORT, our slave-link
server; 2019 with the access code in the body too), UP_LINKTEST_REQ 0x1005, UP_EXG_MSG
0x1200 carrying UP_EXG_MSG_REAL_LOCATION 0x1202 (one position) or
UP_EXG_MSG_HISTORY_LOCATION 0x1203 (1 to 5 kept positions of one vehicle, in GNSS-time
order), UP_WARN_MSG 0x1400 carrying UP_WARN_MSG_ADPT_INFO 0x1402 (an alarm) or
UP_WARN_MSG_URGE_TODO_ACK 0x1401 (the answer to a supervision order), UP_PLATFORM_MSG
0x1300 carrying UP_PLATFORM_MSG_POST_QUERY_ACK 0x1301 (the answer to an inspection),
UP_CTRL_MSG 0x1500 carrying UP_CTRL_MSG_TAKE_PHOTO_ACK 0x1502, UP_CTRL_MSG_TEXT_INFO_ACK
0x1503, 0x1501, 0x1504 and 0x1505 (a terminal's answer to a photo, text, listen-in,
tachograph or emergency-access request), UP_EXG_MSG answers 0x1205/0x1206 (exchange
started/stopped), 0x120A (who drives), 0x120B (the e-waybill) and 0x120C (a new driver,
unasked), UP_BASE_MSG_VEHICLE_ADDED_ACK 0x1601 (static information), and UP_DISCONNECT_REQ 0x1003 on the way out. Received: UP_CONNECT_RSP 0x1002, UP_LINKTEST_RSP
0x1006, UP_DISCONNECT_RSP 0x1004, and the upper platform's requests (0x9300, 0x9400,
0x9500), which a 2019 upper platform may send on the main link while the slave link is
down. The slave link's own messages (0x9001 ... 0x9008) are in :mod:`.slave`.
"""

from __future__ import annotations

import base64
import random

import msgspec

from ..core.models import Alert, Ping
from ..jt809 import alarms, control, exchange, inspection, links, static
from ..jt809.frame import V2011, V2019, Cipher, Frame, build, parse
from ..jt809.gnss import Fix
from . import warn
from .records import UplinkAnswer, to_fix


class LinkConfig(msgspec.Struct, frozen=True, kw_only=True):
    user_id: int
    password: str
    center: int
    """Our access code (MSG_GNSSCENTERID)."""
    edition: int = V2011
    cipher: Cipher | None = None
    """None: frames are not encrypted."""
    down_host: str = "127.0.0.1"
    down_port: int = 0
    platform_id: str = ""
    colour: int = 2

    @classmethod
    def of(cls, settings) -> "LinkConfig":
        if settings.uplink_edition not in (V2011, V2019):
            raise ValueError(f"YRD_UPLINK_EDITION {settings.uplink_edition}: 2011 or 2019")
        constants = (settings.uplink_m1, settings.uplink_ia1, settings.uplink_ic1)
        return cls(user_id=settings.uplink_user_id,
                   password=settings.uplink_password.get_secret_value(),
                   center=settings.uplink_access_code, edition=settings.uplink_edition,
                   cipher=Cipher(*constants) if any(constants) else None,
                   down_host=settings.uplink_down_host, down_port=settings.uplink_down_port,
                   platform_id=settings.uplink_platform_id, colour=settings.uplink_plate_colour)


class Framer:
    """Serial numbers and framing of one link (each link counts its own MSG_SN)."""

    def __init__(self, config: LinkConfig) -> None:
        self.config = config
        self.serial = 0
        self.key = random.randint(1, 0xFFFFFFFF) if config.cipher is not None else 0

    def frame(self, msg_id: int, body: bytes) -> bytes:
        self.serial = (self.serial + 1) & 0xFFFFFFFF
        c = self.config
        return build(msg_id, self.serial, c.center, body, cipher=c.cipher, key=self.key,
                     edition=c.edition)

    def parse(self, content: bytes) -> Frame:
        return parse(content, self.config.cipher, expect=self.config.edition)


class Session(Framer):
    """The main link."""

    def login(self) -> bytes:
        c = self.config
        login = links.Login(user_id=c.user_id, password=c.password, down_ip=c.down_host,
                            down_port=c.down_port, center=c.center)
        return self.frame(links.UP_CONNECT_REQ, links.write_login(login, c.edition))

    def logout(self) -> bytes:
        body = links.write_logout(links.Logout(user_id=self.config.user_id,
                                               password=self.config.password))
        return self.frame(links.UP_DISCONNECT_REQ, body)

    def link_test(self) -> bytes:
        return self.frame(links.UP_LINKTEST_REQ, b"")

    def position(self, ping: Ping) -> bytes:
        """0x1202, a live position."""
        data = exchange.write_location(to_fix(ping), self.config.edition)
        return self.frame(exchange.UP_EXG_MSG, exchange.write(
            ping.vehicle_id, self.config.colour, exchange.REAL_LOCATION, data))

    def history(self, plate: str, pings: list[Ping]) -> list[bytes]:
        """0x1203s of one vehicle's kept positions: GNSS-time order, at most 5 a frame."""
        out = []
        for batch in exchange.batches([to_fix(p) for p in pings]):
            data = exchange.write_history(batch, self.config.edition)
            out.append(self.frame(exchange.UP_EXG_MSG, exchange.write(
                plate, self.config.colour, exchange.HISTORY_LOCATION, data)))
        return out

    def alarm(self, alert: Alert) -> bytes | None:
        """0x1402 of an alert that goes up (:mod:`.warn`), else None."""
        c = self.config
        code = warn.warn_type(alert, c.edition)
        if code is None:
            return None
        alarm = warn.to_alarm(alert, code, edition=c.edition, platform_id=c.platform_id,
                              colour=c.colour)
        data = alarms.write_alarm(alarm, alarms.ADPT_INFO, c.edition)
        return self.frame(alarms.UP_WARN_MSG, alarms.write(
            alarms.ADPT_INFO, data, c.edition, plate=alert.vehicle_id, colour=c.colour))

    def driver(self, plate: str, driver: exchange.Driver) -> bytes:
        """0x120C: who drives ``plate`` now, sent unasked."""
        data = exchange.write_driver(driver, exchange.REPORT_DRIVER_INFO, self.config.edition)
        return self.frame(exchange.UP_EXG_MSG, exchange.write(
            plate, self.config.colour, exchange.REPORT_DRIVER_INFO, data))

    def answer(self, answer: UplinkAnswer) -> bytes | None:
        """0x1301 (inspection) or 0x1401 (supervision order) of a person's answer, 0x1503
        (text), 0x1502 (photo), 0x1501, 0x1504, 0x1505 of a terminal's, the 0x1200 answers
        made at once; None when the answer lacks what its kind needs."""
        req, edition = answer.request, self.config.edition
        if req.kind in ("text", "photo", "listen", "tachograph", "emergency_access"):
            return self._control_answer(answer)
        if req.kind in ("exchange_start", "exchange_stop", "driver", "waybill"):
            return self._exchange_answer(answer)
        if req.kind == "static_info":
            if not req.plate:
                return None
            data = static.write_static(static.StaticInfo(
                text=answer.content or "", source_sn=req.serial), edition)
            return self.frame(static.UP_BASE_MSG, static.write(
                req.plate, req.colour if req.colour is not None else self.config.colour,
                static.VEHICLE_ADDED_ACK, data))
        if req.kind == "inspection":
            if answer.content is None:
                return None
            if edition == V2011:
                a = inspection.InspectionAnswer(content=answer.content,
                                                object_type=req.object_type,
                                                object_id=req.object_id, info_id=req.info_id)
            else:
                a = inspection.InspectionAnswer(
                    content=answer.content, object_type=req.object_type or 1,
                    object_id=req.object_id, responder=answer.answered_by[:16],
                    responder_tel=answer.responder_tel, source_type=inspection.POST_QUERY_REQ,
                    source_sn=req.serial)
            data = inspection.write_answer(a, edition)
            return self.frame(inspection.UP_PLATFORM_MSG,
                              inspection.write(inspection.POST_QUERY_ACK, data))
        if answer.result is None:
            return None
        if edition == V2011:
            a2 = alarms.SupervisionAnswer(supervision_id=req.supervision_id, result=answer.result)
        else:
            # 2019's order has no SUPERVISION_ID: its frame's MSG_SN is quoted instead
            a2 = alarms.SupervisionAnswer(supervision_id=req.supervision_id or req.serial,
                                          source_type=req.source_type or alarms.ADPT_INFO,
                                          source_sn=req.source_sn or 0, result=answer.result)
        data = alarms.write_order_answer(a2, edition)
        return self.frame(alarms.UP_WARN_MSG, alarms.write(
            alarms.URGE_TODO_ACK, data, edition, plate=req.plate or "",
            colour=req.colour if req.colour is not None else self.config.colour))

    def _exchange_answer(self, answer: UplinkAnswer) -> bytes | None:
        req, edition = answer.request, self.config.edition
        if not req.plate:
            return None
        colour = req.colour if req.colour is not None else self.config.colour
        if req.kind in ("exchange_start", "exchange_stop"):
            start = req.kind == "exchange_start"
            return self.frame(exchange.UP_EXG_MSG, exchange.write_exchange_ack(
                exchange.RETURN_STARTUP_ACK if start else exchange.RETURN_END_ACK,
                exchange.ExchangeAck(
                    source_type=exchange.RETURN_STARTUP if start else exchange.RETURN_END,
                    source_sn=req.serial), req.plate, colour, edition))
        if req.kind == "driver":
            driver = msgspec.structs.replace(
                answer.driver or exchange.Driver(),
                source_type=exchange.DOWN_REPORT_DRIVER_INFO, source_sn=req.serial)
            data = exchange.write_driver(driver, exchange.REPORT_DRIVER_INFO_ACK, edition)
            return self.frame(exchange.UP_EXG_MSG, exchange.write(
                req.plate, colour, exchange.REPORT_DRIVER_INFO_ACK, data))
        data = exchange.write_waybill(exchange.Waybill(
            text=answer.content or "", source_type=exchange.TAKE_EWAYBILL_REQ,
            source_sn=req.serial), exchange.TAKE_EWAYBILL_ACK, edition)
        return self.frame(exchange.UP_EXG_MSG, exchange.write(
            req.plate, colour, exchange.TAKE_EWAYBILL_ACK, data))

    def _control_answer(self, answer: UplinkAnswer) -> bytes | None:
        req, edition = answer.request, self.config.edition
        if answer.result is None or not req.plate:
            return None
        colour = req.colour if req.colour is not None else self.config.colour
        if req.kind in ("listen", "emergency_access"):
            sub = control.MONITOR_VEHICLE_ACK if req.kind == "listen" else \
                control.EMERGENCY_MONITORING_ACK
            data = control.write_result(control.ControlResult(
                result=answer.result, source_sn=req.serial), sub, edition)
            return self.frame(control.UP_CTRL_MSG, control.write(req.plate, colour, sub, data))
        if req.kind == "tachograph":
            data = control.write_tachograph_answer(control.TachographAnswer(
                data=bytes.fromhex(answer.data or ""), command=req.reason,
                source_sn=req.serial), edition)
            return self.frame(control.UP_CTRL_MSG, control.write(
                req.plate, colour, control.TAKE_TRAVEL_DATA_ACK, data))
        if req.kind == "text":
            data = control.write_text_answer(control.TextAnswer(
                result=answer.result, msg_id=req.sequence, source_type=control.TEXT_INFO,
                source_sn=req.serial), edition)
            return self.frame(control.UP_CTRL_MSG, control.write(
                req.plate, colour, control.TEXT_INFO_ACK, data))
        media, fix, photo, image_type = answer.media, None, b"", 0
        if media is not None:
            photo = base64.b64decode(media.data)
            image_type = IMAGE_TYPES.get(media.format, 0)
            if media.lat is not None and media.lon is not None:
                fix = Fix(ts=media.taken_at or media.received_at, lat=media.lat, lon=media.lon,
                          speed_kmh=0.0)
        data = control.write_photo_answer(control.PhotoAnswer(
            flag=answer.result, lens=req.lens or 1, fix=fix, size=req.size or 0,
            image_type=image_type, photo=photo, source_type=control.TAKE_PHOTO_REQ,
            source_sn=req.serial), edition)
        return self.frame(control.UP_CTRL_MSG, control.write(
            req.plate, colour, control.TAKE_PHOTO_ACK, data))


IMAGE_TYPES = {"jpeg": 1, "tif": 3}
"""The media record's format -> 0x1502 TYPE (1 JPEG, 2 GIF, 3 TIFF, 4 PNG)."""
