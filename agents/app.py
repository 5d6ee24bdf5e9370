"""The Faust application: its topics and tables. The agents attach to it in their own
modules, which :mod:`agents.worker` imports (run that: ``faust -A agents.worker worker``).
Configuration comes from :class:`yrd_hazmat.config.Settings` (environment).
"""

from __future__ import annotations

import ssl

import faust

from yrd_hazmat.config import Settings, get_settings

from yrd_hazmat.membership import instance_id

from agents import delivery
from agents.deadletter import DeadLetterSink


def _credentials(settings: Settings) -> faust.SASLCredentials | ssl.SSLContext | None:
    """Faust's form of the same connection options every other client gets."""
    options = settings.kafka_options()
    if settings.kafka_sasl_mechanism:
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options.get("sasl_plain_password"),
            mechanism=options["sasl_mechanism"],
            ssl_context=options.get("ssl_context"),
        )
    return options.get("ssl_context")


def create_app(settings: Settings) -> faust.App:
    """A Faust app wired to the configured broker (agents attach in their modules).

    The broker URL uses the project's transport (``yrdkafka://``, see
    :mod:`agents.delivery`): pings and ticks arrive a partition batch at a time
    and their offsets are committed only up to the last checkpoint.
    """
    delivery.register()
    app = faust.App(
        settings.app_id,
        broker=settings.faust_broker.replace("kafka://", f"{delivery.SCHEME}://"),
        broker_credentials=_credentials(settings),
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        consumer_group_instance_id=instance_id(settings.app_id, settings.group_instance_id),
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.session_timeout_s / 5),
        broker_max_poll_records=settings.batch_max,
        stream_buffer_maxsize=64,  # events of batched topics are whole partition batches
        producer_acks=-1,
        producer_linger=0.005,  # let aiokafka batch the alerts and changelog records of a batch
        producer_max_request_size=2_000_000,
        producer_max_batch_size=512 * 1024,  # a checkpoint's states go out in few requests
        stream_wait_empty=False,
        logging_config=None,
    )
    app.batch_topics = frozenset({settings.topic_pings, settings.topic_ticks})
    app.fetch_wait_ms = settings.fetch_wait_ms
    app.fetch_min_bytes = settings.fetch_min_bytes
    return app


settings = get_settings()
app = create_app(settings)

pings_topic = app.topic(settings.topic_pings, settings.topic_ticks, key_type=bytes,
                        value_type=bytes, acks=False)
"""The pings and the timer's ticks (co-partitioned), taken by one agent in one stream, a
fetched partition batch per event; committed by checkpoint, not by Faust's acks."""
ticks_topic = app.topic(settings.topic_ticks, key_type=bytes, value_type=bytes, acks=False)
alerts_topic = app.topic(settings.topic_alerts, key_type=bytes, value_type=bytes)
deadletter_topic = app.topic(settings.topic_deadletter, key_type=bytes, value_type=bytes)
zones_topic = app.topic(settings.topic_zones, key_type=bytes, value_type=bytes)
permits_topic = app.topic(settings.topic_permits, key_type=bytes, value_type=bytes)
handovers_topic = app.topic(settings.topic_handovers, key_type=bytes, value_type=bytes)
dead_letters = DeadLetterSink(deadletter_topic, settings.deadletter_max_raw_bytes)


def _vehicle_table(name: str, help: str) -> faust.Table:
    """A changelog-backed table keyed by vehicle id, co-partitioned with the pings."""
    return app.Table(name, key_type=bytes, value_type=bytes,
                     partitions=settings.topic_partitions, help=help)


vehicle_table = _vehicle_table("vehicle-state", "per-vehicle rule state (msgpack VehicleState)")
permits_table = _vehicle_table("permits", "latest valid permit record (msgpack PermitEntry)")
