"""The vehicle register: which carrier each plate belongs to, so that every figure can be
given per carrier. Pure: fed the records of compacted topics, asked by plate.

Sources, the first that names one wins:

1. ``yrd.vehicle-terminals``: a carrier's own declaration of its vehicle (``carrier``);
2. ``yrd.permits``: the permit's ``carrier`` (the waybill's carrier);
3. ``yrd.platform-vehicles`` with ``yrd.platforms``: a vehicle a lower platform (a
   carrier's or a province's) registered over JT/T 809 belongs to that platform's name.

A plate none of them names has no carrier (``None``).
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
        self.declared: dict[str, str] = {}
        self.permitted: dict[str, str] = {}
        self.platform_of: dict[str, int] = {}
        self.platform_names: dict[int, str] = {}

    def _set(self, table: dict, key: bytes | None, value: object | None) -> None:
        plate = _plate(key)
        if plate is None:
            return
        if isinstance(value, (str, int)) and value != "":
            table[plate] = value
        else:
            table.pop(plate, None)

    def vehicle_terminal(self, key: bytes | None, value: bytes | None) -> None:
        """A ``yrd.vehicle-terminals`` record (key: plate)."""
        self._set(self.declared, key, _field(value, "carrier"))

    def permit(self, key: bytes | None, value: bytes | None) -> None:
        """A ``yrd.permits`` record (key: plate; null: revoked)."""
        self._set(self.permitted, key, _field(value, "carrier"))

    def platform_vehicle(self, key: bytes | None, value: bytes | None) -> None:
        """A ``yrd.platform-vehicles`` record (key: plate)."""
        self._set(self.platform_of, key, _field(value, "platform"))

    def platform(self, key: bytes | None, value: bytes | None) -> None:
        """A ``yrd.platforms`` record (key: access code)."""
        if key is None:
            return
        try:
            code = int(key)
        except ValueError:
            return
        name = _field(value, "name")
        if isinstance(name, str) and name:
            self.platform_names[code] = name
        else:
            self.platform_names.pop(code, None)

    def carrier(self, plate: str) -> str | None:
        found = self.declared.get(plate) or self.permitted.get(plate)
        if found:
            return found
        code = self.platform_of.get(plate)
        return self.platform_names.get(code) if code is not None else None

    def __len__(self) -> int:
        return len(set(self.declared) | set(self.permitted) | set(self.platform_of))
