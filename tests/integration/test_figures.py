"""``yrd-hazmat figures`` as a process: today's figures from an archive on /metrics, then
a clean stop on SIGTERM. Needs no Kafka."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from datetime import datetime, timedelta

import pytest

from tests.harness import free_port, wait_until
from tests.unit.test_archive import batch_of, record
from yrd_hazmat.archive import register_snapshot, writer
from yrd_hazmat.archive.store import Store
from yrd_hazmat.core.codec import encode
from yrd_hazmat.core.timeutil import CHINA_TZ
from yrd_hazmat.register import Register

pytestmark = pytest.mark.integration


def test_todays_figures_are_served_and_the_process_stops_cleanly(tmp_path):
    now = datetime.now(CHINA_TZ)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = max(midnight, now - timedelta(seconds=400))  # today's, none ahead of now
    store = Store.local_dir(str(tmp_path / "archive"))
    recs = [record("沪A00001", start + timedelta(seconds=10 * i), i) for i in range(30)
            if start + timedelta(seconds=10 * i) < now]
    writer.flush(store, batch_of(recs))
    register = Register()
    register.permit("沪A00001".encode(), encode({"carrier": "甲运输"}))
    register.permit("沪A00002".encode(), encode({"carrier": "甲运输"}))
    register_snapshot.write(store, register, now.date())
    port = free_port()
    env = dict(os.environ) | {"YRD_ARCHIVE_DIR": str(tmp_path / "archive"),
                              "YRD_ARCHIVE_S3_URL": "", "YRD_ASSESS_METRICS_PORT": str(port),
                              "YRD_ASSESS_EVERY_S": "1"}
    log = tmp_path / "figures.log"
    proc = subprocess.Popen([sys.executable, "-m", "yrd_hazmat.cli", "figures"], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        def metrics() -> str:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    return r.read().decode()
            except OSError:
                return ""

        wait_until(lambda: "yrd_today_vehicles{" in metrics(), "today's figures served", 60)
        text = metrics()
        assert 'yrd_today_vehicles{province="all",state="registered"} 2.0' in text
        assert 'yrd_today_vehicles{province="SH",state="online"} 1.0' in text
        assert 'yrd_today_rate{figure="online",province="all"} 1.0' in text
        assert f'yrd_today_records{{kind="all",province="SH"}} {len(recs)}.0' in text
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, log.read_text()
