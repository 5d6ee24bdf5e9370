"""The read model's key schema is written once: in keys.py, which the README's table and
the Lua scripts follow (the scripts get every key from Python, none of their own)."""

from __future__ import annotations

import inspect
import re

import pytest

from yrd_hazmat.readmodel import keys as keyschema
from yrd_hazmat.readmodel.keys import DEFAULT_PREFIX, PROVINCES, Keys
from yrd_hazmat.readmodel.readers import READ_LATEST_SCRIPT
from yrd_hazmat.readmodel.writer import WRITE_SCRIPT, script_args, script_keys
from tests.conftest import REPO

PLACEHOLDERS = {"vehicle_id": "{vehicle_id}", "province": "{PROV}"}
"""The README's placeholder for each argument of a key method."""


def key_patterns(keys: Keys) -> set[str]:
    """Every key or key pattern ``Keys`` names: its methods (called with the README's
    placeholders) and its string attributes, less the prefixes (parts of a key, not keys)."""
    out = set()
    for name, member in inspect.getmembers(keys):
        if name.startswith("_") or name == "prefix" or name.endswith("_prefix"):
            continue
        if callable(member):
            [param] = inspect.signature(member).parameters
            out.add(member(PLACEHOLDERS[param]))
        else:
            out.add(member)
    return out


def lua_strings(source: str) -> list[str]:
    return re.findall(r"'([^'\n]*)'|\"([^\"\n]*)\"", source)


@pytest.mark.parametrize("source", [WRITE_SCRIPT, READ_LATEST_SCRIPT], ids=["write", "read"])
def test_the_scripts_name_no_key_of_their_own(source):
    literals = [a or b for a, b in lua_strings(source)]
    assert literals, "no string literal found: the pattern is wrong"
    # every key name is the prefix and fragments joined by ':'; a script that built a key
    # would need the separator, the prefix or a province's key suffix as a literal
    assert not [s for s in literals if ":" in s]
    assert not {s.lower() for s in literals} & {DEFAULT_PREFIX, *(p.lower() for p in PROVINCES)}
    assert DEFAULT_PREFIX not in source.lower()


def test_the_write_script_gets_every_key_name_from_keys_py():
    keys = Keys("fleet{7}:rm")
    declared = script_keys(keys)
    # in KEYS: every key but the per-vehicle ones, each province's for the per-province ones
    fixed = {k for k in key_patterns(keys) if not k.endswith(("{vehicle_id}", "{PROV}"))}
    assert set(declared) == (fixed | {keys.vehicles_in(p) for p in PROVINCES}
                             | {keys.open_by_province(p) for p in PROVINCES})
    # in ARGV: the per-vehicle keys' prefixes (a key per vehicle would cost the hot path)
    args = script_args(keys, 600, 50_000)
    assert args[3:6] == [keys.vehicle_prefix, keys.track_prefix, keys.open_by_vehicle_prefix]
    assert {keys.vehicle_prefix + "{vehicle_id}", keys.track_prefix + "{vehicle_id}",
            keys.open_by_vehicle_prefix + "{vehicle_id}"} == key_patterns(keys) - fixed - {
        keys.vehicles_in("{PROV}"), keys.open_by_province("{PROV}")}
    # the province names follow in the order of their keys, as the rows carry them
    names = args[6:]
    n = len(PROVINCES)
    assert len(declared) == 5 + 2 * n and len(names) == n
    for name, in_key, open_key in zip(names, declared[5:5 + n], declared[5 + n:]):
        assert in_key == keys.vehicles_in(name) and open_key == keys.open_by_province(name)
    assert "" in names  # outside the region: the rows' '' (the hash's province field)


def readme_keys() -> set[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Redis read model\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {key for row in rows for key in re.findall(rf"`({DEFAULT_PREFIX}:[^`\s]+)`", row)}


def docstring_keys() -> set[str]:
    names = re.findall(r"^``(P:[^`]+)``", keyschema.__doc__, re.MULTILINE)
    return {DEFAULT_PREFIX + name[1:] for name in names}


def test_the_readme_table_and_the_docstring_table_are_the_key_schema():
    schema = key_patterns(Keys())
    assert docstring_keys() == schema
    desk = {"yrd:desk:session:{sid}"}  # the desk's own key (desk/sessions.py), same prefix
    assert readme_keys() == schema | desk


def test_keys_under_another_prefix():
    keys = Keys("t1")
    assert keys.vehicle("沪A1") == "t1:vehicle:沪A1"
    assert keys.track("沪A1") == "t1:track:沪A1"
    assert keys.vehicles_in(None) == keys.vehicles_in("") == "t1:vehicles:none"
    assert keys.open_by_province("JS") == "t1:alerts:open:province:JS"
    assert all(p.startswith("t1:") for p in key_patterns(keys))
