"""The incident keeper: the one writer of each incident's record on ``yrd.incidents``.

Actions arrive on ``yrd.incident-actions`` (key = incident id) from the worker itself
(an emergency raised or cleared), the desks (ack, assign, note, dispatch...) and
``yrd-hazmat respond``. The partition of an incident's actions belongs to one worker
at a time, so one keeper applies them in order; before each action it reads
``yrd.incidents`` up to its end (:class:`~yrd_hazmat.follow.TopicReader`), so after a
rebalance it continues from what the previous owner wrote, never from an older version.

Per action (:func:`yrd_hazmat.emergency.incidents.apply`, pure): the new record is
published and its delivery awaited before the action is acked, so a kill -9 at any
moment re-delivers the action, which an action id makes count once. A refused action
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

import msgspec

from yrd_hazmat import metrics
from yrd_hazmat.codec import INVALID, PROCESSING_ERROR, Rejection, decoded
from yrd_hazmat.emergency.incidents import apply, encode, resource_status, touched
from yrd_hazmat.follow import TopicReader
from yrd_hazmat.emergency.records import IncidentLogs
from yrd_hazmat.models import IncidentCommand
from yrd_hazmat.timeutil import CHINA_TZ

from agents.app import app, dead_letters, settings
from agents.pings import processor

log = logging.getLogger(__name__)

actions_topic = app.topic(settings.topic_incident_actions, key_type=bytes, value_type=bytes)
records_topic = app.topic(settings.topic_incidents, key_type=bytes, value_type=bytes)
resources_topic = app.topic(settings.topic_resources, key_type=bytes, value_type=bytes)
_command = msgspec.json.Decoder(IncidentCommand)
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 10.0


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
    """Apply each incident action to its incident's record, in order."""
    manual = stream.noack()
    try:
        async for event in manual.events():
            await _until_done(event)
            await manual.ack(event)  # only once the record (and resources) are delivered
    finally:
        if records.started:
            await records.reader.stop()


async def _until_done(event) -> None:
    """Handle the action, retrying (with a capped backoff) while Kafka fails: the action
    is never skipped, and the ones after it wait."""
    delay = RETRY_FIRST_S
    while True:
        try:
            return await _handle(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broker away: try again, never lose the action
            log.warning("incident action at %s:%s: %s: %s; again in %.1f s", event.message.topic,
                        event.message.offset, type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)


async def _handle(event) -> None:
    now = datetime.now(CHINA_TZ)
    command = decoded(_command.decode, event.value) if event.value is not None else Rejection(
        INVALID, "record has no value")
    if isinstance(command, Rejection):
        metrics.INCIDENT_ACTIONS.labels(kind="unknown", result="refused").inc()
        await dead_letters.send(event, command, now)
        return
    action = command.action
    known = await records.latest()
    before = known.get(command.incident_id)
    index = processor.resources
    resource = index.get(action.resource_id) if action.resource_id else None
    try:
        after, reason = apply(before, command, resource)
    except Exception as exc:  # a bug, not the broker: retrying would block the partition
        log.exception("incident action %s could not be applied", action.action_id)
        metrics.INCIDENT_ACTIONS.labels(kind=action.kind, result="refused").inc()
        await dead_letters.send(event, Rejection(PROCESSING_ERROR, f"{type(exc).__name__}: {exc}"),
                                now)
        return
    if after is None:
        if action.kind != "cleared":  # a clear of an incident with no record is nothing to keep
            metrics.INCIDENT_ACTIONS.labels(kind=action.kind, result="refused").inc()
            await dead_letters.send(event, Rejection(INVALID, reason or "no record"), now)
        return
    if after is not before:
        value = encode(after)
        await (await records_topic.send(key=command.incident_id.encode(), value=value))
        known.apply(command.incident_id.encode(), value)
    result = "refused" if reason else ("recorded" if after is not before else "repeated")
    metrics.INCIDENT_ACTIONS.labels(kind=action.kind, result=result).inc()
    if reason:
        log.info("incident %s: %s by %s refused: %s", command.incident_id, action.kind,
                 action.by, reason)
        return
    for resource_id in touched(after, action):
        current = index.get(resource_id)
        wanted = resource_status(current, after) if current is not None else None
        if wanted is not None:
            await (await resources_topic.send(key=resource_id.encode(),
                                              value=msgspec.json.encode(wanted)))
            index.put(wanted)
