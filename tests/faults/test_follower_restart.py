"""A follower of a compacted topic survives a broker restart (issue #23): on a broker of
the test's own, a follower reads a topic, the broker stops for a while and starts again,
and records written after it are applied, each once, by the same follower; its new
consumers are counted."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.test_follower import Table, expected, history, make_topic, produce, until
from yrd_hazmat.follow import RECONNECTS, Backoff, Follower

pytestmark = pytest.mark.integration

OUTAGE_S = 15.0
"""Longer than the stall check and its timeouts below: the follower must notice."""


@pytest.mark.timeout(300)
async def test_a_follower_survives_a_broker_restart_and_catches_up(broker):
    topic = await make_topic(broker.bootstrap, partitions=2)
    before = history(keys=8, rounds=2)
    await produce(broker.bootstrap, topic, before)
    table = Table()
    follower = Follower({"bootstrap_servers": broker.bootstrap}, topic, table.apply,
                        stall_s=2.0, backoff=Backoff(0.2, 2.0))
    counted = RECONNECTS.labels(topic=topic)._value.get
    task = asyncio.create_task(follower.run())
    try:
        await asyncio.wait_for(follower.caught_up.wait(), 60)
        assert table.rows == expected(before)

        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(OUTAGE_S)
        assert not task.done()
        await asyncio.to_thread(broker.start)
        after = [(b"k1", b"after"), (b"k3", None), (b"k99", b"new")]
        await produce(broker.bootstrap, topic, after)
        await until(lambda: len(table.applied) >= len(before) + len(after), 120)

        print(f"{follower.reconnects} new consumers during the outage")
        assert table.rows == expected(before + after)
        assert len(table.applied) == len(before) + len(after), "a record applied twice"
        assert follower.reconnects >= 1, "the follower never noticed the broker was away"
        assert counted() == follower.reconnects
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
