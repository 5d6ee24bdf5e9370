"""The vehicle register: which carrier each plate belongs to, so that every figure can be
given per carrier. Pure: fed the records of compacted topics, asked by plate.

Sources, the first that names one wins:

1. ``yrd.vehicle-terminals``: a carrier's own declaration of its vehicle (``carrier``);
2. ``yrd.permits``: the permit's ``carrier`` (the waybill's carrier);
3. ``yrd.platform-vehicles`` with ``yrd.platforms``: a vehicle a lower platform (a
   carrier's or a province's) registered over JT/T 809 belongs to that platform's name.

A plate any of them has a record of is registered (:meth:`Register.plates`); one none of
them names a carrier for has no carrier (``None``).
"""

from __future__ import annotations

import msgspec

_carrier = msgspec.json.Decoder(dict)


def _field(value: bytes | None, name: str) -> object | None:
    if value is None:
        return None
    try:
        doc = _carrier.decode(value)
    except (msgspec.DecodeError, ValueError):
        return None
    return doc.get(name) if isinstance(doc, dict) else None


def _plate(key: bytes | None) -> str | None:
    return key.decode("utf-8", "replace") if key else None


class Register:
    def __init__(self) -> None:
        self.declared: dict[str, str | None] = {}
        self.permitted: dict[str, str | None] = {}
        self.platform_of: dict[str, int | None] = {}
        self.platform_names: dict[int, str] = {}
        self.platform_provinces: dict[int, str] = {}

    def _set(self, table: dict, key: bytes | None, value: bytes | None, name: str) -> None:
        """A record of a source: its plate is registered (with the carrier it names, or
        none); a tombstone takes it out."""
        plate = _plate(key)
        if plate is None:
            return
        if value is None:
            table.pop(plate, None)
            return
        found = _field(value, name)
        table[plate] = found if isinstance(found, (str, int)) and found != "" else None

    def vehicle_terminal(self, key: bytes | None, value: bytes | None) -> None:
        """A ``yrd.vehicle-terminals`` record (key: plate)."""
        self._set(self.declared, key, value, "carrier")

    def permit(self, key: bytes | None, value: bytes | None) -> None:
        """A ``yrd.permits`` record (key: plate; null: revoked)."""
        self._set(self.permitted, key, value, "carrier")

    def platform_vehicle(self, key: bytes | None, value: bytes | None) -> None:
        """A ``yrd.platform-vehicles`` record (key: plate)."""
        self._set(self.platform_of, key, value, "platform")

    def platform(self, key: bytes | None, value: bytes | None) -> None:
        """A ``yrd.platforms`` record (key: access code)."""
        if key is None:
            return
        try:
            code = int(key)
        except ValueError:
            return
        name, province = _field(value, "name"), _field(value, "province")
        if isinstance(name, str) and name:
            self.platform_names[code] = name
        else:
            self.platform_names.pop(code, None)
        if isinstance(province, str) and province:
            self.platform_provinces[code] = province
        else:
            self.platform_provinces.pop(code, None)

    def platforms(self) -> dict[int, tuple[str, str | None]]:
        """The lower platforms: access code -> (name, province)."""
        return {code: (name, self.platform_provinces.get(code))
                for code, name in sorted(self.platform_names.items())}

    def carrier(self, plate: str) -> str | None:
        found = self.declared.get(plate) or self.permitted.get(plate)
        if found:
            return str(found)
        code = self.platform_of.get(plate)
        return self.platform_names.get(code) if isinstance(code, int) else None

    def plates(self) -> list[str]:
        """Every registered plate (a source names it), sorted."""
        return sorted(set(self.declared) | set(self.permitted) | set(self.platform_of))

    def __len__(self) -> int:
        return len(self.plates())
