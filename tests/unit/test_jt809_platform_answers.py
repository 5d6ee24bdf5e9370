"""What lower platforms send up besides positions and alarms, the rest of the conformance
list (gateway/link.py): who drives (0x120A answering 0x920A, 0x120C unasked), the answers
to a listen-in (0x1501), a tachograph-data request (0x1504), an emergency access (0x1505)
and an order to start or stop passing positions up (0x1205/0x1206), each a
``yrd.platform-reports`` record. The bodies are laid out byte by byte (struct, the plate
in GBK), in frames of tests/unit/test_jt809_frame.by_hand, both editions; short bodies
are dead letters with their reason, and the link goes on."""

from __future__ import annotations

import struct
from datetime import datetime

import pytest

from tests.unit.test_jt809_link import CAR, NEW, NOW, OLD, logged_in, wire
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.gateway.platform_records import PlatformReport
from yrd_hazmat.jt809 import links as lk

VALID = datetime(2030, 6, 30, 0, 0, 0, tzinfo=CHINA_TZ)  # 1908979200 = 0x71c8b600
PLATE = CAR.encode("gbk").ljust(21, b"\x00")


def business(sub_type: int, data: bytes, colour: int = 2) -> bytes:
    """VEHICLE_NO 21 GBK, VEHICLE_COLOR, DATA_TYPE, DATA_LENGTH, data."""
    return PLATE + bytes([colour]) + struct.pack(">HI", sub_type, len(data)) + data


def gbk(text: str, size: int) -> bytes:
    return text.encode("gbk").ljust(size, b"\x00")


DRIVER = (gbk("李四", 16) + gbk("320102198001010011", 20) + gbk("JS-DG-20260001", 40)
          + gbk("江苏省交通运输厅", 200))
DRIVER_FIELDS = {"name": "李四", "driver_id": "320102198001010011",
                 "licence": "JS-DG-20260001", "org": "江苏省交通运输厅"}


def handled(platform, msg_id: int, body: bytes, serial: int = 77):
    link = logged_in(platform, clock=lambda: NOW)
    return link, link.handle(wire(platform, msg_id, body, serial=serial))


def report(platform, kind: str, msg_id: int, data_type: int, fields: dict,
           serial: int = 77) -> PlatformReport:
    return PlatformReport(platform=platform.access_code, kind=kind, msg_id=msg_id,
                          data_type=data_type, serial=serial, vehicle_id=CAR, plate_colour=2,
                          fields=fields, received_at=NOW)


# --- who drives ----------------------------------------------------------------------------

def test_2011_driver_answer_and_unasked_report():
    for sub in (0x120A, 0x120C):
        _, out = handled(OLD, 0x1200, business(sub, DRIVER))
        assert out.rejected == [] and out.message == "exg"
        assert out.reports == [report(OLD, "driver_info", 0x1200, sub,
                                      DRIVER_FIELDS | {"valid_until": None})]


def test_2019_driver_answer_quotes_its_request_and_the_certificates_expiry():
    data = struct.pack(">HI", 0x920A, 4242) + DRIVER + struct.pack(">Q", 0x71C8B600)
    assert len(data) == 6 + 276 + 8
    _, out = handled(NEW, 0x1200, business(0x120A, data))
    assert out.reports == [report(NEW, "driver_info", 0x1200, 0x120A, DRIVER_FIELDS | {
        "valid_until": VALID.isoformat(), "source_type": 0x920A, "source_sn": 4242})]
    _, unasked = handled(NEW, 0x1200, business(0x120C, DRIVER + bytes(8)))
    assert unasked.reports == [report(NEW, "driver_info", 0x1200, 0x120C,
                                      DRIVER_FIELDS | {"valid_until": None})]


@pytest.mark.parametrize("platform", [OLD, NEW], ids=["2011", "2019-encrypted"])
def test_a_truncated_driver_answer_is_a_dead_letter_and_the_link_goes_on(platform):
    link, out = handled(platform, 0x1200, business(0x120A, DRIVER[:100]))
    assert out.reports == [] and [r.reason for r in out.rejected] == ["truncated"]
    assert "DRIVER" in out.rejected[0].error or "LICENCE" in out.rejected[0].error
    lying = PLATE + b"\x02" + struct.pack(">HI", 0x120A, 276) + DRIVER[:40]  # DATA_LENGTH lies
    out = link.handle(wire(platform, 0x1200, lying, serial=78))
    assert [r.reason for r in out.rejected] == ["truncated"]
    assert link.logged_in
    alive = link.handle(wire(platform, lk.UP_LINKTEST_REQ, b"", serial=79))
    assert len(alive.answers) == 1 and alive.rejected == []


# --- control answers --------------------------------------------------------------------------

@pytest.mark.parametrize("sub, kind", [(0x1501, "listen_answer"),
                                       (0x1505, "emergency_access_answer")])
def test_listen_and_emergency_access_answers(sub, kind):
    _, out = handled(OLD, 0x1500, business(sub, b"\x01"))
    assert out.message == "ctrl"
    assert out.reports == [report(OLD, kind, 0x1500, sub, {"result": 1})]
    request = 0x9501 if sub == 0x1501 else 0x9505
    _, out = handled(NEW, 0x1500, business(sub, struct.pack(">HIB", request, 31, 0)))
    assert out.reports == [report(NEW, kind, 0x1500, sub, {
        "result": 0, "source_type": request, "source_sn": 31})]


def test_tachograph_answers_both_editions():
    frame_ = bytes.fromhex("557a0800000027")  # a GB/T 19056 answer without data
    _, out = handled(OLD, 0x1500, business(0x1504, struct.pack(">I", 7) + frame_))
    assert out.reports == [report(OLD, "tachograph_answer", 0x1500, 0x1504, {
        "command": None, "data": "557a0800000027", "size": 7})]
    # the 2011 text's COMMAND_TYPE first, as some platforms send
    _, out = handled(OLD, 0x1500, business(0x1504, b"\x08" + struct.pack(">I", 7) + frame_))
    assert out.reports[0].fields == {"command": 8, "data": "557a0800000027", "size": 7}
    data = struct.pack(">HIB", 0x9504, 55, 0x08) + struct.pack(">I", 7) + frame_
    _, out = handled(NEW, 0x1500, business(0x1504, data))
    assert out.reports == [report(NEW, "tachograph_answer", 0x1500, 0x1504, {
        "command": 8, "data": "557a0800000027", "size": 7, "source_type": 0x9504,
        "source_sn": 55})]


# --- position exchange --------------------------------------------------------------------------

@pytest.mark.parametrize("sub, started", [(0x1205, True), (0x1206, False)])
def test_exchange_answers_both_editions_and_both_2019_layouts(sub, started):
    _, out = handled(OLD, 0x1200, business(sub, b""))
    assert out.reports == [report(OLD, "exchange_answer", 0x1200, sub, {"started": started})]
    request = sub + 0x8000
    standard = PLATE + b"\x02" + struct.pack(">HHII", sub, request, 9001, 0)  # source, then 0
    ordinary = business(sub, struct.pack(">HI", request, 9001))
    for body in (standard, ordinary):
        _, out = handled(NEW, 0x1200, body)
        assert out.reports == [report(NEW, "exchange_answer", 0x1200, sub, {
            "started": started, "source_type": request, "source_sn": 9001})]


# --- hostile bodies -----------------------------------------------------------------------------

@pytest.mark.parametrize("platform", [OLD, NEW], ids=["2011", "2019-encrypted"])
@pytest.mark.parametrize("msg_id, sub", [(0x1200, 0x120A), (0x1200, 0x120C), (0x1500, 0x1501),
                                         (0x1500, 0x1504), (0x1500, 0x1505), (0x1200, 0x1205)])
def test_short_bodies_are_dead_letters_with_a_reason(platform, msg_id, sub):
    link = logged_in(platform, clock=lambda: NOW)
    full = {0x120A: struct.pack(">HI", 0x920A, 1) + DRIVER + bytes(8),
            0x120C: DRIVER + bytes(8), 0x1501: struct.pack(">HIB", 0x9501, 1, 0),
            0x1504: struct.pack(">HIBI", 0x9504, 1, 8, 4) + b"\x55\x7a\x08\x00",
            0x1505: struct.pack(">HIB", 0x9505, 1, 0),
            0x1205: struct.pack(">HI", 0x9205, 1)}[sub]
    refused = 0
    for cut in range(len(full)):
        data = full[:cut]
        if platform.edition == 2011 and sub in (0x1205, 0x1206):
            break  # no data in 2011: anything goes
        out = link.handle(wire(platform, msg_id, business(sub, data), serial=100 + cut))
        if out.rejected:
            refused += 1
            assert out.rejected[0].reason in ("truncated", "bad_message") and out.reports == []
        cut_short = link.handle(wire(platform, msg_id, business(sub, full)[:21 + 1 + cut % 6],
                                     serial=200 + cut))
        assert [r.reason for r in cut_short.rejected] == ["truncated"]
    assert link.logged_in
    if not (platform.edition == 2011 and sub == 0x1205):
        assert refused > 0
