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
  (:func:`yrd_hazmat.engine.advance`: ``duplicates``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..state import VehicleState
from .updates import VehicleUpdate, vehicle_update


class _Vehicles(Protocol):
    def get(self, key: bytes) -> VehicleState | None: ...


class _Record(Protocol):
    offset: int


def unprocessed(records: Sequence[_Record], expected: int) -> list:
    """The records at or after ``expected`` (the partition's next offset to process)."""
    if records and records[0].offset >= expected:
        return list(records)
    return [r for r in records if r.offset >= expected]


def fresh(vehicles: _Vehicles, partition: int, by_vehicle: dict[str, list[int]],
          origin: Sequence[_Record]) -> tuple[dict[str, list[int]], int, list[VehicleUpdate]]:
    """(the pings no vehicle state holds yet, how many were replays, read-model updates to
    submit again). Pings a vehicle's state already holds are a replay after a restart; a
    vehicle with nothing new has its latest position submitted again (the read model never
    goes backwards), in case the worker that processed them died before its read model
    was written."""
    new: dict[str, list[int]] = {}
    updates: list[VehicleUpdate] = []
    replayed = 0
    for vehicle_id, indices in by_vehicle.items():
        state = vehicles.get(vehicle_id.encode("utf-8"))
        if state is not None and state.partition == partition and state.offset >= 0:
            seen = state.offset
            kept = [i for i in indices if origin[i].offset > seen]
            if len(kept) < len(indices):
                replayed += len(indices) - len(kept)
                update = vehicle_update(state, None)
                if update is not None and not kept:
                    updates.append(update)
            indices = kept
        if indices:
            new[vehicle_id] = indices
    return new, replayed, updates
