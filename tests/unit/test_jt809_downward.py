"""Downward requests to lower platforms, the pure part (gateway/downward.py): the frame of
each kind read back with the codec's tested readers, both editions; the platforms'
answers (frames from the codec's builders, as the simulated platform of jt809/platform.py
writes them, read by the main link's session) matched to their requests, with the time
they took and whether late; sending, failing and expiring."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.unit.test_jt809_link import NEW, OLD, logged_in, wire
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.gateway.downward import Ledger, Send, frame, incident_note
from yrd_hazmat.gateway.platform_records import PlatformReport
from yrd_hazmat.gateway.platform_requests import (PlatformRequest, make_request, number,
                                                  problem)
from yrd_hazmat.jt809 import alarms as a
from yrd_hazmat.jt809 import control as c
from yrd_hazmat.jt809 import frame as f
from yrd_hazmat.jt809 import inspection as i
from yrd_hazmat.jt809 import static as st
from yrd_hazmat.jt809.platform import PICTURE, SimulatedPlatform

T0 = datetime(2026, 12, 7, 15, 0, 0, tzinfo=CHINA_TZ)
CAR = "沪A12345"


def request(platform, kind: str, **fields) -> PlatformRequest:
    defaults = {"inspection": {"text": "请报告值班情况"},
                "supervision": {"vehicle_id": CAR, "incident_id": "inc-1", "warn_type": 1,
                                "warn_time": T0 - timedelta(minutes=5),
                                "deadline": T0 + timedelta(minutes=30), "level": 0,
                                "supervisor": "张三", "supervisor_tel": "021-1234",
                                "supervisor_email": "zs@example.cn"},
                "text": {"vehicle_id": CAR, "text": "请靠边停车"},
                "photo": {"vehicle_id": CAR, "camera": 2},
                "tip": {"vehicle_id": CAR, "warn_type": 2, "text": "疲劳驾驶提示"},
                "static_info": {"vehicle_id": CAR}}[kind]
    return make_request(platform.access_code, kind, by="tester", now=T0, expires_in_s=60,
                        answer_within_s=600, **defaults | fields)


def down(platform, req: PlatformRequest, serial: int) -> f.Frame:
    """The request's frame as the platform reads it."""
    msg_id, body = frame(req, platform.edition, T0)
    built = f.build(msg_id, serial, platform.access_code, body, edition=platform.edition,
                    time=int(T0.timestamp()))
    return f.parse(built[1:-1], None, expect=platform.edition)


def reports(platform, answers, clock) -> list[PlatformReport]:
    """The platform's answers read by its main link (what the gateway matches)."""
    link = logged_in(platform, clock=clock)
    out = []
    for n, (msg_id, body) in enumerate(answers, start=50):
        handled = link.handle(wire(platform, msg_id, body, serial=n))
        assert handled.rejected == [], handled.rejected
        out += handled.reports
    return out


def simulated(platform) -> SimulatedPlatform:
    return SimulatedPlatform(platform.user_id, platform.password, platform.access_code,
                             edition=platform.edition)


def sent(ledger: Ledger, req: PlatformRequest, serial: int):
    ledger.apply_request(req, T0)
    return ledger.sent(req, "slave", serial, T0)


# --- frames ---------------------------------------------------------------------------------

@pytest.mark.parametrize("platform", [OLD, NEW], ids=["2011", "2019"])
def test_each_kind_is_the_standards_frame(platform):
    edition = platform.edition
    q = request(platform, "inspection", object_type=2, object_id="3201")
    msg_id, body = frame(q, edition, T0)
    inspection = i.read(msg_id, body, edition)
    assert (msg_id, inspection.sub_type) == (i.DOWN_PLATFORM_MSG, i.POST_QUERY_REQ)
    assert (inspection.value.info_id, inspection.value.content, inspection.value.object_type,
            inspection.value.object_id) == (number(q.request_id), "请报告值班情况", 2, "3201")
    if edition == 2019:
        assert inspection.value.answer_time == 10  # minutes to the deadline
    o = request(platform, "supervision", alarm_sn=77)
    msg_id, body = frame(o, edition, T0)
    order = a.read(msg_id, body, edition)
    assert order.sub_type == a.URGE_TODO_REQ
    value = order.value
    assert (value.deadline, value.level, value.supervisor, value.tel, value.email) == (
        T0 + timedelta(minutes=30), 0, "张三", "021-1234", "zs@example.cn")
    if edition == 2011:
        assert (order.plate, value.supervision_id, value.warn_type) == (
            CAR, number(o.request_id), 1)
    else:
        assert (value.source_type, value.source_sn) == (a.ADPT_INFO, 77)
    msg_id, body = frame(request(platform, "tip"), edition, T0)
    tip = a.read(msg_id, body, edition)
    assert tip.sub_type == a.INFORM_TIPS and tip.value.content == "疲劳驾驶提示"
    t = request(platform, "text")
    msg_id, body = frame(t, edition, T0)
    text = c.read(msg_id, body, edition)
    assert (text.plate, text.value.text, text.value.msg_id, text.value.priority) == (
        CAR, "请靠边停车", number(t.request_id), 1)
    msg_id, body = frame(request(platform, "photo"), edition, T0)
    photo = c.read(msg_id, body, edition)
    assert (photo.sub_type, photo.value.lens, photo.value.size) == (c.TAKE_PHOTO_REQ, 2, 2)
    msg_id, body = frame(request(platform, "static_info"), edition, T0)
    assert st.read(msg_id, body, edition).plate == CAR


def test_a_request_without_what_its_kind_needs_is_refused():
    with pytest.raises(ValueError, match="names its vehicle"):
        make_request(1, "text", by="x", now=T0, expires_in_s=60, text="hi")
    with pytest.raises(ValueError, match="needs its text"):
        make_request(1, "inspection", by="x", now=T0, expires_in_s=60)
    with pytest.raises(ValueError, match="deadline"):
        make_request(1, "supervision", by="x", now=T0, expires_in_s=60, vehicle_id=CAR)
    with pytest.raises(ValueError, match="after now"):
        make_request(1, "tip", by="x", now=T0, expires_in_s=0, vehicle_id=CAR, text="t")
    with pytest.raises(ValueError):
        make_request(1, "photo", by="x", now=T0, expires_in_s=60, vehicle_id="not a plate!")
    bare = PlatformRequest(request_id="r1", platform=1, kind="text", issued_by="x",
                           issued_at=T0, expires_at=T0 + timedelta(seconds=5),
                           vehicle_id=CAR, text="€ ok? \U0001F600")
    assert "GBK" in (problem(bare) or "")
    one = request(OLD, "text")
    assert one.request_id == request(OLD, "text").request_id  # deterministic


# --- when a request goes --------------------------------------------------------------------

def test_a_request_is_sent_when_a_link_is_up_else_fails_or_expires():
    ledger = Ledger("g1", link_wait_s=10)
    up = request(OLD, "inspection")
    down_ = request(OLD, "text")
    late = request(NEW, "photo")
    for r in (up, down_, late):
        ledger.apply_request(r, T0)
    steps = ledger.due(T0, lambda code: code == OLD.access_code and False)
    assert steps == []  # nothing yet: waiting for a link
    steps = ledger.due(T0 + timedelta(seconds=1), lambda code: True)
    assert sorted(s.request.kind for s in steps if isinstance(s, Send)) == [
        "inspection", "photo", "text"]
    ledger2 = Ledger("g1", link_wait_s=10)
    ledger2.apply_request(down_, T0)
    [failed] = ledger2.due(T0 + timedelta(seconds=10), lambda code: False)
    assert (failed.status, failed.request_id) == ("failed", down_.request_id)
    assert "link down" in failed.detail
    ledger3 = Ledger("g1", link_wait_s=1000)
    ledger3.apply_request(late, T0)
    [expired] = ledger3.due(T0 + timedelta(seconds=61), lambda code: True)
    assert expired.status == "expired"
    ledger3.apply_result(expired)
    ledger3.apply_request(late, T0)  # read again (a restart): done stays done
    assert ledger3.due(T0 + timedelta(seconds=62), lambda code: True) == []


def test_a_step_already_on_the_log_is_not_taken_again():
    ledger = Ledger("g1", link_wait_s=10)
    req = request(OLD, "inspection")
    other = Ledger("g2", link_wait_s=10)
    step = sent(other, req, 9)
    ledger.apply_result(step)  # the results are read before the requests
    ledger.apply_request(req, T0)
    assert ledger.due(T0, lambda code: True) == []
    assert req.request_id in ledger.open


def test_with_several_gateways_the_one_holding_the_link_sends_and_notes_late():
    """g1 holds no link of the platform but g2 does (yrd.link-states): g1 leaves the
    request to g2 instead of recording it failed, and at the deadline only g2, the sender,
    notes it late; g1 does only if g2 stays silent a minute more."""
    req = request(OLD, "inspection", deadline=T0 + timedelta(seconds=30))
    g1, g2 = Ledger("g1", link_wait_s=10), Ledger("g2", link_wait_s=10)
    for ledger in (g1, g2):
        ledger.apply_request(req, T0)
    later = T0 + timedelta(seconds=15)
    assert g1.due(later, lambda code: False, elsewhere=lambda code: True) == []
    [send] = g2.due(later, lambda code: True)
    step = g2.sent(send.request, "slave", 7, later)
    g1.apply_result(step)
    assert g1.due(later + timedelta(seconds=20), lambda code: False) == []  # sent: no failure
    deadline_passed = T0 + timedelta(seconds=31)
    assert g1.late(deadline_passed) == []
    [late] = g2.late(deadline_passed)
    assert (late.status, late.gateway) == ("late", "g2")
    silent = Ledger("g1", link_wait_s=10)  # the sender died before noting it
    silent.apply_result(step)
    assert silent.late(deadline_passed + timedelta(seconds=30)) == []
    [noted] = silent.late(deadline_passed + timedelta(seconds=60))
    assert noted.gateway == "g1"
    g1.apply_result(late)  # g2's note read: g1 never adds its own
    assert g1.late(deadline_passed + timedelta(seconds=120)) == []


# --- answers --------------------------------------------------------------------------------

@pytest.mark.parametrize("platform", [OLD, NEW], ids=["2011", "2019"])
def test_an_inspection_answer_is_matched_with_its_time_and_lateness(platform):
    ledger = Ledger("g1", link_wait_s=10)
    on_time, late = request(platform, "inspection"), request(platform, "inspection",
                                                             text="第二个问题")
    sent(ledger, on_time, 11)
    sent(ledger, late, 12)
    sim = simulated(platform)
    [first] = reports(platform, sim.answer_to(down(platform, on_time, 11), "值班正常"),
                      lambda: T0 + timedelta(seconds=42))
    assert first.kind == "inspection_answer" and first.text == "值班正常"
    answered = ledger.answer(first)
    assert (answered.request_id, answered.status, answered.took_s, answered.late) == (
        on_time.request_id, "answered", 42.0, False)
    assert answered.answer["text"] == "值班正常" and answered.serial == 11
    assert ledger.answer(first) is None  # answered once
    [noted] = ledger.late(T0 + timedelta(seconds=601))
    assert (noted.request_id, noted.status) == (late.request_id, "late")
    assert ledger.late(T0 + timedelta(seconds=700)) == []  # once
    [second] = reports(platform, sim.answer_to(down(platform, late, 12)),
                       lambda: T0 + timedelta(seconds=900))
    answered = ledger.answer(second)
    assert (answered.request_id, answered.late, answered.took_s) == (late.request_id, True, 900)


@pytest.mark.parametrize("platform", [OLD, NEW], ids=["2011", "2019"])
def test_a_supervision_orders_answer_and_handling_result_go_to_its_incident(platform):
    ledger = Ledger("g1", link_wait_s=10)
    order = request(platform, "supervision", alarm_sn=5, alarm_info_id=3)
    other = request(platform, "supervision", incident_id="inc-2", vehicle_id="沪B00002")
    sent(ledger, order, 21)
    sent(ledger, other, 22)
    got = reports(platform, simulated(platform).answer_to(down(platform, order, 21),
                                                          result=a.DONE),
                  lambda: T0 + timedelta(minutes=3))
    assert [r.kind for r in got] == ["supervision_answer", "handling_result"]
    steps = [ledger.answer(r) for r in got]
    assert [(s.request_id, s.incident_id, s.answer_kind) for s in steps] == [
        (order.request_id, "inc-1", "supervision_answer"),
        (order.request_id, "inc-1", "handling_result")]
    assert steps[0].answer["result"] == a.IN_PROGRESS and steps[1].answer["result"] == a.DONE
    assert steps[1].took_s == 180 and not steps[1].late
    notes = [incident_note(s) for s in [ledger.open[order.request_id].sent, *steps]]
    assert [(n.incident_id, n.action.kind) for n in notes] == [("inc-1", "note")] * 3
    assert "in progress" in notes[1].action.text and "done" in notes[2].action.text
    assert len({n.action.action_id for n in notes}) == 3
    assert incident_note(ledger.open[other.request_id].sent).incident_id == "inc-2"


def test_a_2019_handling_result_about_the_alarm_is_matched_by_the_alarms_serial():
    ledger = Ledger("g1", link_wait_s=10)
    order = request(NEW, "supervision", alarm_sn=4242)
    sent(ledger, order, 30)
    result = PlatformReport(platform=NEW.access_code, kind="handling_result", msg_id=0x1400,
                            data_type=0x1412, serial=9, received_at=T0,
                            fields={"source_type": a.ADPT_INFO, "source_sn": 4242,
                                    "result": a.DONE})
    assert ledger.answer(result).request_id == order.request_id


@pytest.mark.parametrize("platform", [OLD, NEW], ids=["2011", "2019"])
def test_text_photo_and_static_info_answers_are_matched(platform):
    ledger = Ledger("g1", link_wait_s=10)
    text, photo, info = (request(platform, "text"), request(platform, "photo"),
                         request(platform, "static_info"))
    for serial, req in enumerate((text, photo, info), start=40):
        sent(ledger, req, serial)
    sim = simulated(platform)
    link = logged_in(platform, clock=lambda: T0 + timedelta(seconds=5))
    matched = {}
    for serial, req in enumerate((text, photo, info), start=40):
        for msg_id, body in sim.answer_to(down(platform, req, serial)):
            handled = link.handle(wire(platform, msg_id, body, serial=serial + 100))
            assert handled.rejected == []
            if req.kind == "photo":
                [media] = handled.media
                assert (media.vehicle_id, media.format, media.size) == (CAR, "jpeg",
                                                                       len(PICTURE))
            for report in handled.reports:
                step = ledger.answer(report)
                matched[step.request_id] = step
    assert set(matched) == {text.request_id, photo.request_id, info.request_id}
    assert matched[text.request_id].answer["result"] == c.DELIVERED
    assert matched[photo.request_id].media_id is not None
    assert matched[photo.request_id].answer["flag"] == c.TAKEN
    assert all(s.took_s == 5 for s in matched.values())


def test_an_answer_of_another_platform_or_to_nothing_sent_is_not_matched():
    ledger = Ledger("g1", link_wait_s=10)
    sent(ledger, request(NEW, "text"), 7)
    stray = PlatformReport(platform=OLD.access_code, kind="text_answer", msg_id=0x1500,
                           data_type=0x1503, serial=1, received_at=T0,
                           fields={"source_sn": 7, "result": 0})
    assert ledger.answer(stray) is None
    unknown = PlatformReport(platform=NEW.access_code, kind="text_answer", msg_id=0x1500,
                             data_type=0x1503, serial=1, received_at=T0,
                             fields={"source_sn": 8, "result": 0})
    assert ledger.answer(unknown) is None
    notice = PlatformReport(platform=NEW.access_code, kind="disconnect_inform",
                            msg_id=0x1007, serial=1, received_at=T0)
    assert ledger.answer(notice) is None


def test_a_tip_is_done_once_sent():
    ledger = Ledger("g1", link_wait_s=10)
    tip = request(OLD, "tip")
    step = sent(ledger, tip, 3)
    assert step.status == "sent" and tip.request_id in ledger.closed
    assert ledger.late(T0 + timedelta(days=1)) == []


def test_only_a_supervision_order_about_an_incident_makes_notes():
    ledger = Ledger("g1", link_wait_s=10)
    assert incident_note(sent(ledger, request(OLD, "text"), 1)) is None
    lone = request(OLD, "supervision", incident_id=None)
    assert incident_note(sent(ledger, lone, 2)) is None
    assert [incident_note(s) for s in ledger.late(T0 + timedelta(hours=1))] == [None, None]
    failed = Ledger("g1", link_wait_s=0)
    order = request(OLD, "supervision")
    failed.apply_request(order, T0)
    [step] = failed.due(T0, lambda code: False)
    note = incident_note(step)
    assert note.incident_id == "inc-1" and "failed: link down" in note.action.text


def test_the_open_requests_are_those_sent_and_not_answered_late_ones_marked():
    from yrd_hazmat.gateway.platform_client import pending

    ledger = Ledger("g1", link_wait_s=10)
    answered_, waiting, overdue = (request(OLD, "inspection"), request(OLD, "text"),
                                   request(OLD, "photo", deadline=T0 + timedelta(seconds=5)))
    order = request(OLD, "supervision")
    steps = [sent(ledger, r, n) for n, r in enumerate((answered_, waiting, overdue, order), 1)]
    steps += [s for s in (ledger.answer(r) for r in reports(
        OLD, simulated(OLD).answer_to(down(OLD, answered_, 1)), lambda: T0)) if s]
    steps += ledger.late(T0 + timedelta(seconds=6))
    ack = PlatformReport(platform=OLD.access_code, kind="supervision_answer", msg_id=0x1400,
                         data_type=0x1401, serial=3, received_at=T0, vehicle_id=CAR,
                         fields={"supervision_id": number(order.request_id), "result": 0})
    steps.append(ledger.answer(ack))
    found = pending(steps, T0 + timedelta(seconds=6))
    assert [(p.sent.request_id, p.late, p.answers) for p in found] == [
        (waiting.request_id, False, 0), (overdue.request_id, True, 0),
        (order.request_id, False, 1)]  # an order in progress stays open


def test_what_is_past_the_topics_retention_is_forgotten():
    ledger = Ledger("g1", link_wait_s=10)
    old, done = request(OLD, "inspection"), request(OLD, "tip")
    sent(ledger, old, 1)
    sent(ledger, done, 2)
    ledger.forget(T0 - timedelta(days=1))
    assert old.request_id in ledger.open and done.request_id in ledger.closed
    ledger.forget(T0 + timedelta(seconds=1))
    assert ledger.open == {} and ledger.closed == {} and ledger._numbers == {}
