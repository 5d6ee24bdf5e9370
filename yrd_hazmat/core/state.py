"""Per-vehicle state kept in the worker's changelog-backed table.

:class:`VehicleState` holds what the engine keeps about a vehicle, plus one
field per rule of :data:`yrd_hazmat.core.ruleset.RULES` holding that rule's own
state (named by the rule's ``state_field``). The engine's fields:

- ``last``: the latest observation run through the rules (it moved the truck);
- ``pings``, ``duplicates``, ``late``, ``implausible``: counts;
- ``pending``: the reorder buffer, admitted pings waiting for their lateness
  bound, in time order;
- ``partition``: partition of the vehicle's pings (where its timer ticks go);
- ``offset``: offset (in ``partition`` of the pings topic) of the newest ping
  this state holds: after a restart, pings at or below it are replays of what
  the state already reflects, not late pings;
- ``heard_ms``: the latest report without a valid fix (proof of life: the truck is
  online, not silent, though it gave no position);
- ``covered``: the spans of event time the rules have judged, live or from kept fixes
  (uploaded late), within the history horizon, oldest first: a fix inside one is a
  duplicate (a re-sent ping, a second upload of the same fixes) and raises nothing;
- ``kept``: fixes older than ``last`` (a terminal's upload of what it kept out of
  coverage) waiting to be judged together, once a live fix follows them or
  ``history_settle_ms`` after ``kept_at_ms`` (processing time of the first of them).

The changelog record is the struct as a msgpack map keyed by field name, so a
rule added later reads an older record with its state at its default.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .observation import Observation
from .ruleset import RULES

_ENGINE_FIELDS: list[tuple[str, Any, Any]] = [
    ("vehicle_id", str, msgspec.NODEFAULT),
    ("last", Observation | None, None),
    ("pings", int, 0),
    ("duplicates", int, 0),
    ("late", int, 0),
    ("implausible", int, 0),
    ("pending", list[Observation], msgspec.field(default_factory=list)),
    ("partition", int | None, None),
    ("offset", int, -1),
    ("heard_ms", int | None, None),
    ("covered", list[tuple[int, int]], msgspec.field(default_factory=list)),
    ("kept", list[Observation], msgspec.field(default_factory=list)),
    ("kept_at_ms", int | None, None),
]


def _open_incidents(self) -> list[str]:
    """Ids of the incidents currently raised for this vehicle."""
    return [i for rule in RULES for i in rule.open_incidents(getattr(self, rule.field))]


VehicleState = msgspec.defstruct(
    "VehicleState",
    [(name, kind) if default is msgspec.NODEFAULT else (name, kind, default)
     for name, kind, default in _ENGINE_FIELDS]
    + [(rule.field, rule.state, msgspec.field(default_factory=rule.fresh)) for rule in RULES],
    kw_only=True,
    gc=False,
    module=__name__,
    namespace={"open_incidents": property(_open_incidents),
               "__doc__": "Everything the engine and the rules remember about one vehicle."},
)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(VehicleState)


def dump_state(state: VehicleState) -> bytes:
    """Compact bytes for the table's changelog."""
    return _encoder.encode(state)


def load_state(data: bytes) -> VehicleState:
    return _decoder.decode(data)
