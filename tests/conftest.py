"""Test-wide fixtures: the real local Kafka broker and Redis, started once per session.

Unit tests never touch them. Integration tests ask for ``services``; the
broker and Redis come from ``deploy/local/services.py`` (the same script the
README's commands use) on their own ports and state directory, unless
``KAFKA_BOOTSTRAP`` and ``REDIS_URL`` name existing ones. Tests of the archive on
S3 ask for ``object_store``: SeaweedFS's S3 gateway from the same script (only then
started; ``YRD_ARCHIVE_S3_ENDPOINT`` with its keys names an existing store instead).
"""

from __future__ import annotations

import os
import uuid

import pytest

from tests.harness import REPO, local_services


@pytest.fixture(scope="session")
def services() -> dict[str, str]:
    """KAFKA_BOOTSTRAP and REDIS_URL of running services, also set in os.environ."""
    svc = local_services()
    state_dir = REPO / ".local" / "test"
    started_here = "KAFKA_BOOTSTRAP" not in os.environ or "REDIS_URL" not in os.environ
    env = svc.up(
        state_dir,
        kafka_port=int(os.environ.get("YRD_TEST_KAFKA_PORT", 29092)),
        redis_port=int(os.environ.get("YRD_TEST_REDIS_PORT", 26379)),
    )
    os.environ.update(env)
    yield env
    if started_here:
        svc.down(state_dir, wipe=True)


@pytest.fixture(scope="session")
def object_store() -> dict[str, str]:
    """The archive's S3 settings (``YRD_ARCHIVE_S3_URL``: the bucket yrd-test, a prefix of
    this session's own; endpoint, access key, secret key, region) of a running SeaweedFS.
    Not put in os.environ: every other test's Settings keep the local directory."""
    svc = local_services()
    state_dir = REPO / ".local" / "test"
    started_here = "YRD_ARCHIVE_S3_ENDPOINT" not in os.environ
    env = svc.up_s3(state_dir, s3_port=int(os.environ.get("YRD_TEST_S3_PORT", 28333)))
    missing = {"YRD_ARCHIVE_S3_ACCESS_KEY", "YRD_ARCHIVE_S3_SECRET_KEY"} - env.keys()
    if missing:
        pytest.fail(f"YRD_ARCHIVE_S3_ENDPOINT is set, but not {', '.join(sorted(missing))}")
    yield {"YRD_ARCHIVE_S3_URL": f"s3://yrd-test/archive-{uuid.uuid4().hex[:8]}", **env}
    if started_here:
        svc.down_s3(state_dir, wipe=True)


def pytest_sessionfinish(session, exitstatus) -> None:
    """A skipped test fails the run: on a machine set up by ``make test`` every test must
    run (a test that skips for a tool the setup installs hides a failure). Deselected
    tests (``-k``, ``-m``) are not skips."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == 0:
        reporter.ensure_newline()
        reporter.write_line(f"{len(skipped)} test(s) skipped: every test must run here "
                            "(the reasons: in the summary)", red=True)
        session.exitstatus = 1
