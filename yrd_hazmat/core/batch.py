"""One fetched partition batch through the pure core: records in, everything to write out.

The worker's shell (:mod:`agents.processor`) reads a batch, hands it here with the
vehicles' states and the reference data in force (:class:`World`), and writes what comes
back (:class:`Step`): the records for the alert, handover, incident and dead-letter
topics, the vehicles' new states, the read-model updates, the counts for the metrics.
Nothing here touches Kafka, Redis or a clock (the processing time is passed in), so a
batch replays the same anywhere (``tests/golden``).

The way of a batch of pings, in this order and each step once:
1. decode and check every record (:func:`yrd_hazmat.core.codec.decode_ping`, a time too far
   ahead of the record's arrival): rejects become dead letters;
2. replays (:mod:`.replays`): records a vehicle's state already holds (the worker
   processed them before a restart) are dropped;
3. enrichment, for the whole batch at once: WGS-84, metres, province, city and zones of
   every valid fix (:func:`yrd_hazmat.core.enrich.observe`);
4. each vehicle's fixes admitted (:func:`yrd_hazmat.core.engine.admit`: the reorder
   buffer, event-time duplicates, kept fixes), then, for exactly the fixes whose turn has
   come, all vehicles at once: each fix's place on its permitted route and the zones every
   segment from the truck's last fix passes through; then each vehicle's fixes through
   the rules (:func:`yrd_hazmat.core.engine.judge`): new state, alerts, handovers. (The
   engine still places a fix one by one when a gate rule stopped the one before it, or
   for kept fixes' segments: rare);
5. the records to write, once the shell has looked up the trucks exposed to the batch's
   emergencies (:meth:`Step.expose`, the one lookup the core cannot do itself).

A vehicle whose step fails (a bug) has its records dead-lettered with the reason; the
other vehicles of the batch go on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import msgspec

from .codec import PROCESSING_ERROR, TOO_OLD, Rejection, dead_letter, decode_ping, encode, time_ahead
from .emergency.incidents import command_for
from .emergency.responders import ResourceIndex
from .emergency.scene import is_emergency, with_trucks
from .engine import (
    Admitted, Outcome, Reference, RulesConfig, admit, judge, route_positions_of, silence, timer_due,
)
from .enrich import observe
from .geo.jurisdiction import JurisdictionIndex
from .models import Alert, AlertState, Ping
from .observation import Observation
from .permits.status import PermitStatus
from .state import VehicleState
from .timeutil import to_ms
from .zones.index import ZoneIndex
from .zones.segments import crossings_of
from .replays import fresh
from .updates import VehicleUpdate, vehicle_update

log = logging.getLogger(__name__)

_TOO_OLD = Rejection(TOO_OLD, "fix older than the history horizon (YRD_HISTORY_HORIZON_S) "
                             "before the vehicle's latest")


class Record(Protocol):
    """A fetched record, as aiokafka gives it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None


class Vehicles(Protocol):
    """The vehicles' states the worker holds (decoded, by key)."""

    def get(self, key: bytes) -> VehicleState | None: ...


@dataclass(frozen=True)
class Topics:
    alerts: str
    handovers: str
    incident_actions: str
    deadletter: str


@dataclass(frozen=True)
class World:
    """The reference data in force and the limits a batch is judged by."""

    rules: RulesConfig
    places: JurisdictionIndex
    provinces: Mapping[str, Any]
    zones: ZoneIndex
    permit: Callable[[bytes], PermitStatus]
    """A vehicle's permit status, by key (no permit: ``NO_PERMIT``)."""
    resources: ResourceIndex | None
    topics: Topics
    max_ping_bytes: int
    future_tolerance_ms: int
    max_raw_bytes: int
    """Of a rejected record's value kept in its dead letter."""
    exposure_max_age_s: float


@dataclass
class VehicleStep:
    """One vehicle's share of a batch."""

    key: bytes
    outcome: Outcome
    records: list
    """Its input records (dead-lettered if writing its outcome fails; none for a tick)."""


@dataclass
class Counts:
    consumed: int = 0
    replayed: int = 0
    accepted: int = 0
    without_fix: int = 0
    uploaded_late: int = 0
    duplicates: int = 0
    implausible: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class Step:
    """What a batch (or a batch of timer ticks) produced."""

    now: datetime
    world: World
    vehicles: list[VehicleStep] = field(default_factory=list)
    states: dict[bytes, VehicleState] = field(default_factory=dict)
    """The vehicles' new states, to keep."""
    updates: list[VehicleUpdate] = field(default_factory=list)
    rejected: list[tuple[Any, Rejection]] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    accepted_ts: list[float] = field(default_factory=list)
    """Event times (s) of the pings accepted, for the latency metrics."""
    accepted_arrivals: list[int] = field(default_factory=list)
    """Record times (ms) of the pings accepted."""

    # --- the one lookup the shell does -----------------------------------------------
    def emergencies(self) -> list[Alert]:
        """The raised emergencies, waiting for the trucks the read model places near them."""
        return [a for v in self.vehicles for a in v.outcome.alerts if _waits(a)]

    def expose(self, nearby: Sequence[list | None] | None, unknown: str | None = None) -> None:
        """Put the trucks near each emergency (in :meth:`emergencies`' order) into its
        alert; ``nearby`` None: the read model could not say (``unknown`` says why)."""
        found = iter(nearby) if nearby is not None else None
        max_age_s = self.world.exposure_max_age_s
        for v in self.vehicles:
            alerts = v.outcome.alerts
            for i, alert in enumerate(alerts):
                if _waits(alert):
                    near = next(found) if found is not None else None
                    alerts[i] = with_trucks(alert, near, max_age_s=max_age_s, unknown=unknown)

    # --- what to write ------------------------------------------------------------------
    def published(self) -> list[Alert]:
        return [a for v in self.vehicles for a in v.outcome.alerts]

    def records(self) -> list[tuple[str, bytes | None, bytes]]:
        """(topic, key, value) of everything to send, each vehicle's in order; a vehicle
        whose records cannot be made has its input records dead-lettered instead."""
        out = [self._dead_letter(record, rejection) for record, rejection in self.rejected]
        for v in self.vehicles:
            try:
                out += _outcome_records(v.key, v.outcome, self.world.topics)
            except Exception as exc:  # a bug must not stop the stream or lose the pings
                if not v.records:  # the timer's: as before, the batch fails
                    raise
                log.exception("publishing %s failed", v.key)
                failure = Rejection(PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")
                v.outcome.alerts.clear()
                out += [self._dead_letter(r, failure) for r in v.records]
        return out

    def _dead_letter(self, record, rejection: Rejection) -> tuple[str, bytes | None, bytes]:
        self.counts.rejected[rejection.reason] += 1
        return self.world.topics.deadletter, record.key, encode(dead_letter(
            topic=record.topic, partition=record.partition, offset=record.offset,
            key=record.key, value=record.value, rejection=rejection, received_at=self.now,
            max_raw_bytes=self.world.max_raw_bytes))


def _waits(alert: Alert) -> bool:
    return alert.state is AlertState.RAISED and is_emergency(alert)


def _outcome_records(key: bytes, outcome: Outcome, topics: Topics
                     ) -> list[tuple[str, bytes | None, bytes]]:
    out: list[tuple[str, bytes | None, bytes]] = []
    for alert in outcome.alerts:
        if is_emergency(alert):  # the incident keeper records it
            out.append((topics.incident_actions, alert.incident_id.encode(),
                        encode(command_for(alert))))
        out.append((topics.alerts, key, encode(alert)))
    for handover in outcome.handovers:
        out.append((topics.handovers, key, encode(handover)))
    return out


# --- a batch of pings ---------------------------------------------------------------------
class _Vehicle:
    """One vehicle's share of a batch while it is worked on: its state (looked up once),
    its new records and pings, their times, the observations of those with a fix."""

    __slots__ = ("vehicle_id", "key", "state", "records", "pings", "times", "fixes",
                 "observations", "previous", "admitted")

    def __init__(self, vehicle_id: str, key: bytes, state: VehicleState | None) -> None:
        self.vehicle_id = vehicle_id
        self.key = key
        self.state = state
        self.records: list = []
        self.pings: list[Ping] = []
        self.times: list[int] = []
        self.fixes: list = []
        """The records of the pings with a valid fix (in the order of ``observations``)."""
        self.observations: list[Observation] = []
        self.previous: Observation | None = state.last if state is not None else None
        """Its latest fix run before this batch."""
        self.admitted: Admitted | None = None


def run(records: Sequence[Record], vehicles: Vehicles, world: World, now: datetime) -> Step:
    """One partition batch of ``yrd.pings`` records (offset order) through the core."""
    step = Step(now=now, world=world)
    step.counts.consumed = len(records)
    pings, origin, times = _decoded(records, world, to_ms(now), step)
    if not pings:
        return step
    partition = records[0].partition
    batch = _fresh(_grouped(pings, origin, times, vehicles), partition, step)
    if not batch:
        return step
    _observe(batch, world)
    step.counts.without_fix = sum(len(v.pings) - len(v.observations) for v in batch)
    admitted = []
    for v in batch:
        step.counts.accepted += len(v.records)
        if _safely(step, v, _admit, step, v):
            admitted.append(v)
    reference = _reference(admitted, world)
    for v in admitted:
        _safely(step, v, _judge, step, v, partition, reference)
    step.accepted_ts = [t / 1000 for v in batch for t in v.times]
    step.accepted_arrivals = [r.timestamp for v in batch for r in v.records
                              if r.timestamp is not None]
    return step


def _grouped(pings: list[Ping], origin: list, times: list[int], vehicles: Vehicles
             ) -> list[_Vehicle]:
    """The batch's pings by vehicle (in the order the vehicles first appear)."""
    by_vehicle: dict[str, _Vehicle] = {}
    for ping, record, ts_ms in zip(pings, origin, times):
        v = by_vehicle.get(ping.vehicle_id)
        if v is None:
            key = record.key  # (the vehicle id, UTF-8: decode_ping checked it)
            if type(key) is not bytes:
                key = ping.vehicle_id.encode("utf-8")
            v = by_vehicle[ping.vehicle_id] = _Vehicle(ping.vehicle_id, key, vehicles.get(key))
        v.records.append(record)
        v.pings.append(ping)
        v.times.append(ts_ms)
    return list(by_vehicle.values())


def _fresh(batch: list[_Vehicle], partition: int, step: Step) -> list[_Vehicle]:
    """The vehicles with pings their state does not hold yet (:func:`.replays.fresh`); a
    vehicle with nothing new has its latest position submitted to the read model again
    (it never goes backwards), in case the worker that processed them died before its
    read model was written."""
    out = []
    for v in batch:
        kept = fresh(v.state, partition, v.records)
        if kept is None:
            out.append(v)
            continue
        step.counts.replayed += len(v.records) - len(kept)
        if not kept:
            update = vehicle_update(v.state, None)
            if update is not None:
                step.updates.append(update)
            continue
        v.records = [v.records[i] for i in kept]
        v.pings = [v.pings[i] for i in kept]
        v.times = [v.times[i] for i in kept]
        out.append(v)
    return out


def _observe(batch: list[_Vehicle], world: World) -> None:
    """Every valid fix of the batch located at once (:func:`yrd_hazmat.core.enrich.observe`)."""
    pings: list[Ping] = []
    times: list[int] = []
    owners: list[_Vehicle] = []
    for v in batch:
        for ping, ts_ms, record in zip(v.pings, v.times, v.records):
            if ping.fix_valid:
                pings.append(ping)
                times.append(ts_ms)
                owners.append(v)
                v.fixes.append(record)
    for owner, observation in zip(owners, observe(pings, world.places, world.zones, times)):
        owner.observations.append(observation)


def _reference(batch: list[_Vehicle], world: World) -> Reference:
    """The reference data of the batch's vehicles, with the route positions and segment
    crossings of exactly the fixes that run now computed at once (those of kept fixes
    judged as history: their route positions; their segments are their own)."""
    running = {v.vehicle_id: v.admitted.ready for v in batch}
    placed = {v.vehicle_id: v.admitted.ready + v.admitted.outcome.state.kept
              if v.admitted.history else v.admitted.ready for v in batch}
    permits = {v.vehicle_id: world.permit(v.key) for v in batch}
    lasts = {v.vehicle_id: v.previous for v in batch}
    zones = world.zones
    return Reference(zones=zones.by_id, permits=permits, provinces=world.provinces,
                     route_positions=route_positions_of(placed, permits),
                     zone_index=zones, resources=world.resources,
                     crossings=crossings_of(running, lasts, zones, world.rules.segments))


def _decoded(records: Sequence[Record], world: World, now_ms: int, step: Step
             ) -> tuple[list[Ping], list, list[int]]:
    """The valid pings of the batch, their records and their times (ms, converted once
    here); the others rejected."""
    pings: list[Ping] = []
    origin: list = []
    times: list[int] = []
    max_bytes, tolerance_ms = world.max_ping_bytes, world.future_tolerance_ms
    for record in records:
        result = decode_ping(record.key, record.value, max_bytes)
        if not isinstance(result, Rejection):
            ts_ms = to_ms(result.ts)
            received_ms = record.timestamp if record.timestamp is not None else now_ms
            ahead = time_ahead(result, received_ms, tolerance_ms, ts_ms)
            if ahead is None:
                pings.append(result)
                origin.append(record)
                times.append(ts_ms)
                continue
            result = ahead
        step.rejected.append((record, result))
    return pings, origin, times


def _safely(step: Step, v: _Vehicle, work, *args) -> bool:
    """``work(*args)`` for one vehicle; if it fails (a bug), the vehicle's records are
    dead-lettered with the reason and the batch goes on."""
    try:
        work(*args)
        return True
    except Exception as exc:  # a bug must not stop the stream or lose the pings
        log.exception("processing %s failed", v.vehicle_id)
        failure = Rejection(PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")
        step.rejected += [(record, failure) for record in v.records]
        return False


def _admit(step: Step, v: _Vehicle) -> None:
    """A vehicle's pings into its buffers; its latest report without a fix is proof of
    life (``heard_ms``)."""
    unfixed = ([t for ping, t in zip(v.pings, v.times) if not ping.fix_valid]
               if len(v.observations) < len(v.pings) else None)
    v.admitted = admit(v.state, v.vehicle_id, v.observations, step.world.rules, step.now,
                       heard_ms=max(unfixed) if unfixed else None)


def _judge(step: Step, v: _Vehicle, partition: int, reference: Reference) -> None:
    """A vehicle's admitted fixes through the rules; its state, records and update kept."""
    outcome = judge(v.admitted, step.world.rules, step.now, reference)
    outcome.state.partition = partition
    outcome.state.offset = v.records[-1].offset
    step.states[v.key] = outcome.state
    step.vehicles.append(VehicleStep(v.key, outcome, v.records))
    step.rejected += [(v.fixes[index], _TOO_OLD) for index in outcome.late]
    counts = step.counts
    counts.uploaded_late += outcome.uploaded_late
    counts.duplicates += outcome.duplicates
    counts.implausible += outcome.implausible
    update = vehicle_update(outcome.state, v.previous, v.observations)
    if update is not None:
        step.updates.append(update)


# --- the timer ------------------------------------------------------------------------------
def tick(records: Iterable[Record], vehicles: Vehicles, world: World, now: datetime) -> Step:
    """Timer ticks (prompts for vehicles that may have gone silent or have fixes waiting)."""
    step = Step(now=now, world=world)
    latest: dict[bytes, int] = {}
    for record in records:
        try:
            latest[record.key] = int(msgspec.json.decode(record.value)["now_ms"])
        except Exception:  # a tick is only a prompt: log it, keep the stream going
            log.warning("unreadable timer tick at %s[%s]@%s", record.topic,
                        record.partition, record.offset)
    for key, now_ms in latest.items():
        try:
            _silence(step, vehicles, key, now_ms)
        except Exception:
            log.exception("timer tick for %r failed", key)
    return step


def _silence(step: Step, vehicles: Vehicles, key: bytes, now_ms: int) -> None:
    state = vehicles.get(key)
    if state is None:
        return
    world = step.world
    reference = Reference(zones=world.zones.by_id, zone_index=world.zones,
                          permits={state.vehicle_id: world.permit(key)},
                          provinces=world.provinces, resources=world.resources)
    waiting, previous = (len(state.pending), len(state.kept)), state.last
    outcome = silence(state, now_ms, world.rules, step.now, reference)
    if not outcome.alerts and (len(state.pending), len(state.kept)) == waiting:
        return
    step.states[key] = state
    step.vehicles.append(VehicleStep(key, outcome, []))
    update = vehicle_update(state, previous)
    if update is not None:
        step.updates.append(update)


def due(vehicles: Iterable[tuple[bytes, VehicleState]], now_ms: int, world: World
        ) -> list[tuple[bytes, int]]:
    """(key, partition) of every vehicle the timer should prompt at ``now_ms``: fixes
    waiting that are due, or a silence to report."""
    return [(key, state.partition) for key, state in vehicles
            if state.partition is not None
            and timer_due(state, now_ms, world.rules, world.permit(key))]
