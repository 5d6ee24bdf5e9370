"""Delivering commands to trucks' terminals: the pure logic each gateway process runs.

No sockets, no Kafka, no clock: the server feeds :class:`Delivery` what happens (a command
or result record read, a terminal authenticated or gone, a terminal's answer, the time)
and executes the actions it returns, in order: :class:`PublishResult`,
:class:`PublishMedia`, :class:`WriteFrame`.

The protocol: the log decides
------------------------------
A command (``yrd.commands``, key plate) must reach its truck once, through whichever of
several gateways holds the truck's connection, and never after ``expires_at``. Every step
is a record on ``yrd.command-results`` (key plate: all steps of one plate are in one
partition, so every reader sees them in the same order), and every reader applies the
same rules to that order (:meth:`Track.apply`):

1. ``claimed`` (gateway G): the first claim of a command wins. A later claim counts only
   if its time is at least :data:`LEASE_S` after the claim in force and nothing was sent
   yet: the claimant died or lost the truck, and another gateway takes over.
2. ``sent`` (gateway G, the platform's serial): counts only if G holds the claim in force
   and nothing was sent before. G writes the frame to the terminal when it reads its own
   ``sent`` back and it counted, and not otherwise.
3. A final record ends the command; anything after it is ignored: the terminal's answer
   (``ok``, ``failed``, ``wrong``, ``unsupported``, from any gateway that received it),
   ``timeout`` (from the sender: no answer within ``command_timeout_s``), ``expired`` or
   ``refused`` (from the claim holder, before a send).

Why ``sent`` is published before the frame goes out: a claimant slower than the lease
(a long pause, a follower lagging) could otherwise send after another gateway took
over. With ``sent`` as the commit, two gateways can both believe they hold the claim,
but the log accepts one ``sent`` and only its author writes. Clocks matter only for when
a takeover is allowed, never for safety: the rules read the times in the records, so
every reader decides alike. Reading one's own record back is the same as "the broker
acknowledged it and my follower has read past its offset": the follower applies records
in the partition's order. The price: a gateway that dies between its ``sent`` and the
frame loses the command (at most once, never twice); its readers see ``sent`` without
an answer.

Who publishes ``expired``: the holder of a claim, once (the claim is the mutex). A
gateway holding the truck claims to deliver; when ``expires_at`` passes on a command
not sent, every gateway may claim "to close it", the first claim wins, and its author
publishes the one ``expired``. A gateway that claimed and finds the command expired
before sending publishes ``expired`` instead of ``sent``.

A gateway that does not hold the truck waits: when the truck authenticates anywhere,
that gateway claims. An answer is matched by plate, serial and message id against every
``sent`` in the log, so it does not matter which gateway receives it.
"""

from __future__ import annotations

import base64
import heapq
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from ..jt808 import downlink as d
from ..jt808.messages import TERMINAL_RESPONSE, Position
from ..core.models import Command, CommandResult, Media

log = logging.getLogger(__name__)

LEASE_S = 30.0
"""How long a claim holds without a ``sent``. Every reader of the log (gateways, clients)
must use the same value: it is part of the rules, not a setting."""

FINAL = frozenset({"ok", "failed", "wrong", "unsupported", "timeout", "expired", "refused"})

ANSWER_STATUS = {d.OK: "ok", d.FAILED: "failed", d.WRONG: "wrong", d.UNSUPPORTED: "unsupported"}
"""0x0001 result -> status; any other code is a failure (its code in the detail)."""

FIX_VALID = 1 << 1

MAX_TACHOGRAPH_DATA = 256 * 1024
"""Bytes of a 0x0700's data block a result carries (twice that in hex): well under
``yrd.command-results``' 1 MB records. A recorder's answer to one 0x8700 is a few KB."""


# --- the rules every reader applies ------------------------------------------------------


@dataclass
class Track:
    """One command as the log tells it so far (the command record may come after its
    first results: they are two topics)."""

    command_id: str
    command: Command | None = None
    claim: CommandResult | None = None
    """The claim in force."""
    sent: CommandResult | None = None
    final: CommandResult | None = None

    def apply(self, result: CommandResult, lease_s: float = LEASE_S) -> bool:
        """Take the next record of the log; whether it counts (see the module's rules)."""
        if not self._counts(result, lease_s):
            return False
        if result.status == "claimed":
            self.claim = result
        elif result.status == "sent":
            self.sent = result
        else:
            self.final = result
        return True

    def _counts(self, result: CommandResult, lease_s: float) -> bool:
        if self.final is not None:
            return False
        status = result.status
        if status == "claimed":
            return self.sent is None and (
                self.claim is None or result.at >= self.claim.at + timedelta(seconds=lease_s))
        if status in ("sent", "expired", "refused"):  # only the claim holder, before a send
            return (self.sent is None and self.claim is not None
                    and self.claim.gateway == result.gateway)
        if status == "timeout":
            return self.sent is not None and self.sent.gateway == result.gateway
        return self.sent is not None  # the terminal's answer, wherever it arrived


# --- what the server does ----------------------------------------------------------------


@dataclass(frozen=True)
class PublishResult:
    """Publish to ``yrd.command-results`` (key: the plate), acknowledged before the next
    action."""

    result: CommandResult


@dataclass(frozen=True)
class PublishMedia:
    """Publish to ``yrd.media`` (key: the media id), acknowledged before the next action."""

    media: Media


@dataclass(frozen=True)
class WriteFrame:
    """Write ``build(msg_id, phone, serial, body, version)`` to the plate's connection
    (phone and version: the connection's own; no connection: drop it)."""

    vehicle_id: str
    msg_id: int
    body: bytes
    serial: int


Action = PublishResult | PublishMedia | WriteFrame


@dataclass
class _Held:
    connections: int
    version: int | None


# --- one gateway's part ------------------------------------------------------------------


class Delivery:
    """The commands and results a gateway has read, the trucks it holds, and what it
    must do next. ``gateway``: unique per process (e.g. host:pid), the claims' author;
    ``timeout_s``: how long a sent command waits for the terminal's answer."""

    def __init__(self, gateway: str, timeout_s: float, lease_s: float = LEASE_S) -> None:
        self.gateway = gateway
        self.timeout_s = timeout_s
        self.lease_s = lease_s
        self.ready = False
        """False while the topics are read up to their end: nothing is done before the
        whole log is known (:meth:`start`)."""
        self._tracks: dict[str, Track] = {}
        self._open: dict[str, set[str]] = {}
        """Plate -> ids of its commands not finished."""
        self._held: dict[str, _Held] = {}
        self._serials: dict[str, int] = {}
        self._pending: dict[str, datetime] = {}
        """Commands this gateway published a claim, sent, expired or refused for: not
        acted on again until that record is read back (or a lease passes: it failed)."""
        self._outgoing: dict[str, tuple[int, bytes]] = {}
        self._due: dict[str, datetime] = {}
        """Commands this gateway wrote -> when no answer is a timeout."""
        self._finishing: set[str] = set()
        self._awaiting: dict[tuple[str, int], str] = {}
        """(plate, serial of a counted ``sent``) -> command id: how answers are matched."""
        self._media: dict[tuple[str, int], str] = {}
        """(plate, terminal media id a 0x0805 announced) -> photo command id."""
        self._photo: dict[str, str] = {}
        """Plate -> a photo command acknowledged without media ids: the next upload the
        terminal makes on the platform's command (event 0) is its photo."""
        self._finished: list[tuple[datetime, str]] = []
        """(when its track may go, id) of finished commands, soonest first."""

    # --- records ----------------------------------------------------------------------
    def apply_command(self, key: bytes | None, value: bytes | None,
                      now: datetime) -> list[Action]:
        """One ``yrd.commands`` record; an unreadable one is logged and skipped."""
        command = plate_record(_command_decoder, key, value)
        return self.command(command, now) if command is not None else []

    def apply_result(self, key: bytes | None, value: bytes | None,
                     now: datetime) -> list[Action]:
        """One ``yrd.command-results`` record; an unreadable one is logged and skipped."""
        result = plate_record(_result_decoder, key, value)
        return self.result(result, now) if result is not None else []

    def command(self, command: Command, now: datetime) -> list[Action]:
        track = self._tracks.setdefault(command.command_id, Track(command.command_id))
        if track.command is not None:
            return []  # the same command again
        track.command = command
        if track.final is None:
            self._open.setdefault(command.vehicle_id, set()).add(command.command_id)
        return self._advance(track, now)

    def result(self, result: CommandResult, now: datetime) -> list[Action]:
        track = self._tracks.setdefault(result.command_id, Track(result.command_id))
        mine = result.gateway == self.gateway
        if mine and result.status not in FINAL:
            self._pending.pop(result.command_id, None)
        if not track.apply(result, self.lease_s):
            return self._advance(track, now)
        if result.status in FINAL:
            self._forget(track)
            return []
        if result.status == "sent":
            return self._counted_send(track, result, now)
        return self._advance(track, now)

    # --- connections and time -------------------------------------------------------------
    def start(self, now: datetime) -> list[Action]:
        """Both topics are read up to their end: act on what they hold."""
        self.ready = True
        return self.tick(now)

    def authenticated(self, vehicle_id: str, version: int | None,
                      now: datetime) -> list[Action]:
        """A terminal of ``vehicle_id`` authenticated on this gateway (``version``: its
        2019 header version, None for 2013)."""
        held = self._held.get(vehicle_id)
        self._held[vehicle_id] = _Held((held.connections if held else 0) + 1, version)
        return self._advance_all(self._open.get(vehicle_id, ()), now)

    def disconnected(self, vehicle_id: str) -> None:
        """One of its connections closed (an authenticated one)."""
        held = self._held.get(vehicle_id)
        if held is None:
            return
        if held.connections <= 1:
            del self._held[vehicle_id]
        else:
            held.connections -= 1

    def tick(self, now: datetime) -> list[Action]:
        """Called every second or so: timeouts, lapsed claims, expiry."""
        actions: list[Action] = []
        for command_id, due in list(self._due.items()):
            if now >= due:
                actions += self._timeout(self._tracks[command_id], now)
        for ids in list(self._open.values()):
            actions += self._advance_all(ids, now)
        self._prune(now)
        return actions

    def _prune(self, now: datetime) -> None:
        """Drop finished tracks whose command can no longer be sent anyway: its record read
        again (the same id republished) finds it expired. A track whose command record was
        not read yet waits a day for it (the commands follower lagging the results one)."""
        while self._finished and self._finished[0][0] <= now:
            self._tracks.pop(heapq.heappop(self._finished)[1], None)

    # --- the terminal's answers ------------------------------------------------------------
    def terminal_message(self, vehicle_id: str, msg_id: int, body: bytes,
                         now: datetime) -> list[Action]:
        """A message of :data:`~yrd_hazmat.jt808.downlink.ANSWERS` from an authenticated
        terminal of ``vehicle_id`` (a multimedia upload whole). Raises ``FrameError`` on a
        body that cannot be read (the session's dead letter and negative answer)."""
        if msg_id == TERMINAL_RESPONSE:
            return self._general_answer(vehicle_id, d.read_terminal_response(body), now)
        if msg_id == d.POSITION_ANSWER:
            return self._position_answer(vehicle_id, d.read_position_answer(body), now)
        if msg_id == d.PHOTO_ANSWER:
            return self._photo_answer(vehicle_id, d.read_photo_answer(body), now)
        if msg_id == d.MEDIA_UPLOAD:
            return self._media_upload(vehicle_id, d.read_media_upload(body), now)
        if msg_id == d.TACHOGRAPH_UPLOAD:
            return self._tachograph_upload(vehicle_id, d.read_tachograph_upload(body), now)
        raise ValueError(f"message 0x{msg_id:04x} does not answer a command")

    def _general_answer(self, plate: str, answer: d.TerminalResponse,
                        now: datetime) -> list[Action]:
        track = self._answered(plate, answer.serial, answer.msg_id)
        if track is None:
            return []
        status = ANSWER_STATUS.get(answer.result, "failed")
        assert track.command is not None
        if status == "ok" and track.command.kind == "photo":
            self._photo[plate] = track.command_id  # an old terminal: no 0x0805, the upload
            return []
        if status == "ok" and track.command.kind == "position_query":
            return []  # acknowledged; the position comes in 0x0201
        if status == "ok" and track.command.kind == "tachograph":
            return []  # acknowledged; the data comes in 0x0700
        detail = None if answer.result in ANSWER_STATUS else f"result code {answer.result}"
        return self._finish(track, status, now, detail=detail)

    def _position_answer(self, plate: str, answer: d.PositionAnswer,
                         now: datetime) -> list[Action]:
        track = self._answered(plate, answer.serial, d.POSITION_QUERY)
        if track is None:
            return []
        return self._finish(track, "ok", now, position=_position(answer.position))

    def _photo_answer(self, plate: str, answer: d.PhotoAnswer, now: datetime) -> list[Action]:
        track = self._answered(plate, answer.serial, d.PHOTO)
        if track is None:
            return []
        if answer.result == d.PHOTO_CHANNEL_UNSUPPORTED:
            assert track.command is not None
            return self._finish(track, "unsupported", now,
                                detail=f"camera channel {track.command.camera} not supported")
        if answer.result != d.PHOTO_OK:
            return self._finish(track, "failed", now, detail=f"photo result {answer.result}")
        for media_id in answer.media_ids:
            self._media[(plate, media_id)] = track.command_id
        if not answer.media_ids:
            self._photo[plate] = track.command_id
        if track.command_id in self._due:  # taken: its upload gets a timeout of its own
            self._due[track.command_id] = now + timedelta(seconds=self.timeout_s)
        return []

    def _tachograph_upload(self, plate: str, upload: d.TachographUpload,
                           now: datetime) -> list[Action]:
        """0x0700: the recorder's data finishes the 0x8700 it answers (same serial, same
        command word); it gets no 0x8001, as 0x0201 and 0x0805 get none: it is an answer
        itself."""
        track = self._answered(plate, upload.serial, d.TACHOGRAPH)
        if track is None:
            return []
        assert track.command is not None
        if upload.command_word != track.command.command_word:
            log.warning("%s: 0x0700 of serial %d answers command word %s, %s asked for %s: "
                        "not its answer", plate, upload.serial, upload.command_word,
                        track.command_id, track.command.command_word)
            return []
        if len(upload.data) > MAX_TACHOGRAPH_DATA:
            return self._finish(track, "failed", now, command_word=upload.command_word,
                                detail=f"tachograph data of {len(upload.data)} bytes, more "
                                       f"than a result carries ({MAX_TACHOGRAPH_DATA})")
        return self._finish(track, "ok", now, command_word=upload.command_word,
                            data=upload.data.hex())

    def _media_upload(self, plate: str, upload: d.MediaUpload, now: datetime) -> list[Action]:
        """Every whole upload becomes a :class:`Media` (also an alarm's photo: evidence)
        and is answered 0x8800; the photo a command asked for also finishes it."""
        command_id = self._media.pop((plate, upload.media_id), None)
        if command_id is None and upload.event == 0:
            command_id = self._photo.pop(plate, None)
        media = _media(plate, upload, command_id, now)
        actions: list[Action] = [PublishMedia(media)]
        track = self._tracks.get(command_id) if command_id is not None else None
        if track is not None and track.final is None:
            actions += self._finish(track, "ok", now, media_id=media.media_id)
        actions.append(WriteFrame(plate, d.MEDIA_UPLOAD_ANSWER,
                                  d.media_upload_answer(upload.media_id), self._serial(plate)))
        return actions

    def _answered(self, plate: str, serial: int, msg_id: int) -> Track | None:
        """The command sent to ``plate`` as message ``msg_id`` with ``serial``, not
        finished yet."""
        track = self._tracks.get(self._awaiting.get((plate, serial), ""))
        if (track is None or track.final is not None or track.command is None
                or d.COMMAND_MESSAGE[track.command.kind] != msg_id):
            return None
        return track

    # --- what to do next -----------------------------------------------------------------
    def _advance_all(self, ids: Iterable[str], now: datetime) -> list[Action]:
        actions: list[Action] = []
        for command_id in list(ids):
            actions += self._advance(self._tracks[command_id], now)
        return actions

    def _advance(self, track: Track, now: datetime) -> list[Action]:
        """This gateway's next step for a command not sent yet, from the log's state."""
        command = track.command
        if (not self.ready or command is None or track.sent is not None
                or track.final is not None or now < self._pending.get(track.command_id, now)):
            return []
        expired = now >= command.expires_at
        held = command.vehicle_id in self._held
        claim = track.claim
        if claim is not None and claim.gateway == self.gateway:
            if expired:
                return self._publish(track, "expired", now,
                                     detail=f"not delivered by {command.expires_at.isoformat()}")
            return self._send(track, now) if held else []
        if claim is not None and now < claim.at + timedelta(seconds=self.lease_s):
            return []  # another gateway's claim in force
        if expired or held:
            return self._publish(track, "claimed", now,
                                 detail="to close it: expired" if expired else "to deliver")
        return []

    def _send(self, track: Track, now: datetime) -> list[Action]:
        command = track.command
        assert command is not None
        try:
            msg_id, body = d.command_body(command, self._held[command.vehicle_id].version)
        except d.DownlinkError as exc:
            return self._publish(track, "refused", now, detail=str(exc))
        self._outgoing[track.command_id] = (msg_id, body)
        return self._publish(track, "sent", now, serial=self._serial(command.vehicle_id),
                             detail=f"0x{msg_id:04x}")

    def _counted_send(self, track: Track, sent: CommandResult, now: datetime) -> list[Action]:
        """A ``sent`` that counted: answers are matched to it; its author writes."""
        assert sent.serial is not None
        self._awaiting[(sent.vehicle_id, sent.serial)] = track.command_id
        if sent.gateway != self.gateway:
            return []
        self._due[track.command_id] = now + timedelta(seconds=self.timeout_s)
        outgoing = self._outgoing.pop(track.command_id, None)
        if outgoing is None or sent.vehicle_id not in self._held:
            return []  # the truck left meanwhile: no answer will come, a timeout will
        msg_id, body = outgoing
        return [WriteFrame(sent.vehicle_id, msg_id, body, sent.serial)]

    def _timeout(self, track: Track, now: datetime) -> list[Action]:
        waiting_photo = any(v == track.command_id for v in self._media.values())
        # re-armed, not dropped: should this publish fail, it is tried again
        self._due[track.command_id] = now + timedelta(seconds=self.lease_s)
        detail = (f"photo taken, its upload did not arrive in {self.timeout_s:g} s"
                  if waiting_photo else f"no answer in {self.timeout_s:g} s")
        return [PublishResult(self._record(track, "timeout", now, detail=detail,
                                           serial=track.sent.serial if track.sent else None))]

    def _finish(self, track: Track, status: str, now: datetime, **fields) -> list[Action]:
        """The terminal's answer, once from this gateway (a terminal may repeat it)."""
        if track.command_id in self._finishing:
            return []
        self._finishing.add(track.command_id)
        assert track.sent is not None
        return [PublishResult(self._record(track, status, now, serial=track.sent.serial,
                                           **fields))]

    def _publish(self, track: Track, status: str, now: datetime, **fields) -> list[Action]:
        self._pending[track.command_id] = now + timedelta(seconds=self.lease_s)
        return [PublishResult(self._record(track, status, now, **fields))]

    def _record(self, track: Track, status: str, now: datetime, **fields) -> CommandResult:
        assert track.command is not None
        return CommandResult(command_id=track.command_id, vehicle_id=track.command.vehicle_id,
                             status=status, at=now, gateway=self.gateway, **fields)

    def _serial(self, plate: str) -> int:
        """The platform's next serial to this plate's terminal, 1 to 0xFFFF."""
        serial = self._serials.get(plate, 0) % 0xFFFF + 1
        self._serials[plate] = serial
        return serial

    def _forget(self, track: Track) -> None:
        """A finished command: keep only its :class:`Track` (a late record of it must not
        open it again) until :meth:`_prune`, drop the rest."""
        command_id = track.command_id
        assert track.final is not None
        keep = (track.command.expires_at + timedelta(seconds=self.lease_s)
                if track.command is not None else track.final.at + timedelta(days=1))
        heapq.heappush(self._finished, (max(keep, track.final.at), command_id))
        for index in (self._pending, self._outgoing, self._due):
            index.pop(command_id, None)
        self._finishing.discard(command_id)
        if track.command is not None:
            plate = track.command.vehicle_id
            ids = self._open.get(plate)
            if ids is not None:
                ids.discard(command_id)
                if not ids:
                    del self._open[plate]
        for index in (self._awaiting, self._media, self._photo):
            for key in [k for k, v in index.items() if v == command_id]:
                del index[key]


# --- records in and out ------------------------------------------------------------------

_command_decoder = msgspec.json.Decoder(Command)
_result_decoder = msgspec.json.Decoder(CommandResult)


def plate_record(decoder: msgspec.json.Decoder, key: bytes | None, value: bytes | None):
    """The record's struct, or None (logged) when it is unreadable or its key is not its
    plate (a record away from its plate's partition would break the log's order)."""
    if value is None:
        return None
    try:
        record = decoder.decode(value)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.warning("unreadable record %r: %s", key, exc)
        return None
    if key is None or key.decode("utf-8", "replace") != record.vehicle_id:
        log.warning("record %s keyed %r, not by its plate %s", record.command_id, key,
                    record.vehicle_id)
        return None
    return record


def _where(position: Position) -> tuple[float | None, float | None]:
    """The coordinates of a fix, or none (no fix: proof of life, not a position)."""
    if not position.status & FIX_VALID or abs(position.lat) > 90 or abs(position.lon) > 180:
        return None, None
    return position.lat, position.lon


def _position(position: Position) -> dict:
    lat, lon = _where(position)
    return {"lat": lat, "lon": lon, "ts": position.ts.isoformat(),
            "speed_kmh": position.speed_kmh, "heading": position.heading,
            "altitude_m": position.altitude_m, "fix_valid": lat is not None}


def _media(plate: str, upload: d.MediaUpload, command_id: str | None, now: datetime) -> Media:
    """Its id is the plate, the terminal's media id and when it was taken: the same
    upload sent twice is the same media (a terminal's ids restart after a reboot)."""
    taken = upload.position.ts if upload.position is not None else None
    lat, lon = _where(upload.position) if upload.position is not None else (None, None)
    return Media(media_id=f"{plate}:{upload.media_id}:{(taken or now):%Y%m%d%H%M%S}",
                 vehicle_id=plate, terminal_media_id=upload.media_id,
                 format=upload.format_name, channel=upload.channel, event=upload.event,
                 received_at=now, data=base64.b64encode(upload.data).decode("ascii"),
                 size=len(upload.data), command_id=command_id, taken_at=taken, lat=lat,
                 lon=lon)
