"""Keeping the archive small and within the law: compaction and retention.

- Compaction: the files of one day and one partition, when there are at least
  ``YRD_ARCHIVE_COMPACT_FILES`` of them and the day is at least
  ``YRD_ARCHIVE_COMPACT_AFTER_DAYS`` old, become one file sorted by vehicle and time, named
  with the first and last offsets it covers and ``-c``; then the small ones are deleted.
  Only files below the partition's written offset are taken (a flush that may still be
  undone is never merged). Killed between the two steps, both are there: readers take the
  compacted file and ignore those it covers (:func:`.layout.live`), and the next run
  deletes them.
- Retention: a day is deleted whole once it is older than its kind's retention
  (``YRD_ARCHIVE_KEEP_PINGS_DAYS`` 183, ``..._ALERTS_DAYS`` and ``..._INCIDENTS_DAYS``
  1096), counted from the day after it ends.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

from . import layout, metrics
from .store import Store

SORT = {"pings": [("vehicle_id", "ascending"), ("ts", "ascending"), ("offset", "ascending")],
        "alerts": [("vehicle_id", "ascending"), ("ts", "ascending"), ("offset", "ascending")],
        "incidents": [("incident_id", "ascending"), ("offset", "ascending")],
        "link_states": [("key", "ascending"), ("reported_at", "ascending"),
                        ("offset", "ascending")],
        "uplink_requests": [("ts", "ascending"), ("offset", "ascending")],
        "uplink_answers": [("ts", "ascending"), ("offset", "ascending")],
        "platform_results": [("ts", "ascending"), ("offset", "ascending")],
        "audit": [("ts", "ascending"), ("offset", "ascending")]}


def keep_days(settings, kind: str) -> int:
    if kind == "pings":
        return settings.archive_keep_pings_days
    if kind == "incidents":
        return settings.archive_keep_incidents_days
    if kind == "audit":
        return settings.archive_keep_audit_days
    return settings.archive_keep_alerts_days  # alerts, and the links' and requests' records


def days(store: Store, kind: str) -> list[date]:
    out = []
    for name in store.dirs(kind):
        if name.startswith("day="):
            try:
                out.append(date.fromisoformat(name[4:]))
            except ValueError:
                continue
    return sorted(out)


def files_of(store: Store, kind: str, day: date) -> list[layout.DataFile]:
    found = (layout.parse(e.path, e.size) for e in store.list(layout.day_dir(kind, day)))
    return [f for f in found if f is not None]


def due(all_days: list[date], today: date, keep: int) -> list[date]:
    """The days past retention: a day is kept ``keep`` whole days after it ends."""
    return [d for d in all_days if (today - d).days > keep]


def written(store: Store, kind: str, partition: int) -> int:
    state = store.get(layout.state_path(kind, partition))
    return int(json.loads(state)["next"]) if state is not None else 0


def compact_day(store: Store, kind: str, day: date, min_files: int) -> int:
    """Compact one day of one kind (see the module); the small files merged away."""
    merged = 0
    files = files_of(store, kind, day)
    live = layout.live(files)
    covered = [f for f in files if f not in live]
    if covered:  # a compaction killed before its deletions: finish it
        store.delete([f.path for f in covered])
    by_partition: dict[int, list[layout.DataFile]] = {}
    for f in live:
        by_partition.setdefault(f.partition, []).append(f)
    for partition, group in by_partition.items():
        limit = written(store, kind, partition)
        group = [f for f in group if f.last < limit]
        if len(group) < min_files:
            continue
        table = store.read_table([f.path for f in group])
        assert table is not None
        table = table.sort_by(SORT[kind])
        first, last = min(f.first for f in group), max(f.last for f in group)
        topic = group[0].path.rsplit("/", 1)[1].rsplit(f"-p{partition:03d}-", 1)[0]
        store.put_table(layout.data_path(kind, day, topic, partition, first, last,
                                         compacted=True), table)
        store.delete([f.path for f in group])
        merged += len(group)
    if merged:
        metrics.COMPACTED.labels(kind).inc(merged)
    return merged


def run(store: Store, settings, today: date) -> dict[str, dict[str, int]]:
    """Retention then compaction of every kind; what was done."""
    out: dict[str, dict[str, int]] = {}
    for kind in layout.KINDS:
        all_days = days(store, kind)
        gone = due(all_days, today, keep_days(settings, kind))
        for day in gone:
            store.delete_dir(layout.day_dir(kind, day))
        if gone:
            metrics.DELETED_DAYS.labels(kind).inc(len(gone))
        merged = 0
        last_day = today - timedelta(days=settings.archive_compact_after_days)
        for day in all_days:
            if day not in gone and day <= last_day:
                merged += compact_day(store, kind, day, settings.archive_compact_files)
        out[kind] = {"days_deleted": len(gone), "files_merged": merged}
    return out

