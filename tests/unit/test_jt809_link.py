"""The upper platform's main link (gateway/link.py): several lower platforms, each with its
access code, credentials, cipher and edition, against frames laid out by hand
(tests/unit/test_jt809_frame.by_hand: struct, binascii's CRC, the standard's cipher written
out) around bodies from the codec's tested builders; both editions, with and without
encryption."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_jt809_frame import CIPHER, by_hand
from yrd_hazmat.core.models import Severity, VehicleTerminal
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.gateway.guard import LoginGuard
from yrd_hazmat.gateway.link import LinkSession, SlaveTarget
from yrd_hazmat.gateway.platform_alarms import TYPE, LastFixes
from yrd_hazmat.gateway.platforms import Platform
from yrd_hazmat.gateway.session import Classified
from yrd_hazmat.jt809 import alarms as a
from yrd_hazmat.jt809 import exchange as x
from yrd_hazmat.jt809 import frame as f
from yrd_hazmat.jt809 import links as lk
from yrd_hazmat.jt809 import static as s
from yrd_hazmat.jt809.platform import fix

NOW = datetime(2026, 11, 29, 14, 10, 0, tzinfo=CHINA_TZ)
TS = datetime(2026, 11, 29, 14, 5, 9, tzinfo=CHINA_TZ)
OLD = Platform(access_code=30010001, name="Ningbo enterprise", user_id=7001, password="pw123456",
               edition=2011, province="ZJ")
NEW = Platform(access_code=30020002, name="Suzhou provincial", user_id=7002, password="s3cret",
               m1=30000000, ia1=20000000, ic1=10000000, edition=2019, province="JS")
PLATFORMS = {OLD.access_code: OLD, NEW.access_code: NEW}
KEY = 424242
assert NEW.cipher == CIPHER  # by_hand encrypts with the constants of test_jt809_frame
CAR = "沪A12345"


def session(platforms=None, **kwargs) -> LinkSession:
    kwargs.setdefault("clock", lambda: NOW)
    kwargs.setdefault("new_code", lambda: 0xCAFE)
    kwargs.setdefault("address", "10.0.0.9")
    return LinkSession(PLATFORMS if platforms is None else platforms, **kwargs)


def wire(platform: Platform, msg_id: int, body: bytes, *, encrypted: bool | None = None,
         serial: int = 1, center: int | None = None) -> bytes:
    """A frame of ``platform``'s edition laid out by hand, encrypted when the platform has a
    cipher (or as told), without its flags (what the session is given)."""
    if encrypted is None:
        encrypted = platform.cipher is not None
    return by_hand(msg_id, body, edition=platform.edition, serial=serial,
                   center=platform.access_code if center is None else center,
                   key=KEY if encrypted else None)[1:-1]


def login_body(platform: Platform, password: str | None = None, user: int | None = None,
               center: int | None = None, port: int = 7100) -> bytes:
    login = lk.Login(user_id=platform.user_id if user is None else user,
                     password=platform.password if password is None else password,
                     down_ip="10.0.0.9", down_port=port,
                     center=(platform.access_code if center is None else center)
                     if platform.edition == 2019 else None)
    return lk.write_login(login, platform.edition)


def answers(handled, platform: Platform) -> list[f.Frame]:
    return [f.parse(a[1:-1], platform.cipher, expect=platform.edition) for a in handled.answers]


def logged_in(platform: Platform, **kwargs) -> LinkSession:
    link = session(**kwargs)
    out = link.handle(wire(platform, lk.UP_CONNECT_REQ, login_body(platform)))
    assert out.login is not None and out.login.reason == "ok"
    return link


def position(platform: Platform, plate: str = CAR, when: datetime = TS, **fields) -> bytes:
    data = x.write_location(fix(when, 31.2304, 121.4737, 62.0, mileage_km=5000, **fields),
                            platform.edition)
    return wire(platform, x.UP_EXG_MSG, x.write(plate, 2, x.REAL_LOCATION, data))


# --- logging in -------------------------------------------------------------------------------

@pytest.mark.parametrize("platform", [OLD, NEW], ids=["2011", "2019-encrypted"])
def test_a_login_is_accepted_in_the_platforms_edition_and_cipher(platform):
    link = session()
    out = link.handle(wire(platform, lk.UP_CONNECT_REQ, login_body(platform)))
    [answer] = answers(out, platform)
    assert answer.header.msg_id == lk.UP_CONNECT_RSP and answer.header.edition == platform.edition
    assert answer.header.encrypted == (platform.cipher is not None)
    assert answer.header.center == platform.access_code
    assert lk.read_login_answer(answer.body) == lk.LoginAnswer(result=lk.OK, verify_code=0xCAFE)
    assert out.slave == SlaveTarget("10.0.0.9", 7100, 0xCAFE)
    assert link.logged_in and link.platform == platform and out.platform == platform
    assert out.rejected == [] and out.login.platform == platform.access_code
    assert link.dead_letter_key() == f"809:{platform.access_code}"


def test_a_login_without_a_slave_link_address_opens_none():
    out = session().handle(wire(OLD, lk.UP_CONNECT_REQ, login_body(OLD, port=0)))
    assert out.login.reason == "ok" and out.slave is None


def test_an_unencrypted_login_of_a_platform_with_a_cipher_is_answered_unencrypted():
    out = session().handle(wire(NEW, lk.UP_CONNECT_REQ, login_body(NEW), encrypted=False))
    [answer] = answers(out, NEW)
    assert not answer.header.encrypted and answer.body[0] == lk.OK


@pytest.mark.parametrize("platform, change, result, reason", [
    (OLD, {"password": "nope"}, lk.BAD_PASSWORD, "bad_password"),
    (NEW, {"password": "nope"}, lk.BAD_PASSWORD, "bad_password"),
    (OLD, {"user": 9999}, lk.NO_SUCH_USER, "no_such_user"),
    (NEW, {"user": 9999}, lk.NO_SUCH_USER, "no_such_user"),
    (NEW, {"center": 30099999}, lk.BAD_ACCESS_CODE, "bad_access_code"),  # 2019: in the body
], ids=["2011-password", "2019-password", "2011-user", "2019-user", "2019-body-access-code"])
def test_each_refusal_is_answered_with_the_standards_result(platform, change, result, reason):
    link = session()
    out = link.handle(wire(platform, lk.UP_CONNECT_REQ, login_body(platform, **change)))
    [answer] = answers(out, platform)
    assert lk.read_login_answer(answer.body) == lk.LoginAnswer(result=result, verify_code=0)
    assert (out.login.result, out.login.reason) == (result, reason)
    assert [r.reason for r in out.rejected] == ["auth_failed"] and not link.logged_in
    assert out.slave is None and out.quality == [Classified(None, None, "auth_failed")]


def test_an_unknown_access_code_a_disabled_platform_and_a_stranger_address_are_refused():
    stranger = Platform(access_code=99, name="x", user_id=1, password="p")
    out = session().handle(wire(stranger, lk.UP_CONNECT_REQ, login_body(stranger)))
    assert lk.read_login_answer(f.parse(out.answers[0][1:-1]).body).result == lk.BAD_ACCESS_CODE
    assert out.login.platform is None and out.platform is None
    disabled = msgspec.structs.replace(NEW, enabled=False)
    out = session({NEW.access_code: disabled}).handle(
        wire(disabled, lk.UP_CONNECT_REQ, login_body(disabled)))
    assert (out.login.result, out.login.reason) == (lk.OTHER_2019, "disabled")
    fenced = msgspec.structs.replace(OLD, addresses=["10.1.1.1"])
    out = session({OLD.access_code: fenced}).handle(wire(fenced, lk.UP_CONNECT_REQ,
                                                         login_body(fenced)))
    assert (out.login.result, out.login.reason) == (lk.BAD_IP, "bad_ip")
    out = session({OLD.access_code: fenced}, address="10.1.1.1").handle(
        wire(fenced, lk.UP_CONNECT_REQ, login_body(fenced)))
    assert out.login.result == lk.OK


def test_an_unknown_platforms_encrypted_login_is_refused_unread_and_a_broken_one_answered():
    stranger = msgspec.structs.replace(NEW, access_code=99)  # its cipher unknown here
    out = session().handle(wire(stranger, lk.UP_CONNECT_REQ, login_body(stranger)))
    [answer] = answers(out, stranger)
    assert not answer.header.encrypted and answer.body[0] == lk.BAD_ACCESS_CODE
    assert [r.reason for r in out.rejected] == ["auth_failed"]
    broken = session().handle(wire(NEW, lk.UP_CONNECT_REQ, login_body(NEW)[:20]))
    assert answers(broken, NEW)[0].body[0] == lk.OTHER_2019
    assert (broken.login.reason, [r.reason for r in broken.rejected]) == (
        "unreadable", ["truncated"])


def test_a_login_flood_from_one_address_is_answered_busy_and_closed_unchecked():
    clock = [0.0]
    guard = LoginGuard(attempts=3, failures=100, window_s=60, clock=lambda: clock[0])
    results = []
    for _ in range(5):
        out = session(guard=guard, address="6.6.6.6").handle(
            wire(OLD, lk.UP_CONNECT_REQ, login_body(OLD, password="guess")))
        results.append((out.login.reason, out.close, len(out.rejected)))
    assert results == [("bad_password", False, 1)] * 3 + [("address_throttled", True, 0)] * 2
    # the right password is not even checked while throttled, another address is served
    out = session(guard=guard, address="6.6.6.6").handle(wire(OLD, lk.UP_CONNECT_REQ,
                                                              login_body(OLD)))
    assert out.login.reason == "address_throttled"
    assert lk.read_login_answer(f.parse(out.answers[0][1:-1]).body).result == lk.BUSY
    assert session(guard=guard, address="10.0.0.9").handle(
        wire(OLD, lk.UP_CONNECT_REQ, login_body(OLD))).login.reason == "ok"
    clock[0] = 61.0  # the window passed
    assert session(guard=guard, address="6.6.6.6").handle(
        wire(OLD, lk.UP_CONNECT_REQ, login_body(OLD))).login.reason == "ok"


def test_failed_logins_of_a_platform_lock_it_but_from_where_it_logged_in_before():
    clock = [0.0]
    guard = LoginGuard(attempts=100, failures=3, window_s=60, clock=lambda: clock[0])
    assert session(guard=guard, address="10.0.0.9").handle(
        wire(OLD, lk.UP_CONNECT_REQ, login_body(OLD))).login.reason == "ok"
    reasons = [session(guard=guard, address=f"6.6.6.{i}").handle(
        wire(OLD, lk.UP_CONNECT_REQ, login_body(OLD, password="guess"))).login.reason
        for i in range(5)]
    assert reasons == ["bad_password"] * 3 + ["platform_throttled"] * 2
    assert session(guard=guard, address="6.6.6.9").handle(  # the right password, elsewhere
        wire(OLD, lk.UP_CONNECT_REQ, login_body(OLD))).login.reason == "platform_throttled"
    assert session(guard=guard, address="10.0.0.9").handle(  # the platform, from its address
        wire(OLD, lk.UP_CONNECT_REQ, login_body(OLD))).login.reason == "ok"
    assert session(guard=guard, address="6.6.6.9").handle(  # another platform: not locked
        wire(NEW, lk.UP_CONNECT_REQ, login_body(NEW))).login.reason == "ok"
    clock[0] = 61.0
    assert session(guard=guard, address="6.6.6.9").handle(
        wire(OLD, lk.UP_CONNECT_REQ, login_body(OLD))).login.reason == "ok"


# --- link management ----------------------------------------------------------------------------

@pytest.mark.parametrize("platform", [OLD, NEW], ids=["2011", "2019-encrypted"])
def test_keepalive_disconnect_and_the_notices(platform):
    link = logged_in(platform)
    beat = link.handle(wire(platform, lk.UP_LINKTEST_REQ, b""))
    assert [a.header.msg_id for a in answers(beat, platform)] == [lk.UP_LINKTEST_RSP]
    notice = link.handle(wire(platform, lk.UP_DISCONNECT_INFORM, bytes([lk.MAIN_LINK_BROKEN])))
    [report] = notice.reports
    assert (report.kind, report.fields, report.platform, notice.logout) == (
        "disconnect_inform", {"code": 0}, platform.access_code, False)
    closing = link.handle(wire(platform, lk.UP_CLOSELINK_INFORM, bytes([lk.GATEWAY_RESTART])))
    assert closing.reports[0].kind == "closelink_inform" and closing.logout
    wrong = link.handle(wire(platform, lk.UP_DISCONNECT_REQ, lk.write_logout(
        lk.Logout(user_id=platform.user_id, password="nope"))))
    assert wrong.rejected[0].reason == "auth_failed" and link.logged_in and not wrong.answers
    bye = link.handle(wire(platform, lk.UP_DISCONNECT_REQ, lk.write_logout(
        lk.Logout(user_id=platform.user_id, password=platform.password))))
    assert [a.header.msg_id for a in answers(bye, platform)] == [lk.UP_DISCONNECT_RSP]
    assert bye.logout and not link.logged_in
    after = link.handle(position(platform))
    assert after.pings == [] and after.rejected[0].reason == "not_authenticated"


def test_a_heartbeat_is_answered_before_a_login_but_nothing_else_is_taken():
    link = session()
    assert [a.header.msg_id for a in answers(link.handle(wire(NEW, lk.UP_LINKTEST_REQ, b"")),
                                             NEW)] == [lk.UP_LINKTEST_RSP]
    early = link.handle(position(NEW))
    assert early.pings == [] and early.rejected[0].reason == "not_authenticated"


def test_a_connection_belongs_to_the_platform_that_logged_in():
    link = logged_in(OLD)
    other = link.handle(position(NEW))
    assert other.pings == [] and other.rejected[0].reason == "auth_failed" and not other.answers


def test_a_platform_disabled_or_removed_at_run_time_loses_its_link():
    table = dict(PLATFORMS)
    link = session(table)
    link.handle(wire(OLD, lk.UP_CONNECT_REQ, login_body(OLD)))
    table[OLD.access_code] = msgspec.structs.replace(OLD, enabled=False)
    out = link.handle(position(OLD))
    assert out.close and out.logout and not link.logged_in and out.pings == []
    link = session(table := dict(PLATFORMS))
    link.handle(wire(OLD, lk.UP_CONNECT_REQ, login_body(OLD)))
    del table[OLD.access_code]
    out = link.handle(position(OLD))
    assert out.close and out.logout and out.platform == OLD and not link.logged_in
    assert out.rejected[0].reason == "auth_failed"


# --- positions -------------------------------------------------------------------------------

@pytest.mark.parametrize("platform", [OLD, NEW], ids=["2011", "2019-encrypted"])
def test_live_positions_become_pings(platform):
    link = logged_in(platform, declarations={CAR: VehicleTerminal(vehicle_id=CAR,
                                                                  carrier="acme")})
    out = link.handle(position(platform, gcj02=True, heading=90, alarm=1))
    [ping] = out.pings
    assert (ping.vehicle_id, ping.ts, ping.lat, ping.lon, ping.speed_kmh, ping.heading) == (
        CAR, TS, 31.2304, 121.4737, 62.0, 90)
    assert (ping.crs, ping.alarm_flags, ping.mileage_km, ping.blind) == ("GCJ02", 1, 5000.0, False)
    assert out.answers == [] and out.blind == 0  # JT/T 809 does not answer positions
    assert out.quality == [Classified(CAR, "acme", "qualified")]


@pytest.mark.parametrize("platform", [OLD, NEW], ids=["2011", "2019-encrypted"])
def test_resent_positions_are_blind_pings_and_each_one_is_classified(platform):
    link = logged_in(platform)
    kept = [fix(TS + timedelta(seconds=10 * i), 31.23, 121.47 + 0.001 * i, 60.0) for i in range(4)]
    kept.append(fix(TS + timedelta(seconds=50), 31.23, 121.47, 400.0))  # beyond the contract
    kept.append(fix(TS + timedelta(seconds=60), 31.23, 121.47, 30.0, status=0b01))  # no fix
    [first, second] = x.batches(kept)
    out = link.handle(wire(platform, x.UP_EXG_MSG, x.write(
        CAR, 2, x.HISTORY_LOCATION, x.write_history(first, platform.edition))))
    assert [p.blind for p in out.pings] == [True] * 4 and out.blind == 4
    assert [p.ts for p in out.pings] == [TS + timedelta(seconds=10 * i) for i in range(4)]
    assert [q.quality for q in out.quality] == ["qualified"] * 4 + ["bad_speed"]
    assert [r.reason for r in out.rejected] == ["invalid"]
    out = link.handle(wire(platform, x.UP_EXG_MSG, x.write(
        CAR, 2, x.HISTORY_LOCATION, x.write_history(second, platform.edition))))
    assert [(p.fix_valid, p.quality) for p in out.pings] == [(False, ["no_fix"])]


def test_a_plate_out_of_the_contract_is_refused():
    out = logged_in(OLD).handle(position(OLD, plate="bad plate"))
    assert out.pings == [] and out.rejected[0].reason == "invalid"


# --- registrations, waybills, static information -------------------------------------------------

REG = x.Registration(platform_id="33000000001", producer_id="70111", terminal_model="ZX-9",
                     terminal_id="T123456", sim="013900001234", imei="861234567890123")


@pytest.mark.parametrize("platform", [OLD, NEW], ids=["2011", "2019-encrypted"])
def test_a_registration_is_a_vehicle_register_record(platform):
    link = logged_in(platform)
    out = link.handle(wire(platform, x.UP_EXG_MSG, x.write(
        CAR, 2, x.REGISTER, x.write_registration(REG, platform.edition)), serial=77))
    [vehicle] = out.vehicles
    assert (vehicle.vehicle_id, vehicle.plate_colour, vehicle.platform, vehicle.terminal_id,
            vehicle.terminal_model, vehicle.sim, vehicle.producer_id) == (
        CAR, 2, platform.access_code, "T123456", "ZX-9", REG.sim, "70111")
    assert vehicle.registered_at == NOW and vehicle.edition == platform.edition
    assert vehicle.imei == (REG.imei if platform.edition == 2019 else None)
    if platform.edition == 2019:  # answered DOWN_EXG_MSG_REGISTER_ACK on the slave link
        [(msg_id, body)] = out.downward
        message = x.read(msg_id, body, 2019)
        assert message.sub_type == x.REGISTER_ACK and message.plate == CAR
        assert message.value == x.RegistrationAck(source_type=x.REGISTER, source_sn=77,
                                                  result=x.REGISTERED)
    else:
        assert out.downward == []


@pytest.mark.parametrize("platform", [OLD, NEW], ids=["2011", "2019-encrypted"])
def test_e_waybills_are_kept(platform):
    link = logged_in(platform)
    text = "运单号:YD20261129001;货物:UN1203 汽油;重量:30t"
    out = link.handle(wire(platform, x.UP_EXG_MSG, x.write(
        CAR, 2, x.REPORT_EWAYBILL_INFO, x.write_waybill(x.Waybill(text=text)))))
    [waybill] = out.waybills
    assert (waybill.vehicle_id, waybill.kind, waybill.text, waybill.platform) == (
        CAR, "report", text, platform.access_code)
    answer = x.Waybill(text=text, source_type=x.TAKE_EWAYBILL_REQ, source_sn=5)
    out = link.handle(wire(platform, x.UP_EXG_MSG, x.write(
        CAR, 2, x.TAKE_EWAYBILL_ACK, x.write_waybill(answer, x.TAKE_EWAYBILL_ACK,
                                                     platform.edition))))
    assert out.waybills[0].kind == "answer"
    assert out.waybills[0].source_sn == (5 if platform.edition == 2019 else None)


@pytest.mark.parametrize("platform", [OLD, NEW], ids=["2011", "2019-encrypted"])
def test_static_information_is_recorded(platform):
    link = logged_in(platform)
    info = s.StaticInfo(text=s.static_text({"VIN": "LSVAU2180N2183294", "VEHICLE_TYPE": "罐车",
                                            "OWERS_NAME": "宁波危运"}), source_sn=9)
    out = link.handle(wire(platform, s.UP_BASE_MSG, s.write(
        CAR, 2, s.VEHICLE_ADDED_ACK, s.write_static(info, platform.edition))))
    [report] = out.reports
    assert (report.kind, report.vehicle_id, report.msg_id, report.data_type) == (
        "static_info", CAR, s.UP_BASE_MSG, s.VEHICLE_ADDED_ACK)
    assert report.fields["VIN"] == "LSVAU2180N2183294" and report.fields["VEHICLE_TYPE"] == "罐车"
    assert report.fields.get("source_sn") == (9 if platform.edition == 2019 else None)


def test_supervision_answers_and_handling_results_are_recorded():
    link = logged_in(NEW)
    answer = a.SupervisionAnswer(supervision_id=3, source_type=a.ADPT_INFO, source_sn=12,
                                 result=a.DONE)
    out = link.handle(wire(NEW, a.UP_WARN_MSG, a.write(
        a.URGE_TODO_ACK, a.write_order_answer(answer, 2019), 2019)))
    assert out.reports[0].kind == "supervision_answer"
    assert out.reports[0].fields == {"supervision_id": 3, "result": 1, "source_type": 0x1402,
                                     "source_sn": 12}


# --- alarms ----------------------------------------------------------------------------------

def alarm_frame(platform: Platform, warn_type: int = a.OVERSPEED, plate: str = CAR,
                when: datetime = TS) -> bytes:
    alarm = a.Alarm(warn_type=warn_type, warn_time=when, content="超速报警", info_id=8,
                    warn_src=a.FROM_ENTERPRISE, platform_id="33000000001", plate=plate, colour=2,
                    start_time=when, end_time=when)
    return wire(platform, a.UP_WARN_MSG, a.write(
        a.ADPT_INFO, a.write_alarm(alarm, a.ADPT_INFO, platform.edition), platform.edition,
        plate, 2))


@pytest.mark.parametrize("platform", [OLD, NEW], ids=["2011", "2019-encrypted"])
def test_an_alarm_is_an_alert_of_the_platforms_own_once_the_vehicle_is_placed(platform):
    link = logged_in(platform)
    waiting = link.handle(alarm_frame(platform, a.EMERGENCY))
    assert waiting.alerts == [] and waiting.rejected == []
    placed = link.handle(position(platform, when=TS - timedelta(seconds=30)))
    [alert] = placed.alerts
    assert (alert.type, alert.severity, alert.state.value, alert.vehicle_id) == (
        TYPE, Severity.CRITICAL, "raised", CAR)
    assert (alert.ts, alert.emitted_at, alert.lat, alert.lon) == (TS, NOW, 31.2304, 121.4737)
    assert alert.province == platform.province and alert.alert_id == f"{alert.incident_id}:raised"
    assert alert.details["source"] == "jt809" and alert.details["platform"] == platform.access_code
    assert (alert.details["warn"], alert.details["warn_type"], alert.details["content"]) == (
        "emergency", 3, "超速报警")
    assert alert.details["position_ts"] == (TS - timedelta(seconds=30)).isoformat()
    # the same alarm sent again is the same alert; the next comes at once (position known)
    again = link.handle(alarm_frame(platform, a.EMERGENCY))
    assert [x.alert_id for x in again.alerts] == [alert.alert_id]
    other = link.handle(alarm_frame(platform, a.OVERSPEED))
    assert other.alerts[0].severity == Severity.WARNING
    assert other.alerts[0].incident_id != alert.incident_id


def test_an_alarm_is_placed_in_wgs84_and_an_unknown_code_is_info():
    link = logged_in(OLD)
    link.handle(position(OLD, gcj02=True))
    [alert] = link.handle(alarm_frame(OLD, 0x0777)).alerts
    assert (alert.details["warn"], alert.severity) == ("warn_0777", Severity.INFO)
    assert 0.001 < abs(alert.lon - 121.4737) < 0.01 and 0.001 < abs(alert.lat - 31.2304) < 0.01


def test_alarms_whose_vehicle_never_shows_are_dead_letters_when_the_link_closes():
    positions = LastFixes()
    link = logged_in(OLD, positions=positions)
    link.handle(alarm_frame(OLD, plate="浙B00001"))
    link.handle(alarm_frame(NEW, plate="浙B00002"))  # another platform's: refused at once
    ended = link.close()
    assert [(r.reason, q.vehicle_id) for r, q in zip(ended.rejected, ended.quality)] == [
        ("no_position", "浙B00001")]
    assert link.close().rejected == []


def test_a_position_from_another_platforms_link_places_an_alarm():
    positions = LastFixes()
    first, second = logged_in(OLD, positions=positions), logged_in(NEW, positions=positions)
    assert first.handle(alarm_frame(OLD)).alerts == []
    second.handle(position(NEW))
    assert len(first.handle(wire(OLD, lk.UP_LINKTEST_REQ, b"")).alerts) == 1


def test_an_alarm_about_no_valid_vehicle_is_refused():
    out = logged_in(NEW).handle(alarm_frame(NEW, plate=""))
    assert out.rejected[0].reason == "invalid" and out.alerts == []


# --- what is not handled, and hostile input ------------------------------------------------------

def test_unsupported_messages_and_sub_businesses_are_dead_letters():
    link = logged_in(NEW)
    monitor = link.handle(wire(NEW, 0x1500, x.write(CAR, 2, 0x15FF, b"\x00")))
    assert monitor.rejected[0].reason == "unsupported" and monitor.message == "ctrl"
    # UP_EXG_MSG_APPLY_FOR_MONITOR_STARTUP: a lower platform asking for others' vehicles
    sub = link.handle(wire(NEW, x.UP_EXG_MSG, x.write(CAR, 2, 0x1207, b"")))
    assert sub.rejected[0].reason == "unsupported"
    assert link.logged_in  # the link goes on


@pytest.mark.parametrize("platform", [OLD, NEW], ids=["2011", "2019-encrypted"])
def test_hostile_frames_are_refused_not_raised(platform):
    link = logged_in(platform)
    good = position(platform)
    data = f.unescape(good)
    flipped = data[:-1] + bytes([data[-1] ^ 0x01])
    assert link.handle(f.escape(flipped)).rejected[0].reason == "bad_check_code"
    longer = bytearray(data)
    struct.pack_into(">I", longer, 0, len(data) + 500)  # MSG_LENGTH past the end
    crc = struct.pack(">H", f.crc16(bytes(longer[:-2])))
    assert link.handle(f.escape(bytes(longer[:-2]) + crc)).rejected[0].reason == "truncated"
    body = x.write(CAR, 2, x.REAL_LOCATION, b"\x00" * 3)
    short = link.handle(wire(platform, x.UP_EXG_MSG, body))
    assert short.rejected[0].reason == "truncated"
    past = x.write(CAR, 2, x.REAL_LOCATION, b"")[:-4] + struct.pack(">I", 10**6)
    assert link.handle(wire(platform, x.UP_EXG_MSG, past)).rejected[0].reason == "truncated"
    assert link.handle(b"").rejected[0].reason == "truncated"
    assert link.handle(good).pings  # and the link still serves


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([lk.UP_CONNECT_REQ, lk.UP_DISCONNECT_REQ,
                                                 lk.UP_CLOSELINK_INFORM, x.UP_EXG_MSG,
                                                 a.UP_WARN_MSG, s.UP_BASE_MSG, 0x1300]),
       st.sampled_from([OLD, NEW]), st.booleans())
def test_any_body_is_handled_without_raising(body, msg_id, platform, first_login):
    link = logged_in(platform) if first_login else session()
    out = link.handle(wire(platform, msg_id, body))
    assert out.rejected or out.answers or out.pings or out.reports or out.vehicles \
        or out.waybills or out.login or link._pending or out.message == "exg"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_any_bytes_are_handled_without_raising(content):
    out = session().handle(content)
    assert out.rejected and out.message == "unreadable"


def test_the_latest_positions_are_the_newest_valid_ones_and_bounded():
    from yrd_hazmat.gateway.link import fix_ping

    positions = LastFixes(size=2)
    assert positions.note(fix_ping("A1", fix(TS, 31.0, 121.0, 1.0), False))
    assert not positions.note(fix_ping("A1", fix(TS - timedelta(seconds=1), 30.0, 120.0, 1.0),
                                       True))
    assert not positions.note(fix_ping("A1", fix(TS + timedelta(1), 30.0, 120.0, 1.0,
                                                 status=0b01), False))
    assert positions.get("A1").lat == 31.0
    positions.note(fix_ping("B2", fix(TS, 31.0, 121.0, 1.0), False))
    positions.note(fix_ping("C3", fix(TS, 31.0, 121.0, 1.0), False))
    assert len(positions) == 2 and positions.get("A1") is None
