"""``yrd-hazmat users`` (desk accounts on ``yrd.desk-users``) and ``yrd-hazmat audit`` (the
audit log): what the region's administrators run instead of editing a file. Every change is
an audit entry too (by ``--by``, default the operating-system user, from ``cli@<host>``)."""

from __future__ import annotations

import asyncio
import logging
import getpass
import json
import sys
from datetime import datetime

import click
import msgspec

from ..accounts import ROLES, Account, Accounts, encode, scope_problem
from ..audit import record_cli
from ..config import get_settings
from ..core.timeutil import CHINA_TZ


def _accounts() -> Accounts:
    from ..follow import TopicReader

    settings = get_settings()
    table = Accounts()
    asyncio.run(TopicReader.read_all(settings.kafka_options(), settings.topic_desk_users,
                                     table.apply))
    return table


def _publish(account_name: str, value: bytes | None, action: str, by: str,
             **details) -> None:
    from ..produce import publish

    settings = get_settings()
    asyncio.run(publish(settings, settings.topic_desk_users, [(account_name, value)]))
    record_cli(settings, by, action, account_name, **details)


def _password(from_stdin: bool) -> str:
    from ..desk.users import hash_password

    if from_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        raise click.ClickException("a password has at least 10 characters")
    return hash_password(password)


BY = click.option("--by", default=getpass.getuser, show_default="the operating-system user",
                  help="who makes the change (the audit log's user)")


@click.group()
def users() -> None:
    """Desk accounts: roles duty, supervisor, region, carrier, readonly (see README)."""
    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # its INFO is not for this screen


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--province", type=click.Choice(["SH", "JS", "ZJ", "AH"]), default=None,
              help="duty, supervisor: required; readonly: the province (none: the region)")
@click.option("--carrier", default=None, help="carrier: the carrier, as the register names it")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin")
@BY
def users_add(name: str, role: str, province: str | None, carrier: str | None,
              password_stdin: bool, by: str) -> None:
    """Add an account (or replace one of that name); the password from the terminal or
    stdin, never the command line."""
    problem = scope_problem(role, province, carrier)
    if problem:
        raise click.UsageError(problem)
    account = Account(name=name, role=role, province=province, carrier=carrier,
                      password=_password(password_stdin), updated_by=by,
                      updated_at=datetime.now(CHINA_TZ))
    _publish(name, encode(account), "account.add", by, role_given=role, province=province,
             carrier=carrier)
    click.echo(f"added {name}: {role} {province or carrier or 'region'}")


@users.command("set")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default=None)
@click.option("--province", type=click.Choice(["SH", "JS", "ZJ", "AH", "none"]), default=None)
@click.option("--carrier", default=None)
@click.option("--disable/--enable", "disabled", default=None,
              help="a disabled account cannot log in; its sessions end")
@click.option("--password", "new_password", is_flag=True, help="a new password (prompted, or stdin)")
@BY
def users_set(name: str, role: str | None, province: str | None, carrier: str | None,
              disabled: bool | None, new_password: bool, by: str) -> None:
    """Change an account's role, scope, password or whether it is enabled."""
    account = _accounts().get(name)
    if account is None:
        raise click.ClickException(f"no account {name}")
    changes: dict = {"updated_by": by, "updated_at": datetime.now(CHINA_TZ)}
    if role:
        changes["role"] = role
    if province:
        changes["province"] = None if province == "none" else province
    if carrier is not None:
        changes["carrier"] = carrier or None
    if disabled is not None:
        changes["disabled"] = disabled
    if new_password:
        changes["password"] = _password(False)
    try:
        changed = msgspec.structs.replace(account, **changes)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    shown = {k: v for k, v in changes.items() if k not in ("password", "updated_at",
                                                            "updated_by")}
    _publish(name, encode(changed), "account.set", by, password_changed=new_password or None,
             **{f"set_{k}": v for k, v in shown.items()})
    click.echo(f"changed {name}: {changed!r}")


@users.command("rm")
@click.argument("name")
@BY
def users_rm(name: str, by: str) -> None:
    """Remove an account (its sessions end)."""
    _publish(name, None, "account.remove", by)
    click.echo(f"removed {name}")


@users.command("ls")
def users_ls() -> None:
    """The accounts, as JSON lines (no password hashes)."""
    for a in _accounts().all():
        row = msgspec.to_builtins(a)
        row.pop("password")
        click.echo(json.dumps(row, ensure_ascii=False))


@click.command("audit")
@click.option("--user", default=None, help="only this user's")
@click.option("--action", default=None, help="only actions starting with this")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="China time")
@click.option("--last", type=int, default=100, show_default=True)
def audit(user: str | None, action: str | None, since: datetime | None, last: int) -> None:
    """The audit log (what Kafka keeps: 400 days; older in the archive's audit kind), as JSON
    lines, oldest first."""
    from ..audit import decode
    from ..follow import TopicReader

    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    settings = get_settings()
    found = []
    start = since.replace(tzinfo=CHINA_TZ) if since else None

    def keep(key: bytes | None, value: bytes | None) -> None:
        try:
            e = decode(value or b"")
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if (user is None or e.user == user) and (action is None or e.action.startswith(action)) \
                and (start is None or e.at >= start):
            found.append(e)

    asyncio.run(TopicReader.read_all(settings.kafka_options(), settings.topic_audit, keep))
    for e in sorted(found, key=lambda e: e.at)[-last:]:
        click.echo(json.dumps(msgspec.to_builtins(e), ensure_ascii=False))
