"""``yrd-hazmat``: the project's command line (worker, simulator, alerts desk, demo)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import click

from . import __version__
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
def simulate(vehicles: int, interval: float, speeders: float, seed: int, duration: float | None,
             protocol: str, gateway: str | None, jt808_version: str,
             accident_every: float | None) -> None:
    """Drive a simulated fleet along the YRD corridors, publishing pings."""
    settings = get_settings()
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
                duration_s=duration, accident_every_s=accident_every))
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


@main.command()
def desk() -> None:
    """Run the police desk (web, YRD_DESK_PORT) for the users in YRD_DESK_USERS."""
    from .desk.app import run

    run(get_settings())


@main.command("desk-user")
@click.argument("name")
@click.option("--jurisdiction", type=click.Choice(["SH", "JS", "ZJ", "AH", "region"]),
              required=True, help="the province the user sees, or the whole region")
@click.password_option(help="read from the terminal when not given")
def desk_user(name: str, jurisdiction: str, password: str) -> None:
    """Print a desk user entry (password hashed) for the YRD_DESK_USERS file."""
    from .desk.users import hash_password

    click.echo(json.dumps({"name": name, "jurisdiction": jurisdiction,
                           "password": hash_password(password)}, ensure_ascii=False))


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
        raise click.ClickException(f"no incident record {incident_id}") from None
    except TimeoutError:
        raise click.ClickException(f"sent, but no incident keeper recorded it in {timeout:g} s: "
                                   "is a worker running?") from None
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
    try:
        alarm_types = int(mask, 0)
    except ValueError:
        raise click.BadParameter(f"{mask!r} is not a number", param_hint="--types") from None
    _send_command(plate, "alarm_confirm", by, expires_in, wait, alarm_serial=serial,
                  alarm_types=alarm_types)


@command.command("photo")
@click.option("--camera", type=int, default=1, show_default=True, help="camera channel")
@_command_options
def command_photo(plate: str, camera: int, by: str, expires_in: float | None,
                  wait: float | None) -> None:
    """Take a photo now (0x8801); it arrives on the media topic."""
    _send_command(plate, "photo", by, expires_in, wait, camera=camera)


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
