"""The thin shell around the pure core: one fetched partition batch in, side effects out.

For each batch of ``yrd.pings`` records: skip what this worker has already
processed (replays after a rebalance or a restart), decode and validate every
record (rejects to the dead-letter topic), locate all valid pings at once, run
the core per vehicle against its state, send alerts and handovers, hand the
vehicles' latest positions and the alerts to the read model. Vehicle states
stay decoded in memory; :class:`agents.checkpoint.Checkpoint` makes them and
the input offsets durable, in an order that survives a kill -9 at any moment.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import defaultdict
from datetime import datetime

import msgspec
import numpy as np
from faust.types import TP

from yrd_hazmat import metrics
from yrd_hazmat.codec import (
    PROCESSING_ERROR, TOO_OLD, Rejection, decode_ping, encode, time_ahead,
)
from yrd_hazmat.config import Settings
from yrd_hazmat.engine import (
    Outcome, Reference, RulesConfig, advance, route_positions_of, silence, timer_due,
)
from yrd_hazmat.emergency.incidents import command_for
from yrd_hazmat.emergency.responders import ResourceIndex, load_resources
from yrd_hazmat.emergency.scene import is_emergency, with_trucks
from yrd_hazmat.enrich import observe
from yrd_hazmat.geo.jurisdiction import (
    JurisdictionIndex, default_index, province_shapes_metric,
)
from yrd_hazmat.models import Alert, AlertState, Ping
from yrd_hazmat.observation import Observation
from yrd_hazmat.permits.status import NO_PERMIT, PermitStatus
from yrd_hazmat.permits.store import PermitCache
from yrd_hazmat.readmodel import ReadModel, VehicleUpdate
from yrd_hazmat.rules_config import rules_config
from yrd_hazmat.state import VehicleState
from yrd_hazmat.timeutil import CHINA_TZ, to_ms
from yrd_hazmat.zones.registry import ZoneRegistry
from yrd_hazmat.zones.segments import crossings_of

from agents.deadletter import DeadLetterSink
from agents.outputs import Outputs
from agents.vehicles import VehicleStates

log = logging.getLogger(__name__)

Deferred = tuple[bytes, Outcome, list]
"""A vehicle's outcome with an emergency, waiting for the batch's exposure lookup: (key,
outcome, the vehicle's input records)."""
EXPOSURE_TIMEOUT_S = 0.5
"""At most this long for the read model's trucks around an emergency."""
EXPOSURE_PAUSE_S = 10.0
"""After a failed lookup, emergencies say "trucks unknown" at once for this long."""
_TOO_OLD = Rejection(TOO_OLD, "fix older than the history horizon (YRD_HISTORY_HORIZON_S) "
                             "before the vehicle's latest")


def _update(state: VehicleState, previous: Observation | None,
            batch: list[Observation] = ()) -> VehicleUpdate | None:
    """The read-model update for a vehicle whose latest processed ping was ``previous``;
    the positions of ``batch`` that ran between it and the latest go to its track."""
    last = state.last
    if last is None:
        return None
    after = previous.ts_ms if previous is not None else -1
    track: tuple[Observation, ...] = ()
    if len(batch) > 1:  # (one ping of the vehicle in the batch, the usual case: no track)
        track = tuple(sorted((o for o in batch if after < o.ts_ms < last.ts_ms),
                             key=_event_time))
    return VehicleUpdate(
        vehicle_id=state.vehicle_id,
        latest=last,
        previous_province=previous.province if previous else None,
        previously_seen=previous is not None,
        open_alerts=len(state.open_incidents),
        track=track,
    )


def _heard(pings: list[Ping], fresh: dict[str, list[int]]) -> dict[str, int]:
    """Per vehicle, the time of its latest report without a valid fix (proof of life)."""
    heard: dict[str, int] = {}
    for vehicle_id, indices in fresh.items():
        times = [to_ms(pings[i].ts) for i in indices if not pings[i].fix_valid]
        if times:
            heard[vehicle_id] = max(times)
    return heard


def _event_time(obs: Observation) -> int:
    return obs.ts_ms


def _emergencies(outcome: Outcome) -> list[int]:
    """Where the outcome's alerts raise an emergency (they wait for their exposed trucks)."""
    return [i for i, alert in enumerate(outcome.alerts)
            if alert.state is AlertState.RAISED and is_emergency(alert)]


class PingProcessor:
    """Processes batches of ``yrd.pings`` (and timer ticks) for one worker."""

    def __init__(
        self,
        settings: Settings,
        *,
        states: VehicleStates,
        outputs: Outputs,
        permits,
        dead_letters: DeadLetterSink,
        places: JurisdictionIndex | None = None,
        zones: ZoneRegistry,
        readmodel: ReadModel,
    ) -> None:
        self.settings = settings
        self.states = states
        self.outputs = outputs
        self.permits = permits
        self.dead_letters = dead_letters
        self._places = places
        self.zones = zones
        self.readmodel = readmodel
        self._exposure_paused_until = 0.0
        self.rules: RulesConfig = rules_config(settings)
        self.ticks_topic = settings.topic_ticks

    # --- geography, built on first use (importing the app builds nothing heavy) -----------
    @functools.cached_property
    def places(self) -> JurisdictionIndex:
        return self._places if self._places is not None else default_index()

    @functools.cached_property
    def provinces(self) -> dict:
        return province_shapes_metric()

    @functools.cached_property
    def resources(self) -> ResourceIndex:
        """Emergency resources: YRD_RESOURCES_FILE, then the resources topic
        (:mod:`agents.resources`); while empty, critical alarms name no responders."""
        path = self.settings.resources_file
        return ResourceIndex(load_resources(path) if path else ())

    @functools.cached_property
    def permit_cache(self) -> PermitCache:
        return PermitCache(self.places)

    def prepare(self) -> None:
        """Build the geography now (when the agent starts), not in the first batch."""
        _ = self.places, self.provinces, self.permit_cache, self.resources

    # --- one batch ----------------------------------------------------------
    async def handle(self, tp: TP, records: list) -> None:
        """Process one partition batch (records in offset order, none processed before)."""
        now = datetime.now(CHINA_TZ)
        metrics.BATCH_SIZE.observe(len(records))
        updates: list[VehicleUpdate] = []
        published: list[Alert] = []
        if tp.topic == self.ticks_topic:
            await self._ticks(records, updates, published, now)
        else:
            await self._pings(tp, records, updates, published, now)
        if updates or published:
            self.readmodel.submit(updates, published, now)
        for alert in published:
            metrics.ALERTS.labels(
                type=alert.type, severity=alert.severity.value, state=alert.state.value,
                province=alert.province or "none",
            ).inc()

    async def _pings(self, tp: TP, records: list, updates: list[VehicleUpdate],
                     published: list[Alert], now: datetime) -> None:
        metrics.PINGS_CONSUMED.inc(len(records))
        max_bytes = self.settings.max_ping_bytes
        tolerance_ms = int(self.settings.future_tolerance_s * 1000)
        now_ms = int(now.timestamp() * 1000)
        pings: list[Ping] = []
        origin: list = []
        for record in records:
            result = decode_ping(record.key, record.value, max_bytes)
            if not isinstance(result, Rejection):
                received_ms = record.timestamp if record.timestamp is not None else now_ms
                result = time_ahead(result, received_ms, tolerance_ms) or result
            if isinstance(result, Rejection):
                await self._dead_letter(record, result, now)
            else:
                pings.append(result)
                origin.append(record)
        if not pings:
            return
        by_vehicle: dict[str, list[int]] = defaultdict(list)
        for i, ping in enumerate(pings):
            by_vehicle[ping.vehicle_id].append(i)
        fresh, replayed, resubmit = self._fresh(tp.partition, by_vehicle, origin)
        updates += resubmit
        if replayed:
            metrics.PINGS_REPLAYED.inc(replayed)
        if not fresh:
            return
        kept = [i for indices in fresh.values() for i in indices]
        located = [i for i in kept if pings[i].fix_valid]
        heard = _heard(pings, fresh)
        if len(located) < len(kept):
            metrics.PINGS_WITHOUT_FIX.inc(len(kept) - len(located))
        observed = observe([pings[i] for i in located], self.places, self.zones.index)
        observations = dict(zip(located, observed))
        positions = {v: [i for i in indices if i in observations] for v, indices in fresh.items()}
        batches = {v: [observations[i] for i in indices] for v, indices in positions.items()}
        permits = {v: self._permit_of(v.encode("utf-8")) for v in fresh}
        zone_index = self.zones.index
        lasts = {v: self._last_fix(v) for v in fresh}
        reference = Reference(zones=zone_index.by_id, permits=permits,
                              provinces=self.provinces,
                              route_positions=route_positions_of(batches, permits),
                              zone_index=zone_index, resources=self.resources,
                              crossings=crossings_of(batches, lasts, zone_index,
                                                     self.rules.segments))
        accepted = 0
        deferred: list[Deferred] = []
        for vehicle_id, indices in fresh.items():
            accepted += len(indices)
            try:
                update = await self._advance_vehicle(
                    vehicle_id, tp.partition, batches[vehicle_id],
                    [origin[i] for i in indices], [origin[i] for i in positions[vehicle_id]],
                    reference, published, deferred, now, heard.get(vehicle_id))
            except Exception as exc:  # a bug must not stop the stream or lose the pings
                log.exception("processing %s failed", vehicle_id)
                failure = Rejection(PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")
                for i in indices:
                    await self._dead_letter(origin[i], failure, now)
                continue
            if update is not None:
                updates.append(update)
        await self._publish_all(deferred, published, now)
        metrics.PINGS_ACCEPTED.inc(accepted)
        self._observe_latency(pings, origin, kept)

    def _fresh(self, partition: int, by_vehicle: dict[str, list[int]], origin: list
               ) -> tuple[dict[str, list[int]], int, list[VehicleUpdate]]:
        """(the pings no vehicle state holds yet, how many were replays, read-model updates
        to submit again). Pings a vehicle's state already holds are a replay after a
        restart; a vehicle with nothing new has its latest position submitted again (the
        read model never goes backwards), in case the worker that processed them died
        before its read model was written."""
        fresh: dict[str, list[int]] = {}
        updates: list[VehicleUpdate] = []
        replayed = 0
        for vehicle_id, indices in by_vehicle.items():
            state = self.states.get(vehicle_id.encode("utf-8"))
            if state is not None and state.partition == partition and state.offset >= 0:
                seen = state.offset
                new = [i for i in indices if origin[i].offset > seen]
                if len(new) < len(indices):
                    replayed += len(indices) - len(new)
                    update = _update(state, None)
                    if update is not None and not new:
                        updates.append(update)
                indices = new
            if indices:
                fresh[vehicle_id] = indices
        return fresh, replayed, updates

    async def _advance_vehicle(
        self,
        vehicle_id: str,
        partition: int,
        batch: list[Observation],
        records: list,
        located: list,
        reference: Reference,
        published: list[Alert],
        deferred: list[Deferred],
        now: datetime,
        heard_ms: int | None = None,
    ) -> VehicleUpdate | None:
        """Run the core for one vehicle; keep its state, send its alerts (an outcome with
        an emergency goes to ``deferred``). ``records``: the vehicle's records of the batch;
        ``batch``: the observations of those with a valid fix (``located``, in the same
        order); the latest report without a fix: ``heard_ms``."""
        key = vehicle_id.encode("utf-8")
        state = self.states.get(key)
        previous = state.last if state is not None else None
        outcome = advance(state, vehicle_id, batch, self.rules, now, reference,
                          heard_ms=heard_ms)
        outcome.state.partition = partition
        outcome.state.offset = records[-1].offset
        self.states.put(key, outcome.state)
        if _emergencies(outcome):
            deferred.append((key, outcome, records))  # published with the batch's other emergencies
        else:
            await self._publish(key, outcome)
            published.extend(outcome.alerts)
        for index in outcome.late:
            await self._dead_letter(located[index], _TOO_OLD, now)
        if outcome.uploaded_late:
            metrics.PINGS_UPLOADED_LATE.inc(outcome.uploaded_late)
        if outcome.duplicates:
            metrics.PINGS_DUPLICATE.inc(outcome.duplicates)
        if outcome.implausible:
            metrics.PINGS_IMPLAUSIBLE.inc(outcome.implausible)
        return _update(outcome.state, previous, batch)

    async def _publish(self, key: bytes, outcome: Outcome) -> None:
        send = self.outputs.send
        for alert in outcome.alerts:
            if is_emergency(alert):  # the incident keeper records it
                await send(self.settings.topic_incident_actions, alert.incident_id.encode(),
                           encode(command_for(alert)))
            await send(self.settings.topic_alerts, key, encode(alert))
        for handover in outcome.handovers:
            await send(self.settings.topic_handovers, key, encode(handover))
            metrics.HANDOVERS.labels(from_province=handover.from_province or "none",
                                     to_province=handover.to_province or "none").inc()

    async def _exposed(self, alerts: list[Alert]) -> list[Alert]:
        """The emergency alerts with the other trucks the read model places within their
        isolation distances (one lookup for them all); if Redis is down or slow, said so
        instead (never waits long)."""
        max_age_s = self.settings.exposure_max_age_s
        found: list | None = None
        unknown = "read model unavailable (Redis down or slow)"
        if self.readmodel.healthy and time.monotonic() >= self._exposure_paused_until:
            places = [(a.lon, a.lat, float(a.details["isolation_distance_m"])) for a in alerts]
            try:
                found = await asyncio.wait_for(self.readmodel.nearby(places), EXPOSURE_TIMEOUT_S)
            except Exception as exc:  # a view never stops the stream
                log.warning("exposure of %d emergencies: read model: %s", len(alerts),
                            type(exc).__name__)
                # the next emergencies do not wait for a Redis that just failed
                self._exposure_paused_until = time.monotonic() + EXPOSURE_PAUSE_S
                unknown = f"read model unavailable ({type(exc).__name__})"
        if found is None:
            return [with_trucks(a, None, max_age_s=max_age_s, unknown=unknown) for a in alerts]
        return [with_trucks(a, near, max_age_s=max_age_s) for a, near in zip(alerts, found)]

    async def _publish_all(self, outcomes: list[Deferred], published: list[Alert],
                           now: datetime) -> None:
        """Publish outcomes whose emergencies wait for their exposed trucks: one read-model
        lookup for all the emergencies of a batch, then each outcome in order (if that
        fails, its pings are dead-lettered, as for any failure of a vehicle's step)."""
        raised = [(outcome, i) for _, outcome, _ in outcomes for i in _emergencies(outcome)]
        if raised:
            exposed = await self._exposed([outcome.alerts[i] for outcome, i in raised])
            for (outcome, i), alert in zip(raised, exposed):
                outcome.alerts[i] = alert
                metrics.EMERGENCIES.labels(type=alert.type).inc()
        for key, outcome, records in outcomes:
            try:
                await self._publish(key, outcome)
            except Exception as exc:  # a bug must not stop the stream or lose the pings
                if not records:  # the timer's: as before, the batch fails
                    raise
                log.exception("publishing %s failed", key)
                failure = Rejection(PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")
                for record in records:
                    await self._dead_letter(record, failure, now)
                continue
            published.extend(outcome.alerts)

    def _last_fix(self, vehicle_id: str) -> Observation | None:
        state = self.states.get(vehicle_id.encode("utf-8"))
        return state.last if state is not None else None

    def _permit_of(self, key: bytes) -> PermitStatus:
        stored = getattr(self.permits, "data", self.permits)  # the table's store: no Faust
        return self.permit_cache.status(stored.get(key)) or NO_PERMIT  # bookkeeping per read

    # --- the timer ------------------------------------------------------------
    async def _ticks(self, records: list, updates: list[VehicleUpdate],
                     published: list[Alert], now: datetime) -> None:
        """Timer ticks: prompts for vehicles that may have gone silent."""
        latest: dict[bytes, int] = {}
        for record in records:
            try:
                latest[record.key] = int(msgspec.json.decode(record.value)["now_ms"])
            except Exception:  # a tick is only a prompt: log it, keep the stream going
                log.warning("unreadable timer tick at %s[%s]@%s", record.topic,
                            record.partition, record.offset)
        for key, now_ms in latest.items():
            try:
                await self._silence(key, now_ms, updates, published, now)
            except Exception:
                log.exception("timer tick for %r failed", key)

    async def _silence(self, key: bytes, now_ms: int, updates: list[VehicleUpdate],
                       published: list[Alert], now: datetime) -> None:
        state = self.states.get(key)
        if state is None:
            return
        status = self._permit_of(key)
        zone_index = self.zones.index
        reference = Reference(zones=zone_index.by_id, zone_index=zone_index,
                              permits={state.vehicle_id: status}, provinces=self.provinces,
                              resources=self.resources)
        waiting, previous = (len(state.pending), len(state.kept)), state.last
        outcome = silence(state, now_ms, self.rules, now, reference)
        if not outcome.alerts and (len(state.pending), len(state.kept)) == waiting:
            return
        self.states.put(key, state)
        await self._publish_all([(key, outcome, [])], published, now)
        update = _update(state, previous)
        if update is not None:
            updates.append(update)

    async def send_ticks(self, ticks) -> int:
        """Prompt every vehicle this worker holds with buffered pings due or a silence to
        report; returns how many."""
        now_ms = int(time.time() * 1000)
        sent = 0
        for key, state in self.states.items():
            if state.partition is None or not timer_due(state, now_ms, self.rules,
                                                         self._permit_of(key)):
                continue
            await ticks.send(key=key, value=msgspec.json.encode({"now_ms": now_ms}),
                             partition=state.partition)
            sent += 1
        return sent

    # --- bookkeeping ------------------------------------------------------------
    async def _dead_letter(self, record, rejection: Rejection, now: datetime) -> None:
        key, value = self.dead_letters.record(record, rejection, now)
        await self.outputs.send(self.settings.topic_deadletter, key, value)
        metrics.PINGS_REJECTED.labels(reason=rejection.reason).inc()

    @staticmethod
    def _observe_latency(pings: list[Ping], origin: list, kept: list[int]) -> None:
        done = time.time()
        from_event = np.fromiter((done - pings[i].ts.timestamp() for i in kept), float,
                                 count=len(kept))
        metrics.observe_many(metrics.LATENCY_FROM_EVENT, np.maximum(from_event, 0.0))
        arrived = np.fromiter((origin[i].timestamp for i in kept
                               if origin[i].timestamp is not None), float)
        metrics.observe_many(metrics.LATENCY_FROM_ARRIVAL,
                             np.maximum(done - arrived / 1000.0, 0.0))
