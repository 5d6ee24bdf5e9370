"""Prometheus metrics of the gateway process (served on ``YRD_GATEWAY_METRICS_PORT``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CONNECTIONS = Gauge("yrd_gateway_open_connections", "Open connections", ["protocol"])
CONNECTIONS_TOTAL = Counter(
    "yrd_gateway_connections_total",
    "Connections accepted, refused (over YRD_GATEWAY_MAX_CONNECTIONS) or closed idle",
    ["protocol", "result"],
)
MESSAGES = Counter("yrd_gateway_messages_total", "Frames handled, by message", ["protocol", "message"])
POSITIONS = Counter(
    "yrd_gateway_positions_total",
    "Positions published as pings: realtime (0x0200), batch (0x0704), blind (0x0704 "
    "blind-area re-upload)", ["protocol", "kind"],
)
REJECTED = Counter(
    "yrd_gateway_rejected_total", "Frames or positions sent to the dead-letter topic, by reason",
    ["protocol", "reason"],
)
JUNK_BYTES = Counter("yrd_gateway_junk_bytes_total", "Bytes outside any frame, discarded",
                     ["protocol"])
