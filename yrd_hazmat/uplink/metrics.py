"""Prometheus metrics of the uplink (YRD_UPLINK_METRICS_PORT). No per-vehicle label."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

UP = Gauge("yrd_uplink_up", "1 while the main link to the upper platform is logged in")
CONNECTS = Counter("yrd_uplink_connects", "Attempts to open the main link, by result "
                   "(ok, refused: login answered with an error, failed: no connection)",
                   ["result"])
RECONNECTS = Counter("yrd_uplink_reconnects", "Logins after a link drop")
DROPS = Counter("yrd_uplink_drops", "Main links lost, by reason", ["reason"])
POSITIONS = Counter("yrd_uplink_positions", "Positions sent up, live (0x1202) or re-sent "
                    "(0x1203)", ["mode"])
HISTORY_PACKETS = Counter("yrd_uplink_history_packets", "0x1203 frames sent (<= 5 positions)")
ALERTS = Counter("yrd_uplink_alerts", "Alarms sent up (0x1402), live or re-sent", ["mode"])
RESEND_LAG = Gauge("yrd_uplink_resend_lag_seconds", "Age (now - arrival on Kafka) of the "
                   "oldest record of the last batch re-sent; 0 once live again")
UNCONFIRMED = Gauge("yrd_uplink_unconfirmed_records", "Records written on the link that no "
                    "link-test answer has confirmed yet")
CONFIRMED_LAG = Gauge("yrd_uplink_confirmed_lag_records", "Records on the input topics after "
                      "the last confirmed (committed) offsets")
REQUESTS = Counter("yrd_uplink_requests", "Requests of the upper platform received, by kind "
                   "(inspection, supervision, message, notice, text, photo, listen, "
                   "tachograph, emergency_access, exchange_start, exchange_stop, driver, "
                   "waybill; position: positions of vehicles from elsewhere, 0x9202/0x9203)",
                   ["kind"])
ANSWERS = Counter("yrd_uplink_answers", "Answers sent up, by the request's kind (a person's "
                  "0x1301, 0x1401; a terminal's 0x1501-0x1505; the register's 0x1205, 0x1206, "
                  "0x120A, 0x120B); driver_report: 0x120C sent unasked", ["kind"])
SLAVE_UP = Gauge("yrd_uplink_slave_links", "Slave links (upper -> us) logged in")

for _mode in ("live", "resent"):
    POSITIONS.labels(_mode)
    ALERTS.labels(_mode)
for _result in ("ok", "refused", "failed"):
    CONNECTS.labels(_result)
