"""The gateway as upper platform of JT/T 809 lower platforms, on the real broker and real
TCP: platforms of both editions (one encrypted), one added on yrd.platforms while the
gateway runs; the slave link to each platform's own server (kept alive, reconnected,
its loss told on the main link, downward messages on it or on the main link); a cut main
link whose positions come back re-sent (0x1203); a login flood refused while a good
platform logs in. The platforms are the simulated lower platform of jt809/platform.py."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from tests.harness import free_port
from tests.integration.harness import run_env
from tests.integration.test_gateway import running
from tests.integration.traces import of
from yrd_hazmat.config import Settings
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.gateway.platform_links import LinkDown
from yrd_hazmat.gateway.platforms import platform_record
from yrd_hazmat.jt809 import alarms as a
from yrd_hazmat.jt809 import exchange as x
from yrd_hazmat.jt809 import links as lk
from yrd_hazmat.jt809 import static as st
from yrd_hazmat.jt809.frame import Cipher, Splitter, parse
from yrd_hazmat.jt809.platform import SimulatedPlatform, SlaveServer

pytestmark = pytest.mark.integration

TOPICS = ("pings", "alerts", "deadletter", "terminals", "vehicle_terminals", "commands",
          "command_results", "media", "platforms", "platform_vehicles", "ewaybills",
          "platform_reports", "link_states")
CIPHER = Cipher(56107078, 37382110, 50361430)
FAST_SLAVE = {"jt809_slave_keepalive_s": 0.3, "jt809_slave_timeout_s": 1.0,
              "jt809_slave_retry_max_s": 0.5}


@pytest.fixture
def penv(services):
    return run_env(services)


def link_settings(env: dict[str, str], **overrides) -> Settings:
    """A gateway listening for the platforms of the run's yrd.platforms."""
    topics = {f"topic_{name}": env[f"YRD_TOPIC_{name.upper()}"] for name in TOPICS}
    return Settings(kafka_bootstrap=env["KAFKA_BOOTSTRAP"], app_id=env["YRD_APP_ID"],
                    jt808_port=free_port(), jt809_port=free_port(), gateway_metrics_port=0,
                    jt809_listen=True, **topics | overrides)


def code() -> int:
    """An access code of this test alone (the metrics are the process's)."""
    return 40_000_000 + uuid.uuid4().int % 10_000_000


def configure(kafka, env, **fields) -> None:
    key, value = platform_record(**fields)
    kafka.send(env["YRD_TOPIC_PLATFORMS"], key, value)
    kafka.flush()


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def until(condition, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def platform_with_slave(port: int, access: int, user: int, password: str, **kwargs):
    """A simulated lower platform, its slave-link server listening."""
    platform = SimulatedPlatform(user, password, access, **kwargs)
    slave = SlaveServer.of(platform)
    platform.down_port = await slave.start()
    await platform.connect("127.0.0.1", port)
    try:
        yield platform, slave
    finally:
        await platform.close()
        await slave.stop()


def ago(minutes: float) -> datetime:
    return datetime.now(CHINA_TZ).replace(microsecond=0) - timedelta(minutes=minutes)


# --- platforms of both editions, one added at run time -------------------------------------------

async def test_two_platforms_one_added_at_run_time_pass_their_vehicles_up(penv, kafka):
    old, new = code(), code()
    configure(kafka, penv, access_code=old, name="Ningbo enterprise", user_id=7001,
              password="pw123456", edition=2011, province="ZJ")
    settings = link_settings(penv)
    t0 = ago(10)
    async with running(settings) as gateway:
        first = SimulatedPlatform(7001, "pw123456", old, edition=2011)
        await first.connect("127.0.0.1", settings.jt809_port)
        assert await first.login() == lk.OK
        second = SimulatedPlatform(7002, "s3cret", new, CIPHER, edition=2019)
        await second.connect("127.0.0.1", settings.jt809_port)
        assert await second.login() == lk.BAD_ACCESS_CODE  # not configured yet
        configure(kafka, penv, access_code=new, name="Suzhou provincial", user_id=7002,
                  password="s3cret", m1=CIPHER.m1, ia1=CIPHER.ia1, ic1=CIPHER.ic1,
                  edition=2019, province="JS")
        await until(lambda: new in gateway.platforms)
        assert await second.login() == lk.OK  # no restart
        await first.position("浙B80901", t0, 29.87, 121.55, 58.0, mileage_km=812)
        await first.alarm("浙B80901", a.OVERSPEED, t0 + timedelta(seconds=5), "超速报警")
        await second.register("苏E80902", x.Registration(
            platform_id="32000000002", producer_id="70222", terminal_model="ZX-2019",
            imei="861234567890123", terminal_id="T2019", sim="13900002019"))
        for i in range(3):
            await second.position("苏E80902", t0 + timedelta(seconds=10 * i), 31.3,
                                  120.6 + 0.001 * i, 60.0 + i, gcj02=True)
        await second.waybill("苏E80902", "运单号:YD001;货物:UN1203 汽油")
        await second.static_info("苏E80902", {"VIN": "LSVAU2180N2183294", "TRANS_TYPE": "030"})
        await second.send(0x1500, x.write("苏E80902", 2, 0x15FF, b"\x00"))  # not supported
        assert await first.linktest() and await second.linktest()
        await first.close()
        await second.close()

    pings = kafka.read(penv["YRD_TOPIC_PINGS"], lambda r: len(r) >= 4)
    assert [p["ts"] for p in of(pings, "浙B80901")] == [t0.isoformat()]
    assert [p["speed_kmh"] for p in of(pings, "苏E80902")] == [60.0, 61.0, 62.0]
    assert {p["crs"] for p in of(pings, "苏E80902")} == {"GCJ02"}
    [vehicle] = kafka.read(penv["YRD_TOPIC_PLATFORM_VEHICLES"], lambda r: len(r) >= 1)
    assert (vehicle["vehicle_id"], vehicle["platform"], vehicle["terminal_id"],
            vehicle["sim"], vehicle["imei"]) == ("苏E80902", new, "T2019", "13900002019",
                                                 "861234567890123")
    [alert] = kafka.read(penv["YRD_TOPIC_ALERTS"], lambda r: len(r) >= 1)
    assert (alert["type"], alert["vehicle_id"], alert["severity"], alert["province"]) == (
        "PLATFORM_ALARM", "浙B80901", "warning", "ZJ")
    assert alert["details"]["platform"] == old and alert["details"]["warn"] == "overspeed"
    assert (alert["lat"], alert["lon"]) == (29.87, 121.55)
    [waybill] = kafka.read(penv["YRD_TOPIC_EWAYBILLS"], lambda r: len(r) >= 1)
    assert (waybill["vehicle_id"], waybill["kind"]) == ("苏E80902", "report")
    [report] = kafka.read(penv["YRD_TOPIC_PLATFORM_REPORTS"], lambda r: len(r) >= 1)
    assert report["kind"] == "static_info" and report["fields"]["VIN"] == "LSVAU2180N2183294"
    dead = kafka.read(penv["YRD_TOPIC_DEADLETTER"], lambda r: len(r) >= 2)
    assert sorted(d["reason"] for d in dead) == ["auth_failed", "unsupported"]
    assert metric("yrd_jt809_logins_total", platform="unknown", result="bad_access_code") >= 1
    assert metric("yrd_jt809_positions_total", platform=str(new), kind="live") == 3
    assert metric("yrd_jt809_records_total", platform=str(old), kind="alert") == 1


# --- the slave link -------------------------------------------------------------------------

async def test_the_slave_link_is_kept_alive_reconnected_and_carries_messages_down(penv, kafka):
    access = code()
    configure(kafka, penv, access_code=access, name="slave test", user_id=7003,
              password="pw", m1=CIPHER.m1, ia1=CIPHER.ia1, ic1=CIPHER.ic1, edition=2019)
    settings = link_settings(penv, **FAST_SLAVE)
    label = str(access)
    async with running(settings) as gateway, platform_with_slave(
            settings.jt809_port, access, 7003, "pw", cipher=CIPHER, edition=2019) as (platform,
                                                                                     slave):
        assert await platform.login() == lk.OK
        await until(lambda: gateway.links.slave_link(access))
        assert slave.logins == [lk.SLAVE_OK] and metric("yrd_jt809_slave_link_up",
                                                        platform=label) == 1
        assert metric("yrd_jt809_main_link_up", platform=label) == 1
        await until(lambda: slave.linktests >= 3)  # kept alive
        # a static-info request goes down the slave link; the answer comes up the main one
        sent = gateway.links.request_static_info(access, "皖A80903", 2)
        assert sent.route == "slave"
        await until(lambda: any(frm.header.msg_id == st.DOWN_BASE_MSG for frm in slave.received))
        await platform.static_info("皖A80903", {"VIN": "X1"}, source_sn=sent.serial)
        # the test drops the slave link: the gateway comes back
        slave.drop()
        broke = await platform.receive_frame(lk.DOWN_DISCONNECT_INFORM)  # told on the main link
        assert broke.body[0] == lk.SLAVE_LINK_BROKEN
        await until(lambda: slave.logins == [lk.SLAVE_OK, lk.SLAVE_OK])
        await until(lambda: gateway.links.slave_link(access))
        assert metric("yrd_jt809_reconnects_total", platform=label, link="slave") == 1
        # a slave link that never answers: timed out, the platform told on the main link,
        # messages down take the main link meanwhile
        slave.answering = False
        slave.drop()
        inform = await platform.receive_frame(lk.DOWN_DISCONNECT_INFORM)
        assert inform.body[0] == lk.SLAVE_LINK_BROKEN
        assert not gateway.links.slave_link(access)
        assert metric("yrd_jt809_slave_link_up", platform=label) == 0
        assert gateway.links.request_static_info(access, "皖A80903", 2).route == "main"
        request = await platform.receive_frame(st.DOWN_BASE_MSG)
        assert st.read(request.header.msg_id, request.body, 2019).plate == "皖A80903"
        assert await platform.linktest()  # the main link never waited for the slave
        slave.answering = True
        await until(lambda: gateway.links.slave_link(access), timeout=15)
        await platform.logout()  # the slave link is closed with DOWN_DISCONNECT_REQ
        await until(lambda: any(frm.header.msg_id == lk.DOWN_DISCONNECT_REQ
                                for frm in slave.received))
        await until(lambda: not gateway.links.slave_link(access))
        with pytest.raises(LinkDown):
            gateway.links.request_static_info(access, "皖A80903", 2)
    [report] = kafka.read(penv["YRD_TOPIC_PLATFORM_REPORTS"], lambda r: len(r) >= 1)
    assert report["fields"] == {"VIN": "X1", "source_sn": sent.serial}


async def test_an_unreachable_slave_link_is_told_once_and_tried_again(penv, kafka):
    access = code()
    configure(kafka, penv, access_code=access, name="unreachable", user_id=7004, password="pw")
    settings = link_settings(penv, **FAST_SLAVE)
    nobody = free_port()
    async with running(settings) as gateway:
        platform = SimulatedPlatform(7004, "pw", access, down_port=nobody)
        await platform.connect("127.0.0.1", settings.jt809_port)
        assert await platform.login() == lk.OK
        inform = await platform.receive_frame(lk.DOWN_DISCONNECT_INFORM)
        assert inform.body[0] == lk.SLAVE_UNREACHABLE
        slave = SlaveServer.of(platform)  # the slave-link server comes up late
        await slave.start(port=nobody)
        await until(lambda: gateway.links.slave_link(access))
        for _ in range(3):
            assert await platform.linktest()
        assert not [frm for frm in platform.inbox if frm.header.msg_id == lk.DOWN_DISCONNECT_INFORM]
        await platform.close()
        await slave.stop()


# --- a cut link and its re-send --------------------------------------------------------------

async def test_a_cut_main_link_comes_back_with_its_resend(penv, kafka):
    access, plate = code(), f"苏F{uuid.uuid4().int % 100000:05d}"
    configure(kafka, penv, access_code=access, name="tunnel", user_id=7005, password="pw",
              m1=CIPHER.m1, ia1=CIPHER.ia1, ic1=CIPHER.ic1, edition=2019)
    settings = link_settings(penv)
    t0 = ago(30)
    async with running(settings) as gateway:
        platform = SimulatedPlatform(7005, "pw", access, CIPHER, edition=2019)
        await platform.connect("127.0.0.1", settings.jt809_port)
        assert await platform.login() == lk.OK
        await platform.position(plate, t0, 31.3, 120.6, 50.0)
        assert await platform.linktest()
        platform._writer.transport.abort()  # the link is cut
        await until(lambda: not gateway.links.main_link(access))
        kept = [(t0 + timedelta(seconds=10 * (i + 1)), 31.3, 120.6 + 0.001 * i, 55.0)
                for i in range(7)]  # what the platform kept meanwhile
        again = SimulatedPlatform(7005, "pw", access, CIPHER, edition=2019)
        await again.connect("127.0.0.1", settings.jt809_port)
        assert await again.login() == lk.OK
        await again.history(plate, kept)  # two 0x1203, 5 and 2 positions
        await again.position(plate, t0 + timedelta(seconds=80), 31.3, 120.61, 50.0)
        assert await again.linktest()
        await again.close()
    pings = of(kafka.read(penv["YRD_TOPIC_PINGS"], lambda r: len(of(r, plate)) >= 9), plate)
    assert [p["blind"] for p in pings] == [False] + [True] * 7 + [False]
    assert [p["ts"] for p in pings[1:8]] == [ts.isoformat() for ts, *_ in kept]
    label = str(access)
    assert metric("yrd_jt809_positions_total", platform=label, kind="resent") == 7
    assert metric("yrd_jt809_reconnects_total", platform=label, link="main") == 1
    assert metric("yrd_jt809_resend_lag_seconds_count", platform=label) == 7
    assert metric("yrd_jt809_resend_lag_seconds_sum", platform=label) >= 7 * 28 * 60
    # what the desk is told (yrd.link-states): up, cut, up again with its positions, and
    # down when the gateway stops
    states = [r for r in kafka.read(penv["YRD_TOPIC_LINK_STATES"],
                                    lambda rs: any(r["positions"] >= 9 and not r["main_up"]
                                                   for r in rs))
              if r["access_code"] == access]
    ups = [r["main_up"] for r in states]
    assert ups[0] and ups[-1] is False and ups.index(False) < len(ups) - 1
    assert True in ups[ups.index(False):], ups  # up again after the cut
    last = states[-1]
    assert last["link"] == "platform" and last["name"] == "tunnel" and last["edition"] == 2019
    assert last["reconnects"] == 1 and last["positions"] == 9
    assert last["last_position_at"] == (t0 + timedelta(seconds=80)).isoformat()


# --- hostile peers -------------------------------------------------------------------------

async def test_a_login_flood_is_refused_while_a_good_platform_logs_in(penv, kafka):
    access = code()
    configure(kafka, penv, access_code=access, name="good", user_id=7006, password="goodpass")
    settings = link_settings(penv, jt809_login_attempts=5, jt809_login_failures=3,
                             jt809_max_frame_bytes=4096)
    loop = asyncio.get_running_loop()
    async with running(settings) as gateway:
        good = SimulatedPlatform(7006, "goodpass", access)
        await good.connect("127.0.0.1", settings.jt809_port)
        assert await good.login() == lk.OK  # from 127.0.0.1, before the flood
        await good.close()

        async def intruder(i: int) -> list[int]:
            target = access if i % 2 else code()
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", settings.jt809_port, local_addr=(f"127.0.0.{2 + i % 8}", 0))
            guess = SimulatedPlatform(7006, f"guess{i}", target)
            results = []
            try:
                for _ in range(3):
                    writer.write(guess.frame(lk.UP_CONNECT_REQ, lk.write_login(lk.Login(
                        user_id=7006, password=f"guess{i}", down_ip="127.0.0.1",
                        down_port=0))))
                    data = await asyncio.wait_for(reader.read(4096), 5)
                    if not data:
                        break
                    results.append(_result(data))
            except (ConnectionError, asyncio.TimeoutError):
                pass
            finally:
                writer.close()
            return results

        flood = asyncio.gather(*(intruder(i) for i in range(200)))
        await asyncio.sleep(0.2)
        started = loop.time()
        good = SimulatedPlatform(7006, "goodpass", access)
        await good.connect("127.0.0.1", settings.jt809_port)
        assert await good.login() == lk.OK  # during the flood
        took = loop.time() - started
        assert gateway.links.main_link(access)
        await good.position("浙C80906", ago(1), 29.9, 121.6, 40.0)
        # a frame over the size cap is dropped, the link goes on
        await good.send(x.UP_EXG_MSG, x.write("浙C80906", 2, x.REPORT_EWAYBILL_INFO,
                                              x.write_waybill(x.Waybill(text="x" * 8000))))
        assert await good.linktest()
        results = [r for rs in await flood for r in rs]
        await good.close()
    print(f"\n{len(results)} flood logins answered: {sorted(set(results))}; the good platform "
          f"logged in in {took:.3f} s")
    assert took < 2.0
    assert lk.OK not in results and results.count(lk.BUSY) >= len(results) - 8 * 5
    assert metric("yrd_jt809_logins_total", platform=str(access), result="platform_throttled") \
        + metric("yrd_jt809_logins_total", platform=str(access), result="address_throttled") > 0
    assert metric("yrd_gateway_oversized_frames_total", protocol="jt809") >= 1
    assert of(kafka.read(penv["YRD_TOPIC_PINGS"], lambda r: len(r) >= 1), "浙C80906")
    dead = kafka.read(penv["YRD_TOPIC_DEADLETTER"], lambda r: len(r) >= 1, settle=1.0)
    assert len(dead) <= 8 * 5  # throttled logins are no dead letters: the topic is not flooded


def _result(data: bytes) -> int:
    """RESULT of the UP_CONNECT_RSP that ``data`` starts with (an unencrypted frame)."""
    [content, *_], _ = Splitter().feed(data)
    return parse(content).body[0]
