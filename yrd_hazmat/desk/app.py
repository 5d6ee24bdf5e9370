"""The desk's HTTP API and live feed (aiohttp).

Every request but the login carries the session cookie; the server looks the user up and
answers only for their jurisdiction (one province, or the region): trucks whose latest
ping lies there, alerts of that province, actions on those incidents. The browser never
gets another province's data to filter.

- ``POST /api/login`` ``{"name", "password"}``, ``POST /api/logout``, ``GET /api/me``
- ``GET /api/trucks``: every truck at its latest position and heading, with its open
  alerts' worst severity
- ``GET /api/trucks/{vehicle_id}``: one truck: latest position, its last hour of track,
  its open alerts and its permit (cargo, UN number, route and corridor)
- ``GET /api/alerts/open``: open alerts, each with its incident log
- ``GET /api/feed?province=&city=&type=&severity=``: server-sent events, ``alert`` for
  each new alert, ``incident`` for each action taken on a visible incident
- ``POST /api/incidents/{incident_id}/actions`` ``{"kind": "ack"|"assign"|"note"|"dispatch"|
  "arrive"|"release"|"close", "text", "assignee", "resource_id"}``: sent to
  ``yrd.incident-actions``; answered with the incident's record once the keeper recorded
  it (409 with the reason if it refused it, 504 if no keeper answered)
- ``GET /api/incidents/{incident_id}``: the incident's record
- ``GET /api/resources``: the emergency resources and their status
- ``POST /api/trucks/{vehicle_id}/commands`` ``{"kind": "text"|"position_query"|"photo",
  "text", "tts", "emergency", "camera"}``: a command to the truck's terminal, sent to
  ``yrd.commands`` (issued by the desk user, expiring after ``command_expiry_s``);
  answered (201) with the command and its status, 400 with the reason when invalid
- ``GET /api/trucks/{vehicle_id}/commands``: the truck's commands, newest first, each with
  its status and the steps that counted (:mod:`.commands`)
- ``GET /api/media/{media_id}``: a picture a truck of the jurisdiction uploaded
- ``GET /api/incidents/{incident_id}/tell-exposed``: the default warning to the trucks the
  emergency exposed, and which of them the user may command;
  ``POST`` ``{"text"}`` (optional): one text command (emergency, read aloud) per exposed
  truck of the jurisdiction, with the incident's id
- the feed also carries ``command``: a command to a visible truck, sent or moved on
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from datetime import datetime
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web
from aiokafka import AIOKafkaProducer
from redis.exceptions import RedisError
from shapely.geometry import mapping

from ..codec import Rejection, encode
from ..config import Settings
from ..follow import follow_topic
from ..emergency.responders import ResourceIndex
from ..models import Alert, Command, IncidentCommand, IncidentLog
from ..readmodel import ReadModel
from ..timeutil import CHINA_TZ
from ..topics import ensure_topics
from ..zones.model import parse_zone_record
from ..zones.registry import ZoneRegistry
from ..zones.schedule import in_force
from .actions import IncidentLogs, action_of
from .commands import CommandBook, command_of, exposed_trucks, warning_of, warning_text
from .media import MediaStore
from .sessions import Sessions
from .users import User, Users

log = logging.getLogger(__name__)

COOKIE = "yrd_desk"
STATIC = Path(__file__).resolve().parent / "static"
SEVERITY_RANK = {"info": 1, "warning": 2, "critical": 3}
USER = web.RequestKey("user", User)
ANSWER_TIMEOUT_S = 15.0
"""How long an action waits for the incident keeper's record."""
PRUNE_EVERY_S = 600.0
"""How often the desk forgets commands the commands topic no longer keeps."""
_alert_decoder = msgspec.json.Decoder(Alert)


class Feed:
    """One browser's live feed: its user, its filters, its queue of events."""

    def __init__(self, user: User, query: dict[str, str]) -> None:
        self.user = user
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=10_000)
        self.provinces = _set(query.get("province"))
        self.cities = _set(query.get("city"))
        self.types = _set(query.get("type"))
        self.severities = _set(query.get("severity"))

    def wants(self, alert: Alert) -> bool:
        province = alert.province
        return (self.user.sees(province)
                and (not self.provinces or (province or "none") in self.provinces)
                and (not self.cities or (alert.city is not None and alert.city.code in self.cities))
                and (not self.types or alert.type in self.types)
                and (not self.severities or alert.severity.value in self.severities))

    def push(self, event: str, data: bytes) -> None:
        try:
            self.queue.put_nowait((event, data))
        except asyncio.QueueFull:  # a stalled browser loses events, not the desk
            pass


def _set(value: str | None) -> frozenset[str]:
    return frozenset(v.strip() for v in (value or "").split(",") if v.strip())


class Desk:
    def __init__(self, settings: Settings, users: Users) -> None:
        self.settings = settings
        self.users = users
        secret = settings.desk_secret
        self.sessions = Sessions(secret.get_secret_value().encode() if secret else
                                 secrets.token_bytes(32), settings.desk_session_s)
        self.readmodel = ReadModel.from_settings(settings)
        self.incidents = IncidentLogs()
        self.incidents.listeners.append(self._incident_changed)
        self.feeds: set[Feed] = set()
        self.permits: dict[str, bytes] = {}
        self.resources = ResourceIndex()
        """The emergency resources (the compacted resources topic)."""
        """Vehicle id -> its permit as published (the compacted permits topic)."""
        self.zones = ZoneRegistry(settings.zone_margin_m)
        if settings.zones_file:
            self.zones.load_file(settings.zones_file)
        self.commands = CommandBook()
        self.commands.listeners.append(self._command_changed)
        self.media = MediaStore()
        self.producer: AIOKafkaProducer | None = None
        self._tasks: list[asyncio.Task] = []
        self._pushes: set[asyncio.Task] = set()
        """Commands on their way to the feeds (each looks the truck's province up first)."""

    # --- life cycle -----------------------------------------------------------------
    async def start(self, app: web.Application | None = None) -> None:
        settings = self.settings
        await ensure_topics(settings)
        self.producer = AIOKafkaProducer(**settings.kafka_options(), acks="all",
                                         enable_idempotence=True)
        await self.producer.start()
        followed = [(settings.topic_incidents, self.incidents.apply, True),
                    (settings.topic_alerts, self._alert, False),
                    (settings.topic_zones, self._zone, True),
                    (settings.topic_permits, self._permit, True),
                    (settings.topic_resources, self.resources.apply, True),
                    (settings.topic_commands, self.commands.apply_command, True),
                    (settings.topic_command_results, self.commands.apply_result, True),
                    (settings.topic_media, self.media.apply, True)]
        caught_up = [asyncio.Event() for _ in followed]
        options = settings.kafka_options()
        self._tasks = [asyncio.create_task(follow_topic(options, topic, apply, event,
                                                        from_start=from_start), name=topic)
                       for (topic, apply, from_start), event in zip(followed, caught_up)]
        self._tasks.append(asyncio.create_task(self._prune_commands(), name="prune commands"))
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in caught_up)), 120)

    async def stop(self, app: web.Application | None = None) -> None:
        tasks = [*self._tasks, *self._pushes]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.producer is not None:
            await self.producer.stop()
        await self.readmodel.close()

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._authenticate])
        app.router.add_post("/api/login", self.login)
        app.router.add_post("/api/logout", self.logout)
        app.router.add_get("/api/me", self.me)
        app.router.add_get("/api/trucks", self.trucks)
        app.router.add_get("/api/trucks/{vehicle_id}", self.truck)
        app.router.add_post("/api/trucks/{vehicle_id}/commands", self.command_truck)
        app.router.add_get("/api/trucks/{vehicle_id}/commands", self.truck_commands)
        app.router.add_get("/api/media/{media_id}", self.picture)
        app.router.add_get("/api/alerts/open", self.open_alerts)
        app.router.add_get("/api/feed", self.feed)
        app.router.add_post("/api/incidents/{incident_id}/actions", self.act)
        app.router.add_get("/api/incidents", self.emergencies)
        app.router.add_get("/api/incidents/{incident_id}", self.incident)
        app.router.add_get("/api/incidents/{incident_id}/tell-exposed", self.warning)
        app.router.add_post("/api/incidents/{incident_id}/tell-exposed", self.tell_exposed)
        app.router.add_get("/api/resources", self.resources_now)
        app.router.add_get("/api/geo/{layer:provinces|cities}", self.geo)
        app.router.add_get("/api/zones", self.zones_now)
        app.router.add_get("/", self.index)
        app.router.add_static("/static/", STATIC, show_index=False)
        app.on_startup.append(self.start)
        app.on_cleanup.append(self.stop)
        return app

    # --- authentication ----------------------------------------------------------------
    @web.middleware
    async def _authenticate(self, request: web.Request, handler):
        if request.path == "/api/login" or not request.path.startswith("/api/"):
            return await handler(request)
        name = self.sessions.user_of(request.cookies.get(COOKIE))
        user = self.users.get(name) if name is not None else None
        if user is None:
            raise web.HTTPUnauthorized(text='{"error": "sign in"}', content_type="application/json")
        request[USER] = user
        return await handler(request)

    async def login(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            name, password = str(body["name"]), str(body["password"])
        except (ValueError, KeyError, TypeError):
            raise web.HTTPBadRequest(text='{"error": "name and password"}',
                                     content_type="application/json") from None
        user = self.users.authenticate(name, password)
        if user is None:
            raise web.HTTPUnauthorized(text='{"error": "wrong name or password"}',
                                       content_type="application/json")
        response = web.json_response(_me(user))
        response.set_cookie(COOKIE, self.sessions.issue(user.name), httponly=True,
                            samesite="Strict", max_age=int(self.settings.desk_session_s))
        return response

    async def logout(self, request: web.Request) -> web.Response:
        response = web.json_response({"signed_out": True})
        response.del_cookie(COOKIE)
        return response

    async def me(self, request: web.Request) -> web.Response:
        return web.json_response(_me(request[USER]) | {"tile_url": self.settings.desk_tile_url})

    # --- the picture -----------------------------------------------------------------------
    async def trucks(self, request: web.Request) -> web.Response:
        user: User = request[USER]
        out = []
        for province in user.provinces:
            worst: dict[str, int] = {}
            for alert in await self.readmodel.open_alerts(province=province):
                rank = SEVERITY_RANK[alert.severity.value]
                worst[alert.vehicle_id] = max(worst.get(alert.vehicle_id, 0), rank)
            for vehicle_id in await self.readmodel.vehicles_in(province):
                latest = await self.readmodel.vehicle(vehicle_id)
                if not latest or latest.get("province", "") != (province or ""):
                    continue
                out.append({
                    "vehicle_id": vehicle_id, "ts": latest.get("ts"),
                    "lat": float(latest["lat"]), "lon": float(latest["lon"]),
                    "speed_kmh": float(latest.get("speed_kmh") or 0),
                    "province": province, "city": latest.get("city_name") or None,
                    "open_alerts": int(latest.get("open_alerts") or 0),
                    "heading": int(latest["heading"]) if latest.get("heading") else None,
                    "worst": {v: k for k, v in SEVERITY_RANK.items()}.get(worst.get(vehicle_id, 0)),
                })
        return web.json_response(out)

    async def truck(self, request: web.Request) -> web.Response:
        """One truck of the jurisdiction: its last hour, open alerts and permit."""
        vehicle_id = request.match_info["vehicle_id"]
        latest = await self._visible_truck(request[USER], vehicle_id)
        permit = None
        raw = self.permits.get(vehicle_id)
        if raw is not None:
            try:
                doc = json.loads(raw)
                permit = {k: doc.get(k) for k in (
                    "permit_id", "un_number", "hazard_class", "cargo_name", "quantity_kg",
                    "valid_from", "valid_until", "route", "corridor_m", "origin", "destination",
                    "carrier", "provinces")}
            except ValueError:
                permit = None
        return web.json_response({
            "vehicle_id": vehicle_id, "latest": latest,
            "track": [{"ts_ms": ts, "lat": lat, "lon": lon, "speed_kmh": speed}
                      for ts, lat, lon, speed in await self.readmodel.track(vehicle_id)],
            "open_alerts": [msgspec.to_builtins(a) for a in
                            await self.readmodel.open_alerts(vehicle_id=vehicle_id)],
            "permit": permit,
        })

    async def _visible_truck(self, user: User, vehicle_id: str) -> dict[str, str]:
        """The truck's latest state if its latest ping lies in the user's jurisdiction
        (the rule of ``/api/trucks``); 404 otherwise, unknown or another's alike."""
        latest = await self._latest_in(user, vehicle_id)
        if latest is None:
            raise _error(web.HTTPNotFound, "no such truck")
        return latest

    async def _latest_in(self, user: User, vehicle_id: str) -> dict[str, str] | None:
        latest = await self.readmodel.vehicle(vehicle_id)
        return latest if latest and user.sees(latest.get("province") or None) else None

    def _permit(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        vehicle_id = key.decode("utf-8", "replace")
        if value is None:
            self.permits.pop(vehicle_id, None)  # revoked
        elif len(value) <= self.settings.max_permit_bytes:
            self.permits[vehicle_id] = value

    async def open_alerts(self, request: web.Request) -> web.Response:
        user: User = request[USER]
        out = []
        for province in user.provinces:
            for alert in await self.readmodel.open_alerts(province=province):
                entry = msgspec.to_builtins(alert)
                log_ = self.incidents.get(alert.incident_id)
                entry["incident_log"] = msgspec.to_builtins(log_) if log_ else None
                out.append(entry)
        return web.json_response(out)

    async def emergencies(self, request: web.Request) -> web.Response:
        """The emergencies of the user's jurisdiction not closed yet (the alarm may have
        cleared while the response goes on), newest first."""
        user: User = request[USER]
        out = [msgspec.to_builtins(r) | {"commands": self.commands.of_incident(r.incident_id)}
               for r in self.incidents.all()
               if r.emergency and r.closed_at is None and user.sees(r.home)]
        return web.json_response(sorted(out, key=lambda r: r["raised_at"] or "", reverse=True))

    async def incident(self, request: web.Request) -> web.Response:
        record = self._visible_incident(request[USER], request.match_info["incident_id"])
        return web.json_response(msgspec.to_builtins(record))

    def _visible_incident(self, user: User, incident_id: str) -> IncidentLog:
        """The incident's record if it belongs to the user's jurisdiction; 404 otherwise."""
        record = self.incidents.get(incident_id)
        if record is None or not user.sees(record.home):
            raise _error(web.HTTPNotFound, "no such incident")
        return record

    async def resources_now(self, request: web.Request) -> web.Response:
        """Every emergency resource of the region with its status: help may come from any
        province."""
        return web.json_response([msgspec.to_builtins(r) for r in self.resources.all()])

    # --- the map's layers ---------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def geo(self, request: web.Request) -> web.Response:
        """Province or city outlines (shipped with the package: no tiles needed)."""
        return web.Response(body=_geo(request.match_info["layer"]),
                            content_type="application/geo+json")

    async def zones_now(self, request: web.Request) -> web.Response:
        """Every zone in force (zones topic and YRD_ZONES_FILE) as GeoJSON, with whether
        its ban applies now (its schedule, China time)."""
        now_ms = int(datetime.now(CHINA_TZ).timestamp() * 1000)
        features = []
        for zone in self.zones.index.zones:
            props = msgspec.to_builtins(zone.props)
            props["banned_now"] = in_force(zone.windows, now_ms)
            features.append({"type": "Feature", "geometry": mapping(zone.geometry),
                             "properties": props})
        return web.json_response({"type": "FeatureCollection", "features": features})

    def _zone(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            if key is not None:
                self.zones.delete(key.decode("utf-8", "replace"))
            return
        zone = parse_zone_record(key, value, self.settings.max_zone_bytes)
        if not isinstance(zone, Rejection):
            self.zones.put(zone)

    # --- the live feed -----------------------------------------------------------------------
    def _alert(self, key: bytes | None, value: bytes | None) -> None:
        if value is None or not self.feeds:
            return
        try:
            alert = _alert_decoder.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        for feed in list(self.feeds):
            if feed.wants(alert):
                feed.push("alert", value)

    def _incident_changed(self, entry: IncidentLog) -> None:
        data = encode(entry)
        for feed in list(self.feeds):
            if feed.user.sees(entry.home):
                feed.push("incident", data)

    async def feed(self, request: web.Request) -> web.StreamResponse:
        feed = Feed(request[USER], dict(request.query))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        self.feeds.add(feed)
        try:
            await response.write(b": connected\n\n")
            while True:
                try:
                    event, data = await asyncio.wait_for(feed.queue.get(), 15)
                except asyncio.TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                await response.write(b"event: " + event.encode() + b"\ndata: " + data + b"\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.feeds.discard(feed)
        return response

    # --- commands to trucks ------------------------------------------------------------------
    async def command_truck(self, request: web.Request) -> web.Response:
        """A text, a position request or a photo request to a truck of the jurisdiction."""
        user: User = request[USER]
        vehicle_id = request.match_info["vehicle_id"]
        await self._visible_truck(user, vehicle_id)
        body = await _json_body(request)
        try:
            command = command_of(body, vehicle_id, by=user.name, now=datetime.now(CHINA_TZ),
                                 expires_in_s=self.settings.command_expiry_s)
        except ValueError as exc:
            raise _error(web.HTTPBadRequest, str(exc)) from None
        return web.json_response(await self._publish(command), status=201)

    async def truck_commands(self, request: web.Request) -> web.Response:
        vehicle_id = request.match_info["vehicle_id"]
        await self._visible_truck(request[USER], vehicle_id)
        return web.json_response(self.commands.of_vehicle(vehicle_id))

    async def picture(self, request: web.Request) -> web.Response:
        """A picture, if its truck is in the user's jurisdiction now (the rule of the
        truck's commands, which link to it)."""
        picture = self.media.get(request.match_info["media_id"])
        if picture is None or await self._latest_in(request[USER], picture.vehicle_id) is None:
            raise _error(web.HTTPNotFound, "no such picture")
        return web.Response(body=picture.data, content_type=picture.content_type,
                            headers={"Cache-Control": "private, max-age=3600",
                                     "X-Content-Type-Options": "nosniff"})

    async def warning(self, request: web.Request) -> web.Response:
        """What "tell them all" would send, and to whom: the page's form starts from it."""
        user: User = request[USER]
        record = self._visible_incident(user, request.match_info["incident_id"])
        trucks = [{"vehicle_id": t["vehicle_id"], "distance_m": t.get("distance_m"),
                   "yours": await self._latest_in(user, t["vehicle_id"]) is not None}
                  for t in record.exposure.get("trucks") or []]
        return web.json_response({"incident_id": record.incident_id,
                                  "text": warning_text(record), "trucks": trucks})

    async def tell_exposed(self, request: web.Request) -> web.Response:
        """One text command (emergency, read aloud) per truck the emergency exposed and the
        user may command; the others are named, not sent to. Every command is checked
        before the first is sent: a text no terminal could show sends none."""
        user: User = request[USER]
        record = self._visible_incident(user, request.match_info["incident_id"])
        body = await _json_body(request, empty={})
        now = datetime.now(CHINA_TZ)
        try:
            text = warning_of(body, record)
            trucks = exposed_trucks(record)
        except ValueError as exc:
            raise _error(web.HTTPBadRequest, str(exc)) from None
        commands, elsewhere = [], []
        for truck in trucks:
            vehicle_id = truck["vehicle_id"]
            if await self._latest_in(user, vehicle_id) is None:
                elsewhere.append(vehicle_id)
                continue
            try:
                commands.append(command_of(
                    {"kind": "text", "text": text, "tts": True, "emergency": True},
                    vehicle_id, by=user.name, now=now, incident_id=record.incident_id,
                    expires_in_s=self.settings.command_expiry_s))
            except ValueError as exc:
                raise _error(web.HTTPBadRequest, str(exc)) from None
        if not commands:
            raise _error(web.HTTPForbidden, "every exposed truck is outside your "
                                            f"jurisdiction: {', '.join(elsewhere)}")
        sent = [await self._publish(command) for command in commands]
        return web.json_response({"incident_id": record.incident_id, "text": text,
                                  "commands": sent, "not_yours": elsewhere}, status=201)

    async def _publish(self, command: Command) -> dict[str, Any]:
        """Put the command on ``yrd.commands`` (key: the plate) and in the desk's book at
        once (its follower reads it back later), so the next listing shows it."""
        assert self.producer is not None
        await self.producer.send_and_wait(self.settings.topic_commands, encode(command),
                                          key=command.vehicle_id.encode())
        self.commands.add(command)
        view = self.commands.view(command.command_id)
        assert view is not None
        return view

    async def _prune_commands(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_EVERY_S)
            self.commands.prune(datetime.now(CHINA_TZ))

    def _command_changed(self, command_id: str) -> None:
        if not self.feeds:
            return
        task = asyncio.get_running_loop().create_task(self._push_command(command_id))
        self._pushes.add(task)
        task.add_done_callback(self._pushes.discard)

    async def _push_command(self, command_id: str) -> None:
        """Push the command to the feeds of users who see its truck now. The view is taken
        after the look-up, so of two pushes of one command the later never shows an older
        state."""
        view = self.commands.view(command_id)
        if view is None:
            return
        try:
            latest = await self.readmodel.vehicle(view["vehicle_id"])
        except RedisError as exc:
            log.warning("command %s not pushed: read model: %s", command_id, exc)
            return
        view = self.commands.view(command_id)
        if not latest or view is None:
            return
        province = latest.get("province") or None
        data = msgspec.json.encode(view)
        for feed in list(self.feeds):
            if feed.user.sees(province):
                feed.push("command", data)

    # --- alert handling ----------------------------------------------------------------------
    async def act(self, request: web.Request) -> web.Response:
        user: User = request[USER]
        incident_id = request.match_info["incident_id"]
        alert = await self._visible_alert(user, incident_id)
        record = self.incidents.get(incident_id)
        if alert is None and (record is None or not user.sees(record.home)):
            # unknown, or another jurisdiction's: the same answer
            raise web.HTTPNotFound(text='{"error": "no such incident"}',
                                   content_type="application/json")
        try:
            action = action_of(await request.json(), user.name, datetime.now(CHINA_TZ))
        except (ValueError, msgspec.ValidationError) as exc:
            raise web.HTTPBadRequest(text=json.dumps({"error": str(exc)}),
                                     content_type="application/json") from None
        command = IncidentCommand(incident_id=incident_id, action=action, alert=alert)
        assert self.producer is not None and action.action_id is not None
        await self.producer.send_and_wait(self.settings.topic_incident_actions, encode(command),
                                          key=incident_id.encode())
        try:
            entry, refused = await self.incidents.answer(incident_id, action.action_id,
                                                         ANSWER_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise web.HTTPGatewayTimeout(
                text='{"error": "sent, but no incident keeper recorded it yet: is a worker '
                     'running?"}', content_type="application/json") from None
        if refused is not None:
            raise web.HTTPConflict(text=json.dumps({"error": refused}),
                                   content_type="application/json")
        return web.json_response(msgspec.to_builtins(entry))

    async def _visible_alert(self, user: User, incident_id: str) -> Alert | None:
        for province in user.provinces:
            raw = await self.readmodel.redis.hget(
                self.readmodel.keys.open_by_province(province), incident_id)
            if raw is not None:
                return _alert_decoder.decode(raw)
        for alert in await self.readmodel.recent_alerts():
            if alert.incident_id == incident_id and user.sees(alert.province):
                return alert
        return None


def _error(kind: type[web.HTTPError], message: str) -> web.HTTPError:
    return kind(text=json.dumps({"error": message}, ensure_ascii=False),
                content_type="application/json")


async def _json_body(request: web.Request, empty: Any = None) -> Any:
    """The request's JSON (``empty`` for no body at all, where that is allowed); 400 when
    it is not JSON."""
    if empty is not None and not await request.read():
        return empty
    try:
        return await request.json()
    except ValueError:
        raise _error(web.HTTPBadRequest, "the body is not JSON") from None


@cache
def _geo(layer: str) -> bytes:
    return files("yrd_hazmat.data").joinpath(f"{layer}.geojson").read_bytes()


def _me(user: User) -> dict[str, Any]:
    return {"name": user.name, "jurisdiction": user.jurisdiction,
            "provinces": [p or "none" for p in user.provinces]}


def run(settings: Settings) -> None:
    """Serve the desk until interrupted (the CLI's ``desk`` command)."""
    if not settings.desk_users:
        raise SystemExit("error: YRD_DESK_USERS: set it to the desk users file "
                         "(yrd-hazmat desk-user prints an entry)")
    desk = Desk(settings, Users.load(settings.desk_users))
    web.run_app(desk.application(), host=settings.desk_host, port=settings.desk_port,
                print=lambda text: log.info("%s", text))
