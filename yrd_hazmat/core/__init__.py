"""The pure core: what the platform computes, with no Kafka, Redis or clock inside.

The contract (``models``, ``codec``, ``timeutil``), the batch the worker hands in
(``batch``, ``replays``, ``updates``), the engine and its rules (``engine``, ``enrich``,
``observation``, ``state``, ``ruleset``, ``rules``), and the reference data they judge
by (``geo``, ``zones``, ``permits``, ``emergency``). The processes that run it (the worker
in ``agents/``, the gateway, the desk) live outside; they bring the I/O.
"""
