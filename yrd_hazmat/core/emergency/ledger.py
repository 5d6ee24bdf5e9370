"""The regional fund's ledger: who helped whom, per province pair, for one month.

Pure: from the incident records (the latest of each, as ``yrd.incidents`` holds them),
the incidents *raised* in the month (China time) and every response to them. A
response is given by the resource's province and received by the incident's (its
jurisdiction, or for an incident outside the region the province whose responders are
nearest). Its resource-hours run from the dispatch to the release (the incident's close
releases what is still there); a response still going counts up to ``now``, and the row
says how many are still open.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import msgspec

from ..models import PROVINCES, IncidentLog
from ..timeutil import CHINA_TZ
from .incidents import hours

OUTSIDE = "--"
"""An incident with no province to receive the help (outside the region, no shapes)."""


class PairRow(msgspec.Struct, frozen=True, kw_only=True):
    """What one province (giver) gave another (receiver) in the month; giver == receiver:
    its own responses."""

    giver: str
    receiver: str
    incidents: int
    """Incidents of the receiver's that the giver's resources responded to."""
    responses: int
    resource_hours: float
    open_responses: int


class ProvinceRow(msgspec.Struct, frozen=True, kw_only=True):
    """One province's balance across borders in the month."""

    province: str
    incidents: int
    """Incidents raised in its jurisdiction (with or without responses)."""
    responses_given: int
    responses_received: int
    hours_given: float
    hours_received: float

    @property
    def net_hours(self) -> float:
        return round(self.hours_given - self.hours_received, 2)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[start, end) of ``YYYY-MM`` in China time (raises ValueError when malformed)."""
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=CHINA_TZ)
    end = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start, end


def in_month(logs: Iterable[IncidentLog], month: str) -> list[IncidentLog]:
    start, end = month_bounds(month)
    return [log for log in logs if log.raised_at is not None and start <= log.raised_at < end]


def pairs(logs: Iterable[IncidentLog], month: str, now: datetime) -> list[PairRow]:
    """One row per (giver, receiver) with responses in the month, in province order."""
    return _pairs(in_month(logs, month), now)


def _pairs(logs: list[IncidentLog], now: datetime) -> list[PairRow]:
    acc: dict[tuple[str, str], dict] = defaultdict(
        lambda: {"incidents": set(), "responses": 0, "hours": 0.0, "open": 0})
    for log in logs:
        receiver = log.home or OUTSIDE
        for response in log.responses:
            row = acc[(response.province, receiver)]
            row["incidents"].add(log.incident_id)
            row["responses"] += 1
            row["hours"] += hours(response, now)
            row["open"] += response.released_at is None
    return [PairRow(giver=g, receiver=r, incidents=len(v["incidents"]), responses=v["responses"],
                    resource_hours=round(v["hours"], 2), open_responses=v["open"])
            for (g, r), v in sorted(acc.items(), key=lambda kv: (_order(kv[0][0]), _order(kv[0][1])))]


def provinces(logs: Iterable[IncidentLog], month: str, now: datetime) -> list[ProvinceRow]:
    """Each province's cross-border balance (own responses are in neither column)."""
    logs = in_month(logs, month)
    rows = _pairs(logs, now)
    out = []
    for p in PROVINCES:
        given = [r for r in rows if r.giver == p and r.receiver != p]
        received = [r for r in rows if r.receiver == p and r.giver != p]
        out.append(ProvinceRow(
            province=p, incidents=sum(log.home == p for log in logs),
            responses_given=sum(r.responses for r in given),
            responses_received=sum(r.responses for r in received),
            hours_given=round(sum(r.resource_hours for r in given), 2),
            hours_received=round(sum(r.resource_hours for r in received), 2)))
    return out


def to_csv(rows: list[PairRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    fields = list(PairRow.__struct_fields__)
    writer.writerow(fields)
    for row in rows:
        writer.writerow([getattr(row, f) for f in fields])
    return out.getvalue()


def _order(province: str) -> int:
    return PROVINCES.index(province) if province in PROVINCES else len(PROVINCES)
