"""A fresh, isolated worker per test module, on the real broker and Redis."""

from __future__ import annotations

import pytest

from tests.integration.harness import Kafka, WorkerProcess, run_env


@pytest.fixture(scope="module")
def env(services):
    return run_env(services)


@pytest.fixture(scope="module")
def kafka(services) -> Kafka:
    return Kafka(services["KAFKA_BOOTSTRAP"])


@pytest.fixture(scope="module")
def worker(env, tmp_path_factory):
    proc = WorkerProcess(env, tmp_path_factory.mktemp("worker") / "worker.log").start()
    yield proc
    assert proc.stop() == 0, proc.log_tail()
