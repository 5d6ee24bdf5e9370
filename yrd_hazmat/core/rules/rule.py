"""The rule protocol: what a rule declares, and what the engine calls.

A rule is one module in ``rules/`` that ends with a :class:`Rule`::

    RULE = Rule(name="fatigue", state=FatigueState, config=FatigueConfig,
                raises=(AlertType.FATIGUE_DRIVING,), step=step,
                open_incidents=incident_of)

- ``step(state, obs, ctx, cfg) -> (state, alerts)`` advances the rule's own
  per-vehicle state by one observation (in event-time order), with the shared
  :class:`~.context.StepContext` and the rule's own configuration;
- ``state`` is its per-vehicle state (a msgspec struct kept in the vehicle's
  changelog record under ``state_field``, by default the rule's name);
- ``config`` its configuration (a frozen struct with defaults, kept in
  :class:`~yrd_hazmat.core.engine.RulesConfig` under the rule's name; the settings
  fill it in :mod:`yrd_hazmat.rules_config`);
- ``raises`` the alert types it raises;
- optionally ``silence``/``due`` for a rule that fires on the absence of pings
  (the worker's timer asks ``due``, then runs ``silence``), and ``gate=True``
  for a rule whose alert means the ping must not move the truck: the rules
  after it do not see that ping.

Adding a rule: README.md, "Adding a rule"; its line in :data:`yrd_hazmat.core.ruleset.RULES`
states the order the rules run in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..models import Alert, AlertType
from ..observation import Observation
from .context import StepContext

S = TypeVar("S")
C = TypeVar("C")


def no_incidents(state: Any) -> list[str]:
    """For rules whose alerts are momentary (never open)."""
    return []


def incident_of(state: Any) -> list[str]:
    """For a state with one ``incident`` field (its open incident's id, or None)."""
    return [state.incident] if state.incident is not None else []


@dataclass(frozen=True, slots=True)
class Rule(Generic[S, C]):
    name: str
    state: Any
    """The state's type (the changelog's codec decodes it)."""
    raises: tuple[AlertType, ...]
    step: Callable[[S, Observation, StepContext, C], tuple[S, list[Alert]]]
    config: Callable[[], C] | None = None
    """The configuration's type, whose defaults are the rule's defaults (None: nothing to set)."""
    new_state: Callable[[], S] | None = None
    """A fresh state (default: ``state()``)."""
    state_field: str = ""
    """The vehicle state's field holding this rule's state (default: ``name``)."""
    open_incidents: Callable[[S], list[str]] = no_incidents
    gate: bool = False
    due: Callable[[S, Observation, int, StepContext, C], bool] | None = None
    """Whether, at clock time ``now_ms``, silence since the last observation calls for
    :attr:`silence` (the worker's timer asks it for every vehicle)."""
    silence: Callable[[S, Observation, int, StepContext, C], tuple[S, list[Alert]]] | None = None
    """The rule's step when no ping arrived: (state, last observation, now_ms, ctx, cfg)."""

    def __post_init__(self) -> None:
        if not self.state_field:
            object.__setattr__(self, "state_field", self.name)

    @property
    def field(self) -> str:
        """The vehicle state's field holding this rule's state."""
        return self.state_field

    def fresh(self) -> S:
        return self.new_state() if self.new_state is not None else self.state()
