"""The read model's Redis key schema, written once.

Every key the worker writes and the desk, the exposure lookup and the tests read
is named here, and nowhere else: the readers call :class:`Keys`, and the write
script receives its keys from it (``KEYS`` for the fixed and per-province keys,
``ARGV`` key prefixes for the per-vehicle ones, see :mod:`.writer`), so a change
of name or prefix is one edit. ``P`` is the prefix (``yrd`` by default,
``YRD_REDIS_PREFIX``); ``PROV`` is SH, JS, ZJ, AH or ``none`` outside the region.
The README's "Redis read model" table is this one (a test compares them).

======================================  ==========  ===========================================
key                                     type        content
======================================  ==========  ===========================================
``P:vehicle:{vehicle_id}``              hash        latest ping: vehicle_id, ts, ts_ms, lat,
                                                    lon, speed_kmh, heading, province,
                                                    city_code, city_name, open_alerts,
                                                    updated_at (expires after the position TTL)
``P:positions``                         geo set     every vehicle's latest position (GEOSEARCH)
``P:track:{vehicle_id}``                sorted set  the last hour: score = ts ms, member =
                                                    ``ts_ms,lat,lon,speed_kmh``
``P:vehicles:{PROV}``                   sorted set  vehicles whose latest ping is in the
                                                    province, score = ts ms
``P:alerts:open:vehicle:{vehicle_id}``  hash        incident_id -> raised alert JSON
``P:alerts:open:province:{PROV}``       hash        incident_id -> raised alert JSON
``P:alerts:latest``                     sorted set  the latest 1,000 alerts by event time:
                                                    score = ts ms, member = alert_id, a
                                                    newline, the alert JSON
``P:alerts:seen``                       sorted set  the latest alert_ids written (replays are
                                                    skipped)
``P:alerts:cleared``                    sorted set  the latest cleared incident_ids (a
                                                    replayed raise does not reopen them)
``P:alerts:seq``                        string      counter: the scores of the two sets above
======================================  ==========  ===========================================

The desk's sessions (``P:desk:session:{sid}``, in the README's table too) share the
prefix but are the desk's own keys (:mod:`yrd_hazmat.desk.sessions`).
"""

from __future__ import annotations

from ..core.models import PROVINCES as REGION_PROVINCES

DEFAULT_PREFIX = "yrd"
OUTSIDE = "none"
"""The ``PROV`` of the per-province keys for a vehicle or alert outside the region."""
PROVINCES = (*REGION_PROVINCES, OUTSIDE)
"""The ``PROV`` of every per-province key."""
RECENT_ALERTS = 1000
"""Alerts kept in ``P:alerts:latest``."""
SEEN_WINDOW = 50_000
"""alert_ids (and cleared incident_ids) kept in ``P:alerts:seen`` (``P:alerts:cleared``)."""


class Keys:
    """The read model's key names under one prefix.

    Per-vehicle keys are a fixed prefix plus the vehicle id (``vehicle_prefix``
    and so on), so the write script can be given the prefix once per call
    instead of one key per vehicle.
    """

    __slots__ = ("prefix", "positions", "recent", "seen", "cleared", "seq", "vehicle_prefix",
                 "track_prefix", "open_by_vehicle_prefix")

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix
        self.positions = f"{prefix}:positions"
        self.recent = f"{prefix}:alerts:latest"
        self.seen = f"{prefix}:alerts:seen"
        self.cleared = f"{prefix}:alerts:cleared"
        self.seq = f"{prefix}:alerts:seq"
        self.vehicle_prefix = f"{prefix}:vehicle:"
        self.track_prefix = f"{prefix}:track:"
        self.open_by_vehicle_prefix = f"{prefix}:alerts:open:vehicle:"

    def vehicle(self, vehicle_id: str) -> str:
        return self.vehicle_prefix + vehicle_id

    def track(self, vehicle_id: str) -> str:
        return self.track_prefix + vehicle_id

    def open_by_vehicle(self, vehicle_id: str) -> str:
        return self.open_by_vehicle_prefix + vehicle_id

    def vehicles_in(self, province: str | None) -> str:
        """``None`` (or ``""``, as the hash stores it): outside the region."""
        return f"{self.prefix}:vehicles:{province or OUTSIDE}"

    def open_by_province(self, province: str | None) -> str:
        """``None`` (or ``""``, as the hash stores it): outside the region."""
        return f"{self.prefix}:alerts:open:province:{province or OUTSIDE}"
