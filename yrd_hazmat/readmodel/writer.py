"""Writing the outbox to Redis: one Lua script per chunk, all chunks in one round trip.

The script makes the writes safe to replay and never backwards:

* a vehicle's hash, position, track and province set change only if the
  update's event time (``ts_ms``) is newer than the stored one, so a replay
  after a crash, or a second worker writing older data, changes nothing; the
  province a vehicle leaves is the one its hash shows (else the worker's hint);
* an alert whose ``alert_id`` is in the seen set is skipped, so a replay never
  duplicates it in the recent list;
* a CLEARED alert records its incident in the cleared set; a RAISED alert of a
  cleared incident does not reopen it, so a raise and its clear end cleared in
  either order, in one flush or in two;
* ``open_alerts`` in the vehicle hash is the size of the vehicle's open-alert
  hash after the flush.

The script names no key of its own: the fixed and per-province keys come in
``KEYS``, the per-vehicle ones as key prefixes in ``ARGV`` (one per kind, not one
per vehicle: declaring a chunk's 15,000 vehicle keys would cost the worker's hot
path and still not make a cluster slot-safe), all from :mod:`.keys`. The
per-vehicle keys are why the read model needs a standalone (non-cluster) Redis.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from .keys import OUTSIDE, PROVINCES, RECENT_ALERTS, SEEN_WINDOW, Keys
from .outbox import PendingAlert, PendingVehicle

CHUNK = 5_000
"""Vehicles or alerts per script call: a flush of more is several calls, one round trip."""

# KEYS: positions, latest alerts, seen alerts, cleared incidents, alert counter, then the
#       vehicle set of each of the n provinces, then the open-alert hash of each, in the
#       order of the province names in ARGV.
# ARGV: vehicles JSON, alerts JSON, ttl_s, recent list size, seen window, the key prefixes of
#       a vehicle's hash, of its track and of its open alerts, then the n province names as
#       the rows carry them ('' outside the region).
# Rows: as PendingVehicle.row and PendingAlert.row lay them out (.outbox).
# Returns {vehicles applied, vehicles stale (skipped), alerts new, alerts replayed (skipped)}.
WRITE_SCRIPT = r"""
local positions_key, recent_key, seen_key, cleared_key, seq_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local vehicles = cjson.decode(ARGV[1])
local alerts = cjson.decode(ARGV[2])
local ttl = tonumber(ARGV[3])
local recent_max = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local vehicle_at, track_at, open_of_vehicle_at = ARGV[6], ARGV[7], ARGV[8]
local n = #ARGV - 8
local set_of, open_of, open_keys = {}, {}, {}
for i = 1, n do
  set_of[ARGV[8 + i]] = KEYS[5 + i]
  open_of[ARGV[8 + i]] = KEYS[5 + n + i]
  open_keys[i] = KEYS[5 + n + i]
end
-- a province as rows and hashes carry it -> its key; one not in the list (there is none:
-- models.Province) is filed outside the region rather than failing the whole flush
local function vehicles_in(p) return set_of[p] or set_of[''] end
local function open_in(p) return open_of[p] or open_of[''] end
local BATCH = 999
local TRACK_MS = 3600000
local function call_chunked(cmd, key, args, width)
  local count = #args
  local step = BATCH * width
  for i = 1, count, step do
    local last = math.min(i + step - 1, count)
    redis.call(cmd, key, unpack(args, i, last))
  end
end
local touched = {}

-- alerts, in order
local pushes = {}
local new_alerts, dup_alerts, cleared_added = 0, 0, 0
local seq = 0
if #alerts > 0 then
  seq = redis.call('INCRBY', seq_key, #alerts) - #alerts
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
      local by_vehicle = open_of_vehicle_at .. vid
      if state == 'r' then
        if not redis.call('ZSCORE', cleared_key, incident) then
          redis.call('HSET', by_vehicle, incident, a[7])
          redis.call('HSET', open_in(province), incident, a[7])
        end
      else
        redis.call('ZADD', cleared_key, seq, incident)
        cleared_added = cleared_added + 1
        redis.call('HDEL', by_vehicle, incident)
        for _, key in ipairs(open_keys) do
          redis.call('HDEL', key, incident)
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
  local key = vehicle_at .. vid
  local ts = tonumber(v[2])
  local cur = redis.call('HMGET', key, 'ts_ms', 'province')
  local open = redis.call('HLEN', open_of_vehicle_at .. vid)
  local cur_ts = tonumber(cur[1])
  if cur_ts and cur_ts >= ts then
    stale = stale + 1
    redis.call('HSET', key, 'open_alerts', open)
  else
    local new_set = vehicles_in(v[7])
    redis.call('HSET', key, 'vehicle_id', vid, 'ts', v[3], 'ts_ms', v[2], 'lat', v[4],
      'lon', v[5], 'speed_kmh', v[6], 'province', v[7], 'city_code', v[8],
      'city_name', v[9], 'open_alerts', open, 'updated_at', v[10], 'heading', v[14])
    redis.call('EXPIRE', key, ttl)
    -- the last hour of track: a point per applied update (time, lat, lon, speed)
    local track = track_at .. vid
    redis.call('ZADD', track, ts, v[2] .. ',' .. v[4] .. ',' .. v[5] .. ',' .. v[6])
    for point in string.gmatch(v[15], '([^;]+)') do
      local at = tonumber(string.match(point, '^(%d+),'))
      if at then redis.call('ZADD', track, at, point) end
    end
    redis.call('ZREMRANGEBYSCORE', track, '-inf', '(' .. (ts - TRACK_MS))
    redis.call('EXPIRE', track, 7200)
    local old = cur[2]
    if (not old) and v[12] == 1 then old = v[11] end
    if old and vehicles_in(old) ~= new_set then
      redis.call('ZREM', vehicles_in(old), vid)
    end
    local set = arrived[new_set]
    if not set then set = {}; arrived[new_set] = set end
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
for set_key, set in pairs(arrived) do
  call_chunked('ZADD', set_key, set, 2)
end
if #positions > 0 then
  call_chunked('GEOADD', positions_key, positions, 3)
end
-- vehicles whose alerts changed without an update in this call
for vid in pairs(touched) do
  if not in_call[vid] then
    local key = vehicle_at .. vid
    if redis.call('EXISTS', key) == 1 then
      redis.call('HSET', key, 'open_alerts', redis.call('HLEN', open_of_vehicle_at .. vid))
    end
  end
end
return {applied, stale, new_alerts, dup_alerts}
"""
WRITE_SHA = hashlib.sha1(WRITE_SCRIPT.encode("utf-8")).hexdigest()


def script_keys(keys: Keys) -> list[str]:
    """The write script's KEYS under these key names."""
    return [keys.positions, keys.recent, keys.seen, keys.cleared, keys.seq,
            *(keys.vehicles_in(p) for p in PROVINCES),
            *(keys.open_by_province(p) for p in PROVINCES)]


def script_args(keys: Keys, ttl_s: int, seen_window: int) -> list[Any]:
    """The write script's ARGV after the two JSON rows: the same for every call."""
    return [ttl_s, RECENT_ALERTS, seen_window,
            keys.vehicle_prefix, keys.track_prefix, keys.open_by_vehicle_prefix,
            *("" if p == OUTSIDE else p for p in PROVINCES)]


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


class Writer:
    """Writes what a flush took from the outbox, in one pipeline round trip.

    The script is loaded in the same round trip the first time and after any
    failure (Redis may have restarted with an empty script cache); a NOSCRIPT
    answer anyway (``SCRIPT FLUSH``) loads it and retries once.
    """

    def __init__(self, client: aioredis.Redis, keys: Keys, ttl_s: int, *,
                 chunk: int = CHUNK, seen_window: int = SEEN_WINDOW) -> None:
        self.redis = client
        self.chunk = chunk
        self._keys = script_keys(keys)
        self._args = script_args(keys, ttl_s, seen_window)
        self._loaded = False

    async def write(self, vehicles: Iterable[PendingVehicle],
                    alerts: Iterable[PendingAlert]) -> list[int]:
        """Returns [vehicles applied, vehicles older than stored, alerts new, alerts
        replayed]; raises whatever Redis raised (nothing is kept here)."""
        calls = script_calls(vehicles, alerts, self.chunk)
        try:
            return await self._run(calls)
        except BaseException:
            self._loaded = False
            raise

    async def ping(self) -> None:
        """Is Redis back? (In an outage with nothing to write.)"""
        try:
            await self.redis.ping()
        except BaseException:
            self._loaded = False
            raise

    async def _run(self, calls: list[tuple[bytes, bytes]]) -> list[int]:
        keys, args = self._keys, self._args
        for attempt in range(2):
            pipe = self.redis.pipeline(transaction=False)
            load = not self._loaded
            if load:  # in the same round trip: no NOSCRIPT after a Redis restart
                pipe.script_load(WRITE_SCRIPT)
            for v_json, a_json in calls:
                pipe.evalsha(WRITE_SHA, len(keys), *keys, v_json, a_json, *args)
            results = await pipe.execute(raise_on_error=False)
            if load:
                if isinstance(results[0], Exception):
                    raise results[0]
                results = results[1:]
            self._loaded = True
            errors = [r for r in results if isinstance(r, Exception)]
            if errors and attempt == 0 and any(isinstance(e, NoScriptError) for e in errors):
                self._loaded = False  # the script cache was flushed: load it, retry
                continue
            if errors:
                raise errors[0]
            totals = [0, 0, 0, 0]
            for r in results:
                for i in range(4):
                    totals[i] += int(r[i])
            return totals
        raise AssertionError("unreachable")
