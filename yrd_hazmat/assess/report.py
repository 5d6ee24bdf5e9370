"""The monthly assessment as the regional joint meeting reads it: three CSV files, one
self-contained HTML page (inline CSS and SVG, no script, no external file) and its PDF.

What a selection shows (the same for the CSV files and the page):

- none: the region, every province, city and carrier, every violation, every day;
- ``provinces``: the region's headline (for comparison) and those provinces' own rows,
  their cities (a city is in the province of its vehicles' fixes), their violations (the
  province where each happened) and their days. The carrier rows are per carrier over the
  whole region, whatever province its vehicles are in: they are shown only in the region's
  view, never in a province's;
- ``carrier``: that carrier's row and its violations only (the daily figures and the
  province, city and region rows are not per carrier: left out). With ``provinces`` too:
  its violations in those provinces.
"""

from __future__ import annotations

import csv
import html as _html
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from importlib.resources import files
from pathlib import Path
from typing import Iterable

from ..core.timeutil import CHINA_TZ
from ..spreadsheet import cell
from ..names import PROVINCES, TYPES
from .figures import Figures

log = logging.getLogger(__name__)

COUNTS = ("registered", "networked", "online", "records", "qualified", "mileage_km",
          "complete_km", "drift_vehicles", "overspeeds", "fatigue_s", "incidents", "handled",
          "escalated", "appealed", "appeals_accepted")
RATES = ("networked_rate", "online_rate", "qualified_rate", "completeness", "drift_rate",
         "handling_rate", "escalation_rate")
PER_VEHICLE = ("overspeeds_per_vehicle", "fatigue_s_per_vehicle")
FIGURE_COLUMNS = ("level", "key", "name", *COUNTS, "networked_rate", "online_rate",
                  "qualified_rate", "completeness", "drift_rate", "overspeeds_per_vehicle",
                  "fatigue_s_per_vehicle", "handling_rate", "ack_mean_s", "escalation_rate",
                  "link_uptime", "inspections",
                  "inspections_in_time", "inspection_response_rate", "supervisions",
                  "supervisions_done", "supervision_handling_rate")
CHAIN_RATES = ("link_uptime", "inspection_response_rate", "supervision_handling_rate")
"""The region's alone (the JT/T 809 chain): empty on other rows."""
DAILY_COLUMNS = ("day", "province", "vehicles", "records", "qualified", "qualified_rate")
VIOLATION_COLUMNS = ("vehicle_id", "type", "severity", "ts", "lat", "lon", "province",
                     "city_name", "carrier")

PROVINCE_ORDER = ("SH", "JS", "ZJ", "AH")
CITY_PREFIX = {"31": "SH", "32": "JS", "33": "ZJ", "34": "AH"}

OTHER_COLOURS = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd")


# --- the selection ----------------------------------------------------------------------
@dataclass
class View:
    figures: Figures
    provinces: tuple[str, ...] | None
    carrier: str | None
    region: dict | None
    rows: list[dict]
    daily: list[dict]
    violations: list[dict]

    def level(self, level: str) -> list[dict]:
        return [r for r in self.rows if r["level"] == level]


def city_provinces(figures: Figures) -> dict[str, str]:
    """city code -> province, from the vehicles the city's row counts (else the code's first
    two digits)."""
    out: dict[str, str] = {}
    for v in figures.vehicles.select(["city_code", "province"]).to_pylist():
        if v["city_code"] and v["province"]:
            out.setdefault(v["city_code"], v["province"])
    return out


def select(figures: Figures, provinces: Iterable[str] | None = None,
           carrier: str | None = None) -> View:
    chosen = tuple(sorted({p.upper() for p in provinces}, key=_province_rank)) \
        if provinces else None
    region = next((r for r in figures.rows if r["level"] == "region"), None)
    rows = list(figures.rows)
    daily = list(figures.daily)
    violations = list(figures.violations)
    if chosen:
        cities = city_provinces(figures)
        rows = [r for r in rows
                if r["level"] == "region"
                or (r["level"] == "province" and r["key"] in chosen)
                or (r["level"] == "city"
                    and cities.get(r["key"], CITY_PREFIX.get(r["key"][:2])) in chosen)]
        daily = [d for d in daily if d["province"] in chosen]
        violations = [v for v in violations if v["province"] in chosen]
    if carrier is not None:
        rows = [r for r in figures.rows if r["level"] == "carrier" and r["key"] == carrier]
        daily = []
        violations = [v for v in violations if (v["carrier"] or "") == carrier]
        region = None
    return View(figures, chosen, carrier, region, rows, daily, violations)


def _province_rank(p: str) -> tuple[int, str]:
    return (PROVINCE_ORDER.index(p) if p in PROVINCE_ORDER else len(PROVINCE_ORDER), p)


# --- CSV --------------------------------------------------------------------------------
def _num(value, places: int) -> str:
    return "" if value is None else f"{value:.{places}f}"


def _iso(ts: datetime | None) -> str:
    if ts is None:
        return ""
    ts = ts.astimezone(CHINA_TZ) if ts.tzinfo else ts
    return ts.isoformat(timespec="milliseconds" if ts.microsecond else "seconds")


def figure_line(row: dict) -> list[str]:
    out = []
    for column in FIGURE_COLUMNS:
        value = row.get(column)
        if column in ("level", "key", "name"):
            out.append(cell(str(value or "")))
        elif column in RATES or column in CHAIN_RATES or column == "overspeeds_per_vehicle":
            out.append(_num(value, 4))  # fractions (and events per vehicle), 4 decimals
        elif value is None:
            out.append("")
        elif column in ("mileage_km", "complete_km"):
            out.append(_num(value, 3))
        elif column in ("fatigue_s", "fatigue_s_per_vehicle"):
            out.append(_num(value, 1))
        else:
            out.append(str(int(value)))
    return out


def write_csv(figures: Figures, directory: str | os.PathLike, *,
              provinces: Iterable[str] | None = None,
              carrier: str | None = None) -> list[Path]:
    """figures.csv (one row per level and key: every count and rate, rates as fractions
    with 4 decimals, km with 3, seconds with 1; empty: no denominator), daily.csv and
    violations.csv in ``directory``; UTF-8 with a BOM (a spreadsheet opens the Chinese
    right), text cells made safe for a spreadsheet."""
    view = select(figures, provinces, carrier)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def table(name: str, header: Iterable[str], lines: Iterable[list[str]]) -> None:
        path = out / name
        with open(path, "w", encoding="utf-8-sig", newline="") as f:
            w = csv.writer(f, lineterminator="\r\n")
            w.writerow(header)
            w.writerows(lines)
        written.append(path)

    table("figures.csv", FIGURE_COLUMNS,
          (figure_line(r) for r in ([view.region] if view.region and view.region not in
                                    view.rows else []) + view.rows))
    table("daily.csv", DAILY_COLUMNS,
          ([d["day"].isoformat(), cell(d["province"] or ""), str(d["vehicles"]),
            str(d["records"]), str(d["qualified"]), _num(d["qualified_rate"], 4)]
           for d in view.daily))
    table("violations.csv", VIOLATION_COLUMNS,
          ([cell(v["vehicle_id"] or ""), cell(v["type"] or ""), cell(v["severity"] or ""),
            cell(_iso(v["ts"])), _num(v["lat"], 6), _num(v["lon"], 6),
            cell(v["province"] or ""), cell(v["city_name"] or ""), cell(v["carrier"] or "")]
           for v in view.violations))
    return written


# --- formatting -------------------------------------------------------------------------
def e(text) -> str:
    return _html.escape("" if text is None else str(text), quote=True)


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def count(value) -> str:
    return "—" if value is None else f"{int(value):,d}"


def kilometres(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


def hmm(seconds: float | None) -> str:
    """Seconds as h:mm, to the nearest minute."""
    if seconds is None:
        return "—"
    minutes = int(round(seconds / 60))
    return f"{minutes // 60}:{minutes % 60:02d}"


def per_vehicle(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def province_label(key: str) -> str:
    zh, en = PROVINCES.get(key, (key, ""))
    return f"{zh} {key}" if en else key


def type_label(type_: str) -> str:
    return TYPES.get(type_, (type_, ""))[0]


def type_colours(types: Iterable[str]) -> dict[str, str]:
    out, others = {}, iter(OTHER_COLOURS * 10)
    for t in sorted(set(types)):
        out[t] = TYPES[t][1] if t in TYPES else next(others, "#000000")
    return out


# --- the page ---------------------------------------------------------------------------
CSS = """
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei",
       "PingFang SC", sans-serif; color: #1d2733; margin: 0 auto; padding: 20px 28px;
       max-width: 1320px; font-size: 13px; line-height: 1.45; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; color: #0b3a66; }
h2 { font-size: 17px; margin: 26px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #0b3a66;
     color: #0b3a66; break-after: avoid; }
h3 { font-size: 14px; margin: 14px 0 6px; }
.meta { color: #55606e; margin: 2px 0; }
.scope { display: inline-block; background: #e8f0f8; border-radius: 3px; padding: 1px 8px; }
table { border-collapse: collapse; width: 100%; font-size: 11.5px; }
th, td { border: 1px solid #ccd4dd; padding: 3px 5px; }
th { background: #eef2f6; font-weight: 600; text-align: center; vertical-align: bottom;
     white-space: nowrap; }
th small { display: block; font-weight: 400; color: #55606e; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.rate { background: #f6f9fc; font-weight: 600; }
tr.total td { font-weight: 700; background: #fdf6e3; }
tbody tr:nth-child(even) td:not(.rate) { background: #fafbfc; }
.defs td { vertical-align: top; }
.defs td:first-child { white-space: nowrap; font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(5, 1fr); gap: 8px; }
.card { border: 1px solid #ccd4dd; border-radius: 4px; padding: 8px 10px; break-inside: avoid; }
.card .v { font-size: 22px; font-weight: 700; color: #0b3a66; }
.card .l { font-size: 12px; }
.card .s { font-size: 11px; color: #55606e; }
.charts { display: flex; flex-wrap: wrap; gap: 10px; }
.charts figure { margin: 0; break-inside: avoid; }
figcaption { font-size: 12px; font-weight: 600; margin-bottom: 2px; }
svg text { font-family: inherit; }
.daily { display: grid; grid-template-columns: 110px 1fr 1fr; gap: 4px 12px; align-items: center; }
.daily .p { font-weight: 700; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; margin: 6px 0; }
.legend span.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%;
                   margin-right: 4px; vertical-align: -1px; }
.mapbox { display: flex; gap: 16px; align-items: flex-start; }
.mapbox svg { flex: none; }
table.bytype { width: auto; }
table.bytype td:first-child { white-space: nowrap; }
.note { color: #55606e; font-size: 11.5px; }
.empty { color: #8a939e; font-style: italic; }
section { break-inside: auto; }
@page { size: A4 landscape; margin: 10mm; }
@media print { body { padding: 0; max-width: none; font-size: 11px; }
  h2 { margin-top: 16px; } table { font-size: 9px; } th, td { padding: 2px 3px; }
  th small { font-size: 8px; } .cards { grid-template-columns: repeat(5, 1fr); }
  .card .v { font-size: 18px; } .daily svg { width: 360px; height: 110px; }
  #map, #daily { break-before: page; } #violation-map { height: 165mm; width: auto; } }
"""

DEFINITIONS = (
    ("registered", "登记车辆", "车辆登记库（归档中月末快照）中的车辆。",
     "vehicles of the vehicle register (the archive's snapshot at the month's end)."),
    ("networked_rate", "入网率", "月末前归档中（保留 6 个月）有至少一条合格数据的登记车辆 ÷ 登记车辆。",
     "registered vehicles with at least one qualified record in the archive up to the "
     "month's end (6 months kept) / registered."),
    ("online_rate", "上线率", "本月有至少一条数据的入网车辆 ÷ 入网车辆。",
     "networked vehicles with at least one record in the month / networked."),
    ("qualified_rate", "数据合格率", "定位有效且无数据质量问题（位置、时间、速度、方向、高程、车牌…）的记录 ÷ 本月全部记录。",
     "records with a valid fix and no data-quality finding (position, time, speed, "
     "direction, altitude, plate...) / all records of the month."),
    ("completeness", "轨迹完整率", "相邻定位点间隔不超过 {gap} 的轨迹段里程 ÷ 全部轨迹段里程（漂移段不计）。",
     "length of the segments whose fixes are at most {gap} apart / length of all segments "
     "(great-circle; drift segments left out of both)."),
    ("drift_rate", "漂移率", "有漂移点（与上一点之间速度超过 {kmh} 且距离不少于 {km}）的上线车辆 ÷ 上线车辆。",
     "online vehicles with a drift point (reached from the fix before at more than {kmh} "
     "over at least {km}) / online."),
    ("overspeeds_per_vehicle", "车均超速次数", "本月超速与区域超速报警（SPEEDING、ZONE_SPEEDING）÷ 上线车辆。",
     "SPEEDING and ZONE_SPEEDING alerts raised in the month / online vehicles."),
    ("fatigue_s_per_vehicle", "车均疲劳驾驶时长", "疲劳驾驶报警持续时间（产生至解除，或至月末）÷ 上线车辆，以 时:分 表示。",
     "time FATIGUE_DRIVING alerts stood (raised to cleared, or to the month's end) / "
     "online vehicles, as h:mm."),
    ("handling_rate", "报警处置率", "本月产生且有人员处置（确认、指派、调度、关闭、企业说明…）的事件 ÷ 本月产生的事件。",
     "incidents raised in the month on which a person acted (ack, assign, dispatch, "
     "close, a carrier's explanation...) / incidents raised in the month."),
    ("ack_mean_s", "平均响应时间", "事件产生至首次人员处置的平均时长（时:分），仅计有人处置的事件。",
     "mean time from an incident's raising to the first person's action (h:mm), over the "
     "incidents acted on."),
    ("escalation_rate", "超时升级率", "因未按时确认或办结而升级至省级或区域的事件 ÷ 本月产生的事件。",
     "incidents escalated to the province or the region for a missed deadline / incidents "
     "raised in the month."),
)

COLUMNS = (  # key, Chinese, English, kind
    ("registered", "登记", "registered", "count"),
    ("networked", "入网", "networked", "count"),
    ("networked_rate", "入网率", "networked", "rate"),
    ("online", "上线", "online", "count"),
    ("online_rate", "上线率", "online", "rate"),
    ("records", "记录", "records", "count"),
    ("qualified", "合格记录", "qualified", "count"),
    ("qualified_rate", "合格率", "qualified", "rate"),
    ("mileage_km", "里程", "km", "km"),
    ("complete_km", "完整里程", "complete km", "km"),
    ("completeness", "完整率", "completeness", "rate"),
    ("drift_vehicles", "漂移车辆", "drifting", "count"),
    ("drift_rate", "漂移率", "drift", "rate"),
    ("overspeeds", "超速次数", "overspeeds", "count"),
    ("overspeeds_per_vehicle", "车均超速", "per vehicle", "per"),
    ("fatigue_s", "疲劳时长", "fatigue h:mm", "hmm"),
    ("fatigue_s_per_vehicle", "车均疲劳", "per vehicle h:mm", "hmm"),
    ("incidents", "事件", "incidents", "count"),
    ("handled", "已处置", "handled", "count"),
    ("handling_rate", "处置率", "handling", "rate"),
    ("ack_mean_s", "平均响应", "mean ack h:mm", "hmm"),
    ("escalated", "超时升级", "escalated", "count"),
    ("appealed", "申诉", "appeals", "count"),
    ("link_uptime", "平台连通率", "link uptime", "rate"),
    ("inspections", "查岗", "inspections", "count"),
    ("inspection_response_rate", "查岗响应率", "inspection response", "rate"),
)
FORMATS = {"count": count, "rate": pct, "km": kilometres, "hmm": hmm, "per": per_vehicle}
LEVELS = (("province", "省级", "Provinces"), ("city", "市级", "Cities"),
          ("carrier", "运输企业", "Carriers"))


def html(figures: Figures, *, provinces: Iterable[str] | None = None,
         carrier: str | None = None, generated_at: str | None = None) -> str:
    """The month's report page (see the module's docstring for what a selection shows).
    Deterministic: the same figures and arguments give the same page."""
    view = select(figures, provinces, carrier)
    title = f"长三角危险货物运输车辆监管月度考核 / YRD hazmat monthly assessment, {figures.month}"
    parts = ["<!DOCTYPE html>", '<html lang="zh-CN"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{e(title)}</h1>", _meta(view, generated_at), _definitions(figures)]
    parts.append(_headline(view))
    parts.append(_tables(view))
    if view.carrier is None:
        parts.append(_province_charts(view))
        parts.append(_daily_charts(view))
    parts.append(_map(view))
    parts.append(_chain(figures, view))
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p) + "\n"


def _scope(view: View) -> str:
    if view.carrier is not None:
        scope = f"运输企业 carrier: {view.carrier or '(none)'}"
        if view.provinces:
            scope += " · 违法地点 violations in " + ", ".join(view.provinces)
        return scope
    if view.provinces:
        return "省份 provinces: " + ", ".join(province_label(p) for p in view.provinces)
    return "全区域 the whole region (SH, JS, ZJ, AH)"


def _meta(view: View, generated_at: str | None) -> str:
    f = view.figures
    last = (f.end.date().toordinal() - 1)
    period = f"{f.start.date().isoformat()} — {date.fromordinal(last).isoformat()} (China time)"
    register = (f"登记库快照 register snapshot of {f.registered_at.isoformat()}"
                if f.registered_at else
                "<strong>无登记库快照 no register snapshot: registered = 0, the networked "
                "rate is empty</strong>")
    lines = [f'<p class="meta"><span class="scope">{e(_scope(view))}</span></p>',
             f'<p class="meta">考核期 period: {e(period)} · '
             + (register if not f.registered_at else e(register)) + "</p>"]
    if generated_at:
        lines.append(f'<p class="meta">生成时间 generated at: {e(generated_at)}</p>')
    return "\n".join(lines)


def _definitions(figures: Figures) -> str:
    b = figures.bounds
    values = {"gap": f"{b.gap_s:g} s", "kmh": f"{b.drift_kmh:g} km/h",
              "km": f"{b.drift_min_km:g} km"}
    rows = "".join(
        f"<tr><td>{e(zh)}<br><small>{e(key)}</small></td><td>{e(z.format(**values))}</td>"
        f"<td>{e(en.format(**values))}</td></tr>"
        for key, zh, z, en in DEFINITIONS)
    return (
        '<section id="definitions"><h2>口径与阈值 Definitions and bounds</h2>'
        '<table class="defs"><thead><tr><th>指标 figure</th><th>定义</th><th>definition</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
        f'<p class="note">阈值 bounds: 轨迹断点 gap &gt; {e(values["gap"])} '
        f'(YRD_ASSESS_GAP_S) · 漂移 drift &gt; {e(values["kmh"])} (YRD_ASSESS_DRIFT_KMH) '
        f'over ≥ {e(values["km"])} (YRD_ASSESS_DRIFT_MIN_KM). '
        "车辆按本月多数定位点所在城市（省）归属，按登记库所列企业归属；无定位的车辆无城市。 "
        "A vehicle belongs to the city (and province) where most of its fixes of the month "
        "were and to the carrier the register names (else the one its pings carried); a "
        "vehicle without a fix in the month has no city. 依据 交运发〔2016〕160号 及各省规定。"
        "</p></section>")


HEADLINE = (  # label zh, label en, value, sub-line
    ("登记车辆", "registered", lambda r: count(r["registered"]), lambda r: ""),
    ("入网率", "networked rate", lambda r: pct(r["networked_rate"]),
     lambda r: f'{count(r["networked"])} / {count(r["registered"])}'),
    ("上线率", "online rate", lambda r: pct(r["online_rate"]),
     lambda r: f'{count(r["online"])} / {count(r["networked"])}'),
    ("数据合格率", "qualified rate", lambda r: pct(r["qualified_rate"]),
     lambda r: f'{count(r["qualified"])} / {count(r["records"])} records'),
    ("轨迹完整率", "track completeness", lambda r: pct(r["completeness"]),
     lambda r: f'{kilometres(r["complete_km"])} / {kilometres(r["mileage_km"])} km'),
    ("漂移率", "drift rate", lambda r: pct(r["drift_rate"]),
     lambda r: f'{count(r["drift_vehicles"])} / {count(r["online"])} online'),
    ("车均超速次数", "overspeeds per vehicle", lambda r: per_vehicle(r["overspeeds_per_vehicle"]),
     lambda r: f'{count(r["overspeeds"])} events'),
    ("车均疲劳驾驶", "fatigue per vehicle (h:mm)", lambda r: hmm(r["fatigue_s_per_vehicle"]),
     lambda r: f'{hmm(r["fatigue_s"])} in all'),
    ("报警处置率", "alarm handling rate", lambda r: pct(r["handling_rate"]),
     lambda r: f'{count(r["handled"])} / {count(r["incidents"])} incidents'),
    ("行驶里程", "mileage (km)", lambda r: kilometres(r["mileage_km"]),
     lambda r: f'{count(r["records"])} records'),
)


def _card(zh: str, en: str, value: str, sub: str) -> str:
    return (f'<div class="card"><div class="l">{e(zh)} <small>{e(en)}</small></div>'
            f'<div class="v">{e(value)}</div><div class="s">{e(sub)}</div></div>')


def _cards(row: dict) -> str:
    return '<div class="cards">' + "".join(
        _card(zh, en, value(row), sub(row)) for zh, en, value, sub in HEADLINE) + "</div>"


def _chain(figures: Figures, view: View) -> str:
    """The JT/T 809 chain: the link uptime, the national platform's inspections and
    supervision orders (the region's page only)."""
    if view.provinces or view.carrier is not None or view.region is None:
        return ""
    r = view.region
    out = ['<section id="chain"><h2>上级平台链路与查岗 The chain to the national platform</h2>',
           '<div class="cards">']
    for zh, en, value, sub in (
            ("平台连通率", "link uptime", pct(r.get("link_uptime")), "the uplink's main link"),
            ("查岗响应率", "inspection response", pct(r.get("inspection_response_rate")),
             f'{count(r.get("inspections_in_time", 0))} / {count(r.get("inspections", 0))} '
             "in time"),
            ("督办处理率", "supervision orders done", pct(r.get("supervision_handling_rate")),
             f'{count(r.get("supervisions_done", 0))} / {count(r.get("supervisions", 0))}')):
        out.append(_card(zh, en, value, sub))
    out.append("</div>")
    links = getattr(figures, "links", [])
    if links:
        out.append('<table><thead><tr><th>链路<small>link</small></th><th>接入码<small>'
                   'access code</small></th><th>名称<small>name</small></th><th>在线时长'
                   '<small>up (h:mm)</small></th><th>连通率<small>uptime</small></th></tr>'
                   '</thead><tbody>')
        for link in links:
            kind = "上级平台 uplink" if link["link"] == "uplink" else "下级平台 platform"
            out.append(f'<tr><td>{e(kind)}</td><td>{e(str(link["access_code"]))}</td>'
                       f'<td>{e(link["name"] or "")}</td><td>{e(hmm(link["up_s"]))}</td>'
                       f'<td>{e(pct(link["uptime"]))}</td></tr>')
        out.append("</tbody></table>")
    out.append("</section>")
    return "\n".join(out)


def _headline(view: View) -> str:
    out = ['<section id="headline">']
    if view.carrier is not None:
        out.append(f"<h2>运输企业主要指标 The carrier's figures: {e(view.carrier or '(none)')}</h2>")
        rows = view.level("carrier")
        out.append(_cards(rows[0]) if rows else
                   '<p class="empty">本月无该企业数据 no figures for this carrier this month.</p>')
    else:
        out.append("<h2>全区域主要指标 The region's figures"
                   + (" (供比较 for comparison)" if view.provinces else "") + "</h2>")
        out.append(_cards(view.region) if view.region else
                   '<p class="empty">本月无数据 no figures this month.</p>')
        for p in view.provinces or ():
            row = next((r for r in view.level("province") if r["key"] == p), None)
            out.append(f"<h3>{e(province_label(p))}</h3>")
            out.append(_cards(row) if row else
                       '<p class="empty">本月无该省数据 no figures for this province.</p>')
    out.append("</section>")
    return "\n".join(out)


def _table(rows: list[dict], level: str, total: dict | None) -> str:
    head = ('<th>名称<small>name</small></th><th>代码<small>key</small></th>'
            + "".join(f"<th>{e(zh)}<small>{e(en)}</small></th>" for _, zh, en, _ in COLUMNS))

    def line(r: dict, cls: str = "") -> str:
        name = province_label(r["key"]) if r["level"] == "province" else r["name"]
        if r["level"] == "region":
            name = "长三角 region"
        cells = "".join(
            f'<td class="n{" rate" if kind == "rate" else ""}">{e(FORMATS[kind](r.get(k)))}</td>'
            for k, _, _, kind in COLUMNS)
        return (f'<tr class="{cls}" data-level="{e(r["level"])}" data-key="{e(r["key"])}">'
                f"<td>{e(name)}</td><td>{e(r['key'])}</td>{cells}</tr>")

    body = "".join(line(r) for r in rows)
    if total is not None:
        body += line(total, "total")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _tables(view: View) -> str:
    out = ['<section id="tables">']
    for level, zh, en in LEVELS:
        if level == "carrier" and view.provinces and view.carrier is None:
            out.append(f"<h2>{e(zh)} {e(en)}</h2><p class=\"note\">运输企业的指标覆盖全区域，"
                       "仅在全区域报告中列出。 The carriers' figures are over the whole region, "
                       "whatever province their vehicles are in: shown in the region's report "
                       "only.</p>")
            continue
        if view.carrier is not None and level != "carrier":
            continue
        rows = view.level(level)
        if level == "province":
            rows = sorted(rows, key=lambda r: _province_rank(r["key"]))
        elif level == "city":
            rows = sorted(rows, key=lambda r: r["key"])
        else:
            rows = sorted(rows, key=lambda r: (r["key"] == "", r["key"]))
        total = view.region if level == "province" and not view.provinces else None
        out.append(f"<h2>{e(zh)} {e(en)}</h2>")
        out.append(_table(rows, level, total) if rows else
                   '<p class="empty">无 none.</p>')
    out.append("</section>")
    return "\n".join(out)


# --- SVG charts -------------------------------------------------------------------------
def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def _bar_chart(title: str, bars: list[tuple[str, float | None]], colour: str) -> str:
    w, h, left, top, bottom = 250, 180, 36, 18, 34
    plot_h = h - top - bottom
    slot = (w - left - 8) / max(len(bars), 1)
    out = [f'<figure><figcaption>{e(title)}</figcaption>'
           f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'viewBox="0 0 {w} {h}" role="img" aria-label="{e(title)}">']
    for frac in (0, 0.25, 0.5, 0.75, 1):
        y = top + plot_h * (1 - frac)
        out.append(f'<line x1="{left}" y1="{_f(y)}" x2="{w - 8}" y2="{_f(y)}" '
                   f'stroke="{"#8a939e" if frac == 0 else "#e3e8ee"}" stroke-width="1"/>')
        out.append(f'<text x="{left - 4}" y="{_f(y + 3.5)}" font-size="9" text-anchor="end" '
                   f'fill="#55606e">{int(frac * 100)}%</text>')
    for i, (label, value) in enumerate(bars):
        cx = left + slot * (i + 0.5)
        bw = min(slot * 0.6, 40)
        if value is not None:
            bh = plot_h * max(0.0, min(value, 1.0))
            out.append(f'<rect x="{_f(cx - bw / 2)}" y="{_f(top + plot_h - bh)}" '
                       f'width="{_f(bw)}" height="{_f(bh)}" fill="{colour}"/>')
            out.append(f'<text x="{_f(cx)}" y="{_f(top + plot_h - bh - 3)}" font-size="9.5" '
                       f'text-anchor="middle">{e(pct(value))}</text>')
        else:
            out.append(f'<text x="{_f(cx)}" y="{_f(top + plot_h - 3)}" font-size="9.5" '
                       f'text-anchor="middle" fill="#8a939e">—</text>')
        out.append(f'<text x="{_f(cx)}" y="{h - bottom + 14}" font-size="10.5" '
                   f'text-anchor="middle">{e(label)}</text>')
    out.append("</svg></figure>")
    return "".join(out)


def _province_charts(view: View) -> str:
    rows = sorted(view.level("province"), key=lambda r: _province_rank(r["key"]))
    if not rows:
        return ""
    charts = (("online_rate", "上线率 online rate", "#1f77b4"),
              ("qualified_rate", "数据合格率 qualified rate", "#2ca02c"),
              ("completeness", "轨迹完整率 track completeness", "#9467bd"),
              ("drift_rate", "漂移率 drift rate", "#d62728"))
    bars = "".join(
        _bar_chart(title, [(province_label(r["key"]), r[key]) for r in rows], colour)
        for key, title, colour in charts)
    return ('<section id="province-charts"><h2>各省主要指标 The provinces\' main rates</h2>'
            f'<div class="charts">{bars}</div></section>')


def _nice(value: float) -> float:
    if value <= 0:
        return 1
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000,
                 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000):
        if value <= step:
            return step
    return value


def _line_chart(title: str, days: list[date], values: list[float | None], top_value: float,
                colour: str, label, aria: str) -> str:
    w, h, left, top, bottom, right = 430, 130, 44, 10, 22, 10
    pw, ph = w - left - right, h - top - bottom
    n = len(days)

    def x(i: int) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        return top + ph * (1 - v / top_value)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'viewBox="0 0 {w} {h}" role="img" aria-label="{e(aria)}">']
    for frac in (0, 0.5, 1):
        yy = top + ph * (1 - frac)
        out.append(f'<line x1="{left}" y1="{_f(yy)}" x2="{w - right}" y2="{_f(yy)}" '
                   f'stroke="{"#8a939e" if frac == 0 else "#e3e8ee"}"/>')
        out.append(f'<text x="{left - 4}" y="{_f(yy + 3.5)}" font-size="9" text-anchor="end" '
                   f'fill="#55606e">{e(label(top_value * frac))}</text>')
    for i, d in enumerate(days):
        if d.day == 1 or d.day % 5 == 0:
            out.append(f'<text x="{_f(x(i))}" y="{h - 8}" font-size="9" text-anchor="middle" '
                       f'fill="#55606e">{d.day}</text>')
    path, pen = [], "M"
    for i, v in enumerate(values):
        if v is None:
            pen = "M"
            continue
        path.append(f"{pen}{_f(x(i))},{_f(y(v))}")
        pen = "L"
    if path:
        out.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" '
                   f'stroke-width="1.6"/>')
    for i, v in enumerate(values):
        if v is not None and (v > 0 or top_value == 1):
            out.append(f'<circle cx="{_f(x(i))}" cy="{_f(y(v))}" r="2.2" fill="{colour}">'
                       f"<title>{e(days[i].isoformat())}: {e(label(v))}</title></circle>")
    out.append("</svg>")
    return f'<div><div class="note">{e(title)}</div>{"".join(out)}</div>'


def _vehicles(v: float) -> str:
    return f"{v:,.0f}" if v == int(v) else f"{v:,.1f}"


def _daily_charts(view: View) -> str:
    f = view.figures
    n_days = (f.end.date() - f.start.date()).days
    days = [date.fromordinal(f.start.date().toordinal() + i) for i in range(n_days)]
    by_province: dict[str, dict[date, dict]] = {}
    for d in view.daily:
        by_province.setdefault(d["province"], {})[d["day"]] = d
    if not by_province:
        return ('<section id="daily"><h2>每日趋势 Daily trend</h2>'
                '<p class="empty">本月无每日数据 no daily figures.</p></section>')
    peak = max(d["vehicles"] for p in by_province.values() for d in p.values())
    top = _nice(peak)
    out = ['<section id="daily"><h2>每日趋势 Daily trend</h2>',
           '<p class="note">按记录自身位置所在省份统计（无定位的记录不计）；同一纵轴便于各省比较。 '
           "Per province of each record's own position (records without a fix in none); "
           "one scale for every province.</p>", '<div class="daily">']
    for p in sorted(by_province, key=_province_rank):
        per_day = by_province[p]
        vehicles = [float(per_day[d]["vehicles"]) if d in per_day else 0.0 for d in days]
        rate = [per_day[d]["qualified_rate"] if d in per_day else None for d in days]
        out.append(f'<div class="p">{e(province_label(p))}</div>')
        out.append(_line_chart("在线车辆数 vehicles heard per day", days, vehicles, top,
                               "#1f77b4", _vehicles, f"{p} vehicles per day"))
        out.append(_line_chart("数据合格率 qualified rate per day", days, rate, 1.0,
                               "#2ca02c", lambda v: f"{v * 100:.0f}%",
                               f"{p} qualified rate per day"))
    out.append("</div></section>")
    return "\n".join(out)


# --- the map ----------------------------------------------------------------------------
MAP_W = 760
SIMPLIFY_DEG = 0.01  # ~1 km: a province's outline at this scale loses nothing seen


def _outlines() -> list[tuple[str, object]]:
    from shapely.geometry import shape

    text = files("yrd_hazmat.data").joinpath("provinces.geojson").read_text(encoding="utf-8")
    return [(f["properties"]["abbr"], shape(f["geometry"]).simplify(SIMPLIFY_DEG,
                                                                    preserve_topology=True))
            for f in json.loads(text)["features"]]


def _map(view: View) -> str:
    import math

    from shapely.geometry import MultiPolygon, Polygon

    outlines = _outlines()
    minx = min(g.bounds[0] for _, g in outlines)
    miny = min(g.bounds[1] for _, g in outlines)
    maxx = max(g.bounds[2] for _, g in outlines)
    maxy = max(g.bounds[3] for _, g in outlines)
    kx = math.cos(math.radians((miny + maxy) / 2))  # equirectangular at the mid latitude
    pad = 12
    scale = (MAP_W - 2 * pad) / ((maxx - minx) * kx)
    height = int(round((maxy - miny) * scale + 2 * pad))

    def px(lon: float, lat: float) -> tuple[str, str]:
        return _f(pad + (lon - minx) * kx * scale), _f(pad + (maxy - lat) * scale)

    def ring(coords) -> str:
        pts = [px(lon, lat) for lon, lat in coords]
        return "M" + " L".join(f"{x},{y}" for x, y in pts) + " Z"

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" id="violation-map" width="{MAP_W}" '
           f'height="{height}" viewBox="0 0 {MAP_W} {height}" role="img" '
           f'aria-label="violations map">',
           f'<rect width="{MAP_W}" height="{height}" fill="#eef5fb"/>']
    chosen = set(view.provinces or ())
    labels = []
    for abbr, geom in outlines:
        polys = list(geom.geoms) if isinstance(geom, MultiPolygon) else \
            [geom] if isinstance(geom, Polygon) else []
        d = " ".join(ring(p.exterior.coords) + "".join(" " + ring(i.coords)
                                                        for i in p.interiors)
                     for p in polys)
        fill = "#fbfbf7" if not chosen or abbr in chosen else "#e6e8eb"
        out.append(f'<path class="province" data-province="{e(abbr)}" d="{d}" '
                   f'fill="{fill}" fill-rule="evenodd" stroke="#6b7785" stroke-width="0.8"/>')
        where = geom.representative_point() if abbr != "SH" else geom.centroid
        labels.append((abbr, where))
    colours = type_colours(v["type"] for v in view.violations)
    unplaced = 0
    for v in view.violations:
        if v["lat"] is None or v["lon"] is None:
            unplaced += 1
            continue
        x, y = px(v["lon"], v["lat"])
        tip = (f"{type_label(v['type'])} {v['type']} · {v['vehicle_id']} · {_iso(v['ts'])}"
               f" · {v['city_name'] or v['province'] or ''} · {v['carrier'] or ''}")
        out.append(f'<circle class="violation" data-type="{e(v["type"])}" cx="{x}" cy="{y}" '
                   f'r="4" fill="{colours[v["type"]]}" fill-opacity="0.8" stroke="#fff" '
                   f'stroke-width="0.6"><title>{e(tip)}</title></circle>')
    for abbr, where in labels:  # over the dots, with a halo
        x, y = px(where.x, where.y)
        zh, en = PROVINCES.get(abbr, (abbr, abbr))
        dy = 22 if abbr == "SH" else 0
        out.append(f'<text x="{x}" y="{_f(float(y) + dy)}" font-size="13" fill="#55606e" '
                   'stroke="#fff" stroke-width="3" paint-order="stroke" stroke-opacity="0.85" '
                   f'text-anchor="middle" font-weight="700">{e(zh)} {e(en)}</text>')
    out.append("</svg>")
    counts: dict[str, int] = {}
    for v in view.violations:
        counts[v["type"]] = counts.get(v["type"], 0) + 1
    legend = "".join(
        f'<span><span class="dot" style="background:{colours[t]}"></span>'
        f"{e(type_label(t))} {e(t)}: {count(counts[t])}</span>"
        for t in sorted(counts, key=lambda t: (-counts[t], t)))
    heading = ('<section id="map"><h2>违法行为发生地点 Where the violations happened</h2>'
               f'<p class="note">本月产生的报警 {count(len(view.violations))} 起，每起一点，按类型着色'
               f"（等距圆柱投影）。 {count(len(view.violations))} alerts raised in the month, "
               "one dot each, coloured by type (equirectangular projection); the full list "
               "is violations.csv.")
    if unplaced:
        heading += f" {count(unplaced)} 起无位置 without a position: not drawn."
    heading += "</p>"
    legend_html = (f'<div class="legend">{legend}</div>' if legend else
                   '<p class="empty">本月无违法报警 no violation this month.</p>')
    return (heading + legend_html + '<div class="mapbox">' + "".join(out)
            + _violation_table(view.violations) + "</div></section>")


def _violation_table(violations: list[dict]) -> str:
    """Violations per province (where each happened) and type."""
    if not violations:
        return ""
    cells: dict[tuple[str, str], int] = {}
    for v in violations:
        k = (v["province"] or "", v["type"])
        cells[k] = cells.get(k, 0) + 1
    types = sorted({t for _, t in cells}, key=lambda t: (-sum(n for (_, u), n in cells.items()
                                                              if u == t), t))
    provinces = sorted({p for p, _ in cells}, key=_province_rank)
    head = "".join(f"<th>{e(type_label(t))}<small>{e(t)}</small></th>" for t in types)
    body = ""
    for p in [*provinces, None]:
        row = [sum(n for (q, u), n in cells.items() if u == t and (p is None or q == p))
               for t in types]
        name = "合计 total" if p is None else province_label(p) if p else "(none)"
        cls = ' class="total"' if p is None else ""
        body += (f"<tr{cls}><td>{e(name)}</td>"
                 + "".join(f'<td class="n">{count(n)}</td>' for n in row)
                 + f'<td class="n">{count(sum(row))}</td></tr>')
    return ('<table class="bytype"><thead><tr><th>省份<small>province</small></th>'
            f"{head}<th>合计<small>total</small></th></tr></thead><tbody>{body}</tbody>"
            "</table>")


# --- PDF --------------------------------------------------------------------------------
def browser() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def pdf(html_path: str | os.PathLike, pdf_path: str | os.PathLike, *,
        timeout_s: float = 120.0) -> bool:
    """Print the page to PDF with Chromium headless; False (and a warning logged) when no
    Chromium is installed or it failed."""
    exe = browser()
    if exe is None:
        log.warning("no Chromium (chromium, chromium-browser): %s not written", pdf_path)
        return False
    target = Path(pdf_path).resolve()
    if target.exists():
        target.unlink()
    with tempfile.TemporaryDirectory(prefix="yrd-assess-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-extensions", f"--user-data-dir={profile}",
               "--no-pdf-header-footer", f"--print-to-pdf={target}",
               Path(html_path).resolve().as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            log.warning("Chromium took more than %g s: %s not written", timeout_s, target)
            return False
    if done.returncode != 0 or not target.exists() or target.stat().st_size == 0:
        log.warning("Chromium failed (exit %s): %s not written; %s", done.returncode, target,
                    done.stderr.decode("utf-8", "replace")[-500:])
        return False
    return True
