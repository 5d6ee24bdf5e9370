"""IMPLAUSIBLE_JUMP: a fix no truck could have reached from the previous one.

Such a ping is a data-quality event: it is reported (info, momentary) and
does not move the truck for the other rules. If the next fix agrees with the
suspect one rather than with the last good one, the truck really is there
(e.g. the earlier fixes were the bad ones) and it is accepted. Only a later
fix confirms: the same fix delivered twice is a duplicate, not a confirmation.
"""

from __future__ import annotations

import math

import msgspec

from ..models import Alert, AlertType, Severity
from ..observation import Observation
from . import incident
from .context import StepContext
from .incident import Kind
from .rule import Rule

TYPE = AlertType.IMPLAUSIBLE_JUMP
KIND = Kind(alert_type=TYPE, severity=Severity.INFO)


class PlausibilityConfig(msgspec.Struct, frozen=True, kw_only=True):
    max_speed_kmh: float = 200.0
    min_jump_m: float = 500.0
    """Shorter jumps are GPS noise, whatever speed they imply over a tiny interval."""

    def implausible(self, a: Observation, b: Observation) -> tuple[bool, float, float]:
        """Whether going from ``a`` to ``b`` is impossible; with the distance and implied speed."""
        metres = math.hypot(b.x_m - a.x_m, b.y_m - a.y_m)
        seconds = max((b.ts_ms - a.ts_ms) / 1000, 1e-3)
        kmh = metres / seconds * 3.6
        return metres > self.min_jump_m and kmh > self.max_speed_kmh, metres, kmh


def step(
    suspect: Observation | None,
    obs: Observation,
    ctx: StepContext,
    cfg: PlausibilityConfig,
) -> tuple[Observation | None, list[Alert]]:
    """(suspect, alerts): with an alert, ``obs`` is the new suspect and must not move the
    truck; without one, no fix is suspect."""
    previous = ctx.previous
    if previous is None:
        return None, []
    bad, metres, kmh = cfg.implausible(previous, obs)
    if not bad or _confirms(suspect, obs, cfg):
        return None, []
    return obs, [incident.momentary(ctx, KIND, obs, {
        "jump_m": round(metres, 1), "implied_speed_kmh": round(kmh, 1),
        "from": [round(previous.lon, 6), round(previous.lat, 6)],
        "max_speed_kmh": cfg.max_speed_kmh,
    })]


def _confirms(suspect: Observation | None, obs: Observation, cfg: PlausibilityConfig) -> bool:
    """Whether ``obs`` is a *later* fix agreeing with the suspect one (a real relocation).

    A fix at the suspect's own time is the same fix delivered again, never its
    own confirmation (the engine counts it as a duplicate before it gets here).
    """
    return (suspect is not None and obs.ts_ms > suspect.ts_ms
            and not cfg.implausible(suspect, obs)[0])


RULE = Rule(name="plausibility", state_field="suspect", state=Observation | None,
            new_state=lambda: None, config=PlausibilityConfig, raises=(TYPE,), step=step,
            gate=True)
"""A gate: a fix that jumped implausibly far is reported and goes no further (the rules
after this one do not see it, and it does not move the truck)."""
