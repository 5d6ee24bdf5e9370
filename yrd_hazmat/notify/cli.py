"""``yrd-hazmat notify``: the notifier, its subscriptions and its deliveries."""

from __future__ import annotations

import asyncio
import logging
import json
import sys
from datetime import datetime

import click
import msgspec

from ..config import get_settings


@click.group()
def notify() -> None:
    """Alerts to people: webhooks, DingTalk / WeCom / Feishu robots, SMS, e-mail."""
    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # its INFO is not for this screen


@notify.command("run")
def notify_run() -> None:
    """Send what the subscriptions ask for until SIGTERM. Run one notifier."""
    from .process import run_until_signalled

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    asyncio.run(run_until_signalled(get_settings()))


def _audit(settings, action: str, target: str, **details) -> None:
    import getpass

    from ..audit import record_cli

    record_cli(settings, getpass.getuser(), action, target, **details)


async def _read(topic: str, apply) -> None:
    from ..follow import TopicReader

    await TopicReader.read_all(get_settings().kafka_options(), topic, apply)


def _subscriptions():
    from .subscriptions import Subscriptions

    table = Subscriptions()
    asyncio.run(_read(get_settings().topic_subscriptions, table.apply))
    return table


@notify.command("subscribe")
@click.argument("source", type=click.File("rb"), default="-")
def notify_subscribe(source) -> None:
    """Add or replace subscriptions: a JSON object, or a list of them, from SOURCE (a file,
    or - for stdin: secrets never go on the command line). Each is checked before any is
    published."""
    from ..produce import publish
    from .subscriptions import Subscription, encode

    raw = source.read()
    try:
        data = msgspec.json.decode(raw)
        subs = msgspec.convert(data if isinstance(data, list) else [data],
                               list[Subscription])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise click.ClickException(f"not a subscription: {exc}") from None
    settings = get_settings()
    asyncio.run(publish(settings, settings.topic_subscriptions,
                        [(s.subscription_id, encode(s)) for s in subs]))
    for s in subs:
        _audit(settings, "subscription.put", s.subscription_id, channel=s.channel.kind)
        click.echo(f"subscribed {s.subscription_id}: {s.name} via {s.channel.kind}")


@notify.command("unsubscribe")
@click.argument("subscription_id")
def notify_unsubscribe(subscription_id: str) -> None:
    """Remove a subscription (its deliveries still open are given up)."""
    from ..produce import publish

    settings = get_settings()
    asyncio.run(publish(settings, settings.topic_subscriptions, [(subscription_id, None)]))
    _audit(settings, "subscription.remove", subscription_id)
    click.echo(f"removed {subscription_id}")


@notify.command("subscriptions")
def notify_subscriptions() -> None:
    """The subscriptions in force, as JSON lines (secrets masked)."""
    for s in _subscriptions().all():
        shown = msgspec.to_builtins(s) | {"channel": s.channel.masked()}
        click.echo(json.dumps(shown, ensure_ascii=False))


@notify.command("test")
@click.argument("subscription_id")
def notify_test(subscription_id: str) -> None:
    """Send a test message through a subscription's channel now, and say what came back."""
    import aiohttp

    from ..core.timeutil import CHINA_TZ
    from .notice import Notice
    from .process import smtp_of
    from .send import deliver

    sub = _subscriptions().get(subscription_id)
    if sub is None:
        raise click.ClickException(f"no subscription {subscription_id}")
    settings = get_settings()
    now = datetime.now(CHINA_TZ)
    notice = Notice(notice_id=f"test-{subscription_id}-{int(now.timestamp())}",
                    subject=f"[测试] {sub.name}: 通知测试 (a test)", kind="test",
                    lines=["这是一条测试消息 (a test message)", f"订阅: {subscription_id}"],
                    severity="info")

    async def send():
        async with aiohttp.ClientSession() as session:
            return await deliver(sub.channel, notice, now=now, session=session,
                                 smtp=smtp_of(settings), timeout_s=settings.notify_timeout_s)
    try:
        answer = asyncio.run(send())
    except ValueError as exc:  # an e-mail channel with no SMTP server configured
        raise click.ClickException(str(exc)) from None
    click.echo(f"{'sent' if answer.ok else 'FAILED'}: {answer.reason}")
    sys.exit(0 if answer.ok else 1)


@notify.command("deliveries")
@click.option("--last", type=int, default=50, show_default=True)
@click.option("--state", default=None, help="only this state (sent, retrying, given_up...)")
def notify_deliveries(last: int, state: str | None) -> None:
    """The latest deliveries, as JSON lines: state, attempts, why it failed."""
    from .deliveries import Book

    book = Book()
    asyncio.run(_read(get_settings().topic_notifications, book.apply))
    found = sorted(book.by_id.values(), key=lambda d: d.updated_at)
    if state:
        found = [d for d in found if d.state == state]
    for d in found[-last:]:
        row = msgspec.to_builtins(d)
        row.pop("notice", None)
        row["subject"] = d.notice.subject if d.notice else None
        row.pop("event_ids", None)
        click.echo(json.dumps(row, ensure_ascii=False))


@notify.command("deadline")
@click.option("--type", "alert_type", default="*", show_default=True, help="alert type, or *")
@click.option("--severity", type=click.Choice(["critical", "warning", "info", "*"]),
              default="*", show_default=True)
@click.option("--ack-s", type=click.IntRange(min=1), default=None,
              help="seconds to acknowledge (unset: no such deadline)")
@click.option("--close-s", type=click.IntRange(min=1), default=None,
              help="seconds to close (unset: no such deadline)")
@click.option("--remove", is_flag=True, help="remove this line (the next specific one holds)")
def notify_deadline(alert_type: str, severity: str, ack_s: int | None, close_s: int | None,
                    remove: bool) -> None:
    """Set the deadlines of alerts of a type and severity (either may be *): the most
    specific line holds; without one, the defaults (critical 5 min / 4 h, warning 30 min /
    24 h, info none)."""
    from ..produce import publish
    from .deadlines import Deadline, encode

    try:
        line = Deadline(alert_type=alert_type, severity=severity, ack_s=ack_s, close_s=close_s)
        line = msgspec.convert(msgspec.to_builtins(line), Deadline)  # the patterns checked
    except msgspec.ValidationError as exc:
        raise click.ClickException(str(exc)) from None
    settings = get_settings()
    asyncio.run(publish(settings, settings.topic_deadlines,
                        [(line.key, None if remove else encode(line))]))
    _audit(settings, "deadline.remove" if remove else "deadline.set", line.key,
           ack_s=None if remove else ack_s, close_s=None if remove else close_s)
    click.echo(f"{'removed' if remove else 'set'} {line.key}")


@notify.command("deadlines")
def notify_deadlines() -> None:
    """The deadline policy in force (lines set, then the defaults), as JSON lines."""
    from .deadlines import DEFAULTS, Policy

    policy = Policy()
    asyncio.run(_read(get_settings().topic_deadlines, policy.apply))
    for line in policy.lines():
        click.echo(json.dumps(msgspec.to_builtins(line) | {"set": True}))
    for line in DEFAULTS.values():
        click.echo(json.dumps(msgspec.to_builtins(line) | {"set": False}))


@notify.command("sink")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8810, show_default=True)
@click.option("--secret-env", default="YRD_NOTIFY_SINK_SECRET", show_default=True,
              help="the environment variable holding the subscriptions' shared secret "
                   "(unset: signatures are not checked)")
def notify_sink(host: str, port: int, secret_env: str) -> None:
    """A webhook receiver that prints each notice on one line: a duty room's screen for
    the demo, or a way to see what a webhook subscription sends. Checks the signature
    (X-YRD-Signature) when a secret is given; answers 401 to a bad one."""
    import os

    from aiohttp import web

    from ..core.timeutil import CHINA_TZ
    from .channels import verify_webhook

    secret = os.environ.get(secret_env) or None
    seen: set[str] = set()

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        h = request.headers
        if secret is not None and not verify_webhook(
                secret, h.get("X-YRD-Timestamp", ""), body, h.get("X-YRD-Signature", ""),
                datetime.now(CHINA_TZ)):
            click.echo("refused: a bad or missing signature", err=True)
            return web.json_response({"error": "bad signature"}, status=401)
        try:
            notice = json.loads(body)
        except ValueError:
            return web.json_response({"error": "not JSON"}, status=400)
        delivery = h.get("X-YRD-Delivery", "")
        again = " (again: dropped)" if delivery in seen else ""
        seen.add(delivery)
        if not again:
            lines = " | ".join(notice.get("lines", [])[:3])
            click.echo(f"[{request.path}] {notice.get('subject')} | {lines}", color=False)
        else:
            click.echo(f"[{request.path}] {notice.get('subject')}{again}")
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/{path:.*}", receive)
    click.echo(f"notify sink on http://{host}:{port}/")
    web.run_app(app, host=host, port=port, print=None, handle_signals=True, access_log=None)
