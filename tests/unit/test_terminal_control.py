"""The commands the JT/T 809 upper platform's requests become: call back 0x8400, emergency
access 0x8105 (command word 2: connect to a specified server) and tachograph data 0x8700
with its answer 0x0700. Bodies are laid out byte by byte from JT/T 808-2013 (and 2019,
where it says more) with a comment per field, and checked against the frames
SmallChi/JT808 publishes in its tests (src/JT808.Protocol.Test/MessageBody/
JT808_0x8400Test.cs, JT808_0x8105Test.cs, JT808_0x8700Test.cs, JT808_0x0700Test.cs).
The delivery is driven as in test_command_delivery: a list stands for the results
partition, the terminal's answers are laid out by hand."""

from __future__ import annotations

import struct
from datetime import timedelta

import msgspec
import pytest

from yrd_hazmat.commands import make_command, step_line
from yrd_hazmat.core.models import Command, CommandResult
from yrd_hazmat.gateway import commands as delivery
from yrd_hazmat.gateway.session import Session
from yrd_hazmat.jt808 import downlink as d
from yrd_hazmat.jt808 import messages as m
from yrd_hazmat.jt808.frame import FrameError, build, parse
from tests.unit.test_command_delivery import NOW, PLATE, World, command, sent, t
from tests.unit.test_jt808 import PHONE, REGISTERED, answers, frame_2013, general, xor

# GB/T 19056 answer frames as SmallChi's 0x0700 tests carry them after serial and word:
# 55 7A | command word | data length WORD | reserved 00 | data | XOR check
VERSION_FRAME = bytes.fromhex("557A" "00" "0002" "00" "1901" "35")  # 0x00: 2019 edition, 01
CLOCK_FRAME = bytes.fromhex("557A" "02" "0006" "00" "200323101010" "3B")  # 0x02: 20-03-23 10:10:10


# --- 0x8400 call back ----------------------------------------------------------------------

def test_a_call_back_is_the_flag_then_the_number():
    # flag 01 listen (监听) | "13800138000" in ASCII, no length, no terminator
    assert d.call_back("13800138000") == bytes.fromhex(
        "01" "3133383030313338303030")
    # SmallChi JT808_0x8400Test.Test1: normal call (00) to "12345679810"
    assert d.call_back("12345679810", listen=False) == bytes.fromhex("003132333435363739383130")
    # 20 bytes is the most: "+86" and 17 digits
    assert d.call_back("+86" + "1" * 17) == bytes.fromhex("01" "2B3836") + b"1" * 17
    with pytest.raises(d.DownlinkError, match="1 to 20"):
        d.call_back("1" * 21)
    with pytest.raises(d.DownlinkError, match="1 to 20"):
        d.call_back("")


def test_a_call_back_frame_laid_out_by_hand():
    # 8400 | body length 000C | phone 013912345678 | serial 0009 | 00 "12345679810" | check
    body = bytes.fromhex("00" "3132333435363739383130")
    head = bytes.fromhex("8400" "000C" "013912345678" "0009")
    assert build(d.CALL_BACK, bytes.fromhex(PHONE), 9, d.call_back("12345679810", listen=False)) \
        == b"\x7e" + head + body + bytes([xor(head + body)]) + b"\x7e"


# --- 0x8105 command word 2: connect to a specified server ---------------------------------------

def test_an_emergency_access_is_word_2_then_the_parameters_separated_by_semicolons():
    body = d.connect_server("112.64.1.9", 7611, auth_code="AC01", apn="CMNET", minutes=30)
    assert body == bytes.fromhex(
        "02"                      # command word 2: control the connection to a server
        "30" "3B"                 # 连接控制 "0": switch to the specified server ;
        "41433031" "3B"           # 监管平台鉴权码 "AC01" ;
        "434D4E4554" "3B"         # 拨号点名称 "CMNET" ;
        "3B"                      # 拨号用户名: none, left empty ;
        "3B"                      # 拨号密码: none ;
        "3131322E36342E312E39" "3B"  # 地址 "112.64.1.9" ;
        "37363131" "3B"           # TCP 端口 "7611" (decimal text, as SmallChi writes 8806) ;
        "3B"                      # UDP 端口: 0, none: left empty ;
        "3330")                   # 连接到指定服务器时限 "30" minutes, the last: no ';'
    # every field given, a UDP port, a domain and no time limit (0)
    assert d.connect_server("gov.example.cn", 9000, udp_port=9001, auth_code="K", apn="APN",
                            dial_user="u", dial_password="p", minutes=0) == bytes.fromhex(
        "02" "30" "3B" "4B" "3B" "41504E" "3B" "75" "3B" "70" "3B"
        "676F762E6578616D706C652E636E" "3B" "39303030" "3B" "39303031" "3B" "30")


def test_an_emergency_access_the_terminal_could_misread_is_refused():
    with pytest.raises(d.DownlinkError, match="apn contains ';'"):
        d.connect_server("1.2.3.4", 1, apn="a;b")
    with pytest.raises(d.DownlinkError, match="GBK"):
        d.connect_server("1.2.3.4", 1, dial_user="🚒")
    with pytest.raises(d.DownlinkError, match="WORD"):
        d.connect_server("1.2.3.4", 70000)
    with pytest.raises(d.DownlinkError, match="no server"):
        d.connect_server("", 7611)


# --- 0x8700 tachograph data collection, 0x0700 its answer ---------------------------------

def test_a_tachograph_command_is_the_word_then_the_block():
    # 2013: a query word alone, 0x01 driver's licence number
    assert d.tachograph(0x01) == bytes.fromhex("01")
    # SmallChi JT808_0x8700Test: word 00 | its GB/T 19056 frame 55 7A 00 0000 00 2F
    assert d.tachograph(0x00, bytes.fromhex("557A000000002F")) == \
        bytes.fromhex("00557A000000002F")
    # word 08 (speed per second) | frame: 55 7A | 08 | length 000E | 00 | from 20-03-22
    # 10:10:10 to 20-03-23 10:10:10 | 1 block | check 29
    block = bytes.fromhex("557A" "08" "000E" "00" "200322101010" "200323101010" "0001" "29")
    assert d.tachograph(0x08, block) == bytes.fromhex("08557A08000E00200322101010200323101010000129")
    with pytest.raises(d.DownlinkError, match="at most 1022"):
        d.tachograph(0x08, bytes(1023))
    with pytest.raises(d.DownlinkError, match="BYTE"):
        d.tachograph(256)


def test_each_new_kind_goes_down_as_its_message():
    def of(**fields) -> Command:
        return Command(**({"command_id": "c1", "vehicle_id": PLATE, "kind": "text",
                           "issued_by": "duty", "issued_at": NOW, "expires_at": NOW} | fields))

    assert d.command_body(of(kind="call_back", phone="10086"), None) == \
        (0x8400, bytes.fromhex("01" "3130303836"))
    assert d.command_body(of(kind="emergency_access", server="1.2.3.4", tcp_port=80,
                             minutes=5), 1) == (0x8105, b"\x02" + b"0;;;;;1.2.3.4;80;;5")
    assert d.command_body(of(kind="tachograph", command_word=0x08,
                             block="557a08000e00200322101010200323101010000129"), None) == \
        (0x8700, bytes.fromhex("08557A08000E00200322101010200323101010000129"))
    assert d.command_body(of(kind="tachograph", command_word=3), 1) == (0x8700, b"\x03")
    for kind in ("call_back", "emergency_access", "tachograph"):
        with pytest.raises(d.DownlinkError):
            d.command_body(of(kind=kind), None)  # its fields missing


def test_a_tachograph_upload_from_smallchis_frames():
    # SmallChi JT808_0x0700Test, 0x00: answer serial 0001 | word 00 | 55 7A 00 0002 00 19 01 35
    upload = d.read_tachograph_upload(bytes.fromhex("0001" "00" "557A00000200190135"))
    assert upload == d.TachographUpload(1, 0x00, VERSION_FRAME)
    # 0x01: serial 0001 | word 01 | 55 7A 01 0012 00 | licence "430223199007126687" | 32
    upload = d.read_tachograph_upload(bytes.fromhex(
        "000101557A0100120034333032323331393930303731323636383732"))
    assert (upload.serial, upload.command_word) == (1, 0x01)
    assert upload.data[6:-1] == b"430223199007126687" and upload.data[-1] == 0x32


def test_a_tachograph_upload_frame_laid_out_by_hand():
    # 0700 | length 0010 | 013912345678 | serial 0021 | answers serial 0007 | word 02 | frame
    body = struct.pack(">HB", 7, 0x02) + CLOCK_FRAME
    frame = parse(frame_2013(0x0700, PHONE, 0x21, body)[1:-1])
    assert frame.header.msg_id == d.TACHOGRAPH_UPLOAD and len(frame.body) == 16
    assert d.read_tachograph_upload(frame.body) == d.TachographUpload(7, 0x02, CLOCK_FRAME)
    # answer serial and word with no data block at all: an empty block
    assert d.read_tachograph_upload(bytes.fromhex("0007" "02")) == d.TachographUpload(7, 2, b"")


@pytest.mark.parametrize("body", [b"", b"\x00", b"\x00\x07"])
def test_a_short_tachograph_upload_is_a_frame_error(body):
    with pytest.raises(FrameError) as cut:
        d.read_tachograph_upload(body)
    assert cut.value.reason == "truncated"


def test_0700_is_one_of_the_answers_the_gateway_hands_to_the_delivery():
    assert d.TACHOGRAPH_UPLOAD in d.ANSWERS
    assert d.COMMAND_MESSAGE["call_back"] == 0x8400
    assert d.COMMAND_MESSAGE["emergency_access"] == 0x8105
    assert d.COMMAND_MESSAGE["tachograph"] == 0x8700


# --- making the commands ---------------------------------------------------------------------

def make(kind: str, **fields) -> Command:
    return make_command(PLATE, kind, by="duty", now=NOW, expires_in_s=600, **fields)


def test_each_new_kind_needs_its_fields():
    with pytest.raises(ValueError, match="phone number"):
        make("call_back")
    with pytest.raises(ValueError, match="server's address and TCP port"):
        make("emergency_access", server="1.2.3.4")
    with pytest.raises(ValueError, match="server's address and TCP port"):
        make("emergency_access", tcp_port=7611)
    with pytest.raises(ValueError, match="command word"):
        make("tachograph")
    assert make("call_back", phone="13800138000").listen is True
    access = make("emergency_access", server="gov.example.cn", tcp_port=7611, minutes=60)
    assert (access.udp_port, access.auth_code, access.apn, access.minutes) == (0, "", "", 60)
    assert make("tachograph", command_word=0x08).block is None


@pytest.mark.parametrize("kind, fields, error", [
    ("call_back", {"phone": "138-0013"}, "phone"),           # digits and + only
    ("call_back", {"phone": "1" * 21}, "phone"),              # 20 at most
    ("emergency_access", {"server": "a;b", "tcp_port": 1}, "server"),
    ("emergency_access", {"server": "1.2.3.4", "tcp_port": 65536}, "tcp_port"),
    ("emergency_access", {"server": "1.2.3.4", "tcp_port": 1, "udp_port": -1}, "udp_port"),
    ("emergency_access", {"server": "1.2.3.4", "tcp_port": 1, "auth_code": "x;9"}, "auth_code"),
    ("emergency_access", {"server": "1.2.3.4", "tcp_port": 1, "minutes": -5}, "minutes"),
    ("emergency_access", {"server": "1.2.3.4", "tcp_port": 1, "apn": "🚒"}, "GBK"),
    ("tachograph", {"command_word": 256}, "command_word"),
    ("tachograph", {"command_word": 8, "block": "557"}, "block"),    # not whole bytes
    ("tachograph", {"command_word": 8, "block": "zz"}, "block"),
    ("tachograph", {"command_word": 8, "block": "00" * 1023}, "block"),  # past one body
])
def test_what_no_terminal_could_be_sent_is_refused_when_made(kind, fields, error):
    with pytest.raises(ValueError, match=error):
        make(kind, **fields)


def test_records_from_before_the_new_kinds_still_decode():
    old = (b'{"command_id":"c1","vehicle_id":"\xe6\xb2\xaaA12345","kind":"photo","camera":2,'
           b'"issued_by":"duty","issued_at":"2026-11-29T14:00:00+08:00",'
           b'"expires_at":"2026-11-29T15:00:00+08:00"}')
    cmd = msgspec.json.decode(old, type=Command)
    assert (cmd.phone, cmd.server, cmd.tcp_port, cmd.command_word, cmd.block) == (None,) * 5
    result = msgspec.json.decode(
        b'{"command_id":"c1","vehicle_id":"\xe6\xb2\xaaA12345","status":"ok",'
        b'"at":"2026-11-29T14:00:00+08:00"}', type=CommandResult)
    assert (result.data, result.command_word) == (None, None)


# --- delivering them: the terminal's answers -----------------------------------------------

def test_a_tachograph_command_is_finished_by_its_0700_with_the_data():
    world, serial = sent("tachograph", command_word=0x02)
    [(_, frame)] = world.frames
    assert (frame.msg_id, frame.body) == (0x8700, b"\x02")
    # another serial, and the right serial for another command word: not its answer
    world.answer("A", 0x0700, struct.pack(">HB", serial + 1, 0x02) + CLOCK_FRAME)
    world.answer("A", 0x0700, struct.pack(">HB", serial, 0x03) + CLOCK_FRAME)
    assert world.log[-1].status == "sent"
    # answer serial | word 02 | 55 7A 02 0006 00 200323101010 3B
    world.answer("A", 0x0700, struct.pack(">HB", serial, 0x02) + CLOCK_FRAME, t(3))
    world.settle(t(3))
    final = world.log[-1]
    assert (final.status, final.serial, final.command_word) == ("ok", serial, 0x02)
    assert final.data == "557a020006002003231010103b"
    assert bytes.fromhex(final.data) == CLOCK_FRAME
    assert world.counted()[-1] == ("ok", "A")
    # a repeated upload changes nothing, and nothing is written back (no 0x8001 from here)
    world.answer("A", 0x0700, struct.pack(">HB", serial, 0x02) + CLOCK_FRAME, t(4))
    assert len(world.log) == 3 and len(world.frames) == 1
    assert "tachograph command word 0x02, 13 bytes: 557a02" in step_line(final).plain


def test_a_terminal_acknowledging_0x8700_with_0001_first_still_sends_the_data():
    world, serial = sent("tachograph", command_word=0x00)
    world.answer("A", 0x0001, struct.pack(">HHB", serial, 0x8700, d.OK))
    assert world.log[-1].status == "sent"
    world.answer("A", 0x0700, struct.pack(">HB", serial, 0x00) + VERSION_FRAME)
    assert world.log[-1].status == "ok" and world.log[-1].data == VERSION_FRAME.hex()


def test_a_terminal_without_a_recorder_answers_0001_unsupported():
    world, serial = sent("tachograph", command_word=0x08)
    world.answer("A", 0x0001, struct.pack(">HHB", serial, 0x8300, d.UNSUPPORTED))  # not 0x8700
    assert world.log[-1].status == "sent"
    # answer serial | message 8700 | result 3 unsupported
    world.answer("A", 0x0001, bytes.fromhex(f"{serial:04x}" "8700" "03"))
    final = world.log[-1]
    assert (final.status, final.data, final.command_word) == ("unsupported", None, None)


def test_an_upload_answers_nothing_but_a_tachograph_command():
    world, serial = sent("text")
    world.answer("A", 0x0700, struct.pack(">HB", serial, 0x00) + VERSION_FRAME)
    assert world.log[-1].status == "sent"
    world.answer("A", 0x0001, struct.pack(">HHB", serial, 0x8300, d.OK))
    assert world.log[-1].status == "ok" and world.log[-1].data is None


def test_data_larger_than_a_result_carries_fails_the_command(monkeypatch):
    monkeypatch.setattr(delivery, "MAX_TACHOGRAPH_DATA", 8)
    world, serial = sent("tachograph", command_word=0x02)
    world.answer("A", 0x0700, struct.pack(">HB", serial, 0x02) + CLOCK_FRAME)
    final = world.log[-1]
    assert final.status == "failed" and final.data is None
    assert final.detail == "tachograph data of 13 bytes, more than a result carries (8)"


@pytest.mark.parametrize("body", [b"", b"\x00", b"\x00\x01"])
def test_a_short_hostile_0700_raises_frame_error_and_finishes_nothing(body):
    world, serial = sent("tachograph", command_word=0x02)
    with pytest.raises(FrameError):
        world["A"].terminal_message(PLATE, 0x0700, body, t(1))
    assert world.log[-1].status == "sent"


@pytest.mark.parametrize("kind, fields, message", [
    ("call_back", {"phone": "13800138000"}, 0x8400),
    ("emergency_access", {"server": "1.2.3.4", "tcp_port": 7611, "minutes": 30}, 0x8105),
])
def test_call_back_and_emergency_access_finish_with_the_general_response(kind, fields, message):
    for code, status in ((0, "ok"), (1, "failed"), (2, "wrong"), (3, "unsupported")):
        world, serial = sent(kind, text=None, **fields)
        assert world.frames[0][1].msg_id == message
        world.answer("A", 0x0001, struct.pack(">HHB", serial, message, code))
        assert world.log[-1].status == status


# --- through a connection ----------------------------------------------------------------------

def connected(world: World) -> Session:
    """An authenticated connection of the truck whose answers go to gateway A."""
    s = Session(REGISTERED, lambda: "c0de", lambda: NOW,
                command_answers=lambda plate, msg_id, body: world.answer("A", msg_id, body))
    assert general(s.handle(frame_2013(0x0102, PHONE, 1, b"c0de")[1:-1])) == [m.OK]
    return s


def test_a_0700_on_the_wire_reaches_the_delivery_and_gets_no_general_response():
    world, serial = sent("tachograph", command_word=0x02)
    s = connected(world)
    handled = s.handle(frame_2013(0x0700, PHONE, 2,
                                  struct.pack(">HB", serial, 0x02) + CLOCK_FRAME)[1:-1])
    assert answers(handled) == [] and handled.rejected == []  # an answer itself, as 0x0201
    assert world.log[-1].status == "ok" and world.log[-1].data == CLOCK_FRAME.hex()


def test_a_0700_in_sub_packets_is_answered_per_packet_and_read_whole():
    world, serial = sent("tachograph", command_word=0x02)
    s = connected(world)
    body = struct.pack(">HB", serial, 0x02) + CLOCK_FRAME
    results = []
    for index, part in enumerate((body[:7], body[7:]), 1):
        # 0700 | sub-packet bit 0x2000 + length | phone | serial | 2 packets | index | part
        data = (struct.pack(">HH", 0x0700, len(part) | 0x2000) + bytes.fromhex(PHONE)
                + struct.pack(">HHH", 10 + index, 2, index) + part)
        results.append(s.handle(data + bytes([xor(data)])))
    assert general(results[0]) == [m.OK] and answers(results[1]) == []
    assert world.log[-1].status == "ok" and world.log[-1].data == CLOCK_FRAME.hex()


def test_a_short_hostile_0700_on_the_wire_is_rejected_never_an_exception():
    world, serial = sent("tachograph", command_word=0x02)
    s = connected(world)
    handled = s.handle(frame_2013(0x0700, PHONE, 2, b"\x00")[1:-1])
    assert general(handled) == [m.BAD_MESSAGE]
    assert handled.rejected[0].reason == "truncated"
    assert world.log[-1].status == "sent"
    # and the command still times out as any unanswered one
    world.tick(NOW + timedelta(seconds=60))
    assert world.log[-1].status == "timeout"


def test_a_new_kind_is_delivered_to_a_2019_terminal_as_to_a_2013_one():
    world = World("A")
    world.start()
    world.execute("A", world["A"].authenticated(PLATE, 1, NOW))
    world.issue(command("call_back", text=None, phone="10086", listen=False))
    world.settle()
    [(_, frame)] = world.frames
    assert (frame.msg_id, frame.body) == (0x8400, bytes.fromhex("00" "3130303836"))


def test_the_dial_up_password_never_shows_in_a_commands_repr():
    access = make("emergency_access", server="1.2.3.4", tcp_port=7611, dial_password="s3cret")
    assert "s3cret" not in repr(access) and "dial_password='****'" in repr(access)
    assert access.dial_password == "s3cret"  # on the wire and on the topic, as it must be
