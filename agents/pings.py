"""The pings agent: batches of pings from ``yrd.pings`` through the rules to ``yrd.alerts``."""

from __future__ import annotations

import logging

from yrd_hazmat import metrics
from yrd_hazmat.geo.jurisdiction import default_index
from yrd_hazmat.readmodel import ReadModel

from agents.app import alerts_topic, app, deadletter_topic, pings_topic, settings, vehicle_table
from agents.processor import PingProcessor

log = logging.getLogger(__name__)


@app.agent(pings_topic)
async def process_pings(stream):
    """Take pings in batches (keyed by vehicle at the producer: no repartition)."""
    processor = PingProcessor(
        settings,
        table=vehicle_table,
        alerts=alerts_topic,
        deadletter=deadletter_topic,
        places=default_index(),
        readmodel=ReadModel.from_url(
            settings.redis_url.get_secret_value(), settings.redis_prefix, settings.redis_position_ttl_s
        ),
    )
    try:
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
            await processor.handle(stream, events)
    finally:
        await processor.readmodel.close()


@app.task
async def serve_metrics() -> None:
    """Expose Prometheus metrics once the worker starts."""
    metrics.serve(settings.metrics_port, settings.metrics_host)
    log.info("metrics on http://%s:%s/metrics; settings: %s",
             settings.metrics_host, settings.metrics_port, settings.summary())
