"""JT/T 808 downlink: what the platform sends a terminal on a person's behalf, and the
terminal's answers.

Platform -> terminal: text 0x8300, position query 0x8201, manual alarm confirmation
0x8203, take a photo now 0x8801, call back 0x8400, terminal control 0x8105 (command word
2: connect to a specified server, the emergency access), tachograph data collection
0x8700, and the answer to a multimedia upload 0x8800.
Terminal -> platform: general response 0x0001 (to 0x8300, 0x8203, 0x8400, 0x8105, from
old terminals to 0x8801, and to a 0x8700 the terminal refuses), position query answer
0x0201, photo answer 0x0805, tachograph data upload 0x0700, multimedia data upload
0x0801 (sub-packets of 0x0700 and 0x0801 reassembled by the session into one body).

Layouts from JT/T 808-2013; a 2019 connection (its header carries a version byte, so
``version`` is not None) differs only in 0x8300: there, flag bits 0-1 are a two-bit kind
(01 service, 10 emergency, 11 notice) where 2013 had bit 0 "emergency", and a text type
BYTE (1 notice, 2 service) follows the flag. Strings are GBK; a body is at most 1023
bytes (a longer one would need sub-packets, which no downlink message here warrants).

- 0x8400: flag BYTE (0 normal call, 1 listen), then the phone number STRING, at most
  20 bytes, the rest of the body (no length, no terminator): SmallChi/JT808
  ``src/JT808.Protocol/MessageBody/JT808_0x8400.cs`` and its test (``00`` then
  "12345679810" in ASCII).
- 0x8105: command word BYTE, then the command's parameters as one STRING, fields
  separated by ``;``, a field without a value left empty. Word 2, connect the terminal to
  a specified server: ``连接控制;监管平台鉴权码;拨号点名称;拨号用户名;拨号密码;地址;TCP
  端口;UDP 端口;连接到指定服务器时限`` (connection control 0: switch to that server, the
  emergency state; 1: back to the original; the time limit in minutes, 0: no limit).
  Numbers are decimal text, as SmallChi/JT808 ``JT808_0x8105.cs`` and its test write
  word 1's ("1;TKName;...;8806;3306;..."). The terminal answers 0x0001, then connects.
- 0x8700: command word BYTE (GB/T 19056's), then the data block, which may be empty (a
  2013 terminal's query words), else GB/T 19056's whole command frame (2019). 0x0700:
  answer serial WORD (the 0x8700's), command word BYTE, then the data block, GB/T
  19056's whole answer frame (``55 7A`` ...), kept as bytes: SmallChi/JT808
  ``JT808_0x8700.cs``, ``JT808_0x0700.cs`` and their tests. A 2011 terminal's 0x0700
  has no answer serial: what stands in its place matches no command (or not its command
  word), the upload answers nothing and the command times out.
"""

from __future__ import annotations

import struct

import msgspec

from ..core.models import Command
from .frame import MAX_BODY, FrameError
from .messages import TERMINAL_RESPONSE, Position, read_location

TEXT = 0x8300
POSITION_QUERY = 0x8201
POSITION_ANSWER = 0x0201
ALARM_CONFIRMATION = 0x8203
PHOTO = 0x8801
PHOTO_ANSWER = 0x0805
MEDIA_UPLOAD = 0x0801
MEDIA_UPLOAD_ANSWER = 0x8800
CALL_BACK = 0x8400
TERMINAL_CONTROL = 0x8105
TACHOGRAPH = 0x8700
TACHOGRAPH_UPLOAD = 0x0700

ANSWERS = (TERMINAL_RESPONSE, POSITION_ANSWER, PHOTO_ANSWER, MEDIA_UPLOAD, TACHOGRAPH_UPLOAD)
"""The terminal messages that answer a platform command (the gateway hands them to
:class:`yrd_hazmat.gateway.commands.Delivery`)."""

COMMAND_MESSAGE = {"text": TEXT, "position_query": POSITION_QUERY,
                   "alarm_confirm": ALARM_CONFIRMATION, "photo": PHOTO,
                   "call_back": CALL_BACK, "emergency_access": TERMINAL_CONTROL,
                   "tachograph": TACHOGRAPH}
"""The message each kind of :class:`~yrd_hazmat.core.models.Command` goes down as."""

# 0x8300 flag bits
EMERGENCY_2013 = 1 << 0
DISPLAY = 1 << 2
TTS = 1 << 3
KIND_SERVICE_2019, KIND_EMERGENCY_2019, KIND_NOTICE_2019 = 0b01, 0b10, 0b11
TEXT_TYPE_NOTICE, TEXT_TYPE_SERVICE = 1, 2

# 0x0001 results, 0x0805 results
OK, FAILED, WRONG, UNSUPPORTED = 0, 1, 2, 3
PHOTO_OK, PHOTO_FAILED, PHOTO_CHANNEL_UNSUPPORTED = 0, 1, 2

# 0x8801 photo parameters (JT/T 808-2013 table 80)
RESOLUTION_640X480 = 0x02
PHOTO_QUALITY = 5
"""1 (least loss) to 10 (most compressed): the middle keeps a photo a few tens of KB."""

MEDIA_FORMATS = {0: "jpeg", 1: "tif", 2: "mp3", 3: "wav", 4: "wmv"}

# 0x8400 flag, 0x8105 command word 2 and its connection control
CALL_NORMAL, CALL_LISTEN = 0, 1
CONTROL_CONNECT_SERVER = 2
CONNECT_SPECIFIED, CONNECT_ORIGINAL = 0, 1
PHONE_MAX = 20
"""Bytes of 0x8400's phone number (JT/T 808: 最长为 20 字节)."""
JPEG_START = b"\xff\xd8"


class DownlinkError(ValueError):
    """A command that cannot be put in a frame for this terminal (the text is not GBK,
    or too long): the gateway records it as ``refused``."""


# --- platform -> terminal ------------------------------------------------------------


def text(message: str, *, emergency: bool = False, display: bool = True, tts: bool = False,
         version: int | None = None) -> bytes:
    """0x8300. A 2019 terminal gets the two-bit kind (emergency or notice) and the text
    type "notice": the platform's messages to drivers are notices unless urgent."""
    try:
        data = message.encode("gbk")
    except UnicodeEncodeError as exc:
        bad = message[exc.start:exc.end]
        raise DownlinkError(f"text: {bad!r} (position {exc.start}) has no GBK code") from None
    flag = (DISPLAY if display else 0) | (TTS if tts else 0)
    if version is None:
        head = bytes([flag | (EMERGENCY_2013 if emergency else 0)])
    else:
        kind = KIND_EMERGENCY_2019 if emergency else KIND_NOTICE_2019
        head = bytes([flag | kind, TEXT_TYPE_NOTICE])
    body = head + data
    if len(body) > MAX_BODY:
        raise DownlinkError(f"text: {len(data)} bytes in GBK, at most {MAX_BODY - len(head)}")
    return body


def position_query() -> bytes:
    """0x8201: the body is empty."""
    return b""


def alarm_confirmation(alarm_serial: int, alarm_types: int) -> bytes:
    """0x8203: the serial of the alarm's location report (0: every alarm of those types)
    and the alarm bits confirmed."""
    return struct.pack(">HI", alarm_serial, alarm_types)


def photo(channel: int, *, count: int = 1, interval_s: int = 0, save: bool = False,
          resolution: int = RESOLUTION_640X480, quality: int = PHOTO_QUALITY,
          brightness: int = 128, contrast: int = 64, saturation: int = 64,
          chroma: int = 128) -> bytes:
    """0x8801: take ``count`` photos now on camera ``channel`` (0 stops, 0xFFFF records
    video), ``interval_s`` apart, uploaded at once (``save`` false) or kept."""
    if not 1 <= quality <= 10:
        raise DownlinkError(f"photo quality {quality}: 1 (best) to 10")
    return struct.pack(">BHHBBBBBBB", channel, count, interval_s, 1 if save else 0, resolution,
                       quality, brightness, contrast, saturation, chroma)


def call_back(phone: str, *, listen: bool = True) -> bytes:
    """0x8400: the terminal calls ``phone``; ``listen``: one way, the number hears the cab
    (监听), else a normal call."""
    number = _gbk(phone, "call back: phone number")
    if not 1 <= len(number) <= PHONE_MAX:
        raise DownlinkError(f"call back: phone number of {len(number)} bytes, 1 to {PHONE_MAX}")
    return bytes([CALL_LISTEN if listen else CALL_NORMAL]) + number


def connect_server(server: str, tcp_port: int, *, udp_port: int = 0, auth_code: str = "",
                   apn: str = "", dial_user: str = "", dial_password: str = "",
                   minutes: int = 0) -> bytes:
    """0x8105 command word 2, connection control 0: the terminal leaves this platform for
    ``server`` (its ``tcp_port``, ``udp_port``: 0 none) for ``minutes`` (0: until told to
    return) and authenticates there with ``auth_code``; ``apn``, ``dial_user`` and
    ``dial_password`` dial its wireless link (empty: as now)."""
    if not server:
        raise DownlinkError("emergency access: no server address")
    for name, value in (("tcp_port", tcp_port), ("udp_port", udp_port), ("minutes", minutes)):
        if not 0 <= value <= 0xFFFF:
            raise DownlinkError(f"emergency access: {name} {value} is not a WORD (0 to 65535)")
    fields = (str(CONNECT_SPECIFIED), auth_code, apn, dial_user, dial_password, server,
              str(tcp_port), str(udp_port) if udp_port else "", str(minutes))
    for name, value in zip(("auth_code", "apn", "dial_user", "dial_password", "server"),
                           fields[1:6]):
        if ";" in value:
            raise DownlinkError(f"emergency access: {name} contains ';', the separator")
    body = bytes([CONTROL_CONNECT_SERVER]) + _gbk(";".join(fields), "emergency access")
    if len(body) > MAX_BODY:
        raise DownlinkError(f"emergency access: {len(body)} bytes, at most {MAX_BODY}")
    return body


def tachograph(command_word: int, block: bytes = b"") -> bytes:
    """0x8700: collect GB/T 19056 ``command_word``'s data from the driving recorder;
    ``block``: what follows the word (a 2019 terminal's GB/T 19056 command frame)."""
    if not 0 <= command_word <= 0xFF:
        raise DownlinkError(f"tachograph: command word {command_word} is not a BYTE")
    body = bytes([command_word]) + block
    if len(body) > MAX_BODY:
        raise DownlinkError(f"tachograph: data block of {len(block)} bytes, at most "
                            f"{MAX_BODY - 1}")
    return body


def _gbk(value: str, what: str) -> bytes:
    try:
        return value.encode("gbk")
    except UnicodeEncodeError as exc:
        bad = value[exc.start:exc.end]
        raise DownlinkError(f"{what}: {bad!r} (position {exc.start}) has no GBK code") from None


def media_upload_answer(media_id: int, missing: tuple[int, ...] = ()) -> bytes:
    """0x8800: the upload of ``media_id`` received whole (no ``missing`` sub-packet ids),
    or the sub-packets to send again."""
    return struct.pack(f">IB{len(missing)}H", media_id, len(missing), *missing)


def command_body(command: Command, version: int | None) -> tuple[int, bytes]:
    """(message id, body) that carries ``command`` to a terminal speaking ``version``."""
    if command.kind == "text":
        if command.text is None:
            raise DownlinkError("a text command without text")
        body = text(command.text, emergency=command.emergency, display=command.display,
                    tts=command.tts, version=version)
    elif command.kind == "position_query":
        body = position_query()
    elif command.kind == "alarm_confirm":
        body = alarm_confirmation(command.alarm_serial, command.alarm_types)
    elif command.kind == "photo":
        body = photo(command.camera)
    elif command.kind == "call_back":
        if command.phone is None:
            raise DownlinkError("a call back without a phone number")
        body = call_back(command.phone, listen=command.listen)
    elif command.kind == "emergency_access":
        if command.server is None or command.tcp_port is None:
            raise DownlinkError("an emergency access without its server and TCP port")
        body = connect_server(command.server, command.tcp_port, udp_port=command.udp_port,
                              auth_code=command.auth_code, apn=command.apn,
                              dial_user=command.dial_user,
                              dial_password=command.dial_password, minutes=command.minutes)
    elif command.kind == "tachograph":
        if command.command_word is None:
            raise DownlinkError("a tachograph command without its command word")
        try:
            block = bytes.fromhex(command.block or "")
        except ValueError:
            raise DownlinkError(f"tachograph: data block {command.block!r} is not hex") from None
        body = tachograph(command.command_word, block)
    else:
        raise DownlinkError(f"no JT/T 808 message for a {command.kind} command")
    return COMMAND_MESSAGE[command.kind], body


# --- terminal -> platform ------------------------------------------------------------


class TerminalResponse(msgspec.Struct, frozen=True):
    """0x0001: the terminal's answer to the platform message ``msg_id`` of ``serial``."""

    serial: int
    msg_id: int
    result: int


class PositionAnswer(msgspec.Struct, frozen=True):
    """0x0201: the answer to the 0x8201 of ``serial``."""

    serial: int
    position: Position


class PhotoAnswer(msgspec.Struct, frozen=True):
    """0x0805: the answer to the 0x8801 of ``serial``; on success, the ids of the
    multimedia the terminal will upload (0x0801)."""

    serial: int
    result: int
    media_ids: tuple[int, ...] = ()


class MediaUpload(msgspec.Struct, frozen=True, kw_only=True):
    """0x0801, whole."""

    media_id: int
    media_type: int
    format: int
    event: int
    """0 platform command, 1 timer, 2 robbery alarm, 3 collision or rollover alarm..."""
    channel: int
    position: Position | None
    """Where and when it was taken; None from a 2011 terminal, whose upload has none."""
    data: bytes

    @property
    def format_name(self) -> str:
        return MEDIA_FORMATS.get(self.format, "unknown")


class TachographUpload(msgspec.Struct, frozen=True):
    """0x0700: the answer to the 0x8700 of ``serial``: the recorder's data for
    ``command_word``, GB/T 19056's answer frame as it came (possibly empty)."""

    serial: int
    command_word: int
    data: bytes


def read_terminal_response(body: bytes) -> TerminalResponse:
    if len(body) < 5:
        raise FrameError("truncated", f"terminal response of {len(body)} bytes, at least 5")
    return TerminalResponse(*struct.unpack_from(">HHB", body))


def read_position_answer(body: bytes) -> PositionAnswer:
    if len(body) < 2:
        raise FrameError("truncated", "position answer without its answer serial")
    return PositionAnswer(struct.unpack_from(">H", body)[0], read_location(body[2:]))


def read_photo_answer(body: bytes) -> PhotoAnswer:
    """A failed photo's answer may stop after the result (2013 sends the count and ids
    only on success), or carry a count of 0."""
    if len(body) < 3:
        raise FrameError("truncated", f"photo answer of {len(body)} bytes, at least 3")
    serial, result = struct.unpack_from(">HB", body)
    if result != PHOTO_OK or len(body) == 3:
        return PhotoAnswer(serial, result)
    if len(body) < 5:
        raise FrameError("truncated", "photo answer: multimedia count cut short")
    count = struct.unpack_from(">H", body, 3)[0]
    if len(body) < 5 + 4 * count:
        raise FrameError("truncated", f"photo answer says {count} ids, has "
                                      f"{(len(body) - 5) // 4}")
    return PhotoAnswer(serial, result, struct.unpack_from(f">{count}I", body, 5))


def read_media_upload(body: bytes) -> MediaUpload:
    """A whole 0x0801: its 8-byte head, the 28-byte location where and when it was taken,
    then the data. A 2011 terminal sends no location: its data starts right after the
    head, which shows as a JPEG's start marker there or a body too short for one."""
    if len(body) < 8:
        raise FrameError("truncated", f"multimedia upload of {len(body)} bytes, at least 8")
    media_id, media_type, fmt, event, channel = struct.unpack_from(">IBBBB", body)
    if body[8:10] == JPEG_START or len(body) < 36:
        position, data = None, body[8:]
    else:
        position, data = read_location(body[8:36]), body[36:]
    return MediaUpload(media_id=media_id, media_type=media_type, format=fmt, event=event,
                       channel=channel, position=position, data=data)


def read_tachograph_upload(body: bytes) -> TachographUpload:
    """A whole 0x0700: answer serial, command word, then the data block (not read here:
    the recorder's frame goes on as it came)."""
    if len(body) < 3:
        raise FrameError("truncated", f"tachograph data upload of {len(body)} bytes, at least 3")
    serial, command_word = struct.unpack_from(">HB", body)
    return TachographUpload(serial, command_word, bytes(body[3:]))
