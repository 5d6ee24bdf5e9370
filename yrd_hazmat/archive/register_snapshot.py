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


def path(day: date) -> str:
    return f"register/day={day.isoformat()}/register.parquet"


def write(store: Store, register: Register, day: date) -> int:
    plates = register.plates()
    table = pa.table({"vehicle_id": plates, "carrier": [register.carrier(p) for p in plates]},
                     schema=SCHEMA)
    store.put_table(path(day), table)
    return len(plates)


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
