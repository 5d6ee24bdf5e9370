#!/usr/bin/env python3
"""Start and stop the local Kafka and Redis that YRD Hazmat needs, without Docker.

    eval "$(python deploy/local/services.py up)"    # start (or reuse), export the addresses
    python deploy/local/services.py status
    python deploy/local/services.py down [--wipe]

Kafka is a single-node KRaft broker (broker and controller in one JVM) whose
jars Maven fetches through deploy/kafka/pom.xml; Redis is Debian's
``redis-server``, installed with apt-get when it is missing and we are root.
If ``KAFKA_BOOTSTRAP`` or ``REDIS_URL`` is already set, that service is taken
as given and not started (unless it is the address this script itself serves
and nothing answers there, e.g. after ``down`` in a shell that ran ``eval``).
Files live in the state dir (default ``.local/``); the Kafka jars are cached
in ``.local/kafka-lib`` for every state dir.

Only the standard library is used, so any python3 >= 3.11 can run this before
the project's own dependencies are installed.  Progress goes to stderr; ``up``
prints only the ``export`` lines on stdout.  Tests load it by path and call
:func:`up` and :func:`down`::

    spec = importlib.util.spec_from_file_location("services", path)
    services = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(services)
    os.environ.update(services.up())
"""

import argparse
import base64
import contextlib
import fcntl
import functools
import os
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
DEFAULT_STATE_DIR = REPO_ROOT / ".local"
# The broker's jars, shared by all state dirs and kept by ``down --wipe``.
KAFKA_LIB_DIR = DEFAULT_STATE_DIR / "kafka-lib"
DEFAULT_KAFKA_PORT = 19092
DEFAULT_REDIS_PORT = 16379
HOST = "127.0.0.1"

KAFKA_JVM_OPTS = [
    "-Xms128m",
    "-Xmx512m",
    # C1 only: halves the broker's start time, ample speed for development.
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
]

# Kafka logs to stdout, which goes to <state-dir>/kafka.log.
KAFKA_LOG4J2 = """\
status = warn
# Kafka logs its own shutdown; log4j2 must not stop before it.
shutdownHook = disable
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
"""


class ServiceError(RuntimeError):
    """A service could not be started, reached or stopped."""


@dataclass(frozen=True)
class Service:
    """What ``up``, ``down`` and ``status`` need to know about one service."""

    name: str
    env_var: str  # when set in the environment, the service is external
    address: str  # the value exported as env_var
    pid_file: Path
    log_file: Path
    process_marker: str  # a word in the command line of the service's process
    is_ready: Callable[[], bool]
    start_timeout_s: float
    stop_timeout_s: float


@dataclass(frozen=True)
class Config:
    """Where the services keep their files and which ports they listen on."""

    state_dir: Path
    kafka_port: int
    redis_port: int

    @property
    def controller_port(self) -> int:
        """The KRaft controller listens right above the broker port."""
        return self.kafka_port + 1

    @property
    def kafka(self) -> Service:
        return Service(
            name="Kafka",
            env_var="KAFKA_BOOTSTRAP",
            address=f"{HOST}:{self.kafka_port}",
            pid_file=self.state_dir / "kafka.pid",
            log_file=self.state_dir / "kafka.log",
            process_marker="kafka.Kafka",
            is_ready=functools.partial(kafka_ready, HOST, self.kafka_port),
            start_timeout_s=120,
            stop_timeout_s=30,
        )

    @property
    def redis(self) -> Service:
        return Service(
            name="Redis",
            env_var="REDIS_URL",
            address=f"redis://{HOST}:{self.redis_port}/0",
            pid_file=self.state_dir / "redis.pid",
            log_file=self.state_dir / "redis.log",
            process_marker="redis-server",
            is_ready=functools.partial(redis_ready, HOST, self.redis_port),
            start_timeout_s=20,
            stop_timeout_s=10,
        )

    @property
    def kafka_data_dir(self) -> Path:
        return self.state_dir / "kafka-data"

    @property
    def kafka_properties(self) -> Path:
        return self.state_dir / "server.properties"

    @property
    def kafka_log4j2(self) -> Path:
        return self.state_dir / "log4j2.properties"

    @property
    def redis_dir(self) -> Path:
        return self.state_dir / "redis-data"


def make_config(
    state_dir: str | os.PathLike[str] | None = None,
    kafka_port: int | None = None,
    redis_port: int | None = None,
) -> Config:
    """Fill unset values from ``YRD_KAFKA_PORT`` / ``YRD_REDIS_PORT`` and the defaults."""
    return Config(
        state_dir=Path(state_dir).resolve() if state_dir else DEFAULT_STATE_DIR,
        kafka_port=kafka_port or int(os.environ.get("YRD_KAFKA_PORT", DEFAULT_KAFKA_PORT)),
        redis_port=redis_port or int(os.environ.get("YRD_REDIS_PORT", DEFAULT_REDIS_PORT)),
    )


def say(message: str) -> None:
    """Progress message on stderr (stdout is reserved for the export lines)."""
    print(f"[services] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def up(
    state_dir: str | os.PathLike[str] | None = None,
    kafka_port: int | None = None,
    redis_port: int | None = None,
) -> dict[str, str]:
    """Start Kafka and Redis (or reuse running ones) and return their addresses.

    The result maps ``KAFKA_BOOTSTRAP`` and ``REDIS_URL`` to addresses, ready for
    ``os.environ.update``.  A service whose variable is already set in the
    environment is used as given and not started (see :func:`external_address`).
    """
    cfg = make_config(state_dir, kafka_port, redis_port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(cfg.state_dir / ".lock"):
        return {
            cfg.kafka.env_var: use_external(cfg.kafka) or start_kafka(cfg),
            cfg.redis.env_var: use_external(cfg.redis) or start_redis(cfg),
        }


def down(state_dir: str | os.PathLike[str] | None = None, wipe: bool = False) -> None:
    """Stop the services this script started; with ``wipe`` also delete their data.

    Only processes recorded in the state dir's pid files are stopped, so
    services given by the environment are left alone.  A wipe keeps the
    Kafka jar cache (KAFKA_LIB_DIR) and any other files in the state dir.
    """
    cfg = make_config(state_dir)
    if not cfg.state_dir.is_dir():
        say(f"nothing to stop: {cfg.state_dir} does not exist")
        return
    with file_lock(cfg.state_dir / ".lock"):
        stop_service(cfg.kafka)
        stop_service(cfg.redis)
        if wipe:
            wipe_state(cfg)


def status(
    state_dir: str | os.PathLike[str] | None = None,
    kafka_port: int | None = None,
    redis_port: int | None = None,
) -> dict[str, str]:
    """One line per service: external, running (and answering or not) or stopped."""
    cfg = make_config(state_dir, kafka_port, redis_port)
    return {service.name: describe(service) for service in (cfg.kafka, cfg.redis)}


# --------------------------------------------------------------------------
# Kafka
# --------------------------------------------------------------------------


def start_kafka(cfg: Config) -> str:
    """Reuse the running broker or start one; return its bootstrap address."""
    service = cfg.kafka
    pid = live_pid(service)
    if pid:
        same = cfg.kafka_properties.read_text() == kafka_server_properties(cfg)
        require_same_settings(service, cfg, same)
        say(f"Kafka already running (pid {pid}), reusing it")
    else:
        require_free_ports(cfg.kafka_port, cfg.controller_port)
        lib_dir = fetch_kafka_jars()
        write_kafka_config(cfg)
        format_kafka_storage(cfg, lib_dir)
        say(f"starting Kafka on {service.address}, log in {service.log_file}")
        command = kafka_command(cfg, lib_dir, "kafka.Kafka", str(cfg.kafka_properties))
        pid = spawn_detached(command, service.log_file)
        service.pid_file.write_text(f"{pid}\n")
    try:
        wait_until_ready(service, is_alive=lambda: process_alive(pid, service.process_marker))
    except ServiceError:
        stop_process(pid, service)  # leave no half-started broker behind
        raise
    return service.address


def kafka_version() -> str:
    """The Kafka version pinned in deploy/kafka/pom.xml."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = ET.parse(KAFKA_POM).find("m:properties/m:kafka.version", ns)
    if version is None or not version.text:
        raise ServiceError(f"no <kafka.version> property in {KAFKA_POM}")
    return version.text.strip()


def fetch_kafka_jars() -> Path:
    """Copy the broker jars into KAFKA_LIB_DIR with Maven, unless already there.

    A marker file holding the Kafka version tells that the copy is complete
    and current; Maven's local repository (~/.m2) caches the downloads.
    """
    version = kafka_version()
    marker = KAFKA_LIB_DIR / ".kafka-version"
    KAFKA_LIB_DIR.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(KAFKA_LIB_DIR.parent / ".kafka-lib.lock"):
        if marker.is_file() and marker.read_text().strip() == version:
            return KAFKA_LIB_DIR
        mvn = shutil.which("mvn")
        if not mvn:
            raise ServiceError(
                "Maven (mvn) is needed to fetch the Kafka jars: apt-get install maven"
            )
        say(f"fetching the Kafka {version} jars with Maven into {KAFKA_LIB_DIR}")
        shutil.rmtree(KAFKA_LIB_DIR, ignore_errors=True)
        run_quietly(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(KAFKA_POM),
                f"-Dkafka.lib.dir={KAFKA_LIB_DIR}",
                "package",
            ],
            what="Maven could not fetch the Kafka jars",
        )
        marker.write_text(f"{version}\n")
    return KAFKA_LIB_DIR


def kafka_server_properties(cfg: Config) -> str:
    """server.properties of a single-node KRaft broker+controller tuned for development."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        # A static single-voter quorum keeps working when the ports change
        # between runs (a dynamic quorum stores the controller's endpoint).
        "controller.quorum.voters": f"1@{HOST}:{cfg.controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{cfg.kafka_port},CONTROLLER://{HOST}:{cfg.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{cfg.kafka_port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(cfg.kafka_data_dir),
        "num.partitions": "4",
        "auto.create.topics.enable": "true",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Fast start on a small machine: no rebalance delay, few internal
        # partitions to create and load, quick unfencing, fewer threads.
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.num.partitions": "4",
        "broker.heartbeat.interval.ms": "500",
        "num.network.threads": "2",
        "num.io.threads": "4",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def write_kafka_config(cfg: Config) -> None:
    """Write server.properties and the log4j2 configuration into the state dir."""
    cfg.kafka_properties.write_text(kafka_server_properties(cfg))
    cfg.kafka_log4j2.write_text(KAFKA_LOG4J2)


def kafka_command(cfg: Config, lib_dir: Path, main_class: str, *args: str) -> list[str]:
    """A ``java`` command line running ``main_class`` from the Kafka jars."""
    return [
        java_executable(),
        *KAFKA_JVM_OPTS,
        f"-Dlog4j2.configurationFile={cfg.kafka_log4j2}",
        "-cp",
        f"{lib_dir}/*",
        main_class,
        *args,
    ]


def java_executable() -> str:
    """``$JAVA_HOME/bin/java`` if JAVA_HOME is set, else ``java`` from PATH."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home, "bin", "java")) if java_home else shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        raise ServiceError(
            "Java 17+ is needed to run Kafka: apt-get install openjdk-17-jre-headless"
        )
    return java


def format_kafka_storage(cfg: Config, lib_dir: Path) -> None:
    """Format the KRaft log dir with a new cluster id, unless it is formatted already."""
    if (cfg.kafka_data_dir / "meta.properties").is_file():
        return
    cluster_id = new_cluster_id()
    say(f"formatting Kafka storage in {cfg.kafka_data_dir} (cluster id {cluster_id})")
    run_quietly(
        kafka_command(
            cfg,
            lib_dir,
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            cluster_id,
            "--config",
            str(cfg.kafka_properties),
        ),
        what="formatting the Kafka storage failed",
    )


def new_cluster_id() -> str:
    """A random cluster id as Kafka makes them: a UUID in URL-safe base64 without padding."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):  # Kafka avoids ids that look like options
            return cluster_id


def kafka_ready(host: str, port: int) -> bool:
    """True when the broker answers a Metadata request and lists itself as alive.

    A listed broker is registered and unfenced, so clients can create topics
    and produce right away.
    """
    api_key, api_version, correlation_id = 3, 4, 1  # Metadata v4, request header v1
    client_id = b"yrd-services"
    request = struct.pack(">hhih", api_key, api_version, correlation_id, len(client_id))
    request += client_id
    request += struct.pack(">ib", 0, 0)  # no topics, no auto-creation
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            (size,) = struct.unpack(">i", recv_exactly(sock, 4))
            response = recv_exactly(sock, size)
        got_id, _throttle_ms, broker_count = struct.unpack_from(">iii", response)
    except (OSError, struct.error):
        return False
    return bool(got_id == correlation_id and broker_count > 0)


# --------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------


def start_redis(cfg: Config) -> str:
    """Reuse the running Redis or start one; return its URL."""
    service = cfg.redis
    pid = live_pid(service)
    if pid:
        # Redis shows its address in its process title.
        require_same_settings(service, cfg, process_alive(pid, f"{HOST}:{cfg.redis_port}"))
        say(f"Redis already running (pid {pid}), reusing it")
    else:
        require_free_ports(cfg.redis_port)
        cfg.redis_dir.mkdir(exist_ok=True)
        say(f"starting Redis on {HOST}:{cfg.redis_port}, log in {service.log_file}")
        options = {
            "port": str(cfg.redis_port),
            "bind": HOST,
            "save": "",  # no snapshots: the data is disposable
            "appendonly": "no",
            "daemonize": "yes",  # Redis detaches itself and writes its own pid file
            "pidfile": str(service.pid_file),
            "logfile": str(service.log_file),
            "dir": str(cfg.redis_dir),
        }
        arguments = [arg for key, value in options.items() for arg in (f"--{key}", value)]
        run_quietly([redis_server_executable(), *arguments], what="redis-server did not start")
    wait_until_ready(service)
    return service.address


def redis_server_executable() -> str:
    """``redis-server`` from PATH, installed from Debian's packages if missing."""
    server = shutil.which("redis-server")
    if server:
        return server
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ServiceError("redis-server is not installed (Debian: apt-get install redis-server)")
    say("redis-server not found, installing it with apt-get")
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run_quietly(["apt-get", "update", "-q"], what="apt-get update failed", env=apt_env)
    run_quietly(
        ["apt-get", "install", "-y", "-q", "redis-server"],
        what="apt-get install redis-server failed",
        env=apt_env,
    )
    server = shutil.which("redis-server")
    if not server:
        raise ServiceError("redis-server is still not on PATH after installing it")
    return server


def redis_ready(host: str, port: int) -> bool:
    """True when Redis answers PING with PONG."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return recv_exactly(sock, 7) == b"+PONG\r\n"
    except OSError:
        return False


# --------------------------------------------------------------------------
# Processes, ports and files
# --------------------------------------------------------------------------


def external_address(service: Service) -> str | None:
    """The service's address if the environment provides one.

    A variable holding this script's own address (exported by an earlier
    ``up``) counts only while something answers there, so ``up`` after
    ``down`` in a shell that evaluated ``up`` starts the service again.
    """
    address = os.environ.get(service.env_var)
    if not address or (address == service.address and not service.is_ready()):
        return None
    return address


def use_external(service: Service) -> str | None:
    """Like :func:`external_address`, telling when the service is not started here."""
    address = external_address(service)
    if address:
        say(f"{service.env_var} is set: using {address}, not starting {service.name}")
    return address


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` while the block runs.

    It serializes ``up`` and ``down`` on one state dir (parallel test workers)
    and the Maven fetch into the shared jar cache.
    """
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def spawn_detached(command: list[str], log_file: Path) -> int:
    """Start ``command`` in the background, output to ``log_file``; return its pid.

    A throwaway ``sh`` starts the command and exits at once, so the service is
    adopted by init: it outlives us and never lingers as our zombie child.
    """
    launcher = 'log=$1; shift; "$@" >"$log" 2>&1 </dev/null & echo $!'
    result = subprocess.run(
        ["sh", "-c", launcher, "sh", str(log_file), *command],
        stdout=subprocess.PIPE,
        check=True,
        text=True,
        start_new_session=True,
    )
    return int(result.stdout)


def run_quietly(command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    """Run a setup command; show its output only if it fails."""
    result = subprocess.run(
        command,
        check=False,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    if result.returncode != 0:
        raise ServiceError(f"{what} (exit {result.returncode}):\n{result.stdout[-4000:]}")


def require_same_settings(service: Service, cfg: Config, same: bool) -> None:
    """Refuse to reuse a running service that was started with other settings (ports)."""
    if not same:
        raise ServiceError(
            f"{service.name} already runs from {cfg.state_dir} with other settings; "
            "run `down` first, or use another --state-dir"
        )


def require_free_ports(*ports: int) -> None:
    """Fail clearly if a process that is not ours already listens on a port."""
    for port in ports:
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                raise ServiceError(
                    f"port {port} on {HOST} is taken by another process; stop it, or choose "
                    "other ports (--kafka-port/--redis-port, YRD_KAFKA_PORT/YRD_REDIS_PORT), "
                    "or point KAFKA_BOOTSTRAP/REDIS_URL at running services"
                )


def wait_until_ready(service: Service, is_alive: Callable[[], bool] = lambda: True) -> None:
    """Poll until the service answers; raise with its log's tail on exit or timeout."""
    deadline = time.monotonic() + service.start_timeout_s
    while not service.is_ready():
        if not is_alive():
            problem = "exited during startup"
        elif time.monotonic() > deadline:
            problem = f"did not answer within {service.start_timeout_s:.0f} s"
        else:
            time.sleep(0.25)
            continue
        raise ServiceError(
            f"{service.name} {problem}; end of {service.log_file}:\n{tail(service.log_file)}"
        )
    say(f"{service.name} is ready at {service.address}")


def live_pid(service: Service) -> int | None:
    """The pid in the service's pid file, if that process is alive."""
    try:
        pid = int(service.pid_file.read_text())
    except (OSError, ValueError):
        return None
    return pid if process_alive(pid, service.process_marker) else None


def process_alive(pid: int, marker: str) -> bool:
    """True while ``pid`` runs a program whose command line contains ``marker``.

    Checking the command line guards against a reused pid and against
    zombies, whose command line is empty.
    """
    try:
        return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def stop_service(service: Service) -> None:
    """Stop the service recorded in its pid file, if it runs, and remove the file."""
    pid = live_pid(service)
    if pid:
        say(f"stopping {service.name} (pid {pid})")
        stop_process(pid, service)
    else:
        say(f"{service.name} is not running")
    service.pid_file.unlink(missing_ok=True)


def stop_process(pid: int, service: Service) -> None:
    """SIGTERM ``pid``, give it the service's stop timeout to exit cleanly, then SIGKILL it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + service.stop_timeout_s
    while process_alive(pid, service.process_marker):
        if time.monotonic() > deadline:
            say(f"{service.name} ignored SIGTERM for {service.stop_timeout_s:.0f} s, killing it")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.2)


def wipe_state(cfg: Config) -> None:
    """Delete the services' data, logs and configuration; nothing else in the state dir."""
    say(f"wiping the services' data in {cfg.state_dir}")
    for directory in (cfg.kafka_data_dir, cfg.redis_dir):
        shutil.rmtree(directory, ignore_errors=True)
    for file in (cfg.kafka_properties, cfg.kafka_log4j2, cfg.kafka.log_file, cfg.redis.log_file):
        file.unlink(missing_ok=True)


def describe(service: Service) -> str:
    """One status line for a service."""
    pid = live_pid(service)
    if pid:
        answering = "answering" if service.is_ready() else "NOT answering"
        return f"running, pid {pid}, {service.address}, {answering}"
    external = external_address(service)
    return f"external ({service.env_var}={external})" if external else "stopped"


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Read exactly ``size`` bytes or raise ConnectionError."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed early")
        data += chunk
    return data


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, or a note that it is missing."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} is missing)"


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse ``up`` / ``status`` / ``down`` and their options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("up", "start (or reuse) the services and print export lines"),
        ("status", "show what runs"),
        ("down", "stop the services this script started"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--state-dir", help=f"default: {DEFAULT_STATE_DIR}")
        if name == "down":
            command.add_argument(
                "--wipe",
                action="store_true",
                help="also delete the services' data (keeps the jar cache)",
            )
        else:
            command.add_argument(
                "--kafka-port", type=int, help=f"default: $YRD_KAFKA_PORT or {DEFAULT_KAFKA_PORT}"
            )
            command.add_argument(
                "--redis-port", type=int, help=f"default: $YRD_REDIS_PORT or {DEFAULT_REDIS_PORT}"
            )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors become a message on stderr and exit status 1."""
    args = parse_args(argv)
    try:
        if args.command == "up":
            env = up(args.state_dir, args.kafka_port, args.redis_port)
            for key, value in env.items():
                print(f"export {key}={shlex.quote(value)}")
        elif args.command == "down":
            down(args.state_dir, wipe=args.wipe)
        else:
            for name, line in status(args.state_dir, args.kafka_port, args.redis_port).items():
                print(f"{name}: {line}")
    except ServiceError as error:
        say(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
