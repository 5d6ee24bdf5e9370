"""The desk's book of the JT/T 809 chain (:mod:`yrd_hazmat.desk.links`) without Kafka: link
health with configured platforms that never reported, the states of a request down as
its steps arrive, the national platform's requests open, late and answered, who sees
which request, and the checks on what a desk user sends."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
import pytest

from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.models import Alert, AlertState, IncidentLog, Media, Severity
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.desk.links import (InspectionRequest, LinkBook, SupervisionRequest,
                                   UplinkAnswerRequest, answer_of, final_answer, inspection_of,
                                   supervision_of)
from yrd_hazmat.desk.users import User
from yrd_hazmat.gateway.platform_records import PlatformVehicle
from yrd_hazmat.gateway.platform_requests import PlatformRequestResult, make_request
from yrd_hazmat.gateway.platforms import platform_record
from yrd_hazmat.link_states import LinkState
from yrd_hazmat.uplink.records import UplinkAnswer, UplinkRequest

NOW = datetime(2026, 12, 7, 14, 0, tzinfo=CHINA_TZ)
SH = User(name="sh-duty", jurisdiction="SH", password="-")
JS = User(name="js-duty", jurisdiction="JS", password="-")
CHIEF = User(name="chief", jurisdiction="region", password="-")


def book_with_platforms() -> LinkBook:
    book = LinkBook()
    for code, province in ((31000001, "SH"), (32000001, "JS"), (31000002, "SH")):
        book.apply_platform(*platform_record(access_code=code, name=f"p{code}", user_id=1,
                                             password="secret1", m1=5, province=province))
    return book


def state(code: int, *, up: bool, at: datetime = NOW, link: str = "platform") -> bytes:
    return msgspec.json.encode(LinkState(
        link=link, access_code=code, reporter="gw", main_up=up, slave_up=up, since=at,
        positions=10, reported_at=at, heartbeat_s=10.0))


def test_link_health_configured_platforms_that_never_reported_are_down():
    book = book_with_platforms()
    book.apply_state(b"platform:31000001@gw", state(31000001, up=True))
    book.apply_state(b"platform:39000000@gw", state(39000000, up=True))  # not configured
    book.apply_state(b"platform:32000001@gw",
                     state(32000001, up=True, at=NOW - timedelta(minutes=5)))
    views = {v["access_code"]: v for v in book.links(NOW, uplink_configured=True)}
    assert views[None]["link"] == "uplink" and views[None]["status"] == "down"
    assert views[31000001]["status"] == "up" and views[31000001]["configured"]
    assert views[31000002]["status"] == "down" and views[31000002]["since"] is None
    assert views[32000001]["status"] == "unknown"  # its reporter went silent
    assert views[39000000]["configured"] is False
    assert b"secret1" not in msgspec.json.encode(list(views.values()))
    book.apply_state(b"platform:31000001@gw", None)  # a tombstone
    assert {v["access_code"]: v for v in book.links(NOW)}[31000001]["status"] == "down"


def inspection(book: LinkBook, code: int = 31000001, by: str = "sh-duty", within: float = 60):
    request = make_request(code, "inspection", by=by, now=NOW, expires_in_s=600,
                           answer_within_s=within, text="在吗")
    book.apply_request(str(code).encode(), encode(request))
    return request


def result(request, status: str, at: datetime, **fields) -> bytes:
    return encode(PlatformRequestResult(request_id=request.request_id, platform=request.platform,
                                        kind=request.kind, status=status, at=at, **fields))


def test_a_request_down_from_waiting_to_late_to_answered():
    book = book_with_platforms()
    request = inspection(book)
    view = book.request_view(request.request_id, NOW)
    assert (view["status"], view["open"], view["late"]) == ("waiting", True, False)
    book.apply_result(b"31000001", result(request, "sent", NOW, route="slave",
                                          deadline=request.deadline))
    view = book.request_view(request.request_id, NOW + timedelta(seconds=30))
    assert (view["status"], view["open"], view["late"], view["route"]) == \
        ("sent", True, False, "slave")
    assert book.request_view(request.request_id, NOW + timedelta(seconds=61))["late"] is True
    book.apply_result(b"31000001", result(request, "answered", NOW + timedelta(seconds=90),
                                          answer_kind="inspection_answer",
                                          answer={"text": "在"}, took_s=90.0, late=True))
    view = book.request_view(request.request_id, NOW + timedelta(seconds=91))
    assert (view["status"], view["open"], view["late"]) == ("answered", False, True)
    assert view["answers"][0]["answer"] == {"text": "在"} and view["answers"][0]["took_s"] == 90
    failed = inspection(book, within=120)
    book.apply_result(b"31000001", result(failed, "failed", NOW, detail="no link up"))
    view = book.request_view(failed.request_id, NOW)
    assert (view["status"], view["open"], view["detail"]) == ("failed", False, "no link up")


def test_who_sees_a_request_down():
    book = book_with_platforms()
    sh_platform = inspection(book, 31000001, by="chief")
    js_platform = inspection(book, 32000001, by="chief")
    mine = inspection(book, 32000001, by="sh-duty")
    about = make_request(32000001, "supervision", by="chief", now=NOW, expires_in_s=60,
                         vehicle_id="苏A1", deadline=NOW + timedelta(hours=1), incident_id="i-sh")
    book.add_request(about)
    record = IncidentLog(incident_id="i-sh", vehicle_id="苏A1", province="SH",
                         alert_type="SPEEDING", actions=[])
    incidents = {"i-sh": record}.get

    def seen(user: User) -> set[str]:
        return {r["request_id"] for r in book.request_views(user, incidents, NOW)}

    assert seen(SH) == {sh_platform.request_id, mine.request_id, about.request_id}
    # the JS platform's requests are the JS desk's too, whoever sent them and about what
    assert seen(JS) == {js_platform.request_id, mine.request_id, about.request_id}
    assert len(seen(CHIEF)) == 4


def uplink(kind: str, deadline: datetime | None, **fields) -> UplinkRequest:
    return UplinkRequest(request_id=f"{kind}-1", kind=kind, received_at=NOW, deadline=deadline,
                         edition=2011, serial=1, link="slave", **fields)


def test_the_national_platforms_requests_open_late_answered():
    book = LinkBook()
    asked = uplink("inspection", NOW + timedelta(minutes=10), question="值班?")
    book.apply_uplink_request(asked.request_id.encode(), encode(asked))
    assert book.uplink_view(asked.request_id, NOW)["status"] == "open"
    late = book.uplink_view(asked.request_id, NOW + timedelta(minutes=11))
    assert (late["status"], late["late"]) == ("open", True)
    answer = answer_of(UplinkAnswerRequest(content=" 张三 "), asked, by="chief",
                       now=NOW + timedelta(minutes=12))
    book.apply_uplink_answer(asked.request_id.encode(), encode(answer))
    book.add_answer(answer)  # published by this desk, then read back: once
    view = book.uplink_view(asked.request_id, NOW + timedelta(minutes=12))
    assert (view["status"], view["late"], len(view["answers"])) == ("answered", True, 1)
    assert (view["answers"][0]["answered_by"], view["answers"][0]["content"]) == ("chief", "张三")

    order = uplink("supervision", NOW + timedelta(hours=1), supervision_id=3)
    book.apply_uplink_request(b"x", encode(order))
    for n, result in enumerate((0, 3)):
        book.add_answer(UplinkAnswer(request=order, answered_by="chief",
                                     answered_at=NOW + timedelta(minutes=n), result=result))
    assert final_answer(order, book.answers[order.request_id]) is None
    assert book.uplink_view(order.request_id, NOW)["status"] == "open"
    book.add_answer(UplinkAnswer(request=order, answered_by="chief",
                                 answered_at=NOW + timedelta(minutes=5), result=2))
    assert book.uplink_view(order.request_id, NOW)["status"] == "answered"

    notice = uplink("notice", None, question="注意")
    book.apply_uplink_request(b"n", encode(notice))
    assert book.uplink_view(notice.request_id, NOW)["status"] == "read"


def test_a_photo_request_is_answered_by_the_terminal_and_its_picture_not_kept():
    book = LinkBook()
    photo = uplink("photo", NOW + timedelta(hours=1), plate="沪A1", lens=1, size=2)
    book.apply_uplink_request(b"p", encode(photo))
    assert book.uplink_view(photo.request_id, NOW)["status"] == "waiting"
    picture = Media(media_id="m-1", vehicle_id="沪A1", terminal_media_id=1, format="jpeg",
                    channel=1, event=0, received_at=NOW, data="A" * 4096, size=3072)
    book.apply_uplink_answer(b"p", encode(UplinkAnswer(
        request=photo, answered_by="terminal", answered_at=NOW, result=1, media=picture)))
    view = book.uplink_view(photo.request_id, NOW)
    assert view["status"] == "answered" and view["answers"][0]["media_id"] == "m-1"
    assert "A" * 4096 not in msgspec.json.encode(view).decode()
    assert book.answers[photo.request_id][0].media is None


def test_what_a_desk_user_sends_is_checked():
    asked = uplink("inspection", NOW)
    order = uplink("supervision", NOW)
    for body, request, why in ((UplinkAnswerRequest(content=" "), asked, "empty"),
                               (UplinkAnswerRequest(content="x", result=1), asked, "not a result"),
                               (UplinkAnswerRequest(content="x"), order, "with a result"),
                               (UplinkAnswerRequest(content="🚚"), asked, "GBK")):
        with pytest.raises(ValueError, match=why):
            answer_of(body, request, by="chief", now=NOW)
    book = book_with_platforms()
    platform = book.platform(31000001)
    with pytest.raises(ValueError, match="empty"):
        inspection_of(InspectionRequest(question="  "), platform, by="x", now=NOW,
                      expires_in_s=60, answer_within_s=60)
    made = inspection_of(InspectionRequest(question="在吗", deadline_min=2), platform, by="x",
                         now=NOW, expires_in_s=60, answer_within_s=600)
    assert made.deadline == NOW + timedelta(minutes=2)


def test_a_supervision_order_goes_to_the_platform_the_truck_came_from():
    book = book_with_platforms()
    alert = Alert(alert_id="i1:raised", incident_id="i1", type="SPEEDING",
                  severity=Severity.WARNING, state=AlertState.RAISED, vehicle_id="沪A1", ts=NOW,
                  emitted_at=NOW, lat=31.2, lon=121.4, province="SH")
    with pytest.raises(ValueError, match="not registered by a lower platform"):
        book.supervision_target("i1", alert, None)
    book.apply_vehicle("沪A1".encode(), encode(PlatformVehicle(
        vehicle_id="沪A1", plate_colour=1, platform=31000002, platform_id="", producer_id="",
        terminal_model="", terminal_id="", sim="", registered_at=NOW)))
    target = book.supervision_target("i1", alert, None)
    assert (target.platform.access_code, target.plate_colour, target.warn_type) == \
        (31000002, 1, 0x0001)
    # a platform's own alarm goes back to that platform, quoting its alarm
    raised = msgspec.structs.replace(alert, type="PLATFORM_ALARM", details={
        "source": "jt809", "platform": 31000001, "warn_type": 0x0003, "info_id": 77,
        "plate_colour": 2})
    target = book.supervision_target("i1", raised, None)
    assert (target.platform.access_code, target.warn_type, target.alarm_info_id) == \
        (31000001, 0x0003, 77)
    order = supervision_of(SupervisionRequest(deadline_min=30, supervisor="王警官",
                                              level="urgent"), target, by="sh-duty", now=NOW,
                           expires_in_s=600)
    assert (order.kind, order.level, order.deadline, order.incident_id) == \
        ("supervision", 0, NOW + timedelta(minutes=30), "i1")
    with pytest.raises(ValueError, match="at most 16"):
        supervision_of(SupervisionRequest(deadline_min=30, supervisor="王" * 9), target,
                       by="sh-duty", now=NOW, expires_in_s=600)
