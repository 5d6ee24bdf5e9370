"""The Redis read model: latest vehicle positions, tracks and open alerts, without Kafka.

The worker hands it each processed batch; the police desk and the emergency
exposure lookup query it. One module per job:

* :mod:`.keys`: the key schema, written once (the README's key table);
* :mod:`.outbox`: what the worker queued and Redis does not show yet, merged
  between flushes (pure, no I/O);
* :mod:`.flusher`: when the outbox is written, and what an outage does;
* :mod:`.writer`: writing it to Redis, with the Lua script that never goes backwards;
* :mod:`.readers`: the queries;
* :mod:`.facade`: :class:`ReadModel`, the parts put together.
"""

from .facade import ReadModel
from .flusher import FlushError
from .keys import PROVINCES, Keys
from .outbox import Outbox, PendingAlert, PendingVehicle, VehicleUpdate
from .writer import script_calls

__all__ = ["FlushError", "Keys", "Outbox", "PendingAlert", "PendingVehicle", "PROVINCES",
           "ReadModel", "VehicleUpdate", "script_calls"]
