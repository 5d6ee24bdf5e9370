"""One source for each rule's settings.

A rule's configuration struct (``SpeedingConfig`` ...) holds the rule's defaults. The
settings (``config.py``) repeat them as literals, in seconds, rather than reading them:
every rule module imports the core (numpy, shapely and pyproj, through the rule context),
and ``config.py`` is imported by the CLI and the gateway, which need none of it. So these
tests keep the copies in agreement: the settings' defaults give the rules' defaults, every
field of the rules' configuration is either set from a setting or listed in :data:`FIXED`,
and the README's settings table shows every such setting with the default it has.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from yrd_hazmat.config import Settings, env_var
from yrd_hazmat.core.engine import RulesConfig
from yrd_hazmat.rules_config import rules_config

README = Path(__file__).resolve().parents[2] / "README.md"

FIXED = {
    # Fields of RulesConfig deliberately not tunable (path: why), each a default of its
    # rule's configuration and said in the README where it matters.
    "plausibility.min_jump_m":
        "500 m: shorter jumps are GPS noise, whatever speed they imply (IMPLAUSIBLE_JUMP row)",
    "handover.speed_smoothing": "weight of a ping in the moving average of speed for ETAs",
    "signal.trip_recent_ms": "on a trip = moved within 10 min (SIGNAL_LOST row)",
    "speeding.limits.unknown_road_as":
        "a ping without road_class gets the expressway limit: no false alarms on expressways",
    "zones.limits.unknown_road_as": "the same legal limits as SPEEDING",
    "coverage_gap_ms": "judged fixes within 60 s of each other cover the time between them",
    "history_settle_ms": "kept fixes wait 30 s for the rest of their upload",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """The defaults, whatever the shell that runs the tests has set."""
    for name in list(os.environ):
        if name.startswith("YRD_"):
            monkeypatch.delenv(name)


def leaves(value: Any, path: str = "") -> dict[str, Any]:
    """Every field of a (nested) configuration struct, by dotted path."""
    if not isinstance(value, msgspec.Struct):
        return {path: value}
    found: dict[str, Any] = {}
    for name in value.__struct_fields__:
        found |= leaves(getattr(value, name), f"{path}.{name}" if path else name)
    return found


def _other(value: Any) -> Any:
    """Another value of a setting's type (None: a value no rule setting has)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value * 2 + 1
    if isinstance(value, str):
        return value + "x"
    return None


def reach() -> dict[str, set[str]]:
    """Setting -> the fields of the rules' configuration it sets, found by changing that
    setting alone: what ``rules_config`` really reads, not what it is meant to."""
    base = Settings()
    before = leaves(rules_config(base))
    found: dict[str, set[str]] = {}
    for name in Settings.model_fields:
        other = _other(getattr(base, name))
        if other is None:
            continue
        after = leaves(rules_config(base.model_copy(update={name: other})))
        changed = {path for path, value in before.items() if after[path] != value}
        if changed:
            found[name] = changed
    return found


def test_the_settings_defaults_give_the_rules_own_defaults():
    by_settings, own = leaves(rules_config(Settings())), leaves(RulesConfig())
    setting_of = {path: name for name, paths in reach().items() for path in paths}
    wrong = [f"{path}: the rule's default is {own[path]!r}, "
             f"{env_var(setting_of.get(path, '?'))} gives {by_settings[path]!r}"
             for path in own if by_settings[path] != own[path]]
    assert rules_config(Settings()) == RulesConfig(), (
        "set these settings' defaults in config.py to the rules' own (seconds for *_ms):\n"
        + "\n".join(wrong))


def test_the_settings_reached_are_found():
    """The detector itself: settings known to reach several rules are seen in each, others
    in none."""
    found = reach()
    assert found["moving_kmh"] == {"permits.moving_kmh", "handover.moving_kmh",
                                   "fatigue.moving_kmh", "stops.moving_kmh",
                                   "signal.moving_kmh"}
    assert found["responders_max"] == {"zones.response.responders_max",
                                       "device_alarm.responders_max"}
    assert "topic_pings" not in found and "signal_check_interval_s" not in found


def test_every_rule_field_is_set_from_a_setting_or_deliberately_fixed():
    fields = set(leaves(RulesConfig()))
    reached = set().union(*reach().values())
    missing = sorted(fields - reached - FIXED.keys())
    assert not missing, (
        f"no setting reaches {', '.join(missing)}: add a setting to config.py (default: the "
        "rule's, in seconds for *_ms), set the field from it in rules_config.py and add its "
        "row to README.md 'Configuration'; or, if it is deliberately not tunable, list it in "
        "FIXED in this file with why")
    assert FIXED.keys() <= fields, f"FIXED lists fields that are gone: {FIXED.keys() - fields}"
    both = FIXED.keys() & reached
    assert not both, f"FIXED lists fields a setting sets: {both}"


def readme_defaults() -> dict[str, str | None]:
    """Variable -> its default as the README's settings table writes it (None: its row
    does not pair variables with defaults, as in ``| `A` / `B` | `1` / `2` | ... |``)."""
    section = README.read_text(encoding="utf-8").split("\n## Configuration\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    table: dict[str, str | None] = {}
    for names_cell, defaults_cell in re.findall(r"^\| ([^|]*) \| ([^|]*) \|", section, re.M):
        names = re.findall(r"`([A-Z][A-Z0-9_]*)`", names_cell)
        defaults = re.findall(r"`([^`]*)`", defaults_cell)
        if len(defaults) == 1:
            defaults *= len(names)
        paired = len(defaults) == len(names)
        for i, name in enumerate(names):
            table[name] = defaults[i] if paired else None
    return table


def same(written: str, value: Any) -> bool:
    """Whether the table's text is the value (numbers as numbers: ``30`` is 30.0)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(written) == float(value)
        except ValueError:
            return False
    return written == str(value)


def test_the_readme_documents_every_rule_setting_with_its_default():
    table, settings = readme_defaults(), Settings()
    wrong = []
    for name in sorted(reach()):
        variable, value = env_var(name), getattr(settings, name)
        if variable not in table:
            wrong.append(f"{variable}: no row")
        elif table[variable] is None:
            wrong.append(f"{variable}: its row does not pair variables with defaults")
        elif not same(table[variable], value):
            wrong.append(f"{variable}: the README says {table[variable]!r}, "
                         f"Settings() has {value!r}")
    assert not wrong, "README.md 'Configuration' table:\n" + "\n".join(wrong)
