"""JT/T 809 benchmark: positions/s through one lower platform's link, and up the uplink.

``python -m benchmarks.platforms [--positions N] [--duration S] [--cpus C]``: starts Kafka
(or uses ``KAFKA_BOOTSTRAP`` and ``REDIS_URL``), then, each measured process on CPU ``C``
(default: the last core; the benchmark itself, Kafka and Redis it starts on the others):

1. **link**: ``yrd-hazmat gateway`` as its own process, upper platform to one lower
   platform configured on the run's ``yrd.platforms``. A raw sender in this process logs
   in (0x1001) and writes prebuilt frames, 0x1202 real-time positions and a share of 0x1203
   re-sent batches of 5, as fast as the gateway takes them (at most a window of positions
   ahead of what has landed, so the TCP buffers do not hide the rate) for ``--duration``
   s. Positions/s landed on the pings topic (its end offsets, polled every 50 ms) and the
   gateway's CPU, beside two ceilings on the same CPU: a raw aiokafka producer sending the
   same pings (acks=all, idempotent, linger 5 ms, as the gateway), pipelined, and the same
   producer with one frame's records in flight at a time (each frame awaited before the
   next: how the gateway handled a link's frames before 541da09, now a floor). Nothing lost: the topic ends up holding
   exactly the positions sent, and no dead letter.
2. **uplink**: ``yrd-hazmat uplink`` as its own process (its own group, from the earliest
   offset) against a fast upper platform in a child process of this one (login 0x1002,
   link tests answered 0x1006, every position counted by (plate, GNSS time), no object per
   position). N accepted pings of V trucks (valid fixes, every 5 s of event time, the last a
   minute before the run) go up in two modes: *live* (the uplink logged in on an empty
   topic, then the N pings produced as fast as possible: 0x1202 frames) and *backlog* (the
   N pings already on the topic when it logs in: the re-send after an outage, 0x1203
   packets of at most 5 per truck). Positions/s from the first received to the N-th
   distinct one, the uplink's CPU, beside the ceiling: a raw aiokafka consumer reading the
   same N records on the same CPU (``getmany(max_records=1000)`` as the uplink), and the
   uplink's own per-record work alone (decode, check, frame; no I/O) for attribution.
   The requirement: the uplink keeps up with the worker, >= 10,000 pings/s. Nothing lost:
   every ping produced is received at least once.

Exit status 1 only when a position is lost (or a phase could not run: 2), never for speed.
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import json
import multiprocessing
import os
import platform as platform_module
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.pipeline.kafka import confluent, end_offsets, produce_all
from benchmarks.pipeline.services import free_port, load_services, local_services

REPO = Path(__file__).resolve().parent.parent
PARTITIONS = 4
REQUIRED = 10_000
"""pings/s the uplink must keep up with: the worker's drain target (issue #9)."""
ACCESS_CODE, USER_ID, PASSWORD = 31_000_001, 7001, "bench809"
"""The lower platform of phase 1 (and our access code towards the upper one in phase 2)."""
UPPER_USER, UPPER_PASSWORD, UPPER_CENTER = 88, "up809", 3100
WARM_S = 2.0
"""Phase 1: seconds of sending before the clock starts (login, first batches)."""


def say(message: str) -> None:
    print(message, flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def busy_share(then: tuple[int, int]) -> float:
    busy, total = (a - b for a, b in zip(machine_busy(), then))
    return busy / total if total else float("nan")


# --------------------------------------------------------------------------
# Frames, built and read fast
# --------------------------------------------------------------------------
#
# The benchmark's own sender and upper platform must not be what is measured. The
# project's ``yrd_hazmat.jt809.frame.crc16`` is a bit-by-bit Python loop (about 1 µs per
# byte); ``binascii.crc_hqx(data, 0xFFFF)`` is the same CRC-16/CCITT-FALSE in C, checked
# against it below. Only the 2011 header edition, unencrypted.

HEADER_2011 = struct.Struct(">IIHI3sBI")
GNSS_2011 = struct.Struct(">BBBHBBBIIHHIHHII")
ENVELOPE = struct.Struct(">21sBHI")


def escape(data: bytes) -> bytes:
    return (data.replace(b"\x5a", b"\x5a\x02").replace(b"\x5b", b"\x5a\x01")
            .replace(b"\x5e", b"\x5e\x02").replace(b"\x5d", b"\x5e\x01"))


def unescape(data: bytes) -> bytes:
    if b"\x5a" not in data and b"\x5e" not in data:
        return data
    return (data.replace(b"\x5a\x01", b"\x5b").replace(b"\x5e\x01", b"\x5d")
            .replace(b"\x5a\x02", b"\x5a").replace(b"\x5e\x02", b"\x5e"))


def frame(msg_id: int, serial: int, center: int, body: bytes) -> bytes:
    """A 2011 frame, unencrypted, as ``yrd_hazmat.jt809.frame.build`` makes it."""
    data = HEADER_2011.pack(HEADER_2011.size + len(body) + 4, serial, msg_id, center,
                            b"\x01\x00\x00", 0, 0) + body
    return b"\x5b" + escape(data + struct.pack(">H", binascii.crc_hqx(data, 0xFFFF))) + b"\x5d"


def plate_field(plate: str) -> bytes:
    return plate.encode("gbk").ljust(21, b"\x00")


def gnss(ts: datetime, lat: float, lon: float, speed: int, heading: int = 90) -> bytes:
    """GNSS_DATA 2011 (36 bytes) of a valid fix (STATE 0b11: ACC on, fixed)."""
    return GNSS_2011.pack(0, ts.day, ts.month, ts.year, ts.hour, ts.minute, ts.second,
                          round(lon * 1e6), round(lat * 1e6), speed, speed, 1000, heading, 10,
                          0b11, 0)


def position_key(plate: str, ts: datetime) -> bytes:
    """How the upper platform keys a position: VEHICLE_NO and the GNSS date and time."""
    return plate_field(plate) + GNSS_2011.pack(0, ts.day, ts.month, ts.year, ts.hour,
                                               ts.minute, ts.second, 0, 0, 0, 0, 0, 0, 0, 0,
                                               0)[1:8]


def check_framing() -> None:
    """The fast frames are the project's frames, byte for byte."""
    from yrd_hazmat.jt809 import exchange
    from yrd_hazmat.jt809.frame import build, crc16, parse
    from yrd_hazmat.jt809.platform import fix

    from yrd_hazmat.core.timeutil import CHINA_TZ
    ts = datetime(2026, 12, 7, 9, 30, 5, tzinfo=CHINA_TZ)
    body = exchange.write("沪A12345", 2, exchange.REAL_LOCATION,
                          exchange.write_location(fix(ts, 31.2, 121.5, 60.0, heading=90,
                                                      mileage_km=1000)))
    mine = ENVELOPE.pack(plate_field("沪A12345"), 2, 0x1202, 36) + gnss(ts, 31.2, 121.5, 60)
    assert mine == body, "GNSS_DATA differs from the project's"
    assert frame(0x1200, 7, ACCESS_CODE, body) == build(0x1200, 7, ACCESS_CODE, body)
    sample = bytes(range(256)) * 2
    assert binascii.crc_hqx(sample, 0xFFFF) == crc16(sample)
    assert parse(frame(0x1200, 7, ACCESS_CODE, body)[1:-1]).body == body
    noisy = bytes([0x5a, 0x5b, 0x5d, 0x5e, 0x5a, 0x01, 0x5e, 0x02, 0x5a, 0x02])
    assert unescape(escape(noisy)) == noisy


# --------------------------------------------------------------------------
# Run names and child processes
# --------------------------------------------------------------------------


def run_env(tag: str, addresses: dict[str, str]) -> dict[str, str]:
    """The caller's environment with every topic of the contract named for this run."""
    from yrd_hazmat.config import Settings

    env = dict(os.environ) | addresses | {"YRD_APP_ID": f"yrd-{tag}",
                                          "YRD_TOPIC_PARTITIONS": str(PARTITIONS),
                                          "YRD_REDIS_PREFIX": tag}
    for name, field in Settings.model_fields.items():
        if name.startswith("topic_") and name not in ("topic_partitions", "topic_replication"):
            env[f"YRD_{name.upper()}"] = f"{tag}.{field.default}"
    return env


class Child:
    """A process of the project (``python -m yrd_hazmat.cli ...``) on the measured CPUs,
    in its own session, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path,
                 cpus: str | None) -> None:
        self.name, self.log = name, log
        command = [sys.executable, *argv]
        if cpus:
            command = ["taskset", "-c", cpus, *command]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait(10)
        except ProcessLookupError:
            pass

    def tail(self, lines: int = 25) -> str:
        text = self.log.read_text("utf-8", "replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def pinned_helper(args: list[str], cpus: str | None, timeout: float) -> dict:
    """A ceiling measured in a child of this module on the measured CPUs (JSON out)."""
    command = [sys.executable, "-m", "benchmarks.platforms", "_helper", *args]
    if cpus:
        command = ["taskset", "-c", cpus, *command]
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"helper {args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


PROFILERS: list[subprocess.Popen] = []


def py_spy(pid: int, seconds: float, path: Path) -> None:
    """``py-spy record`` of a measured process, in the background (nothing when py-spy is
    not installed next to this python)."""
    exe = Path(sys.executable).parent / "py-spy"
    if exe.exists():
        PROFILERS.append(subprocess.Popen(
            [str(exe), "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "100", "-f",
             "raw", "--nonblocking", "-o", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


# --------------------------------------------------------------------------
# Phase 1: one lower platform's link into the gateway
# --------------------------------------------------------------------------


class LinkFleet:
    """The lower platform's trucks, in turn: a 0x1202 of one position, or, for a
    ``share`` of all positions, a 0x1203 of 5 kept positions of one truck. A truck's live
    fixes are one second apart from six hours ago, its kept ones from twelve hours ago, so
    every (plate, time) is distinct."""

    def __init__(self, vehicles: int, history_share: float, base: datetime) -> None:
        self.plates = [f"苏E{i:05d}" for i in range(vehicles)]
        self.fields = [plate_field(p) for p in self.plates]
        self.live_base = base - timedelta(hours=6)
        self.kept_base = base - timedelta(hours=12)
        self.share = history_share
        self.live = [0] * vehicles
        self.kept = [0] * vehicles
        self.next_vehicle = 0
        self.positions = 0
        self.in_history = 0
        self.serial = 1

    def fixes(self, k: int, v: int, base: datetime) -> tuple[datetime, float, float]:
        return base + timedelta(seconds=k), 30.5 + (v % 1000) * 1e-3, 119.5 + k * 1e-4

    def next_frames(self, count: int) -> tuple[list[bytes], int, list[tuple]]:
        """``count`` frames, the positions in them, and those positions
        (plate, ts, lat, lon, blind) for the ceilings."""
        frames, positions = [], []
        for _ in range(count):
            v = self.next_vehicle
            self.next_vehicle = (v + 1) % len(self.plates)
            history = self.share > 0 and (self.in_history + 5) <= self.share * (self.positions + 5)
            if history:
                k0 = self.kept[v]
                self.kept[v] += 5
                fixes = [self.fixes(k0 + i, v, self.kept_base) for i in range(5)]
                data = bytes([5]) + b"".join(gnss(ts, lat, lon, 60) for ts, lat, lon in fixes)
                sub = 0x1203
                self.in_history += 5
            else:
                k = self.live[v]
                self.live[v] += 1
                fixes = [self.fixes(k, v, self.live_base)]
                ts, lat, lon = fixes[0]
                data = gnss(ts, lat, lon, 60)
                sub = 0x1202
            body = ENVELOPE.pack(self.fields[v], 2, sub, len(data)) + data
            frames.append(frame(0x1200, self.serial, ACCESS_CODE, body))
            self.serial += 1
            self.positions += len(fixes)
            positions += [(self.plates[v], ts, lat, lon, sub == 0x1203) for ts, lat, lon in fixes]
        return frames, len(positions), positions


class Landed(threading.Thread):
    """The pings topic's end offsets, summed, every 50 ms: (monotonic time, positions)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        ck = confluent()
        self.consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-ends"})
        self.tps = [ck.TopicPartition(topic, p) for p in range(PARTITIONS)]
        self.samples: list[tuple[float, int]] = [(time.monotonic(), 0)]
        self.halt = threading.Event()

    @property
    def now(self) -> int:
        return self.samples[-1][1]

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                total = sum(self.consumer.get_watermark_offsets(tp, timeout=5)[1]
                            for tp in self.tps)
            except Exception:  # noqa: BLE001 - a slow answer: try again
                time.sleep(0.05)
                continue
            self.samples.append((time.monotonic(), total))
            self.halt.wait(0.05)
        self.consumer.close()

    def at(self, when: float) -> tuple[float, int]:
        """The last sample at or before ``when``."""
        best = self.samples[0]
        for sample in self.samples:
            if sample[0] > when:
                break
            best = sample
        return best

    def rate(self, seconds: float = 1.0) -> float:
        t1, n1 = self.samples[-1]
        t0, n0 = self.at(t1 - seconds)
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


async def link_phase(opts: argparse.Namespace, addresses: dict[str, str], run_dir: Path,
                     result: dict) -> None:
    from yrd_hazmat.core.timeutil import CHINA_TZ
    from yrd_hazmat.gateway.platforms import platform_record
    from yrd_hazmat.jt809 import links as lk
    from yrd_hazmat.jt809.platform import SimulatedPlatform

    tag = f"bpl{uuid.uuid4().hex[:8]}"
    env = run_env(tag, addresses)
    port, metrics_port = free_port(), free_port()
    env |= {"YRD_JT809_LISTEN": "true", "YRD_JT809_PORT": str(port),
            "YRD_JT808_PORT": str(free_port()), "YRD_GATEWAY_HOST": "127.0.0.1",
            "YRD_GATEWAY_METRICS_PORT": str(metrics_port), "YRD_LOG_LEVEL": "WARNING"}
    bootstrap = addresses["KAFKA_BOOTSTRAP"]
    pings_topic = env["YRD_TOPIC_PINGS"]
    gateway = Child("gateway", ["-m", "yrd_hazmat.cli", "gateway"], env,
                    run_dir / "gateway.log", opts.cpus)
    landed: Landed | None = None
    sender = SimulatedPlatform(USER_ID, PASSWORD, ACCESS_CODE, timeout_s=10)
    try:
        # the platform on the run's yrd.platforms, once the gateway made its topics
        deadline = time.monotonic() + 120
        while True:
            try:
                await sender.connect("127.0.0.1", port)
                break
            except OSError:
                if time.monotonic() > deadline or not gateway.alive():
                    raise RuntimeError("the gateway did not start:\n" + gateway.tail())
                await asyncio.sleep(0.5)
        producer = confluent().Producer({"bootstrap.servers": bootstrap})
        key, value = platform_record(access_code=ACCESS_CODE, name="bench platform",
                                     user_id=USER_ID, password=PASSWORD, edition=2011)
        producer.produce(env["YRD_TOPIC_PLATFORMS"], value=value, key=key)
        producer.flush(30)
        await asyncio.sleep(1.0)  # the gateway follows the topic
        while True:
            try:
                answer = await sender.login()
            except (ConnectionError, asyncio.TimeoutError) as exc:
                answer = repr(exc)
            if answer == lk.OK:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"login refused ({answer}):\n" + gateway.tail())
            await sender.close()
            await asyncio.sleep(2.0)
            await sender.connect("127.0.0.1", port)
        say(f"  link: the platform logged in (2011, unencrypted, {opts.platform_vehicles:,} "
            f"trucks, {opts.history_share:.0%} of positions in 0x1203 batches of 5)")

        landed = Landed(bootstrap, pings_topic)
        landed.start()
        fleet = LinkFleet(opts.platform_vehicles, opts.history_share,
                          datetime.now(CHINA_TZ).replace(microsecond=0))
        writer = sender._writer
        assert writer is not None
        loop = asyncio.get_running_loop()
        sent, frames_sent, waited = 0, 0, 0.0
        started = loop.time()
        mono0 = time.monotonic()
        clock_at = mono0 + WARM_S
        stop_at = clock_at + opts.duration
        cpu_marks: dict[str, float] = {}
        proc0 = time.process_time()
        if opts.profile:
            py_spy(gateway.pid, WARM_S + opts.duration, opts.profile / "gateway.txt")
        while time.monotonic() < stop_at:
            now = time.monotonic()
            if "start" not in cpu_marks and now >= clock_at:
                cpu_marks["start"], cpu_marks["start_t"] = gateway.cpu(), now
                busy0 = machine_busy()
            window = max(2_000, 2 * landed.rate())
            if sent - landed.now > window:
                t = time.monotonic()
                await asyncio.sleep(0.005)
                waited += time.monotonic() - t
                continue
            chunk, count, _ = fleet.next_frames(100)
            writer.write(b"".join(chunk))
            t = time.monotonic()
            await writer.drain()
            waited += time.monotonic() - t
            sent += count
            frames_sent += len(chunk)
        cpu_marks["end"], cpu_marks["end_t"] = gateway.cpu(), time.monotonic()
        cores_busy = busy_share(busy0)
        sending_s = loop.time() - started
        sender_cpu = (time.process_time() - proc0) / sending_s
        # the rest lands; then nothing may be missing
        wait_until = time.monotonic() + 60 + sent / max(landed.rate(3.0), 100)
        while landed.now < sent and time.monotonic() < wait_until and gateway.alive():
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        t0, n0 = landed.at(cpu_marks["start_t"])
        t1, n1 = landed.at(cpu_marks["end_t"])
        rate = (n1 - n0) / (t1 - t0)
        on_topic = sum(end_offsets(bootstrap, pings_topic, PARTITIONS).values())
        dead = sum(end_offsets(bootstrap, env["YRD_TOPIC_DEADLETTER"], PARTITIONS).values())
        result.update({
            "positions_per_s": rate, "frames_per_s": rate * frames_sent / max(sent, 1),
            "gateway_cpu": (cpu_marks["end"] - cpu_marks["start"]) / (cpu_marks["end_t"]
                                                                       - cpu_marks["start_t"]),
            "sent": sent, "frames": frames_sent, "on_topic": on_topic, "dead_letters": dead,
            "lost": max(0, sent - on_topic), "sender_cpu": sender_cpu,
            "sender_waiting": waited / sending_s, "cores_busy": cores_busy,
            "seconds": t1 - t0,
        })
        say(f"  link: {rate:,.0f} positions/s ({result['frames_per_s']:,.0f} frames/s) landed "
            f"on the pings topic over {t1 - t0:.1f} s; gateway CPU "
            f"{result['gateway_cpu']:.0%} of a core; the sender {sender_cpu:.0%} busy, "
            f"{result['sender_waiting']:.0%} of its time waiting for the gateway; all cores "
            f"{cores_busy:.0%} busy")
        say(f"  link: nothing lost: {on_topic:,} pings on the topic for {sent:,} positions sent "
            f"({'equal' if on_topic == sent else 'DIFFERENT'}), {dead} dead letters")
        await sender.close()
    finally:
        if landed is not None:
            landed.halt.set()
        gateway.stop()

    # the ceilings, on the gateway's CPU, after it stopped
    ceiling = pinned_helper(["produce", "--bootstrap", bootstrap, "--topic", f"{tag}.ceiling",
                             "--n", str(opts.ceiling_pings), "--share", str(opts.history_share),
                             "--vehicles", str(opts.platform_vehicles)], opts.cpus, 300)
    result["ceiling"] = ceiling
    say(f"  link ceiling: raw aiokafka producer, the same pings (acks=all, idempotent, "
        f"linger 5 ms), {ceiling['n']:,} pings: {ceiling['pipelined']:,.0f} pings/s at "
        f"{ceiling['pipelined_cpu']:.0%} CPU; one frame in flight at a time (each awaited, "
        f"how the gateway handled a link before 541da09): {ceiling['serial']:,.0f} pings/s "
        f"({ceiling['serial_frames']:,.0f} frames/s)")


# --------------------------------------------------------------------------
# Phase 2: the uplink, against a fast upper platform
# --------------------------------------------------------------------------


class Counter809:
    """The upper platform's side of JT/T 809 main links, counting what comes up: answers
    logins (0x1002, result 0), link tests (0x1006) and logouts (0x1004); counts 0x1202
    and every position of a 0x1203 by VEHICLE_NO and GNSS time, as bytes."""

    def __init__(self) -> None:
        self.serial = 0
        self.reset(0)
        self.logins = 0

    def reset(self, target: int) -> None:
        self.target = target
        self.keys: set[bytes] = set()
        self.live = self.resent = self.packets = self.frames = 0
        self.linktests = self.alarms = self.bad_crc = 0
        self.first_at: float | None = None
        self.reached_at: float | None = None
        self.last_at: float | None = None

    def stats(self) -> dict:
        return {"distinct": len(self.keys), "live": self.live, "resent": self.resent,
                "packets": self.packets, "frames": self.frames, "linktests": self.linktests,
                "alarms": self.alarms, "bad_crc": self.bad_crc, "logins": self.logins,
                "first_at": self.first_at, "reached_at": self.reached_at,
                "last_at": self.last_at}

    def answer(self, msg_id: int, center: int, body: bytes = b"") -> bytes:
        self.serial += 1
        return frame(msg_id, self.serial, center, body)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = b""
        keys = self.keys
        try:
            while True:
                data = await reader.read(262_144)
                if not data:
                    return
                buf += data
                start = 0
                out = []
                while True:
                    head = buf.find(b"\x5b", start)
                    if head < 0:
                        start = len(buf)
                        break
                    tail = buf.find(b"\x5d", head)
                    if tail < 0:
                        start = head
                        break
                    start = tail + 1
                    raw = unescape(buf[head + 1:tail])
                    if binascii.crc_hqx(raw[:-2], 0xFFFF) != (raw[-2] << 8 | raw[-1]):
                        self.bad_crc += 1
                        continue
                    self.frames += 1
                    msg_id = raw[8] << 8 | raw[9]
                    if msg_id == 0x1200:
                        sub = raw[44] << 8 | raw[45]
                        plate = raw[22:43]
                        now = time.time()
                        if self.first_at is None:
                            self.first_at = now
                        self.last_at = now
                        keys = self.keys
                        if sub == 0x1202:
                            keys.add(plate + raw[51:58])
                            self.live += 1
                        elif sub == 0x1203:
                            count = raw[50]
                            for i in range(count):
                                at = 51 + 36 * i
                                keys.add(plate + raw[at + 1:at + 8])
                            self.resent += count
                            self.packets += 1
                        if self.reached_at is None and self.target and len(keys) >= self.target:
                            self.reached_at = now
                    elif msg_id == 0x1005:
                        self.linktests += 1
                        out.append(self.answer(0x1006, _center(raw)))
                    elif msg_id == 0x1001:
                        self.logins += 1
                        out.append(self.answer(0x1002, _center(raw), struct.pack(">BI", 0, 4242)))
                    elif msg_id == 0x1003:
                        out.append(self.answer(0x1004, _center(raw)))
                    elif msg_id == 0x1400:
                        self.alarms += 1
                buf = buf[start:]
                if out:
                    writer.write(b"".join(out))
        except (ConnectionError, OSError):
            return
        finally:
            writer.close()


def _center(raw: bytes) -> int:
    return struct.unpack_from(">I", raw, 10)[0]


def upper_process(conn: Any) -> None:
    """The fast upper platform, in a child process: commands on ``conn``."""
    counter = Counter809()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port: list[int] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)

        async def start() -> None:
            server = await asyncio.start_server(counter.serve, "127.0.0.1", 0)
            port.append(server.sockets[0].getsockname()[1])
            ready.set()
        loop.run_until_complete(start())
        loop.run_forever()

    threading.Thread(target=serve, daemon=True).start()
    ready.wait(30)
    conn.send(port[0])
    async def call(fn: Any, *args: Any) -> Any:  # on the server's loop, between frames
        return fn(*args)

    def in_loop(fn: Any, *args: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(call(fn, *args), loop).result(30)

    while True:
        command, *args = conn.recv()
        if command == "reset":
            conn.send(in_loop(counter.reset, args[0]))
        elif command == "stats":
            conn.send(in_loop(counter.stats))
        elif command == "keys":
            conn.send(in_loop(lambda: set(counter.keys)))
        elif command == "stop":
            conn.send("bye")
            return


class Upper:
    """The parent's handle of :func:`upper_process`."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=upper_process, args=(child,), daemon=True)
        self.proc.start()
        if not self.conn.poll(60):
            raise RuntimeError("the upper platform did not start")
        self.port: int = self.conn.recv()
        self.lock = threading.Lock()

    def ask(self, *command: Any) -> Any:
        with self.lock:
            self.conn.send(command)
            return self.conn.recv()

    def stop(self) -> None:
        try:
            self.ask("stop")
        except (OSError, EOFError):
            pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


def uplink_fleet(n: int, vehicles: int, base: datetime, seed_lon: float = 120.0):
    """N accepted pings of V trucks: every 5 s of event time, the last a minute before
    ``base``; keys are the plates. Yields (plate, ts, lat, lon)."""
    per = -(-n // vehicles)
    first = base - timedelta(minutes=1) - timedelta(seconds=5 * (per - 1))
    count = 0
    for k in range(per):
        ts = first + timedelta(seconds=5 * k)
        for v in range(vehicles):
            if count == n:
                return
            lon = seed_lon + (v // 500) * 0.05 + k * 1e-3
            yield f"沪D{v:05d}", ts, 30.8 + (v % 500) * 1e-3, lon
            count += 1


def fleet_records(n: int, vehicles: int, base: datetime) -> tuple[list[tuple[bytes, bytes]],
                                                                  set[bytes]]:
    from yrd_hazmat.core.codec import encode
    from yrd_hazmat.core.models import Ping

    records, keys = [], set()
    for plate, ts, lat, lon in uplink_fleet(n, vehicles, base):
        ping = Ping(vehicle_id=plate, ts=ts, lat=lat, lon=lon, speed_kmh=64.0, heading=90,
                    status_flags=0b11, altitude_m=12, mileage_km=1234.0)
        records.append((plate.encode(), encode(ping)))
        keys.add(position_key(plate, ts))
    return records, keys


def uplink_env(tag: str, addresses: dict[str, str], port: int) -> dict[str, str]:
    return run_env(tag, addresses) | {
        "YRD_UPLINK_HOST": "127.0.0.1", "YRD_UPLINK_PORT": str(port),
        "YRD_UPLINK_USER_ID": str(UPPER_USER), "YRD_UPLINK_PASSWORD": UPPER_PASSWORD,
        "YRD_UPLINK_ACCESS_CODE": str(UPPER_CENTER), "YRD_UPLINK_EDITION": "2011",
        "YRD_UPLINK_DOWN_PORT": "0", "YRD_UPLINK_GROUP": f"{tag}-uplink",
        "YRD_UPLINK_START": "earliest", "YRD_UPLINK_METRICS_PORT": str(free_port()),
        "YRD_LOG_LEVEL": "INFO",
    }


def create_topic(bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        future.result(60)


def uplink_phase(mode: str, opts: argparse.Namespace, addresses: dict[str, str],
                 run_dir: Path, upper: Upper, result: dict) -> None:
    """One mode, ``live`` or ``backlog``: the uplink's rate for N pings, nothing lost."""
    from yrd_hazmat.core.timeutil import CHINA_TZ

    bootstrap = addresses["KAFKA_BOOTSTRAP"]
    tag = f"bup{mode[0]}{uuid.uuid4().hex[:8]}"
    env = uplink_env(tag, addresses, upper.port)
    topic = env["YRD_TOPIC_PINGS"]
    create_topic(bootstrap, topic)
    records, expected = fleet_records(opts.positions, opts.vehicles,
                                      datetime.now(CHINA_TZ).replace(microsecond=0))
    n = len(records)
    upper.ask("reset", len(expected))
    produced: dict = {}
    if mode == "backlog":
        produced = produce_all(bootstrap, topic, records, timeout=300)
        result["topic"] = topic
    logins_before = upper.ask("stats")["logins"]
    name = f"uplink-{mode}"
    uplink = Child(name, ["-m", "yrd_hazmat.cli", "uplink"], env, run_dir / f"{name}.log",
                   opts.cpus)
    mode_label = mode
    try:
        deadline = time.monotonic() + 120
        while upper.ask("stats")["logins"] <= logins_before:
            if time.monotonic() > deadline or not uplink.alive():
                raise RuntimeError(f"the uplink did not log in:\n{uplink.tail()}")
            time.sleep(0.1)
        if mode == "live":
            time.sleep(1.0)  # past its first re-send (of nothing): what comes now is live
            producing = threading.Thread(
                target=lambda: produced.update(produce_all(bootstrap, topic, records, 300)),
                daemon=True)
            producing.start()
        if opts.profile:
            py_spy(uplink.pid, min(30, n / 5_000 + 5), opts.profile / f"{name}.txt")
        cpu_first: tuple[float, float] | None = None
        cpu_last: tuple[float, float] | None = None
        busy0 = machine_busy()
        progress, progress_at = -1, time.monotonic()
        while True:
            stats = upper.ask("stats")
            now = time.monotonic()
            if stats["first_at"] is not None and cpu_first is None:
                cpu_first = (uplink.cpu(), now)
                upper_cpu0 = cpu_seconds(upper.proc.pid)
            if stats["reached_at"] is not None:
                cpu_last = (uplink.cpu(), now)
                upper_cpu1 = cpu_seconds(upper.proc.pid)
                break
            if stats["distinct"] != progress:
                progress, progress_at = stats["distinct"], now
            elif now - progress_at > opts.stall:
                break  # stuck: what is missing is reported below
            if not uplink.alive():
                break
            time.sleep(0.1)
        cores_busy = busy_share(busy0)
        time.sleep(0.5)
        stats = upper.ask("stats")
        got = upper.ask("keys")
    finally:
        uplink.stop()
    missing = len(expected - got)
    received = stats["live"] + stats["resent"]
    out = {"n": n, "received": received, "distinct": stats["distinct"], "missing": missing,
           "duplicates": received - stats["distinct"], "live": stats["live"],
           "resent": stats["resent"], "packets": stats["packets"],
           "per_packet": stats["resent"] / stats["packets"] if stats["packets"] else 0.0,
           "linktests": stats["linktests"], "bad_crc": stats["bad_crc"],
           "cores_busy": cores_busy, "produced_per_s": produced.get("rate")}
    if stats["reached_at"] is not None and stats["first_at"] is not None:
        seconds = stats["reached_at"] - stats["first_at"]
        out |= {"seconds": seconds, "positions_per_s": n / seconds if seconds > 0 else None}
        if cpu_first is not None and cpu_last is not None and cpu_last[1] > cpu_first[1]:
            out["uplink_cpu"] = (cpu_last[0] - cpu_first[0]) / (cpu_last[1] - cpu_first[1])
            out["upper_cpu"] = (upper_cpu1 - upper_cpu0) / (cpu_last[1] - cpu_first[1])
    result.update(out)
    rate = out.get("positions_per_s")
    kind = "0x1202 frames" if mode == "live" else \
        f"0x1203 packets, {out['per_packet']:.2f} positions each"
    if rate:
        say(f"  uplink {mode_label}: {n:,} positions up in {out['seconds']:.1f} s: {rate:,.0f} "
            f"positions/s ({kind}); uplink CPU {out.get('uplink_cpu', float('nan')):.0%}"
            + (f"; produced at {out['produced_per_s']:,.0f} pings/s" if mode == "live" else "")
            + f"; the upper platform (receiving) {out.get('upper_cpu', float('nan')):.0%}; "
            f"all cores {cores_busy:.0%} busy")
        if mode == "live" and out["produced_per_s"] and out["produced_per_s"] < 1.2 * rate:
            say("  uplink live: NOTE the pings were produced barely faster than they went up: "
                "the figure may be the producer's, not the uplink's")
    else:
        say(f"  uplink {mode_label}: did NOT receive all {n:,} (distinct {stats['distinct']:,}, "
            f"stalled {opts.stall:.0f} s); see {uplink.log}")
    say(f"  uplink {mode_label}: nothing lost: {n - missing:,} of {n:,} pings received at least "
        f"once ({'all' if not missing else f'{missing:,} MISSING'}), {out['duplicates']:,} "
        f"twice, {out['linktests']} link tests answered, {out['bad_crc']} bad CRCs")


# --------------------------------------------------------------------------
# Helpers run pinned in a child: the ceilings
# --------------------------------------------------------------------------


async def helper_produce(bootstrap: str, topic: str, n: int, share: float,
                         vehicles: int) -> dict:
    """A raw aiokafka producer as the gateway's: acks=all, idempotent, linger 5 ms; the
    pings the gateway makes of the same frames. Pipelined, then one frame at a time."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from yrd_hazmat.core.codec import encode
    from yrd_hazmat.core.timeutil import CHINA_TZ
    from yrd_hazmat.gateway.link import fix_ping
    from yrd_hazmat.jt809.platform import fix

    fleet = LinkFleet(vehicles, share, datetime.now(CHINA_TZ).replace(microsecond=0))
    frames: list[list[tuple[bytes, bytes]]] = []
    total = 0
    while total < n:
        chunk, _, positions = fleet.next_frames(1)
        recs = [(plate.encode(), encode(fix_ping(plate, fix(ts, lat, lon, 60.0, heading=90,
                                                               mileage_km=1000), blind)))
                for plate, ts, lat, lon, blind in positions]
        frames.append(recs)
        total += len(recs)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        flat = [r for recs in frames for r in recs]
        cpu0, started = time.process_time(), time.perf_counter()
        futures = [await producer.send(topic, value, key=key) for key, value in flat]
        await asyncio.gather(*futures)
        wall = time.perf_counter() - started
        pipelined, pipelined_cpu = len(flat) / wall, (time.process_time() - cpu0) / wall
        serial_frames, serial_pings = 0, 0
        started = time.perf_counter()
        for recs in frames:
            futures = [await producer.send(topic, value, key=key) for key, value in recs]
            await asyncio.gather(*futures)
            serial_frames += 1
            serial_pings += len(recs)
            if time.perf_counter() - started > 5.0:
                break
        wall = time.perf_counter() - started
    finally:
        await producer.stop()
    return {"n": len(flat), "pipelined": pipelined, "pipelined_cpu": pipelined_cpu,
            "serial": serial_pings / wall, "serial_frames": serial_frames / wall}


async def helper_consume(bootstrap: str, topic: str, n: int) -> dict:
    """A raw aiokafka consumer reading N records as the uplink does (every partition
    assigned, ``getmany(max_records=1000)``), then the uplink's per-record work alone on
    them: decode and check (``accepted``), frames (0x1202 each; 0x1203 per truck)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from yrd_hazmat.uplink.records import accepted
    from yrd_hazmat.uplink.session import LinkConfig, Session

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
                                auto_offset_reset="earliest")
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    kept = []
    try:
        count, first_at = 0, None
        cpu0 = time.process_time()
        while count < n:
            batch = await consumer.getmany(*tps, timeout_ms=1000, max_records=1000)
            for records in batch.values():
                if first_at is None and records:
                    first_at, cpu0 = time.perf_counter(), time.process_time()
                count += len(records)
                kept += records
        wall = time.perf_counter() - first_at
        cpu = time.process_time() - cpu0
    finally:
        await consumer.stop()
    session = Session(LinkConfig(user_id=UPPER_USER, password=UPPER_PASSWORD,
                                 center=UPPER_CENTER))
    now_ms = int(time.time() * 1000)
    started = time.process_time()
    pings = []
    for rec in kept:
        ping = accepted(rec.key, rec.value, rec.timestamp, max_bytes=65_536, tolerance_ms=5_000,
                        now_ms=now_ms)
        if ping is not None:
            pings.append(ping)
    decode_s = time.process_time() - started
    started = time.process_time()
    for ping in pings:
        session.position(ping)
    live_s = time.process_time() - started
    by_plate: dict[str, list] = defaultdict(list)
    for ping in pings:
        by_plate[ping.vehicle_id].append(ping)
    started = time.process_time()
    for plate, mine in by_plate.items():
        session.history(plate, mine)
    history_s = time.process_time() - started
    return {"n": count, "rate": count / wall, "cpu": cpu / wall, "accepted": len(pings),
            "decode_us": decode_s / len(kept) * 1e6, "live_us": live_s / len(pings) * 1e6,
            "history_us": history_s / len(pings) * 1e6,
            "history_per_packet": len(pings) / sum(-(-len(m) // 5) for m in by_plate.values())}


def helper(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("produce", "consume"))
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--share", type=float, default=0.2)
    parser.add_argument("--vehicles", type=int, default=2000)
    a = parser.parse_args(argv)
    if a.what == "produce":
        out = asyncio.run(helper_produce(a.bootstrap, a.topic, a.n, a.share, a.vehicles))
    else:
        out = asyncio.run(helper_consume(a.bootstrap, a.topic, a.n))
    print(json.dumps(out))
    return 0


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


def fmt(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:,.0f}{suffix}"


def summary(results: dict, opts: argparse.Namespace) -> list[str]:
    lines = ["", "| phase | positions/s | ceiling, same run and CPU | x ceiling | CPU | "
                 "nothing lost |", "|---|---:|---|---:|---:|---|"]
    link = results.get("link")
    if link and "positions_per_s" in link:
        c = link.get("ceiling", {})
        lines.append(
            f"| 1 one lower platform's link -> pings topic | {fmt(link['positions_per_s'])} | "
            f"raw producer {fmt(c.get('pipelined'))}; one frame in flight {fmt(c.get('serial'))} "
            f"({link['positions_per_s'] / c['serial']:.2f}x) | "
            f"{link['positions_per_s'] / c['pipelined']:.3f} | {link['gateway_cpu']:.0%} | "
            f"{'yes' if not link['lost'] else 'NO'} ({link['on_topic']:,} of {link['sent']:,}) |"
            if c else f"| 1 link | {fmt(link['positions_per_s'])} | - | - | - | - |")
    raw = results.get("raw_consumer")
    for mode in ("live", "backlog"):
        r = results.get(mode)
        if not r or "n" not in r:
            continue
        rate = r.get("positions_per_s")
        ceiling = raw["rate"] if raw else None
        x = f"{rate / ceiling:.3f}" if rate and ceiling else "-"
        what = "0x1202" if mode == "live" else f"0x1203, {r['per_packet']:.1f}/packet"
        lines.append(
            f"| 2 uplink {mode} ({what}) | {fmt(rate)} | raw consumer {fmt(ceiling)} | {x} | "
            f"{r.get('uplink_cpu', float('nan')):.0%} | "
            f"{'yes' if not r['missing'] else 'NO'} ({r['n'] - r['missing']:,} of {r['n']:,}"
            f", {r['duplicates']:,} twice) |")
    lines.append("")
    for mode in ("live", "backlog"):
        rate = (results.get(mode) or {}).get("positions_per_s")
        if rate:
            verdict = "met" if rate >= REQUIRED else "NOT met"
            lines.append(f"uplink {mode}: needs >= {REQUIRED:,} pings/s (the worker's drain "
                         f"target): {rate:,.0f}: {verdict}")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_helper":
        return helper(argv[1:])
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--positions", type=int, default=100_000,
                        help="N pings the uplink sends up in each mode (default 100,000)")
    parser.add_argument("--vehicles", type=int, default=10_000,
                        help="trucks of the uplink's pings (default 10,000)")
    parser.add_argument("--duration", type=float, default=20.0,
                        help="seconds the lower platform sends, after 2 s of warm-up")
    parser.add_argument("--platform-vehicles", type=int, default=2_000,
                        help="trucks of the lower platform (default 2,000)")
    parser.add_argument("--history-share", type=float, default=0.2,
                        help="share of its positions in 0x1203 batches of 5 (default 0.2)")
    parser.add_argument("--ceiling-pings", type=int, default=50_000)
    parser.add_argument("--cpus", default=str(cores - 1) if cores > 1 else "none",
                        help="taskset CPU list for the gateway, the uplink and the ceilings "
                             "(default: the last core; 'none': unpinned)")
    parser.add_argument("--skip", default="", help="comma list of link, live, backlog")
    parser.add_argument("--stall", type=float, default=30.0,
                        help="an uplink that sends nothing new this long has stalled")
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy record (raw) the gateway and the uplinks into this dir")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--state-dir", type=Path, default=REPO / ".local" / "bench-platforms")
    parser.add_argument("--kafka-port", type=int, default=39092)
    parser.add_argument("--redis-port", type=int, default=36379)
    opts = parser.parse_args(argv)
    opts.cpus = None if opts.cpus in ("none", "") else opts.cpus
    skip = {s.strip() for s in opts.skip.split(",") if s.strip()}
    if opts.cpus:  # the benchmark, its upper platform and the services it starts elsewhere
        measured = {int(c) for part in opts.cpus.split(",") for c in
                    (range(int(part.split("-")[0]), int(part.split("-")[-1]) + 1))}
        others = set(range(cores)) - measured
        if others:
            os.sched_setaffinity(0, others)
    if opts.profile:
        opts.profile.mkdir(parents=True, exist_ok=True)
    check_framing()
    opts.state_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now().astimezone()
    say(f"JT/T 809 platforms benchmark, {started:%Y-%m-%d %H:%M %Z}, "
        f"{platform_module.processor() or platform_module.machine()}, {cores} cores, "
        f"python {platform_module.python_version()}; measured processes on CPU "
        f"{opts.cpus or 'any'}; load {os.getloadavg()[0]:.2f}")
    results: dict[str, Any] = {"started": started.isoformat(), "cpus": opts.cpus,
                               "load_at_start": os.getloadavg()[0]}
    failed = False

    def stop_on_term(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, stop_on_term)
    with local_services(opts, load_services()) as addresses:
        run_dir = opts.state_dir / "runs" / datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir.mkdir(parents=True, exist_ok=True)
        say(f"logs in {run_dir}")
        if "link" not in skip:
            say("phase 1: one lower platform's link into the gateway")
            results["link"] = {}
            try:
                asyncio.run(link_phase(opts, addresses, run_dir, results["link"]))
            except Exception as exc:  # noqa: BLE001 - reported, the other phases run
                say(f"  link: FAILED: {exc}")
                failed = True
        modes = [m for m in ("live", "backlog") if m not in skip]
        if modes:
            say(f"phase 2: the uplink, {opts.positions:,} pings of {opts.vehicles:,} trucks")
            upper = Upper()
            try:
                for mode in modes:
                    results[mode] = {}
                    try:
                        uplink_phase(mode, opts, addresses, run_dir, upper, results[mode])
                    except Exception as exc:  # noqa: BLE001
                        say(f"  uplink {mode}: FAILED: {exc}")
                        failed = True
            finally:
                upper.stop()
            topic = (results.get("backlog") or {}).get("topic")
            if topic:
                raw = pinned_helper(["consume", "--bootstrap", addresses["KAFKA_BOOTSTRAP"],
                                     "--topic", topic, "--n", str(opts.positions)],
                                    opts.cpus, 300)
                results["raw_consumer"] = raw
                say(f"  uplink ceiling: raw aiokafka consumer, the same {raw['n']:,} records: "
                    f"{raw['rate']:,.0f} records/s at {raw['cpu']:.0%} CPU")
                say(f"  the uplink's own work per ping, no I/O: decode and check "
                    f"{raw['decode_us']:.1f} µs, a 0x1202 frame {raw['live_us']:.1f} µs "
                    f"(together {1e6 / (raw['decode_us'] + raw['live_us']):,.0f}/s), 0x1203 "
                    f"packets of {raw['history_per_packet']:.1f} {raw['history_us']:.1f} µs "
                    f"per position (together "
                    f"{1e6 / (raw['decode_us'] + raw['history_us']):,.0f}/s)")
    for profiler in PROFILERS:  # they stop on their own (-d); one whose process left early
        try:
            profiler.wait(60)
        except subprocess.TimeoutExpired:
            profiler.kill()
            profiler.wait(10)
    results["load_at_end"] = os.getloadavg()[0]
    for line in summary(results, opts):
        say(line)
    say(f"load average {results['load_at_start']:.2f} at the start, "
        f"{results['load_at_end']:.2f} at the end")
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2, default=str))
    lost = bool((results.get("link") or {}).get("lost")) or any(
        (results.get(m) or {}).get("missing")
        for m in ("live", "backlog"))
    if lost:
        return 1
    return 2 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
