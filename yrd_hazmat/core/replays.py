"""Replays and duplicates: why a ping the worker has seen before changes nothing.

A ping can come back three ways, and each is dropped in one place:

- **Delivered again in one worker's life** (Faust seeks back to the committed offset
  after a rebalance): records below the partition's next expected offset.
  :func:`unprocessed` drops them (the shell asks it with the offset it expects).
- **Replayed after a restart** (a kill -9 after the vehicles' states were made durable,
  before the input offsets were committed): records at or below the offset a vehicle's
  state holds. :func:`fresh` drops them, in the pure batch (:mod:`.batch`).
- **Sent twice** (a terminal's retry, a platform re-sending what a link lost): a ping at
  an event time the vehicle has run, or has waiting. The engine's admission drops it
  (:func:`yrd_hazmat.core.engine.advance`: ``duplicates``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .state import VehicleState


class _Record(Protocol):
    offset: int


def unprocessed(records: Sequence[_Record], expected: int) -> list:
    """The records at or after ``expected`` (the partition's next offset to process)."""
    if records and records[0].offset >= expected:
        return list(records)
    return [r for r in records if r.offset >= expected]


def fresh(state: VehicleState | None, partition: int, records: Sequence[_Record]
          ) -> list[int] | None:
    """Which of a vehicle's records (in offset order) its state does not hold yet: None
    when it holds none of the partition's (all are new), else the positions of the new
    ones. The state holds every record up to its ``offset`` of its ``partition``: those
    are a replay after a restart."""
    if state is None or state.partition != partition or state.offset < 0:
        return None
    seen = state.offset
    if records[0].offset > seen:
        return None
    return [i for i, record in enumerate(records) if record.offset > seen]
