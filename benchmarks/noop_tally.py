"""The count kept by the no-op agents (``noop_faust.py``, ``noop_batch.py``).

Each agent process gets its parameters from the environment:

- ``BENCH_NOOP_EXPECTED``: records in the backlog; once counted, the result is written;
- ``BENCH_NOOP_SKIP``: records read before the clock starts (the benchmark's first round,
  one ping per truck: the cold start of every phase, not counted);
- ``BENCH_NOOP_RESULT``: where the JSON result goes (written atomically).

The result holds when the clock started and stopped (wall time), the records
and batches counted in between, and the process's CPU time in between.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

EXPECTED = int(os.environ.get("BENCH_NOOP_EXPECTED", "0"))
TOPIC = os.environ.get("BENCH_NOOP_TOPIC", "yrd.pings")
BATCH_MAX = int(os.environ.get("BENCH_NOOP_BATCH_MAX", "2000"))
SKIP = int(os.environ.get("BENCH_NOOP_SKIP", "0"))
RESULT_PATH = Path(os.environ.get("BENCH_NOOP_RESULT", "noop-result.json"))


def app_options(default_id: str) -> dict:
    """The Faust app settings both no-op agents share (from the environment); each adds
    its own transport and delivery settings."""
    return dict(
        id=os.environ.get("BENCH_NOOP_APP_ID", default_id),
        broker=os.environ.get("BENCH_NOOP_BROKER", "kafka://127.0.0.1:39092"),
        store="memory://",
        web_enabled=False,
        topic_partitions=int(os.environ.get("BENCH_NOOP_PARTITIONS", "4")),
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        logging_config=None,
    )


class Tally:
    """Counts records; starts the clock once ``SKIP`` have been read."""

    def __init__(self) -> None:
        self.count = 0
        self.batches = 0
        self.start_count: int | None = None
        self.start_t = self.last_t = 0.0
        self.start_cpu = 0.0
        self.written = False

    def add(self, size: int) -> None:
        """Record one batch of ``size`` records; write the result once all are in."""
        self.count += size
        now = time.time()
        if self.start_count is None:
            if self.count >= SKIP:
                self.start_count, self.start_t, self.last_t = self.count, now, now
                self.start_cpu = time.process_time()
        else:
            self.batches += 1
            self.last_t = now
        if not self.written and EXPECTED and self.count >= EXPECTED:
            self._write()

    def _write(self) -> None:
        result = {
            "count": self.count,
            "counted": self.count - (self.start_count or 0),
            "batches": self.batches,
            "seconds": self.last_t - self.start_t,
            "cpu_s": time.process_time() - self.start_cpu,
        }
        tmp = RESULT_PATH.with_suffix(".tmp")
        tmp.write_text(json.dumps(result))
        tmp.replace(RESULT_PATH)
        self.written = True
