"""Alerts on a terminal: a jurisdiction filter and a readable line per alert."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
from rich.console import Console
from rich.text import Text

from .core.codec import decode_alert, encode
from .core.models import Alert

_STYLE = {"info": "cyan", "warning": "yellow", "critical": "bold red"}


class AlertFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which alerts a desk wants: empty fields match everything."""

    provinces: frozenset[str] = frozenset()
    city_codes: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()

    def matches(self, alert: Alert) -> bool:
        city = alert.city.code if alert.city else None
        return (
            (not self.provinces or (alert.province or "none") in self.provinces)
            and (not self.city_codes or city in self.city_codes)
            and (not self.severities or alert.severity.value in self.severities)
            and (not self.types or alert.type in self.types)
        )


def render_line(alert: Alert) -> Text:
    """One alert as a fixed-column line: time, severity, state, type, vehicle, place, details."""
    place = alert.province or "--"
    if alert.city:
        place = f"{place} {alert.city.name}"
    details = _details(alert.details)
    line = Text()
    line.append(alert.ts.strftime("%m-%d %H:%M:%S "), style="dim")
    line.append(f"{alert.severity.value.upper():8} ", style=_STYLE[alert.severity.value])
    line.append(f"{alert.state.value:7} ", style="green" if alert.state.value == "cleared" else "")
    line.append(f"{alert.type:18} ", style="bold")
    line.append(f"{alert.vehicle_id:10} ")
    line.append(f"{place:12} ")
    line.append(f"({alert.lat:.4f}, {alert.lon:.4f}) ", style="dim")
    line.append(details, style="dim")
    return line


def _details(details: dict[str, Any]) -> str:
    """``k=v`` pairs; an emergency's long lists (responders, exposure) in short."""
    if not details.get("emergency"):
        return ", ".join(f"{k}={v}" for k, v in details.items())
    short = {k: v for k, v in details.items()
             if k not in ("emergency", "responders", "hospital", "exposure",
                          "responders_cross_border", "isolation_basis", "bit")}
    text = "EMERGENCY " + ", ".join(f"{k}={v}" for k, v in short.items() if v is not None)
    responders = details.get("responders") or []
    if responders:
        text += "; responders: " + "; ".join(
            f"{r['name']} ({r['province']}{', cross-border' if r['crosses_border'] else ''}) "
            f"{r['distance_km']} km {r['eta_min']:.0f} min" for r in responders[:3])
    exposure = details.get("exposure") or {}
    trucks = exposure.get("trucks")
    text += (f"; exposed within {exposure.get('radius_m')} m: "
             f"{len(exposure.get('zones') or [])} zone(s), "
             + (f"{len(trucks)} truck(s)" if trucks is not None else "trucks unknown"))
    return text


async def follow_alerts(
    kafka: dict[str, Any],
    topic: str,
    alert_filter: AlertFilter,
    *,
    as_json: bool = False,
    from_beginning: bool = False,
    stop_after: int | None = None,
    emit: Callable[[str | Text], None] | None = None,
) -> int:
    """Print matching alerts as they arrive until cancelled; returns how many were shown.

    ``kafka`` holds the client's connection options (``Settings.kafka_options()``).
    """
    from aiokafka import AIOKafkaConsumer

    console = Console(highlight=False, soft_wrap=True)
    out = emit or (lambda item: console.print(item) if isinstance(item, Text) else print(item, flush=True))
    consumer = AIOKafkaConsumer(
        topic,
        **kafka,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await consumer.start()
    shown = 0
    try:
        async for record in consumer:
            try:
                alert = decode_alert(record.value)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue  # not ours to judge: the topic's producers own its contract
            if not alert_filter.matches(alert):
                continue
            out(encode(alert).decode("utf-8") if as_json else render_line(alert))
            shown += 1
            if stop_after is not None and shown >= stop_after:
                break
    except asyncio.CancelledError:
        pass
    finally:
        await consumer.stop()
    return shown


def ledger_tables(month: str, pairs: list, provinces: list) -> None:
    """The ledger as two tables: per province pair (giver -> receiver), and each province's
    balance across borders."""
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=f"Emergency responses {month}: per province pair (giver → receiver)")
    for column in ("giver", "receiver", "incidents", "responses", "resource-hours", "still open"):
        table.add_column(column, justify="left" if column in ("giver", "receiver") else "right")
    for row in pairs:
        table.add_row(row.giver, row.receiver + (" (own)" if row.giver == row.receiver else ""),
                      str(row.incidents), str(row.responses), f"{row.resource_hours:.2f}",
                      str(row.open_responses))
    console.print(table)
    balance = Table(title="Across borders: resource-hours given and received")
    for column in ("province", "incidents", "responses given", "responses received",
                   "hours given", "hours received", "net"):
        balance.add_column(column, justify="left" if column == "province" else "right")
    for row in provinces:
        balance.add_row(row.province, str(row.incidents), str(row.responses_given),
                        str(row.responses_received), f"{row.hours_given:.2f}",
                        f"{row.hours_received:.2f}", f"{row.net_hours:+.2f}")
    console.print(balance)
