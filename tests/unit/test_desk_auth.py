"""The desk's users, sessions and jurisdiction filter (pure parts)."""

from __future__ import annotations

from datetime import datetime

from yrd_hazmat.desk.app import Feed
from yrd_hazmat.desk.sessions import Sessions
from yrd_hazmat.desk.users import User, Users, hash_password, verify_password
from yrd_hazmat.models import Alert, AlertState, City, Severity
from yrd_hazmat.timeutil import CHINA_TZ

T = datetime(2026, 11, 29, 14, 0, tzinfo=CHINA_TZ)


def test_passwords_are_salted_hashes_that_verify():
    stored = hash_password("correct horse", iterations=1_000)
    assert "correct horse" not in stored and stored != hash_password("correct horse", 1_000)
    assert verify_password("correct horse", stored)
    assert not verify_password("wrong", stored) and not verify_password("x", "garbage")


def test_users_authenticate_only_with_their_password():
    users = Users([User(name="sh", jurisdiction="SH", password=hash_password("pw", 1_000))])
    assert users.authenticate("sh", "pw").jurisdiction == "SH"
    assert users.authenticate("sh", "nope") is None and users.authenticate("ghost", "pw") is None


def test_sessions_expire_and_cannot_be_forged():
    sessions = Sessions(b"k" * 32, ttl_s=60)
    token = sessions.issue("sh-duty", now=1_000)
    assert sessions.user_of(token, now=1_030) == "sh-duty"
    assert sessions.user_of(token, now=1_061) is None  # expired
    name, expiry, signature = token.split(".")
    assert sessions.user_of(f"{name}.{int(expiry) + 3600}.{signature}", now=1_030) is None
    assert Sessions(b"other" * 8, 60).user_of(token, now=1_030) is None
    assert sessions.user_of("garbage", now=1_030) is None


def alert(province: str | None, type_: str = "SPEEDING", severity=Severity.WARNING,
          city: str = "310000") -> Alert:
    return Alert(alert_id="i:raised", incident_id="i", type=type_, severity=severity,
                 state=AlertState.RAISED, vehicle_id="沪A12345", ts=T, emitted_at=T, lat=31.2,
                 lon=121.4, province=province, city=City(code=city, name="x"))


def test_a_feed_shows_only_its_users_jurisdiction_and_filters():
    sh = User(name="sh", jurisdiction="SH", password="-")
    region = User(name="chief", jurisdiction="region", password="-")
    assert Feed(sh, {}).wants(alert("SH")) and not Feed(sh, {}).wants(alert("JS"))
    assert not Feed(sh, {}).wants(alert(None))
    assert Feed(region, {}).wants(alert("JS")) and Feed(region, {}).wants(alert(None))
    # a filter never widens the jurisdiction
    assert not Feed(sh, {"province": "JS"}).wants(alert("JS"))
    critical_only = Feed(region, {"severity": "critical", "type": "ZONE_VIOLATION"})
    assert critical_only.wants(alert("ZJ", "ZONE_VIOLATION", Severity.CRITICAL))
    assert not critical_only.wants(alert("ZJ", "SPEEDING", Severity.CRITICAL))
    assert not Feed(region, {"city": "320100"}).wants(alert("SH"))
