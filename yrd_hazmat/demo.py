"""The main job on one machine: services, worker, simulated fleet, alerts on screen.

Beside the fleet: an enterprise platform on the gateway's JT/T 809 link (a lower
platform that answers the gateway's requests after a delay), and the uplink logged in
to a simulated national platform (an upper platform that asks inspection questions and
sends supervision orders, which reach the desk).

Ctrl-C, SIGTERM (``kill``, a supervisor), SIGHUP (the terminal was closed)
and a closed output (the reader of ``make demo | tee demo.log`` died) all stop
it the same way: the fleet and the platforms, the uplink before the national platform
it is logged in to, then the worker, then the services the demo
started. Once its terminal or pipe is gone, what the demo still has to say
goes to ``demo.log`` in the logs directory instead; no write to a lost output
interrupts the clean-up.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from functools import partial
from importlib.resources import files
from pathlib import Path

from rich.console import Console
from rich.text import Text

from .config import get_settings, load_settings, mask_url


class OutputClosed(Exception):
    """The demo's output is gone (a closed pipe or terminal): the demo stops, as on a signal."""


class _Screen(Console):
    """The demo's console. On a closed pipe Rich's own answer is ``SystemExit``, raised from
    whatever write found it, which skipped the clean-up; here it is :class:`OutputClosed`."""

    after_close = Path(os.devnull)
    """Where the demo's output goes once its own is gone (``run_demo`` names ``demo.log``)."""

    def on_broken_pipe(self) -> None:
        raise OutputClosed


console = _Screen(highlight=False)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""Signals that stop the demo like Ctrl-C does (SIGINT keeps Python's own handler)."""


def state_dir(repo: Path) -> Path:
    """Where ``deploy/local/services.py`` keeps its files (``YRD_STATE_DIR``, default ``.local``)."""
    return Path(os.environ.get("YRD_STATE_DIR") or repo / ".local")


def services(repo: Path, env: dict[str, str], *args: str) -> dict[str, str]:
    """Run ``deploy/local/services.py ARGS``; returns the variables it exports."""
    script = repo / "deploy" / "local" / "services.py"
    result = subprocess.run(
        [sys.executable, str(script), *args], env=env, check=True, stdout=subprocess.PIPE, text=True
    )
    exported = {}
    for line in result.stdout.splitlines():
        if re.match(r"export \w+=", line):
            key, _, value = shlex.split(line[len("export "):])[0].partition("=")
            exported[key] = value
    return exported


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("ab")
    return subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _show(message: str | Text, *, soft_wrap: bool = False) -> None:
    """Print; if the output is gone (EPIPE, or EIO from a closed terminal), send ours and
    our future children's to ``demo.log`` and raise :class:`OutputClosed`, which stops the demo."""
    try:
        console.print(message, soft_wrap=soft_wrap)
    except (OutputClosed, OSError) as exc:
        _redirect_output(console.after_close)
        console.print(end="")  # the failed message, still in the console's buffer, goes there now
        raise OutputClosed from exc


def _say(message: str) -> None:
    """Print while stopping: a lost output (or even a log that cannot be written) must not
    stop the clean-up; from then on the demo's words go to ``demo.log``."""
    try:
        _show(message)
    except (OutputClosed, OSError):
        pass


def _stop(proc: subprocess.Popen | None, name: str, timeout: float = 30.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _say(f"[yellow]{name} did not stop in {timeout:.0f} s; killing it[/]")
        proc.kill()
        proc.wait()


class ChildExited(RuntimeError):
    """A process of the demo stopped by itself."""


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: the demo stops as on Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


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


async def _show_texts(log: Path) -> None:
    """Print the texts the fleet's drivers receive (their terminals log them to the
    simulator's log): the desk's messages reaching the trucks, among the alerts."""
    from .jt808.terminal import DISPLAY_LOG

    marker = f" {DISPLAY_LOG}: "
    await _show_lines(log, lambda line: line.split(marker, 1)[1] if marker in line else None,
                      "bold cyan")


UPPER_SHOWN = ("inspection ", "supervision order ", "answer to ", " not answered within ")
"""What the national platform's log says that the demo shows: its questions and orders
going down, and the answers coming back with the time they took."""


def _upper_line(line: str) -> str | None:
    """The national platform's line worth showing, without the logger's prefix."""
    _, sep, said = line.partition("yrd_hazmat.uplink.simulator: ")
    if sep and any(said.startswith(m) or (m.startswith(" ") and m in said) for m in UPPER_SHOWN):
        return f"national platform: {said}"
    return None


def _platform_line(line: str) -> str | None:
    """The enterprise platform's answers to the gateway's requests."""
    _, sep, said = line.partition("yrd_hazmat.jt809.drive: ")
    if sep and said.startswith("answered "):
        return f"enterprise platform 809: {said}"
    return None


def _uplink_line(line: str) -> str | None:
    """The uplink passing a request of the national platform on to the desk."""
    _, sep, said = line.partition("yrd_hazmat.uplink.process: ")
    if sep and said.startswith("upper platform's "):
        return f"uplink: {said.rstrip()} -> the desk's 'Links' view"
    return None


async def _show_lines(log: Path, pick, style: str) -> None:
    """Print what ``pick`` makes of each new line of ``log`` (None: nothing)."""
    from rich.markup import escape

    with log.open(encoding="utf-8", errors="replace") as lines:
        lines.seek(0, os.SEEK_END)
        pending = ""
        while True:
            pending += lines.readline()
            if not pending.endswith("\n"):  # nothing new, or a line still being written
                await asyncio.sleep(0.5)
                continue
            shown = pick(pending)
            if shown is not None:
                _show(f"[{style}]{escape(shown.rstrip())}[/]")
            pending = ""


def _sink_line(line: str) -> str | None:
    """A notice the demo's duty room received from the notifier."""
    if line.startswith("[/"):
        return f"notified {line.rstrip()}"
    return None


def _redirect_output(log: Path) -> None:
    """Point stdout and stderr (ours and future children's) at ``log``: the terminal or
    pipe is gone. What was still buffered for it goes there first, in order."""
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def _install_stop_handlers(logs: Path) -> None:
    def on_signal(signum: int, _frame) -> None:
        if signum == signal.SIGHUP:
            _redirect_output(logs / "demo.log")
        raise Stopped(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)


def _shield_clean_up() -> None:
    """No signal interrupts the clean-up (each of its steps has a timeout): neither a second
    Ctrl-C nor SIGPIPE from a closed output (ignored, a write there fails with EPIPE)."""
    for signum in (signal.SIGINT, signal.SIGPIPE, *STOP_SIGNALS):
        signal.signal(signum, signal.SIG_IGN)


DEMO_USERS = {"sh-demo": "SH", "js-demo": "JS", "zj-demo": "ZJ", "ah-demo": "AH",
              "region-demo": "region", "carrier-demo": "carrier"}
DEMO_PASSWORD = "demo"
DEMO_CARRIER = "YRD simulated carrier"
"""The desk's demo users: a supervisor per province, the region's administrator, and the
simulated fleet's carrier (a demo, not a secret)."""


def _demo_users(state: Path) -> Path:
    """The demo's desk users file, in the demo's state directory (written again when its
    users changed: an older demo's file lacks some)."""
    from .desk.users import hash_password

    path = state / "desk-users.json"
    names = set(json.loads(path.read_text("utf-8")).get("demo_users", [])) if path.exists() else set()
    if names != set(DEMO_USERS):
        state.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"users": [
            {"name": name, "jurisdiction": where, "password": hash_password(DEMO_PASSWORD),
             **({"carrier": DEMO_CARRIER} if where == "carrier" else {}),
             **({"role": "supervisor"} if where not in ("region", "carrier") else {})}
            for name, where in DEMO_USERS.items()], "demo_users": sorted(DEMO_USERS)}),
            encoding="utf-8")
    return path


PLATFORM_TRUCKS = 6
ACCIDENT_EVERY_S = 600
"""A truck of the fleet collides 90 s into every 10 minutes (an emergency on screen), in
Shanghai, Jiangsu, Zhejiang and Anhui in turn: each province's desk sees one."""


def _first_plate(vehicles: int) -> str:
    """The plate of the simulated fleet's first truck (as ``simulate`` builds the fleet)."""
    from .simulator import Fleet

    return Fleet(vehicles, speeders=0.25, seed=7).trucks[0].vehicle_id


DEMO_LINK = {"YRD_JT809_USER_ID": "7001", "YRD_JT809_PASSWORD": "demo8090",
             "YRD_JT809_ACCESS_CODE": "30010001", "YRD_JT809_M1": "30000000",
             "YRD_JT809_IA1": "20000000", "YRD_JT809_IC1": "10000000"}
"""The demo's JT/T 809 link (only where not set): a demo, not a secret."""

DEMO_UPLINK = {"YRD_UPLINK_HOST": "127.0.0.1", "YRD_UPLINK_PORT": "7809",
               "YRD_UPLINK_USER_ID": "8001", "YRD_UPLINK_PASSWORD": "demo8091",
               "YRD_UPLINK_ACCESS_CODE": "31000000", "YRD_UPLINK_DOWN_HOST": "127.0.0.1",
               "YRD_UPLINK_DOWN_PORT": "7810"}
"""The demo's uplink to its simulated national platform (only where not set): a demo, not
a secret. The national platform listens on YRD_UPLINK_PORT; our slave-link server, which
it connects to, on YRD_UPLINK_DOWN_PORT."""

FIRST_INSPECTION_S = 60
INSPECT_EVERY_S = 300
ORDER_EVERY_S = 420
"""The national platform's first inspection a minute after the start (so a demo user sees
one), then one every 5 minutes; a supervision order about an alarm every 7 minutes."""
PLATFORM_ANSWER_AFTER_S = 20
"""The enterprise platform answers the gateway's inspections after 20 s (orders 30 s,
texts 5 s, photos 10 s)."""


SINK_PORT = 8810
DEMO_SINK_SECRET = "demo-sink-secret"
"""The demo's duty room: a webhook receiver (``yrd-hazmat notify sink``) on this port, the
subscriptions signed with this secret (a demo, not a secret)."""


def _demo_subscriptions() -> list:
    """The demo's duty rooms: the region's (critical alerts, a digest beyond 5 a minute)
    and the supervisors' (escalations past a deadline)."""
    from .notify.channels import Webhook
    from .notify.subscriptions import Subscription

    def hook(path: str) -> Webhook:
        return Webhook(url=f"http://127.0.0.1:{SINK_PORT}/{path}", secret=DEMO_SINK_SECRET)
    return [Subscription(subscription_id="demo-duty-room", name="演示值班室 (demo duty room)",
                         severities=["critical"], max_messages=5, window_s=60,
                         channel=hook("duty-room")),
            Subscription(subscription_id="demo-supervisors", name="演示督办 (demo supervisors)",
                         events=["escalated"], channel=hook("supervisors"))]


async def _subscribe(settings) -> None:
    from .notify.subscriptions import encode
    from .produce import publish

    await publish(settings, settings.topic_subscriptions,
                  [(s.subscription_id, encode(s)) for s in _demo_subscriptions()])


def run_demo(repo: Path, *, vehicles: int, interval: float, keep_services: bool) -> None:
    """Bring everything up, stream alerts until Ctrl-C, SIGTERM or SIGHUP, then stop it all."""
    from .console import AlertFilter, follow_alerts
    from .topics import ensure_topics

    get_settings()  # an invalid setting stops the demo before it starts anything
    logs = state_dir(repo) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    console.after_close = logs / "demo.log"
    _install_stop_handlers(logs)
    started_services = "KAFKA_BOOTSTRAP" not in os.environ or "REDIS_URL" not in os.environ
    env = dict(os.environ)
    worker = gateway = fleet = platform = desk = upper = uplink = archiver = None
    notifier = sink = None
    failed = False
    started = time.monotonic()
    try:
        _show("[bold]Starting Kafka (KRaft) and Redis...[/]")
        os.environ.update(services(repo, env, "up"))
        os.environ.setdefault("YRD_ZONES_FILE", str(files("yrd_hazmat.data") / "zones.geojson"))
        for name, value in DEMO_LINK.items():  # the demo's enterprise platform (JT/T 809)
            os.environ.setdefault(name, value)
        for name, value in DEMO_UPLINK.items():  # the demo's national platform (JT/T 809)
            os.environ.setdefault(name, value)
        os.environ.setdefault("YRD_DESK_USERS", str(_demo_users(state_dir(repo))))
        if "YRD_ARCHIVE_DIR" not in os.environ and "YRD_ARCHIVE_S3_URL" not in os.environ:
            archive = state_dir(repo) / "archive"
            if started_services:  # new topics: an archive of the last demo's would not fit
                shutil.rmtree(archive, ignore_errors=True)
            os.environ["YRD_ARCHIVE_DIR"] = str(archive)
        os.environ.setdefault("YRD_RESOURCES_FILE", str(files("yrd_hazmat.data") / "resources.json"))
        os.environ.setdefault("YRD_NOTIFY_SINK_SECRET", DEMO_SINK_SECRET)
        env = dict(os.environ)  # every process's: the desk loads the worker's zones and resources
        settings = load_settings()
        asyncio.run(ensure_topics(settings))
        asyncio.run(_subscribe(settings))
        env.setdefault("YRD_NOTIFY_DESK_URL", f"http://127.0.0.1:{settings.desk_port}")

        cli = [sys.executable, "-m", "yrd_hazmat.cli"]
        worker = _spawn([*cli, "worker"], env, logs / "worker.log")
        gateway = _spawn([*cli, "gateway"], env, logs / "gateway.log")
        fleet = _spawn([*cli, "simulate", "--vehicles", str(vehicles), "--interval", str(interval),
                        "--protocol", "jt808", "--accident-every", str(ACCIDENT_EVERY_S)],
                       env, logs / "simulator.log")
        platform = _spawn([*cli, "simulate", "--vehicles", str(PLATFORM_TRUCKS), "--interval",
                           str(interval), "--protocol", "jt809", "--seed", "809",
                           "--answer-after", str(PLATFORM_ANSWER_AFTER_S)],
                          env, logs / "platform.log")
        desk = _spawn([*cli, "desk"], env, logs / "desk.log")
        upper = _spawn([*cli, "simulate-upper", "--first-inspection", str(FIRST_INSPECTION_S),
                        "--inspect-every", str(INSPECT_EVERY_S), "--order-every",
                        str(ORDER_EVERY_S)], env, logs / "upper.log")
        uplink = _spawn([*cli, "uplink"], env, logs / "uplink.log")
        archiver = _spawn([*cli, "archive", "run"], env, logs / "archive.log")
        sink = _spawn([*cli, "notify", "sink", "--port", str(SINK_PORT)], env, logs / "sink.log")
        notifier = _spawn([*cli, "notify", "run"], env, logs / "notifier.log")
        redis_url = env["REDIS_URL"]
        redis_cli = "redis-cli -u " + (redis_url if mask_url(redis_url) == redis_url else '"$REDIS_URL"')
        _show(
            f"worker pid {worker.pid} (log {logs / 'worker.log'}), JT/T 808 gateway pid "
            f"{gateway.pid} on port {settings.jt808_port} (log {logs / 'gateway.log'}), "
            f"fleet of {vehicles} trucks, pid {fleet.pid}, each a simulated terminal "
            f"(log {logs / 'simulator.log'}); an enterprise platform with {PLATFORM_TRUCKS} "
            f"more trucks on the JT/T 809 link (port {settings.jt809_port}), pid {platform.pid} "
            f"(log {logs / 'platform.log'})\n"
            f"police desk pid {desk.pid}: http://127.0.0.1:{settings.desk_port}/ "
            f"(users {', '.join(DEMO_USERS)}, password '{DEMO_PASSWORD}'; log {logs / 'desk.log'})\n"
            f"national platform (simulated) pid {upper.pid} on port {settings.uplink_port} "
            f"(log {logs / 'upper.log'}) and the uplink pid {uplink.pid}, logged in to it as "
            f"lower platform {settings.uplink_access_code}, its slave-link server on port "
            f"{settings.uplink_down_port} (log {logs / 'uplink.log'}): positions and alerts go "
            f"up; an inspection comes down in {FIRST_INSPECTION_S} s, then every "
            f"{INSPECT_EVERY_S // 60} min, and supervision orders about alarms: they land on "
            f"{settings.topic_uplink_requests} and appear on the desk (view 'Links' / "
            "平台链路, user region-demo) to be answered there\n"
            f"ask the enterprise platform: yrd-hazmat platform {settings.jt809_access_code} "
            "inspect --question \"...\" --wait 60 (it answers in "
            f"{PLATFORM_ANSWER_AFTER_S} s)\n"
            f"metrics: http://127.0.0.1:{settings.metrics_port}/metrics   "
            f"read model: {redis_cli} hgetall {settings.redis_prefix}:vehicle:<plate>\n"
            f"zones: {env['YRD_ZONES_FILE']} (illustrative)\n"
            f"archive pid {archiver.pid}: every ping, alert and incident as Parquet by day in "
            f"{env.get('YRD_ARCHIVE_DIR') or env.get('YRD_ARCHIVE_S3_URL')} (log "
            f"{logs / 'archive.log'}); a track: yrd-hazmat track {_first_plate(vehicles)} "
            "--from <time> --to <time> --format geojson\n"
            f"notifier pid {notifier.pid} (log {logs / 'notifier.log'}): critical alerts and "
            f"escalations to the demo's duty room, a webhook on port {SINK_PORT} (pid "
            f"{sink.pid}, log {logs / 'sink.log'}; shown below); yrd-hazmat notify "
            "subscriptions / deliveries\n"
            f"message a driver: yrd-hazmat command {_first_plate(vehicles)} text \"...\" --tts "
            "(or from a truck's panel on the desk); what drivers receive shows below\n"
            "[bold]Alerts (speeding needs 30 s over the limit before it fires). Ctrl-C to stop.[/]"
        )
        feed = follow_alerts(settings.kafka_options(), settings.topic_alerts, AlertFilter(),
                             emit=partial(_show, soft_wrap=True))  # one line an alert
        asyncio.run(_until_one_ends(feed, _show_texts(logs / "simulator.log"),
                                    _show_lines(logs / "upper.log", _upper_line, "bold magenta"),
                                    _show_lines(logs / "uplink.log", _uplink_line,
                                                "bold magenta"),
                                    _show_lines(logs / "platform.log", _platform_line,
                                                "magenta"),
                                    _show_lines(logs / "sink.log", _sink_line, "bold cyan"),
                                    _watch({"worker": worker, "gateway": gateway,
                                            "simulator": fleet, "platform": platform,
                                            "desk": desk, "national platform": upper,
                                            "uplink": uplink, "archive": archiver,
                                            "notifier": notifier, "sink": sink})))
    except Stopped as stop:
        _say(f"\n[bold]{signal.Signals(stop.signum).name} received.[/]")
    except KeyboardInterrupt:
        pass
    except OutputClosed:
        _say("[bold]The output is closed (its reader is gone).[/]")
    except ChildExited as exc:
        _say(f"[bold red]{exc}; see its log in {logs}[/]")
    except subprocess.CalledProcessError:
        _say("[bold red]the services did not start (see above)[/]")
        failed = True
    finally:
        _shield_clean_up()
        _say(f"\n[bold]Stopping after {time.monotonic() - started:.0f} s...[/]")
        _stop(fleet, "simulator")
        _stop(platform, "platform")
        _stop(uplink, "uplink")  # logs out of the national platform, which is still there
        _stop(archiver, "archive")  # a last flush
        _stop(notifier, "notifier")
        _stop(sink, "sink")
        _stop(upper, "national platform")
        _stop(desk, "desk")
        _stop(gateway, "gateway")
        _stop(worker, "worker")
        if started_services and not keep_services:  # each demo starts from a clean slate
            try:
                services(repo, env, "down", "--wipe")
            except subprocess.CalledProcessError as exc:
                _say(f"[bold red]stopping the services failed (exit {exc.returncode})[/]")
        _say("[bold]Stopped.[/]")
    if failed:
        raise SystemExit(1)
