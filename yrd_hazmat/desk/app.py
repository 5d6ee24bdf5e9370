"""The desk's HTTP API and live feed (aiohttp).

Every request but the login carries the session cookie; the server looks the user up and
answers only for their jurisdiction (one province, or the region): trucks whose latest
ping lies there, alerts of that province, actions on those incidents; a carrier's account
for its own trucks (the vehicle register's carrier of the plate). Who may call which
route is one table (:mod:`.access`, default deny for carriers); what each user sees is
its :class:`~.access.Scope`. The browser never gets another province's (carrier's) data
to filter. Every state-changing request is audited (:mod:`.audit`).

- ``POST /api/login`` ``{"name", "password"}``, ``POST /api/logout``, ``GET /api/me``
- ``GET /api/trucks?q=``: every truck at its latest position and heading, with its open
  alerts' worst severity, its age and whether it is stale; ``q``: a plate search (part of
  the plate, any case, at most :data:`SEARCH_MAX` trucks)
- ``GET /api/trucks/{vehicle_id}``: one truck: latest position, its last hour of track,
  its open alerts and its permit (cargo, UN number, route and corridor)
- ``GET /api/alerts/open``: open alerts, each with its incident log
- ``GET /api/triage``: what needs handling, critical first, then the oldest
  (:mod:`.triage`), with the count of each severity
- ``GET /api/history?from=&to=&province=&type=&severity=&vehicle=&limit=&format=csv``:
  alerts of any period from the alerts topic (:mod:`.history`), newest first, or as CSV
- ``GET /api/handover?since=``: what came, what the desks did, what stays open
- ``GET /api/region``: per province: open alerts, emergencies, cross-border responses and
  handling times
- ``GET /api/feed?province=&city=&type=&severity=``: server-sent events, ``alert`` for
  each new alert, ``incident`` for each action taken on a visible incident, ``command``
  for a command to a visible truck, sent or moved on; ``signed-out`` before the stream
  ends because the session did
- ``POST /api/incidents/{incident_id}/actions`` ``{"kind": "ack"|"assign"|"note"|"dispatch"|
  "arrive"|"release"|"close", "text", "assignee", "resource_id"}``: sent to
  ``yrd.incident-actions``; answered with the incident's record once the keeper recorded
  it (409 with the reason if it refused it, 504 if no keeper answered)
- ``GET /api/incidents?view=emergencies|appeals|recent``: the emergencies not closed (the
  default), the open appeals, the last 7 days' incidents (:mod:`.carriers`);
  ``GET /api/incidents/{incident_id}``: the incident's record, its appeal's story and
  escalations. Actions ``explain`` and ``appeal`` are a carrier's (with ``ack``, all it
  may send), ``appeal_accepted`` and ``appeal_rejected`` the police's
- ``GET /api/alerts/open`` and ``GET /api/triage`` items carry their clock (:mod:`.clock`):
  ``ack_due``, ``close_due``, ``level``, ``overdue``, from the policy on ``yrd.deadlines``
- ``GET /api/notifications``, ``GET /api/subscriptions``, ``PUT``/``DELETE
  /api/subscriptions/{subscription_id}``: the 通知 view (:mod:`.notifications`)
- ``GET /api/resources``: the emergency resources and their status (``YRD_RESOURCES_FILE``,
  then the resources topic: what the worker proposes from)
- ``POST /api/trucks/{vehicle_id}/commands`` ``{"kind": "text"|"position_query"|"photo",
  "text", "tts", "emergency", "camera"}``: a command to the truck's terminal, sent to
  ``yrd.commands`` (issued by the desk user, expiring after ``command_expiry_s``);
  answered (201) with the command and its status, 400 with the reason when invalid
- ``GET /api/trucks/{vehicle_id}/commands``: the truck's commands, newest first, each with
  its status and the steps that counted (:mod:`.commands`)
- ``GET /api/trucks/{vehicle_id}/track?from=&to=``: the truck's track and alerts of any
  period (31 days at most) from the archive (:mod:`.track`)
- ``GET /api/assessments``: the months assessed (``yrd-hazmat assess``);
  ``GET /api/assessments/{month}``: that month's report page, the region's whole or the
  user's province's rows (:mod:`.assessment`)
- ``GET /api/media/{media_id}``: a picture a truck of the jurisdiction uploaded
- ``GET /api/incidents/{incident_id}/tell-exposed``: the default warning to the trucks the
  emergency exposed, and which of them the user may command;
  ``POST`` ``{"text"}`` (optional): one text command (emergency, read aloud) per exposed
  truck of the jurisdiction, with the incident's id
- The JT/T 809 chain (:mod:`.links`): ``GET /api/links`` (every link's health, for every
  user); ``GET /api/platform-requests?state=open|late|all`` (the requests sent down to the
  user's lower platforms); ``POST /api/platforms/{access_code}/inspections``
  ``{"question", "deadline_min"}``; ``GET``/``POST /api/incidents/{incident_id}/supervision``
  ``{"deadline_min", "level", "supervisor", "tel", "email"}`` (an order to the platform
  the incident's truck came from); ``GET``/``POST /api/trucks/{vehicle_id}/platform-requests``
  ``{"kind": "text"|"photo"|"tip", "text", "urgent", "camera"}`` (through the platform the
  truck came from); ``GET /api/uplink/requests`` and ``POST
  /api/uplink/requests/{request_id}/answer`` ``{"content"}`` | ``{"result", "content"}``
  (the national platform's requests, region users only; 409 once answered). The feed
  carries ``uplink-request`` (a new one), ``uplink-answer`` and ``platform-request``

Safety (:mod:`.security`, :mod:`.bodies`, :mod:`.sessions`): passwords are checked in a
thread of their own, failed logins throttled and audited; sessions end on logout and
when idle; a state-changing request must come from the desk's own origin; every body is
bounded and checked (400 otherwise); every response carries the security headers; JSON
and the page are gzipped when the browser accepts it. Names and texts are only ever
JSON strings: the page shows them as text.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import mimetypes
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.web_response import ContentCoding
from aiokafka import AIOKafkaProducer
from redis.exceptions import RedisError
from shapely.geometry import mapping

from ..core.codec import Rejection, encode
from ..config import Settings
from ..core.emergency.responders import ResourceIndex, load_resources
from ..follow import Follower, TopicReader
from ..core.models import Alert, Command, IncidentCommand, IncidentLog
from ..gateway.platform_requests import PlatformRequest
from ..gateway.platforms import Platform
from ..gateway.platforms import from_settings as platforms_from_settings
from ..readmodel import ReadModel
from ..core.timeutil import CHINA_TZ
from ..topics import ensure_topics
from ..core.zones.model import parse_zone_record
from ..core.zones.registry import ZoneRegistry
from ..core.zones.schedule import in_force
from ..notify.deadlines import Policy
from ..register import Register
from . import assessment, carriers, clock, history, track, triage
from ..accounts import CAPABILITIES as ROLE_CAPABILITIES
from .access import USER, Scope, action_refusal, call_refusal
from . import audit as audit_trail
from ..audit import AuditEntry, AuditLog
from .accounts import AccountAdmin
from .actions import ActionRequest, IncidentLogs, action_of
from .audit import audited, note
from .bodies import LoginRequest, http_error, read_json
from .elsewhere import WINDOW as ELSEWHERE_WINDOW
from .elsewhere import ElsewhereAlerts, merged
from .commands import (CommandBook, CommandRequest, WarningRequest, command_of, exposed_trucks,
                       warning_of, warning_text)
from .links import (ANSWERED, RELAYED, InspectionRequest, LinkBook, SupervisionRequest,
                    UplinkAnswerRequest, VehicleRequest, answer_of, final_answer, inspection_of,
                    platform_view, supervision_of, vehicle_request_of)
from .media import MediaStore
from .notifications import Notifications
from .security import (STATE_CHANGING, Throttle, audit_login, same_origin, security_headers)
from .sessions import Session, Sessions, SessionStore
from .users import CARRIER, REGION, User, Users

log = logging.getLogger(__name__)

COOKIE = "yrd_desk"
STATIC = Path(__file__).resolve().parent / "static"
SEVERITY_RANK = {"info": 1, "warning": 2, "critical": 3}
SESSION = web.RequestKey("session", Session)
ANSWER_TIMEOUT_S = 15.0
"""How long an action waits for the incident keeper's record."""
PRUNE_EVERY_S = 600.0
"""How often the desk forgets commands the commands topic no longer keeps."""
SEARCH_MAX = 50
"""Trucks a plate search answers at most."""
HANDOVER_SPAN = timedelta(hours=8)
HISTORY_READS = 2
"""History reads (Kafka consumers) at once per desk; more wait their turn."""
HISTORY_TIMEOUT_S = 60.0
FEED_CHECK_S = 15.0
"""A live feed checks this often that its session is still open (and keeps alive)."""
COMPRESSIBLE = ("application/json", "application/geo+json", "application/javascript",
                "text/", "image/svg+xml")
COMPRESS_FROM = 1024
"""Bytes of a body worth compressing."""
_alert_decoder = msgspec.json.Decoder(Alert)


class Feed:
    """One browser's live feed: its user and session, its filters, its queue of events."""

    def __init__(self, user: User, query: dict[str, str], session: Session | None = None,
                 scope: Scope | None = None) -> None:
        self.user = user
        self.scope = scope or Scope(user, lambda plate: None)
        self.session = session
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=10_000)
        self.provinces = _set(query.get("province"))
        self.cities = _set(query.get("city"))
        self.types = _set(query.get("type"))
        self.severities = _set(query.get("severity"))

    def wants(self, alert: Alert) -> bool:
        province = alert.province
        return (self.scope.sees_alert(alert)
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
        self.open_sessions = SessionStore(self.readmodel.redis, settings.redis_prefix,
                                          settings.desk_idle_s)
        self.throttle = Throttle(settings.desk_login_failures, settings.desk_login_window_s,
                                 settings.desk_lockout_s)
        self.headers = security_headers(settings.desk_tile_url)
        self._hashing = ThreadPoolExecutor(max_workers=2, thread_name_prefix="desk-login")
        """Password checks (PBKDF2, slow on purpose) run here, never on the event loop."""
        self._history_reads = asyncio.Semaphore(HISTORY_READS)
        self.tracks = track.Tracks(settings)
        """A truck's track of any period: the archive, read in threads."""
        self.incidents = IncidentLogs()
        self.incidents.listeners.append(self._incident_changed)
        self.feeds: set[Feed] = set()
        self.permits: dict[str, bytes] = {}
        """Vehicle id -> its permit as published (the compacted permits topic)."""
        self.register = Register()
        """Which carrier each plate belongs to: what a carrier's account sees."""
        self.policy = Policy()
        """The deadlines in force (``yrd.deadlines``): the clock of each open alert."""
        self.notifications = Notifications(settings.topic_subscriptions, self._produce)
        self.accounts = AccountAdmin(users, settings.topic_desk_users, self._produce,
                                     self._hashing)
        self._audit_log = AuditLog(None, settings.topic_audit)
        path = settings.resources_file
        self.resources = ResourceIndex(load_resources(path) if path else ())
        """The emergency resources: the file the worker loads, then the resources topic."""
        self.zones = ZoneRegistry(settings.zone_margin_m)
        if settings.zones_file:
            self.zones.load_file(settings.zones_file)
        self.commands = CommandBook()
        self.commands.listeners.append(self._command_changed)
        self.media = MediaStore()
        self.links = LinkBook(platforms_from_settings(settings))
        self.elsewhere = ElsewhereAlerts()
        """The lower platforms' alarms (not in the worker's read model), for the triage."""
        self.links.listeners.append(self._link_changed)
        self._links_live: dict[str, asyncio.Event] = {}
        """Topic -> its follower's caught_up: what came before is not news for the feed."""
        self._answering: set[str] = set()
        """Requests of the national platform being answered by this desk right now."""
        self.static = StaticFiles(STATIC)
        self.producer: AIOKafkaProducer | None = None
        self._tasks: list[asyncio.Task] = []
        self._pushes: set[asyncio.Task] = set()
        self._audits: set[asyncio.Task] = set()
        """Audit entries on their way to ``yrd.audit`` (waited for at stop)."""
        """Commands on their way to the feeds (each looks the truck's province up first)."""

    # --- life cycle -----------------------------------------------------------------
    async def start(self, app: web.Application | None = None) -> None:
        settings = self.settings
        await ensure_topics(settings)
        self.producer = AIOKafkaProducer(**settings.kafka_options(), acks="all",
                                         enable_idempotence=True)
        await self.producer.start()
        self._audit_log.producer = self.producer
        audit_trail.sink = self._audit_entry
        register, notified = self.register, self.notifications
        followed = [(settings.topic_desk_users, self.users.apply, True),
                    (settings.topic_incidents, self.incidents.apply, True),
                    (settings.topic_alerts, self._alert, False),
                    (settings.topic_zones, self._zone, True),
                    (settings.topic_permits, carriers.both(self._permit, register.permit), True),
                    (settings.topic_vehicle_terminals, register.vehicle_terminal, True),
                    (settings.topic_deadlines, self.policy.apply, True),
                    (settings.topic_subscriptions, notified.subscriptions.apply, True),
                    (settings.topic_notifications, notified.deliveries.apply, True),
                    (settings.topic_resources, self.resources.apply, True),
                    (settings.topic_commands, self.commands.apply_command, True),
                    (settings.topic_command_results, self.commands.apply_result, True),
                    (settings.topic_media, self.media.apply, True),
                    (settings.topic_platforms,
                     carriers.both(self.links.apply_platform, register.platform), True),
                    (settings.topic_link_states, self.links.apply_state, True),
                    (settings.topic_platform_vehicles,
                     carriers.both(self.links.apply_vehicle, register.platform_vehicle), True),
                    (settings.topic_platform_requests, self.links.apply_request, True),
                    (settings.topic_platform_request_results, self.links.apply_result, True),
                    (settings.topic_uplink_requests, self.links.apply_uplink_request, True),
                    (settings.topic_uplink_answers, self.links.apply_uplink_answer, True)]
        options = settings.kafka_options()
        await self._read_elsewhere()
        followers = [Follower(options, topic, apply, from_start=from_start)
                     for topic, apply, from_start in followed]
        self._links_live = {f.topic: f.caught_up for f in followers}
        self._tasks = [asyncio.create_task(f.run(), name=f"follow-{f.topic}")
                       for f in followers]
        self._tasks.append(asyncio.create_task(self._prune_commands(), name="prune commands"))
        await asyncio.wait_for(asyncio.gather(*(f.caught_up.wait() for f in followers)), 120)

    async def _read_elsewhere(self) -> None:
        """The platforms' alarms of the last day, from the alerts topic (then the alerts
        follower keeps them)."""
        settings = self.settings
        reader = TopicReader(settings.kafka_options(), settings.topic_alerts,
                             self.elsewhere.apply)
        await reader.start(since=datetime.now(CHINA_TZ) - ELSEWHERE_WINDOW, timeout_s=120)
        try:
            await reader.catch_up()
        finally:
            await reader.stop()

    async def _open_alerts_in(self, provinces) -> dict[str | None, list[Alert]]:
        """The jurisdiction's open alerts: the worker's (read model) and the lower
        platforms' alarms not closed by a desk."""
        provinces = list(provinces)
        return merged(await self.readmodel.open_alerts_in(provinces),
                      self.elsewhere.open_in(provinces, self._closed, datetime.now(CHINA_TZ)))

    def _closed(self, incident_id: str) -> bool:
        """Whether a desk closed the incident."""
        record = self.incidents.get(incident_id)
        return record is not None and record.closed_at is not None

    async def stop(self, app: web.Application | None = None) -> None:
        if audit_trail.sink == self._audit_entry:
            audit_trail.sink = None
        if self._audits:
            await asyncio.wait(list(self._audits), timeout=10)
        tasks = [*self._tasks, *self._pushes]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.producer is not None:
            await self.producer.stop()
        await self.readmodel.close()
        self._hashing.shutdown(wait=False, cancel_futures=True)

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._guard, self._authenticate])
        app.router.add_post("/api/login", self.login)
        app.router.add_post("/api/logout", self.logout)
        app.router.add_get("/api/me", self.me)
        app.router.add_get("/api/trucks", self.trucks)
        app.router.add_get("/api/trucks/{vehicle_id}", self.truck)
        app.router.add_post("/api/trucks/{vehicle_id}/commands", self.command_truck)
        app.router.add_get("/api/trucks/{vehicle_id}/commands", self.truck_commands)
        app.router.add_get("/api/trucks/{vehicle_id}/track", self.truck_track)
        app.router.add_get("/api/media/{media_id}", self.picture)
        app.router.add_get("/api/alerts/open", self.open_alerts)
        app.router.add_get("/api/triage", self.triage)
        app.router.add_get("/api/history", self.history)
        app.router.add_get("/api/handover", self.handover)
        app.router.add_get("/api/region", self.region)
        app.router.add_get("/api/feed", self.feed)
        app.router.add_post("/api/incidents/{incident_id}/actions", self.act)
        app.router.add_get("/api/incidents", self.emergencies)
        app.router.add_get("/api/incidents/{incident_id}", self.incident)
        app.router.add_get("/api/incidents/{incident_id}/tell-exposed", self.warning)
        app.router.add_post("/api/incidents/{incident_id}/tell-exposed", self.tell_exposed)
        app.router.add_get("/api/resources", self.resources_now)
        app.router.add_get("/api/links", self.links_now)
        app.router.add_get("/api/platform-requests", self.platform_requests)
        app.router.add_post("/api/platforms/{access_code}/inspections", self.inspect_platform)
        app.router.add_get("/api/incidents/{incident_id}/supervision", self.supervision)
        app.router.add_post("/api/incidents/{incident_id}/supervision", self.supervise)
        app.router.add_get("/api/trucks/{vehicle_id}/platform-requests", self.truck_platform)
        app.router.add_post("/api/trucks/{vehicle_id}/platform-requests", self.ask_truck_platform)
        app.router.add_get("/api/uplink/requests", self.uplink_requests)
        app.router.add_post("/api/uplink/requests/{request_id}/answer", self.answer_uplink)
        app.router.add_get("/api/assessments", self.assessments)
        app.router.add_get("/api/assessments/{month}", self.assessment_page)
        notified = self.notifications
        app.router.add_get("/api/notifications", notified.list_deliveries)
        app.router.add_get("/api/subscriptions", notified.list_subscriptions)
        app.router.add_put("/api/subscriptions/{subscription_id}", notified.put_subscription)
        app.router.add_delete("/api/subscriptions/{subscription_id}",
                              notified.delete_subscription)
        app.router.add_get("/api/accounts", self.accounts.list)
        app.router.add_put("/api/accounts/{name}", self.accounts.put)
        app.router.add_delete("/api/accounts/{name}", self.accounts.delete)
        app.router.add_get("/api/geo/{layer:provinces|cities}", self.geo)
        app.router.add_get("/api/zones", self.zones_now)
        app.router.add_get("/", self.index)
        app.router.add_get("/static/{path:.+}", self.static_file)
        app.on_response_prepare.append(self._secure_headers)
        app.on_startup.append(self.start)
        app.on_cleanup.append(self.stop)
        return app

    # --- every request ---------------------------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler):
        """The same-origin rule for state-changing requests; an unreachable Redis is a 503
        saying so (not a 500); a large JSON or text answer gzipped if the browser accepts."""
        if request.method in STATE_CHANGING and not self._own_origin(request):
            raise http_error(web.HTTPForbidden, "refused: the request does not come from the "
                                                "desk's own page (Origin)")
        try:
            response = await handler(request)
        except RedisError as exc:
            log.warning("%s %s: read model unavailable: %s", request.method, request.path,
                        type(exc).__name__)
            raise http_error(web.HTTPServiceUnavailable,
                             "the read model (Redis) is unavailable: try again") from None
        if (isinstance(response, web.Response) and not response.prepared
                and "gzip" in request.headers.get("Accept-Encoding", "").lower()
                and (response.content_type or "").startswith(COMPRESSIBLE)
                and len(response.body or b"") >= COMPRESS_FROM):
            response.enable_compression(ContentCoding.gzip)
        return response

    def _own_origin(self, request: web.Request) -> bool:
        scheme = "https" if self.settings.desk_secure_cookie else request.scheme
        return same_origin(request.headers.get("Origin"), request.headers.get("Referer"),
                           request.host, scheme)

    async def _secure_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        for name, value in self.headers.items():
            response.headers.setdefault(name, value)
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")

    @web.middleware
    async def _authenticate(self, request: web.Request, handler):
        if request.path == "/api/login" or not request.path.startswith("/api/"):
            return await handler(request)
        session = self.sessions.parse(request.cookies.get(COOKIE))
        user = self.users.get(session.name) if session is not None else None
        if user is None or session is None or not await self.open_sessions.use(session):
            raise http_error(web.HTTPUnauthorized, "sign in")
        request[USER] = user
        request[SESSION] = session
        route = request.match_info.route.resource
        refused = call_refusal(user, request.method, route.canonical) if route else None
        if refused is not None:
            raise http_error(web.HTTPForbidden, refused)
        if request.method not in STATE_CHANGING:
            return await handler(request)
        return await audited(request, handler, user.name, user.role)

    # --- signing in and out --------------------------------------------------------------
    async def login(self, request: web.Request) -> web.Response:
        """Sign in: throttled per name and per address (429 with Retry-After while locked),
        the password checked off the event loop, every attempt audited."""
        body = await read_json(request, LoginRequest)
        address = request.remote or "-"
        keys = (f"name:{body.name}", f"address:{address}")
        wait = self.throttle.retry_after(*keys)
        if wait > 0:
            audit_login(body.name, address, "throttled")
            raise http_error(web.HTTPTooManyRequests, "too many failed logins: try again later",
                             **{"Retry-After": str(math.ceil(wait))})
        user = await asyncio.get_running_loop().run_in_executor(
            self._hashing, self.users.authenticate, body.name, body.password)
        if user is None:
            self.throttle.failed(*keys)
            audit_login(body.name, address, "failed")
            raise http_error(web.HTTPUnauthorized, "wrong name or password")
        self.throttle.succeeded(keys[0])
        token, session = self.sessions.issue(user.name)
        await self.open_sessions.open(session)
        audit_login(user.name, address, "ok")
        response = _json(_me(user))
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict",
                            secure=self.settings.desk_secure_cookie,
                            max_age=int(self.settings.desk_session_s))
        return response

    async def logout(self, request: web.Request) -> web.Response:
        """End the session on the server (every desk sharing the Redis refuses it from now
        on) and this desk's live feeds of it."""
        session = request[SESSION]
        await self.open_sessions.revoke(session)
        for feed in list(self.feeds):
            if feed.session == session:
                feed.push("signed-out", b"{}")
        response = _json({"signed_out": True})
        response.del_cookie(COOKIE)
        return response

    async def me(self, request: web.Request) -> web.Response:
        return _json(_me(request[USER]) | {"tile_url": self.settings.desk_tile_url,
                                           "idle_s": self.settings.desk_idle_s,
                                           "stale_s": self.settings.desk_stale_s})

    # --- the picture -----------------------------------------------------------------------
    async def trucks(self, request: web.Request) -> web.Response:
        """The jurisdiction's trucks (three round trips to Redis however many): each with
        its worst open severity, its age and whether it is stale; ``q`` searches plates."""
        user: User = request[USER]
        search = request.query.get("q", "").strip().casefold()
        if len(search) > history.FILTER_MAX:
            raise http_error(web.HTTPBadRequest, f"q: at most {history.FILTER_MAX} characters")
        scope = self.scope(user)
        ids, open_alerts = await asyncio.gather(self.readmodel.vehicles_in_each(scope.provinces),
                                                self._open_alerts_in(scope.provinces))
        worst: dict[str, int] = {}
        for alerts in open_alerts.values():
            for alert in alerts:
                rank = SEVERITY_RANK[alert.severity.value]
                worst[alert.vehicle_id] = max(worst.get(alert.vehicle_id, 0), rank)
        listed = [(province, vehicle_id) for province, vehicles in ids.items()
                  for vehicle_id in vehicles if scope.sees_vehicle(vehicle_id, province)]
        if search:
            listed = sorted((p, v) for p, v in listed if search in v.casefold())[:SEARCH_MAX]
        latest = await self.readmodel.latest_of([v for _, v in listed])
        now_s, names = time.time(), {v: k for k, v in SEVERITY_RANK.items()}
        out = []
        for (province, vehicle_id), state in zip(listed, latest):
            if not state or (state.get("province") or "") != (province or ""):
                continue  # expired, or moved between the two reads
            age_s = max(0.0, now_s - int(state.get("ts_ms") or 0) / 1000)
            out.append({
                "vehicle_id": vehicle_id, "ts": state.get("ts"),
                "lat": float(state["lat"] or 0), "lon": float(state["lon"] or 0),
                "speed_kmh": float(state.get("speed_kmh") or 0),
                "province": province, "city": state.get("city_name") or None,
                "open_alerts": int(state.get("open_alerts") or 0),
                "heading": int(state["heading"]) if state.get("heading") else None,
                "worst": names.get(worst.get(vehicle_id, 0)),
                "age_s": round(age_s), "stale": age_s > self.settings.desk_stale_s,
            })
        return _json(out)

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
            except (ValueError, AttributeError):
                permit = None
        return _json({
            "vehicle_id": vehicle_id, "latest": latest,
            "track": [{"ts_ms": ts, "lat": lat, "lon": lon, "speed_kmh": speed}
                      for ts, lat, lon, speed in await self.readmodel.track(vehicle_id)],
            "open_alerts": await self._open_of_vehicle(vehicle_id),
            "permit": permit,
        })

    async def truck_track(self, request: web.Request) -> web.Response:
        """A truck of the jurisdiction (the rule of its panel): its track and alerts of any
        period from the archive (:mod:`.track`), the view audited."""
        user: User = request[USER]
        vehicle_id = request.match_info["vehicle_id"]
        await self._visible_truck(user, vehicle_id)
        try:
            since, until = track.period_of(request.query, datetime.now(CHINA_TZ))
        except ValueError as exc:
            raise http_error(web.HTTPBadRequest, str(exc)) from None
        try:
            answer = await self.tracks.view(vehicle_id, since, until)
        except OSError as exc:
            log.warning("track of %s: the archive cannot be read: %s", vehicle_id, exc)
            raise http_error(web.HTTPServiceUnavailable,
                             "the archive cannot be read: try again") from None
        track.audit_view(user.name, request.remote, vehicle_id, since, until,
                         len(answer["points"]))
        return _json(answer)

    async def assessments(self, request: web.Request) -> web.Response:
        """The months with an assessment kept with the archive, newest first."""
        try:
            store = self.tracks.archive().store
            found = await asyncio.to_thread(assessment.months, store)
        except OSError as exc:
            log.warning("assessments: the archive cannot be read: %s", exc)
            raise http_error(web.HTTPServiceUnavailable,
                             "the archive cannot be read: try again") from None
        return _json({"months": found})

    async def assessment_page(self, request: web.Request) -> web.Response:
        """A month's assessment as its report page, for the user's jurisdiction."""
        user: User = request[USER]
        month = request.match_info["month"]
        try:
            store = self.tracks.archive().store
            body = await asyncio.to_thread(assessment.page, store, month, user)
        except ValueError as exc:
            raise http_error(web.HTTPBadRequest, str(exc)) from None
        except OSError as exc:
            log.warning("assessment %s: the archive cannot be read: %s", month, exc)
            raise http_error(web.HTTPServiceUnavailable,
                             "the archive cannot be read: try again") from None
        if body is None:
            raise http_error(web.HTTPNotFound, f"no assessment kept for {month}: run "
                                               f"yrd-hazmat assess --month {month}")
        return web.Response(text=body, content_type="text/html", charset="utf-8")

    async def _open_of_vehicle(self, vehicle_id: str) -> list[Alert]:
        """A truck's open alerts: the worker's and its platform's alarms not closed."""
        mine = await self.readmodel.open_alerts(vehicle_id=vehicle_id)
        known = {a.incident_id for a in mine}
        theirs = [a for a in self.elsewhere.of_vehicle(vehicle_id, self._closed,
                                                       datetime.now(CHINA_TZ))
                  if a.incident_id not in known]
        return sorted(mine + theirs, key=lambda a: a.ts) if theirs else mine

    async def _visible_truck(self, user: User, vehicle_id: str) -> dict[str, str]:
        """The truck's latest state if its latest ping lies in the user's jurisdiction
        (the rule of ``/api/trucks``); 404 otherwise, unknown or another's alike."""
        latest = await self._latest_in(user, vehicle_id)
        if latest is None:
            raise http_error(web.HTTPNotFound, "no such truck")
        return latest

    async def _latest_in(self, user: User, vehicle_id: str) -> dict[str, str] | None:
        latest = await self.readmodel.vehicle(vehicle_id)
        seen = latest and self.scope(user).sees_vehicle(vehicle_id, latest.get("province") or None)
        return latest if seen else None

    def scope(self, user: User) -> Scope:
        """What ``user`` sees (:mod:`.access`): its jurisdiction, or its carrier's trucks."""
        return Scope(user, self.register.carrier)

    def _permit(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        vehicle_id = key.decode("utf-8", "replace")
        if value is None:
            self.permits.pop(vehicle_id, None)  # revoked
        elif len(value) <= self.settings.max_permit_bytes:
            self.permits[vehicle_id] = value

    async def open_alerts(self, request: web.Request) -> web.Response:
        """The open alerts the user sees, each with its incident's record and its clock
        (:mod:`.clock`)."""
        now, out = datetime.now(CHINA_TZ), []
        for alert in await self._open_seen(request[USER]):
            entry = msgspec.to_builtins(alert)
            log_ = self.incidents.get(alert.incident_id)
            entry["incident_log"] = msgspec.to_builtins(log_) if log_ else None
            out.append(entry | msgspec.to_builtins(clock.fields(self.policy, alert, log_, now)))
        return _json(out)

    async def _open_seen(self, user: User) -> list[Alert]:
        scope = self.scope(user)
        return [a for alerts in (await self._open_alerts_in(scope.provinces)).values()
                for a in alerts if scope.sees_alert(a)]

    # --- a duty shift ---------------------------------------------------------------------
    async def triage(self, request: web.Request) -> web.Response:
        return _json(await self._triage(request[USER]))

    async def _triage(self, user: User) -> dict[str, Any]:
        """The triage, each item with its clock (:mod:`.clock`)."""
        open_alerts = await self._open_seen(user)
        found = triage.triage(open_alerts, self.incidents.all(), self.incidents.get, user.sees)
        now, by_id = datetime.now(CHINA_TZ), {a.incident_id: a for a in open_alerts}
        for item in found["items"]:
            alert, record = by_id.get(item["incident_id"]), self.incidents.get(item["incident_id"])
            item.update(clock.fields(self.policy, alert, record, now) if alert is not None
                        else clock.record_fields(record) if record is not None else {})
        return found

    async def history(self, request: web.Request) -> web.Response:
        """Alerts of a period from the alerts topic, newest first; ``format=csv`` for a
        spreadsheet."""
        user: User = request[USER]
        args = dict(request.query)
        form = args.pop("format", "json")
        if form not in ("json", "csv"):
            raise http_error(web.HTTPBadRequest, "format: json or csv")
        try:
            query = history.query_of(args, datetime.now(CHINA_TZ))
        except ValueError as exc:
            raise http_error(web.HTTPBadRequest, str(exc)) from None
        newest = history.Newest(query.limit)
        scope = self.scope(user)
        await self._read_period(query.since, query.until,
                                lambda a: scope.sees_alert(a) and query.wants(a), newest.add)
        alerts = newest.alerts()
        if form == "csv":
            name = f"yrd-alerts-{query.since:%Y%m%d-%H%M}-{query.until:%Y%m%d-%H%M}.csv"
            body = await asyncio.to_thread(history.csv_of, alerts)
            return web.Response(body=body, content_type="text/csv", charset="utf-8",
                                headers={"Content-Disposition": f'attachment; filename="{name}"'})
        return _json({"from": query.since, "to": query.until, "items": alerts,
                      "truncated": newest.truncated})

    async def handover(self, request: web.Request) -> web.Response:
        """A shift's handover: the alerts that came since ``since`` (8 h ago by default),
        what the desks did, and what stays open."""
        user: User = request[USER]
        until = datetime.now(CHINA_TZ)
        text = request.query.get("since", "")
        try:
            since = history.parse_time(text, "since") if text else until - HANDOVER_SPAN
        except ValueError as exc:
            raise http_error(web.HTTPBadRequest, str(exc)) from None
        if since >= until:
            raise http_error(web.HTTPBadRequest, "since must be in the past")
        came = triage.Came()
        await self._read_period(since, until, lambda a: user.sees(a.province), came.add)
        records = self.incidents.all()
        return _json({"since": since, "until": until, "came": came.view(),
                      "handled": triage.handled(records, user.sees, since, until),
                      "open": (await self._triage(user))["items"]})

    async def _read_period(self, since: datetime, until: datetime, keep, sink) -> None:
        """Read the alerts topic over a period (a few reads at once per desk; 503 when one
        takes longer than a minute)."""
        try:
            async with self._history_reads, asyncio.timeout(HISTORY_TIMEOUT_S):
                await history.read_period(self.settings.kafka_options(),
                                          self.settings.topic_alerts, since, until, keep, sink)
        except TimeoutError:
            raise http_error(web.HTTPServiceUnavailable,
                             "reading the alerts took too long: ask for a shorter period "
                             "or fewer alerts") from None

    async def region(self, request: web.Request) -> web.Response:
        user: User = request[USER]
        open_alerts = await self._open_alerts_in(user.provinces)
        return _json(triage.region(open_alerts, self.incidents.all(), user.provinces,
                                   datetime.now(CHINA_TZ)))

    async def emergencies(self, request: web.Request) -> web.Response:
        """The incidents the user sees of a view (:mod:`.carriers`): by default the
        emergencies not closed yet (the alarm may have cleared while the response goes
        on), newest first; ``view=appeals``: open appeals; ``view=recent``."""
        user: User = request[USER]
        scope = self.scope(user)
        try:
            found = carriers.listed((r for r in self.incidents.all() if scope.sees_record(r)),
                                    request.query.get("view", "emergencies"),
                                    datetime.now(CHINA_TZ))
        except ValueError as exc:
            raise http_error(web.HTTPBadRequest, str(exc)) from None
        police = user.jurisdiction != CARRIER
        return _json([carriers.record_view(
            r, commands=self.commands.of_incident(r.incident_id) if police else [])
            for r in found])

    async def incident(self, request: web.Request) -> web.Response:
        record = self._visible_incident(request[USER], request.match_info["incident_id"])
        return _json(carriers.record_view(record))

    def _visible_incident(self, user: User, incident_id: str) -> IncidentLog:
        """The incident's record if the user sees it (:class:`.access.Scope`); 404
        otherwise, unknown or another's alike."""
        record = self.incidents.get(incident_id)
        if record is None or not self.scope(user).sees_record(record):
            raise http_error(web.HTTPNotFound, "no such incident")
        return record

    async def resources_now(self, request: web.Request) -> web.Response:
        """Every emergency resource of the region with its status: help may come from any
        province."""
        return _json(self.resources.all())

    # --- the page and the map's layers ---------------------------------------------------------
    async def index(self, request: web.Request) -> web.Response:
        return self.static.answer(request, "index.html")

    async def static_file(self, request: web.Request) -> web.Response:
        return self.static.answer(request, request.match_info["path"])

    async def geo(self, request: web.Request) -> web.Response:
        """Province or city outlines (shipped with the package: no tiles needed); they never
        change while the desk runs."""
        return web.Response(body=_geo(request.match_info["layer"]),
                            content_type="application/geo+json",
                            headers={"Cache-Control": "private, max-age=86400"})

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
        return _json({"type": "FeatureCollection", "features": features})

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
        self.elsewhere.apply(key, value)
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
            if feed.scope.sees_record(entry):
                feed.push("incident", data)

    async def feed(self, request: web.Request) -> web.StreamResponse:
        """The live feed, until the browser leaves or the session ends (logout here at
        once; logout on another desk, or idle, within :data:`FEED_CHECK_S`)."""
        session = request[SESSION]
        feed = Feed(request[USER], dict(request.query), session, self.scope(request[USER]))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        self.feeds.add(feed)
        try:
            await response.write(b": connected\n\n")
            while True:
                try:
                    event, data = await asyncio.wait_for(feed.queue.get(), FEED_CHECK_S)
                except asyncio.TimeoutError:
                    if not await self.open_sessions.is_open(session):
                        event, data = "signed-out", b"{}"
                    else:
                        await response.write(b": keep-alive\n\n")
                        continue
                await response.write(b"event: " + event.encode() + b"\ndata: " + data + b"\n\n")
                if event == "signed-out":
                    break
        except (ConnectionResetError, asyncio.CancelledError, RedisError):
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
        body = await read_json(request, CommandRequest)
        try:
            command = command_of(body, vehicle_id, by=user.name, now=datetime.now(CHINA_TZ),
                                 expires_in_s=self.settings.command_expiry_s)
        except ValueError as exc:
            raise http_error(web.HTTPBadRequest, str(exc)) from None
        return _json(await self._publish(command), status=201)

    async def truck_commands(self, request: web.Request) -> web.Response:
        vehicle_id = request.match_info["vehicle_id"]
        await self._visible_truck(request[USER], vehicle_id)
        return _json(self.commands.of_vehicle(vehicle_id))

    async def picture(self, request: web.Request) -> web.Response:
        """A picture, if its truck is in the user's jurisdiction now (the rule of the
        truck's commands, which link to it)."""
        picture = self.media.get(request.match_info["media_id"])
        if picture is None or await self._latest_in(request[USER], picture.vehicle_id) is None:
            raise http_error(web.HTTPNotFound, "no such picture")
        return web.Response(body=picture.data, content_type=picture.content_type,
                            headers={"Cache-Control": "private, max-age=3600"})

    async def warning(self, request: web.Request) -> web.Response:
        """What "tell them all" would send, and to whom: the page's form starts from it."""
        user: User = request[USER]
        record = self._visible_incident(user, request.match_info["incident_id"])
        trucks = [{"vehicle_id": t["vehicle_id"], "distance_m": t.get("distance_m"),
                   "yours": await self._latest_in(user, t["vehicle_id"]) is not None}
                  for t in record.exposure.get("trucks") or []]
        return _json({"incident_id": record.incident_id, "text": warning_text(record),
                      "trucks": trucks})

    async def tell_exposed(self, request: web.Request) -> web.Response:
        """One text command (emergency, read aloud) per truck the emergency exposed and the
        user may command; the others are named, not sent to. Every command is checked
        before the first is sent: a text no terminal could show sends none."""
        user: User = request[USER]
        record = self._visible_incident(user, request.match_info["incident_id"])
        body = await read_json(request, WarningRequest, empty=WarningRequest())
        now = datetime.now(CHINA_TZ)
        try:
            text = warning_of(body, record)
            trucks = exposed_trucks(record)
        except ValueError as exc:
            raise http_error(web.HTTPBadRequest, str(exc)) from None
        commands, elsewhere = [], []
        for truck in trucks:
            vehicle_id = truck["vehicle_id"]
            if await self._latest_in(user, vehicle_id) is None:
                elsewhere.append(vehicle_id)
                continue
            try:
                commands.append(command_of(
                    CommandRequest(kind="text", text=text, tts=True, emergency=True),
                    vehicle_id, by=user.name, now=now, incident_id=record.incident_id,
                    expires_in_s=self.settings.command_expiry_s))
            except ValueError as exc:
                raise http_error(web.HTTPBadRequest, str(exc)) from None
        if not commands:
            raise http_error(web.HTTPForbidden, "every exposed truck is outside your "
                                                f"jurisdiction: {', '.join(elsewhere)}")
        sent = [await self._publish(command) for command in commands]
        return _json({"incident_id": record.incident_id, "text": text, "commands": sent,
                      "not_yours": elsewhere}, status=201)

    def _audit_entry(self, entry: AuditEntry) -> None:
        """An audit entry to ``yrd.audit``, without holding up the request (a failure is
        logged with the entry: :class:`~yrd_hazmat.audit.AuditLog`)."""
        task = asyncio.get_running_loop().create_task(self._audit_log.record(entry))
        self._audits.add(task)
        task.add_done_callback(self._audits.discard)

    async def _produce(self, topic: str, key: bytes, value: bytes | None) -> None:
        assert self.producer is not None
        await self.producer.send_and_wait(topic, value, key=key)

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
            self.elsewhere.prune(datetime.now(CHINA_TZ))
            self.links.prune(datetime.now(CHINA_TZ))

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
        """An action on an incident the user sees (:mod:`.actions`; which kinds each side
        may send: :func:`.access.action_refusal`, 403)."""
        user: User = request[USER]
        incident_id = request.match_info["incident_id"]
        alert = await self._visible_alert(user, incident_id)
        record = self.incidents.get(incident_id)
        if alert is None and (record is None or not self.scope(user).sees_record(record)):
            # unknown, or another jurisdiction's (another carrier's): the same answer
            raise http_error(web.HTTPNotFound, "no such incident")
        body = await read_json(request, ActionRequest)
        note(request, kind=body.kind)
        refused = action_refusal(user, body.kind)
        if refused is not None:
            raise http_error(web.HTTPForbidden, refused)
        action = action_of(body, user.name, datetime.now(CHINA_TZ))
        command = IncidentCommand(incident_id=incident_id, action=action, alert=alert)
        assert self.producer is not None and action.action_id is not None
        await self.producer.send_and_wait(self.settings.topic_incident_actions, encode(command),
                                          key=incident_id.encode())
        try:
            entry, refused = await self.incidents.answer(incident_id, action.action_id,
                                                         ANSWER_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise http_error(web.HTTPGatewayTimeout, "sent, but no incident keeper recorded it "
                                                     "yet: is a worker running?") from None
        if refused is not None:
            raise http_error(web.HTTPConflict, refused)
        return _json(entry)

    async def _visible_alert(self, user: User, incident_id: str) -> Alert | None:
        scope = self.scope(user)
        elsewhere = self.elsewhere.get(incident_id)
        if elsewhere is not None and scope.sees_alert(elsewhere):
            return elsewhere
        for province in scope.provinces:
            raw = await self.readmodel.redis.hget(
                self.readmodel.keys.open_by_province(province), incident_id)
            if raw is not None:
                alert = _alert_decoder.decode(raw)
                if scope.sees_alert(alert):
                    return alert
        for alert in await self.readmodel.recent_alerts():
            if alert.incident_id == incident_id and scope.sees_alert(alert):
                return alert
        return None

    # --- the JT/T 809 chain: links, requests down, the national platform's requests --------
    async def links_now(self, request: web.Request) -> web.Response:
        """Every link's health (for every user: which platforms are connected is no
        jurisdiction's secret); the platforms' secrets never leave :mod:`.links`."""
        now = datetime.now(CHINA_TZ)
        return _json({"now": now, "links": self.links.links(now, bool(self.settings.uplink_host))})

    def _may_use(self, user: User, platform: Platform) -> bool:
        """A platform reporting for the user's province (a region user: every platform)."""
        return user.jurisdiction == REGION or (platform.province is not None
                                               and user.sees(platform.province))

    async def platform_requests(self, request: web.Request) -> web.Response:
        """The requests down to the user's platforms (or about their incidents), newest
        first; ``state``: open, late or all; and the platforms the user may inspect."""
        user: User = request[USER]
        state = request.query.get("state", "all")
        if state not in ("open", "late", "all"):
            raise http_error(web.HTTPBadRequest, "state: open, late or all")
        now = datetime.now(CHINA_TZ)
        items = self.links.request_views(user, self.incidents.get, now)
        if state != "all":
            items = [v for v in items if v[state]]
        known = self.links.platforms
        platforms = [platform_view(known[code]) for code in sorted(known)
                     if self._may_use(user, known[code])]
        return _json({"now": now, "items": items, "platforms": platforms})

    def _platform_of(self, user: User, text: str) -> Platform:
        try:
            code = int(text)
        except ValueError:
            raise http_error(web.HTTPBadRequest, f"{text[:32]!r} is not an access code") from None
        platform = self.links.platform(code)
        if platform is None:
            raise http_error(web.HTTPNotFound, f"no platform {code} is configured")
        if not self._may_use(user, platform):
            raise http_error(web.HTTPForbidden, f"platform {code} does not report for your "
                                                "jurisdiction")
        if not platform.enabled:
            raise http_error(web.HTTPConflict, f"platform {code} is disabled: its logins are "
                                               "refused, nothing can reach it")
        return platform

    async def inspect_platform(self, request: web.Request) -> web.Response:
        """An inspection (0x9301) of a lower platform of the jurisdiction; 201 with the
        request as the desk shows it."""
        user: User = request[USER]
        platform = self._platform_of(user, request.match_info["access_code"])
        body = await read_json(request, InspectionRequest)
        settings = self.settings
        try:
            sent = inspection_of(body, platform, by=user.name, now=datetime.now(CHINA_TZ),
                                 expires_in_s=settings.jt809_request_expiry_s,
                                 answer_within_s=settings.jt809_answer_within_s)
        except ValueError as exc:
            raise http_error(web.HTTPBadRequest, str(exc)) from None
        return _json(await self._publish_request(sent), status=201)

    async def _incident_of(self, user: User, incident_id: str) -> tuple[Alert | None,
                                                                        IncidentLog | None]:
        alert = await self._visible_alert(user, incident_id)
        record = self.incidents.get(incident_id)
        if alert is None and (record is None or not user.sees(record.home)):
            raise http_error(web.HTTPNotFound, "no such incident")
        return alert, record

    async def supervision(self, request: web.Request) -> web.Response:
        """Whether an order about the incident can go to a lower platform (the one its
        truck came from; ``reason`` when none can), and the orders sent about it."""
        user: User = request[USER]
        incident_id = request.match_info["incident_id"]
        alert, record = await self._incident_of(user, incident_id)
        platform, reason = None, None
        try:
            target = self.links.supervision_target(incident_id, alert, record)
            platform = platform_view(target.platform)
        except ValueError as exc:
            reason = str(exc)
        now = datetime.now(CHINA_TZ)
        return _json({"incident_id": incident_id, "platform": platform, "reason": reason,
                      "orders": self.links.request_views(user, self.incidents.get, now,
                                                         incident_id=incident_id)})

    async def supervise(self, request: web.Request) -> web.Response:
        """A supervision order (0x9401) about an alert of the jurisdiction, to the lower
        platform its truck came from; its answers (0x1401, 0x1412) are recorded on the
        incident by the gateway. 409 when no platform can take it."""
        user: User = request[USER]
        incident_id = request.match_info["incident_id"]
        alert, record = await self._incident_of(user, incident_id)
        body = await read_json(request, SupervisionRequest)
        try:
            target = self.links.supervision_target(incident_id, alert, record)
        except ValueError as exc:
            raise http_error(web.HTTPConflict, str(exc)) from None
        if not target.platform.enabled:
            raise http_error(web.HTTPConflict, f"platform {target.platform.access_code} is "
                                               "disabled: its logins are refused")
        try:
            order = supervision_of(body, target, by=user.name, now=datetime.now(CHINA_TZ),
                                   expires_in_s=self.settings.jt809_request_expiry_s)
        except ValueError as exc:
            raise http_error(web.HTTPBadRequest, str(exc)) from None
        return _json(await self._publish_request(order), status=201)

    def _truck_platform(self, vehicle_id: str) -> tuple[Platform | None, str | None]:
        """The platform a truck came from, or why there is none to ask."""
        registered = self.links.vehicles.get(vehicle_id)
        if registered is None:
            return None, f"{vehicle_id} was not registered by a lower platform"
        platform = self.links.platform(registered.platform)
        if platform is None:
            return None, (f"{vehicle_id} came from platform {registered.platform}, which is "
                          "not configured any more")
        if not platform.enabled:
            return None, f"platform {platform.access_code} is disabled: its logins are refused"
        return platform, None

    async def truck_platform(self, request: web.Request) -> web.Response:
        """The lower platform a truck of the jurisdiction came from (``reason`` when none
        can be asked), and the requests sent about the truck, newest first."""
        user: User = request[USER]
        vehicle_id = request.match_info["vehicle_id"]
        await self._visible_truck(user, vehicle_id)
        platform, reason = self._truck_platform(vehicle_id)
        return _json({"vehicle_id": vehicle_id, "reason": reason,
                      "platform": platform_view(platform) if platform is not None else None,
                      "items": self.links.request_views(user, self.incidents.get,
                                                        datetime.now(CHINA_TZ),
                                                        vehicle_id=vehicle_id)})

    async def ask_truck_platform(self, request: web.Request) -> web.Response:
        """A text (0x9503), photo (0x9502), warning tip (0x9402), who drives (0x920A),
        listening in (0x9501) or tachograph data (0x9504) for a truck of the jurisdiction,
        through the platform it came from; 409 when there is none."""
        user: User = request[USER]
        vehicle_id = request.match_info["vehicle_id"]
        await self._visible_truck(user, vehicle_id)
        body = await read_json(request, VehicleRequest)
        platform, reason = self._truck_platform(vehicle_id)
        if platform is None:
            raise http_error(web.HTTPConflict, reason or "no platform")
        settings = self.settings
        try:
            sent = vehicle_request_of(body, platform, self.links.vehicles[vehicle_id],
                                      by=user.name, now=datetime.now(CHINA_TZ),
                                      expires_in_s=settings.jt809_request_expiry_s,
                                      answer_within_s=settings.jt809_answer_within_s)
        except ValueError as exc:
            raise http_error(web.HTTPBadRequest, str(exc)) from None
        return _json(await self._publish_request(sent), status=201)

    async def _publish_request(self, sent: PlatformRequest) -> dict[str, Any]:
        """On ``yrd.platform-requests`` (key: the access code) and in the book at once."""
        assert self.producer is not None
        await self.producer.send_and_wait(self.settings.topic_platform_requests, encode(sent),
                                          key=str(sent.platform).encode())
        self.links.add_request(sent)
        view = self.links.request_view(sent.request_id, datetime.now(CHINA_TZ))
        assert view is not None
        return view

    @staticmethod
    def _region_only(user: User) -> None:
        if user.jurisdiction != REGION:
            raise http_error(web.HTTPForbidden, "the national platform addresses the region: "
                                                "its requests are for the region's desk")

    async def uplink_requests(self, request: web.Request) -> web.Response:
        """The national platform's requests (region users), newest first."""
        self._region_only(request[USER])
        now = datetime.now(CHINA_TZ)
        return _json({"now": now, "items": self.links.uplink_views(now)})

    async def answer_uplink(self, request: web.Request) -> web.Response:
        """A person's answer to the national platform's inspection (a text: 0x1301) or
        supervision order (a result: 0x1401), put on ``yrd.uplink-answers`` for the
        uplink to send; 409 once it is answered (a supervision order: done or not
        handled), 201 with the request and its answers."""
        user: User = request[USER]
        self._region_only(user)
        request_id = request.match_info["request_id"]
        asked = self.links.upward.get(request_id)
        if asked is None:
            raise http_error(web.HTTPNotFound, "no such request of the national platform")
        if asked.kind in RELAYED:
            raise http_error(web.HTTPConflict, f"a {asked.kind} of the national platform went "
                                               "to the truck's terminal: its result answers it")
        if asked.kind not in ANSWERED:
            raise http_error(web.HTTPConflict, f"a {asked.kind} of the national platform is "
                                               "for reading: it takes no answer")
        body = await read_json(request, UplinkAnswerRequest)
        if request_id in self._answering:
            raise http_error(web.HTTPConflict, "this request is being answered right now")
        done = final_answer(asked, self.links.answers.get(request_id, []))
        if done is not None:
            at = done.answered_at.astimezone(CHINA_TZ)
            raise http_error(web.HTTPConflict, f"already answered by {done.answered_by} at "
                                               f"{at:%Y-%m-%d %H:%M:%S}")
        try:
            answer = answer_of(body, asked, by=user.name, now=datetime.now(CHINA_TZ))
        except ValueError as exc:
            raise http_error(web.HTTPBadRequest, str(exc)) from None
        self._answering.add(request_id)
        try:
            assert self.producer is not None
            await self.producer.send_and_wait(self.settings.topic_uplink_answers, encode(answer),
                                              key=request_id.encode())
            self.links.add_answer(answer)
        finally:
            self._answering.discard(request_id)
        return _json(self.links.uplink_view(request_id, datetime.now(CHINA_TZ)), status=201)

    def _link_changed(self, what: str, request_id: str) -> None:
        """Push a request's news to the feeds that may see it (not what was there before
        the desk started: that is no news)."""
        if not self.feeds:
            return
        s = self.settings
        topics = ((s.topic_platform_requests, s.topic_platform_request_results)
                  if what == "platform-request" else
                  (s.topic_uplink_requests, s.topic_uplink_answers))
        if not all(self._links_live.get(t, _NEVER).is_set() for t in topics):
            return
        now = datetime.now(CHINA_TZ)
        if what == "platform-request":
            asked = self.links.requests.get(request_id)
            view = self.links.request_view(request_id, now)
            if asked is None or view is None:
                return
            data = msgspec.json.encode(view)
            for feed in list(self.feeds):
                if self.links.sees_request(feed.user, asked, self.incidents.get):
                    feed.push(what, data)
            return
        view = self.links.uplink_view(request_id, now)
        if view is None:
            return
        data = msgspec.json.encode(view)
        for feed in list(self.feeds):
            if feed.user.jurisdiction == REGION:
                feed.push(what, data)


_NEVER = asyncio.Event()
"""A follower that does not exist has never caught up."""


class StaticFiles:
    """The page's files, served from memory (read again when changed on disk), gzipped when
    the browser accepts it, with an ETag; the map library (``vendor/``) cached for a week,
    the page's own files revalidated each time (a new version shows at once)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._files: dict[Path, tuple[int, bytes, str]] = {}

    def answer(self, request: web.Request, relative: str) -> web.Response:
        try:
            path = (self.root / relative).resolve()
            found = path.is_relative_to(self.root) and path.is_file()
        except (OSError, ValueError):  # a name no file system has (a NUL byte...)
            found = False
        if not found:
            raise http_error(web.HTTPNotFound, "no such file")
        body, etag = self._read(path)
        vendor = path.is_relative_to(self.root / "vendor")
        headers = {"ETag": etag,
                   "Cache-Control": "public, max-age=604800" if vendor else "no-cache"}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return web.Response(body=body, content_type=content_type, headers=headers,
                            charset="utf-8" if content_type.startswith("text/")
                            or content_type.endswith("javascript") else None)

    def _read(self, path: Path) -> tuple[bytes, str]:
        mtime = path.stat().st_mtime_ns
        known = self._files.get(path)
        if known is None or known[0] != mtime:
            body = path.read_bytes()
            known = self._files[path] = (mtime, body,
                                         f'"{hashlib.sha256(body).hexdigest()[:32]}"')
        return known[1], known[2]


def _json(data: Any, status: int = 200) -> web.Response:
    """A JSON answer (msgspec: structs, datetimes as RFC 3339)."""
    return web.Response(body=msgspec.json.encode(data), status=status,
                        content_type="application/json")


@cache
def _geo(layer: str) -> bytes:
    return files("yrd_hazmat.data").joinpath(f"{layer}.geojson").read_bytes()


CAPABILITY_NAMES = sorted(set().union(*ROLE_CAPABILITIES.values()))


def _me(user: User) -> dict[str, Any]:
    return {"name": user.name, "jurisdiction": user.jurisdiction, "role": user.role,
            "may": sorted(c for c in CAPABILITY_NAMES if user.may(c)),
            "provinces": [p or "none" for p in user.provinces], "carrier": user.carrier}


def run(settings: Settings) -> None:
    """Serve the desk until interrupted (the CLI's ``desk`` command)."""
    if not settings.desk_users:
        log.warning("desk: no YRD_DESK_USERS file: only the accounts of %s can sign in "
                    "(yrd-hazmat users add)", settings.topic_desk_users)
    desk = Desk(settings, Users.load(settings.desk_users))
    web.run_app(desk.application(), host=settings.desk_host, port=settings.desk_port,
                print=lambda text: log.info("%s", text))
