"""Hostile records on every input topic (issue #8), judged by the pure functions the worker
uses: each gets a rejection with its reason, or a documented no-op, and never an exception."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import msgspec
import pytest

from yrd_hazmat.core.codec import Rejection, decode_ping
from yrd_hazmat.config import Settings
from yrd_hazmat.core.geo.jurisdiction import default_index
from yrd_hazmat.core.permits.model import MAX_ROUTE_POINTS
from yrd_hazmat.core.permits.store import (
    PermitEntry, dump_entry, entry_for, entry_size, load_entry, revoked_entry,
)
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.core.zones.model import MAX_VERTICES, parse_zone_record
from tests.factories import ping_json
from tests.permit_trips import permit_doc

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=CHINA_TZ)
V = "苏A66666"
LIMIT = Settings().max_permit_bytes
FIVE_MB = 5 * 1024 * 1024
NESTED = b'{"a":' * 50_000  # deeper than Python's stack: msgspec raises RecursionError


def permit_record(**changes) -> bytes:
    return json.dumps(permit_doc(V, T0, **changes)).encode()


def store(value: bytes, key: bytes | None = V.encode(), limit: int = LIMIT):
    return entry_for(key, value, default_index(), limit)


def zone_record(coordinates=None, **props) -> bytes:
    ring = coordinates or [[121.40, 31.20], [121.41, 31.20], [121.41, 31.21], [121.40, 31.21],
                           [121.40, 31.20]]
    base = {"zone_id": "z1", "name": "hostile test", "kind": "custom", "banned_classes": "all"}
    return json.dumps({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                       "properties": base | props}).encode()


def many_vertices(n: int) -> list[list[float]]:
    """A valid ring (a regular polygon) of n vertices around Shanghai."""
    import math
    ring = [[121.4 + 0.01 * math.cos(2 * math.pi * i / n), 31.2 + 0.01 * math.sin(2 * math.pi * i / n)]
            for i in range(n)]
    return ring + [ring[0]]


def assert_rejected(result, reason: str, words: str = "") -> None:
    assert isinstance(result, Rejection), result
    assert result.reason == reason, result
    assert words in result.error, result


# --- permits ----------------------------------------------------------------------------


def test_a_valid_permit_is_stored_within_the_bound():
    value = store(permit_record())
    assert isinstance(value, bytes) and len(value) <= LIMIT
    assert load_entry(value) == PermitEntry(permit_record())


@pytest.mark.parametrize(
    ("value", "reason", "words"),
    [
        (b"{not json", "bad_json", "malformed"),
        (NESTED, "bad_json", "nested too deeply"),
        (b"null", "invalid", "null"),
        (b"[1, 2]", "invalid", "object"),
        (permit_record(quantity_kg="lots"), "invalid", "quantity_kg"),
        (permit_record(provinces="JS"), "invalid", "provinces"),
        (permit_record(valid_until=(T0 - timedelta(hours=5)).isoformat()), "invalid", "valid_until"),
        (permit_record(route={"type": "LineString", "coordinates": [[120.3, 31.5]]}),
         "invalid", "route"),
        (permit_record(route={"type": "LineString", "coordinates": [[120.3, 31.5], [120.3, 31.5]]}),
         "bad_geometry", "no length"),
        (permit_record(route={"type": "LineString", "coordinates": [[31.5, 120.3], [31.2, 121.4]]}),
         "bad_geometry", "leaves the YRD"),
        (permit_record(carrier="x" * 201), "invalid", "carrier"),
    ],
)
def test_hostile_permits_are_rejected_with_a_reason(value, reason, words):
    assert_rejected(store(value), reason, words)


def test_a_route_of_too_many_points_is_invalid_even_under_a_raised_byte_bound():
    route = {"type": "LineString", "coordinates": [[120.3, 31.5]] * (MAX_ROUTE_POINTS + 1)}
    assert_rejected(store(permit_record(route=route), limit=1_000_000), "invalid",
                    f"length <= {MAX_ROUTE_POINTS}")


def test_a_route_zigzagging_across_the_region_is_rejected_before_it_is_walked():
    zigzag = [[118.0, 30.0], [122.0, 32.0]] * 2000  # ~900,000 km: 9 million border checks
    assert_rejected(store(permit_record(route={"type": "LineString", "coordinates": zigzag})),
                    "bad_geometry", "km long")


def test_a_five_megabyte_permit_is_too_large_and_not_even_decoded():
    padded = permit_record(carrier="宁" * (FIVE_MB // 3))
    assert len(padded) > FIVE_MB
    assert_rejected(store(padded), "too_large", f"limit {LIMIT}")


def test_the_stored_value_with_its_revocation_never_exceeds_the_bound():
    """A record just under the bound would exceed it once wrapped (and later revoked)."""
    base = permit_record()
    padded = json.loads(base)
    padded["note"] = ""  # unknown fields are allowed and kept
    padding = LIMIT - len(json.dumps(padded).encode())
    padded["note"] = "x" * padding
    value = json.dumps(padded).encode()
    assert len(value) == LIMIT
    assert entry_size(value) > LIMIT
    assert_rejected(store(value), "too_large", "stored")
    smaller = json.dumps(padded | {"note": "x" * (padding - 40)}).encode()
    stored = store(smaller)
    assert isinstance(stored, bytes)
    assert len(revoked_entry(stored, 2**62)) <= LIMIT


@pytest.mark.parametrize(
    ("key", "words"),
    [(None, "no key"), ("沪B00000".encode(), "differs"), (b"\xff\xfe", "differs")],
)
def test_a_permit_key_must_be_its_vehicle(key, words):
    assert_rejected(store(permit_record(), key=key), "bad_key", words)


def test_tombstones_for_no_permit_or_an_already_revoked_one_change_nothing():
    assert revoked_entry(None, 1_000) is None
    stored = dump_entry(PermitEntry(permit_record()))
    revoked = revoked_entry(stored, 1_000)
    assert load_entry(revoked).revoked_at_ms == 1_000
    assert revoked_entry(revoked, 2_000) is None  # the first revocation stands


# --- zones ------------------------------------------------------------------------------


def test_a_valid_zone_record_is_accepted():
    zone = parse_zone_record(b"z1", zone_record(), Settings().max_zone_bytes)
    assert not isinstance(zone, Rejection), zone


@pytest.mark.parametrize(
    ("key", "value", "reason", "words"),
    [
        (b"z1", b"{not json", "bad_json", "malformed"),
        (b"z1", NESTED, "bad_json", "nested too deeply"),
        (b"z1", b'{"type": "Feature", "geometry": {}, "properties": {"zone_id": 7}}', "invalid", "zone_id"),
        (b"z1", zone_record(banned_classes="some"), "invalid", "banned_classes"),
        (b"z1", zone_record([[31.20, 121.40], [31.20, 121.41], [31.21, 121.41], [31.20, 121.40]]),
         "bad_geometry", "outside the YRD"),
        (b"z1", zone_record([[121.40, 31.20], [121.41, 31.21], [121.41, 31.20], [121.40, 31.21],
                             [121.40, 31.20]]), "bad_geometry", "Self-intersection"),
        (b"z1", zone_record(name="n" * 5_000_000), "too_large", "limit"),
        (b"z1", zone_record(many_vertices(100_000)), "too_large", "limit"),
        (None, zone_record(), "bad_key", "no key"),
        (b"z2", zone_record(), "bad_key", "differs"),
    ],
)
def test_hostile_zones_are_rejected_with_a_reason(key, value, reason, words):
    assert_rejected(parse_zone_record(key, value, Settings().max_zone_bytes), reason, words)


def test_a_zone_with_100000_vertices_is_too_large_even_under_a_raised_byte_bound():
    value = zone_record(many_vertices(100_000))
    assert_rejected(parse_zone_record(b"z1", value, 10 * 1024 * 1024), "too_large",
                    f"100001 vertices, limit {MAX_VERTICES}")


# --- pings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "reason", "words"),
    [
        (b"A1", b"{not json", "bad_json", "malformed"),
        (b"A1", NESTED[:16_000], "bad_json", "nested too deeply"),
        (b"A1", ping_json(vehicle_id="A1", speed="fast"), "invalid", ""),
        (b"A1", b'{"vehicle_id": "A1", "ts": "2026-11-30T10:00:00+08:00", "lat": 121.47, '
                b'"lon": 31.23, "speed_kmh": 50}', "invalid", "lat"),
        (b"A1", b"x" * FIVE_MB, "too_large", "limit"),
        (b"B2", ping_json(vehicle_id="A1"), "bad_key", "differs"),
        (b"A1", None, "invalid", "no value"),
    ],
)
def test_hostile_pings_are_rejected_with_a_reason(key, value, reason, words):
    assert_rejected(decode_ping(key, value, Settings().max_ping_bytes), reason, words)


def test_settings_keep_reference_records_under_the_broker_record_limit():
    assert Settings().max_permit_bytes == Settings().max_zone_bytes == 256 * 1024
    with pytest.raises(ValueError):
        Settings(max_permit_bytes=5 * 1024 * 1024)
    assert msgspec.json.decode(msgspec.json.encode({"ok": True}))  # sanity: msgspec still fine
