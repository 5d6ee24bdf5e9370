"""End-to-end throughput, latency, memory and two-worker scaling of the YRD Hazmat worker.

    python -m benchmarks.pipeline [--quick] [--pings N] [--vehicles V] [--zones Z]
                                  [--rate R,...] [--duration S] [--skip PHASES] [--json PATH]

(from the repository root; ``make bench`` runs it in the project's venv). One
run starts Kafka and Redis (or uses running ones, see ``services.py``),
creates topics unique to the run, publishes Z zones and the permits of 5 in 6
of V trucks, lets a worker of each consumer group load them (warm-up), then
produces N pings of the V trucks (lz4) as fast as possible, and measures on
that one backlog:

C   the real worker draining it (and its resident size); it then stays up, idle;
A   a raw aiokafka consumer;  B0  stock Faust's no-op agent;
B1  a no-op agent of the worker's design;
E   two workers of a second group draining the same backlog, partitions
    moving between them, their alerts compared with C's by alert id;
D   with C's worker caught up, the latency from ping produced to alert
    received at each ``--rate`` (last: its pings follow the backlog).

See docs/benchmarks.md for the method and the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.core.zones.model import parse_collection

from . import fleet as fleet_mod
from .kafka import produce_all
from .latency import latency_phase, resolve_rates
from .phases import (
    drain_summary, noop_agent, raw_aiokafka, warm_up, worker_drain,
)
from .report import machine_info, report
from .scaling import compare_runs, two_workers
from .services import (
    REPO, BenchmarkError, MachineCPU, Worker, create_topics, load_services, local_services,
    new_run, raise_on_sigterm, say, set_child_cpus, worker_settings,
)

PHASES = ("A", "B0", "B1", "C", "D", "E")
FULL = {"pings": 300_000, "vehicles": 10_000, "zones": 1_000,
        "rate": "1000,2500,5000,0.5x,0.8x", "duration": 20.0}
QUICK = {"pings": 100_000, "vehicles": 2_000, "zones": 200,
         "rate": "1000,5000,0.5x,0.8x", "duration": 10.0}


def rates_arg(text: str) -> list[str]:
    """``--rate``: comma-separated pings/s (``5000``) or multiples of the drain rate (``0.5x``)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    for item in items:
        try:
            value = float(item.removesuffix("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a rate: {item!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"rates must be positive: {item!r}")
    if not items:
        raise argparse.ArgumentTypeError("no rate given")
    return items


def cpus_arg(text: str) -> set[int]:
    """``--worker-cpus``: CPU numbers, comma-separated; some must stay for the rest."""
    try:
        cpus = {int(item) for item in text.split(",") if item.strip()}
    except ValueError:
        raise argparse.ArgumentTypeError(f"not CPU numbers: {text!r}") from None
    available = os.sched_getaffinity(0)
    if not cpus or not cpus < available:
        raise argparse.ArgumentTypeError(
            f"--worker-cpus must be some, not all, of the CPUs available {sorted(available)}")
    return cpus


def phases_arg(text: str) -> set[str]:
    items = {item.strip().upper() for item in text.split(",") if item.strip()}
    unknown = items - set(PHASES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown phases {sorted(unknown)}; known: {PHASES}")
    return items


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line. The defaults are the issue's target; ``--quick`` scales down."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.pipeline",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="a quick check of the harness: "
                        + ", ".join(f"--{k} {v}" for k, v in QUICK.items()))
    p.add_argument("--pings", type=int, help=f"backlog size N (default {FULL['pings']:,})")
    p.add_argument("--vehicles", type=int, help=f"trucks V (default {FULL['vehicles']:,})")
    p.add_argument("--zones", type=int, help=f"restricted zones Z (default {FULL['zones']:,})")
    p.add_argument("--rate", type=rates_arg,
                   help="latency phases: comma-separated pings/s (e.g. 5000) or multiples of the"
                        f" worker's measured drain rate (e.g. 0.8x); default {FULL['rate']}")
    p.add_argument("--duration", type=float,
                   help=f"seconds of each latency phase (default {FULL['duration']:g})")
    p.add_argument("--skip", type=phases_arg, default=set(),
                   help="phases to leave out, e.g. B0,E (D needs C; E is compared with C)")
    p.add_argument("--join-at", type=float, default=0.15,
                   help="E: share of the backlog the first worker processes before the second "
                        "starts (default %(default)s)")
    p.add_argument("--speeders", type=float, default=0.1,
                   help="share of trucks that speed (default %(default)s)")
    p.add_argument("--speeding-min-s", type=float, default=5.0,
                   help="worker's YRD_SPEEDING_MIN_DURATION_S (default %(default)s)")
    p.add_argument("--signal-lost-s", type=float, default=3600.0,
                   help="worker's YRD_SIGNAL_LOST_S (default %(default)s: longer than a run, so "
                        "the backlog's trucks, silent after it, do not all time out during D)")
    p.add_argument("--partitions", type=int, default=4, help="pings topic partitions")
    p.add_argument("--state-dir", type=Path, default=REPO / ".local" / "bench",
                   help="services' state and run logs (default .local/bench)")
    p.add_argument("--kafka-port", type=int, default=39092)
    p.add_argument("--redis-port", type=int, default=36379)
    p.add_argument("--timeout", type=float, default=300.0,
                   help="limit in seconds for each wait (default %(default)s)")
    p.add_argument("--raw-repeats", type=int, default=3,
                   help="read the backlog this many times with raw aiokafka, keep the median")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    p.add_argument("--worker-cpus", type=cpus_arg,
                   help="run the measured consuming processes (workers, no-op agents) on these "
                        "CPUs, e.g. 1, and this benchmark (and services it starts) on the others: "
                        "a core of its own for the worker, as a deployment gives it; services "
                        "already running (KAFKA_BOOTSTRAP/REDIS_URL) are not moved")
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, rates_arg(value) if key == "rate" else value)
    if min(args.pings, args.vehicles, args.duration, args.raw_repeats) <= 0 or args.zones < 0:
        p.error("--pings, --vehicles, --duration and --raw-repeats must be positive")
    if args.pings < 3 * args.vehicles:
        p.error("--pings must be at least 3 x --vehicles (the first round is not counted)")
    if args.vehicles > 500_000:
        p.error("--vehicles is at most 500,000")
    if not 0 < args.join_at < 1:
        p.error("--join-at is a share between 0 and 1")
    if "C" in args.skip:
        args.skip.add("D")  # E still runs, without the comparison with C
    return args


def run_benchmark(opts: argparse.Namespace, svc: ModuleType) -> dict[str, Any]:
    """Every phase, in order, on one set of services; returns the results."""
    results: dict[str, Any] = {"options": {k: sorted(v) if isinstance(v, set) else
                                           str(v) if isinstance(v, Path) else v
                                           for k, v in vars(opts).items()}}
    results["machine"] = machine_info(svc)
    if opts.worker_cpus:
        rest = os.sched_getaffinity(0) - opts.worker_cpus
        os.sched_setaffinity(0, rest)  # this process, and what it starts from now on
        set_child_cpus(opts.worker_cpus)
        results["machine"]["pinning"] = (
            f"workers and no-op agents on CPU {sorted(opts.worker_cpus)}, this benchmark "
            f"(raw aiokafka reads, producers, alert consumer) on CPU {sorted(rest)}"
            + ("" if not (os.environ.get("KAFKA_BOOTSTRAP") and os.environ.get("REDIS_URL"))
               else "; the running Kafka and Redis not moved"))
    want = [p for p in PHASES if p not in opts.skip]
    with local_services(opts, svc) as addresses:
        run = new_run(opts, addresses)
        run_e = run.group("e")
        results["run"] = {"id": run.id, "logs": str(run.dir), "app_id": run.app_id,
                          "app_id_two_workers": run_e.app_id}
        try:
            say(f"run {run.id}: phases {', '.join(want)}; logs in {run.dir}")
            create_topics(run)
            if "E" in want:
                create_topics(run_e)
            results["worker_settings"] = worker_settings(run)

            say(f"generating {opts.vehicles:,} trucks, {opts.pings:,} pings, "
                f"{opts.zones:,} zones, permits")
            trucks = fleet_mod.make_fleet(opts.vehicles, opts.speeders, opts.seed)
            backlog = fleet_mod.backlog_records(trucks, opts.pings, time.time())
            zones = fleet_mod.zone_collection(opts.zones, opts.seed)
            (run.dir / "zones.geojson").write_text(json.dumps(zones, ensure_ascii=False))
            _, rejected = parse_collection(run.dir / "zones.geojson")
            if rejected:
                raise BenchmarkError(f"generated zones rejected: {rejected[:3]}")
            permits = fleet_mod.permit_records(trucks, backlog.start_ms, datetime.now(CHINA_TZ))
            produce_all(run.bootstrap, run.zones_topic, fleet_mod.zone_records(zones),
                        opts.timeout)
            produce_all(run.bootstrap, run.permits_topic, permits, opts.timeout)

            groups = ([("warmup", run)] if "C" in want else []) + (
                [("warmup-e", run_e)] if "E" in want else [])
            if groups:
                say(f"warm-up: {len(permits):,} permits and {opts.zones:,} zones into "
                    f"{len(groups)} group(s), before any ping exists")
                started = time.perf_counter()
                with ThreadPoolExecutor(len(groups)) as pool:
                    for f in [pool.submit(warm_up, r, name, len(permits), opts.zones,
                                          opts.timeout) for name, r in groups]:
                        f.result()
                results["warm_up_s"] = time.perf_counter() - started

            partition_of: dict[bytes, int] = {}
            produced = produce_all(run.bootstrap, run.pings_topic, backlog.records, opts.timeout,
                                   partition_of)
            results["backlog"] = {
                "permits": len(permits), "zones": opts.zones,
                "bytes_per_ping": produced["bytes"] / produced["records"],
                "produce_s": produced["seconds"], "produce_rate": produced["rate"],
                "start_ms": backlog.start_ms, "end_ms": backlog.end_ms,
                "event_span_s": (backlog.end_ms - backlog.start_ms) / 1000,
                "interval_s": fleet_mod.BACKLOG_INTERVAL_S,
                "trucks_per_partition": dict(sorted(Counter(partition_of.values()).items())),
            }
            say(f"produced the backlog in {produced['seconds']:.1f} s")
            del backlog.records[:]
            results.update(measure(opts, run, run_e, want, trucks, results))
            results["load_avg_at_end"] = [round(v, 2) for v in os.getloadavg()]
        finally:
            for data_dir in run.dir.glob("*-data"):
                shutil.rmtree(data_dir, ignore_errors=True)
    return results


def measure(opts: argparse.Namespace, run, run_e, want: list[str], trucks,
            results: dict[str, Any]) -> dict[str, Any]:
    """The phases on the backlog now in the pings topic.

    C first: its worker starts right after its warm-up worker stopped, and stays up,
    idle, through A, B0, B1 and E, until D has used it. E before D, whose pings follow
    the backlog in the same topic.
    """
    n, skip, settings = opts.pings, opts.vehicles, results["worker_settings"]
    busy: dict[str, MachineCPU] = {p: MachineCPU() for p in PHASES}
    throughput: dict[str, Any] = {}
    out: dict[str, Any] = {"throughput": throughput}
    with contextlib.ExitStack() as stack:
        worker = None
        if "C" in want:
            worker = stack.enter_context(Worker("worker", run.worker_env(), run.dir))
            say(f"C: real worker (pid {worker.pid}) draining the backlog")
            with busy["C"]:
                drain = drain_summary(worker_drain(worker, n, skip, opts.timeout))
            throughput["C"] = drain["throughput"]
            out["drain"] = drain
        if "A" in want:
            say(f"A: raw aiokafka consumer, {opts.raw_repeats} reads")
            with busy["A"]:
                throughput["A"] = raw_aiokafka(run, opts.partitions, n, skip,
                                               settings["batch_max"], opts.raw_repeats,
                                               opts.timeout).as_dict()
        for phase, script in (("B0", "noop_faust.py"), ("B1", "noop_batch.py")):
            if phase in want:
                say(f"{phase}: no-op agent {script}")
                with busy[phase]:
                    throughput[phase] = noop_agent(run, script, f"noop-{phase.lower()}",
                                                   opts.partitions, n, skip, settings,
                                                   opts.timeout).as_dict()
        if "E" in want:
            say("E: two workers of one group")
            with busy["E"]:
                out["two_workers"] = two_workers(
                    run_e, opts.partitions, n, opts.join_at,
                    results["backlog"]["trucks_per_partition"], opts.timeout)
        if "D" in want and worker is not None:
            out["latency"] = []
            given = n
            for label, rate in resolve_rates(opts.rate, throughput["C"]["rate"]):
                say(f"D: latency at {rate:,.0f} pings/s ({label}) for {opts.duration:g} s")
                with busy["D"], MachineCPU() as cpu:
                    lat = latency_phase(worker, run.bootstrap, run.pings_topic,
                                        run.alerts_topic, opts.partitions, trucks,
                                        results["backlog"]["start_ms"], rate,
                                        opts.duration, given, opts.timeout)
                lat |= {"label": label} | cpu.as_dict()
                out["latency"].append(lat)
                given += lat["pings"]
    if "E" in want and "C" in want:
        say("E: comparing the two workers' alerts with the one worker's (C)")
        out["two_workers"]["comparison"] = compare_runs(
            run_e, run, opts.partitions, results["backlog"]["end_ms"])
    out["machine_cpu"] = {p: busy[p].as_dict() for p in PHASES if p in want}
    return out


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    raise_on_sigterm()
    svc = load_services()
    try:
        results = run_benchmark(opts, svc)
    except (BenchmarkError, svc.ServiceError) as exc:
        say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted; child processes and services were stopped")
        return 130
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2, ensure_ascii=False,
                                        default=_json_default) + "\n")
        say(f"results written to {opts.json}")
    print(report(results))
    return 0


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
