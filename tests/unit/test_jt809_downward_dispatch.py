"""The gateway's dispatcher of downward requests (gateway/dispatch.py) without Kafka: an
unreadable request is a dead letter with its reason and a counter; a request goes down
the links when they are up, its steps (and a supervision order's incident notes) are
queued for the broker; a link that drops at the send is a failure. And the kinds of the
rest of the conformance list (driver_info 0x920A, listen 0x9501, tachograph 0x9504,
emergency_access 0x9505): their frames byte by byte, their answers matched, what each
needs, the dial password never shown."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta

import msgspec
import pytest
from prometheus_client import REGISTRY

from tests.unit.test_jt809_downward import CAR, NEW, OLD, T0, down, request, sent, simulated
from tests.unit.test_jt809_link import logged_in, wire
from yrd_hazmat.config import Settings
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.desk.links import LinkBook
from yrd_hazmat.gateway.dispatch import Dispatcher
from yrd_hazmat.gateway.downward import Ledger, frame
from yrd_hazmat.gateway.platform_links import LinkDown, Sent
from yrd_hazmat.gateway.platform_requests import make_request


class Links:
    """What the dispatcher needs of :class:`PlatformLinks`: which links are up, a send."""

    def __init__(self, up: bool, drops: bool = False) -> None:
        self.up, self.drops = up, drops
        self.sent: list[tuple[int, int, bytes]] = []

    def main_link(self, access_code: int) -> bool:
        return self.up

    def slave_link(self, access_code: int) -> bool:
        return False

    def send(self, access_code: int, msg_id: int, body: bytes) -> Sent:
        if self.drops:
            raise LinkDown("gone")
        self.sent.append((access_code, msg_id, body))
        return Sent("main", len(self.sent))


def dispatcher(links: Links, now=T0) -> Dispatcher:
    settings = Settings(jt809_request_link_wait_s=5)
    return Dispatcher(settings, links, {OLD.access_code: OLD}, publish=None, name="g1",  # type: ignore[arg-type]
                      clock=lambda: now)


def queued(d: Dispatcher) -> list[tuple[str, dict]]:
    out = []
    while not d._queue.empty():
        out += [(topic, msgspec.json.decode(value)) for topic, _, value in d._queue.get_nowait()]
    return out


def test_an_unreadable_request_is_a_dead_letter_with_its_reason():
    d = dispatcher(Links(up=True))
    before = REGISTRY.get_sample_value("yrd_jt809_requests_total", {
        "platform": "unknown", "kind": "unknown", "result": "unreadable"}) or 0
    d._read_request(b"1", b"{not json")
    no_text = msgspec.json.encode(msgspec.structs.replace(request(OLD, "inspection"),
                                                          text=None))
    d._read_request(b"1", no_text)
    [(topic, letter), (_, second)] = queued(d)
    assert topic == d.settings.topic_deadletter and letter["reason"] == "invalid"
    assert "needs its text" in second["error"]
    assert second["source_topic"] == d.settings.topic_platform_requests
    after = REGISTRY.get_sample_value("yrd_jt809_requests_total", {
        "platform": "unknown", "kind": "unknown", "result": "unreadable"})
    assert after == before + 1
    assert d.ledger.waiting == {}


def test_a_request_goes_down_and_a_supervision_orders_steps_note_its_incident():
    links = Links(up=True)
    d = dispatcher(links)
    order = request(OLD, "supervision")
    d._read_request(b"1", encode(order))
    d.step()
    [(access, msg_id, _)] = links.sent
    assert (access, msg_id) == (OLD.access_code, 0x9400)
    [(results, sent), (actions, note)] = queued(d)
    assert (results, sent["status"], sent["route"], sent["serial"]) == (
        d.settings.topic_platform_request_results, "sent", "main", 1)
    assert actions == d.settings.topic_incident_actions and note["incident_id"] == "inc-1"
    d.step()  # nothing twice
    assert len(links.sent) == 1 and queued(d) == []


def test_a_link_lost_at_the_send_or_never_up_is_a_failure():
    d = dispatcher(Links(up=True, drops=True))
    d._read_request(b"1", encode(request(OLD, "text")))
    d.step()
    [(_, failed)] = queued(d)
    assert failed["status"] == "failed" and "link down" in failed["detail"]
    later = dispatcher(Links(up=False), now=T0 + timedelta(seconds=6))
    later.ledger.apply_request(request(OLD, "photo"), T0)
    later.step()
    [(_, failed)] = queued(later)
    assert failed["status"] == "failed"


# --- the rest of the conformance list: who drives, listen in, tachograph, emergency access ---
# Each kind's body laid out byte by byte (struct, the plate in GBK), both editions; its
# answer, laid out alike, read by the main link (the 2019 one quoting the request frame's
# MSG_SN as SOURCE_MSG_SN, the 2011 one quoting nothing: the vehicle's oldest open request
# of that kind) and matched to it.

PLATE = CAR.encode("gbk").ljust(21, b"\x00")
START = datetime(2026, 12, 7, 8, 0, 0, tzinfo=CHINA_TZ)   # 1796601600 = 0x6b15f700
END = datetime(2026, 12, 7, 9, 30, 0, tzinfo=CHINA_TZ)    # 1796607000 = 0x6b160c18
AUTH = "12345678901234567890"


def business(sub_type: int, data: bytes) -> bytes:
    """VEHICLE_NO 21 GBK, VEHICLE_COLOR 2, DATA_TYPE, DATA_LENGTH, data."""
    return PLATE + b"\x02" + struct.pack(">HI", sub_type, len(data)) + data


def ask(platform, kind: str, **fields):
    defaults = {"driver_info": {}, "listen": {"tel": "02512345678"},
                "tachograph": {"command_word": 0x08, "start": START, "end": END,
                               "max_blocks": 10},
                "emergency_access": {"server": "10.1.2.3", "tcp_port": 7611, "udp_port": 7612,
                                     "apn": "cmnet", "dial_user": "yrd", "end": END,
                                     "dial_password": "Dial#Secret9", "auth_code": AUTH}}[kind]
    return make_request(platform.access_code, kind, by="tester", now=T0, expires_in_s=60,
                        answer_within_s=600, vehicle_id=CAR, **defaults | fields)


EMERGENCY = (bytes.fromhex(AUTH) + b"cmnet".ljust(20, b"\x00") + b"yrd".ljust(49, b"\x00")
             + b"Dial#Secret9".ljust(22, b"\x00") + b"10.1.2.3".ljust(32, b"\x00")
             + struct.pack(">HHQ", 7611, 7612, 0x6B160C18))
FRAMES = {  # (kind, edition) -> (MSG_ID, body)
    ("driver_info", 2011): (0x9200, business(0x920A, b"")),
    ("driver_info", 2019): (0x9200, business(0x920A, b"\x00")),
    ("listen", 2011): (0x9500, business(0x9501, b"02512345678".ljust(20, b"\x00"))),
    ("listen", 2019): (0x9500, business(0x9501, b"02512345678".ljust(20, b"\x00"))),
    ("tachograph", 2011): (0x9500, business(0x9504, bytes.fromhex(
        "08" "261207080000" "261207093000" "000a"))),
    ("tachograph", 2019): (0x9500, business(0x9504, struct.pack(
        ">QQB", 0x6B15F700, 0x6B160C18, 0x08))),
    ("emergency_access", 2011): (0x9500, business(0x9505, EMERGENCY)),
    ("emergency_access", 2019): (0x9500, business(0x9505, EMERGENCY)),
}


@pytest.mark.parametrize("kind, edition", list(FRAMES), ids=[f"{k}-{e}" for k, e in FRAMES])
def test_each_new_kind_is_the_standards_frame_byte_by_byte(kind, edition):
    platform = OLD if edition == 2011 else NEW
    assert frame(ask(platform, kind), edition, T0) == FRAMES[(kind, edition)]


def test_driver_info_asks_the_terminal_in_2019_and_a_plain_tachograph_command_is_one_byte():
    assert frame(ask(NEW, "driver_info", driver_flag=1), 2019, T0) == (
        0x9200, business(0x920A, b"\x01"))
    plain = ask(OLD, "tachograph", command_word=0x01, start=None, end=None, max_blocks=None)
    assert frame(plain, 2011, T0) == (0x9500, business(0x9504, b"\x01"))


ANSWERS = {  # kind -> (MSG_ID, DATA_TYPE, 2011 data, 2019 data after SOURCE_*)
    "driver_info": (0x1200, 0x120A, "李四".encode("gbk").ljust(16, b"\x00") + bytes(260),
                    "李四".encode("gbk").ljust(16, b"\x00") + bytes(260) + bytes(8)),
    "listen": (0x1500, 0x1501, b"\x00", b"\x00"),
    "tachograph": (0x1500, 0x1504, struct.pack(">I", 2) + b"\x55\x7a",
                   b"\x08" + struct.pack(">I", 2) + b"\x55\x7a"),
    "emergency_access": (0x1500, 0x1505, b"\x00", b"\x00"),
}
ANSWER_KINDS = {"driver_info": "driver_info", "listen": "listen_answer",
                "tachograph": "tachograph_answer", "emergency_access": "emergency_access_answer"}
REQUEST_TYPES = {"driver_info": 0x920A, "listen": 0x9501, "tachograph": 0x9504,
                 "emergency_access": 0x9505}


def answer_body(kind: str, edition: int, source_sn: int) -> tuple[int, bytes]:
    msg_id, sub, old, new = ANSWERS[kind]
    if edition == 2011:
        return msg_id, business(sub, old)
    return msg_id, business(sub, struct.pack(">HI", REQUEST_TYPES[kind], source_sn) + new)


@pytest.mark.parametrize("platform", [OLD, NEW], ids=["2011", "2019"])
@pytest.mark.parametrize("kind", list(ANSWERS))
def test_each_new_kinds_answer_is_matched(platform, kind):
    ledger = Ledger("g1", link_wait_s=10)
    first, second = ask(platform, kind), ask(platform, kind, issued_by="other")
    second = msgspec.structs.replace(second, request_id=second.request_id + "b")
    sent(ledger, first, 61)
    sent(ledger, second, 62)
    link = logged_in(platform, clock=lambda: T0 + timedelta(seconds=3))
    # 2019: the answer to the second request quotes its MSG_SN; 2011: the oldest is answered
    msg_id, body = answer_body(kind, platform.edition, 62)
    out = link.handle(wire(platform, msg_id, body, serial=300))
    assert out.rejected == []
    [report] = out.reports
    assert report.kind == ANSWER_KINDS[kind] and report.vehicle_id == CAR
    step = ledger.answer(report)
    expected = second if platform.edition == 2019 else first
    assert (step.request_id, step.status, step.kind, step.answer_kind, step.took_s,
            step.late) == (expected.request_id, "answered", kind, ANSWER_KINDS[kind], 3.0, False)
    assert expected.request_id in ledger.closed
    again = ledger.answer(report)
    if platform.edition == 2011:  # quoting nothing: the next oldest open one
        assert again.request_id == second.request_id
    else:  # answered once; quoting a MSG_SN never sent: nothing
        assert again is None
        stray = link.handle(wire(platform, *answer_body(kind, 2019, 999), serial=301))
        assert ledger.answer(stray.reports[0]) is None


def test_an_unasked_driver_report_answers_no_request():
    ledger = Ledger("g1", link_wait_s=10)
    asked = ask(OLD, "driver_info")
    sent(ledger, asked, 5)
    link = logged_in(OLD, clock=lambda: T0)
    out = link.handle(wire(OLD, 0x1200, business(0x120C, ANSWERS["driver_info"][2])))
    [report] = out.reports
    assert report.kind == "driver_info" and report.data_type == 0x120C
    assert ledger.answer(report) is None and asked.request_id in ledger.open


def test_what_each_new_kind_needs_is_checked():
    def needs(kind: str, match: str, **fields) -> None:
        with pytest.raises(ValueError, match=match):
            make_request(NEW.access_code, kind, by="x", now=T0, expires_in_s=60, **fields)

    needs("driver_info", "names its vehicle")
    needs("listen", r"calls back \(tel\)", vehicle_id=CAR)
    needs("listen", "not a telephone number", vehicle_id=CAR, tel="021-1234")
    needs("listen", "length", vehicle_id=CAR, tel="1" * 21)
    needs("tachograph", "command word", vehicle_id=CAR)
    needs("tachograph", "<= 255", vehicle_id=CAR, command_word=256)
    needs("tachograph", "end is before start", vehicle_id=CAR, command_word=8, start=END,
          end=START)
    emergency = {"vehicle_id": CAR, "server": "10.1.2.3", "tcp_port": 7611,
                 "dial_password": "Dial#Secret9"}
    needs("emergency_access", "authentication code", **emergency)
    needs("emergency_access", "20 digits at most", **emergency, auth_code="12AB")
    needs("emergency_access", "length", **emergency, auth_code="1" * 21)
    needs("emergency_access", r"\(server\)", **emergency | {"server": ""}, auth_code=AUTH)
    needs("emergency_access", r"\(tcp_port\)", **emergency | {"tcp_port": 0}, auth_code=AUTH)
    needs("emergency_access", "USERNAME.*not GBK", **emergency, auth_code=AUTH,
          dial_user="\U0001F600")
    needs("emergency_access", "SERVER_IP.* at most 32", **emergency | {"server": "服" * 17},
          auth_code=AUTH)
    old = msgspec.json.decode(msgspec.json.encode(request(OLD, "text")))
    for name in ("driver_flag", "tel", "command_word", "dial_password", "auth_code"):
        assert name not in old or old[name] in (None, 0, "")  # old records still decode


def test_the_dial_password_is_never_shown():
    req = ask(NEW, "emergency_access")
    assert "Dial#Secret9" not in repr(req) and "Dial#Secret9" not in str(req)
    assert "dial_password='****'" in repr(req)
    assert ask(NEW, "emergency_access", dial_password="other").request_id == req.request_id
    with pytest.raises(ValueError) as refused:
        make_request(NEW.access_code, "emergency_access", by="x", now=T0, expires_in_s=60,
                     vehicle_id=CAR, server="10.1.2.3", tcp_port=1, auth_code=AUTH,
                     dial_password="Dial#Secret9-far-too-long-for-it")
    assert "Dial#Secret9" not in str(refused.value)
    book = LinkBook()
    book.add_request(req)
    view = book.request_view(req.request_id, T0)
    assert "dial_password" not in view and "Dial#Secret9" not in repr(view)
    assert view["server"] == "10.1.2.3"


def test_a_new_kind_goes_down_the_links():
    links = Links(up=True)
    d = dispatcher(links)
    d._read_request(b"1", encode(ask(OLD, "listen")))
    d.step()
    [(access, msg_id, body)] = links.sent
    assert (access, msg_id, body) == (OLD.access_code, *FRAMES[("listen", 2011)])
    [(_, step)] = queued(d)
    assert (step["status"], step["kind"]) == ("sent", "listen")


@pytest.mark.parametrize("platform", [OLD, NEW], ids=["2011", "2019"])
def test_the_simulated_platform_answers_each_new_kind(platform):
    ledger = Ledger("g1", link_wait_s=10)
    link = logged_in(platform, clock=lambda: T0 + timedelta(seconds=1))
    sim = simulated(platform)
    for serial, kind in enumerate(ANSWERS, start=70):
        req = ask(platform, kind)
        sent(ledger, req, serial)
        [(msg_id, body)] = sim.answer_to(down(platform, req, serial))
        [report] = link.handle(wire(platform, msg_id, body, serial=serial + 100)).reports
        step = ledger.answer(report)
        assert (step.request_id, step.answer_kind) == (req.request_id, ANSWER_KINDS[kind])
        if kind == "driver_info":
            assert step.answer["name"] == "李四"
        elif kind == "tachograph":
            assert step.answer["data"] == "557a0800000027"
        else:
            assert step.answer["result"] == 0
