"""Today's figures as Prometheus gauges: ``yrd-hazmat figures`` computes, every
``YRD_ASSESS_EVERY_S`` (600 s), the assessment's figures of today so far (China time) from
the archive, with the monthly assessment's definitions (:mod:`.figures`), and serves them
on ``YRD_ASSESS_METRICS_PORT`` (9468) per province and for the region:

- ``yrd_today_vehicles{province, state}``: registered, networked, online;
- ``yrd_today_rate{province, figure}``: networked, online, qualified, completeness, drift,
  handling (0 to 1; absent while its denominator is 0); for the region also link_uptime,
  inspection_response, supervision_handling;
- ``yrd_today_per_vehicle{province, figure}``: overspeeds, fatigue_seconds;
- ``yrd_today_records{province, kind}``: all, qualified;
- ``yrd_today_computed_timestamp_seconds``, ``yrd_today_compute_seconds``.

What the archive does not hold yet (the archiver's last ``YRD_ARCHIVE_FLUSH_S``) is not
counted. Its own process, so the archiver's core stays the archiver's.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from prometheus_client import Gauge

from ..archive import register_snapshot
from ..archive.read import Archive
from ..archive.store import Store
from ..core.timeutil import CHINA_TZ
from .figures import Bounds, Figures, compute_period

log = logging.getLogger(__name__)

VEHICLES = Gauge("yrd_today_vehicles", "Today's vehicles (China time) by state: registered, "
                 "networked, online", ["province", "state"])
RATE = Gauge("yrd_today_rate", "Today's rates (0-1): networked, online, qualified, "
             "completeness, drift, handling", ["province", "figure"])
PER_VEHICLE = Gauge("yrd_today_per_vehicle", "Today's events per online vehicle: overspeeds, "
                    "fatigue_seconds", ["province", "figure"])
RECORDS = Gauge("yrd_today_records", "Today's records: all, qualified", ["province", "kind"])
COMPUTED = Gauge("yrd_today_computed_timestamp_seconds", "When today's figures were last "
                 "computed (Unix time)")
COMPUTE_SECONDS = Gauge("yrd_today_compute_seconds", "How long the last computation took")

RATES = {"networked": "networked_rate", "online": "online_rate",
         "qualified": "qualified_rate", "completeness": "completeness",
         "drift": "drift_rate", "handling": "handling_rate", "escalation": "escalation_rate",
         "link_uptime": "link_uptime",
         "inspection_response": "inspection_response_rate",
         "supervision_handling": "supervision_handling_rate"}
"""gauge figure -> the row's rate (the last three: the region's only)."""
PER = {"overspeeds": "overspeeds_per_vehicle", "fatigue_seconds": "fatigue_s_per_vehicle"}
ACK_MEAN = Gauge("yrd_today_ack_mean_seconds", "Today's mean time from an incident's raising "
                 "to the first person's action", ["province"])


def today(store: Store, settings, now: datetime | None = None) -> Figures:
    now = (now or datetime.now(CHINA_TZ)).astimezone(CHINA_TZ)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    day, registered = register_snapshot.read(store, now.date())
    return compute_period(Archive(store), start, now + timedelta(microseconds=1),
                          start.date().isoformat(), registered, Bounds.of(settings),
                          kept_days=settings.archive_keep_pings_days, registered_at=day,
                          platforms=register_snapshot.read_platforms(store, day))


def export(figures: Figures) -> None:
    """Set the gauges from ``figures`` (a province no longer seen loses its series)."""
    for gauge in (VEHICLES, RATE, PER_VEHICLE, RECORDS, ACK_MEAN):
        gauge.clear()
    for row in figures.rows:
        if row["level"] not in ("region", "province"):
            continue
        province = row["key"] if row["level"] == "province" else "all"
        for state in ("registered", "networked", "online"):
            VEHICLES.labels(province, state).set(row[state])
        for figure, name in RATES.items():
            if row.get(name) is not None:
                RATE.labels(province, figure).set(row[name])
        for figure, name in PER.items():
            if row[name] is not None:
                PER_VEHICLE.labels(province, figure).set(row[name])
        if row["ack_mean_s"] is not None:
            ACK_MEAN.labels(province).set(row["ack_mean_s"])
        RECORDS.labels(province, "all").set(row["records"])
        RECORDS.labels(province, "qualified").set(row["qualified"])


def serve(settings, stop: threading.Event) -> None:
    """Compute and export until ``stop`` is set."""
    from prometheus_client import start_http_server

    if settings.assess_metrics_port:
        start_http_server(settings.assess_metrics_port)
    store = Store.of(settings, writing=False)
    while not stop.is_set():
        started = time.monotonic()
        try:
            figures = today(store, settings)
            export(figures)
            COMPUTED.set(time.time())
            COMPUTE_SECONDS.set(time.monotonic() - started)
            region = next((r for r in figures.rows if r["level"] == "region"), None)
            log.info("today's figures computed in %.1f s: %d vehicles online, %d records",
                     time.monotonic() - started, region["online"] if region else 0,
                     region["records"] if region else 0)
        except Exception:  # noqa: BLE001 - a failed round; the next may succeed
            log.exception("today's figures not computed")
        stop.wait(settings.assess_every_s)


def run_until_signalled(settings) -> None:
    import signal

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serve(settings, stop)
