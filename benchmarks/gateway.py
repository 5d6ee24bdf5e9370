"""JT/T 808 gateway benchmark: connections held, and positions/s from terminals into Kafka.

``python -m benchmarks.gateway [--terminals 2000] [--duration 20]``: starts Kafka
(or uses ``KAFKA_BOOTSTRAP``), runs ``yrd-hazmat gateway`` as its own process (on its
own CPU with ``--gateway-cpus``), then in this process:

1. the ceiling: a raw aiokafka producer sending the same pings (acks=all, idempotent,
   as the gateway), positions/s;
2. connections: T simulated terminals connect, register and authenticate; the
   gateway's ``yrd_gateway_open_connections`` must show all T;
3. throughput: every terminal reports positions back to back (one in flight, as a
   terminal waits for each answer) for D seconds; answered positions/s, and the
   gateway's CPU;
4. nothing lost: the pings topic holds exactly the positions answered.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from yrd_hazmat.core.codec import encode
from yrd_hazmat.jt808.terminal import SimulatedTerminal
from yrd_hazmat.core.models import Ping
from yrd_hazmat.core.timeutil import CHINA_TZ

from benchmarks.pipeline.kafka import end_offsets
from benchmarks.pipeline.services import free_port, load_services, local_services

REPO = Path(__file__).resolve().parent.parent


def say(message: str) -> None:
    print(message, flush=True)


def scrape(port: int) -> dict[str, float]:
    import urllib.request

    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def ceiling(bootstrap: str, topic: str, n: int) -> float:
    """Positions/s of a raw aiokafka producer sending n pings like the gateway does."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 4, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, linger_ms=5)
    await producer.start()
    t0 = datetime.now(CHINA_TZ)
    values = [(f"沪R{i % 10_000:05d}".encode(),
               encode(Ping(vehicle_id=f"沪R{i % 10_000:05d}", ts=t0 + timedelta(seconds=i),
                           lat=31.2, lon=121.4, speed_kmh=60.0))) for i in range(n)]
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value, key=key) for key, value in values]
        await asyncio.gather(*futures)
        return n / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def drive(port: int, terminals: int, duration_s: float, metrics_port: int,
                gateway_pid: int) -> dict[str, float]:
    fleet = [SimulatedTerminal(f"1381{i:07d}", f"沪G{i:05d}", timeout_s=60) for i in range(terminals)]
    started = time.perf_counter()
    for chunk in range(0, terminals, 500):
        part = fleet[chunk:chunk + 500]
        await asyncio.gather(*(t.connect("127.0.0.1", port) for t in part))
        await asyncio.gather(*(t.login() for t in part))
    login_s = time.perf_counter() - started
    held = scrape(metrics_port).get("yrd_gateway_open_connections", 0)
    say(f"connections: {terminals:,} terminals registered and authenticated in {login_s:.1f} s; "
        f"the gateway holds {held:,.0f}")

    stop = time.perf_counter() + duration_s
    t0 = datetime.now(CHINA_TZ) - timedelta(hours=1)
    counts = [0] * terminals

    async def report(i: int, terminal: SimulatedTerminal) -> None:
        k = 0
        while time.perf_counter() < stop:
            await terminal.report(t0 + timedelta(seconds=k), 31.2 + i * 1e-5, 121.4 + k * 1e-5, 60.0)
            k += 1
        counts[i] = k

    cpu0, wall0 = cpu_seconds(gateway_pid), time.perf_counter()
    await asyncio.gather(*(report(i, t) for i, t in enumerate(fleet)))
    wall = time.perf_counter() - wall0
    cpu = cpu_seconds(gateway_pid) - cpu0
    await asyncio.gather(*(t.close() for t in fleet))
    return {"held": held, "login_s": login_s, "answered": sum(counts), "seconds": wall,
            "gateway_cpu": cpu / wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--terminals", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--ceiling-pings", type=int, default=100_000)
    parser.add_argument("--gateway-cpus", default=None, help="taskset CPU list for the gateway")
    parser.add_argument("--state-dir", type=Path, default=REPO / ".local" / "bench-gateway")
    parser.add_argument("--kafka-port", type=int, default=39092)
    parser.add_argument("--redis-port", type=int, default=36379)
    opts = parser.parse_args(argv)
    say(f"gateway benchmark, {datetime.now(CHINA_TZ):%Y-%m-%d %H:%M %Z}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}")
    with local_services(opts, load_services()) as addresses:
        bootstrap = addresses["KAFKA_BOOTSTRAP"]
        run = uuid.uuid4().hex[:8]
        port, metrics_port = free_port(), free_port()
        env = dict(os.environ) | addresses | {
            "YRD_APP_ID": f"bench-gw-{run}", "YRD_TOPIC_PINGS": f"gw{run}.pings",
            "YRD_TOPIC_DEADLETTER": f"gw{run}.deadletter",
            "YRD_TOPIC_TERMINALS": f"gw{run}.terminals", "YRD_JT808_PORT": str(port),
            "YRD_GATEWAY_METRICS_PORT": str(metrics_port),
            "YRD_GATEWAY_MAX_CONNECTIONS": str(opts.terminals + 100), "YRD_LOG_LEVEL": "WARNING"}
        command = [sys.executable, "-m", "yrd_hazmat.cli", "gateway"]
        if opts.gateway_cpus:
            command = ["taskset", "-c", opts.gateway_cpus, *command]
        log = open(opts.state_dir / "gateway.log", "wb") if opts.state_dir.exists() else subprocess.DEVNULL
        gateway = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    scrape(metrics_port)
                    import socket
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or gateway.poll() is not None:
                        raise RuntimeError("the gateway did not start")
                    time.sleep(0.5)
            raw = asyncio.run(ceiling(bootstrap, f"gw{run}.ceiling", opts.ceiling_pings))
            say(f"ceiling: raw aiokafka producer (acks=all, idempotent), {opts.ceiling_pings:,} "
                f"pings: {raw:,.0f} pings/s")
            result = asyncio.run(drive(port, opts.terminals, opts.duration, metrics_port,
                                       gateway.pid))
        finally:
            gateway.terminate()
            gateway.wait(30)
        rate = result["answered"] / result["seconds"]
        on_kafka = sum(end_offsets(bootstrap, f"gw{run}.pings", 4).values())
        say(f"throughput: {result['answered']:,} positions answered in {result['seconds']:.1f} s "
            f"by {opts.terminals:,} terminals (one in flight each): {rate:,.0f} positions/s, "
            f"{rate / raw:.2f}x the raw producer; gateway CPU {result['gateway_cpu']:.0%} of a core")
        say(f"nothing lost: {on_kafka:,} pings on the topic for {result['answered']:,} answered "
            f"({'equal' if on_kafka == result['answered'] else 'DIFFERENT'})")
        return 0 if on_kafka == result["answered"] and result["held"] == opts.terminals else 1


if __name__ == "__main__":
    raise SystemExit(main())
