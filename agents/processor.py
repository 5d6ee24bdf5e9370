"""The thin shell around the pure core: one batch of ping events in, side effects out.

For each batch: decode and validate every record (rejects to the dead-letter
topic), locate all valid pings at once, run the core per vehicle against its
state from the table, write the new state back under the vehicle's own
partition, publish alerts, update the Redis read model and the metrics.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import faust
import msgspec
from faust.types import EventT

from yrd_hazmat import metrics
from agents.deadletter import DeadLetterSink
from yrd_hazmat.codec import LATE, PROCESSING_ERROR, Rejection, decode_ping, encode
from yrd_hazmat.config import Settings
from yrd_hazmat.engine import Outcome, Reference, RulesConfig, advance, silence, timer_due
from yrd_hazmat.enrich import observe
from yrd_hazmat.geo.jurisdiction import JurisdictionIndex
from yrd_hazmat.models import Alert, Ping
from yrd_hazmat.observation import Observation
from yrd_hazmat.readmodel import ReadModel, VehicleUpdate
from yrd_hazmat.geo.jurisdiction import province_shapes_metric
from yrd_hazmat.permits.store import PermitCache
from yrd_hazmat.rules.fatigue import FatigueConfig
from yrd_hazmat.rules.handover import HandoverConfig
from yrd_hazmat.rules.plausibility import PlausibilityConfig
from yrd_hazmat.permits.status import NO_PERMIT, PermitStatus
from yrd_hazmat.rules.signal import SignalConfig
from yrd_hazmat.rules.stops import StopsConfig
from yrd_hazmat.rules.permits import PermitsConfig
from yrd_hazmat.rules.speeding import SpeedingConfig
from yrd_hazmat.rules.zones import ZonesConfig
from yrd_hazmat.zones.registry import ZoneRegistry
from yrd_hazmat.state import VehicleState, dump_state, load_state
from yrd_hazmat.timeutil import CHINA_TZ

log = logging.getLogger(__name__)


def rules_config(settings: Settings) -> RulesConfig:
    """The rules' configuration from the settings."""
    return RulesConfig(
        speeding=SpeedingConfig(
            expressway_kmh=settings.speed_limit_expressway_kmh,
            other_kmh=settings.speed_limit_other_kmh,
            min_duration_ms=_ms(settings.speeding_min_duration_s),
        ),
        zones=ZonesConfig(
            margin_m=settings.zone_margin_m,
            min_inside_ms=_ms(settings.zone_min_inside_s),
            min_outside_ms=_ms(settings.zone_min_outside_s),
            speeding_min_duration_ms=_ms(settings.speeding_min_duration_s),
        ),
        permits=PermitsConfig(
            required_pattern=settings.permit_required_pattern,
            min_moving_ms=_ms(settings.permit_min_moving_s),
            deviation_raise_ms=_ms(settings.route_deviation_raise_s),
            deviation_clear_ms=_ms(settings.route_deviation_clear_s),
        ),
        handover=HandoverConfig(
            margin_m=settings.handover_margin_m,
            min_across_ms=_ms(settings.handover_min_across_s),
            notice_ms=_ms(settings.handover_notice_s),
        ),
        fatigue=FatigueConfig(
            max_driving_ms=_ms(settings.fatigue_max_driving_s),
            min_rest_ms=_ms(settings.fatigue_min_rest_s),
        ),
        stops=StopsConfig(
            max_stop_ms=_ms(settings.stop_max_s),
            max_stop_sensitive_ms=_ms(settings.stop_max_sensitive_s),
        ),
        plausibility=PlausibilityConfig(max_speed_kmh=settings.implausible_speed_kmh),
        signal=SignalConfig(lost_after_ms=_ms(settings.signal_lost_s)),
        lateness_ms=_ms(settings.lateness_s),
    )


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _update(state: VehicleState, previous: Observation | None) -> VehicleUpdate | None:
    """The read-model update for a vehicle whose latest processed ping was ``previous``."""
    if state.last is None:
        return None
    return VehicleUpdate(
        vehicle_id=state.vehicle_id,
        latest=state.last,
        previous_province=previous.province if previous else None,
        previously_seen=previous is not None,
        open_alerts=len(state.open_incidents),
    )


class PingProcessor:
    """Processes batches of ``yrd.pings`` events for one worker."""

    def __init__(
        self,
        settings: Settings,
        *,
        table: faust.Table,
        alerts: faust.TopicT,
        handovers: faust.TopicT,
        permits: faust.Table,
        dead_letters: DeadLetterSink,
        places: JurisdictionIndex,
        zones: ZoneRegistry,
        readmodel: ReadModel,
    ) -> None:
        self.settings = settings
        self.table = table
        self.alerts_topic = alerts
        self.handovers_topic = handovers
        self.permits = permits
        self.permit_cache = PermitCache(places)
        self.provinces = province_shapes_metric()
        self.dead_letters = dead_letters
        self.places = places
        self.zones = zones
        self.readmodel = readmodel
        self.rules = rules_config(settings)

    async def handle(self, events: Sequence[EventT]) -> None:
        """Process one batch of events taken from the pings stream."""
        now = datetime.now(CHINA_TZ)
        ticks = [e for e in events if e.message.topic == self.settings.topic_ticks]
        records = [e for e in events if e.message.topic != self.settings.topic_ticks]
        metrics.BATCH_SIZE.observe(len(events))
        metrics.PINGS_CONSUMED.inc(len(records))

        pings: list[Ping] = []
        origin: list[EventT] = []
        for event in records:
            result = decode_ping(event.key, event.value, self.settings.max_ping_bytes)
            if isinstance(result, Rejection):
                await self._dead_letter(event, result, now)
            else:
                pings.append(result)
                origin.append(event)
        updates: list[VehicleUpdate] = []
        published: list[Alert] = []
        seen = await self._handle_pings(pings, origin, updates, published, now)
        for tick in ticks:
            if tick.key is None or tick.key.decode("utf-8", "replace") in seen:
                continue
            try:
                await self._silence(tick, updates, published, now)
            except Exception:  # a tick is only a prompt: log it, keep the stream going
                log.exception("timer tick for %r failed", tick.key)
        self._observe_metrics(pings, origin, published)
        if not updates and not published:
            return
        try:
            await self.readmodel.apply(updates, published, now)
        except Exception:  # the read model is a view: never stop the stream for it
            metrics.READMODEL_ERRORS.inc()
            log.exception("Redis read model update failed")

    async def _handle_pings(
        self,
        pings: list[Ping],
        origin: list[EventT],
        updates: list[VehicleUpdate],
        published: list[Alert],
        now: datetime,
    ) -> set[str]:
        """Run the valid pings of the batch through the core; returns their vehicles."""
        if not pings:
            return set()
        zone_index = self.zones.index
        observations = observe(pings, self.places, zone_index)
        by_vehicle: dict[str, list[int]] = defaultdict(list)
        for i, ping in enumerate(pings):
            by_vehicle[ping.vehicle_id].append(i)
        permits = {v: self._permit_of(v.encode("utf-8")) for v in by_vehicle}
        reference = Reference(zones=zone_index.by_id, permits=permits, provinces=self.provinces)
        for vehicle_id, indices in by_vehicle.items():
            events_of_vehicle = [origin[i] for i in indices]
            try:
                update = await self._advance_vehicle(
                    vehicle_id, [observations[i] for i in indices], events_of_vehicle,
                    reference, published, now,
                )
            except Exception as exc:  # a bug must not stop the stream or lose the pings
                log.exception("processing %s failed", vehicle_id)
                failure = Rejection(PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")
                for event in events_of_vehicle:
                    await self._dead_letter(event, failure, now)
                continue
            if update is not None:
                updates.append(update)
        return set(by_vehicle)

    async def _publish(self, key: bytes, outcome: Outcome) -> None:
        for alert in outcome.alerts:
            await self.alerts_topic.send(key=key, value=encode(alert))
        for handover in outcome.handovers:
            await self.handovers_topic.send(key=key, value=encode(handover))
            metrics.HANDOVERS.labels(from_province=handover.from_province or "none",
                                     to_province=handover.to_province or "none").inc()

    async def _store(self, key: bytes, state: VehicleState) -> None:
        """Keep a vehicle's state in the table and its changelog, on the vehicle's partition.

        Written like Faust's own ``table[key] = value`` (store, then changelog
        record), but awaiting the changelog send: ``__setitem__`` queues into a
        100-message buffer and stalls the stream while it drains (seen in the
        pipeline benchmark), while an awaited send is batched by the producer.
        """
        value = dump_state(state)
        self.table.data[key] = value
        await self.table.changelog_topic.send(
            key=key, value=value, partition=state.partition,
            key_serializer="raw", value_serializer="raw",
        )

    def _permit_of(self, key: bytes) -> PermitStatus:
        return self.permit_cache.status(self.permits.get(key)) or NO_PERMIT

    async def _silence(
        self, tick: EventT, updates: list[VehicleUpdate], published: list[Alert], now: datetime
    ) -> None:
        """A timer tick for a vehicle that sent nothing in this batch."""
        stored = self.table.get(tick.key)
        if stored is None:
            return
        state = load_state(stored)
        now_ms = int(msgspec.json.decode(tick.value)["now_ms"])
        status = self._permit_of(tick.key)
        zone_index = self.zones.index
        reference = Reference(zones=zone_index.by_id, permits={state.vehicle_id: status},
                              provinces=self.provinces)
        waiting, previous = len(state.pending), state.last
        outcome = silence(state, now_ms, self.rules, now, reference)
        if not outcome.alerts and len(state.pending) == waiting:
            return
        await self._store(tick.key, state)
        await self._publish(tick.key, outcome)
        published.extend(outcome.alerts)
        update = _update(state, previous)
        if update is not None:
            updates.append(update)

    async def send_ticks(self, ticks: faust.TopicT) -> int:
        """Prompt every vehicle this worker holds with buffered pings due or a silence to
        report; returns how many."""
        now_ms = int(time.time() * 1000)
        sent = 0
        for key, stored in list(self.table.items()):
            state = load_state(stored)
            if state.partition is None or not timer_due(state, now_ms, self.rules,
                                                         self._permit_of(key)):
                continue
            await ticks.send(key=key, value=msgspec.json.encode({"now_ms": now_ms}),
                             partition=state.partition)
            sent += 1
        return sent

    async def _advance_vehicle(
        self,
        vehicle_id: str,
        batch: list[Observation],
        events: list[EventT],
        reference: Reference,
        published: list[Alert],
        now: datetime,
    ) -> VehicleUpdate | None:
        """Run the core for one vehicle; store its state, publish its alerts."""
        key = vehicle_id.encode("utf-8")
        stored = self.table.get(key)
        state = load_state(stored) if stored is not None else None
        previous = state.last if state is not None else None
        outcome = advance(state, vehicle_id, batch, self.rules, now, reference)
        outcome.state.partition = events[-1].message.partition
        await self._store(key, outcome.state)
        await self._publish(key, outcome)
        published.extend(outcome.alerts)
        late = Rejection(LATE, "ping is older than the vehicle's latest processed ping")
        for index in outcome.late:
            await self._dead_letter(events[index], late, now)
        metrics.PINGS_DUPLICATE.inc(outcome.duplicates)
        metrics.PINGS_IMPLAUSIBLE.inc(outcome.implausible)
        return _update(outcome.state, previous)

    async def _dead_letter(self, event: EventT, rejection: Rejection, now: datetime) -> None:
        await self.dead_letters.send(event, rejection, now)
        metrics.PINGS_REJECTED.labels(reason=rejection.reason).inc()

    def _observe_metrics(
        self, pings: list[Ping], origin: list[EventT], alerts: list[Alert]
    ) -> None:
        done = time.time()
        metrics.PINGS_ACCEPTED.inc(len(pings))
        for ping, event in zip(pings, origin):
            metrics.LATENCY_FROM_EVENT.observe(max(0.0, done - ping.ts.timestamp()))
            metrics.LATENCY_FROM_ARRIVAL.observe(max(0.0, done - event.message.timestamp))
        for alert in alerts:
            metrics.ALERTS.labels(
                type=alert.type,
                severity=alert.severity.value,
                state=alert.state.value,
                province=alert.province or "none",
            ).inc()
        metrics.VEHICLES_TRACKED.set(len(self.table))

