"""A month's figures kept with the archive, so that the desk shows the report without
computing it again: ``reports/month=YYYY-MM/figures.json`` (everything but the per-vehicle
table) and ``vehicles.parquet`` (that table), written by ``yrd-hazmat assess``."""

from __future__ import annotations

import re
from datetime import date, datetime

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from ..archive.store import Store
from .figures import Bounds, Figures

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _dir(month: str) -> str:
    if not MONTH.match(month):
        raise ValueError(f"{month!r} is not a month (YYYY-MM)")
    return f"reports/month={month}"


def save(store: Store, figures: Figures) -> None:
    doc = {"month": figures.month, "start": figures.start, "end": figures.end,
           "bounds": vars(figures.bounds), "rows": figures.rows, "daily": figures.daily,
           "violations": figures.violations, "registered_at": figures.registered_at,
           "links": figures.links}
    store.put_table(f"{_dir(figures.month)}/vehicles.parquet", figures.vehicles)
    store.put(f"{_dir(figures.month)}/figures.json", msgspec.json.encode(doc))


def months(store: Store) -> list[str]:
    """The months with figures kept, newest first."""
    found = [name[6:] for name in store.dirs("reports") if name.startswith("month=")]
    return sorted((m for m in found if MONTH.match(m)), reverse=True)


def load(store: Store, month: str) -> Figures | None:
    raw = store.get(f"{_dir(month)}/figures.json")
    if raw is None:
        return None
    doc = msgspec.json.decode(raw)
    vehicles_raw = store.get(f"{_dir(month)}/vehicles.parquet")
    vehicles = pq.read_table(pa.BufferReader(vehicles_raw)) if vehicles_raw is not None \
        else pa.table({"vehicle_id": pa.array([], pa.string())})
    for d in doc["daily"]:
        d["day"] = date.fromisoformat(d["day"])
    for v in doc["violations"]:
        v["ts"] = datetime.fromisoformat(v["ts"])
    return Figures(month=doc["month"], start=datetime.fromisoformat(doc["start"]),
                   end=datetime.fromisoformat(doc["end"]), bounds=Bounds(**doc["bounds"]),
                   vehicles=vehicles, rows=doc["rows"], daily=doc["daily"],
                   violations=doc["violations"],
                   registered_at=date.fromisoformat(doc["registered_at"])
                   if doc["registered_at"] else None, links=doc.get("links", []))
