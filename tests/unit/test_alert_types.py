"""Alert types are one enumeration: the rules raise its members, the README documents them."""

from __future__ import annotations

import re
from pathlib import Path

from yrd_hazmat.core.models import RAISED_ELSEWHERE, AlertType
from yrd_hazmat.gateway import platform_alarms
from yrd_hazmat.core.rules import (
    device_alarm, fatigue, handover, permits, plausibility, signal, speeding, stops, zones,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_rule_raises_members_of_the_enumeration_and_declares_them():
    raises = {
        device_alarm: {device_alarm.TYPE}, fatigue: {fatigue.TYPE},
        plausibility: {plausibility.TYPE}, signal: {signal.TYPE}, speeding: {speeding.TYPE},
        stops: {stops.TYPE},
        handover: {handover.HANDOVER, handover.NOT_PERMITTED, handover.EXPECTED},
        permits: {permits.NO_VALID_PERMIT, permits.TIME_WINDOW, permits.ROUTE_DEVIATION},
        zones: {zones.VIOLATION, zones.DWELL, zones.SPEEDING},
    }
    for module, types in raises.items():
        assert set(module.RULE.raises) == types, module.__name__
    raised = set().union(*raises.values())
    assert all(isinstance(t, AlertType) for t in raised)
    assert RAISED_ELSEWHERE == {platform_alarms.TYPE}  # the gateway's, for lower platforms
    assert raised | RAISED_ELSEWHERE == set(AlertType)  # no member that nothing raises
    assert not raised & RAISED_ELSEWHERE


def test_the_readme_documents_exactly_the_enumeration():
    text = README.read_text(encoding="utf-8")
    section = text.split("## Alert types", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", section, re.M))
    assert documented == {t.value for t in AlertType}
