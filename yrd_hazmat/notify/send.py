"""Sending a notice on a channel (:mod:`.channels` renders it): HTTP through an aiohttp
session, e-mail over SMTP with the standard library's :mod:`smtplib` in a thread.

:func:`deliver` never raises for a bad answer or a dead server: it returns an
:class:`~.channels.Answer` (delivered, worth a retry, or refused for good); it raises only
on a programming error (an e-mail channel without :class:`SmtpSettings`, a naive ``now``).
A channel of several requests (an SMS to several phones; WeCom's markdown and its
mention) is delivered only when every request is; a retry sends them all again, so the
notifier marks it a repeat.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from datetime import datetime

import aiohttp
import msgspec
from yarl import URL

from .channels import (Answer, Channel, EmailRequest, HttpRequest, MASK, read_answer,
                       render, mask_url)
from .notice import Notice


class SmtpSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str
    port: int = 25
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    """STARTTLS after connecting (port 587); ``ssl`` instead is TLS from the start (465)."""
    ssl: bool = False
    sender: str = "yrd-hazmat@localhost"
    timeout_s: float = 10

    def __post_init__(self) -> None:
        if self.starttls and self.ssl:
            raise ValueError("SMTP: starttls or ssl, not both")

    def masked(self) -> dict[str, object]:
        shown = msgspec.to_builtins(self)
        return shown | ({"password": MASK} if self.password is not None else {})

    def __repr__(self) -> str:
        return "SmtpSettings(" + ", ".join(f"{k}={v!r}" for k, v in self.masked().items()) + ")"

    def __rich_repr__(self):
        yield from self.masked().items()


async def deliver(channel: Channel, notice: Notice, *, now: datetime,
                  session: aiohttp.ClientSession, smtp: SmtpSettings | None,
                  timeout_s: float = 10) -> Answer:
    """Render ``notice`` for ``channel`` as of ``now``, send it, and read the answer."""
    rendered = render(channel, notice, now=now, sender=smtp.sender if smtp else "yrd-hazmat@localhost")
    if isinstance(rendered, EmailRequest):
        if smtp is None:
            raise ValueError("an e-mail channel needs SmtpSettings")
        return await asyncio.to_thread(send_mail, smtp, rendered)
    answers = [await _send_http(session, channel, request, timeout_s) for request in rendered]
    if len(answers) == 1:
        return answers[0]
    failed = [(request.label or f"request {n}", answer)
              for n, (request, answer) in enumerate(zip(rendered, answers), 1) if not answer.ok]
    if not failed:
        return Answer(ok=True, reason=f"all {len(answers)} delivered")
    return Answer(ok=False, retry=any(answer.retry for _, answer in failed),
                  reason=f"{len(failed)} of {len(answers)} failed: "
                         + "; ".join(f"{label}: {answer.reason}" for label, answer in failed))


async def _send_http(session: aiohttp.ClientSession, channel: Channel, request: HttpRequest,
                     timeout_s: float) -> Answer:
    try:
        async with session.request(
                request.method, URL(request.url, encoded=request.url.isascii()),
                headers=request.headers, data=request.body or None, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            body = await response.read()
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        detail = str(exc).replace(request.url, mask_url(request.url)) or "timed out"
        return Answer(ok=False, retry=True, reason=f"{type(exc).__name__}: {detail}")
    return read_answer(channel, response.status, body)


def send_mail(smtp: SmtpSettings, request: EmailRequest) -> Answer:
    """Blocking: one SMTP session. A 4xx reply or no connection: retry; a 5xx: refused."""
    try:
        client_class = smtplib.SMTP_SSL if smtp.ssl else smtplib.SMTP
        with client_class(smtp.host, smtp.port, timeout=smtp.timeout_s) as client:
            if smtp.starttls:
                client.starttls(context=ssl.create_default_context())
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
            refused = client.send_message(request.message, from_addr=smtp.sender, to_addrs=request.to)
    except smtplib.SMTPRecipientsRefused as exc:
        refused = exc.recipients
    except smtplib.SMTPResponseException as exc:
        return _smtp_reply(exc.smtp_code, exc.smtp_error)
    except smtplib.SMTPNotSupportedError as exc:
        return Answer(ok=False, reason=f"SMTP: {exc}")
    except OSError as exc:  # refused, reset, timed out, TLS, SMTPServerDisconnected
        return Answer(ok=False, retry=True, reason=f"SMTP {type(exc).__name__}: {exc}")
    if not refused:
        return Answer(ok=True, reason=f"SMTP: accepted for {len(request.to)}")
    return Answer(ok=False, retry=any(400 <= code < 500 for code, _ in refused.values()),
                  reason="; ".join(f"{rcpt}: {_smtp_reply(code, text).reason}"
                                   for rcpt, (code, text) in refused.items()))


def _smtp_reply(code: int, text: bytes | str) -> Answer:
    message = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return Answer(ok=False, retry=not 500 <= code < 600, reason=f"SMTP {code} {message}")
