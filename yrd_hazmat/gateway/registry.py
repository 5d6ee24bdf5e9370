"""The registered terminals, kept on the compacted ``yrd.terminals`` topic.

A gateway reads the whole topic before it listens, then follows it, so a terminal that
registered with any gateway (or before a restart) authenticates with its code on any
other. A registration is on the topic before the terminal gets its code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

import msgspec

from ..models import Terminal

log = logging.getLogger(__name__)

_decoder = msgspec.json.Decoder(Terminal)


class Registry(Mapping[str, Terminal]):
    """Terminal (phone number digits) -> its registration."""

    def __init__(self) -> None:
        self._terminals: dict[str, Terminal] = {}

    def __getitem__(self, terminal: str) -> Terminal:
        return self._terminals[terminal]

    def __iter__(self) -> Iterator[str]:
        return iter(self._terminals)

    def __len__(self) -> int:
        return len(self._terminals)

    def put(self, terminal: Terminal) -> None:
        self._terminals[terminal.terminal] = terminal

    def remove(self, terminal: str) -> None:
        self._terminals.pop(terminal, None)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record of the topic (a null value: deregistered)."""
        if key is None:
            return
        if value is None:
            self.remove(key.decode("utf-8", "replace"))
            return
        try:
            self.put(_decoder.decode(value))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("unreadable terminal registration %r: %s", key, exc)
