"""ZONE_VIOLATION, ZONE_DWELL and ZONE_SPEEDING: restricted zones, with hysteresis.

Per vehicle and zone a small track says whether the truck is *confirmed*
inside. Entry is confirmed by a ping deeper than the margin, or by staying
inside for ``min_inside_ms``, or by a ping inside after a segment from the
previous fix (outside) that passed deep into the zone: then the truck is inside
since the segment's interpolated entry (see :mod:`yrd_hazmat.core.zones.segments`;
a zone passed through with no fix inside is :mod:`.zone_crossing`'s). Exit is
confirmed by a ping beyond the margin, or by staying outside for
``min_outside_ms``. GPS jitter along an edge never confirms either, so it
cannot raise and clear an alert on every ping.

While confirmed inside:
- ZONE_VIOLATION (critical) when the ban is in force at the ping's local time
  and the cargo class is banned (unknown cargo counts as banned, and the alert
  says so); cleared on exit or when the ban window ends. Inside a water-source
  zone it is an emergency: it carries responders and exposure.
- ZONE_DWELL (warning) once inside longer than the zone's ``max_dwell_s``.
- ZONE_SPEEDING (warning) over the zone's own limit where it is lower than the
  road's legal limit (otherwise SPEEDING already covers it).
All open alerts of a zone clear when the truck leaves it or the zone is removed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec
from msgspec.structs import replace

from ..emergency.scene import EMERGENCY_ZONE_KINDS, ResponseConfig, emergency_details
from ..hazard import is_banned
from ..models import Alert, AlertType, Severity
from ..observation import Observation
from ..timeutil import from_ms
from ..zones.index import DEEP, INSIDE, NEAR, depth_m
from ..zones.model import Zone
from ..zones.schedule import in_force
from ..zones.segments import time_at
from . import incident, speed_episode
from .context import StepContext
from .incident import Kind
from .rule import Rule
from .speed_episode import EpisodeRule, SpeedEpisode
from .thresholds import SPEEDING_MAX_GAP_MS, RoadLimits

VIOLATION = AlertType.ZONE_VIOLATION
DWELL = AlertType.ZONE_DWELL
SPEEDING = AlertType.ZONE_SPEEDING


class ZonesConfig(msgspec.Struct, frozen=True, kw_only=True):
    margin_m: float = 30.0
    min_inside_ms: int = 20_000
    min_outside_ms: int = 20_000
    speeding_min_duration_ms: int = 30_000
    speeding_max_gap_ms: int = SPEEDING_MAX_GAP_MS
    limits: RoadLimits = RoadLimits()
    """The legal limits: a zone's own limit applies only where it is lower."""
    response: ResponseConfig = ResponseConfig()
    """How responders are proposed for a banned truck inside a water-source zone."""


class ZoneTrack(msgspec.Struct, kw_only=True, gc=False):
    """One vehicle's relation to one zone."""

    inside: bool = False
    entered_ms: int | None = None
    pending_ms: int | None = None
    """Start of an unconfirmed crossing (in while outside, out while inside)."""
    violation: str | None = None
    dwell: str | None = None
    speeding: SpeedEpisode = msgspec.field(default_factory=SpeedEpisode)

    @property
    def open_incidents(self) -> list[str]:
        return [i for i in (self.violation, self.dwell, self.speeding.incident) if i]


def open_incidents(tracks: dict[str, ZoneTrack]) -> list[str]:
    return [i for track in tracks.values() for i in track.open_incidents]


def step(
    tracks: dict[str, ZoneTrack], obs: Observation, ctx: StepContext, cfg: ZonesConfig
) -> tuple[dict[str, ZoneTrack], list[Alert]]:
    """Advance every zone track of one vehicle by one observation."""
    if not obs.zones and not tracks:  # (most pings: near no zone, none tracked)
        return tracks, []
    zones = ctx.zones
    alerts: list[Alert] = []
    out: dict[str, ZoneTrack] = {}
    for zone_id in sorted({z for z, _ in obs.zones} | tracks.keys()):
        track = tracks.get(zone_id) or ZoneTrack()
        zone = zones.get(zone_id)
        if zone is None:  # removed while tracked
            alerts += _leave(track, obs, ctx, zone_id, "zone_removed")
            continue
        level = obs.zone_level(zone_id)
        if track.inside:
            track = _exiting(track, level, obs.ts_ms, cfg)
            if not track.inside:
                alerts += _leave(track, obs, ctx, zone_id, "exited")
                continue
        else:
            track = _entering(track, level, obs.ts_ms, cfg, _entered_between(zone_id, obs, ctx))
            if not track.inside:
                if track.pending_ms is not None or level is not None:
                    out[zone_id] = track
                continue
        alerts += _while_inside(track, obs, ctx, zone, cfg)
        out[zone_id] = track
    return out, alerts


def _entered_between(zone_id: str, obs: Observation, ctx: StepContext) -> int | None:
    """When the truck entered the zone, if it was outside at the previous fix and the
    segment from there passed deep into the zone (interpolated along the segment)."""
    previous = ctx.previous
    for crossing in ctx.crossings:
        if crossing.zone_id == zone_id and previous is not None:
            before = previous.zone_level(zone_id)
            if before is None or before == NEAR:
                return time_at(previous, obs, crossing.enter)
    return None


def _entering(track: ZoneTrack, level: int | None, ts: int, cfg: ZonesConfig,
              entered_between: int | None = None) -> ZoneTrack:
    """The track of a truck outside the zone after a ping at ``level``: confirmed inside
    (deeper than the margin, inside for ``min_inside_ms``, or inside after a segment that
    passed deep into it: then since the segment's entry), entering, or outside."""
    if level is None or level == NEAR:
        return track if track.pending_ms is None else replace(track, pending_ms=None)
    if entered_between is not None:
        return replace(track, inside=True, entered_ms=entered_between, pending_ms=None)
    start = track.pending_ms if track.pending_ms is not None else ts
    if level == DEEP or ts - start >= cfg.min_inside_ms:
        return replace(track, inside=True, entered_ms=start, pending_ms=None)
    return replace(track, pending_ms=start)


def _exiting(track: ZoneTrack, level: int | None, ts: int, cfg: ZonesConfig) -> ZoneTrack:
    """The track of a truck inside the zone after a ping at ``level``: confirmed out
    (beyond the margin, or near the edge for ``min_outside_ms``), leaving, or inside."""
    if level in (DEEP, INSIDE):
        return track if track.pending_ms is None else replace(track, pending_ms=None)
    if level is None:
        return replace(track, inside=False)
    start = track.pending_ms if track.pending_ms is not None else ts
    return replace(track, pending_ms=start, inside=ts - start < cfg.min_outside_ms)


def _zone_details(zone: Zone, obs: Observation) -> dict[str, Any]:
    props = zone.props
    return {
        "zone_id": props.zone_id,
        "zone_name": props.name,
        "zone_kind": props.kind,
        "depth_m": round(depth_m(zone, obs.x_m, obs.y_m), 1),
    }


def _while_inside(
    track: ZoneTrack, obs: Observation, ctx: StepContext, zone: Zone, cfg: ZonesConfig
) -> list[Alert]:
    """The zone's alerts for a ping while the truck is confirmed inside (updates ``track``)."""
    entered_ms = track.entered_ms if track.entered_ms is not None else obs.ts_ms
    made: list[dict[str, Any]] = []

    def details() -> dict[str, Any]:
        """The zone's part of the details, made once and only for an alert (the depth costs
        a shapely call: more than the rest of the step)."""
        if not made:
            made.append(_zone_details(zone, obs) | {"entered_at": from_ms(entered_ms).isoformat()})
        return made[0]

    zone_id = zone.zone_id

    cargo_class = ctx.permit.cargo_class(obs.ts_ms)
    ban = in_force(zone.windows, obs.ts_ms) and is_banned(cargo_class, zone.banned)
    track.violation, alerts = incident.settle(
        track.violation, ban, ctx, _kind(VIOLATION, zone_id), obs,
        raised=lambda: details() | ban_details(zone, cargo_class) | _emergency(zone, obs, ctx, cfg),
        cleared=lambda: details() | {"reason": "ban_not_in_force"})

    max_dwell = zone.props.max_dwell_s
    dwell_s = (obs.ts_ms - entered_ms) / 1000
    if max_dwell is not None and dwell_s > max_dwell:
        track.dwell, raised = incident.raise_once(
            track.dwell, ctx, _kind(DWELL, zone_id), obs,
            lambda: details() | {"dwell_s": dwell_s, "max_dwell_s": max_dwell})
        alerts += raised

    rule = _episode(zone_id, cfg.speeding_min_duration_ms, cfg.speeding_max_gap_ms)
    legal = cfg.limits.limit_for(obs.road_class)
    zone_limit = zone.props.speed_limit_kmh
    if zone_limit is not None and zone_limit < legal:
        track.speeding, raised = speed_episode.step(track.speeding, obs, ctx, rule, zone_limit,
                                                    details)
    else:
        track.speeding, raised = speed_episode.close(track.speeding, obs, ctx, rule, details)
    return alerts + raised


def _emergency(zone: Zone, obs: Observation, ctx: StepContext, cfg: ZonesConfig) -> dict[str, Any]:
    """A banned truck inside a water-source zone is an emergency: responders and exposure
    (:mod:`yrd_hazmat.core.emergency.scene`); other bans are violations, not emergencies."""
    return emergency_details(obs, ctx, cfg.response) if zone.props.kind in EMERGENCY_ZONE_KINDS else {}


@lru_cache(maxsize=4096)
def _episode(zone_id: str, min_duration_ms: int, max_gap_ms: int) -> EpisodeRule:
    return EpisodeRule(alert_type=SPEEDING, subject=zone_id, min_duration_ms=min_duration_ms,
                       max_gap_ms=max_gap_ms)


@lru_cache(maxsize=4096)
def _kind(alert_type: AlertType, zone_id: str) -> Kind:
    severity = Severity.CRITICAL if alert_type is VIOLATION else Severity.WARNING
    return Kind(alert_type=alert_type, severity=severity, subject=zone_id)


def ban_details(zone: Zone, cargo_class: str | None) -> dict[str, Any]:
    props = zone.props
    return {
        "banned_classes": props.banned_classes,
        "schedule": msgspec.to_builtins(props.schedule) if props.schedule else "always",
        "cargo_class": cargo_class,
        "cargo_assumed_banned": cargo_class is None,
    }


def _leave(
    track: ZoneTrack, obs: Observation, ctx: StepContext, zone_id: str, reason: str
) -> list[Alert]:
    """Clear every open alert of the zone at ``obs``."""
    entered = from_ms(track.entered_ms).isoformat() if track.entered_ms is not None else None
    details = {"zone_id": zone_id, "reason": reason, "entered_at": entered}
    if track.entered_ms is not None:
        details["dwell_s"] = (obs.ts_ms - track.entered_ms) / 1000
    _, alerts = incident.clear(track.violation, ctx, _kind(VIOLATION, zone_id), obs, details)
    _, cleared = incident.clear(track.dwell, ctx, _kind(DWELL, zone_id), obs, details)
    rule = EpisodeRule(alert_type=SPEEDING, subject=zone_id, min_duration_ms=0)
    _, speeding = speed_episode.close(track.speeding, obs, ctx, rule, lambda: details)
    return alerts + cleared + speeding


RULE = Rule(name="zones", state=dict[str, ZoneTrack], new_state=dict, config=ZonesConfig,
            raises=(VIOLATION, DWELL, SPEEDING), step=step, open_incidents=open_incidents)
