"""The audit log: who did what, when, from where, and what came of it: every action a desk
takes (incident actions, commands, requests, appeals and their decisions, subscription and
account changes, track and evidence views) and every account change from the CLI, one
record each on ``yrd.audit`` (kept 400 days by Kafka, 3 years by the archive).

:class:`AuditLog` writes them; a record that cannot be written (the broker away) is logged
on the ``yrd_hazmat.audit`` logger with everything it holds, so nothing done goes unseen.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

import msgspec

from .core.timeutil import CHINA_TZ

log = logging.getLogger("yrd_hazmat.audit")

Outcome = Literal["ok", "refused", "failed"]


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One thing a person (or the CLI on a person's behalf) did."""

    at: datetime
    user: str
    role: str | None = None
    action: str
    """What was done, e.g. ``incident.appeal``, ``truck.command``, ``account.add``,
    ``truck.track.view``."""
    target: str | None = None
    """What it was done to: an incident, a truck, an account, a subscription..."""
    outcome: Outcome = "ok"
    reason: str | None = None
    """Why it was refused or failed."""
    address: str | None = None
    """Where it came from (the desk: the client's address; the CLI: ``cli@<host>``)."""
    details: dict[str, Any] = {}


_decode = msgspec.json.Decoder(AuditEntry)
encode = msgspec.json.Encoder().encode


def decode(value: bytes) -> AuditEntry:
    return _decode.decode(value)


def entry(user: str, action: str, target: str | None = None, *, outcome: Outcome = "ok",
          role: str | None = None, reason: str | None = None, address: str | None = None,
          **details: Any) -> AuditEntry:
    return AuditEntry(at=datetime.now(CHINA_TZ), user=user, role=role, action=action,
                      target=target, outcome=outcome, reason=reason, address=address,
                      details={k: v for k, v in details.items() if v is not None})


def cli_entry(by: str, action: str, target: str | None, *, outcome: Outcome = "ok",
              reason: str | None = None, **details: Any) -> AuditEntry:
    """An entry for what a command line did (``by``: its operator, ``--by`` or the
    operating-system user; from ``cli@<host>``)."""
    import socket

    return entry(by, action, target, role="cli", outcome=outcome, reason=reason,
                 address=f"cli@{socket.gethostname()}", **details)


async def publish_entry(settings, e: AuditEntry) -> None:
    """One entry on the audit topic (the CLI's way: a producer of its own)."""
    from .produce import publish

    await publish(settings, settings.topic_audit, [(e.user, encode(e))])


def record_cli(settings, by: str, action: str, target: str | None, *,
               outcome: Outcome = "ok", reason: str | None = None, **details: Any) -> None:
    """What a command line did, on the audit log, from synchronous code; a broker away:
    the entry whole on stderr (the action stands, its record must not vanish)."""
    import asyncio
    import sys

    e = cli_entry(by, action, target, outcome=outcome, reason=reason, **details)
    try:
        asyncio.run(publish_entry(settings, e))
    except Exception as exc:  # noqa: BLE001
        print(f"audit entry not written ({exc!r}): {encode(e).decode()}", file=sys.stderr)


class AuditLog:
    """Writes entries to the audit topic with a producer the caller owns."""

    def __init__(self, producer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def record(self, e: AuditEntry) -> None:
        value = encode(e)
        log.info("%s", value.decode("utf-8"))
        try:
            await self.producer.send_and_wait(self.topic, value, key=e.user.encode("utf-8"))
        except Exception as exc:  # noqa: BLE001 - the action happened: keep it in the log
            log.error("audit entry not written to %s (%r): %s", self.topic, exc,
                      value.decode("utf-8"))
