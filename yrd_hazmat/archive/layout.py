"""The archive's layout, the same on a disk and in a bucket (Hive-style partitions, which
DuckDB, Trino and Spark read as a ``day`` column)::

    <kind>/day=YYYY-MM-DD/<topic>-p<partition>-<first offset>-<last offset>.parquet
    <kind>/day=YYYY-MM-DD/<topic>-p<partition>-<first>-<last>-c.parquet   (compacted)
    _state/<kind>/p<partition>.json      what is written: {"next": offset}
    _state/<kind>/p<partition>.pending   what a flush is writing: {"next": ..., "files": [...]}

``kind`` is pings, alerts, incidents, link_states, uplink_requests or uplink_answers; the
day is the record's event day in China time (a ping's fix time, an alert's ping time, an
incident's raising time, a link state's report time, a request's arrival, an answer's
time), so a ping uploaded hours late lands in its own day. A file holds the rows of one Kafka partition whose
offsets lie between its first and last (the others of that range belong to other days);
a compacted file replaces the files of its day and partition whose range it covers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from ..core.timeutil import CHINA_TZ

KINDS = ("pings", "alerts", "incidents", "link_states", "uplink_requests", "uplink_answers",
         "platform_results", "audit")
STATE = "_state"
_NAME = re.compile(r"^(?P<topic>.+)-p(?P<partition>\d+)-(?P<first>\d{20})-(?P<last>\d{20})"
                   r"(?P<compacted>-c)?\.parquet$")


@dataclass(frozen=True, order=True)
class DataFile:
    kind: str
    day: date
    partition: int
    first: int
    last: int
    compacted: bool
    path: str
    size: int = 0

    def covers(self, other: "DataFile") -> bool:
        """A compacted file that holds every row of ``other`` (same day and partition)."""
        return (self.compacted and other.path != self.path and other.day == self.day
                and other.partition == self.partition and self.first <= other.first
                and other.last <= self.last)


def day_of(ts: datetime) -> date:
    return ts.astimezone(CHINA_TZ).date()


def day_dir(kind: str, day: date) -> str:
    return f"{kind}/day={day.isoformat()}"


def file_name(topic: str, partition: int, first: int, last: int,
              compacted: bool = False) -> str:
    return (f"{topic}-p{partition:03d}-{first:020d}-{last:020d}"
            f"{'-c' if compacted else ''}.parquet")


def data_path(kind: str, day: date, topic: str, partition: int, first: int, last: int,
              compacted: bool = False) -> str:
    return f"{day_dir(kind, day)}/{file_name(topic, partition, first, last, compacted)}"


def parse(path: str, size: int = 0) -> DataFile | None:
    """The file at ``path`` (relative to the root), or None for one not of the archive."""
    parts = path.split("/")
    if len(parts) != 3 or parts[0] not in KINDS or not parts[1].startswith("day="):
        return None
    match = _NAME.match(parts[2])
    if match is None:
        return None
    try:
        day = date.fromisoformat(parts[1][4:])
    except ValueError:
        return None
    return DataFile(kind=parts[0], day=day, partition=int(match["partition"]),
                    first=int(match["first"]), last=int(match["last"]),
                    compacted=match["compacted"] is not None, path=path, size=size)


def live(files: list[DataFile]) -> list[DataFile]:
    """The files to read: those no compacted file covers (a compaction stopped between
    writing its file and deleting the small ones leaves both)."""
    by_key: dict[tuple[date, int], list[DataFile]] = {}
    for f in files:
        by_key.setdefault((f.day, f.partition), []).append(f)
    out = []
    for group in by_key.values():
        big = [f for f in group if f.compacted]
        out += [f for f in group if not any(c.covers(f) for c in big)]
    return sorted(out)


def state_path(kind: str, partition: int) -> str:
    return f"{STATE}/{kind}/p{partition:03d}.json"


def pending_path(kind: str, partition: int) -> str:
    return f"{STATE}/{kind}/p{partition:03d}.pending"
