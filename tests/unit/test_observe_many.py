"""observe_many records exactly what one observe per value records."""

from __future__ import annotations

import numpy as np
from hypothesis import given, strategies as st
from prometheus_client import CollectorRegistry, Histogram

from yrd_hazmat.metrics import observe_many

BUCKETS = (0.005, 0.01, 0.1, 1, 10)


def _samples(h: Histogram) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for m in h.collect() for s in m.samples if not s.name.endswith("_created")}


@given(st.lists(st.one_of(st.sampled_from(BUCKETS), st.floats(0, 50, allow_nan=False)),
                max_size=200))
def test_same_buckets_count_and_sum_as_one_observe_each(values):
    one, many = (Histogram("h", "h", buckets=BUCKETS, registry=CollectorRegistry())
                 for _ in range(2))
    for v in values:
        one.observe(v)
    observe_many(many, np.array(values, dtype=float))
    a, b = _samples(one), _samples(many)
    total_one, total_many = a.pop(("h_sum", ())), b.pop(("h_sum", ()))
    assert a == b  # every bucket and the count
    assert abs(total_one - total_many) <= 1e-9 * max(1.0, total_one)  # summed in another order
