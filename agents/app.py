"""The Faust application: topics, the vehicle-state table and the agents.

Run it with ``faust -A agents.app worker -l info`` or ``yrd-hazmat worker``.
Configuration comes from :class:`yrd_hazmat.config.Settings` (environment).
"""

from __future__ import annotations

import ssl

import faust

from yrd_hazmat.config import Settings, get_settings

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
    """A Faust app wired to the configured broker; agents attach in :mod:`agents.pings`."""
    return faust.App(
        settings.app_id,
        broker=settings.faust_broker,
        broker_credentials=_credentials(settings),
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=0.005,  # let aiokafka batch the alerts and changelog records of a batch
        producer_max_request_size=2_000_000,
        stream_wait_empty=False,
        logging_config=None,
    )


settings = get_settings()
app = create_app(settings)

pings_topic = app.topic(settings.topic_pings, settings.topic_ticks, key_type=bytes, value_type=bytes)
"""The pings and the timer's ticks (co-partitioned), taken by one agent in one stream."""
ticks_topic = app.topic(settings.topic_ticks, key_type=bytes, value_type=bytes)
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

from agents import permits, pings, zones  # noqa: E402,F401  (registers the agents on ``app``)
