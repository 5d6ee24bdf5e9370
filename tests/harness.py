"""Ports, waits and services: the one place every test takes them from.

Services come from ``deploy/local/services.py``, the product's own starter (``make
demo``, the README's commands, the benchmark), loaded by path (:func:`local_services`),
never copied: the shared broker and Redis of a test session (``tests/conftest.py``), and
a broker or redis-server of a test's own (:class:`OwnKafka`, :class:`OwnRedis`) for a
test that stops or breaks them and so must never touch the shared ones. Only the
standard library and the redis client are imported, so unit tests may use it too.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import redis

REPO = Path(__file__).resolve().parent.parent


@functools.cache
def local_services() -> ModuleType:
    """``deploy/local/services.py``, imported by path (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("yrd_services", REPO / "deploy/local/services.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def listening(port: int | str) -> bool:
    """Whether something accepts connections on ``port`` of the loopback address."""
    try:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def free_port_pair() -> int:
    """A free port ``p`` with ``p + 1`` free as well (a KRaft broker's controller listens
    there)."""
    for _ in range(200):
        port = free_port()
        if port < 65535 and _port_free(port + 1):
            return port
    raise RuntimeError("no free pair of ports")


# --------------------------------------------------------------------------
# Waits
# --------------------------------------------------------------------------


def terminate(proc: subprocess.Popen, timeout: float) -> tuple[int, bool]:
    """SIGTERM, as a supervisor would, then SIGKILL after ``timeout`` s; returns the exit
    code and whether SIGTERM was enough."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return proc.returncode, False
    return proc.returncode, True


class CliProcess:
    """``yrd-hazmat <args>`` as a child process of its own session, its output in ``log``:
    started, killed with SIGKILL (a crash), or stopped with SIGTERM as a supervisor would."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "yrd_hazmat.cli", *self.args],
                                     env=self.env, stdout=self.log.open("ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        return terminate(self.proc, 30)[0]

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-lines:])


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.3) -> bool:
    """Poll ``condition``; True as soon as it holds, False after ``timeout`` (for a test
    that reports what did not happen among other problems)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0,
               interval: float = 0.3) -> None:
    """Poll ``condition`` until it holds; TimeoutError naming ``what`` after ``timeout``."""
    if not wait_for(condition, timeout, interval):
        raise TimeoutError(f"not within {timeout:.0f} s: {what}")


# --------------------------------------------------------------------------
# Services of a test's own
# --------------------------------------------------------------------------


class OwnKafka:
    """A single-node KRaft broker on free ports with its own state dir; stop/start keep its
    data."""

    def __init__(self, state_dir: Path) -> None:
        self.services = local_services()
        self.cfg = self.services.make_config(state_dir, kafka_port=free_port_pair(),
                                             redis_port=free_port())
        self.cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self.bootstrap = self.cfg.kafka.address

    def start(self) -> None:
        self.services.start_kafka(self.cfg)

    def stop(self) -> None:
        """SIGTERM (a clean broker shutdown), SIGKILL after the service's stop timeout."""
        self.services.stop_service(self.cfg.kafka)

    def ready(self) -> bool:
        return self.cfg.kafka.is_ready()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.cfg.kafka_data_dir, ignore_errors=True)


class OwnRedis:
    """``redis-server`` on a free port, no snapshots, optionally with a password;
    :meth:`stop` keeps its data for :meth:`start` (SHUTDOWN SAVE, then the dump is
    loaded again), like a restarted Redis with persistence; :meth:`kill` loses it (an
    outage); :meth:`pause` / :meth:`resume` make it hang (SIGSTOP)."""

    def __init__(self, state_dir: Path, password: str | None = None) -> None:
        self.port = free_port()
        self.password = password
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "OwnRedis":
        server = shutil.which("redis-server") or local_services().redis_server_executable()
        args = [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir), "--dbfilename", "dump.rdb"]
        if self.password:
            args += ["--requirepass", self.password]
        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        client = self.client()
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start (port {self.port})") from None
                time.sleep(0.05)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password, decode_responses=True,
                           socket_timeout=5)

    def stop(self) -> None:
        """SHUTDOWN SAVE: the data set goes to dump.rdb and comes back on :meth:`start`."""
        assert self.proc is not None
        if self.proc.poll() is None:
            try:
                self.client().shutdown(save=True)
            except redis.ConnectionError:  # the server closes the connection as it goes
                pass
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: an outage; what was not saved is gone."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def destroy(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
