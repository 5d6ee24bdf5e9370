"""The rules: one module per alert type, each pure.

A rule module holds a frozen config struct, a small per-vehicle state struct
and a ``step(state, obs, ctx) -> (state, alerts)`` function. No Kafka, Redis
or clock in here: the engine feeds observations in event-time order.
"""
