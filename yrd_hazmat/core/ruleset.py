"""The rules the worker runs, in the order they run on every ping.

Adding a rule: README.md, "Adding a rule" (its module in ``rules/`` ending with its
:class:`~.rules.rule.Rule`, one line here, its alert types, its settings if tunable, its
tests). The vehicle's state (:mod:`.state`) and the rules' configuration
(:class:`.engine.RulesConfig`) are built from this list.
"""

from __future__ import annotations

from .rules import (
    device_alarm, fatigue, handover, permits, plausibility, signal, speeding, stops, zone_crossing,
    zones,
)
from .rules.rule import Rule

RULES: tuple[Rule, ...] = (
    plausibility.RULE,  # a gate: a fix that jumped implausibly far goes no further
    speeding.RULE,
    zones.RULE,
    zone_crossing.RULE,  # banned zones passed through between two fixes
    permits.RULE,
    handover.RULE,
    device_alarm.RULE,
    fatigue.RULE,
    stops.RULE,
    signal.RULE,
)
