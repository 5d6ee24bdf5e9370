"""The committed JSON Schemas are the models' own, and both accept and refuse the same records."""

import json

import jsonschema
import pytest

from yrd_hazmat import schemas
from yrd_hazmat.core import codec
from yrd_hazmat.core.models import Alert, AlertState, City, Severity
from tests.factories import T0, ping_json

VALIDATOR = jsonschema.Draft202012Validator


def committed(suffix: str) -> dict:
    return json.loads(schemas.path_for(suffix).read_text(encoding="utf-8"))


def test_committed_schemas_match_the_models():
    assert schemas.stale() == [], "run `yrd-hazmat schemas` and commit schemas/"


@pytest.mark.parametrize("suffix", list(schemas.TOPICS))
def test_every_topic_has_a_valid_2020_12_schema(suffix):
    doc = committed(suffix)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    VALIDATOR.check_schema(doc)


@pytest.mark.parametrize(
    "change",
    [{}, {"lat": 200}, {"ts": "2026-11-02T09:00:00"}, {"crs": "BD09"}, {"speed_kmh": "fast"},
     {"vehicle_id": "bad plate"}, {"alarm_flags": 2**32}, {"road_class": "expressway"}],
)
def test_schema_and_decoder_agree_on_pings(change):
    record = json.loads(ping_json()) | change
    by_schema = VALIDATOR(committed("pings"), format_checker=VALIDATOR.FORMAT_CHECKER).is_valid(record)
    decoded = codec.decode_ping(record["vehicle_id"].encode(), json.dumps(record).encode(), 16384)
    assert by_schema == (not isinstance(decoded, codec.Rejection))


def test_an_alert_validates_against_the_alert_schema():
    alert = Alert(
        alert_id="x:raised", incident_id="x", type="SPEEDING", severity=Severity.WARNING,
        state=AlertState.RAISED, vehicle_id="沪A12345", ts=T0, emitted_at=T0, lat=31.2,
        lon=121.4, province="SH", city=City(code="310000", name="上海市"), details={"a": 1},
    )
    VALIDATOR(committed("alerts")).validate(json.loads(codec.encode(alert)))


def test_the_illustrative_zones_follow_the_zone_schema():
    from importlib.resources import files

    collection = json.loads(files("yrd_hazmat.data").joinpath("zones.geojson").read_text("utf-8"))
    validator = VALIDATOR(committed("zones"))
    for feature in collection["features"]:
        validator.validate(feature)
    bad = collection["features"][0] | {"properties": {"zone_id": "x", "kind": "prison"}}
    assert not validator.is_valid(bad)
