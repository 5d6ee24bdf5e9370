"""Property: a trace's alerts do not depend on arrival order within the lateness bound,
on duplicates, or on how the arrivals are cut into batches."""

from __future__ import annotations

from datetime import timedelta

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from yrd_hazmat.core.engine import Reference, RulesConfig, advance, silence
from yrd_hazmat.core.geo.jurisdiction import province_shapes_metric
from yrd_hazmat.core.observation import Observation
from yrd_hazmat.core.timeutil import to_ms
from tests.factories import NO_PERMITS_REQUIRED, T0, obs

LATENESS_MS = 30_000
CFG = RulesConfig(lateness_ms=LATENESS_MS, permits=NO_PERMITS_REQUIRED)
REF = Reference(provinces=province_shapes_metric())
END = to_ms(T0 + timedelta(days=1))  # a clock far past the trace: flushes the buffer


@st.composite
def traces(draw):
    """A truck's trace: irregular intervals (some long gaps), speeds around the limits,
    alarm bits switching, moving east at its speed."""
    n = draw(st.integers(5, 60))
    gaps = draw(st.lists(st.sampled_from([1, 5, 10, 30, 400]), min_size=n, max_size=n))
    speeds = draw(st.lists(st.sampled_from([0.0, 40.0, 70.0, 85.0, 100.0]), min_size=n, max_size=n))
    alarms = draw(st.lists(st.sampled_from([0, 1, 1 << 29]), min_size=n, max_size=n))
    trace, t, x = [], 0, 0.0
    for gap, speed, alarm in zip(gaps, speeds, alarms):
        t += gap
        x += speed / 3.6 * gap
        base = obs(t, speed)
        trace.append(Observation(**({f: getattr(base, f) for f in base.__struct_fields__}
                                    | {"x_m": x, "alarm_flags": alarm})))
    return trace


@st.composite
def deliveries(draw, trace):
    """The trace as it might arrive: each ping delayed by up to the lateness bound, some
    sent twice (the copy also within the bound), cut into batches anywhere."""
    rng = draw(st.randoms(use_true_random=False))
    copies = trace + [o for o in trace if rng.random() < 0.2]
    arrival = sorted(copies, key=lambda o: o.ts_ms + rng.uniform(0, LATENESS_MS))
    cuts = sorted(rng.sample(range(1, len(arrival)), k=min(len(arrival) - 1, rng.randint(0, 6))))
    bounds = [0, *cuts, len(arrival)]
    return [arrival[a:b] for a, b in zip(bounds, bounds[1:])]


def alerts_of(batches):
    state, ids, late = None, [], 0
    for batch in batches:
        out = advance(state, "沪A99999", batch, CFG, T0, REF)
        state, late = out.state, late + len(out.late)
        ids += [a.alert_id for a in out.alerts]
    ids += [a.alert_id for a in silence(state, END, CFG, T0, REF).alerts]
    return ids, late


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_alerts_do_not_depend_on_order_duplicates_or_batching(data):
    trace = data.draw(traces())
    in_order, _ = alerts_of([trace])
    shuffled, late = alerts_of(data.draw(deliveries(trace)))
    assert late == 0
    assert shuffled == in_order


def test_a_ping_later_than_the_bound_is_judged_as_a_kept_fix_not_run_live():
    trace = [obs(t, 60.0) for t in range(0, 200, 10)]
    first = advance(None, "沪A99999", trace[5:], CFG, T0, REF)  # up to 190 s: runs up to 160 s
    out = advance(first.state, "沪A99999", trace[:2], CFG, T0, REF)  # 0 and 10 s: > 30 s late
    assert out.late == [] and [o.ts_ms for o in out.state.kept] == [o.ts_ms for o in trace[:2]]
    assert out.state.last == first.state.last and out.state.pings == first.state.pings


# --- duplicates, implausible jumps included (issue #8) ---------------------------------

JUMP_M = 50_000.0  # far beyond any truck's reach in the trace's intervals


@st.composite
def traces_with_jumps(draw):
    """A trace (as above) with implausible fixes: single bad fixes that jump away and back,
    and real relocations (every later fix displaced), sometimes two bad fixes in a row."""
    trace = draw(traces())
    kinds = draw(st.lists(st.sampled_from(["ok", "ok", "ok", "glitch", "relocate"]),
                          min_size=len(trace), max_size=len(trace)))
    shifted, offset = [], 0.0
    for o, kind in zip(trace, kinds):
        if kind == "relocate":
            offset += JUMP_M
        x = o.x_m + offset + (JUMP_M if kind == "glitch" else 0.0)
        shifted.append(Observation(**({f: getattr(o, f) for f in o.__struct_fields__}
                                      | {"x_m": x})))
    return shifted


@st.composite
def with_duplicates(draw, trace):
    """The trace in order, with copies of some pings delivered again anywhere after the
    original (at once, a few pings later, or at the end), cut into batches anywhere."""
    rng = draw(st.randoms(use_true_random=False))
    arrival = list(trace)
    for original in [o for o in trace if rng.random() < 0.3]:
        at = arrival.index(original) + 1
        arrival.insert(rng.randint(at, min(len(arrival), at + rng.choice([0, 2, 10, 1000]))),
                       original)
    cuts = sorted(rng.sample(range(1, len(arrival)), k=min(len(arrival) - 1, rng.randint(0, 8))))
    bounds = [0, *cuts, len(arrival)]
    return [arrival[a:b] for a, b in zip(bounds, bounds[1:])]


def contents_of(batches, cfg):
    """Every alert in full (``emitted_at`` aside), in the order the core emitted them."""
    state, alerts = None, []
    for batch in batches:
        out = advance(state, "沪A99999", batch, cfg, T0, REF)
        state = out.state
        alerts += out.alerts
    alerts += silence(state, END, cfg, T0, REF).alerts
    return [msgspec.json.encode(msgspec.structs.replace(a, emitted_at=T0)) for a in alerts]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), lateness_ms=st.sampled_from([0, LATENESS_MS]))
def test_a_duplicate_delivery_changes_no_alert_even_of_an_implausible_fix(data, lateness_ms):
    cfg = msgspec.structs.replace(CFG, lateness_ms=lateness_ms)
    trace = data.draw(traces_with_jumps())
    once = contents_of([trace], cfg)
    assert contents_of(data.draw(with_duplicates(trace)), cfg) == once
