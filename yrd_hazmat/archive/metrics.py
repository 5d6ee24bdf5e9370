"""Prometheus metrics of the archiver (YRD_ARCHIVE_METRICS_PORT). No per-vehicle label."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ROWS = Counter("yrd_archive_rows", "Rows written to the archive, by kind (pings, alerts, "
               "incidents)", ["kind"])
REFUSED = Counter("yrd_archive_refused", "Records not archived, by kind (a ping the worker "
                  "refuses too; an alert or incident record that does not decode)", ["kind"])
FLUSH_SECONDS = Histogram("yrd_archive_flush_seconds", "Time to write one kind's batch",
                          ["kind"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
FLUSH_FAILURES = Counter("yrd_archive_flush_failures", "Flushes the store refused (it is "
                         "tried again; nothing more is read meanwhile), by kind", ["kind"])
WRITTEN_AT = Gauge("yrd_archive_written_timestamp_seconds", "When the kind was last written "
                   "(Unix time)", ["kind"])
COMPACTED = Counter("yrd_archive_compacted_files", "Small files merged away, by kind", ["kind"])
DELETED_DAYS = Counter("yrd_archive_deleted_days", "Day partitions deleted past their "
                       "retention, by kind", ["kind"])
UPKEEP_FAILURES = Counter("yrd_archive_upkeep_failures", "Compaction or retention runs that "
                          "failed (writing goes on)")
