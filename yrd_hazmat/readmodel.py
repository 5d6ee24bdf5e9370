"""The Redis read model: latest vehicle positions and open alerts, without Kafka.

Key layout (``P`` is the prefix, ``yrd`` by default; ``PROV`` is SH, JS, ZJ,
AH or ``none`` outside the region):

=================================  ====  ==================================================
key                                type  content
=================================  ====  ==================================================
``P:vehicle:{vehicle_id}``         hash  latest ping: ts, ts_ms, lat, lon, speed_kmh,
                                         province, city_code, city_name, open_alerts,
                                         updated_at
``P:positions``                    geo   every vehicle's latest position (GEOSEARCH)
``P:vehicles:{PROV}``              zset  vehicles last seen in the province, score = ts ms
``P:alerts:open:vehicle:{id}``     hash  incident_id -> raised alert JSON
``P:alerts:open:province:{PROV}``  hash  incident_id -> raised alert JSON
``P:alerts:latest``                zset  the latest 1,000 alerts by event time (raised and
                                         cleared): score = ts ms, member = alert_id, newline,
                                         alert JSON
``P:alerts:seen``                  zset  the latest alert_ids written (replays are skipped)
``P:alerts:cleared``               zset  the latest cleared incident_ids (a replayed raise
                                         of a cleared incident does not reopen it)
``P:alerts:seq``                   str   counter: the scores of the two sets above
=================================  ====  ==================================================

Writing is split from the stream. The worker calls :meth:`ReadModel.submit` per
batch: synchronous, no I/O, never raises; it merges the batch into an in-memory
*outbox* (per vehicle only the newest observation, alerts in order). A flusher
task (:meth:`ReadModel.run`) writes the outbox every ``interval_s`` in one
pipeline round trip. If Redis is down or hung, the flush fails within the
socket timeout, the outbox is kept (and goes on merging), and the flusher
retries with a capped backoff; once Redis is back the whole outbox is written,
so every vehicle's latest position and every alert raised meanwhile catch up
without waiting for the vehicle's next ping.

The writes are one Lua script per chunk of the outbox, which makes them safe to
replay and never backwards:

* a vehicle's hash, position and province set change only if the update's
  event time (``ts_ms``) is newer than the stored one, so a replay after a
  crash, or a second worker writing older data, changes nothing; the province
  a vehicle leaves is the one its hash shows;
* an alert whose ``alert_id`` is in ``P:alerts:seen`` is skipped, so a replay
  never duplicates it in the recent list;
* a CLEARED alert records its incident in ``P:alerts:cleared``; a RAISED alert
  of a cleared incident does not reopen it, so a raise and its clear end
  cleared in either order, in one flush or in two;
* ``open_alerts`` in the vehicle hash is the size of the vehicle's open-alert
  hash after the flush.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TimeoutError as RedisTimeoutError,
)

from . import metrics
from .alerts import MOMENTARY
from .codec import encode
from .models import Alert, AlertState
from .models import PROVINCES as REGION_PROVINCES
from .observation import Observation
from .timeutil import from_ms

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger(__name__)

PROVINCES = (*REGION_PROVINCES, "none")
"""The provinces of the read model's per-province keys; ``none``: outside the region."""
RECENT_ALERTS = 1000
SEEN_WINDOW = 50_000
"""alert_ids (and cleared incident_ids) remembered for de-duplication."""
MAX_ALERTS = 200_000
CHUNK = 5_000
"""Vehicles or alerts per script call: a flush of more is several calls, one round trip."""
_GEO_LAT = 85.05112878


VEHICLE_FIELDS = ("ts", "ts_ms", "lat", "lon", "speed_kmh", "heading", "province", "city_name",
                  "open_alerts")
"""The fields of a vehicle's hash a list of trucks needs."""
_alert_decoder = msgspec.json.Decoder(Alert)

TRACK_POINTS = 720
"""Positions of one vehicle held for the track between two flushes (an hour at 5 s)."""


class Keys:
    """Key names of the read model under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.positions = f"{prefix}:positions"
        self.recent = f"{prefix}:alerts:latest"
        self.seen = f"{prefix}:alerts:seen"
        self.cleared = f"{prefix}:alerts:cleared"
        self.seq = f"{prefix}:alerts:seq"

    def vehicle(self, vehicle_id: str) -> str:
        return f"{self.prefix}:vehicle:{vehicle_id}"

    def track(self, vehicle_id: str) -> str:
        return f"{self.prefix}:track:{vehicle_id}"

    def vehicles_in(self, province: str | None) -> str:
        return f"{self.prefix}:vehicles:{province or 'none'}"

    def open_by_vehicle(self, vehicle_id: str) -> str:
        return f"{self.prefix}:alerts:open:vehicle:{vehicle_id}"

    def open_by_province(self, province: str | None) -> str:
        return f"{self.prefix}:alerts:open:province:{province or 'none'}"


class VehicleUpdate(msgspec.Struct, frozen=True, gc=False):
    """A vehicle's latest observation after a batch, and where it was before."""

    vehicle_id: str
    latest: Observation
    previous_province: str | None
    previously_seen: bool
    open_alerts: int
    """Not written: the hash's ``open_alerts`` counts the open-alert hash in Redis."""
    track: tuple[Observation, ...] = ()
    """The batch's other positions before ``latest`` (for the vehicle's last-hour track)."""


# --- the outbox (pure: no I/O) --------------------------------------------------------------
class PendingVehicle:
    """A vehicle's newest observation waiting for Redis, and the province it was shown in."""

    __slots__ = ("vehicle_id", "latest", "previous_province", "previously_seen", "updated_at",
                 "track")

    def __init__(
        self,
        vehicle_id: str,
        latest: Observation,
        previous_province: str | None,
        previously_seen: bool,
        updated_at: str,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.latest = latest
        self.previous_province = previous_province
        self.previously_seen = previously_seen
        self.updated_at = updated_at
        self.track: list[Observation] = []
        """Earlier positions since the last flush (at most TRACK_POINTS)."""

    def keep(self, points: Iterable[Observation]) -> None:
        self.track.extend(points)
        if len(self.track) > TRACK_POINTS:
            del self.track[:-TRACK_POINTS]

    def row(self) -> list[Any]:
        """The script's arguments for this vehicle (numbers as text, written verbatim)."""
        obs = self.latest
        geo_ok = -_GEO_LAT <= obs.lat <= _GEO_LAT and -180.0 <= obs.lon <= 180.0
        return [
            self.vehicle_id,
            str(obs.ts_ms),
            from_ms(obs.ts_ms).isoformat(),
            repr(float(obs.lat)),
            repr(float(obs.lon)),
            repr(float(obs.speed_kmh)),
            obs.province or "",
            obs.city.code if obs.city else "",
            obs.city.name if obs.city else "",
            self.updated_at,
            self.previous_province or "",
            1 if self.previously_seen else 0,
            1 if geo_ok else 0,
            "" if obs.heading is None else str(obs.heading),
            ";".join(f"{o.ts_ms},{float(o.lat)!r},{float(o.lon)!r},{float(o.speed_kmh)!r}"
                     for o in self.track if o.ts_ms < obs.ts_ms) if self.track else "",
        ]


class PendingAlert:
    """An alert waiting for Redis: its open/clear change and its recent-list entry."""

    __slots__ = ("alert_id", "incident_id", "vehicle_id", "province", "raised", "momentary",
                 "body", "push", "ts_ms")

    def __init__(self, alert: Alert) -> None:
        self.alert_id = alert.alert_id
        self.incident_id = alert.incident_id
        self.vehicle_id = alert.vehicle_id
        self.province = alert.province or ""
        self.raised = alert.state is AlertState.RAISED
        self.momentary = alert.type in MOMENTARY
        self.body: str = encode(alert).decode("utf-8")
        self.ts_ms = int(alert.ts.timestamp() * 1000)
        self.push = True
        """False once compacted: the open/clear change is kept, the recent-list entry not."""

    def row(self) -> list[Any]:
        return [
            self.alert_id,
            self.incident_id,
            self.vehicle_id,
            self.province,
            "r" if self.raised else "c",
            1 if self.momentary else 0,
            self.body,
            1 if self.push else 0,
            self.ts_ms,
        ]


class Outbox:
    """What the read model has not written yet, merged so that it stays small.

    Per vehicle only the newest observation by event time is kept, with the
    province shown before the first pending update (the one the vehicle leaves).
    Alerts are kept in order. If more than ``max_alerts`` wait (a long outage),
    the outbox is compacted: the newest ``recent`` alerts stay as they are; of
    the older ones, momentary alerts (recent-list only) and repeated alert_ids
    are dropped, a raise whose clear also waits is dropped, and the rest keep
    their open/clear change but lose their recent-list entry (which the list's
    trim would have removed anyway). ``dropped`` counts the recent-list entries
    lost this way; open/clear changes are never dropped, so the outbox may stay
    above ``max_alerts`` when that many incidents changed state.
    """

    def __init__(self, max_alerts: int = MAX_ALERTS, recent: int = RECENT_ALERTS) -> None:
        self.max_alerts = max_alerts
        self.recent = recent
        self.vehicles: dict[str, PendingVehicle] = {}
        self.alerts: list[PendingAlert] = []
        self.dropped = 0
        self._compact_at = max_alerts

    def __len__(self) -> int:
        return len(self.vehicles) + len(self.alerts)

    def add(self, updates: Iterable[VehicleUpdate], alerts: Iterable[Alert], now: datetime) -> None:
        stamp = now.isoformat()
        pending = self.vehicles
        for u in updates:
            current = pending.get(u.vehicle_id)
            if current is None:
                current = pending[u.vehicle_id] = PendingVehicle(
                    u.vehicle_id, u.latest, u.previous_province, u.previously_seen, stamp
                )
            elif u.latest.ts_ms >= current.latest.ts_ms:
                current.keep((current.latest,))
                current.latest = u.latest
                current.updated_at = stamp
            current.keep(u.track)
        self.alerts.extend(PendingAlert(a) for a in alerts)
        if len(self.alerts) > self._compact_at:
            self.compact()

    def take(self) -> tuple[dict[str, PendingVehicle], list[PendingAlert]]:
        """Everything pending, leaving the outbox empty (for one flush attempt)."""
        taken = (self.vehicles, self.alerts)
        self.vehicles, self.alerts = {}, []
        return taken

    def restore(self, vehicles: dict[str, PendingVehicle], alerts: list[PendingAlert]) -> None:
        """Put back what a failed flush took, before what was added meanwhile."""
        for vehicle_id, old in vehicles.items():
            current = self.vehicles.get(vehicle_id)
            if current is None:
                self.vehicles[vehicle_id] = old
                continue
            current.previous_province = old.previous_province
            current.previously_seen = old.previously_seen
            current.track[:0] = old.track + [old.latest]
            if old.latest.ts_ms > current.latest.ts_ms:
                current.latest, current.updated_at = old.latest, old.updated_at
        self.alerts = alerts + self.alerts
        if len(self.alerts) > self._compact_at:
            self.compact()

    def compact(self) -> int:
        """Shrink the alerts as described above; returns the recent-list entries dropped."""
        cut = max(0, len(self.alerts) - self.recent)
        head, tail = self.alerts[:cut], self.alerts[cut:]
        cleared = {a.incident_id for a in self.alerts if not a.raised and not a.momentary}
        kept: list[PendingAlert] = []
        ids: set[str] = set()
        dropped = 0
        for a in head:
            if a.push:
                dropped += 1
            if a.momentary or a.alert_id in ids or (a.raised and a.incident_id in cleared):
                continue
            ids.add(a.alert_id)
            a.push = False
            if not a.raised:
                a.body = ""  # a clear needs no body once it is not listed
            kept.append(a)
        self.alerts = kept + tail
        self.dropped += dropped
        self._compact_at = max(self.max_alerts, 2 * len(self.alerts))
        return dropped


def chunked(rows: list[Any], size: int) -> list[list[Any]]:
    return [rows[i:i + size] for i in range(0, len(rows), size)] or [[]]


def script_calls(
    vehicles: Iterable[PendingVehicle], alerts: Iterable[PendingAlert], chunk: int = CHUNK
) -> list[tuple[bytes, bytes]]:
    """The (vehicles JSON, alerts JSON) argument pairs of one flush's script calls.

    Alerts go in order; within a call the script applies the alerts before the
    vehicles. Calls run in order in one pipeline.
    """
    v_chunks = chunked([v.row() for v in vehicles], chunk)
    a_chunks = chunked([a.row() for a in alerts], chunk)
    n = max(len(v_chunks), len(a_chunks))
    enc = msgspec.json.encode
    return [
        (enc(v_chunks[i] if i < len(v_chunks) else []), enc(a_chunks[i] if i < len(a_chunks) else []))
        for i in range(n)
    ]


# --- a read script -------------------------------------------------------------------------
# ARGV: the vehicle key prefix, the number of fields n, n field names, then vehicle ids.
# Returns one array per vehicle: its fields (nil where missing), as HMGET answers.
READ_LATEST_SCRIPT = r"""
local prefix = ARGV[1]
local n = tonumber(ARGV[2])
local fields = {}
for i = 1, n do fields[i] = ARGV[2 + i] end
local out = {}
for i = 3 + n, #ARGV do
  out[#out + 1] = redis.call('HMGET', prefix .. ARGV[i], unpack(fields))
end
return out
"""


# --- the write script ---------------------------------------------------------------------
# ARGV: prefix, ttl_s, vehicles JSON, alerts JSON, recent list size, seen window.
# vehicle row: id, ts_ms, ts (ISO), lat, lon, speed, province, city_code, city_name,
#              updated_at, previous province (hint), previously seen (0/1), geo ok (0/1),
#              heading ('' when unknown), earlier track points 'ts,lat,lon,speed;...' ('' none)
# alert row:   alert_id, incident_id, vehicle_id, province, 'r'|'c', momentary, body, push,
#              ts_ms (event time: the recent list keeps the latest by event time)
# Returns {vehicles applied, vehicles stale (skipped), alerts new, alerts replayed (skipped)}.
# Keys are built from the prefix (not declared): the read model needs a non-cluster Redis.
WRITE_SCRIPT = r"""
local P = ARGV[1]
local ttl = tonumber(ARGV[2])
local vehicles = cjson.decode(ARGV[3])
local alerts = cjson.decode(ARGV[4])
local recent_max = tonumber(ARGV[5])
local window = tonumber(ARGV[6])
local PROVINCES = {__PROVINCES__}
local BATCH = 999
local TRACK_MS = 3600000
local function prov(p)
  if (not p) or p == '' then return 'none' end
  return p
end
local function call_chunked(cmd, key, args, width)
  local n = #args
  local step = BATCH * width
  for i = 1, n, step do
    local last = math.min(i + step - 1, n)
    redis.call(cmd, key, unpack(args, i, last))
  end
end
local seen_key = P .. ':alerts:seen'
local cleared_key = P .. ':alerts:cleared'
local touched = {}

-- alerts, in order
local pushes = {}
local new_alerts, dup_alerts, cleared_added = 0, 0, 0
local seq = 0
if #alerts > 0 then
  seq = redis.call('INCRBY', P .. ':alerts:seq', #alerts) - #alerts
end
for _, a in ipairs(alerts) do
  local alert_id, incident, vid, province, state = a[1], a[2], a[3], a[4], a[5]
  if redis.call('ZSCORE', seen_key, alert_id) then
    dup_alerts = dup_alerts + 1
  else
    new_alerts = new_alerts + 1
    seq = seq + 1
    redis.call('ZADD', seen_key, seq, alert_id)
    if a[6] == 0 then
      local by_vehicle = P .. ':alerts:open:vehicle:' .. vid
      if state == 'r' then
        if not redis.call('ZSCORE', cleared_key, incident) then
          redis.call('HSET', by_vehicle, incident, a[7])
          redis.call('HSET', P .. ':alerts:open:province:' .. prov(province), incident, a[7])
        end
      else
        redis.call('ZADD', cleared_key, seq, incident)
        cleared_added = cleared_added + 1
        redis.call('HDEL', by_vehicle, incident)
        for _, p in ipairs(PROVINCES) do
          redis.call('HDEL', P .. ':alerts:open:province:' .. p, incident)
        end
      end
      touched[vid] = true
    end
    if a[8] == 1 then
      pushes[#pushes + 1] = a[9]
      pushes[#pushes + 1] = alert_id .. '\n' .. a[7]
    end
  end
end
if #pushes > 0 then
  -- the latest alerts by event time (ties by alert id): the same end state whatever the
  -- order in which alerts (and replays) were written
  local recent_key = P .. ':alerts:latest'
  call_chunked('ZADD', recent_key, pushes, 2)
  redis.call('ZREMRANGEBYRANK', recent_key, 0, -(recent_max + 1))
end
if new_alerts > 0 then
  redis.call('ZREMRANGEBYRANK', seen_key, 0, -(window + 1))
end
if cleared_added > 0 then
  redis.call('ZREMRANGEBYRANK', cleared_key, 0, -(window + 1))
end

-- vehicles: only newer than what is stored
local positions = {}
local arrived = {}
local applied, stale = 0, 0
local in_call = {}
for _, v in ipairs(vehicles) do
  local vid = v[1]
  local key = P .. ':vehicle:' .. vid
  local ts = tonumber(v[2])
  local cur = redis.call('HMGET', key, 'ts_ms', 'province')
  local open = redis.call('HLEN', P .. ':alerts:open:vehicle:' .. vid)
  local cur_ts = tonumber(cur[1])
  if cur_ts and cur_ts >= ts then
    stale = stale + 1
    redis.call('HSET', key, 'open_alerts', open)
  else
    local new_prov = prov(v[7])
    redis.call('HSET', key, 'vehicle_id', vid, 'ts', v[3], 'ts_ms', v[2], 'lat', v[4],
      'lon', v[5], 'speed_kmh', v[6], 'province', v[7], 'city_code', v[8],
      'city_name', v[9], 'open_alerts', open, 'updated_at', v[10], 'heading', v[14])
    redis.call('EXPIRE', key, ttl)
    -- the last hour of track: a point per applied update (time, lat, lon, speed)
    local track = P .. ':track:' .. vid
    redis.call('ZADD', track, ts, v[2] .. ',' .. v[4] .. ',' .. v[5] .. ',' .. v[6])
    for point in string.gmatch(v[15], '([^;]+)') do
      local at = tonumber(string.match(point, '^(%d+),'))
      if at then redis.call('ZADD', track, at, point) end
    end
    redis.call('ZREMRANGEBYSCORE', track, '-inf', '(' .. (ts - TRACK_MS))
    redis.call('EXPIRE', track, 7200)
    local old = cur[2]
    if (not old) and v[12] == 1 then old = v[11] end
    if old and prov(old) ~= new_prov then
      redis.call('ZREM', P .. ':vehicles:' .. prov(old), vid)
    end
    local set = arrived[new_prov]
    if not set then set = {}; arrived[new_prov] = set end
    set[#set + 1] = v[2]
    set[#set + 1] = vid
    if v[13] == 1 then
      positions[#positions + 1] = v[5]
      positions[#positions + 1] = v[4]
      positions[#positions + 1] = vid
    end
    applied = applied + 1
  end
  in_call[vid] = true
end
for p, set in pairs(arrived) do
  call_chunked('ZADD', P .. ':vehicles:' .. p, set, 2)
end
if #positions > 0 then
  call_chunked('GEOADD', P .. ':positions', positions, 3)
end
-- vehicles whose alerts changed without an update in this call
for vid in pairs(touched) do
  if not in_call[vid] then
    local key = P .. ':vehicle:' .. vid
    if redis.call('EXISTS', key) == 1 then
      redis.call('HSET', key, 'open_alerts', redis.call('HLEN', P .. ':alerts:open:vehicle:' .. vid))
    end
  end
end
return {applied, stale, new_alerts, dup_alerts}
"""
WRITE_SCRIPT = WRITE_SCRIPT.replace(
    "__PROVINCES__", ", ".join(f"'{p}'" for p in PROVINCES))
WRITE_SHA = hashlib.sha1(WRITE_SCRIPT.encode("utf-8")).hexdigest()

_OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError,
                  ReadOnlyError, OutOfMemoryError)
_TRANSIENT_PREFIXES = ("OOM", "BUSY", "LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")
_POISON_LIMIT = 5
"""Consecutive failures with a (non-transient) Redis error after which a flush's data is
dropped: a script error that retrying cannot fix must not block the read model for good."""


class FlushError(Exception):
    """A flush that did not reach Redis (the outbox keeps its data)."""


class ReadModel:
    """Writes (from the worker, through the outbox) and reads (for dashboards, the CLI, tests)."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = "yrd",
        ttl_s: int = 7 * 86400,
        *,
        max_alerts: int = MAX_ALERTS,
        flush_interval_s: float = 0.5,
        max_backoff_s: float = 4.0,
        flush_timeout_s: float = 10.0,
        chunk: int = CHUNK,
        seen_window: int = SEEN_WINDOW,
    ) -> None:
        self.redis = client
        self.keys = Keys(prefix)
        self.ttl_s = ttl_s
        self.flush_interval_s = flush_interval_s
        self.max_backoff_s = max_backoff_s
        self.flush_timeout_s = flush_timeout_s
        self.chunk = chunk
        self.seen_window = seen_window
        self.outbox = Outbox(max_alerts)
        self._lock = asyncio.Lock()
        self._script_loaded = False
        self._healthy = True
        self._closed = False
        self._outage_started = 0.0
        self._outage_failures = 0
        self._outage_dropped_logged = False
        self._dropped_reported = 0
        self._poison_failures = 0
        self._submit_errors = 0
        self._secret = _password_of(client)
        self._read_latest: AsyncScript | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        prefix: str = "yrd",
        ttl_s: int = 7 * 86400,
        *,
        timeout_s: float = 2.0,
        **options: Any,
    ) -> "ReadModel":
        """A read model on ``url``; Redis calls fail after ``timeout_s`` instead of hanging.

        A lost connection is retried once at once (e.g. a pooled connection
        closed by a Redis restart); a timeout is not retried.
        """
        client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        options.setdefault("flush_timeout_s", max(5.0, 4 * timeout_s))
        return cls(client, prefix, ttl_s, **options)

    @classmethod
    def from_settings(cls, settings: "Settings") -> "ReadModel":
        return cls.from_url(
            settings.redis_url.get_secret_value(),
            settings.redis_prefix,
            settings.redis_position_ttl_s,
            timeout_s=settings.redis_timeout_s,
            max_alerts=settings.readmodel_max_alerts,
            flush_interval_s=settings.readmodel_flush_s,
        )

    # --- state ----------------------------------------------------------------------------
    @property
    def healthy(self) -> bool:
        """False from a failed flush until one reaches Redis again."""
        return self._healthy

    @property
    def pending(self) -> tuple[int, int]:
        """(vehicles, alerts) waiting in the outbox."""
        return len(self.outbox.vehicles), len(self.outbox.alerts)

    # --- writes ---------------------------------------------------------------------------
    def submit(
        self, updates: Iterable[VehicleUpdate], alerts: Iterable[Alert], now: datetime
    ) -> None:
        """Queue one processed batch for the next flush. No I/O; never raises."""
        try:
            self.outbox.add(updates, alerts, now)
            self._report_outbox()
        except Exception:  # a view must never stop the stream
            self._submit_errors += 1
            if self._submit_errors == 1 or self._submit_errors % 10_000 == 0:
                log.exception("read model: could not queue a batch (%d so far)",
                              self._submit_errors)

    async def flush(self) -> bool:
        """One attempt to write the outbox; False if Redis could not be reached (kept)."""
        try:
            await self._flush()
        except FlushError:
            return False
        return True

    async def apply(
        self, updates: Iterable[VehicleUpdate], alerts: Iterable[Alert], now: datetime
    ) -> None:
        """Submit one batch and flush at once; raises :class:`FlushError` if Redis failed
        (the batch stays in the outbox for the next flush)."""
        self.submit(updates, alerts, now)
        await self._flush()

    async def run(self, interval_s: float | None = None) -> None:
        """Flush every ``interval_s`` until :meth:`close` (or cancellation); after a
        failure retry with a backoff doubling up to ``max_backoff_s``."""
        interval = interval_s if interval_s is not None else self.flush_interval_s
        delay = interval
        while not self._closed:
            await asyncio.sleep(delay)
            if self._closed:
                break
            if await self.flush():
                delay = interval
            else:
                delay = min(self.max_backoff_s, max(delay, interval, 0.1) * 2)

    async def close(self, timeout_s: float = 2.0) -> None:
        """Stop the flusher; one last flush attempt of at most ``timeout_s``; close Redis."""
        self._closed = True
        vehicles, alerts = self.pending
        if vehicles or alerts:
            try:
                ok = await asyncio.wait_for(self.flush(), timeout_s)
            except asyncio.TimeoutError:
                ok = False
            if not ok:
                vehicles, alerts = self.pending
                log.warning("read model: closing with %d vehicle updates and %d alerts not "
                            "written to Redis", vehicles, alerts)
        await self.redis.aclose()

    async def _flush(self) -> None:
        async with self._lock:
            vehicles, alerts = self.outbox.take()
            if not vehicles and not alerts and self._healthy:
                return
            started = time.perf_counter()
            try:
                if vehicles or alerts:
                    counts = await asyncio.wait_for(
                        self._write(vehicles, alerts), self.flush_timeout_s
                    )
                else:  # in an outage with nothing to write: is Redis back?
                    await asyncio.wait_for(self.redis.ping(), self.flush_timeout_s)
                    counts = [0, 0, 0, 0]
            except asyncio.CancelledError:  # the flusher was stopped mid-flush: keep the data
                self._script_loaded = False
                self.outbox.restore(vehicles, alerts)
                raise
            except Exception as error:  # noqa: BLE001 - every failure keeps the data
                self._script_loaded = False
                self._failed(vehicles, alerts, error)
                raise FlushError(self._text(error)) from None
            finally:
                metrics.READMODEL_FLUSH_SECONDS.observe(time.perf_counter() - started)
            self._succeeded(counts)
            self._report_outbox()

    async def _write(
        self, vehicles: dict[str, PendingVehicle], alerts: list[PendingAlert]
    ) -> list[int]:
        calls = script_calls(vehicles.values(), alerts, self.chunk)
        k = self.keys
        for attempt in range(2):
            pipe = self.redis.pipeline(transaction=False)
            load = not self._script_loaded
            if load:  # in the same round trip: no NOSCRIPT after a Redis restart
                pipe.script_load(WRITE_SCRIPT)
            for v_json, a_json in calls:
                pipe.evalsha(WRITE_SHA, 0, k.prefix, self.ttl_s, v_json, a_json,
                             RECENT_ALERTS, self.seen_window)
            results = await pipe.execute(raise_on_error=False)
            if load:
                if isinstance(results[0], Exception):
                    raise results[0]
                results = results[1:]
            self._script_loaded = True
            errors = [r for r in results if isinstance(r, Exception)]
            if errors and attempt == 0 and any(isinstance(e, NoScriptError) for e in errors):
                self._script_loaded = False  # the script cache was flushed: load it, retry
                continue
            if errors:
                raise errors[0]
            totals = [0, 0, 0, 0]
            for r in results:
                for i in range(4):
                    totals[i] += int(r[i])
            return totals
        raise AssertionError("unreachable")

    def _failed(
        self, vehicles: dict[str, PendingVehicle], alerts: list[PendingAlert], error: BaseException
    ) -> None:
        metrics.READMODEL_FLUSH_FAILURES.inc()
        outage = isinstance(error, _OUTAGE_ERRORS) or (
            isinstance(error, ResponseError) and str(error).startswith(_TRANSIENT_PREFIXES)
        )
        if outage or not (vehicles or alerts):
            self._poison_failures = 0
        else:
            self._poison_failures += 1
        if self._poison_failures >= _POISON_LIMIT:
            log.error("read model: Redis rejected the same flush %d times (%s); dropping "
                      "%d vehicle updates and %d alerts", self._poison_failures,
                      self._text(error), len(vehicles), len(alerts))
            self._poison_failures = 0
        else:
            self.outbox.restore(vehicles, alerts)
        if self._healthy:
            self._healthy = False
            self._outage_started = time.monotonic()
            self._outage_failures = 0
            self._outage_dropped_logged = False
            metrics.READMODEL_HEALTHY.set(0)
            log.warning(
                "read model: Redis unavailable (%s); keeping updates in memory and retrying "
                "every %.1f-%.1f s", self._text(error), self.flush_interval_s, self.max_backoff_s,
                exc_info=not (outage or isinstance(error, RedisError)),
            )
        self._outage_failures += 1
        self._report_outbox()

    def _succeeded(self, counts: list[int]) -> None:
        self._poison_failures = 0
        if self._healthy:
            return
        self._healthy = True
        metrics.READMODEL_HEALTHY.set(1)
        log.info(
            "read model: Redis back after %.1f s (%d failed flushes); caught up %d vehicles "
            "(%d older than stored, skipped) and %d alerts (%d replays skipped)",
            time.monotonic() - self._outage_started, self._outage_failures, *counts,
        )

    def _report_outbox(self) -> None:
        outbox = self.outbox
        metrics.READMODEL_OUTBOX.labels(kind="vehicles").set(len(outbox.vehicles))
        metrics.READMODEL_OUTBOX.labels(kind="alerts").set(len(outbox.alerts))
        new_drops = outbox.dropped - self._dropped_reported
        if new_drops:
            self._dropped_reported = outbox.dropped
            metrics.READMODEL_ALERTS_DROPPED.inc(new_drops)
            if not self._outage_dropped_logged:
                self._outage_dropped_logged = True
                log.warning(
                    "read model: more than %d alerts waiting for Redis; older alerts keep "
                    "their open/clear change but not their recent-list entry (%d so far; "
                    "logged once per outage)", outbox.max_alerts, outbox.dropped,
                )

    def _text(self, error: BaseException) -> str:
        """The error as one line, without the Redis password."""
        text = f"{type(error).__name__}: {error}".strip()
        if self._secret:
            text = text.replace(self._secret, "****")
        return text

    # --- reads ---------------------------------------------------------------
    async def vehicle(self, vehicle_id: str) -> dict[str, str]:
        """The latest known state of one vehicle (empty if unknown)."""
        return await self.redis.hgetall(self.keys.vehicle(vehicle_id))

    async def open_alerts(
        self, *, vehicle_id: str | None = None, province: str | None = None
    ) -> list[Alert]:
        """Open (raised, not cleared) alerts of one vehicle or one province."""
        if vehicle_id is not None:
            key = self.keys.open_by_vehicle(vehicle_id)
        else:
            key = self.keys.open_by_province(province)
        values = await self.redis.hvals(key)
        return sorted((msgspec.json.decode(v, type=Alert) for v in values), key=lambda a: a.ts)

    async def recent_alerts(self, limit: int = RECENT_ALERTS) -> list[Alert]:
        """The latest alerts by event time, newest first (raised and cleared)."""
        members = await self.redis.zrevrange(self.keys.recent, 0, limit - 1)
        return [msgspec.json.decode(m.split("\n", 1)[1], type=Alert) for m in members]

    async def track(self, vehicle_id: str) -> list[tuple[int, float, float, float]]:
        """The vehicle's last hour: (event time ms, lat, lon, speed km/h), oldest first
        (a point per read-model update, so at most one per flush)."""
        points = await self.redis.zrange(self.keys.track(vehicle_id), 0, -1)
        out = []
        for point in points:
            ts, lat, lon, speed = point.split(",")
            out.append((int(ts), float(lat), float(lon), float(speed)))
        return out

    async def nearby(self, places: list[tuple[float, float, float]],
                     limit: int = 50) -> list[list[dict[str, Any]]]:
        """For each (lon, lat, radius_m), the vehicles whose latest position lies within
        the radius, nearest first: vehicle_id, distance_m, lat, lon, and from its hash
        ts_ms, province, speed_kmh (None where the hash has expired). Two round trips
        for all the places."""
        pipe = self.redis.pipeline(transaction=False)
        for lon, lat, radius_m in places:
            pipe.geosearch(self.keys.positions, longitude=lon, latitude=lat, radius=radius_m,
                           unit="m", sort="ASC", count=limit, withdist=True, withcoord=True)
        found = await pipe.execute() if places else []
        pipe = self.redis.pipeline(transaction=False)
        for near in found:
            for vehicle_id, _, _ in near:
                pipe.hmget(self.keys.vehicle(vehicle_id), "ts_ms", "province", "speed_kmh")
        fields = iter(await pipe.execute() if any(found) else [])
        return [[_truck(vehicle_id, dist, coord, *next(fields)) for vehicle_id, dist, coord in near]
                for near in found]

    async def vehicles_in(self, province: str | None) -> list[str]:
        """Vehicles whose latest ping lies in the province."""
        return await self.redis.zrange(self.keys.vehicles_in(province), 0, -1)

    async def vehicles_in_each(self, provinces: Iterable[str | None]
                               ) -> dict[str | None, list[str]]:
        """For each province, the vehicles whose latest ping lies there (one round trip)."""
        provinces = list(provinces)
        pipe = self.redis.pipeline(transaction=False)
        for province in provinces:
            pipe.zrange(self.keys.vehicles_in(province), 0, -1)
        return dict(zip(provinces, await pipe.execute()))

    async def open_alerts_in(self, provinces: Iterable[str | None]
                             ) -> dict[str | None, list[Alert]]:
        """For each province, its open alerts, oldest first (one round trip)."""
        provinces = list(provinces)
        pipe = self.redis.pipeline(transaction=False)
        for province in provinces:
            pipe.hvals(self.keys.open_by_province(province))
        return {province: sorted(map(_alert_decoder.decode, values), key=lambda a: a.ts)
                for province, values in zip(provinces, await pipe.execute())}

    async def latest_of(self, vehicle_ids: list[str],
                        fields: tuple[str, ...] = VEHICLE_FIELDS) -> list[dict[str, str] | None]:
        """Those fields of each vehicle's latest state, in the order asked (None for a vehicle
        whose hash has expired): one script call per :data:`CHUNK` vehicles (a pipeline of
        one HMGET per vehicle costs the client ten times more)."""
        if self._read_latest is None:
            self._read_latest = self.redis.register_script(READ_LATEST_SCRIPT)
        out: list[dict[str, str] | None] = []
        for chunk in chunked(vehicle_ids, self.chunk) if vehicle_ids else []:
            rows = await self._read_latest(args=[f"{self.keys.prefix}:vehicle:", len(fields),
                                                 *fields, *chunk])
            out += [dict(zip(fields, row)) if any(v is not None for v in row) else None
                    for row in rows]
        return out

def _truck(vehicle_id: str, dist: float, coord: tuple[float, float], ts: str | None,
           province: str | None, speed: str | None) -> dict[str, Any]:
    return {"vehicle_id": vehicle_id, "distance_m": round(float(dist), 1),
            "lon": round(float(coord[0]), 6), "lat": round(float(coord[1]), 6),
            "ts_ms": int(ts) if ts else None,
            "province": province if province not in (None, "", "none") else None,
            "speed_kmh": float(speed) if speed else None}


def _password_of(client: aioredis.Redis) -> str | None:
    try:
        password = client.connection_pool.connection_kwargs.get("password")
    except AttributeError:
        return None
    return password or None
