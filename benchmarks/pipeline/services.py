"""Run setup: the services, names unique to a run, child processes, and watching them.

- :func:`local_services`: Kafka and Redis from ``deploy/local/services.py``
  (state dir ``.local/bench``, ports 39092/36379, stopped and wiped at the
  end), or the running ones named by ``KAFKA_BOOTSTRAP`` and ``REDIS_URL``
  when both are set (left running).
- :class:`Run` / :func:`new_run`: one run's app ids, topics, Redis prefix
  and metrics ports, as the environment its workers get.
- :class:`Child`: a worker (or no-op agent) as its own process group, its
  output in a log file in the run's directory; CPU time and resident size
  from ``/proc``.
- :class:`MachineCPU`: the share of all cores busy while a phase runs.
- :func:`scrape` / :func:`processed`: the worker's ``/metrics``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Self

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"
METRICS_POLL_S = 0.5
"""How often a worker's /metrics is read. A read costs the worker 10-15 ms of CPU (many label
sets: alerts by type, state and province; histograms), 2-3 % of a core at this rate."""
START_QUIET_S = 60.0
"""A worker that has taken no ping this long after it started is taken as stuck."""
STALL_S = 30.0
"""A worker that takes no ping for this long before the end of the backlog, while idle, is
stuck (one batch can keep a worker busy for tens of seconds: see phases.worker_drain)."""


class BenchmarkError(RuntimeError):
    """A phase failed or did not finish in time."""


def say(message: str) -> None:
    """Progress, on stderr (the report goes to stdout)."""
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Services
# --------------------------------------------------------------------------


def load_services() -> ModuleType:
    """``deploy/local/services.py``, imported by path (it is not a package)."""
    spec = importlib.util.spec_from_file_location("yrd_services", REPO / "deploy/local/services.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def local_services(opts: argparse.Namespace, svc: ModuleType) -> Iterator[dict[str, str]]:
    """Kafka and Redis addresses; services started here are stopped and wiped on exit."""
    started_here = "KAFKA_BOOTSTRAP" not in os.environ or "REDIS_URL" not in os.environ
    try:
        yield svc.up(opts.state_dir, kafka_port=opts.kafka_port, redis_port=opts.redis_port)
    finally:
        if started_here:
            svc.down(opts.state_dir, wipe=True)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# One run's names
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """Names unique to one benchmark run and the worker's environment."""

    id: str
    tag: str
    dir: Path
    env: dict[str, str]

    @property
    def bootstrap(self) -> str:
        return self.env["KAFKA_BOOTSTRAP"]

    @property
    def app_id(self) -> str:
        return self.env["YRD_APP_ID"]

    @property
    def pings_topic(self) -> str:
        return self.env["YRD_TOPIC_PINGS"]

    @property
    def alerts_topic(self) -> str:
        return self.env["YRD_TOPIC_ALERTS"]

    @property
    def permits_topic(self) -> str:
        return self.env["YRD_TOPIC_PERMITS"]

    @property
    def zones_topic(self) -> str:
        return self.env["YRD_TOPIC_ZONES"]

    def worker_env(self, metrics_port: int | None = None) -> dict[str, str]:
        """The worker's environment, with a metrics port of its own."""
        return self.env | {"YRD_METRICS_PORT": str(metrics_port or free_port())}

    def group(self, suffix: str) -> Run:
        """The same run for another consumer group (app id) with outputs of its own:
        the same pings, permits and zones; its own alerts, handovers, dead letters,
        tables and Redis prefix."""
        tag = f"{self.tag}{suffix}"
        return Run(id=self.id, tag=tag, dir=self.dir, env=self.env | {
            "YRD_APP_ID": f"yrd-{tag}",
            "YRD_TOPIC_ALERTS": f"{tag}.alerts",
            "YRD_TOPIC_DEADLETTER": f"{tag}.deadletter",
            "YRD_TOPIC_HANDOVERS": f"{tag}.handovers",
            "YRD_TOPIC_INCIDENTS": f"{tag}.incidents",
            "YRD_TOPIC_INCIDENT_ACTIONS": f"{tag}.incident-actions",
            "YRD_REDIS_PREFIX": tag,
        })


def new_run(opts: argparse.Namespace, addresses: dict[str, str]) -> Run:
    """Unique app id, topics and Redis prefix; logs go to ``<state dir>/runs/<id>``.

    The worker runs with the caller's ``YRD_*`` settings except these, which
    the benchmark needs (see docs/benchmarks.md, "Worker settings").
    """
    run_id = datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    tag = f"bench{run_id.replace('-', '')}"
    env = dict(os.environ) | addresses | {
        "YRD_APP_ID": f"yrd-{tag}",
        "YRD_TOPIC_PINGS": f"{tag}.pings",
        "YRD_TOPIC_ALERTS": f"{tag}.alerts",
        "YRD_TOPIC_DEADLETTER": f"{tag}.deadletter",
        "YRD_TOPIC_PERMITS": f"{tag}.permits",
        "YRD_TOPIC_ZONES": f"{tag}.zones",
        "YRD_TOPIC_HANDOVERS": f"{tag}.handovers",
        "YRD_TOPIC_INCIDENTS": f"{tag}.incidents",
        "YRD_TOPIC_INCIDENT_ACTIONS": f"{tag}.incident-actions",
        "YRD_TOPIC_RESOURCES": f"{tag}.resources",
        "YRD_TOPIC_TERMINALS": f"{tag}.terminals",
        "YRD_TOPIC_PARTITIONS": str(opts.partitions),
        "YRD_REDIS_PREFIX": tag,
        "YRD_METRICS_HOST": "127.0.0.1",
        "YRD_SPEEDING_MIN_DURATION_S": str(opts.speeding_min_s),
        "YRD_SIGNAL_LOST_S": str(opts.signal_lost_s),
        "YRD_PERMIT_REQUIRED_PATTERN": ".*",
    }
    env.pop("YRD_ZONES_FILE", None)  # the run's zones come from its zones topic
    run_dir = opts.state_dir / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    return Run(id=run_id, tag=tag, dir=run_dir, env=env)


def create_topics(run: Run) -> None:
    """The contract's topics for this run, created by ``yrd-hazmat topics`` as users do."""
    subprocess.run(
        [sys.executable, "-m", "yrd_hazmat.cli", "topics"], env=run.env, cwd=run.dir,
        capture_output=True, text=True, timeout=120, check=True,
    )


def worker_settings(run: Run) -> dict[str, Any]:
    """The settings the worker reads from the run's environment (``yrd-hazmat settings``)."""
    out = subprocess.run(
        [sys.executable, "-m", "yrd_hazmat.cli", "settings"], env=run.env, cwd=run.dir,
        capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(out.stdout)


# --------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------


_CHILD_CPUS: set[int] | None = None
"""CPUs the measured child processes run on (``--worker-cpus``); None: any."""


def set_child_cpus(cpus: set[int] | None) -> None:
    global _CHILD_CPUS
    _CHILD_CPUS = set(cpus) if cpus else None


def _pin_to_child_cpus() -> None:  # in the child, before exec: all its threads inherit it
    if _CHILD_CPUS:
        os.sched_setaffinity(0, _CHILD_CPUS)


class Child:
    """A child process in its own session, its output in a log file (on the CPUs of
    ``--worker-cpus`` if given)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.env = env
        self.log_path = cwd / f"{name}.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_pin_to_child_cpus if _CHILD_CPUS else None,
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        """Raise, with the end of its log, if the process has exited."""
        if self.proc.poll() is not None:
            raise BenchmarkError(
                f"{self.name} exited with {self.proc.returncode}; end of {self.log_path}:\n"
                + self.log_tail()
            )

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process so far (all its threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_mib(self) -> dict[str, float]:
        """Resident size now (``VmRSS``) and at its peak (``VmHWM``), MiB."""
        out = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
        return out

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to the child's process group; SIGKILL if it lingers."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


class Worker(Child):
    """The real worker, started as a user would (``yrd-hazmat worker``); its Faust data
    directory lands in the run's directory. ``metrics_url`` is its own /metrics."""

    def __init__(self, name: str, env: dict[str, str], cwd: Path) -> None:
        argv = [sys.executable, "-m", "yrd_hazmat.cli", "worker", "--loglevel", "info"]
        super().__init__(name, argv, env, cwd)
        self.metrics_url = f"http://127.0.0.1:{env['YRD_METRICS_PORT']}/metrics"

    def scrape(self) -> dict[str, float]:
        return scrape(self.metrics_url)


class MachineCPU:
    """Share of all cores busy (any process) while the block runs, from /proc/stat, and
    the 1-minute load average when it started. The benchmark wants a quiet machine;
    this shows when it did not have one."""

    def __init__(self) -> None:
        self.share = float("nan")
        self.load_at_start = float("nan")

    @staticmethod
    def _jiffies() -> tuple[int, int]:
        first_line = Path("/proc/stat").read_text().split("\n", 1)[0]
        # user nice system idle iowait irq softirq steal (guest time is inside user)
        fields = [int(v) for v in first_line.split()[1:9]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    def __enter__(self) -> Self:
        self.load_at_start = round(os.getloadavg()[0], 2)
        self._start = self._jiffies()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, total = (now - then for now, then in zip(self._jiffies(), self._start))
        self.share = busy / total if total else float("nan")

    def as_dict(self) -> dict[str, float]:
        return {"cores_busy": self.share, "load_1m_at_start": self.load_at_start}


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    """Call ``check`` until it returns something truthy; BenchmarkError on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise BenchmarkError(f"timed out after {timeout:.0f} s waiting for {what}")


def raise_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so ``finally`` blocks stop children and services."""
    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


# --------------------------------------------------------------------------
# A worker's metrics
# --------------------------------------------------------------------------


def scrape(url: str) -> dict[str, float]:
    """The worker's metrics, ``name{label="v",...}`` -> value ({} if not answering)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return {}
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return samples


def metric_sum(samples: dict[str, float], name: str) -> float:
    """The sum of a metric over all its labels."""
    return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))


def processed(samples: dict[str, float]) -> float:
    """Pings fully through the rules: accepted plus dead-lettered."""
    return (samples.get("yrd_pings_accepted_total", 0.0)
            + metric_sum(samples, "yrd_pings_rejected_total"))


def alerts_by_type(samples: dict[str, float]) -> dict[str, int]:
    """Alerts the worker has published so far, by type and state (``yrd_alerts_total``)."""
    counts: Counter[str] = Counter()
    for key, value in samples.items():
        if key.startswith("yrd_alerts_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', key))
            counts[f"{labels.get('type')} {labels.get('state')}"] += int(value)
    return {k: v for k, v in counts.most_common() if v}
