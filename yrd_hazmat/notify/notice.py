"""What a notification says, whatever carries it: a :class:`Notice`, made once per
delivery from an alert, an incident record, an escalation or a digest of several, and
rendered per channel (:mod:`.channels`)."""

from __future__ import annotations

from typing import Literal

import msgspec

Severity = Literal["critical", "warning", "info"]


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    notice_id: str
    """The delivery's id: the same on every attempt, so a receiver can drop a repeat."""
    subject: str
    """One line: severity, plate, what happened, where (a chat message's title, an
    e-mail's subject, an SMS's first words)."""
    lines: list[str]
    """The body, one fact a line, plain text (no markup: channels escape what they need)."""
    severity: Severity
    link: str | None = None
    """The alert on the desk, when the desk's address is known."""
    repeat: bool = False
    """A re-send after an attempt whose outcome is unknown (the notifier stopped during
    it): the message says it may have arrived already."""
    items: int = 1
    """How many alerts it covers (more than one: a digest)."""
    kind: Literal["alert", "digest", "escalation", "incident", "test"] = "alert"
