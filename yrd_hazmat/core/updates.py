"""A vehicle's read-model update after the core ran its pings (the shell writes it)."""

from __future__ import annotations

from collections.abc import Sequence

from ..observation import Observation
from ..readmodel import VehicleUpdate
from ..state import VehicleState


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
        open_alerts=len(state.open_incidents),
        track=track,
    )


def _event_time(obs: Observation) -> int:
    return obs.ts_ms
