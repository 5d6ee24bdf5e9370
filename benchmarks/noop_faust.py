"""A no-op Faust worker: the throughput ceiling of Faust itself on this machine.

It reads the pings topic with the same Faust settings as the real worker
(``agents/app.py``: raw bytes, memory store, no web server) and the same
batching (``stream.take_events(2000, within=0.1)`` unless the benchmark
passes the worker's own ``YRD_BATCH_*`` values), but does nothing with the
events except count them. ``benchmarks/pipeline.py`` runs it as its own
process::

    BENCH_NOOP_BROKER=kafka://127.0.0.1:39092 BENCH_NOOP_APP_ID=bench-noop-x \\
    BENCH_NOOP_TOPIC=b-x.pings BENCH_NOOP_EXPECTED=200000 \\
    BENCH_NOOP_RESULT=/tmp/noop.json python benchmarks/noop_faust.py worker -l warn

Once ``BENCH_NOOP_EXPECTED`` events have been seen it writes a JSON result
(first and last batch wall-clock times, counts, CPU time) to
``BENCH_NOOP_RESULT``; the caller then stops the worker with SIGTERM.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import faust

BATCH_MAX = int(os.environ.get("BENCH_NOOP_BATCH_MAX", "2000"))
BATCH_WITHIN_S = float(os.environ.get("BENCH_NOOP_BATCH_WITHIN_S", "0.1"))
EXPECTED = int(os.environ.get("BENCH_NOOP_EXPECTED", "0"))
RESULT_PATH = Path(os.environ.get("BENCH_NOOP_RESULT", "noop-result.json"))

app = faust.App(
    os.environ.get("BENCH_NOOP_APP_ID", "bench-noop"),
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
pings_topic = app.topic(
    os.environ.get("BENCH_NOOP_TOPIC", "yrd.pings"), key_type=bytes, value_type=bytes
)


class Tally:
    """Counts events and remembers when the first and last batches arrived."""

    def __init__(self) -> None:
        self.count = 0
        self.batches = 0
        self.first_batch_size = 0
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.first_cpu: float | None = None
        self.written = False

    def add(self, size: int) -> None:
        """Record one batch of ``size`` events taken from the stream."""
        now = time.time()
        if self.first_t is None:
            self.first_t, self.first_batch_size = now, size
            self.first_cpu = time.process_time()
        self.last_t = now
        self.count += size
        self.batches += 1

    def write_once_complete(self) -> None:
        """Write the result file (atomically) once the expected count is reached."""
        if self.written or not EXPECTED or self.count < EXPECTED:
            return
        result = {
            "count": self.count,
            "batches": self.batches,
            "first_batch_size": self.first_batch_size,
            "first_t": self.first_t,
            "last_t": self.last_t,
            "cpu_s": time.process_time() - (self.first_cpu or 0.0),
        }
        tmp = RESULT_PATH.with_suffix(".tmp")
        tmp.write_text(json.dumps(result))
        tmp.replace(RESULT_PATH)
        self.written = True


tally = Tally()


@app.agent(pings_topic)
async def count_pings(stream):
    """Take batches like the real worker does, and only count them."""
    async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
        tally.add(len(events))
        tally.write_once_complete()


if __name__ == "__main__":
    app.main()
