"""Incident records as ``yrd.incidents`` holds them: the copy every reader keeps (the
keeper, the desks, ``yrd-hazmat respond`` and ``ledger``), and how to wait for one action's
answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import msgspec

from ..models import IncidentLog
from .incidents import outcome

log = logging.getLogger(__name__)
_decoder = msgspec.json.Decoder(IncidentLog)


class IncidentLogs:
    """Incident id -> its latest record, as the topic says (a null value removes it)."""

    def __init__(self) -> None:
        self._logs: dict[str, IncidentLog] = {}
        self.listeners: list[Callable[[IncidentLog], None]] = []
        self._waiting: dict[str, asyncio.Future] = {}

    def get(self, incident_id: str) -> IncidentLog | None:
        return self._logs.get(incident_id)

    def all(self) -> list[IncidentLog]:
        return list(self._logs.values())

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        if value is None:
            self._logs.pop(key.decode("utf-8", "replace"), None)
            return
        try:
            entry = _decoder.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("unreadable incident record %r: %s", key, exc)
            return
        self._logs[entry.incident_id] = entry
        for action_id, waiter in list(self._waiting.items()):
            answer = outcome(entry, action_id)
            if answer is not None and not waiter.done():
                waiter.set_result((entry, answer[1]))
        for listener in list(self.listeners):
            listener(entry)

    async def answer(self, incident_id: str, action_id: str,
                     timeout_s: float) -> tuple[IncidentLog, str | None]:
        """(the record once it shows the action, the refusal or None); TimeoutError if the
        keeper does not answer in time."""
        current = self._logs.get(incident_id)
        answer = outcome(current, action_id) if current is not None else None
        if current is not None and answer is not None:
            return current, answer[1]
        waiter = self._waiting[action_id] = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(waiter, timeout_s)
        finally:
            self._waiting.pop(action_id, None)
