"""The messages on every topic, as msgspec structs.

These structs, with the zone feature of :mod:`.zones.model`, are the single
source of the topic contract: ``schemas/*.json`` is generated from them
(``yrd-hazmat schemas``) and a test fails if the committed files drift from
what the structs produce.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum, StrEnum
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

VehicleId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=20,
        pattern=r"^[0-9A-Za-z\u4e00-\u9fff_\-]+$",
        description="Vehicle id: the UTF-8 licence plate, e.g. 沪A12345 (also the Kafka key)",
    ),
]
EventTime = Annotated[
    datetime, Meta(tz=True, description="RFC 3339 time with offset; for a ping, the GNSS fix time")
]
Latitude = Annotated[float, Meta(ge=-90.0, le=90.0, description="degrees")]
Longitude = Annotated[float, Meta(ge=-180.0, le=180.0, description="degrees")]
DWord = Annotated[int, Meta(ge=0, le=0xFFFFFFFF)]
PROVINCES = ("SH", "JS", "ZJ", "AH")
"""The four provinces of the region, by their abbreviations (Shanghai, Jiangsu, Zhejiang,
Anhui): the one list the contract, the rules and the read model use."""
Province = Literal[PROVINCES]  # (a tuple subscript: Literal["SH", "JS", "ZJ", "AH"])


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(str, Enum):
    RAISED = "raised"
    CLEARED = "cleared"


class AlertType(StrEnum):
    """Every alert type the rules raise, one place (README "Alert types" describes each).

    A ``StrEnum``: each member is its name as a string, so ids, JSON and metric labels
    are what the plain strings gave."""

    SPEEDING = "SPEEDING"
    ZONE_VIOLATION = "ZONE_VIOLATION"
    ZONE_DWELL = "ZONE_DWELL"
    ZONE_SPEEDING = "ZONE_SPEEDING"
    NO_VALID_PERMIT = "NO_VALID_PERMIT"
    PERMIT_TIME_WINDOW = "PERMIT_TIME_WINDOW"
    ROUTE_DEVIATION = "ROUTE_DEVIATION"
    PROVINCE_HANDOVER = "PROVINCE_HANDOVER"
    HANDOVER_NOT_PERMITTED = "HANDOVER_NOT_PERMITTED"
    HANDOVER_EXPECTED = "HANDOVER_EXPECTED"
    FATIGUE_DRIVING = "FATIGUE_DRIVING"
    PROLONGED_STOP = "PROLONGED_STOP"
    DEVICE_ALARM = "DEVICE_ALARM"
    SIGNAL_LOST = "SIGNAL_LOST"
    IMPLAUSIBLE_JUMP = "IMPLAUSIBLE_JUMP"
    PLATFORM_ALARM = "PLATFORM_ALARM"
    """Raised by no rule: a lower platform's alarm (JT/T 809 0x1402), made by the gateway
    (:mod:`yrd_hazmat.gateway.platform_alarms`)."""


RAISED_ELSEWHERE = frozenset({AlertType.PLATFORM_ALARM})
"""The alert types no rule of the worker raises (the gateway's, for lower platforms)."""


QualityIssue = Literal["no_fix", "bad_position", "time_ahead", "time_behind", "bad_speed",
                      "bad_direction", "bad_altitude", "unknown_plate", "malformed_item"]
"""Why a record is not qualified (数据合格率): an invalid latitude/longitude, a fix without a
valid position, a time far off the clock, a speed, direction or altitude out of range, a
plate no registration knows, an additional item that could not be read."""


class Ping(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One GNSS position report of a truck (JT/T 808 0x0200, decoded)."""

    vehicle_id: VehicleId
    ts: EventTime
    lat: Latitude
    lon: Longitude
    speed_kmh: Annotated[float, Meta(ge=0.0, le=300.0, description="ground speed, km/h")]
    heading: Annotated[int, Meta(ge=0, le=359, description="0 = north, clockwise")] | None = None
    crs: Literal["WGS84", "GCJ02"] = "WGS84"
    alarm_flags: Annotated[DWord, Meta(description="JT/T 808 alarm DWORD")] = 0
    status_flags: Annotated[DWord, Meta(description="JT/T 808 status DWORD (bit 0 ACC, bit 1 fix)")] = 0
    road_class: Literal["expressway", "other"] | None = None
    altitude_m: Annotated[int, Meta(description="metres above sea level")] | None = None
    mileage_km: Annotated[float, Meta(ge=0.0, description="odometer (JT/T 808 item 0x01)")] | None = None
    alarm_extra: Annotated[dict[str, int], Meta(
        description="JT/T 808 alarm extension items: overspeed_area_type/_id (0x11), "
                    "area_type/_id/_direction (0x12), route_id/_time_s/_time_result (0x13); "
                    "and what the terminal's maker profile reads from its items 0xE0-0xFF "
                    "(e.g. tank_leak: non-zero when the tank's leak sensor fires, a critical "
                    "DEVICE_ALARM; battery_pct)")
    ] | None = None
    fix_valid: Annotated[bool, Meta(
        description="false: the terminal had no valid satellite fix (JT/T 808 status bit 1 "
                    "clear). Proof of life, not a position: lat/lon are not used, no rule "
                    "sees it, the truck counts as online")] = True
    blind: Annotated[bool, Meta(
        description="a fix the terminal kept while out of coverage and uploaded later "
                    "(JT/T 808 0x0704 type 1, JT/T 809 0x1203 history)")] = False
    raw_items: Annotated[dict[str, str], Meta(
        description="additional items 0xE0-0xFF that no maker profile gave a meaning to: "
                    "item id (two hex digits) -> value (hex), kept as sent")] | None = None
    quality: Annotated[list[QualityIssue], Meta(
        description="data-quality findings on an accepted record (empty: qualified), for "
                    "the monthly data-qualified rate")] = []


class City(msgspec.Struct, frozen=True, gc=False):
    """A prefecture-level city: the jurisdiction below the province."""

    code: Annotated[str, Meta(pattern=r"^\d{6}$", description="GB/T 2260 admin code")]
    name: str


class Alert(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=False, gc=False):
    """An alert about one vehicle, raised or cleared, at the event time of a ping."""

    alert_id: Annotated[
        str, Meta(description="deterministic: incident id plus ':raised' or ':cleared'")
    ]
    incident_id: Annotated[
        str,
        Meta(description="deterministic from vehicle, type, subject and the raising ping's time"),
    ]
    type: Annotated[str, Meta(pattern=r"^[A-Z_]+$", description="alert type, see README")]
    severity: Severity
    state: AlertState
    vehicle_id: VehicleId
    ts: Annotated[EventTime, Meta(description="event time of the triggering ping")]
    emitted_at: Annotated[EventTime, Meta(description="wall-clock time the worker published it")]
    lat: Latitude
    lon: Longitude
    province: Province | None
    city: City | None = None
    details: dict[str, Any] = {}
    permit_id: str | None = None
    un_number: str | None = None
    hazard_class: str | None = None


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """An input record that could not be used, with where it came from and why."""

    source_topic: str
    partition: int
    offset: int
    key: str | None
    reason: Annotated[str, Meta(description="short machine-readable code, see README")]
    error: Annotated[str, Meta(description="human-readable explanation")]
    raw: Annotated[str, Meta(description="the record value, UTF-8 text or base64")]
    raw_encoding: Literal["utf-8", "base64"]
    raw_size: Annotated[int, Meta(ge=0, description="bytes of the original value")]
    raw_truncated: bool
    raw_sha256: str
    received_at: EventTime


class Terminal(msgspec.Struct, frozen=True, kw_only=True):
    """A JT/T 808 terminal registered with a gateway (0x0100), and the authentication code
    it was given: any gateway accepts its 0x0102 with that code, also after a restart."""

    terminal: Annotated[str, Meta(pattern=r"^\d{1,20}$",
                                  description="the terminal's phone number (digits, no leading zeros)")]
    vehicle_id: VehicleId
    plate_colour: Annotated[int, Meta(ge=0, le=255, description="JT/T 808 plate colour code")]
    terminal_id: str
    maker: str
    model: str
    auth_code: str
    protocol: Annotated[Literal["2011", "2013", "2019"], Meta(
        description="the layout of its registration (2011 and 2013 share the 2013 header)")]
    registered_at: EventTime


class VehicleTerminal(msgspec.Struct, frozen=True, kw_only=True):
    """A carrier's declaration of the terminal fitted to one of its vehicles (compacted topic
    ``yrd.vehicle-terminals``, key = plate): which maker profile reads its maker-defined
    items. It overrides what the terminal's own registration (0x0100) says."""

    vehicle_id: VehicleId
    carrier: Annotated[str, Meta(min_length=1, max_length=64,
                                 description="the carrier declaring it (a label of its metrics)")]
    profile: Annotated[str, Meta(min_length=1, max_length=64,
                                 description="a terminal profile name (README: Terminal "
                                             "profiles)")] | None = None
    maker: Annotated[str, Meta(max_length=32)] | None = None
    model: Annotated[str, Meta(max_length=32)] | None = None


CommandKind = Literal["text", "position_query", "alarm_confirm", "photo", "call_back",
                      "emergency_access", "tachograph"]
CommandStatus = Literal["claimed", "sent", "ok", "failed", "wrong", "unsupported", "timeout",
                        "expired", "refused"]


class Command(msgspec.Struct, frozen=True, kw_only=True):
    """A message down to a truck's terminal (topic ``yrd.commands``, key = plate): sent by
    ``yrd-hazmat command`` and the desk, delivered by the gateway holding the terminal's
    connection (JT/T 808 0x8300 text, 0x8201 position query, 0x8203 alarm confirmation,
    0x8801 photo, 0x8400 call back, 0x8105 command word 2 emergency access: connect to
    another server, 0x8700 tachograph data), or when the terminal next authenticates,
    until ``expires_at``. Each kind reads only its own fields; the others keep their
    defaults."""

    command_id: Annotated[str, Meta(min_length=1, max_length=64,
                                    pattern=r"^[0-9A-Za-z_.:\-]+$")]
    vehicle_id: VehicleId
    kind: CommandKind
    text: Annotated[str, Meta(min_length=1, max_length=400,
                              description="the text (kind text), GBK on the wire")] | None = None
    emergency: bool = False
    """0x8300 flag bit 0: an emergency message."""
    display: bool = True
    """0x8300 flag bit 2: shown on the terminal's display."""
    tts: bool = False
    """0x8300 flag bit 3: read aloud (TTS)."""
    alarm_serial: Annotated[int, Meta(ge=0, le=0xFFFF, description="0x8203: the serial of the "
                                      "alarm's location report (0: all)")] = 0
    alarm_types: Annotated[DWord, Meta(description="0x8203: the alarm bits confirmed")] = 0
    camera: Annotated[int, Meta(ge=1, le=255, description="0x8801: the camera channel")] = 1
    phone: Annotated[str, Meta(min_length=1, max_length=20, pattern=r"^\+?[0-9]+$",
                               description="0x8400 (call_back): the number the terminal "
                                           "calls")] | None = None
    listen: bool = True
    """0x8400 flag: 1 listen (监听: the number hears the cab, the cab does not hear it),
    0 a normal call."""
    server: Annotated[str, Meta(min_length=1, max_length=255, pattern=r"^[0-9A-Za-z._:\-]+$",
                                description="0x8105 (emergency_access): the address (IP "
                                            "or domain) of the server to connect to")] | None = None
    tcp_port: Annotated[int, Meta(ge=0, le=0xFFFF,
                                  description="0x8105: its TCP port")] | None = None
    udp_port: Annotated[int, Meta(ge=0, le=0xFFFF, description="0x8105: its UDP port "
                                                              "(0: none, left empty)")] = 0
    auth_code: Annotated[str, Meta(max_length=64, pattern=r"^[^;]*$",
                                   description="0x8105: the authentication code that server "
                                               "issued (监管平台鉴权码)")] = ""
    apn: Annotated[str, Meta(max_length=64, pattern=r"^[^;]*$",
                             description="0x8105: the dial-up access point (拨号点名称, "
                                         "the APN)")] = ""
    dial_user: Annotated[str, Meta(max_length=64, pattern=r"^[^;]*$",
                                   description="0x8105: the dial-up user name")] = ""
    dial_password: Annotated[str, Meta(max_length=64, pattern=r"^[^;]*$",
                                       description="0x8105: the dial-up password")] = ""
    minutes: Annotated[int, Meta(ge=0, le=0xFFFF, description="0x8105: how long the terminal "
                                 "stays on that server before it returns, in minutes (0: it "
                                 "stays)")] = 0
    command_word: Annotated[int, Meta(ge=0, le=255, description="0x8700 (tachograph): the "
                                      "GB/T 19056 command word (0x00 recorder version, 0x01 "
                                      "driver, 0x02 clock, 0x03 mileage, 0x08 speed per "
                                      "second...)")] | None = None
    block: Annotated[str, Meta(max_length=2044, pattern=r"^(?:[0-9A-Fa-f]{2})*$",
                               description="0x8700: the data block after the command word, "
                                           "hex (a 2019 terminal's GB/T 19056 command "
                                           "frame); none: the command word alone")] | None = None
    issued_by: Annotated[str, Meta(min_length=1, max_length=64)]
    issued_at: EventTime
    expires_at: EventTime
    incident_id: str | None = None
    """The incident it was sent about (an emergency's exposed trucks)."""

    def __repr__(self) -> str:  # the dial-up password is a secret: never in a log
        shown = ", ".join(
            f"{name}={'****' if name == 'dial_password' and value else value!r}"
            for name, value in msgspec.structs.asdict(self).items())
        return f"Command({shown})"


class CommandResult(msgspec.Struct, frozen=True, kw_only=True):
    """What became of a command (topic ``yrd.command-results``, key = plate), one record per
    step: claimed by a gateway, sent, then the terminal's answer (ok, failed, wrong,
    unsupported: its 0x0001 general response; ok with what was asked for: a position, a
    photo, tachograph data), a timeout, or expired undelivered."""

    command_id: str
    vehicle_id: VehicleId
    status: CommandStatus
    at: EventTime
    gateway: str | None = None
    """The gateway instance that holds the truck's connection (the one that sends)."""
    detail: str | None = None
    serial: int | None = None
    """The platform's serial of the message sent (the terminal's answer echoes it)."""
    position: dict[str, Any] | None = None
    """0x8201's answer (0x0201): lat, lon, ts, speed_kmh, heading."""
    media_id: str | None = None
    """0x8801's answer: the picture on ``yrd.media`` (0x0801)."""
    command_word: int | None = None
    """0x8700's answer (0x0700): the GB/T 19056 command word the terminal answered."""
    data: str | None = None
    """0x8700's answer (0x0700): its data block (the recorder's GB/T 19056 frame), lowercase
    hex."""


class Media(msgspec.Struct, frozen=True, kw_only=True):
    """A picture (or other multimedia) a terminal uploaded (JT/T 808 0x0801; topic
    ``yrd.media``, key = media id)."""

    media_id: str
    vehicle_id: VehicleId
    terminal_media_id: Annotated[int, Meta(ge=0, le=0xFFFFFFFF)]
    format: Literal["jpeg", "tif", "mp3", "wav", "wmv", "unknown"]
    channel: int
    event: int
    """0x0801 event code: 0 platform command, 1 timer, 2 robbery alarm, 3 collision..."""
    received_at: EventTime
    data: Annotated[str, Meta(description="the file, base64")]
    size: Annotated[int, Meta(ge=0)]
    command_id: str | None = None
    taken_at: EventTime | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None


ResourceKind = Literal["fire_rescue", "chemical_rescue_base", "hospital", "env_monitoring",
                       "equipment_depot"]
Capability = Literal["leak", "fire", "toxic_gas", "decontamination", "medical", "monitoring"]


class Resource(msgspec.Struct, frozen=True, kw_only=True):
    """An emergency resource (compacted topic ``yrd.resources``, key = ``resource_id``)."""

    resource_id: Annotated[str, Meta(min_length=1, max_length=64)]
    name: str
    kind: ResourceKind
    lat: Latitude
    lon: Longitude
    province: Province
    city: str | None = None
    hazard_classes: Literal["all"] | list[Annotated[str, Meta(pattern=r"^[1-9](\.[1-6])?$")]] = "all"
    """GB 6944 classes or divisions it can handle ("2" covers 2.1-2.3), or all."""
    capabilities: list[Capability]
    contact: str | None = None
    status: Literal["available", "deployed", "out_of_service"] = "available"
    deployed_to: str | None = None
    """The incident it is deployed to (status deployed, set by the incident keeper)."""
    approximate: bool = False
    """Illustrative data: position and capabilities approximate."""


ActionKind = Literal["raised", "cleared", "ack", "assign", "note", "dispatch", "arrive",
                     "release", "close", "escalate", "explain", "appeal", "appeal_accepted",
                     "appeal_rejected"]
PERSON_ACTIONS = frozenset({"ack", "assign", "note", "dispatch", "arrive", "release", "close",
                            "explain"})
"""The actions that are a person handling the incident (what meets its deadline to
acknowledge, and counts in the handling rate)."""
Level = Literal["city", "province", "region"]
"""Who handles an alert: its city's duty room first, then (escalated) its province's
supervisors, then the region's joint office."""


class IncidentAction(msgspec.Struct, frozen=True, kw_only=True):
    """One step of an incident: the worker's (raised, cleared) or a person's (ack, assign,
    note on the desk; dispatch, arrive, release, close with the desk or ``yrd-hazmat
    respond``); the notifier's escalate (a deadline passed: ``level`` is the level it goes
    to); a carrier's explain (a handling note) and appeal (``text``: the reason), and the
    police's appeal_accepted or appeal_rejected (``text``: why)."""

    kind: ActionKind
    by: Annotated[str, Meta(description="the desk user or operator; the worker for raised, cleared")]
    at: EventTime
    action_id: Annotated[str, Meta(
        description="unique: an action applied twice (a replay) counts once")] | None = None
    text: str | None = None
    """The note (kind note), or a remark with any other action."""
    assignee: str | None = None
    """Who the incident is assigned to (kind assign)."""
    resource_id: str | None = None
    """The resource dispatched, arrived or released."""
    level: Level | None = None
    """The level an escalation goes to (kind escalate)."""


class Response(msgspec.Struct, frozen=True, kw_only=True):
    """One resource sent to an incident: from its dispatch to its release."""

    resource_id: str
    name: str
    kind: str
    province: Province
    """The resource's province: the one giving the help."""
    dispatched_at: EventTime
    arrived_at: EventTime | None = None
    released_at: EventTime | None = None
    crosses_border: bool = False


class IncidentLog(msgspec.Struct, frozen=True, kw_only=True):
    """An incident's record (compacted topic ``yrd.incidents``, key = incident id): what
    it is, and everything done about it, oldest first. The latest record of an incident
    holds its whole history; one writer per incident (the worker's incident keeper)."""

    incident_id: str
    vehicle_id: VehicleId
    province: Province | None
    alert_type: str
    actions: list[IncidentAction]
    severity: Severity | None = None
    emergency: bool = False
    """A critical incident with responders (SOS, collision, rollover, leak, a banned truck
    inside a water-source zone...)."""
    raised_at: EventTime | None = None
    """The raising ping's time."""
    lat: Latitude | None = None
    lon: Longitude | None = None
    subject: str | None = None
    """The alarm or the zone."""
    hazard_class: str | None = None
    un_number: str | None = None
    cargo_name: str | None = None
    responders_province: Province | None = None
    """The province whose responders are nearest (outside the region: the closest one)."""
    isolation_distance_m: float | None = None
    responders: list[dict[str, Any]] = []
    """The responders proposed when it was raised, nearest first."""
    exposure: dict[str, Any] = {}
    """Zones and other trucks within the isolation distance when it was raised."""
    responses: list[Response] = []
    cleared_at: EventTime | None = None
    """When the alert cleared (the alarm went off): the response may go on."""
    closed_at: EventTime | None = None
    rejected: list[dict[str, Any]] = []
    """The latest actions refused (action_id, kind, reason), so whoever sent one learns why."""
    level: Level | None = None
    """The level it was escalated to (None: not escalated)."""
    appeal: Literal["open", "accepted", "rejected"] | None = None
    """A carrier's appeal of the alert, and the police's decision."""

    @property
    def home(self) -> str | None:
        """The jurisdiction receiving help: the incident's province, else the nearest."""
        return self.province or self.responders_province


class IncidentCommand(msgspec.Struct, frozen=True, kw_only=True):
    """A request to record an action (topic ``yrd.incident-actions``, key = incident id):
    sent by the worker, the desk and ``yrd-hazmat respond``; the incident keeper applies
    it and publishes the incident's record."""

    incident_id: str
    action: IncidentAction
    alert: Alert | None = None
    """The incident's alert: with the first action, it says what the incident is."""


class Handover(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A truck passing from one jurisdiction to another (null province: outside the region)."""

    handover_id: str
    vehicle_id: str
    from_province: str | None
    to_province: str | None
    crossing_time: str
    crossing_lon: float
    crossing_lat: float
    confirmed_at: str
    gap_s: float
    permit_id: str | None = None
    un_number: str | None = None
    hazard_class: str | None = None
    cargo_name: str | None = None
    quantity_kg: float | None = None
