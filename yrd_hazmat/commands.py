"""Commands to trucks from the command line and the desk: make one, send it, and follow
what becomes of it.

A command goes on ``yrd.commands``; the gateway holding the truck's terminal delivers it
(:mod:`.gateway.commands` tells how several gateways agree on one delivery) and records
each step on ``yrd.command-results``. :func:`send_command` reads that topic from its end
before it publishes, so no step is missed, and counts a step only when the log's rules
(:meth:`.gateway.commands.Track.apply`) do: a losing gateway's claim, a repeated answer
are not shown.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

import msgspec
from rich.console import Console
from rich.text import Text

from .core.codec import encode
from .config import Settings
from .follow import TopicReader
from .produce import publish
from .gateway.commands import FINAL, Track
from .jt808.downlink import DownlinkError, command_body
from .core.models import Command, CommandResult
from .core.timeutil import CHINA_TZ

_result_decoder = msgspec.json.Decoder(CommandResult)
_STYLE = {"claimed": "dim", "sent": "cyan", "ok": "bold green", "expired": "yellow",
          "timeout": "yellow"}
_console = Console(highlight=False)


def command_id(vehicle_id: str, kind: str, by: str, at: datetime, content: str = "") -> str:
    """Unique and readable: when (to the millisecond), what, and a digest of who sent
    what to which truck (the plate's Chinese characters have no place in an id)."""
    digest = hashlib.sha256("\x1f".join((vehicle_id, kind, by, content)).encode()).hexdigest()
    return f"{at:%Y%m%dT%H%M%S}.{at.microsecond // 1000:03d}-{kind}-{digest[:10]}"


def make_command(vehicle_id: str, kind: str, *, by: str, now: datetime, expires_in_s: float,
                 **fields) -> Command:
    """A valid command, or ValueError saying what is wrong with it (also a text a
    terminal could not be sent: not GBK, too long). Each kind needs its fields: text a
    ``text``, call_back a ``phone``, emergency_access a ``server`` and ``tcp_port``,
    tachograph a ``command_word``."""
    if expires_in_s <= 0:
        raise ValueError(f"expires in {expires_in_s:g} s: must be after now")
    content = repr(sorted(fields.items()))
    try:
        command = msgspec.convert(
            {"command_id": command_id(vehicle_id, kind, by, now, content),
             "vehicle_id": vehicle_id, "kind": kind, "issued_by": by, "issued_at": now,
             "expires_at": now + timedelta(seconds=expires_in_s), **fields}, Command)
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc)) from None
    if kind == "text" and command.text is None:
        raise ValueError("a text command needs its text")
    if kind == "call_back" and command.phone is None:
        raise ValueError("a call back needs the phone number to call")
    if kind == "emergency_access" and (command.server is None or command.tcp_port is None):
        raise ValueError("an emergency access needs the server's address and TCP port")
    if kind == "tachograph" and command.command_word is None:
        raise ValueError("a tachograph command needs its GB/T 19056 command word")
    try:
        command_body(command, version=1)  # the 2019 layout: the longer one
    except DownlinkError as exc:
        raise ValueError(str(exc)) from None
    return command


class Outcome(msgspec.Struct):
    """What the log said about a command while it was followed."""

    command: Command
    steps: list[CommandResult]
    """The records that counted, in the log's order."""

    @property
    def final(self) -> CommandResult | None:
        last = self.steps[-1] if self.steps else None
        return last if last is not None and last.status in FINAL else None

    def unfinished(self, now: datetime, timeout_s: float) -> str:
        """Why there is no final result yet, as the operator needs to hear it."""
        command = self.command
        last = self.steps[-1] if self.steps else None
        if last is None:
            if now < command.expires_at:
                return (f"not delivered yet: no gateway holds {command.vehicle_id}'s terminal; "
                        f"it is delivered when the truck connects, until "
                        f"{command.expires_at:%Y-%m-%d %H:%M:%S}")
            return "expired undelivered, and no gateway has recorded it: is one running?"
        if last.status == "claimed":
            return f"claimed by gateway {last.gateway} at {last.at:%H:%M:%S}, not sent yet"
        late = now > last.at + timedelta(seconds=timeout_s)
        return (f"sent by gateway {last.gateway} at {last.at:%H:%M:%S}, no answer yet"
                + (f" and no timeout recorded after {timeout_s:g} s: has that gateway "
                   f"stopped?" if late else ""))


async def send_command(settings: Settings, command: Command, wait_s: float,
                       on_step: Callable[[CommandResult], None] | None = None) -> Outcome:
    """Publish ``command`` and follow its results for at most ``wait_s`` seconds, or until
    the final one; ``on_step`` is called with each as it arrives."""
    outcome = Outcome(command, [])
    track = Track(command.command_id, command)
    finished = asyncio.Event()

    def apply(key: bytes | None, value: bytes | None) -> None:
        result = _result(value)
        if result is None or result.command_id != command.command_id:
            return
        if track.apply(result):
            outcome.steps.append(result)
            if on_step is not None:
                on_step(result)
            if result.status in FINAL:
                finished.set()

    reader = TopicReader(settings.kafka_options(), settings.topic_command_results, apply)
    await reader.start(from_start=False)
    try:
        await reader.catch_up()  # the end is fixed now: every later result is read
        await publish_command(settings, command)
        await reader.follow_until(finished, wait_s)
    finally:
        await reader.stop()
    return outcome


async def publish_command(settings: Settings, command: Command) -> None:
    """Put the command on ``yrd.commands`` (key: the plate); returns once acknowledged."""
    await publish(settings, settings.topic_commands, [(command.vehicle_id, encode(command))])


def _result(value: bytes | None) -> CommandResult | None:
    if value is None:
        return None
    try:
        return _result_decoder.decode(value)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None  # not ours to judge: the gateways log unreadable records


def step_line(result: CommandResult) -> Text:
    """One step as a line: time, status, gateway, and what it brought back."""
    line = Text()
    line.append(result.at.astimezone(CHINA_TZ).strftime("%H:%M:%S "), style="dim")
    line.append(f"{result.status.upper():12}", style=_STYLE.get(result.status, "bold red"))
    line.append(f"gateway {result.gateway or '-'}  ", style="dim")
    if result.status == "sent":
        line.append(f"message {result.detail or ''} serial {result.serial}  ")
    elif result.detail:
        line.append(f"{result.detail}  ")
    position = result.position
    if position is not None:
        where = (f"{position['lat']:.6f},{position['lon']:.6f}" if position.get("fix_valid")
                 else "no satellite fix")
        line.append(f"{where} at {position['ts']}, {position['speed_kmh']} km/h, "
                    f"heading {position['heading']}")
    if result.media_id is not None:
        line.append(f"photo {result.media_id} (on the media topic)")
    if result.data is not None:
        line.append(f"tachograph command word 0x{result.command_word or 0:02x}, "
                    f"{len(result.data) // 2} bytes: {result.data}")
    line.rstrip()
    return line


def print_step(result: CommandResult) -> None:
    """Print the step on the terminal (a long line is not cut: logs and pipes read it)."""
    _console.print(step_line(result), soft_wrap=True)
