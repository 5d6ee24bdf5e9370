"""Answers to the upper platform's texts: UP_CTRL_MSG_TEXT_INFO_ACK 0x1503 (RESULT 0
delivered, 1 failed; 2011 quoting the text's MSG_SEQUENCE, 2019 its DATA_TYPE 0x9503 and
frame MSG_SN), sent when the terminal gateway records the command's final step on
``yrd.command-results`` (``ok``: delivered; failed, wrong, unsupported, timeout, expired,
refused: failed). Kept in memory: a text whose result comes after a restart of ours is not
answered; an answer made while the main link is down waits for it."""

from __future__ import annotations

import msgspec

from ..core.models import CommandResult
from ..gateway.commands import FINAL
from ..jt809 import control
from .session import Session

_decoder = msgspec.json.Decoder(CommandResult)


class TextAnswers:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending: dict[str, tuple[str, int, int, int]] = {}
        self._outbox: list[bytes] = []

    def expect(self, command_id: str, to: tuple[str, int, int, int]) -> None:
        self.pending[command_id] = to

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """A record of ``yrd.command-results``."""
        try:
            result = _decoder.decode(value or b"")
        except msgspec.DecodeError:
            return
        if result.status not in FINAL or result.command_id not in self.pending:
            return
        plate, colour, sequence, serial = self.pending.pop(result.command_id)
        answer = control.TextAnswer(
            result=control.DELIVERED if result.status == "ok" else control.FAILED,
            msg_id=sequence, source_type=control.TEXT_INFO, source_sn=serial)
        data = control.write_text_answer(answer, self.session.config.edition)
        self._outbox.append(self.session.frame(control.UP_CTRL_MSG, control.write(
            plate, colour, control.TEXT_INFO_ACK, data)))

    def take(self) -> list[bytes]:
        out, self._outbox = self._outbox, []
        return out
