"""Settings meant for every rule reach every rule (one place turns settings into rules)."""

from __future__ import annotations

from yrd_hazmat.config import Settings
from yrd_hazmat.core.rules.thresholds import MOVING_KMH, SPEEDING_MAX_GAP_MS
from yrd_hazmat.rules_config import rules_config


def _moving(cfg) -> dict[str, float]:
    return {"permits": cfg.permits.moving_kmh, "stops": cfg.stops.moving_kmh,
            "fatigue": cfg.fatigue.moving_kmh, "signal": cfg.signal.moving_kmh,
            "handover": cfg.handover.moving_kmh}


def test_defaults_are_the_shared_thresholds():
    cfg = rules_config(Settings(_env_file=None))
    assert set(_moving(cfg).values()) == {MOVING_KMH}
    assert cfg.speeding.max_gap_ms == cfg.zones.speeding_max_gap_ms == SPEEDING_MAX_GAP_MS


def test_one_setting_moves_every_rule():
    cfg = rules_config(Settings(_env_file=None, moving_kmh=8, speeding_max_gap_s=120))
    assert set(_moving(cfg).values()) == {8.0}
    assert cfg.speeding.max_gap_ms == cfg.zones.speeding_max_gap_ms == 120_000


def test_the_legal_limits_are_one_setting_for_speeding_and_zone_speeding():
    cfg = rules_config(Settings(_env_file=None, speed_limit_expressway_kmh=70,
                                speed_limit_other_kmh=50))
    assert cfg.speeding.limits == cfg.zones.limits
    assert (cfg.zones.limits.limit_for("expressway"), cfg.zones.limits.limit_for("other")) == (70, 50)
