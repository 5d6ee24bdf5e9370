"""Thresholds that mean the same thing in every rule, defined once.

The rules take them as the defaults of their configuration; the settings
(``YRD_MOVING_KMH``, ``YRD_SPEEDING_MAX_GAP_S``) set them for all rules at once
in :func:`yrd_hazmat.rules_config.rules_config`.
"""

from __future__ import annotations

MOVING_KMH = 5.0
"""At or above this GNSS speed a truck is moving; below it, standing (a receiver at rest
reports a few km/h of noise). Used by the permit, stop, fatigue, signal and handover rules."""

SPEEDING_MAX_GAP_MS = 5 * 60_000
"""A gap between pings longer than this restarts a speeding count (nothing is known of the
speed in between): for SPEEDING and ZONE_SPEEDING alike."""
