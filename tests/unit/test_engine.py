"""Event-time order, duplicates and late pings in the core."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from yrd_hazmat.alerts import incident_id
from yrd_hazmat.engine import advance
from yrd_hazmat.state import dump_state, load_state
from tests.factories import RULES, T0, obs

CFG = RULES
TRACE = [obs(t, 95 if 20 <= t < 100 else 60) for t in range(0, 160, 10)]


def alert_ids(trace, batches=1):
    state, ids = None, []
    size = -(-len(trace) // batches)
    for i in range(0, len(trace), size):
        out = advance(state, "苏A00001", trace[i:i + size], CFG, T0)
        state = load_state(dump_state(out.state))  # through the table's bytes, as in the worker
        ids += [a.alert_id for a in out.alerts]
    return ids


def test_order_within_a_batch_does_not_matter():
    shuffled = TRACE[:]
    random.Random(3).shuffle(shuffled)
    assert alert_ids(shuffled) == alert_ids(TRACE)
    assert len(alert_ids(TRACE)) == 2


def test_batching_does_not_change_the_alerts():
    assert alert_ids(TRACE, batches=5) == alert_ids(TRACE, batches=1)


def test_duplicates_never_raise_twice():
    doubled = [o for o in TRACE for _ in range(2)]
    out = advance(None, "苏A00001", doubled, CFG, T0)
    assert [a.alert_id for a in out.alerts] == alert_ids(TRACE)
    assert out.duplicates == len(TRACE) and out.late == []


def test_late_pings_are_returned_not_dropped():
    first = advance(None, "苏A00001", TRACE[5:], CFG, T0)
    second = advance(first.state, "苏A00001", TRACE[:5], CFG, T0)
    assert second.late == [0, 1, 2, 3, 4]
    assert second.state.late == 5 and second.alerts == []


def test_alert_ids_are_deterministic_across_runs():
    """Two separate interpreters, with different string-hash seeds (set and dict orders
    differ between them), give the ids this process gives: nothing in an id depends on
    the process that computed it."""
    here = alert_ids(TRACE)
    assert here  # the trace raises and clears SPEEDING
    script = ("import json; from tests.unit.test_engine import TRACE, alert_ids; "
              "print(json.dumps(alert_ids(TRACE)))")
    root = Path(__file__).resolve().parents[2]
    for seed in ("1", "4242"):
        out = subprocess.run([sys.executable, "-c", script], cwd=root, check=True,
                             capture_output=True, text=True,
                             env=os.environ | {"PYTHONHASHSEED": seed, "PYTHONPATH": str(root)})
        assert json.loads(out.stdout.strip().splitlines()[-1]) == here
    assert incident_id("a", "SPEEDING", "", 1) != incident_id("b", "SPEEDING", "", 1)


def test_state_round_trips_through_bytes():
    out = advance(None, "苏A00001", TRACE[:6], CFG, T0)
    restored = load_state(dump_state(out.state))
    assert restored == out.state and restored.speeding.incident is not None
