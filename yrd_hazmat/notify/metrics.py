"""The notifier's metrics (its own /metrics, ``YRD_NOTIFY_METRICS_PORT``)."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("yrd_notify_events_total", "Events read (alerts raised or cleared...)", ["kind"])
DELIVERIES = Counter("yrd_notify_deliveries_total",
                     "Attempts' outcomes: sent, retrying (failed, again later), given_up",
                     ["channel", "outcome"])
DIGESTED = Counter("yrd_notify_digested_total",
                   "Events kept back by a subscription's rate limit or quiet hours, told in "
                   "a digest", ["channel"])
IN_DOUBT = Counter("yrd_notify_in_doubt_total",
                   "Attempts whose outcome was unknown at a restart: sent again marked as a "
                   "possible repeat (resent), or left for a person to check (not_resent)",
                   ["channel", "handling"])
OPEN = Gauge("yrd_notify_open_deliveries", "Deliveries not yet sent nor given up")
SEND_SECONDS = Histogram("yrd_notify_send_seconds", "One attempt's time", ["channel"],
                         buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
REFUSED = Counter("yrd_notify_refused_total", "Records that are not what their topic holds",
                  ["topic"])
ESCALATIONS = Counter("yrd_notify_escalations_total",
                      "Alerts escalated past a deadline, by the level they went to and their "
                      "province", ["level", "province"])
ACK_SECONDS = Histogram("yrd_notify_ack_seconds",
                        "From an alert's publication to the first person's action on it",
                        ["province"], buckets=(30, 60, 120, 300, 600, 1800, 3600, 4 * 3600,
                                               24 * 3600))
