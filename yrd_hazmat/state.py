"""Per-vehicle state kept in the worker's changelog-backed table."""

from __future__ import annotations

import msgspec

from .observation import Observation
from .rules.device_alarm import AlarmState
from .rules.fatigue import FatigueState
from .rules.sustained import Sustained
from .rules.handover import HandoverState
from .rules.signal import SignalState
from .rules.permits import PermitState
from .rules.speed_episode import SpeedEpisode
from .rules.zones import ZoneTrack


class VehicleState(msgspec.Struct, kw_only=True, gc=False):
    """Everything the rules remember about one vehicle between batches."""

    vehicle_id: str
    last: Observation | None = None
    pings: int = 0
    duplicates: int = 0
    late: int = 0
    speeding: SpeedEpisode = msgspec.field(default_factory=SpeedEpisode)
    zones: dict[str, ZoneTrack] = msgspec.field(default_factory=dict)
    permit: PermitState = msgspec.field(default_factory=PermitState)
    handover: HandoverState = msgspec.field(default_factory=HandoverState)
    alarms: AlarmState = msgspec.field(default_factory=AlarmState)
    fatigue: FatigueState = msgspec.field(default_factory=FatigueState)
    stop: Sustained = msgspec.field(default_factory=Sustained)
    signal: SignalState = msgspec.field(default_factory=SignalState)
    pending: list[Observation] = msgspec.field(default_factory=list)
    """The reorder buffer: admitted pings waiting for their lateness bound, in time order."""
    partition: int | None = None
    """Partition of the vehicle's pings (where its timer ticks are sent)."""
    offset: int = -1
    """Offset (in ``partition`` of the pings topic) of the newest ping this state holds:
    after a restart, pings at or below it are replays of what the state already
    reflects, not late pings."""
    suspect: Observation | None = None
    """A fix that jumped implausibly far from ``last`` (kept to recognise a real relocation)."""
    implausible: int = 0

    @property
    def open_incidents(self) -> list[str]:
        """Ids of the incidents currently raised for this vehicle."""
        opened = [i for i in (self.speeding.incident,) if i is not None]
        opened += [i for track in self.zones.values() for i in track.open_incidents]
        opened += self.permit.open_incidents + self.handover.open_incidents
        opened += [i for i in (self.fatigue.incident, self.stop.incident, self.signal.incident)
                   if i is not None]
        return opened + self.alarms.open_incidents


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(VehicleState)


def dump_state(state: VehicleState) -> bytes:
    """Compact bytes for the table's changelog."""
    return _encoder.encode(state)


def load_state(data: bytes) -> VehicleState:
    return _decoder.decode(data)
