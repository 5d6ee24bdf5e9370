"""B1: a no-op agent of the worker's design, the ceiling of its delivery path.

The same shape as the worker's pings agent (``agents/app.py``,
``agents/process_pings.py``) with nothing inside the loop:

- the project's transport ``yrdkafka://`` (``agents/delivery/``), the pings
  topic in ``app.batch_topics``, so each event is one fetched partition batch;
- the topic with ``acks=False`` and the agent with concurrency 1, reading
  ``stream.events()``;
- the worker's Faust settings that bear on delivery (``broker_max_poll_records``
  = ``YRD_BATCH_MAX``, ``stream_buffer_maxsize`` 64, raw serializers, memory
  store, no web server);
- offsets committed by checkpoint: every ``YRD_CHECKPOINT_S`` it hands the
  processed offsets to ``app.consumer.checkpointed()``, as
  ``agents/delivery/checkpoint.py`` does (without outputs or states to make durable),
  so Faust's commit loop commits them.

It counts ``len(event.message.records)``. Run by ``python -m benchmarks.pipeline``
like ``noop_faust.py`` (same ``BENCH_NOOP_*`` variables, see ``noop_tally.py``).
"""

from __future__ import annotations

import os
import time

import faust

from agents import delivery
from noop_tally import BATCH_MAX, TOPIC, Tally, app_options

CHECKPOINT_S = float(os.environ.get("BENCH_NOOP_CHECKPOINT_S", "1.0"))

delivery.register()
options = app_options("bench-noop-batch")
options["broker"] = options["broker"].replace("kafka://", f"{delivery.SCHEME}://")
app = faust.App(**options, broker_max_poll_records=BATCH_MAX, stream_buffer_maxsize=64)
app.batch_topics = frozenset({TOPIC})
pings_topic = app.topic(TOPIC, key_type=bytes, value_type=bytes, acks=False)
tally = Tally()


@app.agent(pings_topic, concurrency=1)
async def count_batches(stream):
    """One event per fetched partition batch; count its records, checkpoint now and then."""
    processed: dict = {}
    last_checkpoint = time.monotonic()
    async for event in stream.events():
        message = event.message
        tally.add(len(message.records))
        processed[message.tp] = message.offset + 1
        if time.monotonic() - last_checkpoint >= CHECKPOINT_S:
            app.consumer.checkpointed(processed)
            last_checkpoint = time.monotonic()


if __name__ == "__main__":
    app.main()
