"""The vehicle register kept with the archive, so that a month can be assessed from the
archive alone: ``register/day=YYYY-MM-DD/register.parquet`` (vehicle_id, carrier), the
register as the archiver knew it that day (written at each upkeep, the day's last one
holds). The assessment of a month takes the last snapshot of the month."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq

from ..register import Register
from .store import Store

SCHEMA = pa.schema([pa.field("vehicle_id", pa.string()), pa.field("carrier", pa.string())])
PLATFORMS = pa.schema([pa.field("access_code", pa.int64()), pa.field("name", pa.string()),
                       pa.field("province", pa.string())])


def path(day: date) -> str:
    return f"register/day={day.isoformat()}/register.parquet"


def platforms_path(day: date) -> str:
    return f"register/day={day.isoformat()}/platforms.parquet"


def write(store: Store, register: Register, day: date) -> int:
    """The register's vehicles (and its lower platforms: name, province) as of ``day``."""
    plates = register.plates()
    table = pa.table({"vehicle_id": plates, "carrier": [register.carrier(p) for p in plates]},
                     schema=SCHEMA)
    known = register.platforms()
    store.put_table(platforms_path(day), pa.table(
        {"access_code": list(known), "name": [n for n, _ in known.values()],
         "province": [p for _, p in known.values()]}, schema=PLATFORMS))
    store.put_table(path(day), table)
    return len(plates)


def read_platforms(store: Store, day: date | None) -> dict[int, tuple[str, str | None]]:
    """The lower platforms of the snapshot of ``day`` (from :func:`read`): access code ->
    (name, province)."""
    raw = store.get(platforms_path(day)) if day is not None else None
    if raw is None:
        return {}
    table = pq.read_table(pa.BufferReader(raw))
    return {code: (name, province) for code, name, province in zip(
        table["access_code"].to_pylist(), table["name"].to_pylist(),
        table["province"].to_pylist())}


def read(store: Store, until: date) -> tuple[date | None, dict[str, str | None]]:
    """The last snapshot on or before ``until`` (its day, plate -> carrier); none: (None,
    {})."""
    days = []
    for name in store.dirs("register"):
        if name.startswith("day="):
            try:
                day = date.fromisoformat(name[4:])
            except ValueError:
                continue
            if day <= until:
                days.append(day)
    for day in sorted(days, reverse=True):
        raw = store.get(path(day))
        if raw is None:
            continue
        table = pq.read_table(pa.BufferReader(raw))
        return day, dict(zip(table["vehicle_id"].to_pylist(), table["carrier"].to_pylist()))
    return None, {}
