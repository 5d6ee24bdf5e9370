"""What was processed shows in the Redis read model and on /metrics."""

from __future__ import annotations

import asyncio

import pytest

from yrd_hazmat.readmodel import ReadModel
from tests.integration.harness import scrape
from tests.integration.traces import XINJIEKOU, drive, of, start_time

pytestmark = pytest.mark.integration


def test_read_model_and_metrics_show_what_was_processed(env, kafka, worker, services):
    t0 = start_time()
    still_speeding = drive("沪A20001", t0, [96.0] * 10)  # raised, never cleared
    episode_over = drive("沪A20002", t0, [96.0] * 8 + [60.0] * 2)  # raised then cleared
    in_nanjing = drive("苏A20003", t0, [40.0] * 5, at=XINJIEKOU, road="other")
    valid = still_speeding + episode_over + in_nanjing
    kafka.send_pings(env["YRD_TOPIC_PINGS"], valid)
    kafka.send(env["YRD_TOPIC_PINGS"], "沪A20001".encode(), b"not json")
    kafka.flush()

    alerts = kafka.read(
        env["YRD_TOPIC_ALERTS"],
        lambda r: len(of(r, "沪A20001")) >= 1 and len(of(r, "沪A20002")) >= 2,
        settle=2,
    )
    raised = of(alerts, "沪A20001")[0]

    async def read_model():
        model = ReadModel.from_url(services["REDIS_URL"], prefix=env["YRD_REDIS_PREFIX"])
        try:
            return (
                await model.vehicle("沪A20001"),
                await model.vehicle("苏A20003"),
                await model.open_alerts(vehicle_id="沪A20001"),
                await model.open_alerts(vehicle_id="沪A20002"),
                await model.open_alerts(province="SH"),
                await model.vehicles_in("JS"),
            )
        finally:
            await model.close()

    speeder, nanjing, open_1, open_2, open_sh, in_js = asyncio.run(read_model())
    last = still_speeding[-1]
    assert speeder["ts"] == last.ts.isoformat()
    assert float(speeder["lon"]) == pytest.approx(last.lon) and float(speeder["speed_kmh"]) == 96
    assert speeder["province"] == "SH" and speeder["open_alerts"] == "1"
    assert nanjing["province"] == "JS" and nanjing["city_code"] == "320100"
    assert [a.alert_id for a in open_1] == [raised["alert_id"]]
    assert open_2 == []  # cleared alerts leave the open set
    assert [a.vehicle_id for a in open_sh] == ["沪A20001"]
    assert in_js == ["苏A20003"]

    m = scrape(env["YRD_METRICS_PORT"])
    assert m[("yrd_pings_consumed_total", ())] == len(valid) + 1
    assert m[("yrd_pings_accepted_total", ())] == len(valid)
    assert m[("yrd_pings_rejected_total", (("reason", "bad_json"),))] == 1
    sh_speeding = (("province", "SH"), ("severity", "warning"), ("type", "SPEEDING"))
    assert m[("yrd_alerts_total", (*sh_speeding[:2], ("state", "raised"), sh_speeding[2]))] == 2
    assert m[("yrd_alerts_total", (*sh_speeding[:2], ("state", "cleared"), sh_speeding[2]))] == 1
    assert m[("yrd_latency_from_event_seconds_count", ())] == len(valid)
    assert m[("yrd_latency_from_arrival_seconds_count", ())] == len(valid)
    # pings were stamped ~10 minutes ago: event-time latency is at least that
    assert m[("yrd_latency_from_event_seconds_sum", ())] / len(valid) > 500
    assert m[("yrd_vehicles_tracked", ())] == 3
    assert not any("vehicle" in dict(labels) for _, labels in m)  # no per-vehicle label
