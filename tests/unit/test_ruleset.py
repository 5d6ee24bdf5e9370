"""The rule protocol: rules declare their state, configuration and alert types; the engine
runs the rules it is given, in their order, with one shared context per ping."""

from __future__ import annotations

import msgspec

from yrd_hazmat.core.engine import RulesConfig, advance
from yrd_hazmat.core.models import RAISED_ELSEWHERE, AlertType
from yrd_hazmat.core.rules import fatigue, plausibility, stops
from yrd_hazmat.core.rules.rule import Rule
from yrd_hazmat.core.ruleset import RULES
from yrd_hazmat.core.state import VehicleState, dump_state, load_state
from tests.factories import RULES as CFG, T0, obs

V = "沪A12345"


def test_every_alert_type_is_raised_by_a_rule_that_declares_it():
    declared = [t for rule in RULES for t in rule.raises]
    assert all(isinstance(t, AlertType) for t in declared)
    assert set(declared) == set(AlertType) - RAISED_ELSEWHERE
    assert len({rule.name for rule in RULES}) == len(RULES)


def test_each_rule_keeps_its_own_state_in_the_vehicle_state():
    fields = [rule.field for rule in RULES]
    assert len(fields) == len(set(fields))
    state = VehicleState(vehicle_id=V)
    for rule in RULES:
        assert getattr(state, rule.field) == rule.fresh()


def test_a_state_written_before_a_rule_existed_loads_with_that_rules_fresh_state():
    state = VehicleState(vehicle_id=V, pings=7)
    state.fatigue.driving_since_ms = 123
    record = msgspec.msgpack.decode(dump_state(state))
    del record["fatigue"]  # as written by a worker that had no fatigue rule
    loaded = load_state(msgspec.msgpack.encode(record))
    assert loaded.pings == 7 and loaded.fatigue == fatigue.RULE.fresh()


def test_the_configuration_holds_each_configurable_rules_defaults():
    cfg = RulesConfig()
    for rule in RULES:
        if rule.config is not None:
            assert getattr(cfg, rule.name) == rule.config()
    assert cfg.lateness_ms == 0


def spy(name: str, field: str, log: list) -> Rule:
    """A rule that records which pings it saw and when (kept in another rule's field)."""
    def step(state, o, ctx, cfg):
        log.append((name, o.ts_ms, ctx.previous.ts_ms if ctx.previous else None))
        return state, []
    return Rule(name=name, state_field=field, state=object, new_state=lambda: None,
                raises=(), step=step)


def test_the_engine_runs_the_rules_it_is_given_in_their_order():
    log: list = []
    rules = (spy("second", "stop", log), spy("first", "fatigue", log))
    pings = [obs(20), obs(0), obs(10)]  # out of order: the rules see them in order
    advance(None, V, pings, CFG, T0, rules=rules)
    t = [o.ts_ms for o in sorted(pings, key=lambda o: o.ts_ms)]
    assert log == [("second", t[0], None), ("first", t[0], None),
                   ("second", t[1], t[0]), ("first", t[1], t[0]),
                   ("second", t[2], t[1]), ("first", t[2], t[1])]


def test_a_gate_that_raises_stops_the_ping_before_the_later_rules():
    log: list = []
    jump = msgspec.structs.replace(obs(10), x_m=50_000.0)  # 50 km in 10 s
    out = advance(None, V, [obs(0), jump, obs(20)], CFG, T0,
                  rules=(plausibility.RULE, spy("after", "fatigue", log)))
    assert [a.type for a in out.alerts] == ["IMPLAUSIBLE_JUMP"]
    assert [ts for _, ts, _ in log] == [obs(0).ts_ms, obs(20).ts_ms]  # the jump reached no rule
    assert out.state.last == obs(20) and out.implausible == 1
    assert out.state.stop == stops.RULE.fresh()  # a rule not given did not run
