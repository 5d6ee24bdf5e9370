"""The machine a run was measured on, and the human-readable report of one run."""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import subprocess
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from .kafka import confluent
from .latency import kept_up, verdicts
from .services import METRICS_POLL_S, REPO

DRAIN_TARGET = 10_000
DRAIN_STRETCH = 25_000
"""The issue's throughput target and stretch, pings/s drained by one worker."""


def ms_pair(held: dict[str, Any], name: str) -> str:
    """``p99 / max ms`` of a per-batch delivery histogram of the latency phase."""
    nan = float("nan")
    return (f"{held.get(f'{name}_p99_s', nan) * 1000:,.0f} / "
            f"{held.get(f'{name}_max_s', nan) * 1000:,.0f} ms")


def machine_info(svc: ModuleType) -> dict[str, Any]:
    """CPU, cores, memory, load, software versions, code revision and the date of the run."""
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    meminfo = Path("/proc/meminfo").read_text()
    mem_kb = int(next(line.split()[1] for line in meminfo.splitlines()
                      if line.startswith("MemTotal")))

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "-"

    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "load_avg_at_start": [round(v, 2) for v in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
        "kafka": svc.kafka_version(),
        "faust-streaming": version("faust-streaming"),
        "aiokafka": version("aiokafka"),
        "redis-py": version("redis"),
        "hiredis": version("hiredis"),
        "confluent-kafka": f"{version('confluent-kafka')} "
                           f"(librdkafka {confluent().libversion()[0]})",
        "redis-server": command_output(["redis-server", "--version"], "v="),
        "git": command_output(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
    }


def command_output(argv: list[str], field_prefix: str | None = None) -> str:
    """A command's output (or one ``prefix=value`` word of it); ``-`` if it cannot run."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10,
                             check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "-"
    if field_prefix:
        return next((w[len(field_prefix):] for w in out.split() if w.startswith(field_prefix)), out)
    return out or "-"


# --------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:,.0f} ms"


def pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.0%}"


def ratio(x: dict[str, Any] | None, y: dict[str, Any] | None) -> float:
    """x's rate over y's (NaN when either is missing)."""
    if not x or not y or not y["rate"] or math.isnan(y["rate"]):
        return float("nan")
    return x["rate"] / y["rate"]


def pair(stats: dict[str, float]) -> str:
    """``p50 / p99`` in milliseconds."""
    if math.isnan(stats["p50"]):
        return "-"
    return f"{stats['p50'] * 1000:,.0f} / {stats['p99'] * 1000:,.0f}"


def alert_mix(counts: dict[str, int]) -> str:
    """``TYPE state: n, ...`` (or ``none``)."""
    return ", ".join(f"{kind}: {n:,}" for kind, n in counts.items()) or "none"


def header_rows(results: dict[str, Any]) -> list[str]:
    m, o, b = results["machine"], results["options"], results["backlog"]
    load_end = results.get("load_avg_at_end", ["-"])
    return [
        f"YRD Hazmat pipeline benchmark, {m['date']} (git {m['git']})",
        (f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM; load average "
         f"(1/5/15 min) {' / '.join(map(str, m['load_avg_at_start']))} at start, "
         f"{' / '.join(map(str, load_end))} at end; {m['os']}"
         + (f"; pinning: {m['pinning']}" if m.get("pinning") else "")),
        (f"python {m['python']}, Kafka {m['kafka']}, faust-streaming {m['faust-streaming']}, "
         f"aiokafka {m['aiokafka']}, redis-py {m['redis-py']} (hiredis {m['hiredis']}), "
         f"redis-server {m['redis-server']}, confluent-kafka {m['confluent-kafka']}"),
        (f"backlog: {o['pings']:,} pings of {o['vehicles']:,} trucks ({b['permits']:,} with a "
         f"permit), {b['zones']:,} zones, {o['partitions']} partitions, "
         f"{b['bytes_per_ping']:.0f} B/ping before lz4; produced in {b['produce_s']:.1f} s "
         f"({b['produce_rate']:,.0f} pings/s, confluent-kafka, lz4); "
         f"event time {b['event_span_s']:.0f} s, a ping per truck every "
         f"{b['interval_s']:g} s"),
        (f"worker settings: YRD_BATCH_MAX {results['worker_settings']['batch_max']}, "
         f"YRD_CHECKPOINT_S {results['worker_settings'].get('checkpoint_s', '-')}, "
         f"YRD_SPEEDING_MIN_DURATION_S {o['speeding_min_s']:g}, YRD_SIGNAL_LOST_S "
         f"{o['signal_lost_s']:g}, YRD_PERMIT_REQUIRED_PATTERN .*; warm-up (permits and zones "
         f"loaded before the pings exist) {results.get('warm_up_s', float('nan')):.0f} s"),
        f"logs: {results['run']['logs']}",
    ]


def throughput_rows(results: dict[str, Any]) -> list[str]:
    """The throughput table: A, B0, B1, C and their ratios."""
    t, busy, o = results["throughput"], results["machine_cpu"], results["options"]
    settings = results["worker_settings"]
    rows = [
        (f"throughput, same backlog, cold start excluded: the clock stops at the last record "
         f"and starts for A, B0, B1 once they have read {o['vehicles']:,} records (a ping per "
         f"truck's worth), for C once the worker holds all {o['vehicles']:,} trucks; what was "
         f"read before is not counted"),
        f"{'':<62}{'pings/s':>9}{'seconds':>9}{'CPU':>6}{'batch':>7}{'load':>6}{'busy':>6}",
    ]
    labels = {
        "A": "A   raw aiokafka consumer (getmany; median of reads)",
        "B0": f"B0  stock Faust no-op (kafka://, take_events {settings['batch_max']}/0.1 s)",
        "B1": "B1  no-op, worker's design (yrdkafka://, batch events)",
        "C": "C   real worker (yrd-hazmat worker), all rules",
    }
    for key, label in labels.items():
        x = t.get(key)
        if x is None:
            rows.append(f"{label:<62}{'skipped':>9}")
            continue
        b = busy.get(key, {})
        rows.append(f"{label:<62}{x['rate']:>9,.0f}{x['seconds']:>9.2f}{pct(x['cpu_share']):>6}"
                    f"{x['mean_batch']:>7,.0f}{b.get('load_1m_at_start', float('nan')):>6.1f}"
                    f"{pct(b.get('cores_busy', float('nan'))):>6}")
    c = t.get("C")
    rows.append("    ratios: " + ", ".join(
        f"{n} {ratio(t.get(x), t.get(y)):.3g}" for n, x, y in
        (("C/B1", "C", "B1"), ("C/B0", "C", "B0"), ("C/A", "C", "A"), ("B1/B0", "B1", "B0"))))
    if "A" in t:
        rows.append("    raw aiokafka reads: "
                    + ", ".join(f"{r:,.0f}" for r in t["A"]["extra"]["all_rates"]) + " pings/s")
    short = [k for k, x in t.items() if x["seconds"] < 1.0]
    if short:
        rows.append(f"    NOTE: {', '.join(short)} read the backlog in under 1 s: indicative only "
                    "(a ceiling far above the worker; more --pings make it longer)")
    rows.append("    CPU: the consuming process (100% = one core); batch: records per batch "
                "(per fetched partition batch for B1 and C); load: 1-min load average when the "
                "phase started; busy: share of all cores busy during it (any process)")
    if c is not None:
        d = results["drain"]
        verdict = ("met" if c["rate"] >= DRAIN_TARGET else "NOT met")
        stretch = " (stretch 25,000 met)" if c["rate"] >= DRAIN_STRETCH else ""
        rows.append(f"    target >= {DRAIN_TARGET:,} pings/s drained: {c['rate']:,.0f}, "
                    f"{verdict}{stretch}")
        if not d.get("steady", True):
            rows.append(f"    NOTE: the backlog ended before the worker held all {o['vehicles']:,} "
                        f"trucks: C's clock started after {o['vehicles']:,} pings, so its rate "
                        "includes first sights of trucks (not steady); use more --pings")
        rows.append(f"    worker's cold start: {d['first_round_s']:.1f} s from its first batch "
                    f"until it held every truck, {d['cold_pings']:,} pings "
                    f"({d['cold_pings'] / max(d['first_round_s'], 1e-9):,.0f}/s; first sight of "
                    "each truck: its state made and its permit, restored from the changelog, "
                    "compiled; not counted above)")
        rows.append(f"    alerts during C: {alert_mix(d['alerts'])}")
        if d["rejected"] or d["replayed"]:
            rows.append(f"    dead-lettered {d['rejected']:,.0f}, replayed {d['replayed']:,.0f}")
        if c["seconds"] < 5:
            rows.append("    NOTE: C took under 5 s, too short to be reliable (the worker's "
                        f"/metrics is read every {METRICS_POLL_S:g} s): use more --pings")
    return rows


def memory_rows(results: dict[str, Any]) -> list[str]:
    d = results.get("drain")
    if not d:
        return []
    v = d["vehicles_tracked"]
    return [
        "memory (worker's resident size, /proc VmRSS)",
        (f"    before its first batch {d['rss_mib_start']:,.0f} MiB (started, permits and "
         f"zones loaded); after the drain {d['rss_mib_end']:,.0f} MiB with {v:,.0f} vehicles "
         f"tracked (peak {d['hwm_mib_end']:,.0f} MiB)"),
        (f"    per 10,000 vehicles: {d['rss_growth_mib_per_10k_vehicles']:,.0f} MiB (the growth "
         f"during the drain over the vehicles tracked: states decoded and encoded, compiled "
         f"permits, and whatever buffers the drain left, so an upper bound)"),
        "    100,000 vehicles: see `python -m benchmarks.memory`",
    ]


def latency_rows(results: dict[str, Any]) -> list[str]:
    """The latency curve: one line per offered rate."""
    phases, o = results.get("latency"), results["options"]
    if not phases:
        return []
    drain = results["throughput"].get("C", {}).get("rate", float("nan"))
    rows = [
        (f"latency, ping produced -> alert received: {o['duration']:g} s per rate, the "
         f"backlog's trucks driving on, {o['speeders']:.0%} of them speeding, SPEEDING after "
         f"{o['speeding_min_s']:g} s over the limit"),
        (f"{'offered rate':<22}{'trucks':>8}{'p50':>10}{'p99':>10}{'max':>10}{'alerts':>8}"
         f"{'CPU':>6}{'batch':>7}{'lag@end':>9}{'load':>6}"),
    ]
    for lat in phases:
        e2e = lat["end_to_end_s"]
        label = f"{lat['achieved_rate']:,.0f}/s ({lat['label']})"
        rows.append(f"{label:<22}{lat['vehicles']:>8,}{ms(e2e['p50']):>10}{ms(e2e['p99']):>10}"
                    f"{ms(e2e['max']):>10}{lat['alerts']:>8,}{pct(lat['worker_cpu_share']):>6}"
                    f"{lat['worker_mean_batch']:>7,.0f}{lat['worker_lag_at_end_pings']:>9,.0f}"
                    f"{lat['load_1m_at_start']:>6.1f}")
    rows.append(f"{'where it goes, p50 / p99':<22}{'to batch start':>18}{'batch -> alert':>18}"
                f"{'worker hist':>16}{'fetch p99/max':>17}{'queue p99/max':>17}{'loop lag p99':>14}{'blocked':>9}"
                f"{'full GCs':>16}")
    for lat in phases:
        held = lat.get("worker_stalls") or {}
        rows.append(f"{lat['achieved_rate']:>10,.0f}/s{'':<10}{pair(lat['to_batch_start_s']):>18}"
                    f"{pair(lat['batch_start_to_received_s']):>18}"
                    f"{pair(lat['worker_arrival_histogram_s']):>16}"
                    f"{ms_pair(held, 'fetch'):>17}{ms_pair(held, 'queue'):>17}"
                    f"{held.get('loop_lag_p99_s', float('nan')) * 1000:>11,.0f} ms"
                    f"{held.get('loop_blocked', float('nan')):>9,.0f}"
                    f"{held.get('gc2_count', float('nan')):>6,.0f} ({held.get('gc2_seconds', float('nan')) * 1000:,.0f} ms)")
    rows.append("    to batch start: ping produced -> the worker starts the batch holding it "
                "(alert emitted_at); worker hist: yrd_latency_from_arrival_seconds, "
                "bucket-interpolated; fetch: per batch, its oldest record's timestamp -> taken by "
                "the consumer thread; queue: taken -> the agent starts it (max: the bucket "
                "bound); loop lag: how late the worker's event loop woke a 50 ms "
                "heartbeat; blocked: times it stood still 100 ms; full GCs: generation-2 "
                "collections and their total time; lag@end: pings not processed when "
                "production ended; CPU: the worker's")
    for lat in phases:
        rows.append(f"    alerts at {lat['target_rate']:,.0f}/s: {alert_mix(lat['alert_types'])}; "
                    f"{lat['unmatched']} unmatched")
        if not kept_up(lat):
            rows.append(f"    NOTE: at {lat['target_rate']:,.0f}/s the worker did not keep up: "
                        "these latencies include a growing queue, not a steady state")
        if lat["producer_max_behind_s"] > 0.1:
            rows.append(f"    NOTE: at {lat['target_rate']:,.0f}/s the producer fell "
                        f"{lat['producer_max_behind_s']:.2f} s behind its schedule")
    rows += [f"    {v}" for v in verdicts(phases, drain)]
    return rows


def scaling_rows(results: dict[str, Any]) -> list[str]:
    e = results.get("two_workers")
    if not e:
        return []
    c = results["throughput"].get("C")
    n = results["options"]["pings"]
    rows = [
        (f"E  two workers, one group, same backlog (after C, before D): e1 alone until "
         f"{e['join_at']:.0%} processed ({e['alone_s']:.1f} s), then e2 starts"
         + (f"; its first batch {e['rebalance_gap_s']:.1f} s later (start-up, rebalance, "
            "table recovery)" if e["e2_took_pings"] else
            "; e2 took no pings before the end: no combined rate (use a smaller --join-at "
            "or more --pings)")),
    ]
    if e["e2_took_pings"]:
        busy = e.get("both_busy")
        if busy:
            rows.append(
                f"    while both took pings (e2 took over {e['e2_trucks']:,} trucks of "
                f"partitions {e['e2_partitions']}; until the first finished its partitions): "
                f"{busy['rate']:,.0f} pings/s, {busy['pings']:,.0f} pings in "
                f"{busy['seconds']:.1f} s (CPU {' + '.join(pct(x) for x in busy['cpu_share'])})"
                + (f"; one worker (C, steady) {c['rate']:,.0f} pings/s" if c else ""))
        else:
            rows.append("    no window with both taking pings (one had finished its partitions "
                        "before the other started)")
        rows.append(
            f"    from e2's first batch to the end: {e['rate_both']:,.0f} pings/s over "
            f"{e['both_s']:.1f} s (CPU {' + '.join(pct(x) for x in e['cpu_share_both'])}); "
            f"whole backlog, both cold starts included: {e['rate_total']:,.0f} pings/s")
    rows += [
        (f"    processed per worker {', '.join(f'{x:,.0f}' for x in e['processed_per_worker'])}"
         f" of {n:,}: never processed {e['never_processed']:,.0f}, processed twice "
         f"{e['processed_twice']:,.0f}; replays recognised and skipped "
         f"{e['replayed']:,.0f}; delivery gaps detected {e['delivery_gaps']:,.0f}; "
         f"group lag at the end {e['lag_at_end']:,}"),
        "    partitions of the pings topic per member, as the broker saw them (describe group):",
    ]
    for item in e["assignments"]:
        members = "; ".join(f"slot {name.rsplit('-', 1)[-1]}: {parts}"
                            for name, parts in sorted(item["members"].items()))
        rows.append(f"      t={item['t']:>5.1f} s  {members or '(no members)'}")
    rows.append("      (slot = the worker's group.instance.id slot on this host: 0 = e1, 1 = e2)")
    for line in e["worker_e1_dropped"][:4]:
        rows.append(f"    e1 log: {line}")
    if e["never_processed"] or e["lag_at_end"]:
        rows.append(f"    NOTE: the group stopped short of the backlog "
                    f"({e['never_processed']:,.0f} pings never processed, "
                    f"{e['lag_at_end']:,} never committed): records "
                    "were not delivered to the agent; see the workers' logs")
    cmp = e.get("comparison")
    if cmp is None:
        rows.append("    alerts not compared (C skipped)")
    else:
        verdict = "EQUAL" if cmp["equal"] else "DIFFERENT"
        rows.append(
            f"    alerts against the one-worker run C (by alert_id, emitted_at aside, event "
            f"time in the backlog): {verdict}: {cmp['expected']:,} ids in C, {cmp['got_ids']:,} "
            f"in E ({cmp['got_records']:,} records, {cmp['repeats']:,} repeats); missing "
            f"{cmp['missing']:,}, extra {cmp['extra']:,}, other content {cmp['changed']:,}")
        if not cmp["equal"]:
            rows.append(f"    missing by type {cmp['missing_by_type']}; extra by type "
                        f"{cmp['extra_by_type']}; examples {cmp['examples']}")
            if cmp.get("changed_fields"):
                rows.append(f"    other content, by type and field: {cmp['changed_fields']}")
    rows.append("    E's rates include e2's cold start (it compiles the permit of each truck it "
                "takes over on first sight), unlike C's")
    pinned = results.get("machine", {}).get("pinning")
    rows.append("    expected scaling: close to 2x one worker with a free core per worker; "
                + ("here both workers run on the CPUs of --worker-cpus, sharing them, so no "
                   "scaling can show" if pinned else
                   "on 2 cores the two workers share them with the broker, Redis and this "
                   "benchmark, so well under 2x"))
    return rows


def report(results: dict[str, Any]) -> str:
    """The human-readable report of one run."""
    sections = [header_rows(results), throughput_rows(results), memory_rows(results),
                latency_rows(results), scaling_rows(results)]
    return "\n\n".join("\n".join(rows) for rows in sections if rows)
