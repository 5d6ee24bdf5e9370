"""The worker's shell around the pure batch core: a fetched batch in, its effects out.

:func:`yrd_hazmat.core.batch.run` (or ``tick`` for the timer's topic) computes everything
a batch produces; this shell only supplies what the core cannot know (the processing
time, the reference data in force, the trucks the read model places near an emergency)
and writes the result: records to their topics, the vehicles' new states, the read-model
updates, the metrics. Vehicle states stay decoded in memory (:mod:`agents.vehicles`);
:class:`agents.delivery.checkpoint.Checkpoint` makes them and the input offsets durable, in an
order that survives a kill -9 at any moment.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from datetime import datetime

import msgspec
import numpy as np
from faust.types import TP

from yrd_hazmat import metrics
from yrd_hazmat.config import Settings
from yrd_hazmat.core import batch
from yrd_hazmat.core.batch import Step, Topics, World
from yrd_hazmat.core.emergency.responders import ResourceIndex, load_resources
from yrd_hazmat.core.geo.jurisdiction import (
    JurisdictionIndex, default_index, province_shapes_metric,
)
from yrd_hazmat.core.models import Alert
from yrd_hazmat.core.permits.status import NO_PERMIT, PermitStatus
from yrd_hazmat.core.permits.store import PermitCache
from yrd_hazmat.readmodel import ReadModel
from yrd_hazmat.rules_config import rules_config
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.core.zones.registry import ZoneRegistry

from agents.delivery.outputs import Outputs
from agents.vehicles import VehicleStates

log = logging.getLogger(__name__)

EXPOSURE_TIMEOUT_S = 0.5
"""At most this long for the read model's trucks around an emergency."""
EXPOSURE_PAUSE_S = 10.0
"""After a failed lookup, emergencies say "trucks unknown" at once for this long."""


class PingProcessor:
    """Processes batches of ``yrd.pings`` (and timer ticks) for one worker."""

    def __init__(
        self,
        settings: Settings,
        *,
        states: VehicleStates,
        outputs: Outputs,
        permits,
        places: JurisdictionIndex | None = None,
        zones: ZoneRegistry,
        readmodel: ReadModel,
    ) -> None:
        self.settings = settings
        self.states = states
        self.outputs = outputs
        self.permits = permits
        self._places = places
        self.zones = zones
        self.readmodel = readmodel
        self._exposure_paused_until = 0.0
        self.topics = Topics(alerts=settings.topic_alerts, handovers=settings.topic_handovers,
                             incident_actions=settings.topic_incident_actions,
                             deadletter=settings.topic_deadletter)
        self.rules = rules_config(settings)
        self.ticks_topic = settings.topic_ticks

    # --- reference data, built on first use (importing the app builds nothing heavy) ------
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

    def world(self) -> World:
        """The reference data in force now (zones and permits change at run time)."""
        s = self.settings
        return World(rules=self.rules, places=self.places, provinces=self.provinces,
                     zones=self.zones.index, permit=self._permit_of, resources=self.resources,
                     topics=self.topics, max_ping_bytes=s.max_ping_bytes,
                     future_tolerance_ms=int(s.future_tolerance_s * 1000),
                     max_raw_bytes=s.deadletter_max_raw_bytes,
                     exposure_max_age_s=s.exposure_max_age_s)

    def _permit_of(self, key: bytes) -> PermitStatus:
        stored = getattr(self.permits, "data", self.permits)  # the table's store: no Faust
        return self.permit_cache.status(stored.get(key)) or NO_PERMIT  # bookkeeping per read

    # --- one batch ----------------------------------------------------------
    async def handle(self, tp: TP, records: list) -> None:
        """Process one partition batch (records in offset order, none processed before)."""
        now = datetime.now(CHINA_TZ)
        metrics.BATCH_SIZE.observe(len(records))
        if tp.topic == self.ticks_topic:
            step = batch.tick(records, self.states, self.world(), now)
        else:
            step = batch.run(records, self.states, self.world(), now)
        emergencies = step.emergencies()
        if emergencies:
            await self._expose(step, emergencies)
        send = self.outputs.send
        for topic, key, value in step.records():
            await send(topic, key, value)
        for key, state in step.states.items():
            self.states.put(key, state)
        published = step.published()
        if step.updates or published:
            self.readmodel.submit(step.updates, published, now)
        _count(step, published)

    async def _expose(self, step: Step, alerts: list[Alert]) -> None:
        """The trucks the read model places within the emergencies' isolation distances
        (one lookup for them all); if Redis is down or slow, said so instead (never waits
        long)."""
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
        step.expose(found, unknown)
        for alert in alerts:
            metrics.EMERGENCIES.labels(type=alert.type).inc()

    # --- the timer ------------------------------------------------------------
    async def send_ticks(self, ticks) -> int:
        """Prompt every vehicle this worker holds with buffered pings due or a silence to
        report; returns how many."""
        now_ms = int(time.time() * 1000)
        due = batch.due(self.states.items(), now_ms, self.world())
        for key, partition in due:
            await ticks.send(key=key, value=msgspec.json.encode({"now_ms": now_ms}),
                             partition=partition)
        return len(due)


def _count(step: Step, published: list[Alert]) -> None:
    """The batch's metrics."""
    counts = step.counts
    if counts.consumed:
        metrics.PINGS_CONSUMED.inc(counts.consumed)
    for name, n in ((metrics.PINGS_REPLAYED, counts.replayed),
                    (metrics.PINGS_WITHOUT_FIX, counts.without_fix),
                    (metrics.PINGS_ACCEPTED, counts.accepted),
                    (metrics.PINGS_UPLOADED_LATE, counts.uploaded_late),
                    (metrics.PINGS_DUPLICATE, counts.duplicates),
                    (metrics.PINGS_IMPLAUSIBLE, counts.implausible)):
        if n:
            name.inc(n)
    for reason, n in counts.rejected.items():
        metrics.PINGS_REJECTED.labels(reason=reason).inc(n)
    for alert in published:
        metrics.ALERTS.labels(
            type=alert.type, severity=alert.severity.value, state=alert.state.value,
            province=alert.province or "none",
        ).inc()
    if step.accepted_ts:
        done = time.time()
        metrics.observe_many(metrics.LATENCY_FROM_EVENT,
                             np.maximum(done - np.asarray(step.accepted_ts), 0.0))
        arrived = np.asarray(step.accepted_arrivals, dtype=float)
        metrics.observe_many(metrics.LATENCY_FROM_ARRIVAL,
                             np.maximum(done - arrived / 1000.0, 0.0))
