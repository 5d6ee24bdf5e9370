"""B0: a no-op agent on stock Faust, the ceiling of Faust's per-record delivery.

It reads the pings topic with stock Faust (the ``kafka://`` transport, one
event per record) and the Faust settings the worker had before its own
transport (raw bytes, memory store, no web server), batching with
``stream.take_events(2000, within=0.1)``, and does nothing with the events
but count them. ``python -m benchmarks.pipeline`` runs it as its own process::

    BENCH_NOOP_BROKER=kafka://127.0.0.1:39092 BENCH_NOOP_APP_ID=bench-noop-x \\
    BENCH_NOOP_TOPIC=b-x.pings BENCH_NOOP_EXPECTED=250000 BENCH_NOOP_SKIP=10000 \\
    BENCH_NOOP_RESULT=/tmp/noop.json python benchmarks/noop_faust.py worker -l warn

Once ``BENCH_NOOP_EXPECTED`` records have been seen it writes its result
(see ``noop_tally.py``); the caller then stops it with SIGTERM.
"""

from __future__ import annotations

import os

import faust

from noop_tally import BATCH_MAX, TOPIC, Tally, app_options

BATCH_WITHIN_S = float(os.environ.get("BENCH_NOOP_BATCH_WITHIN_S", "0.1"))

app = faust.App(**app_options("bench-noop"))
pings_topic = app.topic(TOPIC, key_type=bytes, value_type=bytes)
tally = Tally()


@app.agent(pings_topic)
async def count_pings(stream):
    """Take batches as the worker used to (``take_events``), and only count them."""
    async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
        tally.add(len(events))


if __name__ == "__main__":
    app.main()
