"""JT/T 808 downlink bodies and the terminals' answers, against bytes laid out by hand from
the standard (struct.pack, hex) and frames other projects publish in their tests:
SmallChi/JT808 (src/JT808.Protocol.Test/MessageBody/JT808_0x*Test.cs) and
cuteLittleDevil/go-jt808 (protocol/model/model_test.go). GBK codes are checked against
plates in captured registrations: 粤 D4C1 (traccar HuabaoProtocolDecoderTest), 测 B2E2
(go-jt808)."""

from __future__ import annotations

import struct
from datetime import datetime

import pytest

from yrd_hazmat.jt808 import downlink as d
from yrd_hazmat.jt808.frame import FrameError, build, parse, read_header, unescape
from yrd_hazmat.core.models import Command
from yrd_hazmat.core.timeutil import CHINA_TZ

NOW = datetime(2026, 11, 29, 14, 0, tzinfo=CHINA_TZ)


def xor(data: bytes) -> int:
    code = 0
    for b in data:
        code ^= b
    return code


def frame_2013(msg_id: int, phone: str, serial: int, body: bytes,
               packets: tuple[int, int] | None = None) -> bytes:
    """A 2013 frame laid out by hand (sub-packet fields when ``packets``)."""
    props = len(body) | (0x2000 if packets else 0)
    data = struct.pack(">HH", msg_id, props) + bytes.fromhex(phone) + struct.pack(">H", serial)
    if packets:
        data += struct.pack(">HH", *packets)
    data += body
    data += bytes([xor(data)])
    return b"\x7e" + data.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02") + b"\x7e"


def location_body(alarm=0, status=0b11, lat=31_230_400, lon=121_473_700, altitude=12,
                  speed=625, heading=90, bcd="261129140509") -> bytes:
    return struct.pack(">IIIIHHH", alarm, status, lat, lon, altitude, speed, heading) + \
        bytes.fromhex(bcd)


def command(**fields) -> Command:
    base = {"command_id": "c1", "vehicle_id": "沪A12345", "kind": "text", "text": "x",
            "issued_by": "duty", "issued_at": NOW, "expires_at": NOW}
    return Command(**(base | fields))


# --- 0x8300 text -------------------------------------------------------------------------

def test_a_2013_text_is_the_flag_then_gbk():
    # flag 0x0D = bit 0 emergency | bit 2 display | bit 3 TTS; 前方事故，请绕行 in GBK
    expected = bytes([0b0000_1101]) + bytes.fromhex("c7b0b7bdcac2b9caa3acc7ebc8c6d0d0")
    assert d.text("前方事故，请绕行", emergency=True, display=True, tts=True) == expected
    assert d.text("粤B测", display=False) == bytes([0]) + bytes.fromhex("d4c1" "42" "b2e2")


def test_a_text_frame_as_smallchi_publishes_it():
    # SmallChi JT808_0x8300Test.Test1: flag 5 (emergency, display), "smallchi 518", serial 1
    published = bytes.fromhex("7E8300000D012345678900000105736D616C6C63686920353138027E")
    body = d.text("smallchi 518", emergency=True)
    assert build(0x8300, bytes.fromhex("012345678900"), 1, body) == published


def test_a_2019_text_has_a_two_bit_kind_and_a_text_type():
    # 2019: bits 0-1 = 10 emergency / 11 notice, bit 2 display, bit 3 TTS; then type 1 notice
    assert d.text("减速", emergency=True, version=1) == bytes([0b0000_0110, 1]) + \
        bytes.fromhex("bcf5cbd9")
    assert d.text("减速", tts=True, version=1) == bytes([0b0000_1111, 1]) + \
        bytes.fromhex("bcf5cbd9")
    # SmallChi Test_2019_1 shows the type byte after the flag: 05 | 01 | text
    frame = parse(bytes.fromhex(
        "7E8300400E010000000001234567890000010501736D616C6C63686920353138417E")[1:-1])
    assert frame.header.version == 1 and frame.body[1] == d.TEXT_TYPE_NOTICE
    assert frame.body[2:] == b"smallchi 518"


def test_a_text_must_be_gbk_and_fit_one_body():
    assert len(d.text("危" * 511)) == 1023  # 1 flag byte + 511 two-byte characters
    with pytest.raises(d.DownlinkError, match="at most 1022"):
        d.text("危" * 512)
    with pytest.raises(d.DownlinkError, match="at most 1021"):
        d.text("危" * 511, version=1)
    with pytest.raises(d.DownlinkError, match="GBK"):
        d.text("前方🚒")


# --- 0x8201, 0x8203, 0x8801, 0x8800 --------------------------------------------------------

def test_a_position_query_frame_has_an_empty_body():
    # 8201 | 0000 | 013912345678 | 0007, check code = XOR of those 12 bytes
    header = bytes.fromhex("8201" "0000" "013912345678" "0007")
    expected = b"\x7e" + header + bytes([xor(header)]) + b"\x7e"
    assert build(d.POSITION_QUERY, bytes.fromhex("013912345678"), 7, d.position_query()) == \
        expected


def test_an_alarm_confirmation_is_the_serial_then_the_alarm_bits():
    assert d.alarm_confirmation(5554, 123) == bytes.fromhex("15B20000007B")  # SmallChi
    assert d.alarm_confirmation(0, 1 << 29) == struct.pack(">HI", 0, 0x2000_0000)


def test_a_photo_command_byte_by_byte():
    # SmallChi JT808_0x8801Test: channel 128, command 0, interval 2686, save, 0x08, 9, ...
    assert d.photo(128, count=0, interval_s=2686, save=True, resolution=0x08, quality=9,
                   brightness=235, contrast=126, saturation=120, chroma=245) == \
        bytes.fromhex("8000000A7E010809EB7E78F5")
    # ours: one photo now on camera 2, uploaded at once, 640x480, quality 5
    assert d.photo(2) == struct.pack(">BHHBBBBBBB", 2, 1, 0, 0, 0x02, 5, 128, 64, 64, 128)
    with pytest.raises(d.DownlinkError):
        d.photo(1, quality=11)


def test_a_media_upload_answer_lists_what_to_send_again():
    assert d.media_upload_answer(129, (0x0102, 0x0304)) == bytes.fromhex("000000810201020304")
    assert d.media_upload_answer(129) == bytes.fromhex("00000081" "00")  # all received


def test_each_command_kind_goes_down_as_its_message():
    assert d.command_body(command(emergency=True, tts=True), None) == (0x8300, b"\x0dx")
    assert d.command_body(command(kind="position_query", text=None), 1) == (0x8201, b"")
    assert d.command_body(command(kind="alarm_confirm", text=None, alarm_serial=9,
                                  alarm_types=3), None) == (0x8203, bytes.fromhex("000900000003"))
    assert d.command_body(command(kind="photo", text=None, camera=3), None)[1][:3] == \
        bytes.fromhex("030001")
    with pytest.raises(d.DownlinkError):
        d.command_body(command(text=None), None)


# --- the terminal's answers ---------------------------------------------------------------

def test_a_terminal_general_response_from_published_frames():
    # SmallChi JT808_0x0001Test: answers serial 1000, message 0x0002, result 0
    frame = parse(bytes.fromhex("7E0001000501234567890004B303E8000200D37E")[1:-1])
    assert d.read_terminal_response(frame.body) == d.TerminalResponse(1000, 0x0002, d.OK)
    # go-jt808 model_test: serial 123, message 456, result 3 (unsupported)
    frame = parse(bytes.fromhex("7e000100050123456789017fff007b01c803bd7e")[1:-1])
    assert d.read_terminal_response(frame.body) == d.TerminalResponse(123, 456, d.UNSUPPORTED)
    with pytest.raises(FrameError):
        d.read_terminal_response(struct.pack(">HH", 1, 0x8300))


def test_a_position_answer_is_the_serial_then_a_location_report():
    # SmallChi JT808_0x0201Test: answers 12345; alarm 1, status 2, 12.222222 N 132.444444 E,
    # 40 m, 6.0 km/h, 2018-07-15 10:10:10, items mileage 0x01 (100 = 10.0 km) and fuel 0x02
    frame = parse(bytes.fromhex(
        "7E0201002811223344556622B83039000000010000000200BA7F0E07E4F11C0028003C000018071510"
        "101001040000006402020037517E")[1:-1])
    answer = d.read_position_answer(frame.body)
    assert answer.serial == 12345
    pos = answer.position
    assert (pos.alarm, pos.status, pos.lat, pos.lon) == (1, 2, 12.222222, 132.444444)
    assert (pos.altitude_m, pos.speed_kmh, pos.heading) == (40, 6.0, 0)
    assert pos.ts == datetime(2018, 7, 15, 10, 10, 10, tzinfo=CHINA_TZ)
    assert pos.mileage_km == 10.0
    # laid out by hand: answer serial 7, then a 28-byte 0x0200 body
    answer = d.read_position_answer(struct.pack(">H", 7) + location_body())
    assert (answer.serial, answer.position.lat, answer.position.speed_kmh) == (7, 31.2304, 62.5)
    with pytest.raises(FrameError):
        d.read_position_answer(struct.pack(">H", 7) + location_body()[:20])


def test_a_photo_answer_with_its_media_ids_or_its_failure():
    # SmallChi JT808_0x0805Test: serial 12456, ok, 2 ids 12306 and 12580
    assert d.read_photo_answer(bytes.fromhex("30A80000020000301200003124")) == \
        d.PhotoAnswer(12456, d.PHOTO_OK, (12306, 12580))
    assert d.read_photo_answer(struct.pack(">HB", 7, 2)) == \
        d.PhotoAnswer(7, d.PHOTO_CHANNEL_UNSUPPORTED)
    assert d.read_photo_answer(struct.pack(">HBH", 7, 1, 0)) == d.PhotoAnswer(7, d.PHOTO_FAILED)
    with pytest.raises(FrameError, match="says 3 ids"):
        d.read_photo_answer(struct.pack(">HBHI", 7, 0, 3, 1))


def test_a_media_upload_with_the_place_it_was_taken():
    # SmallChi JT808_0x0801Test.Test2: id 2567, image, JPEG, event 1, channel 123, a
    # location (alarm 1, status 2, 2018-11-15 23:26:10), then data 01020304
    upload = d.read_media_upload(bytes.fromhex(
        "00000A070000017B000000010000000200BA7F0E07E4F11C0028003C000018111523261001020304"))
    assert (upload.media_id, upload.media_type, upload.format_name, upload.event,
            upload.channel) == (2567, 0, "jpeg", 1, 123)
    assert upload.position.ts == datetime(2018, 11, 15, 23, 26, 10, tzinfo=CHINA_TZ)
    assert upload.data == bytes.fromhex("01020304")
    # 2011 (SmallChi Test2011_2): no location, the data right after the 8-byte head
    old = d.read_media_upload(bytes.fromhex("00000A070000017B01020304"))
    assert old.position is None and old.data == bytes.fromhex("01020304")
    with pytest.raises(FrameError):
        d.read_media_upload(bytes.fromhex("00000A0700"))


# First sub-packet (1 of 10) of a JPEG upload, SmallChi JT808_0x0801Test.Package1; its check
# code does not match (that test skips the check), so its body is cut out by header.
CAPTURED_PACKET_1 = (
    "7e080123240138123456782031000a00010000271d0000010100000000000c200301d2400a063296a501e1"
    "00000000190104092952ffd8ffc4001f000001050101010101010000000000000000010203040506070809"
    "0a0bffc400b5100002010303020403050504040000017d0101020300041105122131410613516107227114"
    "328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a4344454647"
    "48494a535455565758595a636465666768696a737475767778797a838485868788898a9293949596979899"
    "9aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6"
    "e7e8e9eaf1f2f3f4f5f6f7f8f9faffc4001f01000301010101010101010100000000000001020304050607"
    "08090a0bffc400b51100020102040403040705040400010277000102031104052131061241510761711322"
    "328108144291a1b1c109233352f0156272d10a162434e125f11718191a262728292a35363738393a434445"
    "464748494a535455565758595a636465666768696a737475767778797a82838485868788898a9293949596"
    "9798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4"
    "e5e6e7e8e9eaf2f3f4f5f6f7f8f9faffdb004300080606070605080707070909080a0c140d0c0b0b0c1912"
    "130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffdb"
    "0043010909090c0b0c180d0d1832211c213232323232323232323232323232323232323232323232323232"
    "323232323232323232323232323232323232323232323232fffe000b4750456e636f646572ffdb0043000d"
    "090a0b0a080d0b0a0b0e0e0d0f13201513121213271c1e17202e2931302e292d2c333a4a3e333646372c2d"
    "405741464c4e525352323e5a615a50604a51524fffdb0043010e0e0e131113261515264f352d354f4f4f4f"
    "4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f"
    "4f4f4fffc000110800f0014003012100021101031101ffc4001f0000010501010101010100000000000000"
    "00010203041c7e")


def test_the_head_of_a_captured_jpeg_upload():
    data = unescape(bytes.fromhex(CAPTURED_PACKET_1)[1:-1])[:-1]
    header, offset, length = read_header(data)
    assert (header.msg_id, header.packets, header.index) == (0x0801, 10, 1)
    assert len(data) - offset == length == 804
    upload = d.read_media_upload(data[offset:])
    # media 0x271d, image, JPEG, event 1 (timer), channel 1; taken 2019-01-04 09:29:52
    # at 30.556170 N 103.978661 E (status 0x000c2003: fixed), and the JPEG starts
    assert (upload.media_id, upload.format_name, upload.event, upload.channel) == \
        (10013, "jpeg", 1, 1)
    assert (upload.position.lat, upload.position.lon) == (30.55617, 103.978661)
    assert upload.position.ts == datetime(2019, 1, 4, 9, 29, 52, tzinfo=CHINA_TZ)
    assert upload.data[:2] == b"\xff\xd8" and len(upload.data) == 804 - 36


def test_a_photo_uploaded_in_three_sub_packets_reads_whole():
    photo = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 6 + b"\x7e\x7d" + b"\xff\xd9"
    head = struct.pack(">IBBBB", 77, 0, 0, 0, 1) + location_body(bcd="261129140010")
    body = head + photo
    parts = [body[i:i + 600] for i in range(0, len(body), 600)]
    assert len(parts) == 3
    frames = [frame_2013(0x0801, "013912345678", 40 + i, part, packets=(3, i + 1))
              for i, part in enumerate(parts)]
    parsed = [parse(f[1:-1]) for f in reversed(frames)]  # any arrival order
    assert {(f.header.packets, f.header.index) for f in parsed} == {(3, 1), (3, 2), (3, 3)}
    whole = b"".join(f.body for f in sorted(parsed, key=lambda f: f.header.index))
    upload = d.read_media_upload(whole)
    assert (upload.media_id, upload.event, upload.channel) == (77, 0, 1)
    assert upload.position.ts == datetime(2026, 11, 29, 14, 0, 10, tzinfo=CHINA_TZ)
    assert upload.data == photo
