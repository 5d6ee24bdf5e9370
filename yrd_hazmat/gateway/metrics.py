"""Prometheus metrics of the gateway process (served on ``YRD_GATEWAY_METRICS_PORT``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from .session import Handled

CONNECTIONS = Gauge("yrd_gateway_open_connections", "Open connections", ["protocol"])
CONNECTIONS_TOTAL = Counter(
    "yrd_gateway_connections_total",
    "Connections accepted, refused (over YRD_GATEWAY_MAX_CONNECTIONS), refused over "
    "YRD_GATEWAY_MAX_PER_ADDRESS (address_limit), or closed: not authenticated in time "
    "(auth_timeout), without a readable frame for YRD_GATEWAY_IDLE_S (idle), too many "
    "dead letters (too_many_rejections), closed by the JT/T 809 link itself (link_closed: a "
    "throttled login, a platform disabled)",
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
OVERSIZED = Counter("yrd_gateway_oversized_frames_total",
                    "Frames dropped unread for their size (JT/T 809: YRD_JT809_MAX_FRAME_BYTES)",
                    ["protocol"])

# --- JT/T 809 lower platforms, by platform (its access code; 'unknown' for none configured)
UNKNOWN_PLATFORM = "unknown"
MAIN_UP = Gauge("yrd_jt809_main_link_up", "1 while the platform is logged in on a main link",
                ["platform"])
SLAVE_UP = Gauge("yrd_jt809_slave_link_up", "1 while the gateway's slave link to the platform "
                 "is up (logged in with its verify code)", ["platform"])
PLATFORM_RECONNECTS = Counter(
    "yrd_jt809_reconnects_total",
    "Links back up after the first: main (the platform logged in again), slave (the gateway "
    "reconnected its slave link)", ["platform", "link"])
PLATFORM_LOGINS = Counter(
    "yrd_jt809_logins_total",
    "Logins (UP_CONNECT_REQ) by result: ok, or refused (bad_access_code, disabled, bad_ip, "
    "no_such_user, bad_password) or throttled (address_throttled, platform_throttled)",
    ["platform", "result"])
PLATFORM_POSITIONS = Counter(
    "yrd_jt809_positions_total",
    "Positions published as pings: live (0x1202) or resent after an outage (0x1203)",
    ["platform", "kind"])
RESEND_LAG = Histogram(
    "yrd_jt809_resend_lag_seconds",
    "How late re-sent positions (0x1203) arrive: receipt time minus the fix's time",
    ["platform"], buckets=(10, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600))
PLATFORM_RECORDS = Counter(
    "yrd_jt809_records_total",
    "What platforms sent besides positions: alert (0x1402), vehicle (0x1201), waybill "
    "(0x120B, 0x120D), report (0x1601, 0x1401, 0x1412, 0x1403, 0x1301, 0x1302, 0x1502, "
    "0x1503, 0x120A, 0x120C, 0x1501, 0x1504, 0x1505, 0x1205, 0x1206, 0x1007, 0x1008)",
    ["platform", "kind"])
DOWNWARD = Counter(
    "yrd_jt809_downward_total",
    "Messages sent down to platforms, by the link they took (slave, or main when the slave "
    "link was down) or 'none' when neither was up", ["platform", "route"])
SLAVE_REJECTED = Counter(
    "yrd_jt809_slave_rejected_total",
    "Frames read on slave links and not used (unreadable, unexpected)", ["platform", "reason"])
REQUESTS = Counter(
    "yrd_jt809_requests_total",
    "Downward requests (yrd.platform-requests) by platform, kind (inspection, supervision, "
    "text, photo, tip, static_info, driver_info, listen, tachograph, emergency_access) and "
    "step: sent, failed (no link up), expired (not sent "
    "in time), late (unanswered at the deadline), answered, answered_late, unreadable (a "
    "dead letter)", ["platform", "kind", "result"])
ANSWER_SECONDS = Histogram(
    "yrd_jt809_answer_seconds",
    "How long platforms took to answer a downward request (answer received - request sent)",
    ["platform", "kind"], buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600))
