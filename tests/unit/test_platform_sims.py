"""The pure parts of the demo's platform simulators: the national platform's tally of
what it asked and how long each answer took, its schedule of questions; the enterprise
platform's delays per request and how it tells a request's kind; which log lines the
demo shows, and that its national platform does not take the gateway's port."""

from __future__ import annotations

from datetime import datetime

from yrd_hazmat import demo
from yrd_hazmat.config import Settings
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.jt809 import alarms as a
from yrd_hazmat.jt809 import control as c
from yrd_hazmat.jt809 import inspection as i
from yrd_hazmat.jt809.drive import answer_delay, downward_type
from yrd_hazmat.jt809.frame import V2011, V2019, build, parse
from yrd_hazmat.uplink.simulator import Schedule, Tally, answer_key


def test_an_answer_is_timed_against_its_question_and_judged_in_time_or_late():
    tally = Tally()
    tally.ask(("inspection", 1), 1, "请报告值班人员", now=100.0, allowed_s=600.0)
    tally.ask(("supervision", 7), 7, "沪A00001 0x0001", now=100.0, allowed_s=60.0)
    first = tally.answer(("inspection", 1), now=142.5)
    assert first is not None and first.took_s == 42.5 and first.within is True
    late = tally.answer(("supervision", 7), now=200.0)
    assert late is not None and late.took_s == 100.0 and late.within is False
    assert late.describe() == "supervision order #7 (沪A00001 0x0001)"
    # a second answer to the same question keeps the first one's time
    assert tally.answer(("inspection", 1), now=500.0).took_s == 42.5
    # an answer to nothing asked is counted, not matched
    assert tally.answer(("inspection", 99), now=500.0) is None and tally.unmatched == 1
    summary = tally.summary(now=500.0)
    assert "inspections 1 sent, 1 answered (1 in time, 0 late), 0 open" in summary
    assert "supervision orders 1 sent, 1 answered (0 in time, 1 late)" in summary
    assert "answers to nothing asked 1" in summary


def test_an_unanswered_question_is_reported_overdue_once():
    tally = Tally()
    tally.ask(("inspection", 1), 1, "q", now=0.0, allowed_s=600.0)
    assert tally.overdue(now=600.0) == []
    assert [x.number for x in tally.overdue(now=601.0)] == [1]
    assert tally.overdue(now=700.0) == []  # once
    assert "1 open (1 overdue)" in tally.summary(now=700.0)


def test_the_summary_counts_live_and_resent_positions_and_alarms():
    tally = Tally()
    tally.live, tally.resent, tally.alarms = 120, 15, 3
    assert tally.summary(now=0.0).startswith("positions 120 live, 15 re-sent; alarms 3; ")


def test_answers_quote_info_id_and_supervision_id_in_2011_and_the_frame_serial_in_2019():
    assert answer_key("inspection", V2011, info_id=4, serial=9) == ("inspection", 4)
    assert answer_key("inspection", V2019, info_id=4, serial=9) == ("inspection", 9)
    assert answer_key("supervision", V2011, supervision_id=3, serial=9) == ("supervision", 3)
    assert answer_key("supervision", V2019, supervision_id=3, serial=9) == ("supervision", 9)


def test_the_schedule_asks_first_after_its_delay_then_every_period():
    s = Schedule(1000.0, first_s=60.0, every_s=300.0, order_every_s=420.0)
    assert not s.inspection_due(1059.0) and s.inspection_due(1060.0)
    s.inspected(1061.0)
    assert not s.inspection_due(1360.0) and s.inspection_due(1361.0)
    assert not s.order_due(1419.0) and s.order_due(1420.0)
    s.ordered(1420.0)
    assert not s.order_due(1839.0) and s.order_due(1840.0)


def test_a_period_of_zero_asks_nothing():
    s = Schedule(0.0, first_s=60.0, every_s=0.0, order_every_s=0.0)
    assert not s.inspection_due(10_000.0) and not s.order_due(10_000.0)


def test_the_enterprise_platform_answers_each_request_after_its_share_of_the_delay():
    assert answer_delay(i.POST_QUERY_REQ, 20) == 20
    assert answer_delay(a.URGE_TODO_REQ, 20) == 30
    assert answer_delay(c.TEXT_INFO, 20) == 5
    assert answer_delay(c.TAKE_PHOTO_REQ, 20) == 10
    assert answer_delay(0x9601, 20) == 5
    assert answer_delay(a.INFORM_TIPS, 20) is None  # a tip asks no answer
    assert answer_delay(i.POST_QUERY_REQ, -1) is None  # a platform that answers nothing


def _frame(msg_id: int, body: bytes, edition: int):
    content = build(msg_id, 5, 30010001, body, edition=edition)[1:-1]
    return parse(content, expect=edition)


def test_the_kind_of_a_downward_request_is_read_from_its_envelope():
    for edition in (V2011, V2019):
        question = i.write(i.POST_QUERY_REQ, i.write_inspection(
            i.Inspection(info_id=1, content="请报告", object_type=1, answer_time=10), edition))
        assert downward_type(_frame(i.DOWN_PLATFORM_MSG, question, edition), edition) == \
            i.POST_QUERY_REQ
        deadline = datetime(2026, 12, 7, 20, 0, tzinfo=CHINA_TZ)
        order = a.write(a.URGE_TODO_REQ, a.write_order(a.SupervisionOrder(
            deadline=deadline, level=0, supervisor="s", tel="", email="", warn_time=deadline,
            warn_type=1, supervision_id=3), edition), edition, plate="沪A00001", colour=2)
        assert downward_type(_frame(a.DOWN_WARN_MSG, order, edition), edition) == \
            a.URGE_TODO_REQ
    text = c.write("沪A00001", 2, c.TEXT_INFO, c.write_text(c.TextRequest(msg_id=1, text="减速")))
    assert downward_type(_frame(c.DOWN_CTRL_MSG, text, V2011), V2011) == c.TEXT_INFO
    assert downward_type(_frame(0x1005, b"", V2011), V2011) is None  # not a request
    assert downward_type(_frame(i.DOWN_PLATFORM_MSG, b"\x93", V2011), V2011) is None


def test_the_demo_shows_requests_going_down_and_answers_coming_back():
    prefix = "2026-12-07 17:15:15,167 INFO "
    upper = prefix + "yrd_hazmat.uplink.simulator: "
    assert demo._upper_line(upper + "inspection 1 sent (MSG_SN 2, slave link): 请报告") == \
        "national platform: inspection 1 sent (MSG_SN 2, slave link): 请报告"
    assert demo._upper_line(upper + "answer to inspection #1 (q) after 3.0 s, within ...")
    assert demo._upper_line(upper + "supervision order 1 sent about 沪A00001's alarm 0x0001")
    assert demo._upper_line(upper + "inspection #1 (q) not answered within 600 s")
    assert demo._upper_line(upper + "summary: link main+slave, ...") is None
    assert demo._platform_line(prefix + "yrd_hazmat.jt809.drive: answered inspection 0x9301 "
                               "(MSG_SN 1) after 20 s: 0x1301 '已核实'")
    assert demo._platform_line(prefix + "yrd_hazmat.jt809.drive: platform link up") is None
    assert demo._uplink_line(prefix + "yrd_hazmat.uplink.process: upper platform's inspection "
                             "inspection-1, deadline 2026-12-07")
    assert demo._uplink_line(prefix + "yrd_hazmat.uplink.process: uplink logged in") is None


def test_the_demos_national_platform_and_slave_link_take_no_port_of_the_gateway():
    defaults = Settings()
    taken = {defaults.jt808_port, defaults.jt809_port, defaults.desk_port,
             defaults.metrics_port, defaults.gateway_metrics_port, defaults.uplink_metrics_port}
    ours = {int(demo.DEMO_UPLINK["YRD_UPLINK_PORT"]), int(demo.DEMO_UPLINK["YRD_UPLINK_DOWN_PORT"])}
    assert len(ours) == 2 and not ours & taken
    assert demo.DEMO_UPLINK["YRD_UPLINK_HOST"] == "127.0.0.1"
