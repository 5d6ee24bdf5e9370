"""The uplink's pure parts: WARN_TYPE table, the ledger of what is known delivered, the
session's frames (read back with the JT/T 809 codec), the upper platform's requests."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.factories import T0, ping
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.models import Alert, AlertState, City, Severity
from yrd_hazmat.core.timeutil import to_ms
from yrd_hazmat.jt809 import alarms, bodies, control, exchange, inspection, links
from yrd_hazmat.jt809.frame import V2011, V2019, Cipher, build, parse
from yrd_hazmat.uplink import requests, warn
from yrd_hazmat.uplink.ledger import Ledger
from yrd_hazmat.uplink.records import UplinkAnswer, accepted
from yrd_hazmat.uplink.session import LinkConfig, Session


def alert(type_: str, state=AlertState.RAISED, severity=Severity.WARNING) -> Alert:
    return Alert(alert_id=f"i-{type_}:{state.value}", incident_id=f"i-{type_}", type=type_,
                 severity=severity, state=state, vehicle_id="沪A12345", ts=T0, emitted_at=T0,
                 lat=31.2, lon=121.4, province="SH", city=City(code="310000", name="上海市"))


@pytest.mark.parametrize("type_, state, severity, edition, code", [
    ("SPEEDING", AlertState.RAISED, Severity.WARNING, V2011, 0x0001),
    ("ZONE_SPEEDING", AlertState.RAISED, Severity.WARNING, V2011, 0x0001),
    ("FATIGUE_DRIVING", AlertState.RAISED, Severity.WARNING, V2011, 0x0002),
    ("DEVICE_ALARM", AlertState.RAISED, Severity.CRITICAL, V2011, 0x0003),
    ("DEVICE_ALARM", AlertState.RAISED, Severity.WARNING, V2011, 0x000E),
    ("ZONE_VIOLATION", AlertState.RAISED, Severity.CRITICAL, V2011, 0x0004),
    ("ZONE_VIOLATION", AlertState.CLEARED, Severity.CRITICAL, V2011, 0x0005),
    ("ROUTE_DEVIATION", AlertState.RAISED, Severity.WARNING, V2019, 0x000B),
    ("PROLONGED_STOP", AlertState.RAISED, Severity.WARNING, V2011, 0x000E),
    ("PROLONGED_STOP", AlertState.RAISED, Severity.WARNING, V2019, 0x00FF),
    ("SPEEDING", AlertState.CLEARED, Severity.WARNING, V2011, None),
])
def test_warn_type_table(type_, state, severity, edition, code):
    assert warn.warn_type(alert(type_, state, severity), edition) == code


def test_ledger_confirms_only_what_a_link_test_answer_covers():
    ledger = Ledger({"p0": 10, "p1": 0})
    ledger.wrote("p0", 10)
    ledger.wrote("p0", 11)
    assert ledger.pending and ledger.unconfirmed() == 2
    ledger.probe()
    ledger.wrote("p1", 0)  # after the probe: not covered by it
    assert ledger.answered()
    assert ledger.confirmed == {"p0": 12, "p1": 0}
    assert ledger.to_commit() == {"p0": 12}
    assert ledger.to_commit() == {}
    assert ledger.unconfirmed() == 1
    ledger.probe()
    # the link drops before the answer: reading goes back to the confirmed offsets
    assert ledger.dropped() == {"p0": 12, "p1": 0}
    assert not ledger.answered()  # the void probe's answer never counts
    assert ledger.unconfirmed() == 0


def test_ledger_answers_in_order():
    ledger = Ledger({"p": 0})
    ledger.wrote("p", 0)
    ledger.probe()
    ledger.wrote("p", 1)
    ledger.probe()
    ledger.answered()
    assert ledger.confirmed == {"p": 1}
    ledger.answered()
    assert ledger.confirmed == {"p": 2}


def config(edition=V2011, cipher=None) -> LinkConfig:
    return LinkConfig(user_id=7, password="secret", center=4242, edition=edition, cipher=cipher,
                      down_host="10.0.0.1", down_port=7000, platform_id="YRD0000001")


def read(frame: bytes, edition=V2011, cipher=None):
    f = parse(frame[1:-1], cipher, expect=edition)
    return f, bodies.read(f.header.msg_id, f.body, edition)


@pytest.mark.parametrize("edition", [V2011, V2019])
def test_login_carries_the_slave_link_and_access_code(edition):
    s = Session(config(edition))
    f, login = read(s.login(), edition)
    assert f.header.msg_id == links.UP_CONNECT_REQ and f.header.center == 4242
    assert (login.user_id, login.password, login.down_ip, login.down_port) == \
        (7, "secret", "10.0.0.1", 7000)
    assert login.center == (4242 if edition == V2019 else None)


@pytest.mark.parametrize("edition", [V2011, V2019])
def test_position_and_history_frames(edition):
    cipher = Cipher(m1=10_000_000, ia1=20_000_000, ic1=30_000_000)
    s = Session(config(edition, cipher))
    f, message = read(s.position(ping(at_s=5, speed=61.0)), edition, cipher)
    assert f.header.encrypted and message.sub_type == exchange.REAL_LOCATION
    assert message.plate == "沪A12345" and message.value.ts == T0 + timedelta(seconds=5)
    assert message.value.speed_kmh == pytest.approx(61.0, abs=0.1)
    kept = [ping(at_s=t) for t in (30, 10, 20, 60, 50, 40, 0)]
    frames = s.history("沪A12345", kept)
    assert len(frames) == 2
    times = []
    for frame in frames:
        f, message = read(frame, edition, cipher)
        assert message.sub_type == exchange.HISTORY_LOCATION and len(message.value) <= 5
        times += [fix.ts for fix in message.value]
    assert times == sorted(times) and len(times) == 7
    serials = [read(x, edition, cipher)[0].header.serial for x in frames]
    assert serials == sorted(serials) and len(set(serials)) == 2


@pytest.mark.parametrize("edition", [V2011, V2019])
def test_alarm_frame(edition):
    s = Session(config(edition))
    _, message = read(s.alarm(alert("FATIGUE_DRIVING")), edition)
    assert message.sub_type == alarms.ADPT_INFO and message.value.warn_type == 0x0002
    assert (message.plate or message.value.plate) == "沪A12345"
    assert s.alarm(alert("SPEEDING", AlertState.CLEARED)) is None


def test_accepted_is_the_workers_judgement():
    p = ping(at_s=0)
    at = to_ms(p.ts)
    key = p.vehicle_id.encode()
    kw = {"max_bytes": 16384, "tolerance_ms": 300_000, "now_ms": at}
    assert accepted(key, encode(p), at, **kw) == p
    assert accepted(b"other", encode(p), at, **kw) is None  # wrong key
    assert accepted(key, encode(p), at - 3_600_000, **kw) is None  # an hour ahead of arrival
    assert accepted(key, encode(ping(fix_valid=False)), at, **kw) is None
    assert accepted(key, b"{", at, **kw) is None


def upper(msg_id, body, edition=V2011, serial=99):
    return parse(build(msg_id, serial, 4242, body, edition=edition)[1:-1], expect=edition)


@pytest.mark.parametrize("edition", [V2011, V2019])
def test_inspection_becomes_a_request_and_a_persons_answer_goes_up(edition):
    q = inspection.Inspection(info_id=5, content="谁在值班?", object_type=1, object_id="",
                              answer_time=10 if edition == V2019 else None)
    frame = upper(inspection.DOWN_PLATFORM_MSG, inspection.write(
        inspection.POST_QUERY_REQ, inspection.write_inspection(q, edition)), edition)
    out = requests.handle(frame, link="slave", edition=edition, now=T0,
                          inspection_answer_s=600, command_expiry_s=3600)
    req = out.request
    assert req.kind == "inspection" and req.question == "谁在值班?" and req.serial == 99
    assert req.deadline == T0 + timedelta(seconds=600)  # 10 minutes either way here
    answer = UplinkAnswer(request=req, answered_by="张警官", answered_at=T0, content="张警官")
    _, message = read(Session(config(edition)).answer(answer), edition)
    assert message.sub_type == inspection.POST_QUERY_ACK and message.value.content == "张警官"
    if edition == V2011:
        assert message.value.info_id == 5
    else:
        assert message.value.source_sn == 99
    no_text = UplinkAnswer(request=req, answered_by="x", answered_at=T0)
    assert Session(config(edition)).answer(no_text) is None


@pytest.mark.parametrize("edition", [V2011, V2019])
def test_supervision_order_keeps_its_deadline_and_is_answered(edition):
    deadline = T0 + timedelta(hours=2)
    order = alarms.SupervisionOrder(deadline=deadline, level=0, supervisor="王", tel="1",
                                    email="e", warn_time=T0, warn_type=1, supervision_id=31,
                                    source_type=alarms.ADPT_INFO, source_sn=17)
    frame = upper(alarms.DOWN_WARN_MSG, alarms.write(
        alarms.URGE_TODO_REQ, alarms.write_order(order, edition), edition, plate="沪A12345"),
        edition)
    req = requests.handle(frame, link="main", edition=edition, now=T0,
                          inspection_answer_s=600, command_expiry_s=3600).request
    assert req.kind == "supervision" and req.deadline == deadline
    answer = UplinkAnswer(request=req, answered_by="desk", answered_at=T0, result=alarms.DONE)
    _, message = read(Session(config(edition)).answer(answer), edition)
    assert message.sub_type == alarms.URGE_TODO_ACK and message.value.result == alarms.DONE
    if edition == V2011:
        assert message.value.supervision_id == 31 and message.plate == "沪A12345"
    else:
        assert message.value.source_sn == 17


def test_text_and_photo_requests_become_commands():
    text = control.write("沪A12345", 2, control.TEXT_INFO, control.write_text(
        control.TextRequest(msg_id=3, text="请靠边停车", priority=control.URGENT)))
    out = requests.handle(upper(control.DOWN_CTRL_MSG, text), link="slave", edition=V2011,
                          now=T0, inspection_answer_s=600, command_expiry_s=3600)
    assert out.command.kind == "text" and out.command.text == "请靠边停车"
    assert out.command.emergency and out.command.vehicle_id == "沪A12345"
    assert out.command.expires_at == T0 + timedelta(hours=1)
    photo = control.write("沪A12345", 2, control.TAKE_PHOTO_REQ,
                          control.write_photo_request(control.PhotoRequest(lens=2)))
    out = requests.handle(upper(control.DOWN_CTRL_MSG, photo), link="slave", edition=V2011,
                          now=T0, inspection_answer_s=600, command_expiry_s=3600)
    assert out.command.kind == "photo" and out.command.camera == 2


def test_ledger_offers_a_failed_commit_again():
    ledger = Ledger({"p": 0})
    ledger.wrote("p", 0)
    ledger.probe()
    ledger.answered()
    offsets = ledger.to_commit()
    assert offsets == {"p": 1}
    ledger.commit_failed(offsets)
    assert ledger.to_commit() == {"p": 1}


def text_request(edition=V2011):
    frame = control.write("沪A12345", 2, control.TEXT_INFO, control.write_text(
        control.TextRequest(msg_id=41, text="请靠边停车")))
    out = requests.handle(upper(control.DOWN_CTRL_MSG, frame, edition, 99), link="slave",
                          edition=edition, now=T0, inspection_answer_s=600,
                          command_expiry_s=3600)
    return out.request, out.command


def photo_request(edition=V2011):
    frame = control.write("沪A12345", 2, control.TAKE_PHOTO_REQ,
                          control.write_photo_request(control.PhotoRequest(lens=2, size=1)))
    out = requests.handle(upper(control.DOWN_CTRL_MSG, frame, edition, 77), link="main",
                          edition=edition, now=T0, inspection_answer_s=600,
                          command_expiry_s=3600)
    return out.request, out.command


def step(command, status, minutes=1, media_id=None):
    from yrd_hazmat.core.models import CommandResult
    return CommandResult(command_id=command.command_id, vehicle_id=command.vehicle_id,
                         status=status, at=T0 + timedelta(minutes=minutes), media_id=media_id)


def picture(command, data=b"\xff\xd8jpeg\xff\xd9"):
    import base64

    from yrd_hazmat.core.models import Media
    return Media(media_id="沪A12345:5:x", vehicle_id="沪A12345", terminal_media_id=5,
                 format="jpeg", channel=2, event=0, received_at=T0 + timedelta(minutes=2),
                 data=base64.b64encode(data).decode(), size=len(data),
                 command_id=command.command_id, taken_at=T0 + timedelta(seconds=90),
                 lat=31.25, lon=121.5)


@pytest.mark.parametrize("edition, status, result", [(V2011, "ok", control.DELIVERED),
                                                     (V2019, "timeout", control.FAILED)])
def test_a_texts_final_step_is_answered_up(edition, status, result):
    from yrd_hazmat.uplink.terminal_answers import TerminalAnswers

    request, command = text_request(edition)
    assert request.kind == "text" and request.command_id == command.command_id
    assert request.deadline == command.expires_at and request.sequence == 41
    answers = TerminalAnswers()
    answers.request(request, T0)
    answers.result(step(command, "sent"))
    assert answers.take() == []  # not final yet
    answers.result(step(command, status, 2))
    answers.result(step(command, status, 3))  # answered once
    (answer,) = answers.take()
    assert answer.answered_by == "terminal" and answer.result == result
    assert answer.answered_at == T0 + timedelta(minutes=2)
    _, message = read(Session(config(edition)).answer(answer), edition)
    assert message.sub_type == control.TEXT_INFO_ACK and message.plate == "沪A12345"
    assert message.value.result == result
    assert (message.value.msg_id if edition == V2011 else message.value.source_sn) == \
        (41 if edition == V2011 else 99)


@pytest.mark.parametrize("edition", [V2011, V2019])
@pytest.mark.parametrize("picture_first", [True, False])
def test_a_photo_is_answered_with_its_picture(edition, picture_first):
    """The picture and the command's final step come on two topics, in either order; the
    0x1502 carries the picture, where it was taken, the lens and size asked."""
    from yrd_hazmat.uplink.terminal_answers import TerminalAnswers

    request, command = photo_request(edition)
    media = picture(command)
    answers = TerminalAnswers()
    answers.request(request, T0)
    if picture_first:
        answers.media(media)
    answers.result(step(command, "ok", 2, media_id=media.media_id))
    if not picture_first:
        assert answers.take() == [] and answers.oldest() == T0  # waits for the picture
        answers.media(media)
    (answer,) = answers.take()
    assert answer.result == control.TAKEN and answer.media == media
    _, message = read(Session(config(edition)).answer(answer), edition)
    photo = message.value
    assert message.sub_type == control.TAKE_PHOTO_ACK and message.plate == "沪A12345"
    assert photo.flag == control.TAKEN and photo.photo == b"\xff\xd8jpeg\xff\xd9"
    assert (photo.lens, photo.size, photo.image_type) == (2, 1, 1)
    assert (photo.fix.lat, photo.fix.lon) == (31.25, 121.5)
    assert photo.fix.ts == T0 + timedelta(seconds=90)
    if edition == V2019:
        assert (photo.source_type, photo.source_sn) == (control.TAKE_PHOTO_REQ, 77)


@pytest.mark.parametrize("status, flag", [("unsupported", control.NOT_SUPPORTED),
                                          ("expired", control.OFFLINE),
                                          ("failed", control.NOT_TAKEN)])
def test_a_photo_not_taken_says_why(status, flag):
    from yrd_hazmat.uplink.terminal_answers import TerminalAnswers

    request, command = photo_request()
    answers = TerminalAnswers()
    answers.request(request, T0)
    answers.result(step(command, status))
    (answer,) = answers.take()
    _, message = read(Session(config()).answer(answer))
    assert message.value.flag == flag and message.value.photo == b""


def test_after_a_restart_only_the_unanswered_are_answered():
    """What a restart reads back: an answered request stays answered; an unanswered one
    is answered from the result that came while we were away."""
    from yrd_hazmat.uplink.terminal_answers import TerminalAnswers

    done, done_cmd = text_request()
    before = TerminalAnswers()
    before.request(done, T0)
    before.result(step(done_cmd, "ok"))
    (published,) = before.take()
    open_, open_cmd = photo_request()
    after = TerminalAnswers()  # the restart: answers first, then requests
    after.answer_seen(published)
    after.request(done, T0)
    after.request(open_, T0)
    assert list(after.pending) == [open_cmd.command_id] and after.oldest() == T0
    after.result(step(done_cmd, "ok"))  # read again from the oldest: no second answer
    after.result(step(open_cmd, "unsupported"))
    assert [a.request.request_id for a in after.take()] == [open_.request_id]


def test_a_text_for_an_impossible_plate_is_answered_failed():
    from yrd_hazmat.uplink.terminal_answers import TerminalAnswers

    frame = control.write("沪A 123;45", 2, control.TEXT_INFO, control.write_text(
        control.TextRequest(msg_id=1, text="hello")))
    out = requests.handle(upper(control.DOWN_CTRL_MSG, frame), link="slave", edition=V2011,
                          now=T0, inspection_answer_s=600, command_expiry_s=3600)
    assert out.command is None and out.request.command_id is None
    answers = TerminalAnswers()
    answers.request(out.request, T0)
    (answer,) = answers.take()
    assert answer.result == control.FAILED


def test_a_broken_main_link_is_told_on_the_slave_link():
    """UP_DISCONNECT_INFORM 0x1007 (ERROR_CODE 0: main link broken) goes to the upper
    platform on its slave link, over real TCP, after its DOWN_CONNECT_REQ with the right
    verify code; the frame laid out byte by byte (2011 header, not encrypted)."""
    import asyncio
    import binascii

    from yrd_hazmat.jt809.frame import Splitter
    from yrd_hazmat.uplink.slave import SlaveServer

    async def scenario() -> bytes:
        changes = []
        server = SlaveServer(config(), lambda: 0xCAFE, lambda frame, link: asyncio.sleep(0),
                             changed=lambda: changes.append(server.up))
        port = await server.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert server.inform() == 0  # no slave link yet: nobody to tell
        writer.write(build(links.DOWN_CONNECT_REQ, 1, 4242, (0xCAFE).to_bytes(4, "big")))
        splitter = Splitter()
        frames: list[bytes] = []
        while len(frames) < 1:
            frames += splitter.feed(await asyncio.wait_for(reader.read(4096), 5))[0]
        assert frames[0][8:10] == b"\x90\x02" and frames[0][22] == links.SLAVE_OK
        assert server.up and changes == [True]
        assert server.inform() == 1
        while len(frames) < 2:
            frames += splitter.feed(await asyncio.wait_for(reader.read(4096), 5))[0]
        writer.close()
        for _ in range(50):
            if not server.up:
                break
            await asyncio.sleep(0.02)
        assert changes == [True, False]
        await server.stop()
        return frames[1]

    content = asyncio.run(scenario())
    expected = (bytes.fromhex("0000001b")       # MSG_LENGTH 27: the whole frame
                + bytes.fromhex("00000002")     # MSG_SN: the slave link's second frame
                + bytes.fromhex("1007")         # UP_DISCONNECT_INFORM
                + (4242).to_bytes(4, "big")     # MSG_GNSSCENTERID: our access code
                + bytes.fromhex("010000")       # VERSION_FLAG
                + b"\x00" + bytes(4)            # ENCRYPT_FLAG 0, ENCRYPT_KEY 0
                + b"\x00")                      # ERROR_CODE 0: the main link is broken
    crc = binascii.crc_hqx(expected, 0xFFFF).to_bytes(2, "big")  # CRC-16/CCITT, from 0xFFFF
    assert content == expected + crc
