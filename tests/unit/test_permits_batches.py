"""The permits agent's batches (agents/permits.py), against a fake table, changelog and stream:
the changelog records of a batch are all sent before any is awaited, a refused one is put
back and dead-lettered, and the events are acked, in offset order, only after that."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from types import SimpleNamespace

import pytest

import agents.permits as agent
from yrd_hazmat import metrics
from yrd_hazmat.core.permits.store import load_entry
from tests.permit_trips import permit_doc

T0 = datetime.fromisoformat("2026-11-30T10:00:00+08:00")
A, B = "苏A61001", "苏A61002"


class Changelog:
    """A broker for the table's changelog: ``refuse(value)`` decides each record's fate;
    deliveries are settled at once (``auto``) or when the test calls :meth:`deliver`."""

    def __init__(self, journal: list, refuse=lambda value: False, auto: bool = True) -> None:
        self.journal, self.refuse, self.auto = journal, refuse, auto
        self.pending: list[tuple[asyncio.Future, bytes, bytes]] = []
        self.records: list[tuple[bytes, bytes, int]] = []

    async def send(self, *, key, value, partition, key_serializer, value_serializer):
        self.journal.append(("send", key.decode()))
        self.pending.append((asyncio.get_running_loop().create_future(), key, value))
        if self.auto:
            asyncio.get_running_loop().call_soon(self.deliver)
        return self.pending[-1][0]

    def deliver(self) -> None:
        for future, key, value in self.pending:
            if future.done():
                continue
            if self.refuse(value):
                future.set_exception(RuntimeError("MessageSizeTooLargeError: refused"))
            else:
                self.records.append((key, value))
                self.journal.append(("delivered", key.decode()))
                future.set_result(None)
        self.pending.clear()


class Table:
    def __init__(self, changelog: Changelog) -> None:
        self.data: dict[bytes, bytes] = {}
        self.changelog_topic = changelog

    def get(self, key):
        return self.data.get(key)

    def __len__(self) -> int:
        return len(self.data)


class Stream:
    """What the agent uses of a Faust stream; every record is available at once."""

    def __init__(self, records, journal: list) -> None:
        self.waiting = [event(i, *r) for i, r in enumerate(records)]
        self.journal = journal
        self.channel = SimpleNamespace(queue=self)

    def noack(self):
        return self

    def empty(self) -> bool:
        return not self.waiting

    async def events(self):
        while self.waiting:
            await asyncio.sleep(0)  # as Faust's stream does between events
            yield self.waiting.pop(0)

    async def ack(self, ev) -> None:
        self.journal.append(("ack", ev.message.offset))


class DeadLetters:
    def __init__(self, journal: list) -> None:
        self.journal = journal
        self.sent: list[tuple[str, str, str]] = []

    async def send(self, ev, rejection, now) -> None:
        self.journal.append(("dead", ev.message.offset))
        self.sent.append((ev.key.decode(), rejection.reason, rejection.error))


def event(offset: int, key: str, value: bytes | None, ts: float = 1_800_000_000.0):
    return SimpleNamespace(key=key.encode(), value=value,
                           message=SimpleNamespace(partition=0, offset=offset, timestamp=ts))


def permit(vehicle: str, permit_id: str) -> bytes:
    return json.dumps(permit_doc(vehicle, T0, permit_id=permit_id)).encode()


@pytest.fixture
def world(monkeypatch):
    journal: list = []
    changelog = Changelog(journal)
    table = Table(changelog)
    dead = DeadLetters(journal)
    monkeypatch.setattr(agent, "permits_table", table)
    monkeypatch.setattr(agent, "dead_letters", dead)
    return SimpleNamespace(journal=journal, changelog=changelog, table=table, dead=dead)


def held(world, vehicle: str) -> tuple[str, int | None] | None:
    stored = world.table.data.get(vehicle.encode())
    if stored is None:
        return None
    entry = load_entry(stored)
    return json.loads(entry.raw)["permit_id"], entry.revoked_at_ms


def stored_count() -> float:
    return metrics.PERMIT_UPDATES.labels(result="stored")._value.get()


async def run(world, records) -> Stream:
    stream = Stream(records, world.journal)
    await agent.store_permits.fun(stream)
    return stream


async def test_a_batch_is_sent_whole_then_awaited_then_acked_in_order(world):
    world.changelog.auto = False
    stream = Stream([(A, permit(A, "P-A1")), (B, b'{"not": "a permit"}'),
                     (B, permit(B, "P-B1")), (A, permit(A, "P-A2"))], world.journal)
    before = stored_count()
    task = asyncio.create_task(agent.store_permits.fun(stream))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if len(world.changelog.pending) == 3:
            break
    assert world.journal == [("send", A), ("send", B), ("send", A)]  # nothing awaited yet
    world.changelog.deliver()
    await asyncio.wait_for(task, 10)
    assert world.journal[3:] == [("delivered", A), ("delivered", B), ("delivered", A),
                                 ("dead", 1), ("ack", 0), ("ack", 1), ("ack", 2), ("ack", 3)]
    assert held(world, A) == ("P-A2", None)  # the later record of the vehicle wins
    assert held(world, B) == ("P-B1", None)
    assert [(k, reason) for k, reason, _ in world.dead.sent] == [(B, "invalid")]
    assert stored_count() - before == 3
    assert metrics.PERMITS_HELD._value.get() == 2


@pytest.mark.parametrize(("refused", "kept"), [
    ({"P-A2"}, ("P-A1", None)),  # the last delivered value of the batch
    ({"P-A1"}, ("P-A2", None)),
    ({"P-A1", "P-A2"}, ("P-A0", None)),  # the value before the batch
])
async def test_a_refused_write_is_put_back_and_dead_lettered_alone(world, refused, kept):
    world.table.data[A.encode()] = agent.entry_for(
        A.encode(), permit(A, "P-A0"), agent.default_index(), 262_144)
    world.changelog.refuse = lambda value: any(p.encode() in value for p in refused)
    await run(world, [(A, permit(A, "P-A1")), (B, permit(B, "P-B1")), (A, permit(A, "P-A2"))])
    assert held(world, A) == kept
    assert held(world, B) == ("P-B1", None)
    assert sorted(reason for _, reason, _ in world.dead.sent) == ["processing_error"] * len(
        refused)
    assert all("changelog did not take the record" in error for _, _, error in world.dead.sent)
    acks = [entry for entry in world.journal if entry[0] == "ack"]
    assert acks == [("ack", 0), ("ack", 1), ("ack", 2)]
    assert world.journal.index(("ack", 0)) > max(
        i for i, entry in enumerate(world.journal) if entry[0] == "dead")


async def test_a_tombstone_revokes_what_is_in_force_not_what_is_in_flight(world):
    world.changelog.refuse = lambda value: b"P-B1" in value
    await run(world, [(A, permit(A, "P-A1")), (B, permit(B, "P-B1")),
                      (A, None), (B, None)])
    assert held(world, A) == ("P-A1", 1_800_000_000_000)  # delivered, then revoked
    assert held(world, B) is None  # refused: nothing to revoke, as one record at a time
    assert [(k, reason) for k, reason, _ in world.dead.sent] == [(B, "processing_error")]
    assert [k for k, _ in world.changelog.records] == [A.encode(), A.encode()]


async def test_a_worker_stopping_mid_batch_puts_the_table_back_and_acks_nothing(world):
    world.changelog.auto = False
    world.table.data[A.encode()] = before = agent.entry_for(
        A.encode(), permit(A, "P-A0"), agent.default_index(), 262_144)
    stream = Stream([(A, permit(A, "P-A1")), (B, permit(B, "P-B1"))], world.journal)
    task = asyncio.create_task(agent.store_permits.fun(stream))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if len(world.changelog.pending) == 2:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert world.table.data == {A.encode(): before}
    assert not [entry for entry in world.journal if entry[0] in ("ack", "dead")]
