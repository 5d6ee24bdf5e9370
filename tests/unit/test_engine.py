"""Event-time order, duplicates and late pings in the core."""

import json
import os
import random
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import msgspec

from yrd_hazmat.core.alerts import incident_id
from yrd_hazmat.core.engine import advance, silence, timer_due
from yrd_hazmat.core.permits.status import NO_PERMIT
from yrd_hazmat.core.state import dump_state, load_state
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


def test_kept_fixes_are_judged_as_of_their_own_time_without_rewinding_the_truck():
    """A terminal back from a dead zone reports where it is now, then uploads the fixes it
    kept: they speed for 80 s and raise SPEEDING at their own time, marked as uploaded
    late; the truck's present stays where it is."""
    present = [obs(t, 60) for t in range(600, 700, 10)]
    first = advance(None, "苏A00001", present, CFG, T0)
    waiting = advance(first.state, "苏A00001", TRACE, CFG, T0)
    assert waiting.alerts == [] and len(waiting.state.kept) == len(TRACE)  # the upload goes on?
    uploaded = advance(waiting.state, "苏A00001", [obs(700, 60)], CFG, T0)  # live again: over
    assert uploaded.late == [] and uploaded.uploaded_late == len(TRACE)
    assert [(a.type, a.state.value) for a in uploaded.alerts] == [
        ("SPEEDING", "raised"), ("SPEEDING", "cleared")]
    assert [a.alert_id for a in uploaded.alerts] == alert_ids(TRACE)  # as if they had come live
    assert all(a.details["uploaded_late"] for a in uploaded.alerts)
    assert uploaded.state.last == obs(700, 60) and uploaded.state.pings == len(present) + 1


def test_an_upload_split_over_batches_is_judged_whole():
    """The same kept fixes in batches of two: nothing is judged before the live fix that
    follows them, then the same alerts as from one batch (an episode needs 30 s)."""
    first = advance(None, "苏A00001", [obs(600, 60)], CFG, T0)
    state = first.state
    for i in range(0, len(TRACE), 2):
        out = advance(state, "苏A00001", TRACE[i:i + 2], CFG, T0)
        assert out.alerts == []
        state = load_state(dump_state(out.state))  # through the table's bytes
    judged = advance(state, "苏A00001", [obs(610, 60)], CFG, T0)
    assert [a.alert_id for a in judged.alerts] == alert_ids(TRACE)


def test_kept_fixes_with_no_live_fix_after_them_are_judged_once_they_settle():
    first = advance(None, "苏A00001", [obs(600, 60)], CFG, T0)
    waiting = advance(first.state, "苏A00001", TRACE, CFG, T0).state
    arrived = waiting.kept_at_ms
    assert silence(waiting, arrived + 10_000, CFG, T0).alerts == []  # still settling
    assert timer_due(waiting, arrived + 30_000, CFG, NO_PERMIT)
    judged = silence(waiting, arrived + 30_000, CFG, T0)
    assert [a.alert_id for a in judged.alerts] == alert_ids(TRACE) and waiting.kept == []


def test_a_second_upload_of_the_same_kept_fixes_raises_nothing():
    first = advance(None, "苏A00001", [obs(600, 60)], CFG, T0)
    once = advance(first.state, "苏A00001", TRACE + [obs(610, 60)], CFG, T0)
    assert once.uploaded_late == len(TRACE)
    again = advance(load_state(dump_state(once.state)), "苏A00001", TRACE[3:] + [obs(620, 60)],
                    CFG, T0)
    assert again.alerts == [] and again.duplicates == len(TRACE) - 3


def test_an_episode_open_at_the_last_kept_fix_is_closed_there():
    first = advance(None, "苏A00001", [obs(600, 60)], CFG, T0)
    speeding = [obs(t, 95) for t in range(0, 100, 10)]  # never slows down before the gap ends
    out = advance(first.state, "苏A00001", speeding + [obs(610, 60)], CFG, T0)
    raised, cleared = out.alerts
    assert raised.incident_id == cleared.incident_id and cleared.state.value == "cleared"
    assert cleared.ts == T0 + timedelta(seconds=90) and cleared.details["uploaded_late"]
    assert out.state.open_incidents == []  # nothing of the past stays open on the truck


def test_a_fix_older_than_the_history_horizon_is_returned_as_late():
    cfg = msgspec.structs.replace(CFG, history_horizon_ms=3600_000)
    first = advance(None, "苏A00001", [obs(7200, 60)], cfg, T0)
    out = advance(first.state, "苏A00001", [obs(0, 60), obs(3700, 60), obs(7210, 60)], cfg, T0)
    assert out.late == [0] and out.uploaded_late == 1 and out.state.late == 1


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
