"""Bytes to models and back: the one place input is checked.

A record that cannot become a valid :class:`~yrd_hazmat.core.models.Ping` is never
an exception for the caller: :func:`decode_ping` returns a :class:`Rejection`
with a short reason code (a metric label) and a readable error, which the
worker turns into a :class:`~yrd_hazmat.core.models.DeadLetter`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, TypeVar

import msgspec

from .models import Alert, DeadLetter, Ping
from .timeutil import to_ms

# Reason codes for rejected input: a closed set, so they can label metrics.
TOO_LARGE: Final = "too_large"
BAD_JSON: Final = "bad_json"
INVALID: Final = "invalid"
BAD_KEY: Final = "bad_key"
TOO_OLD: Final = "too_old"
TIME_AHEAD: Final = "time_ahead"
PROCESSING_ERROR: Final = "processing_error"
BAD_GEOMETRY: Final = "bad_geometry"
REASONS: Final = (TOO_LARGE, BAD_JSON, INVALID, BAD_KEY, TOO_OLD, TIME_AHEAD, PROCESSING_ERROR,
                  BAD_GEOMETRY)

T = TypeVar("T")
_ping_decoder = msgspec.json.Decoder(Ping)
_encoder = msgspec.json.Encoder()


class Rejection(msgspec.Struct, frozen=True):
    """Why a record was not accepted."""

    reason: str
    error: str


def decoded(decode: Callable[[Any], T], raw: Any) -> T | Rejection:
    """``decode(raw)``, or the rejection saying why the input is not JSON or not valid."""
    try:
        return decode(raw)
    except msgspec.ValidationError as exc:
        return Rejection(INVALID, str(exc))
    except msgspec.DecodeError as exc:
        return Rejection(BAD_JSON, str(exc))
    except RecursionError:  # msgspec raises it for JSON nested deeper than Python's stack
        return Rejection(BAD_JSON, "JSON is nested too deeply")


def decode_ping(key: bytes | None, value: bytes | None, max_bytes: int) -> Ping | Rejection:
    """Decode and validate one ``yrd.pings`` record.

    The key must be the vehicle id (UTF-8) and equal the value's
    ``vehicle_id``: pings are partitioned by vehicle, and a ping under the
    wrong key would be processed away from its vehicle's state.
    """
    if value is None:
        return Rejection(INVALID, "record has no value")
    if len(value) > max_bytes:
        return Rejection(TOO_LARGE, f"value is {len(value)} bytes, limit {max_bytes}")
    ping = decoded(_ping_decoder.decode, value)
    if isinstance(ping, Rejection):
        return ping
    if key is None:
        return Rejection(BAD_KEY, "record has no key; key pings by vehicle_id")
    try:
        key_text = key.decode("utf-8")
    except UnicodeDecodeError:
        return Rejection(BAD_KEY, "key is not UTF-8")
    if key_text != ping.vehicle_id:
        return Rejection(BAD_KEY, f"key {key_text!r} differs from vehicle_id {ping.vehicle_id!r}")
    return ping


def time_ahead(ping: Ping, received_ms: int, tolerance_ms: int,
               ts_ms: int | None = None) -> Rejection | None:
    """The rejection of a fix stamped more than ``tolerance_ms`` ahead of the moment the
    record reached the broker (``received_ms``): a terminal's clock fault (China time
    applied twice is 8 h ahead). Judged against the record's own time, not the worker's
    clock, so a replay decides the same. ``ts_ms``: the fix's time in ms, if known already."""
    ahead_ms = (ts_ms if ts_ms is not None else to_ms(ping.ts)) - received_ms
    if ahead_ms <= tolerance_ms:
        return None
    return Rejection(TIME_AHEAD, f"fix stamped {ping.ts.isoformat()}, {ahead_ms / 1000:.0f} s "
                                 f"ahead of its arrival (bound {tolerance_ms / 1000:.0f} s)")


def encode(obj: msgspec.Struct) -> bytes:
    """JSON-encode any of the topic models."""
    return _encoder.encode(obj)


def key_text(key: bytes | None) -> str | None:
    """A record key as text (undecodable bytes replaced), or None for no key."""
    return key.decode("utf-8", "replace") if key is not None else None


def decode_alert(value: bytes) -> Alert:
    return msgspec.json.decode(value, type=Alert)


def dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    rejection: Rejection,
    received_at: datetime,
    max_raw_bytes: int,
) -> DeadLetter:
    """Wrap a rejected record with its origin so it can be found and replayed.

    The value is kept as text when it is UTF-8, otherwise as base64; values
    larger than ``max_raw_bytes`` are cut, and their size and SHA-256 kept, so
    the dead-letter record itself always fits in a Kafka message.
    """
    data = value or b""
    kept = data[:max_raw_bytes]
    raw, encoding = _as_text(kept, truncated=len(kept) < len(data))
    return DeadLetter(
        source_topic=topic,
        partition=partition,
        offset=offset,
        key=key_text(key),
        reason=rejection.reason,
        error=rejection.error[:2000],
        raw=raw,
        raw_encoding=encoding,
        raw_size=len(data),
        raw_truncated=len(kept) < len(data),
        raw_sha256=hashlib.sha256(data).hexdigest(),
        received_at=received_at,
    )


def _as_text(data: bytes, *, truncated: bool) -> tuple[str, str]:
    """UTF-8 text if the bytes are (a cut may split one character), else base64."""
    for cut in range(4 if truncated else 1):
        try:
            return data[: len(data) - cut].decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            continue
    return base64.b64encode(data).decode("ascii"), "base64"
