"""The monthly assessment of a synthetic month whose answers are worked out here, by hand
and with this file's own great-circle arithmetic, not by the code under test: a truck with
a 40 % hole in its track, one with drift points, one silent all month (networked, not
online), one never heard of, one speeding and driving tired, one not registered."""

from __future__ import annotations

import math
from collections import namedtuple
from datetime import date, datetime, timedelta

import pytest

from tests.unit.test_archive import batch_of, record
from yrd_hazmat.archive import register_snapshot, rows, writer
from yrd_hazmat.archive.read import Archive
from yrd_hazmat.archive.store import Store
from yrd_hazmat.assess.figures import Bounds, compute
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.models import Alert, AlertState, IncidentAction, IncidentLog, Severity
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.register import Register

Record = namedtuple("Record", "key value timestamp partition offset")
T = datetime(2026, 11, 12, 9, 0, tzinfo=CHINA_TZ)
GAP, DRIFT, SILENT, NEVER, TIRED, STRANGER = ("沪A00001", "沪A00002", "沪A00003", "沪A00004",
                                              "苏E00005", "浙A00006")
REGISTERED = {GAP: "甲运输", DRIFT: "甲运输", SILENT: "甲运输", NEVER: "甲运输", TIRED: "乙运输"}


def km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine, mean Earth radius."""
    (lon1, lat1), (lon2, lat2) = a, b
    h = (math.sin(math.radians(lat2 - lat1) / 2) ** 2 + math.cos(math.radians(lat1))
         * math.cos(math.radians(lat2)) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


class Month:
    def __init__(self) -> None:
        self.offset = 0
        self.pings: list[Record] = []
        self.alerts: list[Record] = []
        self.incidents: list[Record] = []

    def ping(self, plate: str, at: datetime, where, **fields) -> None:
        self.pings.append(record(plate, at, self.offset, where=where, **fields))
        self.offset += 1

    def alert(self, plate: str, type_: str, incident: str, state: AlertState,
              at: datetime) -> None:
        value = Alert(alert_id=f"{incident}:{state.value}", incident_id=incident, type=type_,
                      severity=Severity.WARNING, state=state, vehicle_id=plate, ts=at,
                      emitted_at=at, lat=31.3, lon=120.62, province="JS")
        self.alerts.append(Record(plate.encode(), encode(value), int(at.timestamp() * 1000),
                                  0, len(self.alerts)))

    def incident(self, plate: str, incident: str, at: datetime, acted: bool, *,
                 ack_after: timedelta = timedelta(minutes=3), level=None,
                 appeal=None) -> None:
        actions = [IncidentAction(kind="raised", by="worker", at=at)]
        if level:
            actions.append(IncidentAction(kind="escalate", by="notifier", level=level,
                                          at=at + timedelta(minutes=5)))
        if acted:
            actions.append(IncidentAction(kind="ack", by="js-desk", at=at + ack_after))
        value = IncidentLog(incident_id=incident, vehicle_id=plate, province="JS",
                            alert_type="SPEEDING", raised_at=at, actions=actions,
                            level=level, appeal=appeal)
        self.incidents.append(Record(incident.encode(), encode(value),
                                     int(at.timestamp() * 1000), 0, len(self.incidents)))

    def write(self, store: Store) -> None:
        writer.flush(store, batch_of(self.pings))
        for kind, recs, convert in (("alerts", self.alerts, rows.alerts),
                                    ("incidents", self.incidents, rows.incidents)):
            batch = writer.Batch(kind, f"yrd.{kind}")
            batch.read(0, 0, len(recs) - 1)
            convert(recs, carriers=lambda plate: None, out=batch.rows)
            writer.flush(store, batch)


@pytest.fixture()
def month(tmp_path) -> tuple[Archive, dict]:
    m, expect = Month(), {}
    # GAP: 101 fixes 30 s apart going east at 36 km/h (100 steps); the 39 in the middle
    # never came: the 40 steps between the 30th and the 70th are one 20-minute hole
    path = [(121.30 + 0.00315 * i, 31.10) for i in range(101)]
    kept = [i for i in range(101) if not 31 <= i < 70]
    for i in kept:
        m.ping(GAP, T + timedelta(seconds=30 * i), path[i])
    segments = list(zip(kept, kept[1:]))
    total = sum(km(path[a], path[b]) for a, b in segments)
    broken = sum(km(path[a], path[b]) for a, b in segments if (b - a) * 30 > 300)
    expect["gap"] = {"total": total, "complete": total - broken}
    assert broken / total == pytest.approx(0.40, abs=0.01)  # the truck of the issue: 40 %
    for i in range(5):  # a bad speed: not qualified; 3 without a fix: neither
        m.ping(GAP, T + timedelta(hours=5, seconds=i), path[-1], quality=["bad_speed"])
    for i in range(3):
        m.ping(GAP, T + timedelta(hours=6, seconds=i), path[-1], fix_valid=False)
    # DRIFT: creeping north, one fix 48 km east at sea in the middle (out and back)
    fixes = [(121.45, 31.25 + 0.001 * i) for i in range(20)]
    fixes[10] = (121.95, 31.26)
    for i, where in enumerate(fixes):
        m.ping(DRIFT, T + timedelta(days=1, seconds=30 * i), where)
    expect["drift_km"] = sum(km(a, b) for a, b in zip(fixes, fixes[1:])
                             if km(a, b) < 1 or km(a, b) / 30 * 3600 <= 200)
    # SILENT: qualified last month, nothing this one
    m.ping(SILENT, datetime(2026, 10, 20, 8, tzinfo=CHINA_TZ), (121.47, 31.23))
    # TIRED: Suzhou; 3 speedings and 1 zone speeding; tired 40 min, then again 10 min
    # before the month ends and still at it
    for i in range(10):
        m.ping(TIRED, T + timedelta(days=2, seconds=10 * i), (120.62 + 0.0002 * i, 31.30))
    for n in range(3):
        at = T + timedelta(days=2, hours=n)
        m.alert(TIRED, "SPEEDING", f"s{n}", AlertState.RAISED, at)
        m.alert(TIRED, "SPEEDING", f"s{n}", AlertState.CLEARED, at + timedelta(minutes=1))
    m.alert(TIRED, "ZONE_SPEEDING", "z", AlertState.RAISED, T + timedelta(days=3))
    m.alert(TIRED, "FATIGUE_DRIVING", "f1", AlertState.RAISED, T + timedelta(days=4))
    m.alert(TIRED, "FATIGUE_DRIVING", "f1", AlertState.CLEARED,
            T + timedelta(days=4, minutes=40))
    m.alert(TIRED, "FATIGUE_DRIVING", "f2", AlertState.RAISED,
            datetime(2026, 11, 30, 23, 50, tzinfo=CHINA_TZ))
    m.alert(TIRED, "SPEEDING", "old", AlertState.RAISED, datetime(2026, 10, 31, 23,
                                                                    tzinfo=CHINA_TZ))
    # three incidents: one acknowledged in 3 minutes; one in 9, after its deadline
    # (escalated to the province) and appealed with success; one nobody touched (escalated
    # to the region)
    m.incident(TIRED, "i0", T + timedelta(days=2), True)
    m.incident(TIRED, "i1", T + timedelta(days=2, hours=1), True, ack_after=timedelta(minutes=9),
               level="province", appeal="accepted")
    m.incident(TIRED, "i2", T + timedelta(days=2, hours=2), False, level="region")
    # STRANGER: not registered, 4 records in Hangzhou
    for i in range(4):
        m.ping(STRANGER, T + timedelta(seconds=10 * i), (120.16, 30.27))
    store = Store.local_dir(str(tmp_path))
    m.write(store)
    return Archive(store), expect


def by(figures, level: str, key: str) -> dict:
    (row,) = [r for r in figures.rows if r["level"] == level and r["key"] == key]
    return row


def test_the_regions_figures(month):
    archive, expect = month
    f = compute(archive, "2026-11", REGISTERED)
    region = by(f, "region", "YRD")
    assert (region["registered"], region["networked"], region["online"]) == (5, 4, 3)
    assert region["networked_rate"] == 4 / 5 and region["online_rate"] == 3 / 4
    records = 62 + 5 + 3 + 20 + 10 + 4  # SILENT's is October's
    qualified = records - 5 - 3
    assert (region["records"], region["qualified"]) == (records, qualified)
    assert region["drift_vehicles"] == 1 and region["drift_rate"] == pytest.approx(1 / 3)
    assert region["overspeeds"] == 4 and region["overspeeds_per_vehicle"] == pytest.approx(4 / 3)
    assert region["fatigue_s"] == 50 * 60
    assert region["fatigue_s_per_vehicle"] == pytest.approx(1000.0)
    assert (region["incidents"], region["handled"]) == (3, 2)
    gap_and_others = expect["gap"]["total"] + expect["drift_km"]
    assert region["mileage_km"] == pytest.approx(gap_and_others + sum(
        km((120.62 + 0.0002 * i, 31.30), (120.62 + 0.0002 * (i + 1), 31.30)) for i in range(9)),
        rel=1e-6)  # (the stranger's four fixes at one place: 0 km)


def test_handling_times_escalations_and_appeals(month):
    archive, _ = month
    f = compute(archive, "2026-11", REGISTERED)
    for row in (by(f, "region", "YRD"), by(f, "province", "JS"), by(f, "carrier", "乙运输")):
        assert (row["incidents"], row["handled"], row["escalated"]) == (3, 2, 2)
        assert row["ack_mean_s"] == pytest.approx((3 * 60 + 9 * 60) / 2)
        assert row["escalation_rate"] == pytest.approx(2 / 3)
        assert (row["appealed"], row["appeals_accepted"]) == (1, 1)
    assert by(f, "carrier", "甲运输")["ack_mean_s"] is None  # no incident: no mean


def test_the_truck_with_a_hole_and_the_one_that_drifts(month):
    archive, expect = month
    f = compute(archive, "2026-11", REGISTERED)
    vehicles = {v["vehicle_id"]: v for v in f.vehicles.to_pylist()}
    gap = vehicles[GAP]
    assert gap["mileage_km"] == pytest.approx(expect["gap"]["total"], rel=1e-9)
    assert gap["complete_km"] / gap["mileage_km"] == pytest.approx(
        expect["gap"]["complete"] / expect["gap"]["total"], rel=1e-9)
    assert gap["complete_km"] / gap["mileage_km"] == pytest.approx(0.60, abs=0.01)
    drift = vehicles[DRIFT]
    assert drift["drift_points"] == 2  # out to sea and back
    assert drift["mileage_km"] == pytest.approx(expect["drift_km"], rel=1e-9)
    assert SILENT not in vehicles and NEVER not in vehicles  # no record this month


def test_per_province_city_and_carrier(month):
    archive, _ = month
    f = compute(archive, "2026-11", REGISTERED)
    sh, js = by(f, "province", "SH"), by(f, "province", "JS")
    assert (sh["registered"], sh["online"], sh["drift_vehicles"]) == (2, 2, 1)
    assert (js["registered"], js["online"], js["overspeeds"]) == (1, 1, 4)
    assert by(f, "city", "320500")["name"] == "苏州市"
    zj = by(f, "province", "ZJ")
    assert (zj["registered"], zj["records"], zj["networked_rate"]) == (0, 4, None)
    jia = by(f, "carrier", "甲运输")
    assert (jia["registered"], jia["networked"], jia["online"]) == (4, 3, 2)
    assert by(f, "carrier", "乙运输")["handling_rate"] == pytest.approx(2 / 3)
    assert {v["type"] for v in f.violations} == {"SPEEDING", "ZONE_SPEEDING", "FATIGUE_DRIVING"}
    assert len(f.violations) == 6  # raised in November only
    days = {(d["day"], d["province"]): d for d in f.daily}
    assert days[(date(2026, 11, 12), "SH")]["records"] == 62 + 5  # (no-fix ones: no place)


def test_the_bounds_are_settings(month):
    archive, expect = month
    lax = compute(archive, "2026-11", REGISTERED, Bounds(gap_s=2000, drift_kmh=10_000))
    region = by(lax, "region", "YRD")
    assert region["drift_vehicles"] == 0
    gap = {v["vehicle_id"]: v for v in lax.vehicles.to_pylist()}[GAP]
    assert gap["complete_km"] == pytest.approx(gap["mileage_km"])


def test_the_register_is_kept_with_the_archive(tmp_path):
    store = Store.local_dir(str(tmp_path))
    register = Register()
    register.permit(GAP.encode(), encode({"carrier": "甲运输"}))
    register.permit(NEVER.encode(), encode({"permit_id": "P"}))  # no carrier named
    register.permit(DRIFT.encode(), encode({"carrier": "甲运输"}))
    register.permit(DRIFT.encode(), None)  # revoked
    assert register_snapshot.write(store, register, date(2026, 11, 28)) == 2
    register.vehicle_terminal(NEVER.encode(), encode({"carrier": "丙运输"}))
    register_snapshot.write(store, register, date(2026, 12, 2))
    assert register_snapshot.read(store, date(2026, 11, 30)) == \
        (date(2026, 11, 28), {GAP: "甲运输", NEVER: None})
    assert register_snapshot.read(store, date(2026, 12, 31))[1][NEVER] == "丙运输"
    assert register_snapshot.read(store, date(2026, 11, 1)) == (None, {})
    register.platform(b"30010001", encode({"name": "上海企业平台", "province": "SH"}))
    register.platform(b"30010002", encode({"name": "无省平台"}))
    register_snapshot.write(store, register, date(2026, 12, 3))
    assert register_snapshot.read_platforms(store, date(2026, 12, 3)) == \
        {30010001: ("上海企业平台", "SH"), 30010002: ("无省平台", None)}
    assert register_snapshot.read_platforms(store, None) == {}


def test_todays_figures_become_gauges_per_province(month):
    """The day of the hole (2026-11-12): the gauges say what that day's figures are."""
    from prometheus_client import REGISTRY

    from yrd_hazmat.assess import today
    from yrd_hazmat.config import Settings

    archive, expect = month
    register = Register()
    for plate, carrier in REGISTERED.items():
        register.permit(plate.encode(), encode({"carrier": carrier}))
    register_snapshot.write(archive.store, register, date(2026, 11, 1))
    figures = today.today(archive.store, Settings(),
                          now=datetime(2026, 11, 12, 23, 0, tzinfo=CHINA_TZ))
    today.export(figures)

    def gauge(name: str, **labels) -> float | None:
        return REGISTRY.get_sample_value(name, labels)

    # that day GAP (Shanghai) and STRANGER (Hangzhou, not registered) were heard; DRIFT
    # drove the next day: no place that day, counted for the region only
    assert gauge("yrd_today_vehicles", province="SH", state="online") == 1
    assert gauge("yrd_today_vehicles", province="all", state="registered") == 5
    assert gauge("yrd_today_records", province="SH", kind="all") == 62 + 5 + 3
    assert gauge("yrd_today_rate", province="SH", figure="completeness") == pytest.approx(
        expect["gap"]["complete"] / expect["gap"]["total"])
    assert gauge("yrd_today_rate", province="ZJ", figure="online") is None  # none networked
    assert gauge("yrd_today_records", province="ZJ", kind="all") == 4


def test_fatigue_standing_when_the_month_began_counts_from_its_start(tmp_path):
    m = Month()
    for i in range(3):
        m.ping(TIRED, datetime(2026, 11, 1, 0, 10 * i, tzinfo=CHINA_TZ), (120.62, 31.30))
    m.alert(TIRED, "FATIGUE_DRIVING", "f0", AlertState.RAISED,
            datetime(2026, 10, 31, 23, 0, tzinfo=CHINA_TZ))
    m.alert(TIRED, "FATIGUE_DRIVING", "f0", AlertState.CLEARED,
            datetime(2026, 11, 1, 0, 30, tzinfo=CHINA_TZ))
    m.alert(TIRED, "FATIGUE_DRIVING", "gone", AlertState.RAISED,
            datetime(2026, 10, 30, 1, 0, tzinfo=CHINA_TZ))  # over before the month
    m.alert(TIRED, "FATIGUE_DRIVING", "gone", AlertState.CLEARED,
            datetime(2026, 10, 30, 2, 0, tzinfo=CHINA_TZ))
    m.incident(TIRED, "i", datetime(2026, 11, 1, 0, 5, tzinfo=CHINA_TZ), acted=False)
    store = Store.local_dir(str(tmp_path))
    m.write(store)
    f = compute(Archive(store), "2026-11", {TIRED: "乙运输"})
    region = by(f, "region", "YRD")
    assert region["fatigue_s"] == 30 * 60  # 00:00 to 00:30, not from 23:00
    assert by(f, "city", "320500")["province"] == "JS"
    assert not [v for v in f.violations if v["type"] == "FATIGUE_DRIVING"]  # raised before


def test_link_uptime_and_the_national_platforms_questions(tmp_path):
    """The uplink up 20 minutes carried over from October (its last report there, stale
    after three heartbeats), then 12:00-12:20 by one reporter and 12:15-12:45 by another
    (up while either says up: 45 minutes); a lower platform up 5 minutes. Three
    inspections: one answered in time, one late, one never; two supervision orders: one
    done, one in progress; an October inspection's late answer counts for October."""
    from yrd_hazmat.link_states import LinkState
    from yrd_hazmat.uplink.records import UplinkAnswer, UplinkRequest

    def at(day: int, hour: int, minute: int, month: int = 11) -> datetime:
        return datetime(2026, month, day, hour, minute, tzinfo=CHINA_TZ)

    states = [("uplink", 31000000, "a", True, at(31, 23, 50, 10)),
              ("uplink", 31000000, "a", True, at(15, 12, 0)),
              ("uplink", 31000000, "a", True, at(15, 12, 10)),
              ("uplink", 31000000, "a", False, at(15, 12, 20)),
              ("uplink", 31000000, "b", True, at(15, 12, 15)),
              ("platform", 30010001, "gw", True, at(2, 10, 0)),
              ("platform", 30010001, "gw", False, at(2, 10, 5))]
    link_recs = []
    for n, (link, code, reporter, up, when) in enumerate(states):
        state = LinkState(link=link, access_code=code, reporter=reporter, main_up=up,
                          slave_up=up, reported_at=when, heartbeat_s=600,
                          name="上海企业平台" if link == "platform" else "")
        link_recs.append(Record(state.key.encode(), encode(state),
                                int(when.timestamp() * 1000), 0, n))

    def request(rid: str, kind: str, when: datetime) -> UplinkRequest:
        return UplinkRequest(request_id=rid, kind=kind, received_at=when,
                             deadline=when + timedelta(minutes=10), edition=2019, serial=1,
                             link="slave", question="谁在值班?")

    asked = {"in-time": request("in-time", "inspection", at(3, 9, 0)),
             "late": request("late", "inspection", at(4, 9, 0)),
             "never": request("never", "inspection", at(5, 9, 0)),
             "done": request("done", "supervision", at(6, 9, 0)),
             "going": request("going", "supervision", at(7, 9, 0)),
             "october": request("october", "inspection", at(31, 23, 58, 10))}
    answers = [UplinkAnswer(request=asked["in-time"], answered_by="张", content="张",
                            answered_at=at(3, 9, 5)),
               UplinkAnswer(request=asked["late"], answered_by="李", content="李",
                            answered_at=at(4, 9, 30)),
               UplinkAnswer(request=asked["done"], answered_by="王", result=1,
                            answered_at=at(6, 10, 0)),
               UplinkAnswer(request=asked["going"], answered_by="王", result=0,
                            answered_at=at(7, 10, 0)),
               UplinkAnswer(request=asked["october"], answered_by="赵", content="赵",
                            answered_at=at(1, 0, 30))]
    from yrd_hazmat.gateway.platform_requests import PlatformRequestResult

    def step(rid: str, status: str, when: datetime, late: bool = False) -> Record:
        result = PlatformRequestResult(request_id=rid, platform=30010001, kind="inspection",
                                       status=status, at=when, late=late)
        return Record(b"30010001", encode(result), int(when.timestamp() * 1000), 0, 0)

    ours = [step("q1", "sent", at(8, 9, 0)), step("q1", "answered", at(8, 9, 3)),
            step("q2", "sent", at(9, 9, 0)), step("q2", "late", at(9, 9, 10)),
            step("q2", "answered", at(9, 9, 30), late=True)]
    ours = [r._replace(offset=n) for n, r in enumerate(ours)]
    store = Store.local_dir(str(tmp_path))
    for kind, recs, convert in (
            ("platform_results", ours, rows.platform_results),
            ("link_states", link_recs, rows.link_states),
            ("uplink_requests", [Record(r.request_id.encode(), encode(r),
                                        int(r.received_at.timestamp() * 1000), 0, n)
                                 for n, r in enumerate(asked.values())], rows.uplink_requests),
            ("uplink_answers", [Record(a.request.request_id.encode(), encode(a),
                                       int(a.answered_at.timestamp() * 1000), 0, n)
                                for n, a in enumerate(answers)], rows.uplink_answers)):
        batch = writer.Batch(kind, f"yrd.{kind}")
        batch.read(0, 0, len(recs) - 1)
        assert convert(recs, out=batch.rows) == 0
        writer.flush(store, batch)
    f = compute(Archive(store), "2026-11", {}, platforms={30010001: ("上海企业平台", "SH")})
    month_s = 30 * 86_400
    links = {(entry["link"], entry["access_code"]): entry for entry in f.links}
    assert links[("uplink", 31000000)]["up_s"] == (20 + 45) * 60
    assert links[("platform", 30010001)]["up_s"] == 5 * 60
    assert links[("platform", 30010001)]["name"] == "上海企业平台"
    region = by(f, "region", "YRD")
    assert region["link_uptime"] == pytest.approx(65 * 60 / month_s)
    assert (region["inspections"], region["inspections_in_time"]) == (3, 1)
    assert region["inspection_response_rate"] == pytest.approx(1 / 3)
    assert (region["supervisions"], region["supervisions_done"]) == (2, 1)
    assert region["supervision_handling_rate"] == 0.5
    # the lower platform's: its province and its carrier (no vehicle of theirs this month)
    for level, key in (("province", "SH"), ("carrier", "上海企业平台")):
        row = by(f, level, key)
        assert row["link_uptime"] == pytest.approx(5 * 60 / month_s)
        assert (row["inspections"], row["inspections_in_time"]) == (2, 1)
        assert row["inspection_response_rate"] == 0.5
    from yrd_hazmat.assess import report, stored

    page = report.html(f)
    assert "查岗响应率" in page and "33.3%" in page and "上海企业平台" in page
    assert "50.0%" in page  # supervision orders done
    stored.save(store, f)  # kept with the archive and read back for the desk
    again = stored.load(store, "2026-11")
    assert again.links == f.links and report.html(again) == page
