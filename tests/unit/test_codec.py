"""Bad input becomes a clear rejection reason, never an exception."""

import json

import pytest

from yrd_hazmat.core import codec
from yrd_hazmat.core.models import Ping
from yrd_hazmat.core.timeutil import CHINA_TZ
from tests.factories import T0, ping_json

KEY = "沪A12345".encode()
LIMIT = 16_384


def valid() -> dict:
    return json.loads(ping_json())


def test_valid_ping_decodes_with_defaults():
    result = codec.decode_ping(KEY, ping_json(), LIMIT)
    assert isinstance(result, Ping)
    assert result.vehicle_id == "沪A12345"
    assert result.ts == T0 and result.ts.utcoffset() == CHINA_TZ.utcoffset(None)
    assert result.crs == "WGS84" and result.alarm_flags == 0


@pytest.mark.parametrize(
    ("value", "reason", "words"),
    [
        (b"{not json", codec.BAD_JSON, "malformed"),
        (b'{"vehicle_id": "\xe6\xb2\xaa", "lat": NaN}', codec.BAD_JSON, "malformed"),
        (json.dumps({k: v for k, v in valid().items() if k != "lat"}).encode(), codec.INVALID,
         "missing required field `lat`"),
        (json.dumps(valid() | {"lat": 200}).encode(), codec.INVALID, "<= 90.0"),
        (json.dumps(valid() | {"speed_kmh": -3}).encode(), codec.INVALID, ">= 0.0"),
        (json.dumps(valid() | {"ts": "2026-11-02T09:00:00"}).encode(), codec.INVALID, "timezone"),
        (json.dumps(valid() | {"crs": "BD09"}).encode(), codec.INVALID, "crs"),
        (json.dumps(valid() | {"heading": 360}).encode(), codec.INVALID, "heading"),
        (json.dumps(valid() | {"vehicle_id": "x" * 1_000_000}).encode(), codec.TOO_LARGE, "bytes"),
        (b"[]", codec.INVALID, "Expected `object`"),
        (None, codec.INVALID, "no value"),
    ],
)
def test_bad_values_are_rejected_with_a_reason(value, reason, words):
    result = codec.decode_ping(KEY, value, LIMIT)
    assert isinstance(result, codec.Rejection)
    assert result.reason == reason
    assert words in result.error


def test_nan_as_python_json_writes_it_is_rejected():
    value = json.dumps(valid() | {"lon": float("nan")}).encode()  # Python emits bare NaN
    assert codec.decode_ping(KEY, value, LIMIT).reason == codec.BAD_JSON


@pytest.mark.parametrize("key", [None, b"\xff\xfe", "苏A00001".encode()])
def test_key_must_be_the_vehicle_id(key):
    result = codec.decode_ping(key, ping_json(), LIMIT)
    assert isinstance(result, codec.Rejection) and result.reason == codec.BAD_KEY


def test_dead_letter_keeps_origin_and_cuts_huge_values():
    value = ("沪" * 400_000).encode()  # 1.2 MB of 3-byte characters
    record = codec.dead_letter(
        topic="yrd.pings", partition=2, offset=41, key=KEY, value=value,
        rejection=codec.Rejection(codec.TOO_LARGE, "too big"), received_at=T0,
        max_raw_bytes=1000,
    )
    assert (record.source_topic, record.partition, record.offset) == ("yrd.pings", 2, 41)
    assert record.key == "沪A12345" and record.reason == codec.TOO_LARGE
    assert record.raw_size == len(value) and record.raw_truncated
    assert record.raw_encoding == "utf-8" and record.raw == "沪" * 333
    assert len(codec.encode(record)) < 2000


def test_dead_letter_of_binary_value_is_base64():
    record = codec.dead_letter(
        topic="t", partition=0, offset=0, key=None, value=b"\x00\xff\x10",
        rejection=codec.Rejection(codec.BAD_JSON, "x"), received_at=T0, max_raw_bytes=100,
    )
    assert record.raw_encoding == "base64" and record.raw == "AP8Q" and not record.raw_truncated
