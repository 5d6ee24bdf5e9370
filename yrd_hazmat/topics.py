"""Create the contract's topics with their partitions and retention settings."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from .config import Settings

log = logging.getLogger(__name__)

_DAY_MS = 24 * 3600 * 1000


TABLES = ("vehicle-state", "permits")
"""The worker's Faust tables; their changelog topics are created with the others, so the
first write of a fresh worker never races Faust's own creation of them."""


def topic_specs(settings: Settings) -> dict[str, dict[str, str]]:
    """Topic name -> its Kafka configs. Reference data and changelogs are compacted."""
    compacted = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
    changelogs = {f"{settings.app_id}-{table}-changelog": compacted for table in TABLES}
    return {
        # Large enough that an oversized bad record reaches the worker and is dead-lettered.
        settings.topic_pings: {"retention.ms": str(3 * _DAY_MS), "max.message.bytes": "2000000"},
        settings.topic_alerts: {"retention.ms": str(30 * _DAY_MS)},
        settings.topic_deadletter: {"retention.ms": str(30 * _DAY_MS), "max.message.bytes": "2000000"},
        settings.topic_handovers: {"retention.ms": str(30 * _DAY_MS)},
        settings.topic_permits: compacted,
        settings.topic_zones: compacted,
        settings.topic_terminals: compacted,
        settings.topic_vehicle_terminals: compacted,
        settings.topic_commands: {"retention.ms": str(7 * _DAY_MS)},
        settings.topic_command_results: {"retention.ms": str(30 * _DAY_MS)},
        settings.topic_media: {"retention.ms": str(30 * _DAY_MS),
                               "max.message.bytes": str(4 * 1024 * 1024)},
        # compacted, and dropped after 400 days: the ledger's year, bounded memory for readers
        settings.topic_incidents: compacted | {"cleanup.policy": "compact,delete",
                                               "retention.ms": str(400 * _DAY_MS)},
        settings.topic_incident_actions: {"retention.ms": str(30 * _DAY_MS)},
        settings.topic_resources: compacted,
        settings.topic_ticks: {"retention.ms": str(3600 * 1000)},
        # JT/T 809 lower platforms: their configuration, their vehicles, what they send up
        settings.topic_platforms: compacted,
        settings.topic_platform_vehicles: compacted,
        settings.topic_ewaybills: {"retention.ms": str(90 * _DAY_MS)},
        settings.topic_platform_reports: {"retention.ms": str(30 * _DAY_MS)},
        settings.topic_platform_requests: {"retention.ms": str(7 * _DAY_MS)},
        settings.topic_platform_request_results: {"retention.ms": str(30 * _DAY_MS)},
        settings.topic_link_states: compacted,
        # the notifier: who is told of what, and every delivery's latest state (a month)
        settings.topic_subscriptions: compacted,
        settings.topic_deadlines: compacted,
        # desk accounts (password hashes: readable by the desk and the CLI only), and the
        # audit log (the archive keeps it 3 years)
        settings.topic_desk_users: compacted,
        settings.topic_audit: {"retention.ms": str(400 * _DAY_MS)},
        settings.topic_notifications: compacted | {"cleanup.policy": "compact,delete",
                                                   "retention.ms": str(30 * _DAY_MS)},
        # the uplink: the national platform's requests, and the answers the desk gives
        settings.topic_uplink_requests: {"retention.ms": str(30 * _DAY_MS)},
        # (an answer to a photo request carries the picture: up to yrd.media's 4 MiB)
        settings.topic_uplink_answers: {"retention.ms": str(30 * _DAY_MS),
                                        "max.message.bytes": str(6 * 1024 * 1024)},
    } | changelogs


async def ensure_topics(settings: Settings) -> list[str]:
    """Create any missing topic of the contract; returns the names created."""
    admin = AIOKafkaAdminClient(**settings.kafka_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=name,
                num_partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication,
                topic_configs=configs,
            )
            for name, configs in topic_specs(settings).items()
            if name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:  # another worker won the race
                pass
            log.info("created topics: %s", ", ".join(t.name for t in missing))
        return [t.name for t in missing]
    finally:
        await admin.close()


async def ensure_topics_ready(settings: Settings, timeout_s: float = 60.0) -> list[str]:
    """:func:`ensure_topics`, then wait until the broker describes every topic with its
    partitions. A worker that joined its group before a topic it subscribes to was in the
    broker's metadata got no partition of it (seen right after a broker restart), and
    aiokafka noticed only at its next metadata refresh, minutes later."""
    created = await ensure_topics(settings)
    await asyncio.wait_for(wait_for_partitions(settings, *topic_specs(settings), poll_s=0.2),
                           timeout_s)
    return created


async def wait_for_partitions(settings: Settings, topic: str, *more: str,
                              poll_s: float = 1.0) -> list[int]:
    """The partition ids of ``topic``, waiting until it (and every topic of ``more``)
    exists with its partitions; one admin client for them all."""
    admin = AIOKafkaAdminClient(**settings.kafka_options())
    await admin.start()
    try:
        waiting = [topic, *more]
        found: dict[str, list[int]] = {}
        while waiting:
            for description in await admin.describe_topics(waiting):
                if description["error_code"] == 0 and description["partitions"]:
                    found[description["topic"]] = sorted(
                        p["partition"] for p in description["partitions"])
            waiting = [t for t in waiting if t not in found]
            if waiting:
                log.warning("topic %s does not exist yet", ", ".join(waiting))
                await asyncio.sleep(poll_s)
        return found[topic]
    finally:
        await admin.close()
