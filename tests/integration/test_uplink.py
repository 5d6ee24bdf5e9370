"""The uplink end to end: a real broker, the uplink as its own OS process
(``python -m yrd_hazmat.uplink``), the simulated upper platform over TCP.

- pings and alerts produced reach the upper platform live (0x1202, 0x1402);
- the upper platform cut for ~12 s while pings keep coming: every ping of the outage
  arrives exactly once, in 0x1203 packets of at most 5 in GNSS-time order, then live again;
- kill -9 of the uplink mid-stream and a restart: nothing lost; duplicates (the records
  written after the last confirmation) counted and bounded;
- an inspection and a supervision order land on the requests topic with their deadline,
  and a person's answers on the answers topic go up.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.harness import free_port, terminate, wait_until
from tests.integration.harness import Kafka, run_env, scrape
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.models import Alert, AlertState, Command, CommandResult, Ping, Severity
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.jt809 import exchange
from yrd_hazmat.uplink.records import UplinkAnswer, UplinkRequest
from yrd_hazmat.uplink.simulator import SimulatorThread

PLATES = [f"沪A{n:05d}" for n in range(1, 9)]
CONFIRM_S = 0.3
RATE = len(PLATES)  # pings a second (one per truck)
OUTAGE_S = 60


@pytest.fixture()
def edition() -> int:
    return 2011


@pytest.fixture()
def upper(edition):
    sim = SimulatorThread(user_id=77, password="pw809", center=3100, edition=edition)
    sim.start()
    yield sim
    sim.close()


@pytest.fixture()
def env(services, upper, edition):
    run = uuid.uuid4().hex[:8]
    e = run_env(services) | {
        "YRD_UPLINK_HOST": "127.0.0.1", "YRD_UPLINK_PORT": str(upper.platform.port),
        "YRD_UPLINK_USER_ID": "77", "YRD_UPLINK_PASSWORD": "pw809",
        "YRD_UPLINK_ACCESS_CODE": "3100", "YRD_UPLINK_EDITION": str(edition),
        "YRD_UPLINK_DOWN_HOST": "127.0.0.1",
        "YRD_UPLINK_DOWN_PORT": str(free_port()), "YRD_UPLINK_GROUP": f"uplink-{run}",
        "YRD_UPLINK_START": "earliest", "YRD_UPLINK_CONFIRM_S": str(CONFIRM_S),
        "YRD_UPLINK_TIMEOUT_S": "3", "YRD_UPLINK_RETRY_MIN_S": "0.2",
        "YRD_UPLINK_RETRY_MAX_S": "1", "YRD_UPLINK_METRICS_PORT": str(free_port()),
        "YRD_LINK_STATE_HEARTBEAT_S": "0.5",
    }
    admin = AdminClient({"bootstrap.servers": services["KAFKA_BOOTSTRAP"]})
    futures = admin.create_topics([NewTopic(e[name], 4, 1) for name in (
        "YRD_TOPIC_PINGS", "YRD_TOPIC_ALERTS", "YRD_TOPIC_COMMANDS", "YRD_TOPIC_COMMAND_RESULTS",
        "YRD_TOPIC_UPLINK_REQUESTS", "YRD_TOPIC_UPLINK_ANSWERS")])
    for future in futures.values():
        future.result(30)
    return e


class Uplink:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Uplink":
        self.proc = subprocess.Popen([sys.executable, "-m", "yrd_hazmat.uplink"], env=self.env,
                                     stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        return terminate(self.proc, 20)[0]

    def tail(self) -> str:
        return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-40:])


@pytest.fixture()
def uplink(env, tmp_path):
    proc = Uplink(env, tmp_path / "uplink.log")
    yield proc
    if proc.proc is not None:
        proc.stop()


class Pings(threading.Thread):
    """One ping a second per truck, each with its own GNSS second (an hour in the past, so
    no fix is ahead of its arrival); remembers when each was produced."""

    def __init__(self, kafka: Kafka, topic: str) -> None:
        super().__init__(daemon=True)
        self.kafka, self.topic = kafka, topic
        self.base = datetime.now(CHINA_TZ).replace(microsecond=0) - timedelta(hours=1)
        self.sent: list[tuple[str, datetime, float]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        k = 0
        while not self.halt.is_set():
            at = time.monotonic()
            for n, plate in enumerate(PLATES):
                ping = Ping(vehicle_id=plate, ts=self.base + timedelta(seconds=k),
                            lat=31.2 + n / 100, lon=121.4 + k / 10_000, speed_kmh=50.0)
                self.kafka.send(self.topic, plate.encode(), encode(ping))
            self.kafka.flush()
            self.sent += [(plate, self.base + timedelta(seconds=k), time.monotonic())
                          for plate in PLATES]
            k += 1
            self.halt.wait(max(0.0, 1.0 - (time.monotonic() - at)))

    def stop(self) -> None:
        self.halt.set()
        self.join(10)


def received(upper: SimulatorThread) -> Counter:
    return Counter((p.plate, p.ts) for p in upper.positions())


def all_arrived(upper: SimulatorThread, pings: Pings) -> bool:
    got = received(upper)
    return all((plate, ts) in got for plate, ts, _ in pings.sent)


def live_pings(kafka: Kafka, env: dict[str, str], upper: SimulatorThread, uplink: Uplink
               ) -> Pings:
    """The uplink started and logged in, then pings produced (so they go up live)."""
    uplink.start()
    wait_until(lambda: upper.platform.logins >= 1, "login", 60)
    time.sleep(1)  # past the first re-send (of nothing): what comes now goes live
    pings = Pings(kafka, env["YRD_TOPIC_PINGS"])
    pings.start()
    return pings


def test_live_then_cut_then_every_outage_ping_exactly_once(services, env, upper, uplink):
    kafka = Kafka(services["KAFKA_BOOTSTRAP"])
    pings = live_pings(kafka, env, upper, uplink)
    alert = Alert(alert_id="a1:raised", incident_id="a1", type="FATIGUE_DRIVING",
                  severity=Severity.WARNING, state=AlertState.RAISED, vehicle_id=PLATES[0],
                  ts=pings.base, emitted_at=pings.base, lat=31.2, lon=121.4, province="SH")
    kafka.send(env["YRD_TOPIC_ALERTS"], PLATES[0].encode(), encode(alert))
    kafka.flush()
    time.sleep(4)
    live = upper.positions()
    assert live and all(p.sub_type == exchange.REAL_LOCATION for p in live), uplink.tail()
    wait_until(lambda: upper.platform.alarms, "the alarm", 20)
    assert upper.platform.alarms[0][1].warn_type == 0x0002

    upper.cut()
    cut_at = time.monotonic()
    time.sleep(OUTAGE_S)  # the national platform unreachable for a minute
    restore_at = time.monotonic()
    upper.restore()
    wait_until(lambda: upper.platform.logins >= 2, "login after the cut", 30)
    time.sleep(5)
    pings.stop()
    wait_until(lambda: all_arrived(upper, pings), "every ping up", 60)

    got = received(upper)
    # produced while the upper platform was cut off (a second's margin each side)
    outage = [(p, ts) for p, ts, at in pings.sent if cut_at + 1 < at < restore_at - 1]
    assert len(outage) >= (OUTAGE_S - 3) * RATE
    positions = upper.positions()
    kinds = {(p.plate, p.ts): p.sub_type for p in positions}
    for key in outage:
        assert got[key] == 1, key
        assert kinds[key] == exchange.HISTORY_LOCATION, key
    history = [p for p in positions if p.sub_type == exchange.HISTORY_LOCATION]
    assert history and max(p.in_packet for p in history) <= 5
    packets: dict[int, list] = {}
    for p in history:
        packets.setdefault(p.packet, []).append(p)
    for packet in packets.values():
        assert len({p.plate for p in packet}) == 1
        assert [p.ts for p in packet] == sorted(p.ts for p in packet)
    for plate in PLATES:
        mine = [p.ts for p in history if p.plate == plate]
        assert mine == sorted(mine)
    # duplicates: only pings written in the last unconfirmed stretch before the cut
    dups = sum(n - 1 for n in got.values() if n > 1)
    assert dups <= RATE * 3, dups
    # live again after the re-send
    late = [(p, ts) for p, ts, at in pings.sent if at > restore_at + 3]
    assert late and all(kinds[key] == exchange.REAL_LOCATION for key in late)
    print(f"outage pings {len(outage)}, packets {len(packets)}, duplicates {dups}")
    m = scrape(env["YRD_UPLINK_METRICS_PORT"])
    assert m[("yrd_uplink_up", ())] == 1
    assert m[("yrd_uplink_reconnects_total", ())] >= 1
    assert m[("yrd_uplink_drops_total", (("reason", "closed"),))] >= 1
    assert m[("yrd_uplink_positions_total", (("mode", "resent"),))] >= len(outage)
    assert m[("yrd_uplink_positions_total", (("mode", "live"),))] >= len(late)
    assert m[("yrd_uplink_history_packets_total", ())] >= len(packets)
    assert m[("yrd_uplink_alerts_total", (("mode", "live"),))] == 1
    assert uplink.stop() == 0, uplink.tail()


def test_kill_minus_9_loses_nothing(services, env, upper, uplink):
    kafka = Kafka(services["KAFKA_BOOTSTRAP"])
    pings = live_pings(kafka, env, upper, uplink)
    # killed just after a burst was sent up, before a link test could confirm it
    wait_until(lambda: len(pings.sent) >= 5 * RATE, "five bursts", 20)
    wait_until(lambda: len(received(upper)) >= 5 * RATE, "the fifth burst up", 10, 0.02)
    uplink.kill()
    time.sleep(4)
    uplink.start()
    wait_until(lambda: upper.platform.logins >= 2, "login after the restart", 60)
    time.sleep(3)
    pings.stop()
    wait_until(lambda: all_arrived(upper, pings), "every ping up", 60)
    got = received(upper)
    dups = sum(n - 1 for n in got.values() if n > 1)
    # a kill loses the unconfirmed stretch (<= one confirmation interval, plus an answer
    # not yet committed): those arrive twice, nothing else does
    assert dups <= RATE * 3, dups
    print(f"pings {len(pings.sent)}, duplicates after kill -9: {dups}")


@pytest.mark.parametrize("edition", [2011, 2019])
def test_a_photo_taken_while_we_were_down_is_answered_after_the_restart(
        services, env, upper, uplink, edition):
    """The national platform asks a truck's photo (0x9502); the uplink is killed before the
    terminal answers; the picture and the command's result reach Kafka meanwhile; after
    the restart the uplink answers 0x1502 with that very picture, once."""
    import base64

    from yrd_hazmat.core.models import Media
    from yrd_hazmat.jt809 import control

    kafka = Kafka(services["KAFKA_BOOTSTRAP"])
    uplink.start()
    wait_until(lambda: upper.platform.slave_up, "slave link", 60)
    serial = upper.call(upper.platform.send_photo(PLATES[3], lens=2, size=1))
    commands = kafka.read(env["YRD_TOPIC_COMMANDS"], lambda r: len(r) >= 1, 30)
    command = msgspec.convert(commands[0], Command)
    assert (command.kind, command.camera, command.vehicle_id) == ("photo", 2, PLATES[3])
    [request] = kafka.read(env["YRD_TOPIC_UPLINK_REQUESTS"], lambda r: len(r) >= 1, 30)
    assert (request["kind"], request["command_id"]) == ("photo", command.command_id)
    uplink.kill()
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40 + b"\xff\xd9"  # 10 KiB
    now = datetime.now(CHINA_TZ)
    media = Media(media_id=f"{PLATES[3]}:7:x", vehicle_id=PLATES[3], terminal_media_id=7,
                  format="jpeg", channel=2, event=0, received_at=now,
                  data=base64.b64encode(jpeg).decode(), size=len(jpeg),
                  command_id=command.command_id, taken_at=now - timedelta(seconds=5),
                  lat=31.23, lon=121.47)
    kafka.send(env["YRD_TOPIC_MEDIA"], media.media_id.encode(), encode(media))
    kafka.send(env["YRD_TOPIC_COMMAND_RESULTS"], PLATES[3].encode(), encode(CommandResult(
        command_id=command.command_id, vehicle_id=PLATES[3], status="ok", at=now,
        media_id=media.media_id)))
    kafka.flush()
    assert not any(type(a).__name__ == "PhotoAnswer" for a in upper.platform.answers)
    uplink.start()
    wait_until(lambda: any(type(a).__name__ == "PhotoAnswer" for a in upper.platform.answers),
               "the photo's answer up", 60)
    time.sleep(2)
    photos = [a for a in upper.platform.answers if type(a).__name__ == "PhotoAnswer"]
    assert len(photos) == 1, uplink.tail()
    photo = photos[0]
    assert photo.flag == control.TAKEN and photo.photo == jpeg
    assert (photo.lens, photo.size, photo.image_type) == (2, 1, 1)
    assert (photo.fix.lat, photo.fix.lon) == (31.23, 121.47)
    if edition == 2019:
        assert (photo.source_type, photo.source_sn) == (control.TAKE_PHOTO_REQ, serial)
    [answer] = kafka.read(env["YRD_TOPIC_UPLINK_ANSWERS"], lambda r: len(r) >= 1, 30,
                          settle=1.0)
    assert answer["answered_by"] == "terminal" and answer["media"]["media_id"] == media.media_id
    assert uplink.stop() == 0, uplink.tail()


@pytest.mark.parametrize("edition", [2011, 2019])
def test_requests_reach_the_desk_and_answers_go_up(services, env, upper, uplink, edition):
    kafka = Kafka(services["KAFKA_BOOTSTRAP"])
    uplink.start()
    wait_until(lambda: upper.platform.slave_up, "slave link", 60)
    upper.call(upper.platform.send_inspection("请报告值班人员", info_id=9, answer_time=None))
    deadline = datetime.now(CHINA_TZ).replace(microsecond=0) + timedelta(hours=1)
    upper.call(upper.platform.send_order(PLATES[1], deadline, supervision_id=12))
    records = kafka.read(env["YRD_TOPIC_UPLINK_REQUESTS"], lambda r: len(r) >= 2, 30)
    by_kind = {r["kind"]: msgspec.convert(r, UplinkRequest) for r in records}
    inspection = by_kind["inspection"]
    assert inspection.question == "请报告值班人员" and inspection.link == "slave"
    assert inspection.deadline - inspection.received_at == timedelta(seconds=600)
    order = by_kind["supervision"]
    assert order.deadline == deadline
    assert order.supervision_id == (12 if edition == 2011 else None)
    assert order.plate == (PLATES[1] if edition == 2011 else None)  # 2019: no vehicle
    assert not upper.platform.answers  # nothing is answered automatically
    now = datetime.now(CHINA_TZ)
    for answer in (UplinkAnswer(request=inspection, answered_by="desk-sh", answered_at=now,
                                content="值班: 张三"),
                   UplinkAnswer(request=order, answered_by="desk-sh", answered_at=now,
                                result=1),
                   UplinkAnswer(request=inspection, answered_by="desk-region", answered_at=now,
                                content="两张桌同时作答")):  # a second desk at the same moment
        kafka.send(env["YRD_TOPIC_UPLINK_ANSWERS"], answer.request.request_id.encode(),
                   encode(answer))
    kafka.flush()
    wait_until(lambda: len(upper.platform.answers) >= 2, "answers up", 30)
    contents = {type(a).__name__: a for a in upper.platform.answers}
    assert contents["InspectionAnswer"].content == "值班: 张三"
    # a text for a truck: a command for the terminal gateway, answered once it is delivered
    upper.call(upper.platform.send_text(PLATES[2], "请减速", sequence=41))
    commands = kafka.read(env["YRD_TOPIC_COMMANDS"], lambda r: len(r) >= 1, 30)
    command = msgspec.convert(commands[0], Command)
    assert (command.kind, command.text, command.vehicle_id) == ("text", "请减速", PLATES[2])
    result = CommandResult(command_id=command.command_id, vehicle_id=PLATES[2], status="ok",
                           at=datetime.now(CHINA_TZ))
    kafka.send(env["YRD_TOPIC_COMMAND_RESULTS"], PLATES[2].encode(), encode(result))
    kafka.flush()
    wait_until(lambda: len(upper.platform.answers) >= 3, "text answer up", 30)
    text_answer = upper.platform.answers[-1]
    assert [type(a).__name__ for a in upper.platform.answers].count("InspectionAnswer") == 1
    assert type(text_answer).__name__ == "TextAnswer" and text_answer.result == 0
    assert (text_answer.msg_id if edition == 2011 else text_answer.source_sn) == \
        (41 if edition == 2011 else text_answer.source_sn)
    if edition == 2011:
        assert contents["InspectionAnswer"].info_id == 9
        assert contents["SupervisionAnswer"].supervision_id == 12
    else:  # 2019 quotes the request frames' MSG_SN
        assert contents["InspectionAnswer"].source_sn == inspection.serial
        assert contents["SupervisionAnswer"].supervision_id == order.serial
    assert contents["SupervisionAnswer"].result == 1
    assert uplink.stop() == 0, uplink.tail()


def test_unanswered_link_tests_drop_the_link_and_nothing_is_lost(services, env, upper, uplink):
    """An upper platform that stops answering link tests (a hung link) is left after
    YRD_UPLINK_TIMEOUT_S (3 s here); what it was sent meanwhile was never confirmed, so it
    is sent again: duplicates up to that stretch, nothing lost."""
    kafka = Kafka(services["KAFKA_BOOTSTRAP"])
    pings = live_pings(kafka, env, upper, uplink)
    time.sleep(2)
    upper.platform.answer_link_tests = False
    wait_until(lambda: scrape(env["YRD_UPLINK_METRICS_PORT"]).get(
        ("yrd_uplink_drops_total", (("reason", "timeout"),)), 0) >= 1, "timeout drop", 20)
    upper.platform.answer_link_tests = True
    wait_until(lambda: upper.platform.logins >= 2, "login after the drop", 30)
    time.sleep(2)
    pings.stop()
    wait_until(lambda: all_arrived(upper, pings), "every ping up", 60)
    got = received(upper)
    dups = sum(n - 1 for n in got.values() if n > 1)
    assert 0 < dups <= RATE * (3 + 2), dups
    print(f"pings {len(pings.sent)}, duplicates after a hung link: {dups}")
    # the desk's view (yrd.link-states): up with its slave link, down at the hang, up again
    last = max(ts for _, ts, _ in pings.sent).isoformat()

    def up_down_up(rs: list[dict]) -> bool:  # and a heartbeat since the last ping went up
        ups = [r["main_up"] for r in rs]
        return True in ups and False in ups[ups.index(True):] and ups[-1] and \
            rs[-1]["last_position_at"] == last

    assert upper.platform.disconnect_informs[:1] == [0]  # told on the slave link (0x1007)
    states = kafka.read(env["YRD_TOPIC_LINK_STATES"], up_down_up, timeout=30)
    assert {r["link"] for r in states} == {"uplink"} and states[0]["access_code"] == 3100
    assert any(r["slave_up"] for r in states)
    assert states[-1]["reconnects"] >= 1
    assert states[-1]["positions"] >= len(pings.sent)  # (the re-sent ones again)


@pytest.mark.parametrize("edition", [2019])
def test_the_rest_of_the_conformance_list_is_answered(services, env, upper, uplink, edition):
    """Exchange started, who drives and the e-waybill answered at once (from the truck's
    permit on Kafka), a new driver reported unasked, a vehicle from elsewhere pushed down
    reaching yrd.pings and never going back up, a listen-in request becoming a call-back
    command answered when the terminal took it."""
    from tests.unit.test_uplink_conformance import CREW, permit
    from yrd_hazmat.jt809 import control

    kafka = Kafka(services["KAFKA_BOOTSTRAP"])
    kafka.send(env["YRD_TOPIC_PERMITS"], PLATES[0].encode(), permit(PLATES[0], **CREW))
    kafka.flush()
    uplink.start()
    wait_until(lambda: upper.platform.slave_up, "slave link", 60)
    send = upper.platform.send_vehicle
    start = upper.call(send(exchange.DOWN_EXG_MSG, exchange.RETURN_STARTUP, PLATES[0],
                            exchange.write_order(exchange.ExchangeOrder(reason=0))))
    ask = upper.call(send(exchange.DOWN_EXG_MSG, exchange.DOWN_REPORT_DRIVER_INFO, PLATES[0],
                          exchange.write_driver_request(exchange.DriverRequest(flag=0), 2019)))
    upper.call(send(exchange.DOWN_EXG_MSG, exchange.TAKE_EWAYBILL_REQ, PLATES[0], b""))
    then = datetime.now(CHINA_TZ).replace(microsecond=0) - timedelta(minutes=5)
    elsewhere = exchange.write_location(exchange.Fix(ts=then, lat=31.3, lon=120.6,
                                                     speed_kmh=40.0, status=0b11), 2019)
    upper.call(send(exchange.DOWN_EXG_MSG, exchange.CAR_LOCATION, "皖A00001", elsewhere))
    wait_until(lambda: len(upper.platform.reports) >= 3, "answers at once", 30)
    by_sub = {sub: (plate, value) for sub, plate, value in upper.platform.reports}
    assert by_sub[exchange.RETURN_STARTUP_ACK] == \
        (PLATES[0], exchange.ExchangeAck(source_type=exchange.RETURN_STARTUP, source_sn=start))
    plate, driver = by_sub[exchange.REPORT_DRIVER_INFO_ACK]
    assert (plate, driver.name, driver.licence, driver.source_sn) == \
        (PLATES[0], "张三", "JS-DG-000123", ask)
    assert "WAYBILL_ID:=WB-2026-001" in by_sub[exchange.TAKE_EWAYBILL_ACK][1].text
    pushed = kafka.read(env["YRD_TOPIC_PINGS"],
                        lambda r: any(p["vehicle_id"] == "皖A00001" for p in r), 30)
    assert msgspec.convert(pushed[-1], Ping).lat == 31.3
    kafka.send(env["YRD_TOPIC_PERMITS"], PLATES[0].encode(),
               permit(PLATES[0], **(CREW | {"driver_name": "李四"})))
    ours = Ping(vehicle_id=PLATES[1], ts=then, lat=31.2, lon=121.4, speed_kmh=30.0)
    kafka.send(env["YRD_TOPIC_PINGS"], PLATES[1].encode(), encode(ours))
    kafka.flush()
    wait_until(lambda: any(sub == exchange.REPORT_DRIVER_INFO
                           for sub, _, _ in upper.platform.reports), "0x120C", 30)
    wait_until(lambda: (PLATES[1], then) in received(upper), "our ping up", 30)
    assert "皖A00001" not in {p.plate for p in upper.positions()}  # not sent back up
    # listen in: a call-back command for the terminal gateway; answered once it took it
    upper.call(send(control.DOWN_CTRL_MSG, control.MONITOR_VEHICLE_REQ, PLATES[2],
                    control.write_listen(control.ListenRequest(tel="13800138000"))))
    commands = kafka.read(env["YRD_TOPIC_COMMANDS"], lambda r: len(r) >= 1, 30)
    command = msgspec.convert(commands[0], Command)
    assert (command.kind, command.phone, command.vehicle_id) == \
        ("call_back", "13800138000", PLATES[2])
    kafka.send(env["YRD_TOPIC_COMMAND_RESULTS"], PLATES[2].encode(), encode(CommandResult(
        command_id=command.command_id, vehicle_id=PLATES[2], status="ok",
        at=datetime.now(CHINA_TZ))))
    kafka.flush()
    wait_until(lambda: any(sub == control.MONITOR_VEHICLE_ACK
                           for sub, _, _ in upper.platform.reports), "0x1501", 30)
    (listened,) = [v for sub, _, v in upper.platform.reports if sub == control.MONITOR_VEHICLE_ACK]
    assert listened.result == control.LISTENING
    assert uplink.stop() == 0, uplink.tail()
