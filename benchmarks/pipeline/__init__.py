"""The end-to-end pipeline benchmark (issue #9), ``python -m benchmarks.pipeline``.

Its parts, in the order a run uses them:

- ``__main__``: the command line and the order of the phases;
- ``services``: Kafka and Redis, names unique to a run, worker processes, /metrics;
- ``fleet``: the trucks, their pings (the backlog), permits and zones;
- ``kafka``: the benchmark's own Kafka clients (confluent-kafka, lz4);
- ``phases``: throughput A (raw aiokafka), B0 (stock Faust no-op), B1 (no-op of the
  worker's design), C (the real worker) and the worker's memory;
- ``latency``: D, the paced producer, the alert collector and the latency curve;
- ``scaling``: E, two workers of one group, partitions moving, alerts compared;
- ``report``: the machine and the printed report.

The no-op agents run as their own processes: ``benchmarks/noop_faust.py`` (B0)
and ``benchmarks/noop_batch.py`` (B1). Memory for 100,000 vehicles without
Kafka: ``python -m benchmarks.memory``. See docs/benchmarks.md.
"""
