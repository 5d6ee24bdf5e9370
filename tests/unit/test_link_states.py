"""Link states (yrd.link-states): what the desk believes of a platform's links from the
reports of the gateways holding them, and when a reporter writes."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import msgspec

from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.link_states import LinkState, Reporter, current, decoder

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=CHINA_TZ)


def state(code: int = 30010001, *, reporter: str = "gw-a:6809", main: bool = True,
          slave: bool = True, age_s: float = 0, positions: int = 0, link: str = "platform",
          last: datetime | None = None) -> LinkState:
    return LinkState(link=link, access_code=code, name=f"p{code}", reporter=reporter,  # type: ignore[arg-type]
                     main_up=main, slave_up=slave, since=NOW - timedelta(hours=1),
                     positions=positions, last_position_at=last,
                     reported_at=NOW - timedelta(seconds=age_s), heartbeat_s=10)


def test_a_fresh_report_says_what_it_says():
    assert [v.status for v in current([state()], NOW)] == ["up"]
    assert [v.status for v in current([state(slave=False)], NOW)] == ["main_only"]
    assert [v.status for v in current([state(main=False, slave=False)], NOW)] == ["down"]


def test_a_silent_reporter_is_not_believed_up():
    """A killed gateway never says its links went down: three missed heartbeats and its
    'up' is unknown; an old 'down' stays down."""
    assert current([state(age_s=29)], NOW)[0].status == "up"
    assert current([state(age_s=31)], NOW)[0].status == "unknown"
    assert current([state(main=False, slave=False, age_s=3600)], NOW)[0].status == "down"


def test_a_platform_moved_to_another_gateway_is_up():
    old = state(reporter="gw-a:6809", age_s=300, positions=100)  # died holding it
    new = state(reporter="gw-b:6809", positions=7,
                last=NOW - timedelta(seconds=3))
    (view,) = current([old, new], NOW)
    assert view.status == "up"
    assert view.reporters == ("gw-b:6809",)
    assert view.positions == 107
    assert view.last_position_at == NOW - timedelta(seconds=3)


def test_uplink_first_then_platforms_by_code():
    views = current([state(30010002), state(30010001), state(99, link="uplink",
                                                               reporter="host:99")], NOW)
    assert [(v.link, v.access_code) for v in views] == [
        ("uplink", 99), ("platform", 30010001), ("platform", 30010002)]


def test_records_round_trip_with_their_key():
    s = state()
    assert s.key == "platform:30010001@gw-a:6809"
    assert decoder.decode(msgspec.json.encode(s)) == s
    assert state(link="uplink", reporter="h:1").key == "uplink@h:1"


def test_reporter_writes_changes_heartbeats_and_a_last_down():
    held = {"main": True}
    written: list[list[LinkState]] = []

    def snapshot() -> list[LinkState]:
        return [state(main=held["main"], slave=held["main"])]

    async def publish(records):
        written.append([decoder.decode(value) for _, value in records])

    async def scenario() -> None:
        reporter = Reporter(snapshot, publish, heartbeat_s=0.05)
        reporter.start()
        await asyncio.sleep(0.18)  # heartbeats while up
        beats = len(written)
        assert beats >= 2 and all(batch[0].main_up for batch in written)
        held["main"] = False
        reporter.changed()
        await asyncio.sleep(0.2)  # the change once, then silence while down
        downs = [batch for batch in written[beats:]]
        assert len(downs) == 1 and not downs[0][0].main_up
        held["main"] = True
        reporter.changed()
        await asyncio.sleep(0.02)
        assert written[-1][0].main_up
        await reporter.stop()
        last = written[-1][0]
        assert not last.main_up and not last.slave_up  # the process holds nothing now

    asyncio.run(scenario())


def test_reporter_survives_a_failed_write():
    calls = []

    async def publish(records):
        calls.append(records)
        if len(calls) == 1:
            raise ConnectionError("broker away")

    async def scenario() -> None:
        reporter = Reporter(lambda: [state()], publish, heartbeat_s=0.03)
        reporter.start()
        await asyncio.sleep(0.12)
        await reporter.stop()

    asyncio.run(scenario())
    assert len(calls) >= 3  # it went on writing after the failure


def test_link_states_read_keep_and_remove():
    from yrd_hazmat.link_states import LinkStates

    others = LinkStates(lambda s: s.reporter != "me")
    mine, theirs = state(reporter="me"), state(reporter="gw-b:6809")
    for s in (mine, theirs):
        others.apply(s.key.encode(), msgspec.json.encode(s))
    others.apply(b"junk", b"{not json")
    others.apply(None, msgspec.json.encode(theirs))
    assert list(others.values()) == [theirs]
    assert others.linked(30010001, NOW) and not others.linked(30010002, NOW)
    assert not others.linked(30010001, NOW + timedelta(seconds=31))  # silent: not believed
    others.apply(theirs.key.encode(), None)  # a tombstone
    assert list(others.values()) == []
