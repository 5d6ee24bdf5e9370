"""``yrd-hazmat demo`` stops everything it started on SIGTERM, on a closed terminal and
on Ctrl-C with its output piped.

Ctrl-C was the only way to stop it cleanly; a ``kill`` or a closed terminal
left the worker, the fleet and the services running, and so did Ctrl-C on
``make demo | tee demo.log`` (``tee`` dies with the same Ctrl-C, and the demo's
first word after it, on a closed pipe, ended the demo before its clean-up).
Here the demo runs as a user would, its worker, fleet, platforms (the enterprise one on
the gateway's JT/T 809 link, the simulated national one the uplink is logged in to) and
uplink are seen running,
then it gets SIGTERM (on the session's services), or its terminal (a
pseudo-terminal) is closed, which hangs it up with SIGHUP, or the reader of
its output goes and its process group gets SIGINT (these two with services of
its own); every process it started must be gone within a timeout.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import free_port, free_port_pair, wait_until
from tests.integration.harness import run_env

pytestmark = pytest.mark.integration

DEMO = [sys.executable, "-m", "yrd_hazmat.cli", "demo", "--vehicles", "3", "--interval", "1"]


def alive(pid: int, marker: str) -> bool:
    """True while ``pid`` runs a program whose command line holds ``marker`` (not a zombie)."""
    try:
        if marker.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return False
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children_of(screen: str) -> dict[str, int]:
    """The pids of the worker, gateway, fleet, platform, desk, national platform, uplink and
    archiver,
    as the demo prints them (wrapped at the console's width: any space may have become a
    line break)."""
    found = re.search(r"worker pid (\d+) .*?gateway pid (\d+) .*?fleet of \d+ trucks, pid (\d+)"
                      r".*?JT/T 809 link .*?pid (\d+).*?police desk pid (\d+)"
                      r".*?national platform \(simulated\) pid (\d+) .*?uplink pid (\d+)"
                      r".*?archive pid (\d+)",
                      " ".join(screen.split()))
    assert found, screen[-3000:]
    return {"worker": int(found[1]), "gateway": int(found[2]), "simulator": int(found[3]),
            "platform": int(found[4]), "desk": int(found[5]), "upper": int(found[6]),
            "uplink": int(found[7]), "archive": int(found[8])}


def uplink_env() -> dict[str, str]:
    """Ports of the demo's national platform, the uplink's slave-link server and metrics of
    this test alone (the demo's own defaults may be taken by another run)."""
    return {"YRD_UPLINK_PORT": str(free_port()), "YRD_UPLINK_DOWN_PORT": str(free_port()),
            "YRD_UPLINK_METRICS_PORT": str(free_port()),
            "YRD_UPLINK_GROUP": f"uplink-{os.getpid()}-{time.monotonic_ns()}"}


def wait_until_running(screen: Callable[[], str], logs: Path, timeout: float = 150.0) -> dict[str, int]:
    """Wait until the demo's worker is ready, its uplink logged in to its national platform
    and its fleet has run a few seconds; their pids."""
    wait_until(lambda: "Alerts (" in screen(), "the demo's banner", timeout)
    pids = children_of(screen())
    worker_log = logs / "worker.log"
    wait_until(lambda: worker_log.exists() and "Ready" in worker_log.read_text("utf-8", "replace"),
             f"worker ready ({worker_log})", timeout)
    upper_log = logs / "upper.log"
    wait_until(lambda: "lower platform logged in" in upper_log.read_text("utf-8", "replace"),
               f"the uplink logged in to the national platform ({upper_log})", timeout)
    time.sleep(3)  # the fleet publishes for a while
    for name, pid in pids.items():
        assert alive(pid, "yrd_hazmat.cli"), f"the {name} is not running:\n{screen()[-3000:]}"
    return pids


def assert_all_gone(pids: dict[str, int], timeout: float = 10.0) -> None:
    wait_until(lambda: not any(alive(pid, marker) for pid, marker in pids.values()),
             f"every process gone: {pids}", timeout)


def stop_leftovers(pids: dict[str, tuple[int, str]]) -> None:
    """After a failure, leave nothing running (only the processes this test saw started)."""
    for pid, marker in pids.values():
        if alive(pid, marker):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_fleet_and_the_worker(services, tmp_path, signum):
    env = run_env(services) | uplink_env() | {"YRD_STATE_DIR": str(tmp_path),
                                              "YRD_JT809_PORT": str(free_port())}
    screen_file = tmp_path / "screen.txt"
    with screen_file.open("wb") as out:
        demo = subprocess.Popen(DEMO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    screen = lambda: screen_file.read_text("utf-8", "replace")  # noqa: E731
    seen: dict[str, tuple[int, str]] = {"demo": (demo.pid, "yrd_hazmat.cli")}
    try:
        pids = wait_until_running(screen, tmp_path / "logs")
        seen |= {name: (pid, "yrd_hazmat.cli") for name, pid in pids.items()}
        demo.send_signal(signum)  # SIGINT: as Ctrl-C, which still works
        assert demo.wait(90) == 0, screen()[-3000:]
        assert_all_gone(seen)
        assert "Stopped." in screen()
        # the uplink logged out of the national platform before that stopped
        uplink_log = (tmp_path / "logs" / "uplink.log").read_text("utf-8", "replace")
        assert "uplink dropped" not in uplink_log, uplink_log[-3000:]
        upper_log = (tmp_path / "logs" / "upper.log").read_text("utf-8", "replace")
        assert "the lower platform logged out" in upper_log, upper_log[-3000:]
        if signum == signal.SIGTERM:
            assert "SIGTERM received" in screen()
    finally:
        if demo.poll() is None:
            demo.kill()
        stop_leftovers(seen)
    # the services were the session's: the demo leaves them alone
    host, port = services["KAFKA_BOOTSTRAP"].split(":")
    socket.create_connection((host, int(port)), timeout=5).close()


class Terminal:
    """A program on a pseudo-terminal of its own, as in a terminal window; ``close`` shuts the window."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: session leader, the terminal is its controlling tty
            os.execve(argv[0], argv, env)
        self.output = bytearray()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.status: int | None = None

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    return
                if not data:
                    return
                self.output += data

    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    def close(self) -> None:
        """Close the terminal: the kernel hangs up its session (SIGHUP)."""
        self._stop.set()
        self._reader.join()
        os.close(self.fd)

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
            time.sleep(0.2)
        raise TimeoutError(f"the demo did not exit within {timeout:.0f} s")


def own_services_env(state: Path) -> dict[str, str]:
    """The demo's environment when it starts services of its own, on ports of its own
    (never the session's pair), with its state (pid files, logs) in ``state``."""
    env = run_env({}) | {
        "YRD_STATE_DIR": str(state),
        "YRD_KAFKA_PORT": str(free_port_pair()),
        "YRD_REDIS_PORT": str(free_port()),
        "YRD_JT809_PORT": str(free_port()),
        "TERM": "dumb",
    } | uplink_env()
    for given in ("KAFKA_BOOTSTRAP", "REDIS_URL"):
        env.pop(given, None)
    return env


def with_services(seen: dict[str, tuple[int, str]], state: Path) -> dict[str, tuple[int, str]]:
    """``seen`` and the Kafka and Redis the demo started (from their pid files in ``state``)."""
    return seen | {"kafka": (int((state / "kafka.pid").read_text()), "kafka.Kafka"),
                   "redis": (int((state / "redis.pid").read_text()), "redis-server")}


def test_a_closed_terminal_stops_the_fleet_the_worker_and_the_services(tmp_path):
    terminal = Terminal(DEMO, own_services_env(tmp_path))
    seen: dict[str, tuple[int, str]] = {"demo": (terminal.pid, "yrd_hazmat.cli")}
    try:
        pids = wait_until_running(terminal.text, tmp_path / "logs")
        seen |= {name: (pid, "yrd_hazmat.cli") for name, pid in pids.items()}
        seen = with_services(seen, tmp_path)
        assert all(alive(pid, marker) for pid, marker in seen.values()), seen
        terminal.close()
        assert terminal.wait(120) == 0
        assert_all_gone(seen)
        # what the demo said after the hangup is in its log, and it wiped the services' data
        said = (tmp_path / "logs" / "demo.log").read_text("utf-8", "replace")
        assert "SIGHUP received" in said and "Stopped." in said, said
        assert not (tmp_path / "kafka-data").exists()
    finally:
        if terminal.status is None:
            os.kill(terminal.pid, signal.SIGKILL)
            terminal.wait(10)
        stop_leftovers(seen)


class PipeReader:
    """The reader of the demo's output, as ``tee`` in ``make demo | tee demo.log``;
    ``close`` is the reader dying (the same Ctrl-C ends it)."""

    def __init__(self) -> None:
        self.fd, self.write_end = os.pipe()
        self.output = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        """Read from now on; the writer (the demo) holds the only write end."""
        os.close(self.write_end)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                data = os.read(self.fd, 65536)
                if not data:
                    return
                self.output += data

    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        os.close(self.fd)


def environ(pid: int) -> dict[str, str]:
    """The environment ``pid`` was started with."""
    items = Path(f"/proc/{pid}/environ").read_bytes().decode("utf-8", "replace").split("\0")
    return dict(item.split("=", 1) for item in items if "=" in item)


def group_members(groups: set[int]) -> list[int]:
    """Live processes (not zombies) in any of the process groups ``groups``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except OSError:  # gone meanwhile
            continue
        if state != "Z" and int(group) in groups:
            members.append(int(stat.parent.name))
    return members


def listening(port: int) -> bool:
    """True while something listens on ``port`` (a closed connection's TIME_WAIT does not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return True
    return False


def test_ctrl_c_with_the_output_piped_stops_everything(tmp_path):
    """``make demo 2>&1 | tee demo.log``, then Ctrl-C: the terminal interrupts the demo's
    process group, ``tee`` dies too, and what the demo says after that meets a closed pipe."""
    env = own_services_env(tmp_path)
    ports = [int(env[name]) for name in ("YRD_KAFKA_PORT", "YRD_REDIS_PORT", "YRD_JT808_PORT",
                                         "YRD_JT809_PORT", "YRD_DESK_PORT", "YRD_METRICS_PORT",
                                         "YRD_GATEWAY_METRICS_PORT", "YRD_UPLINK_PORT",
                                         "YRD_UPLINK_DOWN_PORT", "YRD_UPLINK_METRICS_PORT")]
    ports.append(int(env["YRD_KAFKA_PORT"]) + 1)  # Kafka's controller
    reader = PipeReader()
    demo = subprocess.Popen(DEMO, env=env, stdout=reader.write_end, stderr=subprocess.STDOUT,
                            start_new_session=True)
    reader.start()
    seen: dict[str, tuple[int, str]] = {"demo": (demo.pid, "yrd_hazmat.cli")}
    try:
        pids = wait_until_running(reader.text, tmp_path / "logs")
        seen |= {name: (pid, "yrd_hazmat.cli") for name, pid in pids.items()}
        seen = with_services(seen, tmp_path)
        groups = {os.getpgid(pid) for pid, _ in seen.values()}
        assert [port for port in ports if not listening(port)] == []
        # the desk loads the emergency resources the worker loads
        resources = environ(pids["worker"]).get("YRD_RESOURCES_FILE")
        assert resources and environ(pids["desk"]).get("YRD_RESOURCES_FILE") == resources
        reader.close()
        os.killpg(demo.pid, signal.SIGINT)
        assert demo.wait(150) == 0
        assert_all_gone(seen)
        assert group_members(groups) == []
        assert [port for port in ports if listening(port)] == []
        # what the demo said after its output closed is in its log; it wiped the services' data
        said = (tmp_path / "logs" / "demo.log").read_text("utf-8", "replace")
        assert "Stopped." in said, said
        assert not (tmp_path / "kafka-data").exists()
    finally:
        reader.close()
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        stop_leftovers(seen)
