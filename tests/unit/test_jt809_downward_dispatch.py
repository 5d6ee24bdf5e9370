"""The gateway's dispatcher of downward requests (gateway/dispatch.py) without Kafka: an
unreadable request is a dead letter with its reason and a counter; a request goes down
the links when they are up, its steps (and a supervision order's incident notes) are
queued for the broker; a link that drops at the send is a failure."""

from __future__ import annotations

from datetime import timedelta

import msgspec
from prometheus_client import REGISTRY

from tests.unit.test_jt809_downward import OLD, T0, request
from yrd_hazmat.config import Settings
from yrd_hazmat.core.codec import encode
from yrd_hazmat.gateway.dispatch import Dispatcher
from yrd_hazmat.gateway.platform_links import LinkDown, Sent


class Links:
    """What the dispatcher needs of :class:`PlatformLinks`: which links are up, a send."""

    def __init__(self, up: bool, drops: bool = False) -> None:
        self.up, self.drops = up, drops
        self.sent: list[tuple[int, int, bytes]] = []

    def main_link(self, access_code: int) -> bool:
        return self.up

    def slave_link(self, access_code: int) -> bool:
        return False

    def send(self, access_code: int, msg_id: int, body: bytes) -> Sent:
        if self.drops:
            raise LinkDown("gone")
        self.sent.append((access_code, msg_id, body))
        return Sent("main", len(self.sent))


def dispatcher(links: Links, now=T0) -> Dispatcher:
    settings = Settings(jt809_request_link_wait_s=5)
    return Dispatcher(settings, links, {OLD.access_code: OLD}, publish=None, name="g1",  # type: ignore[arg-type]
                      clock=lambda: now)


def queued(d: Dispatcher) -> list[tuple[str, dict]]:
    out = []
    while not d._queue.empty():
        out += [(topic, msgspec.json.decode(value)) for topic, _, value in d._queue.get_nowait()]
    return out


def test_an_unreadable_request_is_a_dead_letter_with_its_reason():
    d = dispatcher(Links(up=True))
    before = REGISTRY.get_sample_value("yrd_jt809_requests_total", {
        "platform": "unknown", "kind": "unknown", "result": "unreadable"}) or 0
    d._read_request(b"1", b"{not json")
    no_text = msgspec.json.encode(msgspec.structs.replace(request(OLD, "inspection"),
                                                          text=None))
    d._read_request(b"1", no_text)
    [(topic, letter), (_, second)] = queued(d)
    assert topic == d.settings.topic_deadletter and letter["reason"] == "invalid"
    assert "needs its text" in second["error"]
    assert second["source_topic"] == d.settings.topic_platform_requests
    after = REGISTRY.get_sample_value("yrd_jt809_requests_total", {
        "platform": "unknown", "kind": "unknown", "result": "unreadable"})
    assert after == before + 1
    assert d.ledger.waiting == {}


def test_a_request_goes_down_and_a_supervision_orders_steps_note_its_incident():
    links = Links(up=True)
    d = dispatcher(links)
    order = request(OLD, "supervision")
    d._read_request(b"1", encode(order))
    d.step()
    [(access, msg_id, _)] = links.sent
    assert (access, msg_id) == (OLD.access_code, 0x9400)
    [(results, sent), (actions, note)] = queued(d)
    assert (results, sent["status"], sent["route"], sent["serial"]) == (
        d.settings.topic_platform_request_results, "sent", "main", 1)
    assert actions == d.settings.topic_incident_actions and note["incident_id"] == "inc-1"
    d.step()  # nothing twice
    assert len(links.sent) == 1 and queued(d) == []


def test_a_link_lost_at_the_send_or_never_up_is_a_failure():
    d = dispatcher(Links(up=True, drops=True))
    d._read_request(b"1", encode(request(OLD, "text")))
    d.step()
    [(_, failed)] = queued(d)
    assert failed["status"] == "failed" and "link down" in failed["detail"]
    later = dispatcher(Links(up=False), now=T0 + timedelta(seconds=6))
    later.ledger.apply_request(request(OLD, "photo"), T0)
    later.step()
    [(_, failed)] = queued(later)
    assert failed["status"] == "failed"
