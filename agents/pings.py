"""The pings agent: batches of pings from ``yrd.pings`` through the rules to ``yrd.alerts``."""

from __future__ import annotations

import logging

from yrd_hazmat import metrics
from yrd_hazmat.geo.jurisdiction import default_index
from yrd_hazmat.readmodel import ReadModel

from agents.app import (
    alerts_topic, app, dead_letters, handovers_topic, permits_table, pings_topic, settings,
    ticks_topic, vehicle_table,
)
from agents.processor import PingProcessor
from agents.zones import zone_loader, zone_registry

log = logging.getLogger(__name__)


processor = PingProcessor(
    settings,
    table=vehicle_table,
    alerts=alerts_topic,
    handovers=handovers_topic,
    permits=permits_table,
    dead_letters=dead_letters,
    places=default_index(),
    zones=zone_registry,
    readmodel=ReadModel.from_url(
        settings.redis_url.get_secret_value(), settings.redis_prefix, settings.redis_position_ttl_s
    ),
)


@app.agent(pings_topic)
async def process_pings(stream):
    """Take pings (and timer ticks) in batches; pings are keyed by vehicle at the producer."""
    await zone_loader.ready.wait()  # no ping is judged against a partial set of zones
    try:
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
            await processor.handle(events)
    finally:
        await processor.readmodel.close()


@app.task
async def serve_metrics() -> None:
    """Expose Prometheus metrics once the worker starts."""
    metrics.serve(settings.metrics_port, settings.metrics_host)
    log.info("metrics on http://%s:%s/metrics; settings: %s",
             settings.metrics_host, settings.metrics_port, settings.summary())


@app.timer(interval=settings.signal_check_interval_s)
async def check_silence() -> None:
    """Tick every silent vehicle on a trip, so SIGNAL_LOST fires with no ping arriving."""
    sent = await processor.send_ticks(ticks_topic)
    if sent:
        log.info("ticked %d silent vehicles", sent)
