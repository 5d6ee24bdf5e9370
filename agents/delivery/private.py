"""Every private field of Faust and aiokafka the worker touches, in one list.

The worker extends Faust's transport and reads aiokafka's fetcher where neither offers a
public way (see :mod:`.transport`, :mod:`.outputs`, :mod:`agents.process_pings`). Such
fields change without notice between releases; this list is what an upgrade of either
library must read again, and ``tests/unit/test_delivery_private.py`` fails, naming the
field, when an installed version no longer has one. The versions last read: faust-streaming
0.15.3, aiokafka 0.14.0.
"""

from __future__ import annotations

import importlib
import inspect
from typing import NamedTuple


class PrivateField(NamedTuple):
    owner: str
    """``module:Class`` of the library."""
    name: str
    used_in: str
    why: str


FIELDS: tuple[PrivateField, ...] = (
    # Faust: the consumer thread (faust.transport.drivers.aiokafka)
    PrivateField("faust.transport.drivers.aiokafka:AIOKafkaConsumerThread",
                 "_create_worker_consumer", "transport.ConsumerThread",
                 "overridden: a short broker-side fetch wait (Faust fixes 1,500 ms)"),
    PrivateField("faust.transport.drivers.aiokafka:AIOKafkaConsumerThread",
                 "_fetch_records", "transport.ConsumerThread",
                 "overridden: one partition at a time, unreadable batches skipped"),
    PrivateField("faust.transport.drivers.aiokafka:AIOKafkaConsumerThread",
                 "_ensure_consumer", "transport.BatchConsumer",
                 "the aiokafka consumer, to seek and ask committed offsets on its thread"),
    # Faust: the consumer (faust.transport.consumer)
    PrivateField("faust.transport.drivers.aiokafka:Consumer", "_new_consumer_thread",
                 "transport.BatchConsumer", "overridden: our consumer thread"),
    PrivateField("faust.transport.drivers.aiokafka:Consumer", "_thread",
                 "transport.BatchConsumer, process_pings", "the consumer thread (its loop)"),
    PrivateField("faust.transport.consumer:Consumer", "_wait_next_records",
                 "transport.BatchConsumer.getmany", "the fetch getmany builds on"),
    PrivateField("faust.transport.consumer:Consumer", "_to_message",
                 "transport.BatchConsumer.getmany", "one Faust message per unbatched record"),
    PrivateField("faust.transport.consumer:Consumer", "_buffered_partitions",
                 "transport.BatchConsumer.getmany", "partitions Faust still buffers"),
    PrivateField("faust.transport.consumer:Consumer", "_filter_tps_with_pending_acks",
                 "transport.BatchConsumer", "overridden: checkpointed partitions commit too"),
    PrivateField("faust.transport.consumer:Consumer", "_new_offset",
                 "transport.BatchConsumer", "overridden: batched topics commit the checkpoint"),
    PrivateField("faust.transport.consumer:ThreadDelegateConsumer", "_seek",
                 "transport.BatchConsumer", "overridden: seek on the consumer thread"),
    # Faust: the producer
    PrivateField("faust.transport.drivers.aiokafka:Producer", "_ensure_producer",
                 "process_pings (outputs)", "aiokafka's producer, to send without Faust's "
                 "per-record futures and to append whole batches"),
    # aiokafka: the consumer and its fetcher (aiokafka.consumer)
    PrivateField("aiokafka.consumer.consumer:AIOKafkaConsumer", "_fetcher",
                 "transport.ConsumerThread", "the fetched records, per partition"),
    PrivateField("aiokafka.consumer.consumer:AIOKafkaConsumer", "_closed",
                 "transport.ConsumerThread", "as fetched_records checks it"),
    PrivateField("aiokafka.consumer.consumer:AIOKafkaConsumer", "_fetch_max_wait_ms",
                 "transport.ConsumerThread", "the broker-side fetch wait"),
    PrivateField("aiokafka.consumer.consumer:AIOKafkaConsumer", "_fetch_min_bytes",
                 "transport.ConsumerThread", "bytes gathered before a fetch answers"),
    PrivateField("aiokafka.consumer.fetcher:Fetcher", "_closed", "transport.ConsumerThread",
                 "as fetched_records checks it"),
    PrivateField("aiokafka.consumer.fetcher:Fetcher", "_subscriptions",
                 "transport.ConsumerThread", "its fetch_context, as fetched_records"),
    PrivateField("aiokafka.consumer.fetcher:Fetcher", "_create_fetch_waiter",
                 "transport.ConsumerThread", "wait for records, as fetched_records"),
    PrivateField("aiokafka.consumer.fetcher:Fetcher", "_records", "transport",
                 "the fetched results per partition"),
    PrivateField("aiokafka.consumer.fetcher:Fetcher", "_notify", "transport.take_readable",
                 "wake the fetch loop once a partition's records are taken"),
    PrivateField("aiokafka.consumer.fetcher:Fetcher", "_wait_consume_future",
                 "transport.take_readable", "the future _notify wakes"),
    PrivateField("aiokafka.consumer.fetcher:FetchResult", "_partition_records",
                 "transport.take_readable", "the records, iterated one by one"),
    PrivateField("aiokafka.consumer.fetcher:FetchResult", "_update_position",
                 "transport.take_readable", "move the position past what was taken"),
    PrivateField("aiokafka.consumer.fetcher:PartitionRecords", "_records",
                 "transport.take_readable", "the next batch's base offset after a bad one"),
)


def resolve(owner: str) -> type:
    module, name = owner.split(":")
    return getattr(importlib.import_module(module), name)


def missing() -> list[PrivateField]:
    """The fields the installed Faust and aiokafka no longer have: neither an attribute of
    the class (or its bases) nor assigned as ``self.<name>`` in their source."""
    gone = []
    for f in FIELDS:
        cls = resolve(f.owner)
        if hasattr(cls, f.name):
            continue
        sources = []
        for base in inspect.getmro(cls):
            try:
                sources.append(inspect.getsource(base))
            except (OSError, TypeError):
                continue
        if not any(f"self.{f.name} " in s or f"self.{f.name}:" in s or f"self.{f.name}=" in s
                   for s in sources):
            gone.append(f)
    return gone
