"""Prometheus metrics of the gateway process (served on ``YRD_GATEWAY_METRICS_PORT``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

if TYPE_CHECKING:
    from .session import Handled

CONNECTIONS = Gauge("yrd_gateway_open_connections", "Open connections", ["protocol"])
CONNECTIONS_TOTAL = Counter(
    "yrd_gateway_connections_total",
    "Connections accepted, refused (over YRD_GATEWAY_MAX_CONNECTIONS), refused over "
    "YRD_GATEWAY_MAX_PER_ADDRESS (address_limit), or closed: not authenticated in time "
    "(auth_timeout), without a readable frame for YRD_GATEWAY_IDLE_S (idle), too many "
    "dead letters (too_many_rejections)",
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
RECORDS = Counter(
    "yrd_gateway_records_total",
    "Records accepted or refused, by carrier (from its declaration; 'none' without one) and "
    "data-quality classification: qualified, the first quality finding of an accepted ping "
    "(no_fix, bad_direction, bad_altitude, malformed_item), or a refused record's finding "
    "(bad_position, bad_speed) or dead-letter reason; the monthly data-qualified rate is "
    "qualified / all", ["protocol", "carrier", "quality"],
)
MAKER_ITEMS_RAW = Counter(
    "yrd_gateway_maker_items_raw_total",
    "Maker items (0x0200 additional items 0xE0-0xFF) no terminal profile reads, kept raw on "
    "the ping", ["protocol"],
)
MALFORMED_ITEMS = Counter(
    "yrd_gateway_malformed_items_total",
    "Malformed trailing additional items dropped (the position kept)", ["protocol"],
)

NO_CARRIER = "none"


def count_quality(handled: Handled, protocol: str) -> None:
    """Count what one handled frame produced into the data-quality metrics (the server
    calls it once the frame's records are durable)."""
    for record in handled.quality:
        RECORDS.labels(protocol, record.carrier or NO_CARRIER, record.quality).inc()
    if handled.maker_items:
        MAKER_ITEMS_RAW.labels(protocol).inc(handled.maker_items)
    if handled.malformed_items:
        MALFORMED_ITEMS.labels(protocol).inc(handled.malformed_items)
