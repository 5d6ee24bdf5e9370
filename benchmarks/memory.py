"""Memory per tracked vehicle, without Kafka: do 100,000 vehicles fit in one 2 GiB worker?

    python -m benchmarks.memory [--vehicles 100000] [--rounds 3] [--zones 1000]
                                [--permit-sample 1000] [--worker-baseline-mib M] [--traced]
                                [--json PATH]

(from the repository root). It builds, in this process, what a worker holds
for each vehicle after a few pings each, the way the worker builds it
(``agents/vehicles.py``, ``agents/processor.py``, ``yrd_hazmat/core/permits/store.py``),
and measures the growth of the resident size (``VmRSS``) step by step:

1. **compiled permits**: the worker keeps compiled permits (route in metres,
   border crossings) in a process-wide cache (``yrd_hazmat.core.permits.store``).
   Compiling one takes several ms, so a sample of ``--permit-sample`` is compiled
   and measured, and the cost is multiplied by the number the cache would hold:
   min(permits, cache size);
2. **permits table**: the stored value of every permit (5 in 6 trucks, as in
   the pipeline benchmark): ``PermitEntry`` bytes in a dict, as Faust's memory
   store holds them;
3. **vehicle states**: ``--rounds`` pings per truck (one per round, 10 s apart,
   on the pipeline benchmark's corridors, 10 % speeding, 1,000 zones), each
   round located with ``yrd_hazmat.core.enrich.observe`` in batches of 2,000 and run
   through ``yrd_hazmat.core.engine.advance`` per vehicle; the decoded
   ``VehicleState`` kept in a dict (``VehicleStates.live``) and its msgpack
   encoding in another (the vehicle-state table's memory store), as after a
   checkpoint.

Each step runs in two halves and only the second half counts (its growth per
item, times the items a worker holds), so one-time costs are left out;
``--traced`` adds tracemalloc's Python-heap figure as a cross-check.

The verdict adds a resident size before any vehicle: by default this process's
own baseline (Python, geography, zones, and the benchmark's fleet and permit
records, which a worker does not hold; no Faust, no Kafka clients);
``--worker-baseline-mib`` takes the figure the pipeline benchmark prints for the
real worker ("before its first batch").
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path

from yrd_hazmat.config import Settings
from yrd_hazmat.core.engine import Reference, advance
from yrd_hazmat.core.enrich import observe
from yrd_hazmat.core.geo.jurisdiction import default_index, province_shapes_metric
from yrd_hazmat.core.permits.model import CompiledPermit, parse_permit
from yrd_hazmat.core.permits.status import NO_PERMIT, PermitStatus
from yrd_hazmat.core.permits import store
from yrd_hazmat.core.permits.store import PermitCache, PermitEntry, dump_entry
from yrd_hazmat.rules_config import rules_config
from yrd_hazmat.core.state import dump_state
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.core.zones.model import parse_zone
from yrd_hazmat.core.zones.registry import ZoneRegistry

from benchmarks.pipeline import fleet as fleet_mod

LIMIT_MIB = 2048
BATCH = 2000
PERMIT_CACHE_SIZE = getattr(store, "COMPILED", PermitCache(default_index())).size
"""Compiled permits a worker keeps (the process-wide cache of yrd_hazmat.core.permits.store)."""


def rss_mib() -> float:
    """This process's resident size now, MiB (after a full collection)."""
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class Meter:
    """Growth per step of the resident size (what the machine pays: Python objects, GEOS
    geometries, allocator slack), and with ``--traced`` of tracemalloc's Python heap as a
    cross-check (exact for Python objects, blind to GEOS). Each step runs in two halves
    and only the second half counts (its growth per item, times the items a worker would
    hold), so one-time costs (caches, lazy imports, first use of an index) are left out."""

    def __init__(self) -> None:
        self.baseline_rss = rss_mib()
        self.rss: dict[str, float] = {}
        self.traced: dict[str, float] = {}
        self.estimate: dict[str, float] = {}

    @staticmethod
    def _now() -> tuple[float, float]:
        traced = (tracemalloc.get_traced_memory()[0] / 2**20 if tracemalloc.is_tracing()
                  else float("nan"))
        return rss_mib(), traced

    def marginal(self, name: str, items: list, fn, count: int) -> None:
        half = len(items) // 2
        fn(items[:half])
        rss0, traced0 = self._now()
        fn(items[half:])
        rss1, traced1 = self._now()
        per = len(items) - half
        self.rss[name] = (rss1 - rss0) / per * count
        self.traced[name] = (traced1 - traced0) / per * count
        self.estimate[name] = max(self.rss[name], self.traced[name]) if tracemalloc.is_tracing() \
            else self.rss[name]


def say(message: str) -> None:
    print(f"[memory {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.memory",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--vehicles", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=3, help="pings per vehicle (default 3)")
    p.add_argument("--zones", type=int, default=1_000)
    p.add_argument("--permit-sample", type=int, default=1_000,
                   help="permits compiled to measure one compiled permit (default 1,000)")
    p.add_argument("--worker-baseline-mib", type=float,
                   help="the worker's resident size before its first batch (from the pipeline "
                        "benchmark); default: this process's baseline")
    p.add_argument("--traced", action="store_true",
                   help="also measure the Python heap with tracemalloc (slower; its own "
                        "bookkeeping then inflates the RSS figures)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path)
    opts = p.parse_args(argv)

    started = time.perf_counter()
    say("loading geography and zones")
    places = default_index()
    provinces = province_shapes_metric()
    registry = ZoneRegistry(30.0)
    for feature in fleet_mod.zone_collection(opts.zones, opts.seed)["features"]:
        zone = parse_zone(feature)
        assert not hasattr(zone, "reason"), zone
        registry.put(zone)
    zones = registry.index
    rules = rules_config(Settings(_env_file=None, speeding_min_duration_s=5.0))
    trucks = fleet_mod.make_fleet(opts.vehicles, 0.1, opts.seed)
    t0 = datetime.now(CHINA_TZ).replace(microsecond=0) - timedelta(hours=1)
    start_ms = int(t0.timestamp() * 1000)
    records = fleet_mod.permit_records(trucks, start_ms, datetime.now(CHINA_TZ))
    if opts.traced:
        tracemalloc.start()
    meter = Meter()
    n = opts.vehicles

    sample = max(2, min(opts.permit_sample, len(records)))
    held = min(len(records), PERMIT_CACHE_SIZE)
    say(f"1. compiled permits: a sample of {sample:,}")
    compiled: dict[str, CompiledPermit] = {}

    def compile_permits(part: list) -> None:
        for key, value in part:
            parsed = parse_permit(value, places)
            assert isinstance(parsed, CompiledPermit), parsed
            compiled[key.decode()] = parsed

    compile_permits(records[sample:sample + 20])  # first use: caches, lazy imports
    meter.marginal("compiled permits", records[:sample], compile_permits, held)

    say(f"2. permits table: {len(records):,} stored permits")
    permits_table: dict[bytes, bytes] = {}

    def store_permits(part: list) -> None:
        permits_table.update((key, dump_entry(PermitEntry(value))) for key, value in part)

    meter.marginal("permits table", records, store_permits, len(records))
    stored_bytes = sum(len(v) for v in permits_table.values())

    # statuses for the rules: each permitted truck gets a compiled permit of its own route
    by_route: dict[str, CompiledPermit] = {}
    for truck in trucks:
        c = compiled.get(truck.vehicle_id)
        if c is not None:
            by_route.setdefault(truck.route.corridor.name + truck.route.origin, c)
    statuses = {t.vehicle_id: PermitStatus(permit=by_route.get(t.route.corridor.name
                                                               + t.route.origin))
                if t.permitted else NO_PERMIT for t in trucks}
    reference = Reference(zones=zones.by_id, permits=statuses, provinces=provinces)
    live: dict[bytes, object] = {}
    table: dict[bytes, bytes] = {}
    alerts = 0

    def drive(part: list) -> None:
        """``--rounds`` pings per truck of ``part``, as the worker's batches would."""
        nonlocal alerts
        for r in range(opts.rounds):
            elapsed = r * 10.0
            ts_ms = start_ms + int(elapsed * 1000)
            now = datetime.fromtimestamp(ts_ms / 1000 + 1, CHINA_TZ)
            for i in range(0, len(part), BATCH):
                chunk = part[i:i + BATCH]
                observations = observe([t.ping(ts_ms, elapsed) for t in chunk], places, zones)
                for truck, obs in zip(chunk, observations):
                    key = truck.vehicle_id.encode()
                    outcome = advance(live.get(key), truck.vehicle_id, [obs], rules, now,
                                      reference)
                    live[key] = outcome.state
                    alerts += len(outcome.alerts)

    def encode_states(part: list) -> None:
        for truck in part:
            key = truck.vehicle_id.encode()
            table[key] = dump_state(live[key])

    drive(trucks[:10])  # first use of the rules, the zone index and the projection
    live.clear()
    say(f"3. vehicle states: {n:,} trucks x {opts.rounds} pings")
    meter.marginal("vehicle states, decoded", trucks, drive, n)
    meter.marginal("vehicle states, encoded", trucks, encode_states, n)
    encoded_bytes = sum(len(v) for v in table.values())
    tracemalloc.stop()
    steps = meter.estimate
    baseline = meter.baseline_rss
    del records

    total = sum(steps.values())
    base = opts.worker_baseline_mib if opts.worker_baseline_mib is not None else baseline
    at_100k = base + total / n * 100_000
    result = {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, python "
                   f"{platform.python_version()}",
        "vehicles": n, "rounds": opts.rounds, "zones": opts.zones,
        "permits": len(permits_table), "permit_cache_size": PERMIT_CACHE_SIZE,
        "compiled_permits_held": held, "permit_sample": sample,
        "baseline_mib": baseline, "worker_baseline_mib": opts.worker_baseline_mib,
        "steps_mib": steps, "rss_mib": meter.rss, "traced_mib": meter.traced,
        "total_mib": total,
        "per_10k_mib": {k: v / n * 10_000 for k, v in steps.items()} | {
            "total": total / n * 10_000},
        "per_compiled_permit_kib": steps["compiled permits"] / held * 1024,
        "stored_permit_bytes_mean": stored_bytes / max(1, len(permits_table)),
        "encoded_state_bytes_mean": encoded_bytes / n,
        "alerts_raised": alerts,
        "estimate_100k_mib": at_100k,
        "fits_2gib": at_100k <= LIMIT_MIB,
        "seconds": time.perf_counter() - started,
    }
    print(report(result))
    if opts.json:
        opts.json.write_text(json.dumps(result, indent=2, default=str).replace("NaN", "null")
                             + "\n")
    return 0


def report(r: dict) -> str:
    n = r["vehicles"]
    base = r["worker_baseline_mib"] if r["worker_baseline_mib"] is not None else r["baseline_mib"]
    rows = [
        f"memory per tracked vehicle, {r['date']} ({r['machine']}); no Kafka, no Faust",
        (f"{n:,} vehicles x {r['rounds']} pings, {r['zones']:,} zones, {r['permits']:,} permits "
         f"(the worker's cache holds at most {r['permit_cache_size']:,} compiled)"),
        f"baseline of this process (Python, geography, zones, the fleet and permit records): "
        f"{r['baseline_mib']:,.0f} MiB",
        "",
        f"{'what':<30}{'RSS MiB':>9}{'traced MiB':>11}{'counted MiB':>12}{'per 10,000':>12}",
    ]
    for k, v in r["steps_mib"].items():
        traced = r["traced_mib"][k]
        rows.append(f"{k:<30}{r['rss_mib'][k]:>9,.0f}"
                    f"{'-' if traced != traced else f'{traced:,.0f}':>11}{v:>12,.0f}"
                    f"{r['per_10k_mib'][k]:>12,.1f}")
    rows.append(f"{'total':<30}{'':>9}{'':>11}{r['total_mib']:>12,.0f}"
                f"{r['per_10k_mib']['total']:>12,.1f}")
    rows.append("RSS: growth of the resident size; traced: growth of the Python heap "
                "(tracemalloc, with --traced); both from the second half of each step, per item, "
                "times the items held; counted: RSS (the larger with --traced)")
    rows += [
        "",
        (f"one compiled permit {r['per_compiled_permit_kib']:,.1f} KiB (measured on "
         f"{r['permit_sample']:,}, counted {r['compiled_permits_held']:,} times); a stored "
         f"permit {r['stored_permit_bytes_mean']:,.0f} B; an encoded state "
         f"{r['encoded_state_bytes_mean']:,.0f} B"),
        (f"100,000 vehicles: {r['estimate_100k_mib']:,.0f} MiB = baseline "
         f"{base:,.0f}"
         f" MiB + {r['per_10k_mib']['total'] * 10:,.0f} MiB; limit {LIMIT_MIB:,} MiB: "
         + ("fits" if r["fits_2gib"] else "does NOT fit")),
        ("not counted: fetch buffers, the read-model outbox (bounded)"
         + (" (the worker's baseline holds Faust and its clients)"
            if r["worker_baseline_mib"] is not None else
            ", Faust, aiokafka and redis-py (pass the worker's own baseline from the pipeline "
            "benchmark: --worker-baseline-mib)")),
    ]
    if r["permits"] > r["permit_cache_size"]:
        rows.append(f"NOTE: {r['permits']:,} permits > the cache's {r['permit_cache_size']:,}: "
                    "a worker holding all of them recompiles permits as trucks come round "
                    "(several ms each), a throughput problem rather than a memory one")
    rows.append(f"took {r['seconds']:.0f} s")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
