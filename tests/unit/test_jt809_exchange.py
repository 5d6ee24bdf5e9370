"""JT/T 809 vehicle dynamic exchange (0x1200/0x9200): registrations, positions, history,
e-waybills, in both editions, laid out by hand from the standard's tables; and a 2019
position from the ministry's conformance test (SmallChi/JT809 GuoJian001Test.cs)."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.unit.test_jt809_frame import CIPHER, by_hand, read_back
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.jt808.frame import FrameError
from yrd_hazmat.jt809 import bodies, frame as f
from yrd_hazmat.jt809 import exchange as x
from yrd_hazmat.jt809.gnss import Fix

TS = datetime(2026, 11, 29, 14, 5, 9, tzinfo=CHINA_TZ)
CAR = "沪A12345"
PLATE = bytes.fromhex("bba6413132333435") + bytes(13)      # VEHICLE_NO "沪A12345", GBK, 21

GNSS_2011 = bytes.fromhex(
    "00"            # ENCRYPT: WGS-84
    "1d" "0b" "07ea"  # DATE: day 29, month 11, year 2026
    "0e" "05" "09"  # TIME 14:05:09
    "073d8aa4"      # LON 121.473700
    "01dc89c0"      # LAT 31.230400
    "003e"          # VEC1 62 km/h
    "003c"          # VEC2 60 km/h (tachograph)
    "00001388"      # VEC3 5000 km
    "005a"          # DIRECTION 90
    "000c"          # ALTITUDE 12 m
    "00000003"      # STATE: ACC on, fixed
    "00000000")     # ALARM
FIX_2011 = Fix(ts=TS, lat=31.2304, lon=121.4737, speed_kmh=62.0, heading=90, altitude_m=12,
               status=3, alarm=0, mileage_km=5000.0, recorder_speed_kmh=60.0)

REPORT_808 = bytes.fromhex(
    "00000000"      # alarm
    "00000003"      # status
    "01dc89c0"      # latitude
    "073d8aa4"      # longitude
    "000c"          # altitude 12 m
    "026c"          # speed 62.0 km/h in 0.1 km/h
    "005a"          # direction 90
    "261129140509"  # BCD time 26-11-29 14:05:09
    "0104" "0000c350")  # item 0x01 mileage, 4 bytes: 5000.0 km in 0.1 km
GNSS_2019 = (bytes.fromhex("00" "00000022")   # ENCRYPT, DATA_LENGTH 34
             + REPORT_808
             + bytes.fromhex("3132333435363738393031" "00000000")  # PLATFORM_ID1, ALARM1
             + bytes(11) + bytes.fromhex("00000000")                # PLATFORM_ID2, ALARM2
             + bytes(11) + bytes.fromhex("00000000"))               # PLATFORM_ID3, ALARM3
FIX_2019 = Fix(ts=TS, lat=31.2304, lon=121.4737, speed_kmh=62.0, heading=90, altitude_m=12,
               status=3, alarm=0, mileage_km=5000.0,
               platforms=(("12345678901", 0), ("", 0), ("", 0)))
GNSS = {2011: GNSS_2011, 2019: GNSS_2019}
FIX = {2011: FIX_2011, 2019: FIX_2019}


@pytest.mark.parametrize("version", [2011, 2019])
def test_real_time_position_body(version):
    data = GNSS[version]
    body = PLATE + bytes.fromhex("02" "1202") + len(data).to_bytes(4, "big") + data
    assert x.write(CAR, 2, x.REAL_LOCATION, x.write_location(FIX[version], version)) == body
    message = x.read(x.UP_EXG_MSG, body, version)
    assert (message.plate, message.colour, message.sub_type) == ("沪A12345", 2, 0x1202)
    assert message.value == FIX[version]
    down = x.read(x.DOWN_EXG_MSG, PLATE + bytes.fromhex("02" "9202")
                  + len(data).to_bytes(4, "big") + data, version)
    assert down.sub_type == x.CAR_LOCATION and down.value == FIX[version]


def test_2011_position_south_west_and_gcj02():
    gnss = bytearray(GNSS_2011)
    gnss[0] = 1                                       # ENCRYPT: GCJ-02
    gnss[28:32] = (3 | 0b1100).to_bytes(4, "big")    # STATE: south, west
    gnss[26:28] = (0xFFF6).to_bytes(2, "big")        # ALTITUDE -10 m
    fix = x.read_location(bytes(gnss))
    assert (fix.lat, fix.lon, fix.gcj02, fix.altitude_m) == (-31.2304, -121.4737, True, -10)
    assert x.write_location(fix) == bytes(gnss)


@pytest.mark.parametrize("version", [2011, 2019])
def test_history_at_most_five_in_time_order(version):
    fixes = [Fix(ts=TS.replace(second=s), lat=31.2304, lon=121.4737, speed_kmh=62.0,
                 heading=90, altitude_m=12, status=3, mileage_km=5000.0,
                 recorder_speed_kmh=62.0 if version == 2011 else None,
                 platforms=() if version == 2011 else (("12345678901", 0), ("", 0), ("", 0)))
             for s in (0, 10, 20)]
    data = x.write_history(fixes, version)
    assert data[0] == 3                                  # GNSS_CNT
    per = (len(data) - 1) // 3
    assert per == (36 if version == 2011 else 1 + 4 + 34 + 45)
    assert data[1 + per:1 + 2 * per] == x.write_location(fixes[1], version)
    assert x.read_history(data, version) == fixes
    with pytest.raises(ValueError):
        x.write_history(fixes * 2, version)
    with pytest.raises(ValueError):
        x.write_history([], version)
    with pytest.raises(FrameError) as empty:
        x.read_history(b"\x00", version)
    assert empty.value.reason == "bad_message"
    with pytest.raises(FrameError) as fewer:
        x.read_history(b"\x04" + data[1:], version)      # says 4, holds 3
    assert fewer.value.reason == "truncated"


REG_2011 = bytes.fromhex(
    "3132333435363738393031"        # PLATFORM_ID "12345678901" (11)
    "3730303031000000000000"        # PRODUCER_ID "70001" (11)
    "5952442d54310000"              # TERMINAL_MODEL_TYPE "YRD-T1" (8)
    "41314232433344"                # TERMINAL_ID "A1B2C3D" (7)
    "303133393132333435363738")     # TERMINAL_SIMCODE "013912345678" (12)
REG_2011_WIDE = (REG_2011[:22]
                 + bytes.fromhex("5952442d5445524d494e414c2d58000000000000")  # 20-byte model
                 + REG_2011[30:])
REG_2019 = (REG_2011[:22]
            + b"YRD-T1".ljust(30, b"\x00")              # TERMINAL_MODEL_TYPE (30)
            + b"860000000000001"                        # IMEI (15)
            + b"A1B2C3D4".ljust(30, b"\x00")            # TERMINAL_ID (30)
            + b"0013912345678")                         # TERMINAL_SIMCODE (13)


def test_registration_2011_both_sizes_and_2019():
    reg = x.Registration(platform_id="12345678901", producer_id="70001", terminal_model="YRD-T1",
                         terminal_id="A1B2C3D", sim="013912345678")
    assert len(REG_2011) == 49 and x.write_registration(reg) == REG_2011
    assert x.read_registration(REG_2011) == reg
    wide = x.read_registration(REG_2011_WIDE)
    assert len(REG_2011_WIDE) == 61 and wide.terminal_model == "YRD-TERMINAL-X"
    assert x.write_registration(wide) == REG_2011_WIDE
    new = x.Registration(platform_id="12345678901", producer_id="70001", terminal_model="YRD-T1",
                         imei="860000000000001", terminal_id="A1B2C3D4", sim="0013912345678")
    assert len(REG_2019) == 110 and x.write_registration(new, 2019) == REG_2019
    assert x.read_registration(REG_2019, 2019) == new
    with pytest.raises(FrameError) as odd:
        x.read_registration(REG_2011[:48])
    assert odd.value.reason == "bad_message"
    body = x.write(CAR, 2, x.REGISTER, REG_2011)
    assert bodies.read(x.UP_EXG_MSG, body).value == reg


def test_waybills_and_their_request():
    report = bytes.fromhex("00000004" "d4cbb5a5")          # EWAYBILL_LENGTH 4, "运单"
    assert x.read_waybill(report, x.REPORT_EWAYBILL_INFO) == x.Waybill(text="运单")
    assert x.write_waybill(x.Waybill(text="运单")) == report
    answer_2019 = bytes.fromhex("920b" "00000007") + report  # SOURCE_DATA_TYPE, SOURCE_MSG_SN
    waybill = x.Waybill(text="运单", source_type=0x920B, source_sn=7)
    assert x.read_waybill(answer_2019, x.TAKE_EWAYBILL_ACK, 2019) == waybill
    assert x.write_waybill(waybill, x.TAKE_EWAYBILL_ACK, 2019) == answer_2019
    assert x.write_waybill(waybill, x.TAKE_EWAYBILL_ACK, 2011) == report
    request = PLATE + bytes.fromhex("02" "920b" "00000000")  # DOWN_EXG_MSG_TAKE_EWAYBILL_REQ
    message = x.read(x.DOWN_EXG_MSG, request, 2019)
    assert (message.sub_type, message.value, message.plate) == (0x920B, None, "沪A12345")
    assert x.write(CAR, 2, x.TAKE_EWAYBILL_REQ, b"") == request
    with pytest.raises(FrameError) as lying:
        x.read_waybill(bytes.fromhex("00000010" "d4cb"), x.REPORT_EWAYBILL_INFO)
    assert lying.value.reason == "truncated"


def test_registration_ack_with_and_without_the_vehicle():
    ack = x.RegistrationAck(source_type=0x1201, source_sn=5, result=x.REGISTERED_CHECKED)
    data = bytes.fromhex("1201" "00000005" "01")    # SOURCE_DATA_TYPE, SOURCE_MSG_SN, RESULT
    assert x.write_registration_ack(ack) == data
    bare = bytes.fromhex("9201" "00000007") + data  # 2019 platforms without the vehicle
    assert x.read(x.DOWN_EXG_MSG, bare, 2019).value == ack
    full = PLATE + bytes.fromhex("02" "9201" "00000007") + data
    assert x.read(x.DOWN_EXG_MSG, full, 2019).value == ack


# Conformance test, frame "大兄弟提供6": a 2019 UP_EXG_MSG 0x1202 of 测B01844, encrypted
# (key 0x3b89); the JT/T 808 report holds 29 bytes, a stray byte after the 28.
CAPTURED_1202 = bytes.fromhex(
    "5b0000008d000002da1200042c1d810000000100003b890000000068a7e5b111474ff8b4aefd2391879f"
    "8478be0e5f9087119a5ae396940d1cf33dd127391516ebfb619e887965e63bd52239a575aa998aae0c2f"
    "b14c070ed701f7adfc384589cd9c73d5d7e0e555013671e48c3888555ec61b88da6fb512bed061b6a037"
    "a9be6ba38aa6c5cd3ff712a6ccc15d")


def test_a_captured_2019_position():
    frame = read_back(CAPTURED_1202, f.Cipher(56107078, 37382110, 50361430), expect=2019)
    message = bodies.read(frame.header.msg_id, frame.body, frame.header.edition)
    fix = message.value
    assert (message.plate, message.colour, message.sub_type) == ("测B01844", 2, 0x1202)
    assert fix.ts == datetime(2025, 8, 22, 11, 35, 45, tzinfo=CHINA_TZ)
    assert (fix.lat, fix.lon, fix.speed_kmh, fix.altitude_m) == (32.353134, 121.357231, 22.4, 100)
    assert fix.platforms[0] == ("0", 0x40000) and fix.platforms[1][0] == "\x01" * 11


@pytest.mark.parametrize("version", [2011, 2019])
def test_positions_in_frames_of_both_editions(version):
    body = x.write(CAR, 2, x.REAL_LOCATION, GNSS[version])
    frame = read_back(by_hand(x.UP_EXG_MSG, body, edition=version, key=31), CIPHER)
    assert frame.header.edition == version
    assert bodies.read(x.UP_EXG_MSG, frame.body, version).value == FIX[version]


def test_hostile_exchange_bodies():
    body = x.write(CAR, 2, x.REAL_LOCATION, GNSS_2011)
    for cut in range(len(body)):
        with pytest.raises(FrameError) as short:
            x.read(x.UP_EXG_MSG, body[:cut])
        assert short.value.reason == "truncated"
    bad_date = bytearray(GNSS_2011)
    bad_date[2] = 13                                   # month 13
    with pytest.raises(FrameError) as date:
        x.read_location(bytes(bad_date))
    assert date.value.reason == "bad_message"
    no_fix = x.write(CAR, 2, x.REAL_LOCATION, bytes(36))
    with pytest.raises(FrameError) as empty:
        x.read(x.UP_EXG_MSG, no_fix)
    assert empty.value.reason == "bad_message"
    with pytest.raises(FrameError) as other:
        x.read(x.UP_EXG_MSG, x.write(CAR, 2, 0x1299, b""))
    assert other.value.reason == "unsupported"
    with pytest.raises(FrameError) as not_gbk:
        x.read(x.UP_EXG_MSG, b"\xff" * 21 + bytes.fromhex("02" "1202" "00000000"))
    assert not_gbk.value.reason == "bad_message"


def test_kept_positions_go_up_in_time_order_five_a_packet():
    kept = [Fix(ts=TS.replace(minute=m), lat=31.2304, lon=121.4737, speed_kmh=62.0)
            for m in (9, 3, 7, 1, 5, 0, 8, 2, 6, 4, 10, 11)]
    packets = x.batches(kept)
    assert [len(p) for p in packets] == [5, 5, 2]
    assert [fix.ts.minute for p in packets for fix in p] == list(range(12))
    shuffled = x.write_history([kept[0], kept[1]])           # minute 9 given before minute 3
    assert shuffled[1 + 5:1 + 8] == bytes([14, 3, 9])        # the first GNSS_DATA is 14:03:09
    assert [fix.ts.minute for fix in x.read_history(shuffled)] == [3, 9]
