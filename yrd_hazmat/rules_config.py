"""The rules' configuration, built from the settings (seconds in, milliseconds out).

Every field of :class:`~.engine.RulesConfig` is set here from a setting whose default is
the rule's own, but for the few deliberately fixed (listed, with why, in
``tests/unit/test_rules_settings.py``, which fails naming what to add otherwise).
"""

from __future__ import annotations

from .config import Settings
from .core.engine import RulesConfig
from .core.emergency.scene import ResponseConfig
from .core.rules.fatigue import FatigueConfig
from .core.rules.handover import HandoverConfig
from .core.rules.permits import PermitsConfig
from .core.rules.plausibility import PlausibilityConfig
from .core.rules.signal import SignalConfig
from .core.rules.speeding import SpeedingConfig
from .core.rules.stops import StopsConfig
from .core.rules.thresholds import RoadLimits
from .core.rules.zones import ZonesConfig
from .core.zones.segments import SegmentLimits


def rules_config(settings: Settings) -> RulesConfig:
    """The rules' configuration from the settings."""
    limits = RoadLimits(expressway_kmh=settings.speed_limit_expressway_kmh,
                        other_kmh=settings.speed_limit_other_kmh)
    response = ResponseConfig(responders_max=settings.responders_max,
                              road_factor=settings.responder_road_factor,
                              speed_kmh=settings.responder_speed_kmh)
    return RulesConfig(
        speeding=SpeedingConfig(
            limits=limits,
            min_duration_ms=_ms(settings.speeding_min_duration_s),
            max_gap_ms=_ms(settings.speeding_max_gap_s),
        ),
        zones=ZonesConfig(
            margin_m=settings.zone_margin_m,
            min_inside_ms=_ms(settings.zone_min_inside_s),
            min_outside_ms=_ms(settings.zone_min_outside_s),
            speeding_min_duration_ms=_ms(settings.speeding_min_duration_s),
            speeding_max_gap_ms=_ms(settings.speeding_max_gap_s),
            limits=limits,
            response=response,
        ),
        permits=PermitsConfig(
            required_pattern=settings.permit_required_pattern,
            min_moving_ms=_ms(settings.permit_min_moving_s),
            deviation_raise_ms=_ms(settings.route_deviation_raise_s),
            deviation_clear_ms=_ms(settings.route_deviation_clear_s),
            moving_kmh=settings.moving_kmh,
        ),
        handover=HandoverConfig(
            margin_m=settings.handover_margin_m,
            min_across_ms=_ms(settings.handover_min_across_s),
            notice_ms=_ms(settings.handover_notice_s),
            moving_kmh=settings.moving_kmh,
        ),
        fatigue=FatigueConfig(
            max_driving_ms=_ms(settings.fatigue_max_driving_s),
            min_rest_ms=_ms(settings.fatigue_min_rest_s),
            moving_kmh=settings.moving_kmh,
        ),
        stops=StopsConfig(
            max_stop_ms=_ms(settings.stop_max_s),
            max_stop_sensitive_ms=_ms(settings.stop_max_sensitive_s),
            moving_kmh=settings.moving_kmh,
        ),
        plausibility=PlausibilityConfig(max_speed_kmh=settings.implausible_speed_kmh),
        signal=SignalConfig(lost_after_ms=_ms(settings.signal_lost_s),
                            moving_kmh=settings.moving_kmh),
        device_alarm=response,
        lateness_ms=_ms(settings.lateness_s),
        history_horizon_ms=_ms(settings.history_horizon_s),
        segments=SegmentLimits(max_gap_ms=_ms(settings.segment_max_gap_s),
                               max_speed_kmh=settings.segment_max_speed_kmh),
    )


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
