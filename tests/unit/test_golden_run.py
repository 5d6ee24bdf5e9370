"""The worker's behaviour, pinned: the golden run (:mod:`tests.golden`) gives exactly the
records, read-model updates and states recorded in ``tests/golden/expected.jsonl.gz``.

Every alert type, shuffled and duplicated pings, kept fixes uploaded late, refused and
hostile records, the timer's ticks: a refactoring of the batch path that changes any
record, or any vehicle's state, fails here with the lines that differ. A change of
behaviour that is meant records the file anew (``python -m tests.golden.run --write``)
and says so in its commit."""

from __future__ import annotations

import difflib
import json
from collections import Counter

from yrd_hazmat.core.models import RAISED_ELSEWHERE, AlertType
from tests.golden.run import expected_lines, golden_lines


def test_the_golden_run_gives_the_recorded_output_to_the_byte():
    got, expected = golden_lines(), expected_lines()
    types = Counter(json.loads(line)["value"]["type"] for line in expected
                    if json.loads(line)["topic"] == "yrd.alerts")
    by_rules = set(AlertType) - RAISED_ELSEWHERE
    assert set(types) == by_rules, f"the scenario no longer raises every type: {types}"
    if got != expected:
        diff = list(difflib.unified_diff(expected, got, "expected", "got", n=0, lineterm=""))
        raise AssertionError(f"{len(diff)} diff lines; the first:\n" + "\n".join(diff[:40]))
