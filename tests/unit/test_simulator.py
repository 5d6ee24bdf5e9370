"""The simulated fleet: valid pings on the YRD corridors, some trucks speeding."""

from datetime import timedelta

from yrd_hazmat.core import codec
from yrd_hazmat.core.geo.corridors import CITIES, CORRIDORS, GEOD
from yrd_hazmat.core.geo.jurisdiction import default_index
from yrd_hazmat.core.models import Ping
from yrd_hazmat.simulator import Fleet
from tests.factories import T0


def drive(fleet: Fleet, minutes: int, every_s: int = 5):
    return [p for k in range(minutes * 60 // every_s)
            for p in fleet.tick(T0 + timedelta(seconds=k * every_s))]


def test_pings_are_valid_keyed_records():
    for p in drive(Fleet(12, seed=1), 2):
        assert codec.decode_ping(p.vehicle_id.encode(), codec.encode(p), 16384) == p


def test_trucks_stay_in_the_region_and_move_at_their_speed():
    fleet = Fleet(12, seed=2)
    pings = drive(fleet, 5)
    provinces, _, _ = default_index().locate(
        [p.lon for p in pings], [p.lat for p in pings])
    assert sum(p is None for p in provinces) / len(pings) < 0.02
    first, last = fleet.trucks[0], [p for p in pings if p.vehicle_id == fleet.trucks[0].vehicle_id]
    _, _, moved = GEOD.inv(last[0].lon, last[0].lat, last[-1].lon, last[-1].lat)
    assert 3_000 < moved < 8_000  # ~5 min at 60-95 km/h, corridors bend a little
    assert first.vehicle_id == last[0].vehicle_id


def test_speeders_exceed_the_expressway_limit_and_others_do_not():
    fleet = Fleet(20, speeders=0.25, seed=3)
    pings = drive(fleet, 6)
    speeders = {t.vehicle_id for t in fleet.trucks if t.speeder}
    over = {p.vehicle_id for p in pings if p.road_class == "expressway" and p.speed_kmh > 80}
    assert len(speeders) == 5 and over == speeders


def test_same_seed_same_fleet():
    assert drive(Fleet(5, seed=9), 1) == drive(Fleet(5, seed=9), 1)


def test_corridors_join_real_cities():
    served = {name for c in CORRIDORS for name, lonlat in CITIES.items() if lonlat in c.points}
    assert served >= {"Shanghai", "Suzhou", "Nanjing", "Hangzhou", "Ningbo", "Hefei"}
    assert all(50_000 < c.length_m < 400_000 for c in CORRIDORS)


def test_demo_fleet_has_a_truck_leaving_a_restricted_city_core():
    from importlib.resources import files

    from yrd_hazmat.core.enrich import observe
    from yrd_hazmat.core.zones.registry import ZoneRegistry

    zones = ZoneRegistry(margin_m=30)
    assert zones.load_file(files("yrd_hazmat.data") / "zones.geojson") == []
    observations = observe(Fleet(30).tick(T0), default_index(), zones.index)  # the demo's fleet
    assert any(zid == "sh-inner-ring" for o in observations for zid, _ in o.zones)


def test_fleet_permits_are_valid_and_cover_their_corridor_provinces():
    import msgspec

    from yrd_hazmat.core.permits.model import CompiledPermit, parse_permit

    fleet = Fleet(30)
    docs = fleet.permits(T0)
    assert len(docs) == 25  # one truck in six drives without
    for doc in docs:
        permit = parse_permit(msgspec.json.encode(doc), default_index(), key=doc["vehicle_id"])
        assert isinstance(permit, CompiledPermit), permit
        crossed = {b.to_province for b in permit.borders} | {b.from_province for b in permit.borders}
        assert crossed - {None} <= set(doc["provinces"])


def collisions(fleet: Fleet, seconds: int, every_s: int = 10) -> list[tuple[int, Ping]]:
    """(second, ping) of every ping with the collision alarm over ``seconds`` of driving."""
    return [(s, p) for s in range(0, seconds, every_s)
            for p in fleet.tick(T0 + timedelta(seconds=s)) if p.alarm_flags & (1 << 29)]


def test_a_truck_collides_for_a_minute_every_period_standing_still():
    fleet = Fleet(5, seed=4, accident_every_s=600)
    crashed = collisions(fleet, 1300)
    assert [s for s, _ in crashed] == [*range(90, 150, 10), *range(690, 750, 10), 1290]
    for start in (90, 690):  # one truck per accident, standing still where it stopped
        pings = [p for s, p in crashed if start <= s < start + 60]
        assert len({p.vehicle_id for p in pings}) == 1
        assert {(p.lon, p.lat, p.speed_kmh) for p in pings} == {(pings[0].lon, pings[0].lat, 0)}
    quiet = Fleet(5, seed=4)
    assert not any(p.alarm_flags for s in range(0, 1300, 10) for p in quiet.tick(T0 + timedelta(seconds=s)))


def test_the_demo_fleet_has_one_accident_in_each_province_in_turn():
    """The demo's fleet (30 trucks, seed 7, an accident every 10 minutes): the first four
    accidents are in Shanghai, Jiangsu, Zhejiang and Anhui, the next four again."""
    crashed = collisions(Fleet(30, seed=7, accident_every_s=600), 4800, every_s=5)
    firsts = [next(p for s, p in crashed if s >= start) for start in range(90, 4800, 600)]
    provinces, _, _ = default_index().locate([p.lon for p in firsts], [p.lat for p in firsts])
    assert list(provinces) == ["SH", "JS", "ZJ", "AH"] * 2
    assert all(p.road_class == "expressway" for p in firsts)
    again = collisions(Fleet(30, seed=7, accident_every_s=600), 4800, every_s=5)
    assert [(s, p.vehicle_id) for s, p in again] == [(s, p.vehicle_id) for s, p in crashed]


def test_a_small_fleet_has_its_accidents_where_its_trucks_are():
    """Three trucks, none in Shanghai or Anhui: an accident due there takes the next
    province in turn that has a truck (Jiangsu), rather than none."""
    crashed = collisions(Fleet(3, seed=7, accident_every_s=600), 2400, every_s=5)
    firsts = [next(p for s, p in crashed if s >= start) for start in range(90, 2400, 600)]
    provinces, _, _ = default_index().locate([p.lon for p in firsts], [p.lat for p in firsts])
    assert list(provinces) == ["JS", "JS", "ZJ", "JS"]
