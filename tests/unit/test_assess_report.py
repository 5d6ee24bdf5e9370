"""The monthly assessment's report (CSV, HTML page, PDF) and its command, on the synthetic
month of ``test_assess``: what the files hold is read back and compared with the figures."""

from __future__ import annotations

import csv
import re
import shutil
from datetime import date
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from tests.unit import test_assess
from tests.unit.test_assess import REGISTERED, TIRED
from yrd_hazmat.archive import register_snapshot
from yrd_hazmat.assess import report
from yrd_hazmat.assess.figures import compute
from yrd_hazmat.cli import main
from yrd_hazmat.config import get_settings
from yrd_hazmat.core.codec import encode
from yrd_hazmat.register import Register

month = test_assess.month  # the synthetic month's fixture: (Archive, expectations)


@pytest.fixture()
def figures(month):
    archive, _ = month
    return compute(archive, "2026-11", REGISTERED, registered_at=date(2026, 11, 28))


class Page(HTMLParser):
    """What a browser would find: the text, the table rows, the map's dots."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[dict] = []  # data-level, data-key, cells
        self.dots: list[dict] = []
        self.text: list[str] = []
        self.tags: list[str] = []
        self._row: dict | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "tr" and "data-level" in a:
            self._row = {"level": a["data-level"], "key": a["data-key"], "cells": []}
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "circle" and a.get("class") == "violation":
            self.dots.append(a)

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row["cells"].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def row(self, level: str, key: str) -> list[str]:
        (found,) = [r["cells"] for r in self.rows if r["level"] == level and r["key"] == key]
        return found

    def keys(self, level: str) -> set[str]:
        return {r["key"] for r in self.rows if r["level"] == level}


def column(name: str) -> int:
    """The cell index of a figure in a table row (name and key first)."""
    return 2 + [c[0] for c in report.COLUMNS].index(name)


# --- CSV --------------------------------------------------------------------------------
def read_csv(path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM: the spreadsheet reads UTF-8
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def test_the_csv_files_read_back_as_the_figures(figures, tmp_path):
    out = tmp_path / "out"
    written = report.write_csv(figures, out)
    assert [p.name for p in written] == ["figures.csv", "daily.csv", "violations.csv"]
    lines = read_csv(out / "figures.csv")
    assert list(lines[0]) == list(report.FIGURE_COLUMNS)
    assert len(lines) == len(figures.rows)
    for line, row in zip(lines, figures.rows):
        assert (line["level"], line["key"], line["name"]) == (row["level"], row["key"],
                                                              row["name"])
        for name in ("registered", "networked", "online", "records", "qualified",
                     "drift_vehicles", "overspeeds", "incidents", "handled"):
            assert int(line[name]) == row[name], (row["key"], name)
        for name in ("mileage_km", "complete_km"):
            assert float(line[name]) == pytest.approx(row[name], abs=5e-4)
        assert float(line["fatigue_s"]) == pytest.approx(row["fatigue_s"], abs=0.05)
        for name in (*report.RATES, "overspeeds_per_vehicle"):
            if row[name] is None:
                assert line[name] == "", (row["key"], name)
            else:
                assert re.fullmatch(r"\d+\.\d{4}", line[name]), line[name]  # 4 decimals
                assert float(line[name]) == pytest.approx(row[name], abs=5e-5)
        if row["fatigue_s_per_vehicle"] is None:
            assert line["fatigue_s_per_vehicle"] == ""
        else:
            assert float(line["fatigue_s_per_vehicle"]) == pytest.approx(
                row["fatigue_s_per_vehicle"], abs=0.05)
    region = lines[0]
    assert (region["level"], region["online_rate"], region["networked_rate"]) == \
        ("region", "0.7500", "0.8000")
    zj = next(line for line in lines if line["level"] == "province" and line["key"] == "ZJ")
    assert zj["networked_rate"] == ""  # no registered vehicle: no rate

    daily = read_csv(out / "daily.csv")
    assert [(d["day"], d["province"], int(d["vehicles"]), int(d["records"]),
             int(d["qualified"])) for d in daily] == \
        [(d["day"].isoformat(), d["province"], d["vehicles"], d["records"], d["qualified"])
         for d in figures.daily]
    violations = read_csv(out / "violations.csv")
    assert len(violations) == len(figures.violations) == 6
    for line, v in zip(violations, figures.violations):
        assert (line["vehicle_id"], line["type"], line["province"], line["carrier"]) == \
            (v["vehicle_id"], v["type"], v["province"], v["carrier"])
        assert line["ts"].endswith("+08:00") and line["ts"][:19] == \
            v["ts"].astimezone(report.CHINA_TZ).isoformat()[:19]
        assert float(line["lat"]) == pytest.approx(v["lat"]) and \
            float(line["lon"]) == pytest.approx(v["lon"])


def test_a_carrier_that_looks_like_a_formula_is_shown_not_run(month, tmp_path):
    archive, _ = month
    f = compute(archive, "2026-11", {**REGISTERED, TIRED: "=HYPERLINK(1)"})
    report.write_csv(f, tmp_path)
    lines = read_csv(tmp_path / "figures.csv")
    assert "'=HYPERLINK(1)" in {line["key"] for line in lines if line["level"] == "carrier"}
    assert {line["carrier"] for line in read_csv(tmp_path / "violations.csv")} == \
        {"'=HYPERLINK(1)"}


# --- the page ---------------------------------------------------------------------------
def test_the_page_shows_every_row_and_the_regions_figures(figures):
    text = report.html(figures)
    page = Page(text)
    assert page.tags[0] == "html" and "script" not in page.tags
    assert "长三角危险货物运输车辆监管月度考核 / YRD hazmat monthly assessment, 2026-11" in text
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", text)  # self-contained
    for level in ("province", "city", "carrier"):
        assert page.keys(level) == {r["key"] for r in figures.rows if r["level"] == level}
    assert page.keys("province") == {"SH", "JS", "ZJ"}
    region = page.row("region", "YRD")  # the provinces' table's total line
    assert region[column("online_rate")] == "75.0%"  # 3 online of 4 networked
    assert region[column("networked_rate")] == "80.0%"
    assert region[column("drift_rate")] == "33.3%"
    assert region[column("overspeeds_per_vehicle")] == "1.33"
    assert region[column("fatigue_s")] == "0:50"  # 40 min + the last 10 of the month
    assert region[column("fatigue_s_per_vehicle")] == "0:17"  # 1000 s
    assert region[column("handling_rate")] == "66.7%"
    assert region[column("records")] == "104"
    assert page.row("province", "ZJ")[column("networked_rate")] == "—"
    assert page.row("city", "320500")[0] == "苏州市"
    headline = "".join(page.text)
    for shown in ("75.0%", "80.0%", "3 / 4", "4 / 5", "96 / 104 records", "0:17", "0:50 in all"):
        assert shown in headline, shown
    # the definitions with the bounds of the settings
    assert "300 s" in headline and "200 km/h" in headline and "1 km" in headline
    assert "入网率" in headline and "networked" in headline
    # the map: a dot per violation, coloured by type, and the legend
    assert len(page.dots) == len(figures.violations) == 6
    assert {d["data-type"] for d in page.dots} == {"SPEEDING", "ZONE_SPEEDING",
                                                   "FATIGUE_DRIVING"}
    assert len({d["fill"] for d in page.dots}) == 3
    assert "超速 SPEEDING: 4" not in headline and "超速 SPEEDING: 3" in headline
    assert len(re.findall(r'<path class="province"', text)) == 4
    # the charts: four bar charts and two line charts per province of the daily figures
    assert text.count('<figure>') == 4
    assert text.count('aria-label="SH vehicles per day"') == 1
    assert report.html(figures) == text  # deterministic
    assert "generated at: 2026-12-01 08:00" in report.html(figures,
                                                           generated_at="2026-12-01 08:00")


def test_a_province_sees_its_own_rows_only(figures):
    page = Page(report.html(figures, provinces={"JS"}))
    assert page.keys("province") == {"JS"}
    assert page.keys("city") == {"320500"}
    assert page.keys("carrier") == set()  # carriers span provinces: the region's view only
    assert len(page.dots) == 6  # the synthetic alerts were all raised in Jiangsu
    shanghai = Page(report.html(figures, provinces=["sh"]))
    assert shanghai.keys("province") == {"SH"}
    assert shanghai.keys("city") == {r["key"] for r in figures.rows
                                     if r["level"] == "city" and r["key"].startswith("31")}
    assert shanghai.dots == []
    assert "aria-label=\"JS vehicles per day\"" not in report.html(figures, provinces=["SH"])
    text = "".join(shanghai.text)
    assert "苏州市" not in text and "杭州市" not in text
    assert "75.0%" in text  # the region's headline stays, for comparison


def test_a_carrier_sees_its_own_row_only(figures):
    page = Page(report.html(figures, carrier="乙运输"))
    assert [(r["level"], r["key"]) for r in page.rows] == [("carrier", "乙运输")]
    assert page.row("carrier", "乙运输")[column("handling_rate")] == "66.7%"
    assert len(page.dots) == 6
    assert Page(report.html(figures, carrier="甲运输")).dots == []
    assert Page(report.html(figures, carrier="甲运输", provinces=["SH"])).row(
        "carrier", "甲运输")[column("registered")] == "4"


def test_text_is_escaped(month):
    archive, _ = month
    f = compute(archive, "2026-11", {**REGISTERED, TIRED: "<script>alert(1)</script>"})
    text = report.html(f)
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    page = Page(text)
    assert "script" not in page.tags
    assert "<script>alert(1)</script>" in page.keys("carrier")
    assert "<script>" in "".join(page.text)  # shown as text
    only = Page(report.html(f, carrier="<script>alert(1)</script>"))
    assert len(only.dots) == 6 and "script" not in only.tags


# --- the command ------------------------------------------------------------------------
@pytest.fixture()
def cli(month, tmp_path):
    archive, _ = month
    runner = CliRunner(env={"YRD_ARCHIVE_DIR": archive.store.root, "YRD_ARCHIVE_S3_URL": ""})

    def invoke(*args):
        get_settings.cache_clear()  # the settings of this runner's environment
        return runner.invoke(main, list(args), catch_exceptions=False)

    yield invoke
    get_settings.cache_clear()


def snapshot(store) -> None:
    register = Register()
    for plate, carrier in REGISTERED.items():
        register.permit(plate.encode(), encode({"carrier": carrier}))
    register_snapshot.write(store, register, date(2026, 11, 28))


def test_the_command_writes_the_report(cli, month, tmp_path):
    archive, _ = month
    snapshot(archive.store)
    out = tmp_path / "report"
    result = cli("assess", "--month", "2026-11", "--output", str(out))
    assert result.exit_code == 0, result.output
    for name in ("figures.csv", "daily.csv", "violations.csv", "report.html"):
        assert (out / name).stat().st_size > 0, name
    if report.browser():  # Debian's chromium is installed here
        assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
        assert "report.pdf" in result.stdout
    assert "online 75.0%" in result.stdout and "networked 80.0%" in result.stdout
    assert str(out.resolve()) in result.stdout and " s" in result.stdout
    region = read_csv(out / "figures.csv")[0]
    assert (region["registered"], region["networked"]) == ("5", "4")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "register snapshot of 2026-11-28" in page and "generated at:" in page

    js = tmp_path / "js"
    result = cli("assess", "--month", "2026-11", "--output", str(js), "--no-pdf",
                 "--province", "js")
    assert result.exit_code == 0, result.output
    assert not (js / "report.pdf").exists()
    assert {(line["level"], line["key"]) for line in read_csv(js / "figures.csv")} == \
        {("region", "YRD"), ("province", "JS"), ("city", "320500")}
    result = cli("assess", "--month", "2026-11", "--output", str(tmp_path / "x"),
                 "--no-pdf", "--carrier", "丁运输")
    assert result.exit_code == 2 and "no carrier '丁运输'" in result.output


def test_without_a_register_snapshot_the_command_says_so(cli, tmp_path):
    out = tmp_path / "report"
    result = cli("assess", "--month", "2026-11", "--output", str(out), "--no-pdf")
    assert result.exit_code == 0, result.output
    assert "no register snapshot" in result.stderr and "networked rate is empty" in \
        result.stderr
    region = read_csv(out / "figures.csv")[0]
    assert (region["registered"], region["networked_rate"]) == ("0", "")
    assert "no register snapshot" in (out / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "november", "2026-11-01", ""])
def test_a_bad_month_exits_2(cli, bad):
    result = cli("assess", "--month", bad, "--no-pdf")
    assert result.exit_code == 2
    assert "is not a month: YYYY-MM" in result.output


def test_the_pdf(figures, tmp_path, monkeypatch):
    page = tmp_path / "report.html"
    page.write_text(report.html(figures), encoding="utf-8")
    if shutil.which("chromium") or shutil.which("chromium-browser"):  # installed here
        assert report.pdf(page, tmp_path / "report.pdf")
        assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")
    monkeypatch.setattr(report.shutil, "which", lambda name: None)
    assert report.pdf(page, tmp_path / "none.pdf") is False
    assert not (tmp_path / "none.pdf").exists()
