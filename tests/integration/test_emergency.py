"""Emergency response end to end: a collision near the Shanghai/Jiangsu border raises a
critical alarm naming the nearest available responders of both provinces."""

from __future__ import annotations

from datetime import timedelta
from importlib.resources import files

import pytest

from yrd_hazmat.models import Ping
from tests.integration.harness import run_env
from tests.integration.traces import drive, of, start_time

pytestmark = pytest.mark.integration

ANTING = (121.17, 31.30)  # Jiading, Shanghai, a few km from Kunshan (Jiangsu)


@pytest.fixture(scope="module")
def env(services):
    return run_env(services, YRD_RESOURCES_FILE=str(files("yrd_hazmat.data") / "resources.json"))


def test_a_collision_near_the_border_proposes_responders_of_both_provinces(env, kafka, worker):
    trip = drive("沪A71001", start_time(), [40.0] * 4, at=ANTING)
    last = trip[-1]
    crash = Ping(**{f: getattr(last, f) for f in last.__struct_fields__}
                 | {"ts": last.ts + timedelta(seconds=5), "speed_kmh": 0.0,
                    "alarm_flags": 1 << 29})
    kafka.send_pings(env["YRD_TOPIC_PINGS"], trip + [crash])
    alerts = of(kafka.alerts_to_barrier(env, crash), "沪A71001")
    [alarm] = [a for a in alerts if a["type"] == "DEVICE_ALARM"]
    assert alarm["severity"] == "critical" and alarm["province"] == "SH"
    responders = alarm["details"]["responders"]
    assert len(responders) == 5
    assert [r["distance_km"] for r in responders] == sorted(r["distance_km"] for r in responders)
    assert {r["province"] for r in responders} >= {"SH", "JS"}
    assert alarm["details"]["responders_cross_border"] == sum(
        r["province"] != "SH" for r in responders) >= 1
    assert all(r["approximate"] for r in responders)  # the shipped set is illustrative
    assert alarm["details"]["hospital"]["kind"] == "hospital"
