"""The keys the read model writes in a real Redis are exactly those keys.py names, under
the default prefix and another one side by side (a redis-server of the test's own, so
that every key in it is the read model's)."""

from __future__ import annotations

import shutil

import pytest

from yrd_hazmat.readmodel import Keys, ReadModel
from tests.harness import OwnRedis
from tests.unit.test_readmodel_outbox import NOW, alert, update

pytestmark = pytest.mark.integration


@pytest.fixture
def server(services, tmp_path):
    assert shutil.which("redis-server"), "redis-server is not installed"
    srv = OwnRedis(tmp_path).start()
    yield srv
    srv.destroy()


async def write_every_kind_of_key(url: str, prefix: str) -> set[str]:
    """Vehicles in every province and outside, a move, open, cleared and momentary alerts;
    returns the keys keys.py names for them."""
    model = ReadModel.from_url(url, prefix)
    try:
        await model.apply([update("沪A1", 10, "SH", seen=False), update("苏A2", 10, "JS"),
                           update("浙A3", 10, "ZJ"), update("皖A4", 10, "AH"),
                           update("沪A5", 10, None, previous=None)],
                          [alert("沪A1", "open-sh"), alert("沪A5", "open-out", province=None),
                           alert("苏A2", "gone", province="JS"),
                           alert("浙A3", "hand", type="PROVINCE_HANDOVER", province="ZJ")], NOW)
        await model.apply([update("沪A1", 20, "JS", previous="SH")],
                          [alert("苏A2", "gone", "cleared", province="JS")], NOW)
        assert await model.vehicles_in("SH") == [] and len(await model.vehicles_in("JS")) == 2
        assert [a.incident_id for a in await model.open_alerts(province=None)] == ["open-out"]
    finally:
        await model.close()
    k = Keys(prefix)
    vehicles = ["沪A1", "苏A2", "浙A3", "皖A4", "沪A5"]
    return {k.positions, k.recent, k.seen, k.cleared, k.seq,
            *map(k.vehicle, vehicles), *map(k.track, vehicles),
            k.vehicles_in("JS"), k.vehicles_in("ZJ"), k.vehicles_in("AH"), k.vehicles_in(None),
            k.open_by_vehicle("沪A1"), k.open_by_vehicle("沪A5"),
            k.open_by_province("SH"), k.open_by_province(None)}


async def test_the_keys_written_are_those_keys_py_names(server):
    expected = await write_every_kind_of_key(server.url, "yrd")
    expected |= await write_every_kind_of_key(server.url, "fleet{7}:rm")
    assert set(server.client().keys("*")) == expected
