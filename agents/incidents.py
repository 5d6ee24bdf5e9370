"""The incident keeper: the one writer of each incident's record on ``yrd.incidents``.

Actions arrive on ``yrd.incident-actions`` (key = incident id) from the worker itself
(an emergency raised or cleared), the desks (ack, assign, note, dispatch...) and
``yrd-hazmat respond``. The partition of an incident's actions belongs to one worker
at a time, so one keeper applies them in order; before each action it reads
``yrd.incidents`` up to its end (:class:`~yrd_hazmat.follow.TopicReader`), so after a
rebalance it continues from what the previous owner wrote, never from an older version.

Actions are taken a batch at a time (what the stream holds): one read of the records,
each action applied in order (:func:`yrd_hazmat.core.emergency.incidents.apply`, pure), the
changed records published and their deliveries awaited together, then the actions acked.
A kill -9 at any moment re-delivers the actions not acked, which their ids make count
once. A burst of emergencies costs one round trip per batch, not per action, so the
keeper never holds up the pings that share the worker's consumer. A refused action
(a resource already deployed, an arrival before the dispatch...) is noted in the
record's ``rejected`` list, so whoever sent it learns why; an undecodable one, or one
for an incident nobody raised, goes to the dead-letter topic. If Kafka fails meanwhile
(reading the records, publishing one), the action is tried again with a capped backoff,
never skipped.

A dispatch deploys the resource (its record on ``yrd.resources`` says ``deployed`` and
to which incident, so it is proposed no more); its release, or the incident's close,
makes it available again, unless it was put out of service meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import msgspec

from yrd_hazmat import metrics
from yrd_hazmat.core.codec import INVALID, PROCESSING_ERROR, Rejection, decoded
from yrd_hazmat.core.emergency.incidents import apply, encode, resource_status, touched
from yrd_hazmat.follow import TopicReader
from yrd_hazmat.core.emergency.records import IncidentLogs
from yrd_hazmat.core.models import IncidentCommand, IncidentLog, Resource
from yrd_hazmat.core.timeutil import CHINA_TZ

from agents.app import app, dead_letters, settings
from agents.process_pings import processor

log = logging.getLogger(__name__)

actions_topic = app.topic(settings.topic_incident_actions, key_type=bytes, value_type=bytes)
records_topic = app.topic(settings.topic_incidents, key_type=bytes, value_type=bytes)
resources_topic = app.topic(settings.topic_resources, key_type=bytes, value_type=bytes)
_command = msgspec.json.Decoder(IncidentCommand)
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 10.0
BATCH_MAX = 500
"""Actions applied together at most: one read of the records, their deliveries awaited
together."""


class Records:
    """The incident records, read up to the topic's end before each action."""

    def __init__(self) -> None:
        self.logs = IncidentLogs()
        self.reader = TopicReader(settings.kafka_options(), settings.topic_incidents,
                                  self.logs.apply)
        self.started = False

    async def latest(self) -> IncidentLogs:
        if not self.started:
            await self.reader.start()
            self.started = True
        await self.reader.catch_up()
        return self.logs


records = Records()


@app.agent(actions_topic)
async def keep_incidents(stream):
    """Apply the incident actions to their incidents' records, in order, a batch at a time
    (what the stream holds, up to ``BATCH_MAX``)."""
    manual = stream.noack()
    received = manual.channel.queue  # events delivered to this stream, not read yet
    batch: list = []
    try:
        async for event in manual.events():
            batch.append(event)
            if len(batch) >= BATCH_MAX or received.empty():
                await _until_done(batch)
                for done in batch:
                    await manual.ack(done)  # only once the records (and resources) are delivered
                batch = []
    finally:
        if records.started:
            await records.reader.stop()


async def _until_done(batch: list) -> None:
    """Handle the batch, retrying (with a capped backoff) while Kafka fails: no action is
    skipped, and the ones after them wait."""
    delay = RETRY_FIRST_S
    while True:
        try:
            return await _handle(batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broker away: try again, never lose an action
            first = batch[0].message
            log.warning("incident actions from %s:%s: %s: %s; again in %.1f s", first.topic,
                        first.offset, type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)


class _Step:
    """One batch's work: the records and resources it changes, its dead letters, its counts."""

    def __init__(self, known: IncidentLogs) -> None:
        self.known = known
        self.records: dict[str, IncidentLog] = {}
        self.resources: dict[str, Resource] = {}
        self.dead: list[tuple[Any, Rejection]] = []
        self.counts: list[tuple[str, str]] = []

    def record(self, incident_id: str) -> IncidentLog | None:
        return self.records.get(incident_id) or self.known.get(incident_id)

    def resource(self, resource_id: str | None) -> Resource | None:
        if not resource_id:
            return None
        return self.resources.get(resource_id) or processor.resources.get(resource_id)

    def refuse(self, event, kind: str, rejection: Rejection) -> None:
        self.counts.append((kind, "refused"))
        self.dead.append((event, rejection))

    def take(self, event) -> None:
        """Apply one action to the batch's view of the records."""
        command = decoded(_command.decode, event.value) if event.value is not None else Rejection(
            INVALID, "record has no value")
        if isinstance(command, Rejection):
            return self.refuse(event, "unknown", command)
        action = command.action
        before = self.record(command.incident_id)
        try:
            after, reason = apply(before, command, self.resource(action.resource_id))
        except Exception as exc:  # a bug, not the broker: retrying would block the partition
            log.exception("incident action %s could not be applied", action.action_id)
            return self.refuse(event, action.kind,
                               Rejection(PROCESSING_ERROR, f"{type(exc).__name__}: {exc}"))
        if after is None:
            if action.kind != "cleared":  # a clear with no record is nothing to keep
                self.refuse(event, action.kind, Rejection(INVALID, reason or "no record"))
            return None
        if after is not before:
            self.records[command.incident_id] = after
        self.counts.append((action.kind, "refused" if reason else
                            "recorded" if after is not before else "repeated"))
        if reason:
            log.info("incident %s: %s by %s refused: %s", command.incident_id, action.kind,
                     action.by, reason)
            return None
        for resource_id in touched(after, action):  # also for a repeat: a crash in between
            current = self.resource(resource_id)
            wanted = resource_status(current, after) if current is not None else None
            if wanted is not None:
                self.resources[resource_id] = wanted
        return None


async def _handle(batch: list) -> None:
    step = _Step(await records.latest())
    for event in batch:
        step.take(event)
    values = {incident_id.encode(): encode(record) for incident_id, record in step.records.items()}
    deliveries = [await records_topic.send(key=key, value=value) for key, value in values.items()]
    deliveries += [await resources_topic.send(key=resource_id.encode(),
                                              value=msgspec.json.encode(resource))
                   for resource_id, resource in step.resources.items()]
    now = datetime.now(CHINA_TZ)
    for event, rejection in step.dead:
        await dead_letters.send(event, rejection, now)
    await asyncio.gather(*deliveries)  # raises if the broker refused one: the batch again
    for key, value in values.items():
        step.known.apply(key, value)
    for resource in step.resources.values():
        processor.resources.put(resource)
    for kind, result in step.counts:
        metrics.INCIDENT_ACTIONS.labels(kind=kind, result=result).inc()
