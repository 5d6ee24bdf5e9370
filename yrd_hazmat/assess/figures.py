"""The monthly assessment's figures, computed from the archive with DuckDB.

Definitions (交运发〔2016〕160号 and the provinces' rules, as ``../shared/domain.md`` gives
them; the bounds are settings):

- **registered**: the vehicles of the vehicle register (the archive's snapshot of it at the
  month's end, :mod:`.register_snapshot`).
- **networked** (入网): registered vehicles with at least one qualified record in the
  archive up to the month's end (the archive keeps pings 6 months). **Networked rate** =
  networked / registered.
- **online** (上线): networked vehicles with at least one record in the month. **Online
  rate** = online / networked.
- **qualified record** (数据合格): a ping with a valid fix and no data-quality finding
  (invalid position, time, speed, direction, altitude, plate...). **Qualified rate** =
  qualified records / all records of the month.
- **track completeness** (轨迹完整率): between consecutive fixes of a vehicle (time order,
  one per fix time) a segment of great-circle length; a segment whose fixes are more than
  ``YRD_ASSESS_GAP_S`` (300 s) apart breaks the track. Rate = length of unbroken segments /
  length of all segments (drift segments left out of both).
- **drift** (漂移): a fix reached from the one before at more than ``YRD_ASSESS_DRIFT_KMH``
  (200 km/h) over at least ``YRD_ASSESS_DRIFT_MIN_KM`` (1 km). **Drift rate** = online
  vehicles with a drift point / online vehicles.
- **overspeed events per vehicle**: SPEEDING and ZONE_SPEEDING alerts raised in the month /
  online vehicles. **Fatigue time per vehicle**: the time FATIGUE_DRIVING alerts stood
  (raised to cleared, or to the month's end; one raised in the 3 days before the month and
  still standing counts from its start) / online vehicles, in seconds.
- **alarm handling rate**: incidents raised in the month on which a person acted (ack,
  assign, dispatch, close, a carrier's explanation...) / incidents raised in the month.
  **Mean time to acknowledge**: from an incident's raising to the first person's action,
  over the incidents acted on. **Escalation rate**: incidents escalated past a deadline
  (to the province or the region) / incidents raised. **Appeals**: incidents a carrier
  appealed, and those whose appeal the police accepted.
- **link uptime** (平台连通率): the time the JT/T 809 main link was up / the period. A link
  state report (``yrd.link-states``) holds until the next one, for at most three of its
  heartbeats (a reporter gone silent counts as down); several reporters of the same link:
  up while any says up. The region's figure is the uplink to the national platform's; each
  lower platform's link is listed too.
- **inspection response rate** (查岗响应率): the national platform's inspections received
  in the period answered by their deadline / inspections received. **Supervision orders
  handled**: orders received in the period answered "done" (result 1) / orders received.

Every figure is given for the region, per province, per city and per carrier. A vehicle
belongs to the city (and province) where most of its fixes of the month were, and to the
carrier the register names (else the one its pings were archived with); its records and
kilometres count there. A vehicle with no fix in the month has no city.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import duckdb
import pyarrow as pa

from ..archive.read import Archive
from ..archive.rows import SCHEMAS
from ..core.models import PERSON_ACTIONS
from ..core.timeutil import CHINA_TZ

OVERSPEED = ("SPEEDING", "ZONE_SPEEDING")
FATIGUE_CARRIED_DAYS = 3
"""A FATIGUE_DRIVING alert raised up to this many days before the month and still standing
at its start counts from the start."""
FATIGUE = "FATIGUE_DRIVING"


@dataclass(frozen=True)
class Bounds:
    gap_s: float = 300.0
    drift_kmh: float = 200.0
    drift_min_km: float = 1.0

    @classmethod
    def of(cls, settings) -> "Bounds":
        return cls(gap_s=settings.assess_gap_s, drift_kmh=settings.assess_drift_kmh,
                   drift_min_km=settings.assess_drift_min_km)


@dataclass
class Figures:
    month: str
    start: datetime
    end: datetime
    bounds: Bounds
    vehicles: pa.Table
    """One row per vehicle: its counts (the basis of every other table)."""
    rows: list[dict] = field(default_factory=list)
    """level (region, province, city, carrier), key, name and the figures."""
    daily: list[dict] = field(default_factory=list)
    """per province and day: vehicles heard, records, qualified records (a record counts
    in the province of its own position; one without a fix in none)."""
    violations: list[dict] = field(default_factory=list)
    """alerts raised in the month: type, severity, lat, lon, province, city, carrier, ts."""
    registered_at: date | None = None
    """the day of the register snapshot used (None: none found, registered = 0)."""
    links: list[dict] = field(default_factory=list)
    """per JT/T 809 link (link: uplink / platform, access_code, name): up_s, uptime."""


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """``2026-11`` -> its first instant and the first instant of the next month, China
    time."""
    first = datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=CHINA_TZ)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return first, nxt


def _days(start: datetime, end: datetime) -> list[date]:
    """The days from ``start``'s to the one holding ``end``'s last instant."""
    first = start.astimezone(CHINA_TZ).date()
    last = (end - timedelta(microseconds=1)).astimezone(CHINA_TZ).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


DAY_SQL = """
WITH day AS (
    SELECT * FROM pings WHERE ts >= $start AND ts < $end
), fixes AS (
    SELECT vehicle_id, ts, lat, lon, city_code, city_name, province
    FROM (SELECT *, row_number() OVER (PARTITION BY vehicle_id, ts
                                       ORDER BY received_at, partition, "offset") AS rn
          FROM day WHERE fix_valid) WHERE rn = 1
), track AS (
    SELECT vehicle_id, ts, lat, lon FROM fixes
    UNION ALL SELECT vehicle_id, ts, lat, lon FROM carried
), segs AS (
    SELECT vehicle_id, epoch(ts - lag(ts) OVER w) AS dt,
           2 * 6371.0088 * asin(sqrt(
               power(sin(radians(lat - lag(lat) OVER w) / 2), 2) +
               cos(radians(lat)) * cos(radians(lag(lat) OVER w)) *
               power(sin(radians(lon - lag(lon) OVER w) / 2), 2))) AS km
    FROM track WINDOW w AS (PARTITION BY vehicle_id ORDER BY ts)
), seg AS (
    SELECT vehicle_id,
           km >= $drift_min_km AND km / greatest(dt, 1) * 3600 > $drift_kmh AS drift,
           km, dt
    FROM segs WHERE dt IS NOT NULL
), per_seg AS (
    SELECT vehicle_id,
           sum(CASE WHEN NOT drift THEN km ELSE 0 END) AS mileage_km,
           sum(CASE WHEN NOT drift AND dt <= $gap_s THEN km ELSE 0 END) AS complete_km,
           count(*) FILTER (WHERE drift) AS drift_points
    FROM seg GROUP BY vehicle_id
), recs AS (
    SELECT vehicle_id, count(*) AS records,
           count(*) FILTER (WHERE fix_valid AND len(quality) = 0) AS qualified,
           arg_max(carrier, ts) AS carrier, max(ts) AS last_ts
    FROM day GROUP BY vehicle_id
)
SELECT vehicle_id, r.records, r.qualified, r.carrier, r.last_ts,
       coalesce(s.mileage_km, 0) AS mileage_km, coalesce(s.complete_km, 0) AS complete_km,
       coalesce(s.drift_points, 0) AS drift_points
FROM recs r LEFT JOIN per_seg s USING (vehicle_id)
"""
"""A day's share of the vehicles' counts. ``carried``: each vehicle's last fix before the
day (in the period), so the segment across midnight counts on the day it ends."""

DAY_CITIES_SQL = """
SELECT vehicle_id, city_code, city_name, province, count(*) AS n
FROM (SELECT *, row_number() OVER (PARTITION BY vehicle_id, ts
                                   ORDER BY received_at, partition, "offset") AS rn
      FROM pings WHERE ts >= $start AND ts < $end AND fix_valid)
WHERE rn = 1 AND city_code IS NOT NULL GROUP BY ALL
"""

LAST_FIXES_SQL = """
SELECT vehicle_id, arg_max(ts, ts) AS ts, arg_max(lat, ts) AS lat, arg_max(lon, ts) AS lon
FROM (SELECT vehicle_id, ts, lat, lon FROM pings
      WHERE ts >= $start AND ts < $end AND fix_valid
      UNION ALL SELECT vehicle_id, ts, lat, lon FROM carried)
GROUP BY vehicle_id
"""

VEHICLES_SQL = """
WITH recs AS (
    SELECT vehicle_id, sum(records)::BIGINT AS records, sum(qualified)::BIGINT AS qualified,
           arg_max(carrier, last_ts) AS archived_carrier, sum(mileage_km) AS mileage_km,
           sum(complete_km) AS complete_km, sum(drift_points)::BIGINT AS drift_points
    FROM parts GROUP BY vehicle_id
), home AS (
    SELECT vehicle_id, arg_max(city_code, n) AS city_code, arg_max(city_name, n) AS city_name,
           arg_max(province, n) AS province
    FROM (SELECT vehicle_id, city_code, city_name, province, sum(n) AS n
          FROM cities GROUP BY ALL) GROUP BY vehicle_id
)
SELECT r.vehicle_id, r.records, r.qualified, r.archived_carrier,
       h.city_code, h.city_name, h.province,
       r.mileage_km, r.complete_km, r.drift_points
FROM recs r LEFT JOIN home h USING (vehicle_id)
"""
"""The period's counts per vehicle: the days' shares summed (a vehicle's home city: the
one with most of its fixes over the period)."""


def _vehicles(archive: Archive, start: datetime, end: datetime, bounds: Bounds) -> pa.Table:
    """One row per vehicle heard in the period, computed a day at a time so a month of a
    large fleet needs a day's memory, not the month's."""
    carried = pa.table({"vehicle_id": pa.array([], pa.string()),
                        "ts": pa.array([], SCHEMAS["pings"].field("ts").type),
                        "lat": pa.array([], pa.float64()), "lon": pa.array([], pa.float64())})
    parts, cities = [], []
    for day in _days(start, end):
        midnight = datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ)
        params = {"start": max(start, midnight), "end": min(end, midnight + timedelta(days=1)),
                  "gap_s": bounds.gap_s, "drift_kmh": bounds.drift_kmh,
                  "drift_min_km": bounds.drift_min_km}
        con = archive.connect([day], ("pings",))
        try:
            con.register("carried", carried)
            parts.append(con.sql(DAY_SQL, params=params).to_arrow_table())
            window = {"start": params["start"], "end": params["end"]}
            cities.append(con.sql(DAY_CITIES_SQL, params=window).to_arrow_table())
            carried = con.sql(LAST_FIXES_SQL, params=window).to_arrow_table()
        finally:
            con.close()
    con = duckdb.connect()
    try:
        con.register("parts", pa.concat_tables(parts))
        con.register("cities", pa.concat_tables(cities))
        return con.sql(VEHICLES_SQL).to_arrow_table()
    finally:
        con.close()


EVER_QUALIFIED_SQL = """
SELECT DISTINCT vehicle_id FROM pings WHERE ts < $end AND fix_valid AND len(quality) = 0
"""


def compute(archive: Archive, month: str, registered: dict[str, str | None],
            bounds: Bounds = Bounds(), *, kept_days: int = 183,
            registered_at: date | None = None,
            platforms: dict[int, tuple[str, str | None]] | None = None) -> Figures:
    """The month's figures. ``registered``: plate -> carrier (None: none known), the
    register at the month's end; ``platforms``: its lower platforms, access code -> (name,
    province)."""
    start, end = month_bounds(month)
    return compute_period(archive, start, end, month, registered, bounds,
                          kept_days=kept_days, registered_at=registered_at,
                          platforms=platforms)


def compute_period(archive: Archive, start: datetime, end: datetime, label: str,
                   registered: dict[str, str | None], bounds: Bounds = Bounds(), *,
                   kept_days: int = 183, registered_at: date | None = None,
                   platforms: dict[int, tuple[str, str | None]] | None = None) -> Figures:
    """The figures of any period (a month; today so far): the same definitions."""
    vehicles = _vehicles(archive, start, end, bounds)
    con = archive.connect(_days(start, end), ("pings", "alerts", "incidents"))
    params = {"start": start, "end": end}
    history = archive.connect(_days(end - timedelta(days=kept_days), end), ("pings",))
    ever = {row[0] for row in history.execute(EVER_QUALIFIED_SQL, {"end": end}).fetchall()}
    alerts = con.execute(
        "SELECT vehicle_id, incident_id, type, severity, state, ts, lat, lon, province, "
        "city_name FROM alerts WHERE ts >= $start AND ts < $end ORDER BY ts, \"offset\"",
        {"start": start, "end": end}).fetchall()
    before = archive.connect(_days(start - timedelta(days=FATIGUE_CARRIED_DAYS), start),
                             ("alerts",))
    carried = before.execute(
        "SELECT vehicle_id, incident_id, state FROM alerts WHERE type = $type AND ts >= $from "
        "AND ts < $start ORDER BY ts, \"offset\"",
        {"type": FATIGUE, "from": start - timedelta(days=FATIGUE_CARRIED_DAYS),
         "start": start}).fetchall()
    incidents = con.execute(
        "SELECT incident_id, vehicle_id, record FROM (SELECT *, row_number() OVER "
        "(PARTITION BY incident_id ORDER BY received_at DESC, \"offset\" DESC) AS rn "
        "FROM incidents WHERE raised_at >= $start AND raised_at < $end) WHERE rn = 1",
        {"start": start, "end": end}).fetchall()
    figures = Figures(month=label, start=start, end=end, bounds=bounds, vehicles=vehicles,
                      registered_at=registered_at)
    _tables(figures, registered, ever, alerts, incidents, _standing(carried))
    _links_and_requests(figures, archive, platforms or {})
    _daily(figures, con, params)
    return figures


def _standing(alerts: list[tuple]) -> dict[str, str]:
    """Of (vehicle, incident, state) in time order: the incidents still raised at the end,
    incident -> vehicle."""
    standing: dict[str, str] = {}
    for vehicle, incident, state in alerts:
        if state == "raised":
            standing[incident] = vehicle
        else:
            standing.pop(incident, None)
    return standing


def _tables(figures: Figures, registered: dict[str, str | None], ever: set[str],
            alerts: list[tuple], incidents: list[tuple],
            tired_at_start: dict[str, str] | None = None) -> None:
    per_vehicle: dict[str, dict] = {}
    for v in figures.vehicles.to_pylist():
        v["carrier"] = registered.get(v["vehicle_id"]) or v.pop("archived_carrier")
        v.pop("archived_carrier", None)
        per_vehicle[v["vehicle_id"]] = v
    for plate, carrier in registered.items():  # registered, silent all month
        if plate not in per_vehicle:
            per_vehicle[plate] = {"vehicle_id": plate, "records": 0, "qualified": 0,
                                  "city_code": None, "city_name": None, "province": None,
                                  "mileage_km": 0.0, "complete_km": 0.0, "drift_points": 0,
                                  "carrier": carrier}
    overspeeds: dict[str, int] = {}
    fatigue_s: dict[str, float] = {}
    raised: dict[str, tuple[str, datetime]] = {  # tired since before the month: from its start
        incident: (vehicle, figures.start) for incident, vehicle in (tired_at_start or {}).items()}
    for vehicle, incident, type_, severity, state, ts, lat, lon, province, city in alerts:
        if state == "raised":
            v = per_vehicle.get(vehicle, {})
            figures.violations.append({
                "vehicle_id": vehicle, "type": type_, "severity": severity, "ts": ts,
                "lat": lat, "lon": lon, "province": province, "city_name": city,
                "carrier": v.get("carrier")})
            if type_ in OVERSPEED:
                overspeeds[vehicle] = overspeeds.get(vehicle, 0) + 1
            if type_ == FATIGUE:
                raised[incident] = (vehicle, ts)
        elif state == "cleared" and incident in raised:
            vehicle, since = raised.pop(incident)
            fatigue_s[vehicle] = fatigue_s.get(vehicle, 0.0) + (ts - since).total_seconds()
    for vehicle, since in raised.values():  # still standing at the month's end
        fatigue_s[vehicle] = fatigue_s.get(vehicle, 0.0) + (figures.end - since).total_seconds()
    handled: dict[str, list[Handling]] = {}
    for _, vehicle, record in incidents:
        handled.setdefault(vehicle, []).append(_handling(record))

    groups: dict[tuple[str, str], dict] = {}

    def group(level: str, key: str | None, name: str | None,
              province: str | None = None) -> dict:
        k = (level, key or "")
        if k not in groups:
            groups[k] = {"level": level, "key": key or "", "name": name or key or "(none)",
                         "province": province,
                         "registered": 0, "networked": 0, "online": 0, "records": 0,
                         "qualified": 0, "mileage_km": 0.0, "complete_km": 0.0,
                         "drift_vehicles": 0, "overspeeds": 0, "fatigue_s": 0.0,
                         "incidents": 0, "handled": 0, "acked": 0, "ack_s": 0.0,
                         "escalated": 0, "appealed": 0, "appeals_accepted": 0}
        return groups[k]

    group("region", "YRD", "长三角")  # there even in a month without a vehicle
    for plate, v in per_vehicle.items():
        is_registered = plate in registered
        networked = is_registered and plate in ever
        online = networked and v["records"] > 0
        targets = [group("region", "YRD", "长三角")]
        if v["province"]:
            targets.append(group("province", v["province"], v["province"], v["province"]))
        if v["city_code"]:
            targets.append(group("city", v["city_code"], v["city_name"], v["province"]))
        targets.append(group("carrier", v["carrier"], v["carrier"]))
        for g in targets:
            g["registered"] += is_registered
            g["networked"] += networked
            g["online"] += online
            g["records"] += v["records"]
            g["qualified"] += v["qualified"]
            g["mileage_km"] += v["mileage_km"]
            g["complete_km"] += v["complete_km"]
            g["drift_vehicles"] += online and v["drift_points"] > 0
            g["overspeeds"] += overspeeds.get(plate, 0)
            g["fatigue_s"] += fatigue_s.get(plate, 0.0)
            for h in handled.get(plate, []):
                g["incidents"] += 1
                g["handled"] += h.ack_s is not None
                g["acked"] += h.ack_s is not None and h.ack_s >= 0
                g["ack_s"] += max(h.ack_s or 0.0, 0.0)
                g["escalated"] += h.escalated
                g["appealed"] += h.appeal is not None
                g["appeals_accepted"] += h.appeal == "accepted"
    for g in groups.values():
        g |= rates(g)
    order = {"region": 0, "province": 1, "city": 2, "carrier": 3}
    figures.rows = sorted(groups.values(), key=lambda g: (order[g["level"]], g["key"]))


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def rates(g: dict) -> dict:
    return {"networked_rate": _ratio(g["networked"], g["registered"]),
            "online_rate": _ratio(g["online"], g["networked"]),
            "qualified_rate": _ratio(g["qualified"], g["records"]),
            "completeness": _ratio(g["complete_km"], g["mileage_km"]),
            "drift_rate": _ratio(g["drift_vehicles"], g["online"]),
            "overspeeds_per_vehicle": _ratio(g["overspeeds"], g["online"]),
            "fatigue_s_per_vehicle": _ratio(g["fatigue_s"], g["online"]),
            "handling_rate": _ratio(g["handled"], g["incidents"]),
            "ack_mean_s": _ratio(g["ack_s"], g["acked"]),
            "escalation_rate": _ratio(g["escalated"], g["incidents"])}


@dataclass(frozen=True)
class Handling:
    """How an incident was handled: seconds from its raising to the first person's action
    (None: nobody acted), whether it was escalated, its appeal's state."""
    ack_s: float | None
    escalated: bool
    appeal: str | None


def _handling(record: str) -> Handling:
    try:
        r = json.loads(record)
        actions = [a for a in r.get("actions", []) if isinstance(a, dict)]
        first = next((a["at"] for a in actions if a.get("kind") in PERSON_ACTIONS), None)
        ack_s = None
        if first is not None:
            raised = r.get("raised_at") or next(
                (a["at"] for a in actions if a.get("kind") == "raised"), first)
            ack_s = (datetime.fromisoformat(first) - datetime.fromisoformat(raised)
                     ).total_seconds()
        return Handling(ack_s=ack_s, escalated=r.get("level") is not None,
                        appeal=r.get("appeal"))
    except (ValueError, TypeError, KeyError, AttributeError):
        return Handling(ack_s=None, escalated=False, appeal=None)


DAILY_SQL = """
WITH month AS (SELECT * FROM pings WHERE ts >= $start AND ts < $end)
SELECT CAST(timezone('Asia/Shanghai', ts) AS DATE) AS day, province,
       count(DISTINCT vehicle_id) AS vehicles, count(*) AS records,
       count(*) FILTER (WHERE fix_valid AND len(quality) = 0) AS qualified
FROM month WHERE province IS NOT NULL GROUP BY ALL ORDER BY day, province
"""


def _daily(figures: Figures, con: duckdb.DuckDBPyConnection, params: dict) -> None:
    rows = con.execute(DAILY_SQL, {"start": params["start"], "end": params["end"]}).fetchall()
    figures.daily = [{"day": day, "province": province, "vehicles": vehicles,
                      "records": records, "qualified": qualified,
                      "qualified_rate": _ratio(qualified, records)}
                     for day, province, vehicles, records, qualified in rows]


STALE_HEARTBEATS = 3
"""A link state report holds for at most this many of its heartbeats."""


def _links_and_requests(figures: Figures, archive: Archive,
                        platforms: dict[int, tuple[str, str | None]]) -> None:
    """Link uptime, the inspection response rate and the supervision orders handled: the
    region's (its uplink, the national platform's questions), each province's and
    carrier's (their lower platforms' links, and their answers to our inspections), and
    ``figures.links``."""
    start, end = figures.start, figures.end
    con = archive.connect(_days(start - timedelta(days=1), end),
                          ("link_states", "uplink_requests", "uplink_answers",
                           "platform_results"))
    reports = con.execute(
        "SELECT key, link, access_code, name, main_up, reported_at, heartbeat_s "
        "FROM link_states WHERE reported_at >= $from AND reported_at < $end "
        "ORDER BY key, reported_at, \"offset\"",
        {"from": start - timedelta(days=1), "end": end}).fetchall()
    spans: dict[tuple[str, int], list[tuple[datetime, datetime]]] = {}
    names: dict[tuple[str, int], str] = {}
    by_key: dict[str, list[tuple]] = {}
    for row in reports:
        by_key.setdefault(row[0], []).append(row)
    for rows_of_key in by_key.values():
        for i, (_, link, code, name, up, at, heartbeat) in enumerate(rows_of_key):
            names[(link, code)] = name or names.get((link, code), "")
            spans.setdefault((link, code), [])
            if not up:
                continue
            until = at + timedelta(seconds=STALE_HEARTBEATS * heartbeat)
            if i + 1 < len(rows_of_key):
                until = min(until, rows_of_key[i + 1][5])
            lo, hi = max(at, start), min(until, end)
            if hi > lo:
                spans[(link, code)].append((lo, hi))
    period = (end - start).total_seconds()
    for (link, code), parts in sorted(spans.items()):
        up_s = _union_seconds(parts)
        figures.links.append({"link": link, "access_code": code, "name": names[(link, code)],
                              "up_s": up_s, "uptime": _ratio(up_s, period)})
    uplink = [entry for entry in figures.links if entry["link"] == "uplink"]
    asked = con.execute(
        "SELECT request_id, kind, deadline FROM uplink_requests WHERE ts >= $start AND "
        "ts < $end AND kind IN ('inspection', 'supervision')",
        {"start": start, "end": end}).fetchall()
    answers = con.execute(
        "SELECT request_id, min(ts), max(CASE WHEN result = 1 THEN 1 ELSE 0 END) "
        "FROM uplink_answers WHERE requested_at >= $start AND requested_at < $end "
        "GROUP BY request_id", {"start": start, "end": end}).fetchall()
    first = {rid: (at, done) for rid, at, done in answers}
    inspections = [(rid, deadline) for rid, kind, deadline in asked if kind == "inspection"]
    orders = [rid for rid, kind, _ in asked if kind == "supervision"]
    in_time = sum(1 for rid, deadline in inspections if rid in first and (
        deadline is None or first[rid][0] <= deadline))
    done = sum(1 for rid in orders if rid in first and first[rid][1])
    for row in figures.rows:
        row |= {"link_uptime": None, "inspections": 0, "inspections_in_time": 0,
                "inspection_response_rate": None}
        if row["level"] == "region":
            row |= {"link_uptime": uplink[0]["uptime"] if uplink else None,
                    "inspections": len(inspections), "inspections_in_time": in_time,
                    "inspection_response_rate": _ratio(in_time, len(inspections)),
                    "supervisions": len(orders), "supervisions_done": done,
                    "supervision_handling_rate": _ratio(done, len(orders))}
    _lower_platforms(figures, con, platforms)


def _lower_platforms(figures: Figures, con, platforms: dict[int, tuple[str, str | None]]
                     ) -> None:
    """Per province and carrier: the mean uptime of their lower platforms' links, and
    their platforms' answers to our inspections (answered by the deadline / sent in the
    period). A platform's carrier is its name; its province, its configuration's."""
    start, end = figures.start, figures.end
    for entry in figures.links:
        if entry["link"] == "platform" and entry["access_code"] in platforms:
            entry["name"] = platforms[entry["access_code"]][0] or entry["name"]
    steps = con.execute(
        "SELECT request_id, platform, status, late, ts FROM platform_results "
        "WHERE kind = 'inspection' AND ts >= $start AND ts < $until",
        {"start": start, "until": end + timedelta(days=1)}).fetchall()
    sent = {(rid, code) for rid, code, status, _, ts in steps if status == "sent" and ts < end}
    answered = {(rid, code) for rid, code, status, late, _ in steps
                if status == "answered" and not late}
    uptimes: dict[tuple[str, str], list[float]] = {}
    asked: dict[tuple[str, str], list[int]] = {}

    def places(code: int) -> list[tuple[str, str]]:
        name, province = platforms.get(code, (None, None))
        out = [("carrier", name)] if name else []
        return out + ([("province", province)] if province else [])

    for entry in figures.links:
        if entry["link"] == "platform" and entry["uptime"] is not None:
            for place in places(entry["access_code"]):
                uptimes.setdefault(place, []).append(entry["uptime"])
    for rid, code in sent:
        for place in places(code):
            tally = asked.setdefault(place, [0, 0])
            tally[0] += 1
            tally[1] += (rid, code) in answered
    rows = {(r["level"], r["key"]): r for r in figures.rows}
    for place in sorted(set(uptimes) | set(asked)):
        row = rows.get(place)
        if row is None:  # a platform's carrier or province without a vehicle this month
            row = rows[place] = _empty_row(figures, *place)
        if place in uptimes:
            row["link_uptime"] = sum(uptimes[place]) / len(uptimes[place])
        if place in asked:
            n, ok = asked[place]
            row |= {"inspections": n, "inspections_in_time": ok,
                    "inspection_response_rate": _ratio(ok, n)}
    order = {"region": 0, "province": 1, "city": 2, "carrier": 3}
    figures.rows = sorted(rows.values(), key=lambda g: (order[g["level"]], g["key"]))


def _empty_row(figures: Figures, level: str, key: str) -> dict:
    template = next(r for r in figures.rows if r["level"] == "region")
    row = {name: (0 if isinstance(value, (int, float)) and not isinstance(value, bool)
                  and not name.endswith(("rate", "completeness", "uptime", "per_vehicle"))
                  else None) for name, value in template.items()}
    row |= {"level": level, "key": key, "name": key, "province": key if level == "province"
            else None, "mileage_km": 0.0, "complete_km": 0.0, "fatigue_s": 0.0}
    for name in ("link_uptime", "inspection_response_rate"):
        row[name] = None
    row |= rates(row)
    return row


def _union_seconds(parts: list[tuple[datetime, datetime]]) -> float:
    total, reach = 0.0, None
    for lo, hi in sorted(parts):
        if reach is not None and lo < reach:
            lo = reach
        if hi > lo:
            total += (hi - lo).total_seconds()
            reach = hi if reach is None else max(reach, hi)
    return total
