"""A vehicle's read-model update after the core ran its pings (the read model writes it)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from .observation import Observation
from .state import VehicleState


class VehicleUpdate(msgspec.Struct, frozen=True, gc=False):
    """A vehicle's latest observation after a batch, and where it was before."""

    vehicle_id: str
    latest: Observation
    previous_province: str | None
    previously_seen: bool
    track: tuple[Observation, ...] = ()
    """The batch's other positions before ``latest`` (for the vehicle's last-hour track)."""


def vehicle_update(state: VehicleState, previous: Observation | None,
                   batch: Sequence[Observation] = ()) -> VehicleUpdate | None:
    """The read-model update for a vehicle whose latest processed ping was ``previous``;
    the positions of ``batch`` that ran between it and the latest go to its track."""
    last = state.last
    if last is None:
        return None
    after = previous.ts_ms if previous is not None else -1
    track: tuple[Observation, ...] = ()
    if len(batch) > 1:  # (one ping of the vehicle in the batch, the usual case: no track)
        track = tuple(sorted((o for o in batch if after < o.ts_ms < last.ts_ms),
                             key=_event_time))
    return VehicleUpdate(
        vehicle_id=state.vehicle_id,
        latest=last,
        previous_province=previous.province if previous else None,
        previously_seen=previous is not None,
        track=track,
    )


def _event_time(obs: Observation) -> int:
    return obs.ts_ms
