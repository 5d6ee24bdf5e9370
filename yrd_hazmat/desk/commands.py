"""Commands from the desk to trucks' terminals: what a desk user may ask for, what the
trucks exposed to an emergency hear, and every command with what became of it.

The desk does not deliver: it publishes on ``yrd.commands`` and the gateway holding the
truck's terminal delivers (:mod:`..gateway.commands`). Every desk follows
``yrd.commands`` and ``yrd.command-results`` and counts a result only when the log's
rules (:class:`..gateway.commands.Track`) do, as the gateways and ``yrd-hazmat command``
do: a losing gateway's claim or an answer after the final one is not shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec

from ..commands import make_command
from ..gateway.commands import Track, plate_record
from ..core.models import Command, CommandResult, IncidentLog

TEXT_MAX = 400
"""Characters of a text to a driver (the contract's limit; the terminal's GBK limit is
checked when the command is made)."""
KEPT_FOR = timedelta(days=7)
"""How long the desk remembers a command: as long as ``yrd.commands`` keeps it."""
ORPHAN_FOR = timedelta(days=1)
"""How long results wait for their command record (its follower lagging), as the gateways
wait: results of a command gone from the topic are dropped after that."""
_command_decoder = msgspec.json.Decoder(Command)
_result_decoder = msgspec.json.Decoder(CommandResult)


class CommandRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``POST /api/trucks/{vehicle_id}/commands``: a text (read aloud, as an
    emergency), a position or a photo. Confirming an alarm is left to the CLI."""

    kind: Literal["text", "position_query", "photo"]
    text: Annotated[str, msgspec.Meta(max_length=TEXT_MAX)] | None = None
    tts: bool = False
    emergency: bool = False
    camera: int = 1


class WarningRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``POST /api/incidents/{incident_id}/tell-exposed`` (none: the default
    warning)."""

    text: Annotated[str, msgspec.Meta(max_length=TEXT_MAX)] | None = None


def command_of(request: CommandRequest, vehicle_id: str, *, by: str, now: datetime, expires_in_s: float,
               incident_id: str | None = None) -> Command:
    """The command a desk user asked for, or ValueError saying what is wrong with it (the
    contract's limits, and a text no terminal could display: not GBK, too long)."""
    if request.kind == "text":
        text = (request.text or "").strip()
        if not text:
            raise ValueError("the text is empty")
        fields: dict[str, Any] = {"text": text, "tts": request.tts,
                                  "emergency": request.emergency}
    elif request.text is not None or request.tts or request.emergency:
        raise ValueError(f"text, tts and emergency go with kind text, not {request.kind}")
    else:
        fields = {"camera": request.camera} if request.kind == "photo" else {}
    return make_command(vehicle_id, request.kind, by=by, now=now, expires_in_s=expires_in_s,
                        incident_id=incident_id, **fields)


def warning_of(request: WarningRequest, record: IncidentLog) -> str:
    """The text the exposed trucks hear: the one the desk user wrote, else the default."""
    return request.text if request.text is not None else warning_text(record)


def warning_text(record: IncidentLog) -> str:
    """The default warning to the trucks near an emergency, read aloud: the hazard and how
    far to keep away. In Chinese: the drivers' language, and their terminals' (GBK)."""
    cargo = "，".join(part for part in (
        record.cargo_name, record.un_number,
        f"第{record.hazard_class}类" if record.hazard_class else None) if part) or "货物不明"
    distance = record.isolation_distance_m
    away = f"远离事故点{distance:.0f}米以外" if distance else "远离事故点"
    return f"紧急通知：附近发生危险品事故（{cargo}）。请立即{away}，勿靠近，听从现场指挥。"


def exposed_trucks(record: IncidentLog) -> list[dict[str, Any]]:
    """The trucks the incident's record says were within its isolation distance, or
    ValueError when there are none or the read model could not say."""
    trucks = record.exposure.get("trucks")
    if trucks is None:
        unknown = record.exposure.get("trucks_unknown") or "not computed"
        raise ValueError(f"the exposed trucks are not known: {unknown}")
    if not trucks:
        raise ValueError("no truck was exposed")
    return trucks


@dataclass
class Entry:
    """One command as the log tells it: the record (None until read) and the steps that
    counted, in the log's order."""

    track: Track
    vehicle_id: str
    first_seen: datetime
    steps: list[CommandResult] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        """The command with its status (``waiting``: no gateway has claimed it yet) and
        its steps, as the API answers it."""
        assert self.track.command is not None
        command = msgspec.to_builtins(self.track.command)
        if command.get("dial_password"):  # an emergency access's: for the terminal only
            command["dial_password"] = "****"
        return command | {
            "status": self.steps[-1].status if self.steps else "waiting",
            "steps": [msgspec.to_builtins(step) for step in self.steps]}


class CommandBook:
    """Every command of the last :data:`KEPT_FOR` and what became of it, by truck and by
    incident. ``listeners`` hear the id of a command added or moved on."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._by_vehicle: dict[str, dict[str, None]] = {}
        self._by_incident: dict[str, dict[str, None]] = {}
        self.listeners: list[Callable[[str], None]] = []

    # --- the topics -------------------------------------------------------------------
    def apply_command(self, key: bytes | None, value: bytes | None) -> None:
        command = plate_record(_command_decoder, key, value)
        if command is not None:
            self.add(command)

    def apply_result(self, key: bytes | None, value: bytes | None) -> None:
        result = plate_record(_result_decoder, key, value)
        if result is not None:
            self.record(result)

    def add(self, command: Command) -> None:
        """A command, read or just published (the same one read again changes nothing)."""
        entry = self._entry(command.command_id, command.vehicle_id, command.issued_at)
        if entry.track.command is not None:
            return
        entry.track.command = command
        if command.incident_id is not None:
            self._by_incident.setdefault(command.incident_id, {})[command.command_id] = None
        self._changed(command.command_id)

    def record(self, result: CommandResult) -> None:
        entry = self._entry(result.command_id, result.vehicle_id, result.at)
        if entry.track.apply(result):
            entry.steps.append(result)
            if entry.track.command is not None:
                self._changed(result.command_id)

    def _entry(self, command_id: str, vehicle_id: str, seen: datetime) -> Entry:
        entry = self._entries.get(command_id)
        if entry is None:
            entry = self._entries[command_id] = Entry(Track(command_id), vehicle_id, seen)
            self._by_vehicle.setdefault(vehicle_id, {})[command_id] = None
        return entry

    def _changed(self, command_id: str) -> None:
        for listener in list(self.listeners):
            listener(command_id)

    # --- what the desk shows -----------------------------------------------------------
    def view(self, command_id: str) -> dict[str, Any] | None:
        entry = self._entries.get(command_id)
        return entry.view() if entry is not None and entry.track.command is not None else None

    def of_vehicle(self, vehicle_id: str) -> list[dict[str, Any]]:
        """The truck's commands, newest first (not another plate's, should a result name
        a command of another truck: the page shows a command's text)."""
        return [view for view in self._views(self._by_vehicle.get(vehicle_id, {}))
                if view["vehicle_id"] == vehicle_id]

    def of_incident(self, incident_id: str) -> list[dict[str, Any]]:
        """The commands sent about an incident (its exposed trucks warned), newest first."""
        return self._views(self._by_incident.get(incident_id, {}))

    def _views(self, ids: dict[str, None]) -> list[dict[str, Any]]:
        known = [e for e in map(self._entries.__getitem__, ids) if e.track.command is not None]
        known.sort(key=lambda e: e.track.command.issued_at, reverse=True)  # type: ignore[union-attr]
        return [entry.view() for entry in known]

    def prune(self, now: datetime) -> None:
        """Forget commands the topic no longer keeps, and results whose command never came."""
        for command_id, entry in list(self._entries.items()):
            command = entry.track.command
            if (command.issued_at + KEPT_FOR if command is not None
                    else entry.first_seen + ORPHAN_FOR) < now:
                self._forget(command_id, entry)

    def _forget(self, command_id: str, entry: Entry) -> None:
        del self._entries[command_id]
        command = entry.track.command
        for index, key in ((self._by_vehicle, entry.vehicle_id),
                           (self._by_incident, command.incident_id if command else None)):
            ids = index.get(key) if key is not None else None
            if ids is not None:
                ids.pop(command_id, None)
                if not ids:
                    del index[key]
