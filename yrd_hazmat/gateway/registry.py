"""What the gateway keeps of two compacted topics, each read whole before it listens and
then followed.

``yrd.terminals`` (:class:`Registry`): the registered terminals, so a terminal that
registered with any gateway (or before a restart) authenticates with its code on any
other. A registration is on the topic before the terminal gets its code.

``yrd.vehicle-terminals`` (:class:`Declarations`): carriers' declarations of the terminal
fitted to each vehicle, which choose the profile reading its maker items over what the
terminal's own registration says, and name the carrier in the data-quality metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

import msgspec

from ..core.models import Terminal, VehicleTerminal

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Compacted(Mapping[str, T], Generic[T]):
    """The latest record of each key of a compacted topic (a null value: removed)."""

    def __init__(self, kind: type[T], key_of: Callable[[T], str]) -> None:
        self._records: dict[str, T] = {}
        self._decoder = msgspec.json.Decoder(kind)
        self._key_of = key_of

    def __getitem__(self, key: str) -> T:
        return self._records[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def put(self, record: T) -> None:
        self._records[self._key_of(record)] = record

    def remove(self, key: str) -> None:
        self._records.pop(key, None)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record of the topic (a null value: deleted)."""
        if key is None:
            return
        if value is None:
            self.remove(key.decode("utf-8", "replace"))
            return
        try:
            self.put(self._decoder.decode(value))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("unreadable record %r: %s", key, exc)


class Registry(_Compacted[Terminal]):
    """Terminal (phone number digits) -> its registration (``yrd.terminals``)."""

    def __init__(self) -> None:
        super().__init__(Terminal, lambda terminal: terminal.terminal)


class Declarations(_Compacted[VehicleTerminal]):
    """Plate -> the carrier's declaration of the vehicle's terminal
    (``yrd.vehicle-terminals``)."""

    def __init__(self) -> None:
        super().__init__(VehicleTerminal, lambda declared: declared.vehicle_id)
