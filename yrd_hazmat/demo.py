"""The main job on one machine: services, worker, simulated fleet, alerts on screen."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

from rich.console import Console

from .config import Settings

console = Console(highlight=False)


def services(repo: Path, env: dict[str, str], *args: str) -> dict[str, str]:
    """Run ``deploy/local/services.py ARGS``; returns the variables it exports."""
    script = repo / "deploy" / "local" / "services.py"
    result = subprocess.run(
        [sys.executable, str(script), *args], env=env, check=True, stdout=subprocess.PIPE, text=True
    )
    return dict(re.findall(r"^export (\w+)=(\S+)$", result.stdout, flags=re.M))


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("ab")
    return subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(proc: subprocess.Popen, name: str, timeout: float = 30.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        console.print(f"[yellow]{name} did not stop in {timeout:.0f} s; killing it[/]")
        proc.kill()
        proc.wait()


class ChildExited(RuntimeError):
    """A process of the demo stopped by itself."""


async def _watch(children: dict[str, subprocess.Popen]) -> None:
    """Raise :class:`ChildExited` as soon as one of the children exits."""
    while True:
        for name, proc in children.items():
            if proc.poll() is not None:
                raise ChildExited(f"the {name} exited with code {proc.returncode}")
        await asyncio.sleep(1.0)


async def _until_one_ends(*coroutines) -> None:
    """Run the coroutines until the first one returns or raises; cancel the others."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def run_demo(repo: Path, *, vehicles: int, interval: float, keep_services: bool) -> None:
    """Bring everything up, stream alerts until Ctrl-C, then stop it all."""
    from .console import AlertFilter, follow_alerts
    from .topics import ensure_topics

    started_services = "KAFKA_BOOTSTRAP" not in os.environ or "REDIS_URL" not in os.environ
    console.print("[bold]Starting Kafka (KRaft) and Redis...[/]")
    os.environ.update(services(repo, dict(os.environ), "up"))
    os.environ.setdefault("YRD_ZONES_FILE", str(files("yrd_hazmat.data") / "zones.geojson"))
    env = dict(os.environ)
    settings = Settings()
    asyncio.run(ensure_topics(settings))

    logs = repo / ".local" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "yrd_hazmat.cli"]
    worker = _spawn([*cli, "worker"], env, logs / "worker.log")
    fleet = _spawn([*cli, "simulate", "--vehicles", str(vehicles), "--interval", str(interval)],
                   env, logs / "simulator.log")
    console.print(
        f"worker pid {worker.pid} (log {logs / 'worker.log'}), fleet of {vehicles} trucks "
        f"(log {logs / 'simulator.log'})\n"
        f"metrics: http://127.0.0.1:{settings.metrics_port}/metrics   "
        f"read model: redis-cli -u {env['REDIS_URL']} hgetall yrd:vehicle:<plate>\n"
        f"zones: {env['YRD_ZONES_FILE']} (illustrative)\n"
        "[bold]Alerts (speeding needs 30 s over the limit before it fires). Ctrl-C to stop.[/]"
    )
    started = time.monotonic()
    feed = follow_alerts(settings.kafka_options(), settings.topic_alerts, AlertFilter())
    try:
        asyncio.run(_until_one_ends(feed, _watch({"worker": worker, "simulator": fleet})))
    except KeyboardInterrupt:
        pass
    except ChildExited as exc:
        console.print(f"[bold red]{exc}; see its log in {logs}[/]")
    finally:
        console.print(f"\n[bold]Stopping after {time.monotonic() - started:.0f} s...[/]")
        _stop(fleet, "simulator")
        _stop(worker, "worker")
        if started_services and not keep_services:  # each demo starts from a clean slate
            services(repo, env, "down", "--wipe")
        console.print("[bold]Stopped.[/]")
