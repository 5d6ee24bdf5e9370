"""The golden run: the worker's batch path over :mod:`tests.golden.scenario`, without a
broker, and everything it produced, written canonically.

What is recorded is what a consumer of the worker can observe: every record sent, per
topic and key in order (the order Kafka keeps; records of different keys may interleave
differently without anyone noticing), every read-model update per vehicle in order, and
every vehicle's final state. Two runs of the same path give the same bytes; a change that
keeps the worker's behaviour keeps them too.

``python -m tests.golden.run --write`` records the expected output anew: only for a change
of behaviour that is meant, said in its commit.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from unittest import mock

import msgspec
from faust.types import TP

from yrd_hazmat.core.emergency.responders import ResourceIndex, load_resources
from yrd_hazmat.core.geo.jurisdiction import default_index
from yrd_hazmat.core.permits.store import entry_for
from yrd_hazmat.core.state import dump_state
from yrd_hazmat.core.timeutil import CHINA_TZ, from_ms
from yrd_hazmat.core.zones.model import parse_zone_record
from yrd_hazmat.core.zones.registry import ZoneRegistry
from tests.golden.scenario import Scenario, build

EXPECTED = Path(__file__).with_name("expected.jsonl.gz")
RESOURCES = Path(__file__).resolve().parents[2] / "yrd_hazmat" / "data" / "resources.json"


class _Table:
    """A Faust table's store, as the worker's path reads and writes it."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}


class _Outputs:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []

    async def send(self, topic, key, value, partition=None) -> None:
        self.sent.append((topic, key, value))


class _ReadModel:
    """Takes the updates; places no truck near an emergency (nothing is written)."""

    healthy = True

    def __init__(self) -> None:
        self.updates: list = []

    def submit(self, updates, alerts, now) -> None:
        self.updates.extend(updates)

    async def nearby(self, places):
        return [[] for _ in places]


class _Clock(datetime):
    """``datetime`` whose ``now`` is the scenario's processing clock."""

    at_ms = 0

    @classmethod
    def now(cls, tz=None):
        return from_ms(cls.at_ms).astimezone(tz or CHINA_TZ)


async def _drive(scenario: Scenario) -> dict:
    from agents.processor import PingProcessor
    from agents.vehicles import VehicleStates

    s = scenario.settings
    places = default_index()
    zones = ZoneRegistry(s.zone_margin_m)
    for key, value in scenario.zones:
        zones.put(parse_zone_record(key, value, s.max_zone_bytes))
    permits = _Table()
    for key, value in scenario.permits:
        permits.data[key] = entry_for(key, value, places, s.max_permit_bytes)
    states = VehicleStates(_Table())
    outputs, readmodel = _Outputs(), _ReadModel()
    processor = PingProcessor(
        s, states=states, outputs=outputs, permits=permits, places=places, zones=zones,
        readmodel=readmodel)
    processor.__dict__["resources"] = _resources()
    with mock.patch("agents.processor.datetime", _Clock):
        for batch, now_ms in zip(scenario.batches, scenario.now_ms):
            _Clock.at_ms = now_ms
            await processor.handle(TP(batch[0].topic, batch[0].partition), batch)
    return {"sent": outputs.sent, "updates": readmodel.updates,
            "states": {k: dump_state(v) for k, v in states.live.items()}}


def _resources() -> ResourceIndex:
    return ResourceIndex(load_resources(str(RESOURCES)))


def canonical(produced: dict) -> list[str]:
    """The run's output as sorted JSON lines: records per (topic, key) with their sequence
    number; per vehicle, its read-model updates (how many, and a digest of them in order)
    and its final state (a digest)."""
    lines: list[str] = []
    seq: dict[tuple, int] = defaultdict(int)
    for topic, key, value in produced["sent"]:
        k = key.decode("utf-8", "replace") if key is not None else None
        n = seq[(topic, k)]
        seq[(topic, k)] += 1
        body = json.loads(value) if value is not None else None
        lines.append(json.dumps({"topic": topic, "key": k, "n": n, "value": body},
                                ensure_ascii=False, sort_keys=True))
    by_vehicle: dict[str, list] = defaultdict(list)
    for update in produced["updates"]:
        written = msgspec.to_builtins(update)
        written.pop("open_alerts", None)  # (never written: Redis counts the open alerts)
        by_vehicle[update.vehicle_id].append(written)
    for vehicle, updates in by_vehicle.items():
        digest = hashlib.sha256(json.dumps(updates, sort_keys=True).encode()).hexdigest()
        lines.append(json.dumps({"topic": "(read model)", "key": vehicle, "n": 0,
                                 "value": {"updates": len(updates), "sha256": digest}},
                                ensure_ascii=False, sort_keys=True))
    for key, state in produced["states"].items():
        lines.append(json.dumps({"topic": "(state)", "key": key.decode(), "n": 0,
                                 "value": hashlib.sha256(state).hexdigest()},
                                ensure_ascii=False, sort_keys=True))
    return sorted(lines, key=lambda line: _order(json.loads(line)))


def _order(line: dict) -> tuple:
    return line["topic"], line["key"] or "", line["n"]


def golden_lines() -> list[str]:
    return canonical(asyncio.run(_drive(build())))


def expected_lines() -> list[str]:
    with gzip.open(EXPECTED, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def main() -> None:
    lines = golden_lines()
    if "--write" in sys.argv:
        with gzip.GzipFile(EXPECTED, "wb", mtime=0) as f:
            f.write(("\n".join(lines) + "\n").encode("utf-8"))
    counts: dict[str, int] = defaultdict(int)
    for line in lines:
        counts[json.loads(line)["topic"]] += 1
    print(dict(counts))


if __name__ == "__main__":
    main()
