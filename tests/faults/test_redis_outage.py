"""Redis outage or hang (issue #8): the stream goes on, and the read model catches up.

The worker writes its read model to a redis-server of the test's own. While a
fleet replay flows (pings produced at a steady rate, alerts raised), Redis
goes away: *down* (SHUTDOWN SAVE for 30 s, then started again on its dump,
like a restarted Redis with persistence) or *hung* (SIGSTOP for 20 s, then
SIGCONT). Every vehicle's last ping, and many alerts, fall in the outage.
During it, the worker must go on processing (every ping committed before
Redis is back). Once Redis is back, with no further ping sent, the read model
must within a few seconds show every vehicle's latest position (its last
ping's time, and the vehicle listed under the province it reports), every
incident open on the alerts topic (per vehicle and per province, and no
other), and every alert in the recent list.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from collections import defaultdict

import pytest

from tests.faults.replay import (
    SIGNAL_LOST_NEVER_S, SteadyProducer, fleet_replay, ping_records, summary,
)
from tests.faults.support import lag, read_all, read_model_view
from tests.harness import OwnRedis, wait_for
from tests.integration.harness import WorkerProcess, run_env
from yrd_hazmat.core.alerts import MOMENTARY
from yrd_hazmat.core.models import Ping

pytestmark = pytest.mark.integration

OUTAGE_AT_S = 5.0  # after the producer started
PRODUCE_S = 18.0  # ends inside the outage: every vehicle's last ping falls in it
CATCH_UP_S = 10.0  # after Redis is back
OUTAGES = {"down": 30.0, "hung": 20.0}


def committed_all(bootstrap: str, env: dict[str, str]) -> bool:
    try:
        return not any(lag(bootstrap, env["YRD_APP_ID"], env["YRD_TOPIC_PINGS"]).values())
    except Exception:  # noqa: BLE001
        return False


def open_incidents(alerts: list[dict]) -> dict[str, dict]:
    """incident id -> raised alert, for incidents not cleared (in topic order)."""
    open_: dict[str, dict] = {}
    for a in alerts:
        if a["type"] in MOMENTARY:
            continue
        if a["state"] == "raised":
            open_[a["incident_id"]] = a
        else:
            open_.pop(a["incident_id"], None)
    return open_


def check(view: dict, last: dict[str, Ping], alerts: list[dict]) -> list[str]:
    """Problems of the read model against the last pings and the alerts topic."""
    problems = []
    stale = {v: (view["vehicle"][v].get("ts"), p.ts.isoformat()) for v, p in last.items()
             if view["vehicle"][v].get("ts") != p.ts.isoformat()}
    if stale:
        sample = "\n  ".join(f"{v}: read model {got}, last ping {want}"
                             for v, (got, want) in sorted(stale.items())[:8])
        problems.append(f"{len(stale)} of {len(last)} vehicles are not at their last ping:\n  {sample}")
    unlisted = [v for v in last if view["vehicle"][v] and not view["listed"][v]]
    if unlisted:
        problems.append(f"{len(unlisted)} vehicles missing from their province's set: {unlisted[:8]}")
    want_open = open_incidents(alerts)
    by_vehicle: dict[str, set[str]] = defaultdict(set)
    for incident, a in want_open.items():
        by_vehicle[a["vehicle_id"]].add(incident)
    wrong = {v: (view["open"][v], by_vehicle.get(v, set())) for v in last
             if view["open"][v] != by_vehicle.get(v, set())}
    if wrong:
        missing = sum(len(w - g) for g, w in wrong.values())
        extra = sum(len(g - w) for g, w in wrong.values())
        problems.append(f"open incidents per vehicle differ from the alerts topic for {len(wrong)} "
                        f"vehicles: {missing} open incidents missing, {extra} shown open but "
                        f"cleared (of {len(want_open)} open)")
    if view["by_province"] != set(want_open):
        problems.append(f"open incidents per province: {len(set(want_open) - view['by_province'])} "
                        f"missing, {len(view['by_province'] - set(want_open))} not open")
    ids = {a["alert_id"] for a in alerts}
    if not ids <= view["recent"]:
        problems.append(f"{len(ids - view['recent'])} of {len(ids)} alerts are not in the recent "
                        "list")
    return problems


OUTAGE_MARGIN = 100
"""Pings produced after these many more than before the outage surely reach the worker
after the outage began."""


def exposure_unknown_in_outage(alerts: list[dict], in_outage: list) -> list[str]:
    """Problems unless each collision raised during the outage says its exposed trucks are
    unknown (the read model is down or hung; the alert is not held back for it)."""
    crashed = {(p.vehicle_id, p.ts) for p in in_outage if p.alarm_flags & (1 << 29)}
    during = [a for a in alerts if a["state"] == "raised" and a["details"].get("emergency")
              and (a["vehicle_id"], datetime.fromisoformat(a["ts"])) in crashed]
    if not during:
        return ["no collision was raised during the outage: its exposure went unchecked"]
    return [f"collision of {a['vehicle_id']} during the outage: exposure {a['details']['exposure']}"
            for a in during if a["details"]["exposure"].get("trucks") is not None
            or not a["details"]["exposure"].get("trucks_unknown")]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("outage", list(OUTAGES))
def test_read_model_catches_up_after_redis_outage(outage, services, workers, tmp_path):
    bootstrap = services["KAFKA_BOOTSTRAP"]
    redis = OwnRedis(tmp_path / "redis")
    redis.start()
    try:
        env = run_env({"KAFKA_BOOTSTRAP": bootstrap, "REDIS_URL": redis.url},
                      YRD_SIGNAL_LOST_S=SIGNAL_LOST_NEVER_S)
        pings = fleet_replay(50, 24, seed=31, collisions=8, collision_stays_on=4)
        last = {p.vehicle_id: p for p in pings}
        worker = WorkerProcess(env, tmp_path / "worker.log")
        workers.append(worker)
        worker.start()
        producer = SteadyProducer(bootstrap, ping_records(env["YRD_TOPIC_PINGS"], pings), PRODUCE_S)
        producer.start()
        time.sleep(OUTAGE_AT_S)
        went = time.monotonic()
        sent_before = producer.sent
        if outage == "down":
            redis.stop()
        else:
            redis.pause()
        producer.finish()
        length = OUTAGES[outage]
        went_on = wait_for(lambda: committed_all(bootstrap, env),
                           max(0.0, length - 1.0 - (time.monotonic() - went)))
        left = {} if went_on else lag(bootstrap, env["YRD_APP_ID"], env["YRD_TOPIC_PINGS"])
        time.sleep(max(0.0, length - (time.monotonic() - went)))
        if outage == "down":
            redis.start()
        else:
            redis.resume()
        back = time.monotonic()

        alerts = [v for _, v in read_all(bootstrap, env["YRD_TOPIC_ALERTS"])]
        prefix = env["YRD_REDIS_PREFIX"]
        view: dict = {}
        problems: list[str] = ["unchecked"]
        while problems and time.monotonic() - back < CATCH_UP_S:
            time.sleep(0.5)
            try:
                view = asyncio.run(read_model_view(redis.url, prefix, list(last)))
            except Exception as exc:  # noqa: BLE001  (Redis still loading its dump)
                problems = [f"read model unreadable: {exc!r}"]
                continue
            problems = check(view, last, alerts)
        caught_up = time.monotonic() - back
        print(f"{outage}: {sent_before}/{len(pings)} pings before the outage, the rest during it; "
              f"{len(alerts)} alerts ({summary(alerts)}); "
              + ("caught up" if not problems else "not caught up") + f" after {caught_up:.1f} s")

        problems += exposure_unknown_in_outage(alerts, pings[sent_before + OUTAGE_MARGIN:])
        if not went_on:
            problems.insert(0, f"the stream did not go on while Redis was {outage}: pings not "
                               f"committed per partition just before Redis came back: {left}")
        if not worker.alive:
            problems.insert(0, f"the worker died:\n{worker.log_tail(20)}")
        assert not problems, (
            f"Redis {outage} {length:.0f} s; {CATCH_UP_S:.0f} s after it was back, with no "
            "further ping:\n" + "\n".join(problems) + f"\nlog: {worker.log_path}")
    finally:
        redis.destroy()
