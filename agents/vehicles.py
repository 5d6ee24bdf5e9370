"""The vehicles this worker holds: decoded states in memory, written back at checkpoints.

The vehicle-state table (changelog-backed, co-partitioned with the pings) is
the durable copy. In between checkpoints a vehicle's state lives here as a
decoded object, so a batch neither decodes nor encodes it; a checkpoint
encodes each vehicle changed since the last one, once, and writes it to the
table and its changelog on the vehicle's own partition.
"""

from __future__ import annotations

from collections.abc import Iterator

import faust

from yrd_hazmat.core.state import VehicleState, dump_state, load_state


class VehicleStates:
    """Decoded vehicle states over a Faust table of encoded ones."""

    def __init__(self, table: faust.Table) -> None:
        self.table = table
        self.live: dict[bytes, VehicleState] = {}
        self.dirty: set[bytes] = set()

    def get(self, key: bytes) -> VehicleState | None:
        state = self.live.get(key)
        if state is None:
            stored = self.table.data.get(key)
            if stored is not None:
                state = self.live[key] = load_state(stored)
        return state

    def put(self, key: bytes, state: VehicleState) -> None:
        self.live[key] = state
        self.dirty.add(key)

    @property
    def changelog_topic(self) -> str:
        return self.table.changelog_topic.get_topic_name()

    def take(self) -> list[tuple[bytes, bytes, int | None]]:
        """Encode every state changed since the last take: (key, value, partition) for the
        changelog; the table holds the new values from now on."""
        data = self.table.data
        out = []
        for key in self.dirty:
            state = self.live.get(key)
            if state is None:
                continue
            value = dump_state(state)
            data[key] = value
            out.append((key, value, state.partition))
        self.dirty.clear()
        return out

    def forget_partitions(self, partitions: set[int]) -> int:
        """Drop the decoded states of vehicles whose pings are on ``partitions``."""
        gone = [k for k, s in self.live.items() if s.partition in partitions]
        for key in gone:
            del self.live[key]
            self.dirty.discard(key)
        return len(gone)

    def items(self) -> Iterator[tuple[bytes, VehicleState]]:
        """Every vehicle held (decoding the ones not touched since a restart)."""
        for key in set(self.live) | set(self.table.data.keys()):
            state = self.get(key)
            if state is not None:
                yield key, state

    def __len__(self) -> int:
        return len(self.table.data)

