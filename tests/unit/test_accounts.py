"""Desk accounts and roles, and the audit log's records: what each role may do, the scopes
a role can have, the accounts table following its topic, and an audit entry archived."""

from __future__ import annotations

import msgspec
import pytest

from yrd_hazmat.accounts import Account, Accounts, encode
from yrd_hazmat.archive import rows
from yrd_hazmat.audit import decode as decode_entry
from yrd_hazmat.audit import encode as encode_entry
from yrd_hazmat.audit import entry

HASH = "pbkdf2_sha256$600000$00$00"


def account(**kw) -> Account:
    return Account(**({"name": "sh-duty", "role": "duty", "province": "SH",
                       "password": HASH} | kw))


@pytest.mark.parametrize("role,allowed", [
    ("duty", {"view", "act", "command"}),
    ("supervisor", {"view", "act", "command", "decide_appeal", "manage_subscriptions"}),
    ("region", {"view", "act", "command", "decide_appeal", "manage_subscriptions",
                "manage_users", "answer_uplink"}),
    ("carrier", {"view", "explain", "manage_subscriptions"}),
    ("readonly", {"view"}),
])
def test_what_each_role_may_do(role, allowed):
    scope = {"carrier": {"carrier": "申通危运", "province": None},
             "region": {"province": None}}.get(role, {"province": "SH"})
    a = account(role=role, **scope)
    everything = {"view", "act", "command", "explain", "decide_appeal",
                  "manage_subscriptions", "manage_users", "answer_uplink"}
    assert {c for c in everything if a.may(c)} == allowed
    assert not any(msgspec.structs.replace(a, disabled=True).may(c) for c in everything)


@pytest.mark.parametrize("fields,problem", [
    ({"role": "duty", "province": None}, "a duty account names its province"),
    ({"role": "supervisor", "province": None}, "a supervisor account names its province"),
    ({"role": "region", "province": "SH"}, "a region account has no province"),
    ({"role": "carrier", "province": None}, "a carrier account names its carrier"),
    ({"role": "carrier", "province": "SH", "carrier": "甲"}, "a carrier account names its"),
    ({"role": "duty", "carrier": "甲"}, "only a carrier account names a carrier"),
])
def test_a_role_has_the_scope_it_needs(fields, problem):
    with pytest.raises(ValueError, match=problem):
        account(**fields)


def test_the_scope_in_the_desks_terms():
    assert account().jurisdiction == "SH" and account().provinces == ("SH",)
    region = account(role="region", province=None)
    assert region.jurisdiction == "region" and None in region.provinces
    reader = account(role="readonly", province=None)
    assert reader.jurisdiction == "region"
    carrier = account(role="carrier", province=None, carrier="甲")
    assert carrier.jurisdiction == "carrier" and carrier.provinces == ()


def test_the_table_follows_its_topic_and_a_password_never_prints():
    table = Accounts([account(name="from-file")])
    table.apply(b"sh-duty", encode(account()))
    table.apply(b"sh-sup", encode(account(name="sh-sup", role="supervisor")))
    table.apply(b"broken", b'{"name": "broken", "role": "duty", "password": "x"}')  # no province
    assert [a.name for a in table.all()] == ["from-file", "sh-duty", "sh-sup"]
    table.apply(b"sh-duty", None)
    assert table.get("sh-duty") is None and len(table) == 2
    assert "pbkdf2" not in repr(table.get("sh-sup"))


def test_an_audit_entry_round_trips_and_is_archived():
    e = entry("sh-duty", "incident.appeal_rejected", "沪A00001:SPEEDING:1", role="supervisor",
              address="10.0.0.7", text="核实无误", empty=None)
    assert e.details == {"text": "核实无误"}
    assert decode_entry(encode_entry(e)) == e
    out = rows.Rows("audit")
    Record = type("Record", (), {})
    rec = Record()
    rec.key, rec.value, rec.timestamp, rec.partition, rec.offset = (
        b"sh-duty", encode_entry(e), int(e.at.timestamp() * 1000), 0, 7)
    bad = Record()
    bad.key, bad.value, bad.timestamp, bad.partition, bad.offset = (b"x", b"{", 0, 0, 8)
    assert rows.audit([rec, bad], out=out) == 1  # the bad one counted, not written
    (table,) = out.tables().values()
    row = table.to_pylist()[0]
    assert (row["user"], row["action"], row["outcome"], row["offset"]) == (
        "sh-duty", "incident.appeal_rejected", "ok", 7)
    assert row["ts"] == e.at.replace(microsecond=e.at.microsecond // 1000 * 1000)
    assert '"text":"核实无误"' in row["details"]
