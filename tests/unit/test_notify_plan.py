"""Who is told, when, and in how many messages: subscriptions, quiet hours, the rate limit
and its digest, and a delivery's lifecycle, without Kafka or HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
import pytest

from yrd_hazmat.core.models import Alert, AlertState, City, Severity
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.notify import deliveries as dl
from yrd_hazmat.notify import messages
from yrd_hazmat.notify.channels import DingTalk, Webhook
from yrd_hazmat.notify.subscriptions import Event, QuietHours, Subscription, Subscriptions, matches

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=CHINA_TZ)
HOOK = Webhook(url="http://127.0.0.1:9/hook", secret="s3cret")


def sub(**kw) -> Subscription:
    return Subscription(**({"subscription_id": "sh-duty", "name": "上海值班室",
                            "channel": HOOK} | kw))


def event(n: int = 0, **kw) -> Event:
    fields = {"event_id": f"inc-{n}:raised", "kind": "raised", "incident_id": f"inc-{n}",
              "vehicle_id": f"沪A{n:05d}", "alert_type": "SPEEDING", "severity": "warning",
              "ts": T0 + timedelta(seconds=n), "province": "SH", "city_code": "310115",
              "city_name": "浦东新区", "carrier": "申通危运"}
    return Event(**(fields | kw))


def plan(book, s, e, now):
    made = dl.plan(book, s, e, messages.notice(e, None), messages.digest_line(e), now)
    for d in made:
        book.put(d)
    return made


@pytest.mark.parametrize("field,wanted,value,told", [
    ("provinces", ["SH"], {"province": "SH"}, True),
    ("provinces", ["JS"], {"province": "SH"}, False),
    ("provinces", ["outside"], {"province": None}, True),
    ("cities", ["310115"], {"city_code": "310115"}, True),
    ("cities", ["310104"], {"city_code": "310115"}, False),
    ("cities", ["310104"], {"city_code": None}, False),
    ("carriers", ["申通危运"], {}, True),
    ("carriers", ["别家"], {}, False),
    ("alert_types", ["SPEEDING", "FATIGUE_DRIVING"], {}, True),
    ("alert_types", ["ZONE_VIOLATION"], {}, False),
    ("severities", ["critical"], {"severity": "warning"}, False),
    ("events", ["cleared"], {"kind": "raised"}, False),
    ("events", ["raised", "cleared"], {"kind": "cleared"}, True),
    ("levels", ["region"], {"kind": "escalated", "level": "province"}, False),
])
def test_a_subscription_is_told_only_what_it_names(field, wanted, value, told):
    events = ["raised", "cleared", "escalated"] if field != "events" else wanted
    assert matches(sub(**{field: wanted, "events": events}), event(**value)) is told


def test_a_disabled_subscription_is_told_nothing():
    assert not matches(sub(enabled=False), event())
    assert matches(sub(), event())


@pytest.mark.parametrize("start,end,clock,until", [
    ("22:00", "07:00", "23:30", "2026-12-08T07:00"),
    ("22:00", "07:00", "06:59", "2026-12-07T07:00"),
    ("22:00", "07:00", "07:00", None),
    ("22:00", "07:00", "21:59", None),
    ("12:00", "14:00", "13:00", "2026-12-07T14:00"),
    ("12:00", "14:00", "14:30", None),
])
def test_quiet_hours_across_midnight_and_within_a_day(start, end, clock, until):
    hh, mm = map(int, clock.split(":"))
    now = T0.replace(hour=hh, minute=mm)
    found = QuietHours(start=start, end=end).ends_after(now)
    assert (found.strftime("%Y-%m-%dT%H:%M") if found else None) == until


def test_a_burst_of_500_is_ten_messages_and_one_digest():
    book, s = dl.Book(), sub(max_messages=10, window_s=600)
    made = [d for n in range(500) for d in plan(book, s, event(n), T0 + timedelta(seconds=n // 10))]
    messages_ = {d.delivery_id: d for d in made if d.state != "in_digest"}
    queued = [d for d in messages_.values() if d.state == "queued"]
    held = [d for d in messages_.values() if d.state == "held"]
    assert len(queued) == 10 and len(held) == 1
    digest = book.get(held[0].delivery_id)
    assert digest.events == 490 and digest.notice.items == 490
    assert digest.due_at == T0 + timedelta(seconds=600)  # when the first message leaves the window
    assert len(digest.notice.lines) == dl.DIGEST_LINES
    final = dl.released(digest, digest.due_at)
    assert final.state == "queued" and final.notice.lines[-1].endswith("(and 450 more)")
    items = [d for d in made if d.state == "in_digest"]
    assert len({d.delivery_id for d in items}) == 490
    assert all(d.digest_id == digest.delivery_id for d in items)
    # the window has room again: the next event is a message of its own
    later = plan(book, s, event(999), T0 + timedelta(seconds=700))
    assert [d.state for d in later] == ["queued"]


def test_an_event_seen_again_changes_nothing():
    book, s = dl.Book(), sub()
    assert len(plan(book, s, event(1), T0)) == 1
    assert plan(book, s, event(1), T0 + timedelta(minutes=5)) == []


def test_quiet_hours_hold_all_but_the_let_through():
    book = dl.Book()
    s = sub(quiet_hours=QuietHours(start="22:00", end="07:00"))
    night = T0.replace(hour=23)
    warning = plan(book, s, event(1), night)
    critical = plan(book, s, event(2, severity="critical"), night)
    assert [d.state for d in warning] == ["in_digest", "held"]
    assert warning[1].due_at == T0.replace(hour=7) + timedelta(days=1)
    assert [d.state for d in critical] == ["queued"]


def test_a_digest_held_for_the_window_waits_for_the_quiet_hours_end():
    book = dl.Book()
    s = sub(max_messages=1, window_s=600, quiet_hours=QuietHours(start="22:00", end="07:00",
                                                                   let_through=["critical"]))
    evening = T0.replace(hour=21, minute=55)
    plan(book, s, event(1, severity="critical"), evening)
    held = plan(book, s, event(2, severity="critical"), evening)[1]
    assert held.due_at == evening + timedelta(seconds=600)
    later = plan(book, s, event(3), T0.replace(hour=22, minute=1))
    assert later[1].delivery_id == held.delivery_id
    assert later[1].due_at == T0.replace(hour=7) + timedelta(days=1)
    assert later[1].events == 2


def test_retries_back_off_and_give_up():
    book, s = dl.Book(), sub()
    d = plan(book, s, event(1), T0)[0]
    delays = []
    for n in range(1, 5):
        d = dl.attempt(d, T0)
        assert d.state == "sending" and d.attempts == n
        d = dl.failed(d, T0, "HTTP 503", retry=True, max_attempts=4)
        if d.state == "retrying":
            delays.append((d.due_at - T0).total_seconds())
    assert delays == [5, 10, 20]
    assert d.state == "given_up" and "after 4 attempts" in d.reason
    permanent = dl.failed(dl.attempt(plan(book, s, event(2), T0)[0], T0), T0,
                          "errcode 310000", retry=False, max_attempts=8)
    assert permanent.state == "given_up" and permanent.reason == "errcode 310000"


def test_an_attempt_found_at_a_restart_goes_again_as_a_possible_repeat():
    book, s = dl.Book(), sub()
    d = dl.attempt(plan(book, s, event(1), T0)[0], T0)
    again = dl.in_doubt(d, T0 + timedelta(minutes=1))
    assert again.state == "retrying" and again.notice.repeat
    assert again.notice.notice_id == d.delivery_id  # a receiver can drop it by its id
    assert dl.succeeded(dl.attempt(again, T0), T0).state == "sent"


def test_an_interrupted_attempt_on_a_chat_robot_is_left_for_a_person():
    robot = sub(channel=DingTalk(url="https://oapi.dingtalk.com/robot/send?access_token=t"))
    book = dl.Book()
    d = dl.attempt(plan(book, robot, event(1), T0)[0], T0)
    left = dl.in_doubt(d, T0 + timedelta(minutes=1))
    assert left.state == "in_doubt" and "not sent again" in left.reason
    book.put(left)
    assert book.due(T0 + timedelta(hours=1)) == []  # never sent again by itself
    assert dl.in_doubt(d, T0, frozenset({"dingtalk"})).state == "retrying"  # if so set


def test_the_book_rebuilt_from_its_records_decides_the_same():
    s = sub(max_messages=3, window_s=600)
    book = dl.Book()
    written = [d for n in range(5) for d in plan(book, s, event(n), T0 + timedelta(seconds=n))]
    again = dl.Book()
    for d in written:
        again.apply(d.delivery_id.encode(), dl.encode(d))
    now = T0 + timedelta(seconds=10)
    assert again.in_window(s, now) == book.in_window(s, now) == 4  # 3 messages and a digest
    assert again.open_digest(s.subscription_id) == book.open_digest(s.subscription_id)
    assert [d.state for d in plan(again, s, event(9), now)] == ["in_digest", "held"]
    assert {d.delivery_id for d in again.due(now)} == {d.delivery_id for d in book.due(now)}


def test_subscriptions_follow_their_topic():
    table = Subscriptions()
    a = sub()
    table.apply(b"sh-duty", msgspec.json.encode(a))
    assert table.get("sh-duty") == a
    table.apply(b"sh-duty", b"{not json")
    assert table.get("sh-duty") == a  # a bad record changes nothing
    table.apply(b"sh-duty", None)
    assert table.get("sh-duty") is None


def test_an_alert_is_an_event_with_its_carrier_and_city():
    alert = Alert(alert_id="i1:raised", incident_id="i1", type="ZONE_VIOLATION",
                  severity=Severity.CRITICAL, state=AlertState.RAISED, vehicle_id="沪A12345",
                  ts=T0, emitted_at=T0, lat=31.2, lon=121.5, province="SH",
                  city=City(code="310115", name="浦东新区"), details={"zone_id": "bridge-1",
                                                                      "responders": [{"x": 1}]})
    e = messages.alert_event(alert, {"沪A12345": "申通危运"}.get)
    assert (e.kind, e.carrier, e.city_code, e.severity) == ("raised", "申通危运", "310115",
                                                            "critical")
    assert "responders" not in e.details
    n = messages.notice(e, "https://desk.example.org/")
    assert n.subject == "[严重] 沪A12345 闯入禁行区 · 上海浦东新区"
    assert n.link == "https://desk.example.org/?incident=i1"
    assert "承运单位: 申通危运" in n.lines and "zone_id: bridge-1" in n.lines
