"""The gateways' command delivery (yrd_hazmat.gateway.commands) without sockets or Kafka:
a list stands for the results topic's partition, which every gateway reads in order at
its own pace, and the tests decide when each gateway's records land and are read.
Terminal answers are laid out by hand with struct.pack."""

from __future__ import annotations

import base64
import struct
from datetime import datetime, timedelta

import msgspec

from yrd_hazmat.core.codec import encode
from yrd_hazmat.gateway.commands import (Delivery, PublishMedia, PublishResult, Track,
                                         WriteFrame)
from yrd_hazmat.core.models import Command, CommandResult
from yrd_hazmat.core.timeutil import CHINA_TZ

NOW = datetime(2026, 11, 29, 14, 0, tzinfo=CHINA_TZ)
PLATE = "沪A12345"
TIMEOUT_S = 60.0


def t(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def command(kind: str = "text", expires_in_s: float = 3600, **fields) -> Command:
    base = {"command_id": f"c-{kind}", "vehicle_id": PLATE, "kind": kind,
            "text": "前方事故" if kind == "text" else None, "issued_by": "duty",
            "issued_at": NOW, "expires_at": t(expires_in_s)}
    return msgspec.convert(base | fields, Command)


def location_body(status: int = 0b11, bcd: str = "261129140005") -> bytes:
    # 31.2304 N 121.4737 E, 12 m, 62.5 km/h, heading 90
    return struct.pack(">IIIIHHH", 0, status, 31_230_400, 121_473_700, 12, 625, 90) + \
        bytes.fromhex(bcd)


class World:
    """Gateways around one results partition (a list); ``frames`` holds what each wrote
    to a terminal, ``media`` what was published on the media topic."""

    def __init__(self, *names: str) -> None:
        self.gateways = {name: Delivery(name, TIMEOUT_S) for name in names}
        self.log: list[CommandResult] = []
        self.read = {name: 0 for name in names}
        self.frames: list[tuple[str, WriteFrame]] = []
        self.media: list = []
        self.held: dict[str, list[PublishResult]] = {name: [] for name in names}
        """Publishes a gateway made that have not reached the broker yet (``hold``)."""
        self.holding: set[str] = set()

    def __getitem__(self, name: str) -> Delivery:
        return self.gateways[name]

    def start(self, now: datetime = NOW) -> None:
        for name, gateway in self.gateways.items():
            self.execute(name, gateway.start(now))

    def execute(self, name: str, actions: list) -> None:
        for action in actions:
            if isinstance(action, PublishResult):
                if name in self.holding:
                    self.held[name].append(action)
                else:
                    self.log.append(action.result)
            elif isinstance(action, PublishMedia):
                self.media.append(action.media)
            else:
                self.frames.append((name, action))

    def release(self, name: str) -> None:
        """The held publishes of ``name`` land now, after what others published."""
        self.holding.discard(name)
        self.log += [a.result for a in self.held[name]]
        self.held[name] = []

    def issue(self, cmd: Command, now: datetime = NOW) -> None:
        for name, gateway in self.gateways.items():
            self.execute(name, gateway.apply_command(PLATE.encode(), encode(cmd), now))

    def catch_up(self, name: str, now: datetime = NOW, upto: int | None = None) -> None:
        """``name`` reads the log to its end (or its first ``upto`` records)."""
        while self.read[name] < (len(self.log) if upto is None else upto):
            record = self.log[self.read[name]]
            self.read[name] += 1
            self.execute(name, self[name].apply_result(record.vehicle_id.encode(),
                                                       encode(record), now))

    def settle(self, now: datetime = NOW, *names: str) -> None:
        """Every gateway (or those named) reads the log to its end, until nothing new."""
        names = names or tuple(self.gateways)
        while any(self.read[n] < len(self.log) for n in names):
            for name in names:
                self.catch_up(name, now)

    def tick(self, now: datetime, *names: str) -> None:
        for name in names or tuple(self.gateways):
            self.execute(name, self[name].tick(now))

    def answer(self, name: str, msg_id: int, body: bytes, now: datetime = NOW) -> None:
        self.execute(name, self[name].terminal_message(PLATE, msg_id, body, now))

    def statuses(self) -> list[tuple[str, str | None]]:
        return [(r.status, r.gateway) for r in self.log]

    def counted(self) -> list[tuple[str, str | None]]:
        """The log as a client reads it: the records that count."""
        track = Track("c")
        return [(r.status, r.gateway) for r in self.log if track.apply(r)]

    def sent(self) -> CommandResult:
        track = Track("c")
        for record in self.log:
            track.apply(record)
        assert track.sent is not None
        return track.sent


def sent(*args, **fields) -> tuple["World", int]:
    """Gateway A holding the truck and the command (``command(*args, **fields)``) sent to
    it: the world and the serial of the frame."""
    world = World("A")
    world.start()
    world.execute("A", world["A"].authenticated(PLATE, None, NOW))
    world.issue(command(*args, **fields))
    world.settle()
    return world, world.frames[0][1].serial


def test_a_command_is_delivered_when_the_truck_authenticates():
    world = World("A")
    world.start()
    world.issue(command())
    assert world.log == []  # nobody holds the truck: it waits
    world.execute("A", world["A"].authenticated(PLATE, None, t(5)))
    world.settle(t(5))
    assert world.statuses() == [("claimed", "A"), ("sent", "A")]
    [(name, frame)] = world.frames
    sent = world.sent()
    # 0x8300, 2013: flag 0x04 (display) then 前方事故 in GBK
    assert (name, frame.msg_id, frame.vehicle_id, frame.serial) == ("A", 0x8300, PLATE,
                                                                    sent.serial)
    assert frame.body == bytes([0x04]) + bytes.fromhex("c7b0b7bdcac2b9ca")
    # the terminal's general response 0x0001: that serial, message 0x8300, result 0
    world.answer("A", 0x0001, struct.pack(">HHB", sent.serial, 0x8300, 0), t(6))
    world.settle(t(6))
    assert world.counted() == [("claimed", "A"), ("sent", "A"), ("ok", "A")]
    world.answer("A", 0x0001, struct.pack(">HHB", sent.serial, 0x8300, 0), t(7))  # again
    world.tick(t(500))
    assert len(world.log) == 3 and len(world.frames) == 1


def test_a_finished_command_read_again_is_never_sent_again():
    world = World("A")
    world.start()
    world.execute("A", world["A"].authenticated(PLATE, None, NOW))
    world.issue(command(expires_in_s=600))
    world.settle()
    world.answer("A", 0x0001, struct.pack(">HHB", world.sent().serial, 0x8300, 0))
    world.settle()
    world.issue(command(expires_in_s=600), t(10))  # the same record again
    world.tick(t(300))
    world.settle(t(300))
    world.tick(t(700))  # expired: its track may go
    world.issue(command(expires_in_s=600), t(701))
    world.settle(t(701))
    assert len(world.frames) == 1
    # read again after it was forgotten (memory is bounded): closed as expired, not sent
    assert [s for s, _ in world.statuses()] == ["claimed", "sent", "ok", "claimed", "expired"]


def test_nothing_is_done_before_the_topics_are_read_to_their_end():
    world = World("A")
    world.issue(command())
    world.execute("A", world["A"].authenticated(PLATE, None, NOW))
    assert world.log == []
    world.start(t(1))
    world.settle(t(1))
    assert world.statuses() == [("claimed", "A"), ("sent", "A")]


def test_a_2019_terminal_gets_the_2019_text_layout():
    world = World("A")
    world.start()
    world.execute("A", world["A"].authenticated(PLATE, 1, NOW))
    world.issue(command(emergency=True))
    world.settle()
    [(_, frame)] = world.frames
    assert frame.body[:2] == bytes([0b0000_0110, 1])  # emergency kind + display; notice


def test_a_truck_not_connected_gets_it_when_it_returns_to_another_gateway():
    world = World("A", "B")
    world.start()
    world.issue(command())
    world.tick(t(60))
    world.tick(t(600))
    assert world.log == []
    world.execute("B", world["B"].authenticated(PLATE, None, t(601)))
    world.settle(t(601))
    assert world.counted() == [("claimed", "B"), ("sent", "B")]
    assert [name for name, _ in world.frames] == ["B"]


def test_an_expired_command_is_closed_once_and_never_sent():
    world = World("A", "B")
    world.start()
    world.issue(command(expires_in_s=600))
    world.tick(t(599))
    assert world.log == []
    world.tick(t(600))  # both gateways notice, both claim to close it
    assert world.statuses() == [("claimed", "A"), ("claimed", "B")]
    world.settle(t(601))
    assert world.statuses() == [("claimed", "A"), ("claimed", "B"), ("expired", "A")]
    world.execute("B", world["B"].authenticated(PLATE, None, t(700)))  # the truck, late
    world.tick(t(3600))
    world.settle(t(3600))
    assert len(world.log) == 3 and world.frames == []


def test_a_truck_that_authenticates_after_expiry_gets_nothing():
    world = World("A")
    world.start()
    world.issue(command(expires_in_s=60))
    world.execute("A", world["A"].authenticated(PLATE, None, t(61)))
    world.settle(t(61))
    assert world.counted() == [("claimed", "A"), ("expired", "A")]
    assert world.frames == []


def test_two_gateways_racing_only_the_first_claim_in_the_log_sends():
    world = World("A", "B")
    world.start()
    for name in ("A", "B"):  # the truck reconnected to B; A's old connection lingers
        world.execute(name, world[name].authenticated(PLATE, None, NOW))
    world.holding.add("A")  # A's claim reaches the broker after B's
    world.issue(command())
    world.release("A")
    assert world.statuses() == [("claimed", "B"), ("claimed", "A")]
    world.settle(t(1))
    assert world.statuses() == [("claimed", "B"), ("claimed", "A"), ("sent", "B")]
    assert [name for name, _ in world.frames] == ["B"]


def test_a_dead_claimants_lease_runs_out_and_another_gateway_takes_over():
    world = World("A", "B")
    world.start()
    world.execute("A", world["A"].authenticated(PLATE, None, NOW))
    world.issue(command())
    world.catch_up("B")  # B sees A's claim; A dies before reading it back
    del world.read["A"]
    world.execute("B", world["B"].authenticated(PLATE, None, t(5)))  # the truck moves to B
    assert world.statuses() == [("claimed", "A")]
    world.tick(t(29), "B")
    assert len(world.log) == 1  # A's claim holds 30 s
    world.tick(t(30), "B")
    world.settle(t(30), "B")
    assert world.counted() == [("claimed", "A"), ("claimed", "B"), ("sent", "B")]
    assert [name for name, _ in world.frames] == ["B"]


def test_a_slow_claimant_whose_lease_ran_out_does_not_send_after_the_takeover():
    world = World("A", "B")
    world.start()
    for name in ("A", "B"):
        world.execute(name, world[name].authenticated(PLATE, None, NOW))
    world.holding.add("B")
    world.issue(command())  # A's claim lands
    world.held["B"] = []  # B's claim was lost (the broker refused it)
    world.holding.discard("B")
    world.holding.add("A")
    world.catch_up("A", t(1))  # A reads its claim, publishes its "sent", which stalls
    assert [a.result.status for a in world.held["A"]] == ["sent"]
    world.catch_up("B", t(31), upto=1)  # A's claim has no "sent" after 30 s: B takes over
    assert world.statuses() == [("claimed", "A"), ("claimed", "B")]
    world.release("A")  # A's "sent" lands after B's claim
    world.settle(t(32))
    assert world.statuses() == [("claimed", "A"), ("claimed", "B"), ("sent", "A"),
                                ("sent", "B")]
    assert world.counted() == [("claimed", "A"), ("claimed", "B"), ("sent", "B")]
    assert [name for name, _ in world.frames] == ["B"]


def test_a_position_query_is_answered_with_the_position():
    world = World("A")
    world.start()
    world.execute("A", world["A"].authenticated(PLATE, None, NOW))
    world.issue(command("position_query"))
    world.settle()
    [(_, frame)] = world.frames
    assert (frame.msg_id, frame.body) == (0x8201, b"")
    # some terminals acknowledge first with 0x0001: still waiting for the position
    world.answer("A", 0x0001, struct.pack(">HHB", frame.serial, 0x8201, 0))
    world.answer("A", 0x0201, struct.pack(">H", frame.serial + 1) + location_body())  # not ours
    assert world.log[-1].status == "sent"
    world.answer("A", 0x0201, struct.pack(">H", frame.serial) + location_body(), t(2))
    world.settle(t(2))
    final = world.log[-1]
    assert final.status == "ok" and final.serial == frame.serial
    assert final.position == {"lat": 31.2304, "lon": 121.4737,
                              "ts": "2026-11-29T14:00:05+08:00", "speed_kmh": 62.5,
                              "heading": 90, "altitude_m": 12, "fix_valid": True}


def test_a_position_without_a_fix_carries_no_coordinates():
    world, serial = sent("position_query")
    world.answer("A", 0x0201, struct.pack(">H", serial) + location_body(status=0b01))
    assert world.log[-1].position["fix_valid"] is False
    assert world.log[-1].position["lat"] is None


def test_the_terminals_general_response_results():
    for code, status in ((1, "failed"), (2, "wrong"), (3, "unsupported"), (9, "failed")):
        world = World("A")
        world.start()
        world.execute("A", world["A"].authenticated(PLATE, None, NOW))
        world.issue(command("alarm_confirm", alarm_serial=12, alarm_types=1 << 29))
        world.settle()
        [(_, frame)] = world.frames
        assert (frame.msg_id, frame.body) == (0x8203, struct.pack(">HI", 12, 0x2000_0000))
        world.answer("A", 0x0001, struct.pack(">HHB", frame.serial, 0x8300, 1))  # other msg
        world.answer("A", 0x0001, struct.pack(">HHB", frame.serial, 0x8203, code))
        world.settle()
        assert world.log[-1].status == status
        assert world.log[-1].detail == (f"result code {code}" if code == 9 else None)


def test_no_answer_within_the_timeout_is_a_timeout_and_a_late_answer_changes_nothing():
    world, serial = sent()
    world.tick(t(59))
    assert world.log[-1].status == "sent"
    world.tick(t(60))
    world.settle(t(60))
    assert world.log[-1].status == "timeout" and world.log[-1].detail == "no answer in 60 s"
    world.answer("A", 0x0001, struct.pack(">HHB", serial, 0x8300, 0), t(61))
    world.tick(t(200))
    assert world.counted()[-1] == ("timeout", "A") and len(world.log) == 3


def test_a_text_no_terminal_can_show_is_refused_not_sent():
    world = World("A")
    world.start()
    world.execute("A", world["A"].authenticated(PLATE, None, NOW))
    world.issue(command(text="请减速🚒"))
    world.settle()
    assert world.counted() == [("claimed", "A"), ("refused", "A")]
    assert "GBK" in world.log[-1].detail and world.frames == []


def photo_upload(media_id: int, event: int = 0, data: bytes = b"\xff\xd8JPEG\xff\xd9") -> bytes:
    """0x0801: id, image, JPEG, event, channel 1, a 0x0200 body, the data."""
    return struct.pack(">IBBBB", media_id, 0, 0, event, 1) + location_body() + data


def test_a_photo_answered_by_0805_then_uploaded_becomes_media_and_the_result():
    world = World("A")
    world.start()
    world.execute("A", world["A"].authenticated(PLATE, None, NOW))
    world.issue(command("photo", camera=2))
    world.settle()
    [(_, frame)] = world.frames
    assert frame.msg_id == 0x8801 and frame.body[:3] == bytes.fromhex("020001")
    # 0x0805: answers the serial, result 0, 1 id: 5
    world.answer("A", 0x0805, struct.pack(">HBHI", frame.serial, 0, 1, 5), t(50))
    world.tick(t(100))  # the upload has its own timeout from the 0x0805
    assert world.log[-1].status == "sent"
    world.answer("A", 0x0801, photo_upload(4), t(101))  # another picture (not the photo)
    world.answer("A", 0x0801, photo_upload(5), t(102))
    world.settle(t(102))
    media = world.media[-1]
    assert (media.terminal_media_id, media.command_id, media.format, media.channel) == \
        (5, "c-photo", "jpeg", 1)
    assert media.media_id == f"{PLATE}:5:20261129140005" and media.size == 8
    assert base64.b64decode(media.data) == b"\xff\xd8JPEG\xff\xd9"
    assert (media.lat, media.lon) == (31.2304, 121.4737)
    assert world.media[0].command_id is None  # the other picture: media, nothing else
    assert world.log[-1].status == "ok" and world.log[-1].media_id == media.media_id
    answers = [f for _, f in world.frames if f.msg_id == 0x8800]
    assert [a.body for a in answers] == [struct.pack(">IB", 4, 0), struct.pack(">IB", 5, 0)]


def test_the_media_is_published_before_the_result_that_names_it():
    world, serial = sent("photo")
    world.answer("A", 0x0805, struct.pack(">HBHI", serial, 0, 1, 5))
    actions = world["A"].terminal_message(PLATE, 0x0801, photo_upload(5), t(1))
    assert [type(a).__name__ for a in actions] == ["PublishMedia", "PublishResult",
                                                   "WriteFrame"]


def test_an_old_terminal_acknowledges_a_photo_with_0001_and_uploads_it():
    world, serial = sent("photo")
    world.answer("A", 0x0001, struct.pack(">HHB", serial, 0x8801, 0))
    world.answer("A", 0x0801, photo_upload(9, event=1))  # a timer's photo: not it
    assert world.log[-1].status == "sent"
    world.answer("A", 0x0801, photo_upload(10, event=0))
    assert world.log[-1].status == "ok" and world.media[-1].command_id == "c-photo"


def test_a_photo_the_camera_cannot_take():
    world, serial = sent("photo", camera=4)
    world.answer("A", 0x0805, struct.pack(">HB", serial, 2))
    assert world.log[-1].status == "unsupported"
    assert world.log[-1].detail == "camera channel 4 not supported"


def test_a_photo_taken_but_never_uploaded_times_out():
    world, serial = sent("photo")
    world.answer("A", 0x0805, struct.pack(">HBHI", serial, 0, 1, 5), t(10))
    world.tick(t(70))
    assert world.log[-1].status == "timeout"
    assert world.log[-1].detail == "photo taken, its upload did not arrive in 60 s"


def test_records_that_cannot_be_read_or_sit_under_another_key_are_skipped():
    gateway = Delivery("A", TIMEOUT_S)
    gateway.start(NOW)
    gateway.authenticated(PLATE, None, NOW)
    assert gateway.apply_command(PLATE.encode(), b"{not json", NOW) == []
    assert gateway.apply_command(b"\xe6\xb2\xaaB99999", encode(command()), NOW) == []
    assert gateway.apply_result(PLATE.encode(), b'{"command_id": 1}', NOW) == []
    [claim] = gateway.apply_command(PLATE.encode(), encode(command()), NOW)
    assert claim.result.status == "claimed"


def test_the_rules_every_reader_applies():
    def rec(status: str, gateway: str, at: float = 0, **fields) -> CommandResult:
        return CommandResult(command_id="c", vehicle_id=PLATE, status=status, at=t(at),
                             gateway=gateway, **fields)

    track = Track("c")
    assert not track.apply(rec("ok", "A"))  # an answer to nothing sent
    assert not track.apply(rec("sent", "A", serial=1))  # no claim
    assert track.apply(rec("claimed", "A"))
    assert not track.apply(rec("claimed", "B", 29.9))
    assert not track.apply(rec("expired", "B", 29.9))  # only the claim holder
    assert track.apply(rec("claimed", "B", 30))
    assert not track.apply(rec("sent", "A", 31, serial=1))
    assert track.apply(rec("sent", "B", 31, serial=1))
    assert not track.apply(rec("claimed", "C", 100))  # sent: no more claims
    assert not track.apply(rec("timeout", "A", 100))  # only the sender times out
    assert track.apply(rec("ok", "C", 32))  # an answer, wherever it arrived
    assert not track.apply(rec("timeout", "B", 100))
    assert track.final.status == "ok"
