"""The rules: one module per rule, each pure.

A rule module holds a frozen config struct, a small per-vehicle state struct,
a ``step(state, obs, ctx, cfg) -> (state, alerts)`` function and, last, its
:class:`~.rule.Rule` (see :mod:`.rule` for the protocol). No Kafka, Redis or
clock in here: the engine feeds observations in event-time order, and
:data:`yrd_hazmat.core.ruleset.RULES` lists the rules in the order they run.
"""
