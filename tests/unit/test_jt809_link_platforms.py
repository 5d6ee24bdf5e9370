"""The lower platforms' configuration (yrd.platforms and the older settings), their
topics' JSON Schemas, the frame size cap, and the slave link's protocol
(gateway/platforms.py, platform_records.py, slave.py; jt809/frame.py's Splitter)."""

from __future__ import annotations

import json
from datetime import datetime

import jsonschema
import msgspec
import pytest

from tests.unit.test_jt809_frame import by_hand
from yrd_hazmat import schemas
from yrd_hazmat.config import Settings
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.gateway.platforms import Platform, Platforms, from_settings, platform_record
from yrd_hazmat.gateway.slave import SlaveSession
from yrd_hazmat.jt809 import frame as f
from yrd_hazmat.jt809 import links as lk
from yrd_hazmat.topics import topic_specs

NOW = datetime(2026, 11, 29, 14, 10, 0, tzinfo=CHINA_TZ)
NEW = Platform(access_code=30020002, name="Suzhou provincial", user_id=7002, password="s3cret",
               m1=30000000, ia1=20000000, ic1=10000000, edition=2019)


# --- the configuration -----------------------------------------------------------------------

def test_a_record_made_for_the_topic_reads_back():
    key, value = platform_record(access_code=30020002, name="Suzhou provincial", user_id=7002,
                                 password="s3cret", m1=30000000, ia1=20000000, ic1=10000000,
                                 edition=2019)
    assert key == b"30020002" and msgspec.json.decode(value, type=Platform) == NEW
    table = Platforms()
    table.apply(key, value)
    assert table[30020002] == NEW and NEW.cipher == f.Cipher(30000000, 20000000, 10000000)


@pytest.mark.parametrize("change", [{"password": "longer than 8"}, {"edition": 2013},
                                    {"access_code": -1}, {"name": ""}, {"province": "BJ"}])
def test_a_record_the_topic_would_not_take_is_refused(change):
    fields = {"access_code": 1, "name": "x", "user_id": 2, "password": "p"} | change
    with pytest.raises(ValueError):
        platform_record(**fields)


def test_the_secrets_never_print():
    text = repr(NEW) + str(NEW)
    assert "s3cret" not in text and "30000000" not in text and "30020002" in text


def test_the_topic_adds_overrides_and_removes_over_the_settings_platform():
    settings = Settings(jt809_user_id=7001, jt809_password="pw123456",
                        jt809_access_code=30010001, jt809_edition=2019)
    old = from_settings(settings)
    assert old is not None and (old.user_id, old.password, old.edition, old.cipher) == (
        7001, "pw123456", 2019, None)
    table = Platforms(old)
    assert list(table) == [30010001] and len(table) == 1
    table.apply(*platform_record(access_code=30020002, name="b", user_id=2, password="p"))
    changed = platform_record(access_code=30010001, name="a", user_id=9, password="q")
    table.apply(*changed)
    assert sorted(table) == [30010001, 30020002] and table[30010001].user_id == 9
    table.apply(b"30010001", None)  # the topic's record goes: the settings' is back
    assert table[30010001] == old
    table.apply(b"30020002", None)
    assert 30020002 not in table and from_settings(Settings(jt809_user_id=0)) is None


def test_the_settings_edition_is_2011_or_2019(monkeypatch):
    from yrd_hazmat.config import InvalidSettings, load_settings

    monkeypatch.setenv("YRD_JT809_EDITION", "2019")
    assert load_settings().jt809_edition == 2019
    monkeypatch.setenv("YRD_JT809_EDITION", "2013")
    with pytest.raises(InvalidSettings, match="YRD_JT809_EDITION"):
        load_settings()


def test_unreadable_records_leave_the_table_as_it_was():
    table = Platforms()
    table.apply(*platform_record(access_code=5, name="five", user_id=1, password="p"))
    table.apply(b"5", b"{not json")
    table.apply(b"5", b'{"access_code": 5}')
    table.apply(b"6", platform_record(access_code=5, name="x", user_id=1, password="p")[1])
    table.apply(b"five", b"{}")
    table.apply(None, b"{}")
    assert list(table) == [5] and table[5].name == "five"


# --- the topics' contract (their JSON Schemas: tests/unit/test_schemas*.py, every topic's) ----

def test_the_platforms_topics_are_created_and_the_configuration_is_compacted():
    settings = Settings()
    specs = topic_specs(settings)
    assert specs[settings.topic_platforms]["cleanup.policy"] == "compact"
    assert specs[settings.topic_platform_vehicles]["cleanup.policy"] == "compact"
    assert {settings.topic_ewaybills, settings.topic_platform_reports} <= specs.keys()


def test_a_platform_record_follows_its_schema():
    validator = jsonschema.Draft202012Validator(schemas.topic_schema("platforms"))
    validator.validate(json.loads(platform_record(access_code=1, name="a", user_id=2,
                                                  password="p")[1]))
    assert not validator.is_valid({"access_code": 1, "name": "a", "user_id": 2,
                                   "password": "p", "edition": 2013})


# --- the frame size cap -----------------------------------------------------------------------

def test_frames_over_the_cap_are_dropped_whole_or_arriving():
    small = by_hand(lk.UP_LINKTEST_REQ, b"")
    big = by_hand(0x1200, bytes(3000))
    splitter = f.Splitter(max_frame=2048)
    frames, discarded = splitter.feed(small + big + small)
    assert frames == [small[1:-1]] * 2 and discarded == len(big) and splitter.oversized == 1
    frames, _ = splitter.feed(big[:2500])  # still arriving: dropped once over the cap
    assert frames == [] and splitter.oversized == 2
    frames, _ = splitter.feed(big[2500:] + small)
    assert frames == [small[1:-1]]


# --- the slave link's protocol ----------------------------------------------------------------

def test_the_slave_links_frames_and_what_is_read_on_it():
    link = SlaveSession(NEW, 0xCAFE, lambda: NOW, new_key=lambda: 99)
    login = f.parse(link.connect_request()[1:-1], NEW.cipher, expect=2019)
    assert (login.header.msg_id, login.header.edition, login.header.encrypted) == (
        lk.DOWN_CONNECT_REQ, 2019, True)
    assert lk.read_verify_code(login.body) == lk.VerifyCode(0xCAFE)
    assert login.header.time == int(NOW.timestamp()) and login.header.center == NEW.access_code
    assert f.parse(link.linktest()[1:-1], NEW.cipher).header.msg_id == lk.DOWN_LINKTEST_REQ
    assert f.parse(link.disconnect_request()[1:-1], NEW.cipher).body == (0xCAFE).to_bytes(4, "big")
    assert f.parse(link.close_inform()[1:-1], NEW.cipher).body == bytes([lk.GATEWAY_RESTART])

    def answer(msg_id: int, body: bytes = b"", center: int = NEW.access_code) -> bytes:
        return by_hand(msg_id, body, edition=2019, center=center, key=5)[1:-1]

    assert link.handle(answer(lk.DOWN_CONNECT_RSP, bytes([lk.SLAVE_OK]))).code == lk.SLAVE_OK
    assert link.handle(answer(lk.DOWN_CONNECT_RSP, b"\x01")).code == lk.SLAVE_BAD_VERIFY_CODE
    assert link.handle(answer(lk.DOWN_LINKTEST_RSP)).kind == "linktest"
    assert link.handle(answer(lk.DOWN_DISCONNECT_RSP)).kind == "disconnected"
    notice = link.handle(answer(lk.UP_DISCONNECT_INFORM, bytes([lk.MAIN_LINK_BROKEN])))
    assert notice.kind == "report" and notice.report.kind == "disconnect_inform"
    assert notice.report.fields == {"code": 0, "link": "slave"}
    assert link.handle(answer(lk.DOWN_LINKTEST_RSP, center=1)).kind == "unexpected"
    assert link.handle(answer(0x9999)).kind == "unexpected"
    assert link.handle(answer(lk.DOWN_CONNECT_RSP)).kind == "unreadable"  # no RESULT
    assert link.handle(b"\x00garbage").kind == "unreadable"


# --- the way down ---------------------------------------------------------------------------

class FakeWriter:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closing


def test_messages_down_take_the_main_link_while_there_is_no_slave_link():
    from yrd_hazmat.gateway.platform_links import LinkDown, PlatformLinks, SlaveTimes
    from yrd_hazmat.jt809 import inspection as i
    from yrd_hazmat.jt809 import static as st

    links = PlatformLinks(SlaveTimes(60, 10, 60), lambda: NOW, lambda report: None)
    with pytest.raises(LinkDown):
        links.request_static_info(NEW.access_code, "沪A12345", 2)
    first, second = FakeWriter(), FakeWriter()
    assert links.main_up(NEW, first, 2019) is None
    assert links.main_up(NEW, second, 2019) is first  # a new login replaces the older link
    links.main_down(NEW.access_code, first)  # (the older one leaving changes nothing)
    assert links.main_link(NEW.access_code) and not links.slave_link(NEW.access_code)
    sent = links.request_static_info(NEW.access_code, "沪A12345", 2)
    asked = links.inspect(NEW.access_code, i.Inspection(info_id=7, content="在岗吗?",
                                                        object_type=i.CONNECTED_PLATFORM,
                                                        object_id="32000000002"))
    assert (sent.route, sent.serial, asked.serial) == ("main", 1, 2)
    static, question = (f.parse(w[1:-1], NEW.cipher, expect=2019) for w in second.sent)
    assert (static.header.msg_id, static.header.serial, static.header.encrypted) == (
        st.DOWN_BASE_MSG, 1, True)
    assert st.read(st.DOWN_BASE_MSG, static.body, 2019).plate == "沪A12345"
    assert i.read(i.DOWN_PLATFORM_MSG, question.body, 2019).value.content == "在岗吗?"
    links.main_down(NEW.access_code, second)
    assert [(s.access_code, s.main_up, s.slave_up) for s in links.states("gw", 10.0)] == [
        (NEW.access_code, False, False)]
    with pytest.raises(LinkDown):
        links.send(NEW.access_code, st.DOWN_BASE_MSG, b"")
