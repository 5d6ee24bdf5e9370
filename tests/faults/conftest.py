"""The fault suite (issue #8): crashes, codecs, a broker restart, a Redis outage.

Each test runs its own worker on its own app id and topics (``run_env``); a test
that stops a broker or Redis starts its own on free ports (``tests/harness.py``), never
the shared ones. Workers, brokers and redis-servers started here are stopped
here, whatever the outcome.
"""

from __future__ import annotations

import os
import random

import pytest

from tests.harness import OwnKafka
from tests.integration.harness import WorkerProcess


@pytest.fixture
def seed() -> int:
    """The random seed of a fault schedule: ``YRD_FAULT_SEED`` replays a failed run."""
    value = int(os.environ.get("YRD_FAULT_SEED") or random.SystemRandom().randrange(1, 10**6))
    print(f"\nfault schedule seed: {value} (rerun with YRD_FAULT_SEED={value})")
    return value


@pytest.fixture
def workers():
    """Every worker a test starts; killed at the end if still running."""
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        if w.alive:
            try:
                w.stop(timeout=20)
            except Exception:  # noqa: BLE001  (a hung worker must not hang the suite)
                if w.proc is not None and w.proc.poll() is None:
                    os.killpg(w.proc.pid, 9)
                    w.proc.wait()


@pytest.fixture
def broker(tmp_path):
    """A broker of the test's own (the shared one is never stopped), destroyed after it."""
    kafka = OwnKafka(tmp_path / "services")
    kafka.start()
    yield kafka
    kafka.destroy()
