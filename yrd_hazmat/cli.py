"""``yrd-hazmat``: the project's command line (worker, simulator, alerts desk, demo)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import click

from . import __version__
from .audit import record_cli
from .config import InvalidSettings, get_settings

REPO_ROOT = Path(__file__).resolve().parent.parent


def _quiet_kafka_client() -> None:
    """Keep the client's transient connection errors off a screen meant for alerts."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def _split(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(v.strip() for item in values for v in item.split(",") if v.strip())


class _Commands(click.Group):
    """The command group; the one place where an invalid setting becomes one line on stderr.

    Every command reads its settings through :func:`get_settings`, which raises
    :class:`InvalidSettings` (``error: VARIABLE: problem``, never the value):
    it is printed as is and the exit status is 2, as for a usage error.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InvalidSettings as exc:
            click.echo(exc.message, err=True)
            ctx.exit(2)


@click.group(cls=_Commands)
@click.version_option(__version__, prog_name="yrd-hazmat")
def main() -> None:
    """YRD Hazmat: hazmat-truck pings in, alerts out."""
    try:
        level = get_settings().log_level
    except InvalidSettings:
        # Every command that needs settings reads them first and stops with the error;
        # ``--help`` and ``schemas`` need none.
        level = "INFO"
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
def topics() -> None:
    """Create the contract's topics (missing ones only)."""
    from .topics import ensure_topics

    created = asyncio.run(ensure_topics(get_settings()))
    click.echo(f"created: {', '.join(created) or 'nothing, all exist'}")


@main.command()
@click.option("--loglevel", default="info", show_default=True)
def worker(loglevel: str) -> None:
    """Run the Faust worker (same as ``faust -A agents.worker worker``)."""
    import faust

    from .topics import ensure_topics_ready

    asyncio.run(ensure_topics_ready(get_settings()))
    from agents.worker import app

    faust.Worker(app, loglevel=loglevel).execute_from_commandline()


@main.command()
@click.option("--vehicles", default=30, show_default=True, help="trucks in the fleet")
@click.option("--interval", default=5.0, show_default=True, help="seconds between pings")
@click.option("--speeders", default=0.25, show_default=True, help="share of trucks that speed")
@click.option("--seed", default=7, show_default=True)
@click.option("--duration", type=float, default=None, help="stop after N seconds")
@click.option("--protocol", type=click.Choice(["kafka", "jt808", "jt809"]), default="kafka",
              show_default=True,
              help="kafka: pings straight to the pings topic; jt808: one simulated terminal "
                   "per truck, through the gateway; jt809: an enterprise platform passing the "
                   "fleet's positions up the gateway's platform link (YRD_JT809_* settings)")
@click.option("--gateway", default=None, help="host:port of the gateway (default "
              "127.0.0.1:YRD_JT808_PORT, or YRD_JT809_PORT with --protocol jt809)")
@click.option("--jt808-version", type=click.Choice(["2013", "2019"]), default="2013",
              show_default=True)
@click.option("--accident-every", type=float, default=None,
              help="seconds: the third truck collides 90 s into every such period (an "
                   "emergency with responders); default: no accident")
@click.option("--answer-after", type=float, default=20.0, show_default=True,
              help="jt809: seconds before the platform answers an inspection (0x9301); a "
                   "supervision order takes 1.5 times that, a photo half, a text or static "
                   "information a quarter; negative: it answers nothing")
@click.option("--slave-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="jt809: port of the platform's slave-link server, given at login "
                   "(0: any free port)")
@click.option("--slave-host", default="127.0.0.1", show_default=True,
              help="jt809: address of the slave-link server (listened on and given at login)")
def simulate(vehicles: int, interval: float, speeders: float, seed: int, duration: float | None,
             protocol: str, gateway: str | None, jt808_version: str,
             accident_every: float | None, answer_after: float, slave_port: int,
             slave_host: str) -> None:
    """Drive a simulated fleet along the YRD corridors, publishing pings."""
    import signal

    settings = get_settings()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stops as Ctrl-C does: exit 0
    try:
        if protocol == "jt808":
            from .jt808.drive import run_terminals

            host, _, port = (gateway or f"127.0.0.1:{settings.jt808_port}").rpartition(":")
            sent = asyncio.run(run_terminals(
                settings.kafka_options(), settings.topic_permits, host or "127.0.0.1", int(port),
                size=vehicles, interval_s=interval, speeders=speeders, seed=seed,
                duration_s=duration, version=None if jt808_version == "2013" else 1,
                accident_every_s=accident_every))
            click.echo(f"sent {sent} positions through the gateway", err=True)
            return
        if protocol == "jt809":
            from .jt809.drive import run_platform

            host, _, port = (gateway or f"127.0.0.1:{settings.jt809_port}").rpartition(":")
            sent = asyncio.run(run_platform(
                settings, settings.kafka_options(), host or "127.0.0.1", int(port),
                size=vehicles, interval_s=interval, speeders=speeders, seed=seed,
                duration_s=duration, accident_every_s=accident_every,
                answer_after_s=answer_after, slave_host=slave_host, slave_port=slave_port))
            click.echo(f"sent {sent} positions over the platform link", err=True)
            return
        from .simulator import run

        sent = asyncio.run(
            run(settings.kafka_options(), settings.topic_pings, settings.topic_permits, size=vehicles, interval_s=interval,
                speeders=speeders, seed=seed, duration_s=duration, accident_every_s=accident_every)
        )
        click.echo(f"sent {sent} pings", err=True)
    except KeyboardInterrupt:
        pass


@main.command("simulate-upper")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=int, default=None,
              help="main-link port to listen on (default: YRD_UPLINK_PORT)")
@click.option("--user-id", type=int, default=None,
              help="USERID it accepts (default: YRD_UPLINK_USER_ID)")
@click.option("--password", default=None, help="password it accepts (default: "
              "YRD_UPLINK_PASSWORD)")
@click.option("--access-code", type=int, default=None,
              help="MSG_GNSSCENTERID of its frames (default: YRD_UPLINK_ACCESS_CODE)")
@click.option("--edition", type=click.Choice(["2011", "2019"]), default=None,
              help="JT/T 809 edition (default: YRD_UPLINK_EDITION)")
@click.option("--inspect-every", type=float, default=600.0, show_default=True,
              help="seconds between inspection questions (0x9301; 0: none)")
@click.option("--first-inspection", type=float, default=60.0, show_default=True,
              help="seconds from the start to the first inspection question")
@click.option("--answer-minutes", type=click.IntRange(1, 255), default=None,
              help="ANSWER_TIME of its questions, minutes (sent in 2019; default: none, "
                   "i.e. the 2011 rule, 10 min)")
@click.option("--order-every", type=float, default=900.0, show_default=True,
              help="seconds between supervision orders (0x9401) about an alarm it received "
                   "(0: none)")
@click.option("--order-minutes", type=float, default=30.0, show_default=True,
              help="a supervision order's deadline, minutes from its sending")
@click.option("--summary-every", type=float, default=30.0, show_default=True,
              help="seconds between summary lines in the log")
def simulate_upper(host: str, port: int | None, user_id: int | None, password: str | None,
                   access_code: int | None, edition: str | None, inspect_every: float,
                   first_inspection: float, answer_minutes: int | None, order_every: float,
                   order_minutes: float, summary_every: float) -> None:
    """A simulated national (upper) platform for `yrd-hazmat uplink` (JT/T 809): accepts its
    login and connects to its slave-link server, counts the positions and alarms it gets,
    asks inspection questions and sends supervision orders, and logs each answer with the
    time it took. The uplink's YRD_UPLINK_* settings give what it does not. SIGTERM or
    Ctrl-C stops it."""
    from .jt809.frame import Cipher
    from .uplink.simulator import run_upper_until_signalled

    settings = get_settings()
    constants = (settings.uplink_m1, settings.uplink_ia1, settings.uplink_ic1)
    asyncio.run(run_upper_until_signalled(
        host=host, port=settings.uplink_port if port is None else port,
        user_id=settings.uplink_user_id if user_id is None else user_id,
        password=settings.uplink_password.get_secret_value() if password is None else password,
        center=settings.uplink_access_code if access_code is None else access_code,
        edition=settings.uplink_edition if edition is None else int(edition),
        cipher=Cipher(*constants) if any(constants) else None,
        inspect_every_s=inspect_every, first_inspection_s=first_inspection,
        answer_minutes=answer_minutes, order_every_s=order_every,
        order_minutes=order_minutes, summary_every_s=summary_every))


@main.command()
def desk() -> None:
    """Run the police desk (web, YRD_DESK_PORT) for the users in YRD_DESK_USERS."""
    from .desk.app import run

    run(get_settings())


@main.command("desk-user")
@click.argument("name")
@click.option("--jurisdiction", type=click.Choice(["SH", "JS", "ZJ", "AH", "region", "carrier"]),
              required=True, help="the province the user sees, the whole region, or "
                                  "carrier (its own trucks, wherever they are)")
@click.option("--carrier", default=None, help="jurisdiction carrier: the carrier, as the "
                                              "vehicle register names it")
@click.password_option(help="read from the terminal when not given")
def desk_user(name: str, jurisdiction: str, carrier: str | None, password: str) -> None:
    """Print a desk user entry (password hashed) for the YRD_DESK_USERS file."""
    from .desk.users import hash_password

    if (jurisdiction == "carrier") != bool(carrier):
        raise click.UsageError("--carrier with --jurisdiction carrier, and only with it")
    entry = {"name": name, "jurisdiction": jurisdiction, "password": hash_password(password)}
    if carrier:
        entry["carrier"] = carrier
    click.echo(json.dumps(entry, ensure_ascii=False))


@main.group()
def resources() -> None:
    """Emergency resources on the resources topic."""


@resources.command("publish")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def resources_publish(path: str) -> None:
    """Publish every resource of a file like yrd_hazmat/data/resources.json (key: id)."""
    from .core.emergency.responders import load_resources
    from .topics import ensure_topics

    settings = get_settings()
    asyncio.run(ensure_topics(settings))
    items = load_resources(path)

    import msgspec

    from .produce import publish

    asyncio.run(publish(settings, settings.topic_resources,
                        [(r.resource_id, msgspec.json.encode(r)) for r in items]))
    click.echo(f"published {len(items)} resource(s) to {settings.topic_resources}")


@main.command("terminal-profile")
@click.argument("plate", required=False)
@click.option("--carrier", help="the carrier declaring the vehicle's terminal")
@click.option("--profile", "profile_name", help="a terminal profile (see --list)")
@click.option("--maker", help="the terminal's maker id (its profile is looked up)")
@click.option("--model", help="the terminal's model")
@click.option("--remove", is_flag=True, help="withdraw the vehicle's declaration")
@click.option("--list", "list_profiles", is_flag=True, help="list the terminal profiles known")
def terminal_profile(plate: str | None, carrier: str | None, profile_name: str | None,
                     maker: str | None, model: str | None, remove: bool,
                     list_profiles: bool) -> None:
    """Declare which terminal a carrier's vehicle has (yrd.vehicle-terminals): its profile
    says what the terminal's maker items mean; it overrides the terminal's registration."""
    import msgspec

    from .jt808 import profiles
    from .core.models import VehicleTerminal
    from .produce import publish

    if list_profiles:
        for known in profiles.PROFILES:
            matched = (f"maker {known.maker}, model {known.model_prefix or 'any'}*"
                       if known.maker else "by declaration only")
            items = ", ".join(f"0x{i.item:02X} ({i.size} B) {i.field}" for i in known.items)
            click.echo(f"{known.name}: {matched}: {items}")
        return
    if plate is None:
        raise click.UsageError("give the vehicle's plate (or --list)")
    settings = get_settings()
    if remove:
        asyncio.run(publish(settings, settings.topic_vehicle_terminals, [(plate, None)]))
        click.echo(f"{plate}: declaration withdrawn")
        return
    if profile_name is not None and profiles.by_name(profile_name) is None:
        raise click.BadParameter(f"no profile {profile_name!r} (see --list)", param_hint="--profile")
    try:
        declared = msgspec.convert({"vehicle_id": plate, "carrier": carrier, "profile": profile_name,
                                    "maker": maker, "model": model}, VehicleTerminal)
    except msgspec.ValidationError as exc:
        raise click.UsageError(f"declaration: {exc}") from None
    if declared.profile is None and declared.maker is None:
        raise click.UsageError("give --profile, or --maker (and --model)")
    asyncio.run(publish(settings, settings.topic_vehicle_terminals,
                        [(plate, msgspec.json.encode(declared))]))
    chosen = profiles.select(declared, None)
    click.echo(f"{plate} ({declared.carrier}): profile "
               f"{chosen.name if chosen else 'none: its maker items stay raw'}")


@main.command()
@click.argument("incident_id")
@click.argument("kind", required=False,
                type=click.Choice(["dispatch", "arrive", "release", "close", "note", "ack"]))
@click.argument("resource_id", required=False)
@click.option("--by", default=lambda: os.environ.get("USER") or "operator",
              help="who does it (default: $USER)")
@click.option("--at", "at_", default=None, help="when (RFC 3339; default: now)")
@click.option("--text", default=None, help="a note or remark")
@click.option("--timeout", default=30.0, show_default=True, help="seconds to wait for the keeper")
def respond(incident_id: str, kind: str | None, resource_id: str | None, by: str,
            at_: str | None, text: str | None, timeout: float) -> None:
    """Show an incident's record, or record a response: dispatch, arrive or release a
    resource (RESOURCE_ID), close the incident, or note something on it."""
    import uuid
    from datetime import datetime

    import msgspec

    from .operator.incidents import describe, read_records, record_action
    from .core.models import IncidentAction
    from .core.timeutil import CHINA_TZ

    settings = get_settings()
    now = datetime.now(CHINA_TZ)
    if kind is None:
        record = asyncio.run(read_records(settings)).get(incident_id)
        if record is None:
            raise click.ClickException(f"no incident record {incident_id}")
        click.echo(describe(record, now))
        return
    if kind in ("dispatch", "arrive", "release") and not resource_id:
        raise click.UsageError(f"{kind} needs a RESOURCE_ID")
    try:
        action = msgspec.convert({"kind": kind, "by": by, "at": at_ or now, "text": text,
                                  "resource_id": resource_id, "action_id": uuid.uuid4().hex},
                                 IncidentAction)
    except msgspec.ValidationError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        record, refused = asyncio.run(record_action(settings, incident_id, action, timeout))
    except LookupError:
        record_cli(settings, by, f"incident.{kind}", incident_id, outcome="refused",
                   reason="no such incident")
        raise click.ClickException(f"no incident record {incident_id}") from None
    except TimeoutError:
        record_cli(settings, by, f"incident.{kind}", incident_id, outcome="failed",
                   reason="no keeper answered")
        raise click.ClickException(f"sent, but no incident keeper recorded it in {timeout:g} s: "
                                   "is a worker running?") from None
    record_cli(settings, by, f"incident.{kind}", incident_id,
               outcome="refused" if refused else "ok", reason=refused, resource_id=resource_id)
    click.echo(describe(record, now))
    if refused:
        raise click.ClickException(f"{kind} refused: {refused}")


@main.group()
@click.argument("plate")
@click.pass_context
def command(ctx: click.Context, plate: str) -> None:
    """Send a command to a truck's terminal (JT/T 808) and follow what becomes of it:
    delivered by the gateway holding the truck, or when it next connects, until it
    expires. Exit status 0 when the terminal carried it out, 1 otherwise."""
    ctx.obj = plate


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment nor the user database
        return "operator"


def _command_options(f):
    """The options every kind of command takes."""
    f = click.option("--by", default=_os_user, help="who sends it (default: the OS user)")(f)
    f = click.option("--expires-in", type=float, default=None,
                     help="seconds it may wait for the truck to connect "
                          "(default: YRD_COMMAND_EXPIRY_S)")(f)
    f = click.option("--wait", type=float, default=None,
                     help="seconds to follow its results (default: YRD_COMMAND_TIMEOUT_S "
                          "plus 10, twice that for a photo)")(f)
    return click.pass_obj(f)


@command.command("text")
@click.argument("message")
@click.option("--tts", is_flag=True, help="read it aloud")
@click.option("--emergency", is_flag=True, help="an emergency message")
@_command_options
def command_text(plate: str, message: str, tts: bool, emergency: bool, by: str,
                 expires_in: float | None, wait: float | None) -> None:
    """Show MESSAGE on the truck's display (0x8300)."""
    _send_command(plate, "text", by, expires_in, wait, text=message, tts=tts,
                  emergency=emergency)


@command.command("position")
@_command_options
def command_position(plate: str, by: str, expires_in: float | None,
                     wait: float | None) -> None:
    """Ask the terminal where it is now (0x8201)."""
    _send_command(plate, "position_query", by, expires_in, wait)


@command.command("confirm-alarm")
@click.option("--serial", type=int, required=True,
              help="serial of the alarm's location report (0: every alarm of those types)")
@click.option("--types", "mask", required=True,
              help="the alarm bits confirmed, e.g. 0x20000000 or 536870912")
@_command_options
def command_confirm_alarm(plate: str, serial: int, mask: str, by: str,
                          expires_in: float | None, wait: float | None) -> None:
    """Confirm alarms by hand (0x8203), so the terminal clears them."""
    _send_command(plate, "alarm_confirm", by, expires_in, wait, alarm_serial=serial,
                  alarm_types=_number(mask, "--types"))


def _number(text: str, option: str) -> int:
    """An option's integer, decimal or with its base prefix (``0x0002``)."""
    try:
        return int(text, 0)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a number", param_hint=option) from None


@command.command("photo")
@click.option("--camera", type=int, default=1, show_default=True, help="camera channel")
@_command_options
def command_photo(plate: str, camera: int, by: str, expires_in: float | None,
                  wait: float | None) -> None:
    """Take a photo now (0x8801); it arrives on the media topic."""
    _send_command(plate, "photo", by, expires_in, wait, camera=camera)


@command.command("call-back")
@click.argument("phone")
@click.option("--normal", is_flag=True,
              help="a normal call (default: listen, 监听: PHONE hears the cab, the cab does "
                   "not hear PHONE)")
@_command_options
def command_call_back(plate: str, phone: str, normal: bool, by: str, expires_in: float | None,
                      wait: float | None) -> None:
    """Have the terminal call PHONE (0x8400), to listen in unless --normal; the terminal
    answers 0x0001."""
    _send_command(plate, "call_back", by, expires_in, wait, phone=phone, listen=not normal)


@command.command("emergency-access")
@click.argument("server")
@click.option("--tcp-port", type=click.IntRange(0, 0xFFFF), required=True,
              help="the server's TCP port")
@click.option("--udp-port", type=click.IntRange(0, 0xFFFF), default=0, show_default=True,
              help="its UDP port (0: none)")
@click.option("--minutes", type=click.IntRange(0, 0xFFFF), required=True,
              help="how long the terminal stays there before it returns to this platform "
                   "(0: no limit)")
@click.option("--auth-code", default="", help="the authentication code that server issued")
@click.option("--apn", default="", help="dial-up access point (default: as now)")
@click.option("--dial-user", default="", help="dial-up user name")
@click.option("--dial-password", default="", help="dial-up password")
@_command_options
def command_emergency_access(plate: str, server: str, tcp_port: int, udp_port: int,
                             minutes: int, auth_code: str, apn: str, dial_user: str,
                             dial_password: str, by: str, expires_in: float | None,
                             wait: float | None) -> None:
    """Send the terminal to SERVER, an address or domain (0x8105 command word 2: connect to
    a specified server, the emergency access); it answers 0x0001, then leaves this
    platform for that server."""
    _send_command(plate, "emergency_access", by, expires_in, wait, server=server,
                  tcp_port=tcp_port, udp_port=udp_port, minutes=minutes, auth_code=auth_code,
                  apn=apn, dial_user=dial_user, dial_password=dial_password)


@command.command("tachograph")
@click.argument("word")
@click.option("--block", default=None,
              help="hex data block after the command word (a 2019 terminal wants GB/T "
                   "19056's whole command frame); default: none")
@_command_options
def command_tachograph(plate: str, word: str, block: str | None, by: str,
                       expires_in: float | None, wait: float | None) -> None:
    """Collect the driving recorder's data of GB/T 19056 command WORD, in hex as the
    standard writes it (00 version, 01 driver, 02 clock, 03 mileage, 08 speed per second,
    10 accident...; 0x prefix optional) (0x8700); the data comes in 0x0700."""
    try:
        command_word = int(word, 16)
    except ValueError:
        raise click.BadParameter(f"{word!r} is not a hex number", param_hint="WORD") from None
    fields: dict = {"command_word": command_word}
    if block is not None:
        fields["block"] = "".join(block.split())
    _send_command(plate, "tachograph", by, expires_in, wait, **fields)


def _send_command(plate: str, kind: str, by: str, expires_in: float | None,
                  wait: float | None, **fields) -> None:
    """Publish the command, print each result as it arrives; exit 0 on ``ok``."""
    from datetime import datetime

    from aiokafka.errors import KafkaError

    from .commands import make_command, print_step, send_command
    from .core.timeutil import CHINA_TZ
    from .topics import ensure_topics

    _quiet_kafka_client()
    settings = get_settings()
    try:
        command = make_command(plate, kind, by=by, now=datetime.now(CHINA_TZ),
                               expires_in_s=(settings.command_expiry_s if expires_in is None
                                             else expires_in), **fields)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if wait is None:
        wait = (settings.command_timeout_s + 10) * (2 if kind == "photo" else 1)
    try:
        asyncio.run(ensure_topics(settings))
        click.echo(f"command {command.command_id} to {plate}")
        record_cli(settings, by, f"truck.command.{kind}", plate, command_id=command.command_id)
        outcome = asyncio.run(send_command(settings, command, wait, print_step))
    except KafkaError as exc:
        raise click.ClickException(f"Kafka ({settings.kafka_bootstrap}): {exc}") from None
    final = outcome.final
    if final is None:
        click.echo(f"no result after {wait:g} s: "
                   f"{outcome.unfinished(datetime.now(CHINA_TZ), settings.command_timeout_s)}",
                   err=True)
        raise SystemExit(1)
    raise SystemExit(0 if final.status == "ok" else 1)


@main.command()
@click.option("--month", required=True, help="YYYY-MM (China time)")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table",
              show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="write the CSV here too")
def ledger(month: str, fmt: str, output: str | None) -> None:
    """The regional fund's ledger: per province pair, incidents, responses and
    resource-hours given and received in one month."""
    from datetime import datetime

    from .core.emergency import ledger as books
    from .operator.incidents import read_records
    from .core.timeutil import CHINA_TZ

    try:
        books.month_bounds(month)
    except ValueError:
        raise click.BadParameter("expected YYYY-MM", param_hint="--month") from None
    settings = get_settings()
    logs = asyncio.run(read_records(settings)).all()
    now = datetime.now(CHINA_TZ)
    pairs = books.pairs(logs, month, now)
    text = books.to_csv(pairs)
    if output:
        Path(output).write_text(text, "utf-8")
    if fmt == "csv":
        click.echo(text, nl=False)
        return
    from .console import ledger_tables

    ledger_tables(month, pairs, books.provinces(logs, month, now))


# --- JT/T 809 lower platforms ----------------------------------------------------------------

@main.group()
def platforms() -> None:
    """The JT/T 809 lower platforms allowed on the gateway's platform link (the compacted
    topic yrd.platforms, which the gateway follows: changes apply without a restart)."""


def _platform_password(password_stdin: bool) -> str:
    """The password, from stdin (one line) or a prompt; never echoed nor an option."""
    import sys

    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("password (8 bytes at most)", hide_input=True,
                        confirmation_prompt=True)


def _publish_platform(settings, key: bytes, value: bytes | None) -> None:
    from aiokafka.errors import KafkaError

    from .produce import publish
    from .topics import ensure_topics

    _quiet_kafka_client()
    try:
        asyncio.run(ensure_topics(settings))
        asyncio.run(publish(settings, settings.topic_platforms, [(key.decode(), value)]))
    except KafkaError as exc:
        raise click.ClickException(f"Kafka ({settings.kafka_bootstrap}): {exc}") from None


def _configured(settings) -> "dict[int, object]":
    from aiokafka.errors import KafkaError

    from .gateway.platform_client import read_platforms
    from .topics import ensure_topics

    _quiet_kafka_client()
    try:
        asyncio.run(ensure_topics(settings))
        return dict(asyncio.run(read_platforms(settings)))
    except KafkaError as exc:
        raise click.ClickException(f"Kafka ({settings.kafka_bootstrap}): {exc}") from None


@platforms.command("add")
@click.argument("access_code", type=int)
@click.option("--name", required=True, help="what the desk and the metrics call it")
@click.option("--user-id", type=int, required=True, help="USERID of its login (0x1001)")
@click.option("--edition", type=click.Choice(["2011", "2019"]), default="2011",
              show_default=True)
@click.option("--m1", type=int, default=0, help="cipher constant M1 (0: unencrypted)")
@click.option("--ia1", type=int, default=0)
@click.option("--ic1", type=int, default=0)
@click.option("--address", "addresses", multiple=True,
              help="a source address it may log in from (repeatable; none: any)")
@click.option("--province", type=click.Choice(["SH", "JS", "ZJ", "AH"]), default=None,
              help="the jurisdiction of its alarms")
@click.option("--disabled", is_flag=True, help="configured, its logins refused")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin")
def platforms_add(access_code: int, name: str, user_id: int, edition: str, m1: int, ia1: int,
                  ic1: int, addresses: tuple[str, ...], province: str | None, disabled: bool,
                  password_stdin: bool) -> None:
    """Add (or replace) the platform ACCESS_CODE (MSG_GNSSCENTERID); the password is read
    from a prompt, or stdin with --password-stdin."""
    from .gateway.platforms import platform_record

    settings = get_settings()
    password = _platform_password(password_stdin)
    try:
        key, value = platform_record(access_code=access_code, name=name, user_id=user_id,
                                     password=password, m1=m1, ia1=ia1, ic1=ic1,
                                     edition=int(edition), enabled=not disabled,
                                     addresses=list(addresses), province=province)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _publish_platform(settings, key, value)
    click.echo(f"platform {access_code} ({name}) {'disabled' if disabled else 'enabled'}")


@platforms.command("list")
def platforms_list() -> None:
    """The platforms configured (no password, no cipher constants)."""
    settings = get_settings()
    found = _configured(settings)
    if not found:
        click.echo("no platform configured on " + settings.topic_platforms)
        return
    for code in sorted(found):
        p = found[code]
        click.echo(f"{code}\t{p.name}\tuser {p.user_id}\t{p.edition}\t"
                   f"{'enabled' if p.enabled else 'disabled'}\t"
                   f"{'encrypted' if p.cipher is not None else 'plain'}\t"
                   f"{p.province or '-'}\t{','.join(p.addresses) or 'any address'}")


def _set_enabled(access_code: int, enabled: bool) -> None:
    import msgspec

    settings = get_settings()
    found = _configured(settings)
    if access_code not in found:
        raise click.ClickException(f"platform {access_code} is not configured")
    platform = msgspec.structs.replace(found[access_code], enabled=enabled)
    _publish_platform(settings, str(access_code).encode(), msgspec.json.encode(platform))
    click.echo(f"platform {access_code} {'enabled' if enabled else 'disabled'}")


@platforms.command("disable")
@click.argument("access_code", type=int)
def platforms_disable(access_code: int) -> None:
    """Refuse the platform's logins (its open link is closed at its next frame)."""
    _set_enabled(access_code, False)


@platforms.command("enable")
@click.argument("access_code", type=int)
def platforms_enable(access_code: int) -> None:
    """Accept the platform's logins again."""
    _set_enabled(access_code, True)


@platforms.command("remove")
@click.argument("access_code", type=int)
def platforms_remove(access_code: int) -> None:
    """Remove the platform (a null record: compacted away)."""
    _publish_platform(get_settings(), str(access_code).encode(), None)
    click.echo(f"platform {access_code} removed")


@platforms.command("open")
@click.option("--platform", "access_code", type=int, default=None, help="one platform only")
@click.option("--late", "late_only", is_flag=True, help="only those past their deadline")
def platforms_open(access_code: int | None, late_only: bool) -> None:
    """The downward requests sent and not answered yet (a supervision order: until handled),
    late ones marked."""
    from datetime import datetime

    from aiokafka.errors import KafkaError

    from .core.timeutil import CHINA_TZ
    from .gateway.platform_client import pending, read_results
    from .topics import ensure_topics

    _quiet_kafka_client()
    settings = get_settings()
    try:
        asyncio.run(ensure_topics(settings))
        results = asyncio.run(read_results(settings))
    except KafkaError as exc:
        raise click.ClickException(f"Kafka ({settings.kafka_bootstrap}): {exc}") from None
    shown = 0
    for item in pending(results, datetime.now(CHINA_TZ)):
        sent = item.sent
        if (access_code is not None and sent.platform != access_code) or (
                late_only and not item.late):
            continue
        shown += 1
        due = f"due {sent.deadline:%Y-%m-%d %H:%M:%S}" if sent.deadline else "no deadline"
        click.echo(f"{sent.request_id}\t{sent.platform}\t{sent.kind}\t"
                   f"sent {sent.at:%Y-%m-%d %H:%M:%S}\t{due}\t"
                   f"{'LATE' if item.late else 'open'}\t{sent.vehicle_id or '-'}\t"
                   f"{sent.incident_id or '-'}\t{item.answers} answer(s)")
    if not shown:
        click.echo("no open request")


@main.group()
@click.argument("access_code", type=int)
@click.pass_context
def platform(ctx: click.Context, access_code: int) -> None:
    """Send the lower platform ACCESS_CODE a downward message (JT/T 809) through the
    gateway holding its links; with --wait, follow it until answered. Exit status 0 when
    sent (answered, with --wait), 1 otherwise."""
    ctx.obj = access_code


def _request_options(f):
    f = click.option("--by", default=_os_user, help="who sends it (default: the OS user)")(f)
    f = click.option("--expires-in", type=float, default=None,
                     help="seconds it may wait to be sent (default: "
                          "YRD_JT809_REQUEST_EXPIRY_S)")(f)
    f = click.option("--wait", type=float, default=0.0,
                     help="seconds to follow its steps (0: print its id and return)")(f)
    return click.pass_obj(f)


def _deadline(value: str | None, option: str = "--deadline", minutes: bool = True):
    """--deadline: minutes from now, or an RFC 3339 time (China time without an offset)."""
    from datetime import datetime, timedelta

    from .core.timeutil import CHINA_TZ

    if value is None:
        return None
    if minutes:
        try:
            return datetime.now(CHINA_TZ) + timedelta(minutes=float(value))
        except ValueError:
            pass
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: {'minutes from now or ' if minutes else ''}"
                                 "an RFC 3339 time", param_hint=option) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=CHINA_TZ)


def _send_request(access_code: int, kind: str, by: str, expires_in: float | None,
                  wait: float, **fields) -> None:
    from datetime import datetime

    from aiokafka.errors import KafkaError

    from .core.timeutil import CHINA_TZ
    from .gateway.platform_client import send_request, step_line
    from .gateway.platform_requests import make_request
    from .topics import ensure_topics

    _quiet_kafka_client()
    settings = get_settings()
    try:
        request = make_request(
            access_code, kind, by=by, now=datetime.now(CHINA_TZ),
            expires_in_s=settings.jt809_request_expiry_s if expires_in is None else expires_in,
            answer_within_s=settings.jt809_answer_within_s, **fields)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        asyncio.run(ensure_topics(settings))
        click.echo(f"request {request.request_id} ({kind}) to platform {access_code}")
        record_cli(settings, by, f"platform.{kind}", str(access_code),
                   request_id=request.request_id)
        steps = asyncio.run(send_request(settings, request, wait,
                                         lambda step: click.echo(step_line(step))))
    except KafkaError as exc:
        raise click.ClickException(f"Kafka ({settings.kafka_bootstrap}): {exc}") from None
    if wait <= 0:
        return
    statuses = {step.status for step in steps}
    if "answered" in statuses or (kind == "tip" and "sent" in statuses):
        return
    if not steps:
        click.echo(f"no step after {wait:g} s: is a gateway holding the platform's link "
                   "running?", err=True)
    raise SystemExit(1)


@platform.command("inspect")
@click.option("--question", required=True, help="the inspection question (INFO_CONTENT)")
@click.option("--object-type", type=click.IntRange(1, 3), default=1, show_default=True,
              help="1 the platform, 2 one carrier, 3 all its carriers")
@click.option("--object-id", default="", help="the carrier asked (OBJECT_ID)")
@click.option("--deadline", default=None,
              help="answer due: minutes from now or an RFC 3339 time (default: "
                   "YRD_JT809_ANSWER_WITHIN_S)")
@_request_options
def platform_inspect(access_code: int, question: str, object_type: int, object_id: str,
                     deadline: str | None, by: str, expires_in: float | None,
                     wait: float) -> None:
    """Inspect the platform (0x9301); its answer (0x1301) and the time it took recorded."""
    _send_request(access_code, "inspection", by, expires_in, wait, text=question,
                  object_type=object_type, object_id=object_id, deadline=_deadline(deadline))


@platform.command("supervise")
@click.option("--incident", required=True, help="the incident of the alert the order is about")
@click.option("--plate", required=True, help="the vehicle")
@click.option("--colour", type=int, default=2, show_default=True, help="VEHICLE_COLOR")
@click.option("--warn-type", default="0", help="WARN_TYPE of the alarm, e.g. 0x0001")
@click.option("--warn-time", default=None, help="WARN_TIME (RFC 3339; default: now)")
@click.option("--alarm-sn", type=int, default=None,
              help="2019: MSG_SN of the platform's alarm report (0x1402)")
@click.option("--alarm-info-id", type=int, default=None, help="2011: the alarm's INFO_ID")
@click.option("--deadline", required=True,
              help="SUPERVISION_ENDTIME: minutes from now or an RFC 3339 time")
@click.option("--level", type=click.Choice(["urgent", "normal"]), default="normal",
              show_default=True)
@click.option("--supervisor", required=True, help="SUPERVISOR (16 bytes)")
@click.option("--tel", default="", help="SUPERVISOR_TEL")
@click.option("--email", default="", help="SUPERVISOR_EMAIL")
@_request_options
def platform_supervise(access_code: int, incident: str, plate: str, colour: int,
                       warn_type: str, warn_time: str | None, alarm_sn: int | None,
                       alarm_info_id: int | None, deadline: str, level: str, supervisor: str,
                       tel: str, email: str, by: str, expires_in: float | None,
                       wait: float) -> None:
    """A supervision order (0x9401) about an alert of a vehicle of the platform; its
    answers (0x1401, 0x1412) are recorded with the incident."""
    warn = _number(warn_type, "--warn-type")
    _send_request(access_code, "supervision", by, expires_in, wait, incident_id=incident,
                  vehicle_id=plate, plate_colour=colour, warn_type=warn,
                  warn_time=_deadline(warn_time, "--warn-time", minutes=False),
                  alarm_sn=alarm_sn,
                  alarm_info_id=alarm_info_id, deadline=_deadline(deadline),
                  level=0 if level == "urgent" else 1, supervisor=supervisor,
                  supervisor_tel=tel, supervisor_email=email)


@platform.command("text")
@click.argument("plate")
@click.argument("message")
@click.option("--urgent", is_flag=True, help="MSG_PRIORITY urgent")
@click.option("--colour", type=int, default=2, show_default=True, help="VEHICLE_COLOR")
@_request_options
def platform_text(access_code: int, plate: str, message: str, urgent: bool, colour: int,
                  by: str, expires_in: float | None, wait: float) -> None:
    """A text to a vehicle of the platform (0x9503; answered 0x1503)."""
    _send_request(access_code, "text", by, expires_in, wait, vehicle_id=plate,
                  plate_colour=colour, text=message, level=0 if urgent else 1)


@platform.command("photo")
@click.argument("plate")
@click.option("--camera", type=int, default=1, show_default=True, help="LENS_ID")
@click.option("--size", type=click.IntRange(1, 8), default=2, show_default=True,
              help="SIZE_TYPE (2: 640x480)")
@click.option("--colour", type=int, default=2, show_default=True, help="VEHICLE_COLOR")
@_request_options
def platform_photo(access_code: int, plate: str, camera: int, size: int, colour: int,
                   by: str, expires_in: float | None, wait: float) -> None:
    """Take a photo of a vehicle of the platform (0x9502; answered 0x1502, the picture on
    the media topic)."""
    _send_request(access_code, "photo", by, expires_in, wait, vehicle_id=plate,
                  plate_colour=colour, camera=camera, size=size)


@platform.command("tip")
@click.argument("plate")
@click.argument("content")
@click.option("--warn-type", default="0", help="WARN_TYPE, e.g. 0x0002")
@click.option("--colour", type=int, default=2, show_default=True, help="VEHICLE_COLOR")
@_request_options
def platform_tip(access_code: int, plate: str, content: str, warn_type: str, colour: int,
                 by: str, expires_in: float | None, wait: float) -> None:
    """A warning tip about a vehicle of the platform (0x9402; not answered)."""
    warn = _number(warn_type, "--warn-type")
    _send_request(access_code, "tip", by, expires_in, wait, vehicle_id=plate,
                  plate_colour=colour, text=content, warn_type=warn)


@platform.command("static-info")
@click.argument("plate")
@click.option("--colour", type=int, default=2, show_default=True, help="VEHICLE_COLOR")
@_request_options
def platform_static_info(access_code: int, plate: str, colour: int, by: str,
                         expires_in: float | None, wait: float) -> None:
    """Ask for a vehicle's static information (0x9601; answered 0x1601)."""
    _send_request(access_code, "static_info", by, expires_in, wait, vehicle_id=plate,
                  plate_colour=colour)


@platform.command("driver-info")
@click.argument("plate")
@click.option("--ask-terminal", is_flag=True,
              help="2019 FLAG 1: the platform asks the terminal (default: the driver it "
                   "knows last)")
@click.option("--colour", type=int, default=2, show_default=True, help="VEHICLE_COLOR")
@_request_options
def platform_driver_info(access_code: int, plate: str, ask_terminal: bool, colour: int,
                         by: str, expires_in: float | None, wait: float) -> None:
    """Ask who drives a vehicle (0x920A; answered 0x120A: name, identity card,
    qualification certificate)."""
    _send_request(access_code, "driver_info", by, expires_in, wait, vehicle_id=plate,
                  plate_colour=colour, driver_flag=1 if ask_terminal else 0)


@platform.command("listen")
@click.argument("plate")
@click.argument("tel")
@click.option("--colour", type=int, default=2, show_default=True, help="VEHICLE_COLOR")
@_request_options
def platform_listen(access_code: int, plate: str, tel: str, colour: int, by: str,
                    expires_in: float | None, wait: float) -> None:
    """Listen in to a vehicle: its terminal calls TEL back (0x9501; answered 0x1501)."""
    _send_request(access_code, "listen", by, expires_in, wait, vehicle_id=plate,
                  plate_colour=colour, tel=tel)


@platform.command("tachograph")
@click.argument("plate")
@click.option("--command-word", required=True,
              help="COMMAND_TYPE, the GB/T 19056 command word, e.g. 0x08 (0x08-0x15: the "
                   "records between --start and --end)")
@click.option("--start", default=None, help="START_TIME (RFC 3339; China time without an "
                                            "offset)")
@click.option("--end", default=None, help="END_TIME (RFC 3339)")
@click.option("--max-blocks", type=click.IntRange(0, 0xFFFF), default=None,
              help="2011 record queries: the most data blocks")
@click.option("--colour", type=int, default=2, show_default=True, help="VEHICLE_COLOR")
@_request_options
def platform_tachograph(access_code: int, plate: str, command_word: str, start: str | None,
                        end: str | None, max_blocks: int | None, colour: int, by: str,
                        expires_in: float | None, wait: float) -> None:
    """Take a vehicle's tachograph data (0x9504; answered 0x1504 with the GB/T 19056
    frame)."""
    _send_request(access_code, "tachograph", by, expires_in, wait, vehicle_id=plate,
                  plate_colour=colour, command_word=_number(command_word, "--command-word"),
                  start=_deadline(start, "--start", minutes=False),
                  end=_deadline(end, "--end", minutes=False), max_blocks=max_blocks)


@platform.command("emergency-access")
@click.argument("plate")
@click.option("--server", required=True, help="SERVER_IP: the platform the terminal connects to")
@click.option("--tcp-port", type=click.IntRange(1, 0xFFFF), required=True, help="TCP_PORT")
@click.option("--udp-port", type=click.IntRange(0, 0xFFFF), default=0, show_default=True,
              help="UDP_PORT")
@click.option("--auth-code", required=True,
              help="AUTHENTICATION_CODE the terminal gives that platform (up to 20 digits)")
@click.option("--apn", default="", help="ACCESS_POINT_NAME of the dial-up")
@click.option("--dial-user", default="", help="USERNAME of the dial-up")
@click.option("--dial-password-stdin", is_flag=True,
              help="read the dial-up PASSWORD from stdin (one line); without it, asked for "
                   "when --dial-user is given; never an option")
@click.option("--end", default=None,
              help="END_TIME, until when: minutes from now or an RFC 3339 time")
@click.option("--colour", type=int, default=2, show_default=True, help="VEHICLE_COLOR")
@_request_options
def platform_emergency_access(access_code: int, plate: str, server: str, tcp_port: int,
                              udp_port: int, auth_code: str, apn: str, dial_user: str,
                              dial_password_stdin: bool, end: str | None, colour: int,
                              by: str, expires_in: float | None, wait: float) -> None:
    """Have a vehicle's terminal connect to another platform (0x9505; answered 0x1505).
    The dial-up password is never echoed."""
    import sys

    if dial_password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif dial_user:
        password = click.prompt("dial-up password", hide_input=True, default="",
                                show_default=False)
    else:
        password = ""
    _send_request(access_code, "emergency_access", by, expires_in, wait, vehicle_id=plate,
                  plate_colour=colour, server=server, tcp_port=tcp_port, udp_port=udp_port,
                  auth_code=auth_code, apn=apn, dial_user=dial_user, dial_password=password,
                  end=_deadline(end, "--end"))


def _archive_commands() -> None:
    from .archive.cli import archive
    from .archive.commands import evidence, evidence_verify, track
    from .assess.cli import assess

    main.add_command(archive)
    main.add_command(track)
    main.add_command(evidence)
    main.add_command(evidence_verify)
    main.add_command(assess)


_archive_commands()


def _notify_commands() -> None:
    from .notify.cli import notify
    from .operator.accounts import audit, users

    main.add_command(notify)
    main.add_command(users)
    main.add_command(audit)


_notify_commands()


@main.command()
def figures() -> None:
    """Today's assessment figures (since midnight, China time) from the archive, as
    Prometheus gauges on YRD_ASSESS_METRICS_PORT, every YRD_ASSESS_EVERY_S."""
    from .assess.today import run_until_signalled

    run_until_signalled(get_settings())


@main.command()
def uplink() -> None:
    """YRD as lower platform to the national platform (JT/T 809): accepted pings and alerts
    up, the upper platform's requests in. Off while YRD_UPLINK_HOST is empty."""
    from .uplink.process import run_until_signalled

    _quiet_kafka_client()
    asyncio.run(run_until_signalled(get_settings()))


@main.command()
def gateway() -> None:
    """Run the gateway: JT/T 808 terminals on YRD_JT808_PORT, a JT/T 809 platform link on
    YRD_JT809_PORT (when YRD_JT809_USER_ID is set); their positions go to the pings topic."""
    from .gateway.server import run

    try:
        asyncio.run(run(get_settings()))
    except KeyboardInterrupt:
        pass


@main.command()
@click.option("--province", "provinces", multiple=True, help="SH, JS, ZJ, AH or none (repeatable)")
@click.option("--city", "cities", multiple=True, help="city admin code, e.g. 320100")
@click.option("--severity", "severities", multiple=True, help="info, warning, critical")
@click.option("--type", "types", multiple=True, help="alert type, e.g. SPEEDING")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a readable table")
@click.option("--from-beginning", is_flag=True, help="replay the alert topic from its start")
@click.option("--limit", type=int, default=None, help="stop after N alerts")
def alerts(provinces, cities, severities, types, as_json, from_beginning, limit) -> None:
    """Follow alerts live for one jurisdiction."""
    from .console import AlertFilter, follow_alerts

    _quiet_kafka_client()
    settings = get_settings()
    wanted = AlertFilter(
        provinces=_split(provinces), city_codes=_split(cities),
        severities=_split(severities), types=_split(types),
    )
    try:
        asyncio.run(follow_alerts(settings.kafka_options(), settings.topic_alerts, wanted,
                                  as_json=as_json, from_beginning=from_beginning, stop_after=limit))
    except KeyboardInterrupt:
        pass


@main.command()
@click.option("--check", is_flag=True, help="fail if schemas/ differs from the models")
def schemas(check: bool) -> None:
    """Write (or check) the JSON Schema of every topic under schemas/."""
    from .schemas import stale, write_all

    if check:
        drift = stale()
        if drift:
            raise click.ClickException(f"schemas out of date: {', '.join(map(str, drift))}")
        click.echo("schemas up to date")
    else:
        for path in write_all():
            click.echo(f"wrote {path}")


@main.group()
def zones() -> None:
    """Publish or delete restricted zones on the zones topic (applied without restart)."""


@zones.command("publish")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def zones_publish(path: str) -> None:
    """Check every feature of a GeoJSON FeatureCollection and publish the valid ones."""
    from .operator.zones import publish_file

    published, rejected = asyncio.run(publish_file(get_settings(), path))
    for name, rejection in rejected:
        click.echo(f"rejected {name}: {rejection.reason}: {rejection.error}", err=True)
    click.echo(f"published {published} zone(s), rejected {len(rejected)}")
    if rejected:
        raise SystemExit(1)


@zones.command("delete")
@click.argument("zone_ids", nargs=-1, required=True)
def zones_delete(zone_ids: tuple[str, ...]) -> None:
    """Delete zones by id (a null value on the compacted topic)."""
    from .operator.zones import delete

    asyncio.run(delete(get_settings(), zone_ids))
    click.echo(f"deleted {len(zone_ids)} zone(s)")


@main.command()
def settings() -> None:
    """Print the effective settings (secrets masked)."""
    click.echo(json.dumps(get_settings().summary(), indent=2, ensure_ascii=False))


@main.command()
@click.option("--vehicles", default=30, show_default=True)
@click.option("--interval", default=5.0, show_default=True)
@click.option("--keep-services", is_flag=True,
              help="leave Kafka and Redis running, with their data, on exit (default: stop and wipe)")
def demo(vehicles: int, interval: float, keep_services: bool) -> None:
    """Start Kafka, Redis, the worker and a simulated fleet; show alerts until Ctrl-C."""
    from .demo import run_demo

    _quiet_kafka_client()
    run_demo(REPO_ROOT, vehicles=vehicles, interval=interval, keep_services=keep_services)


if __name__ == "__main__":
    main()
