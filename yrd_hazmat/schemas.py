"""JSON Schema (2020-12) of every topic, generated from :mod:`yrd_hazmat.core.models`."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import msgspec

from .config import Settings
from .core.models import (
    Alert, Command, CommandResult, DeadLetter, Handover, IncidentCommand, IncidentLog, Media, Ping,
    Resource, Terminal, VehicleTerminal,
)
from .core.permits.model import Permit
from .core.zones.model import ZoneFeature
from .gateway.platform_records import TOPICS as _RECORD_TOPICS
from .gateway.platform_requests import TOPICS as _REQUEST_TOPICS
from .accounts import Account
from .audit import AuditEntry
from .link_states import LinkState
from .notify.deadlines import Deadline
from .notify.deliveries import Delivery
from .notify.subscriptions import Subscription
from .uplink.records import TOPICS as _UPLINK_TOPICS

PLATFORM_TOPICS = _RECORD_TOPICS | _REQUEST_TOPICS | _UPLINK_TOPICS | {
    "link_states": (LinkState, "platform:<access code>@<gateway> or uplink@<uplink>; "
                               "compacted: each reporter's latest word on its links")}

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

TOPICS: dict[str, str] = {
    suffix: Settings.model_fields[f"topic_{suffix}"].default
    for suffix in ("pings", "alerts", "deadletter", "permits", "zones", "handovers", "terminals", "incidents",
                   "incident_actions", "resources", "vehicle_terminals", "commands",
                   "command_results", "media", "subscriptions", "notifications", "deadlines", "desk_users", "audit",
                   *PLATFORM_TOPICS)
}
"""Settings suffix -> default topic name, as the settings define it (the file is
``schemas/<name>.schema.json``)."""

TOPIC_MODELS: dict[str, type[msgspec.Struct]] = {
    "pings": Ping, "alerts": Alert, "deadletter": DeadLetter, "zones": ZoneFeature,
    "permits": Permit, "handovers": Handover, "terminals": Terminal,
    "incidents": IncidentLog,
    "incident_actions": IncidentCommand,
    "resources": Resource,
    "vehicle_terminals": VehicleTerminal,
    "commands": Command,
    "command_results": CommandResult,
    "media": Media,
    "subscriptions": Subscription,
    "notifications": Delivery,
    "deadlines": Deadline,
    "desk_users": Account,
    "audit": AuditEntry,
    **{suffix: model for suffix, (model, _) in PLATFORM_TOPICS.items()},
}
"""Topic (settings suffix) -> the struct that is its value schema."""

_KEY = "UTF-8 vehicle id (licence plate), the partitioning key"
_KEYS = {
    "zones": "zone id (equal to properties.zone_id); compacted, a null value deletes the zone",
    "permits": "vehicle id (equal to vehicle_id); compacted, a null value revokes the permit",
    "terminals": "terminal phone number (equal to terminal); compacted, a null value "
                 "deregisters the terminal",
    "incidents": "incident id (equal to incident_id); compacted: the latest record holds "
                 "every action on the incident",
    "incident_actions": "incident id (equal to incident_id): one keeper per incident "
                        "applies them in order",
    "resources": "resource id (equal to resource_id); compacted, a null value removes it",
    "vehicle_terminals": "vehicle id (equal to vehicle_id); compacted, a null value removes "
                         "the declaration",
    "media": "media id (equal to media_id)",
    "subscriptions": "subscription id (equal to subscription_id); compacted, a null value "
                     "removes it",
    "desk_users": "the account's name (equal to name); compacted, a null value removes it",
    "audit": "the user's name",
    "deadlines": "TYPE:severity (equal to alert_type:severity, either may be *); compacted, a "
                 "null value removes the line",
    "notifications": "delivery id (equal to delivery_id); compacted: each delivery's latest "
                     "state, kept 30 days",
    **{suffix: key for suffix, (_, key) in PLATFORM_TOPICS.items()},
}
def topic_schema(suffix: str) -> dict[str, Any]:
    """The schema document of one topic's value."""
    name = TOPICS[suffix]
    model = TOPIC_MODELS[suffix]
    head: dict[str, Any] = {"$schema": DIALECT, "$id": f"urn:yrd-hazmat:topic:{name}", "title": name}
    generated = _clean(msgspec.json.schema(model))
    head["description"] = inspect.cleandoc(model.__doc__ or "")
    head["x-kafka-key"] = _KEYS.get(suffix, _KEY)
    return head | generated


def _clean(node: Any) -> Any:
    """Every ``description`` with its docstring indentation removed (``inspect.cleandoc``),
    whatever msgspec's version leaves there (0.23 cleans them, 0.22 did not)."""
    if isinstance(node, dict):
        return {k: inspect.cleandoc(v) if k == "description" and isinstance(v, str) else _clean(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def render(suffix: str) -> str:
    return json.dumps(topic_schema(suffix), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def path_for(suffix: str, directory: Path = SCHEMA_DIR) -> Path:
    return directory / f"{TOPICS[suffix]}.schema.json"


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    """(Re)generate every schema file."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in TOPICS:
        path = path_for(suffix, directory)
        path.write_text(render(suffix), encoding="utf-8")
        written.append(path)
    return written


def stale(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Schema files that differ from what the models generate."""
    return [
        path_for(suffix, directory)
        for suffix in TOPICS
        if not path_for(suffix, directory).exists()
        or path_for(suffix, directory).read_text(encoding="utf-8") != render(suffix)
    ]
