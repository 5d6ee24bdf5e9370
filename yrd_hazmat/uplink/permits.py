"""The trucks' permits as the uplink needs them (``yrd.permits``, key = plate): who drives
(DOWN_EXG_MSG_REPORT_DRIVER_INFO 0x920A is answered with UP_EXG_MSG_REPORT_DRIVER_INFO_ACK
0x120A; a new or changed driver goes up unasked as UP_EXG_MSG_REPORT_DRIVER_INFO 0x120C)
and the electronic waybill (DOWN_EXG_MSG_TAKE_EWAYBILL_REQ 0x920B is answered with
UP_EXG_MSG_TAKE_EWAYBILL_ACK 0x120B) and its static information (DOWN_BASE_MSG_VEHICLE_ADDED
0x9601 is answered with UP_BASE_MSG_VEHICLE_ADDED_ACK 0x1601: VEHICLE_COLOR, TRANS_TYPE 030
dangerous goods, OWERS_NAME the carrier). Pure: no Kafka, no clock.

The waybill's text is the permit's waybill fields as ``KEY:=VALUE`` pairs separated by
``;`` (the form of JT/T 809's CAR_INFO), e.g. ``WAYBILL_ID:=WB-1;UN:=UN1017;...``.
"""

from __future__ import annotations

import msgspec

from ..core.permits.model import Permit
from ..jt809.exchange import Driver
from ..jt809.static import static_text

_decoder = msgspec.json.Decoder(Permit)
TRANS_TYPE = "030"
"""JT/T 809 CAR_INFO TRANS_TYPE of road transport of dangerous goods."""

WAYBILL_FIELDS = (("WAYBILL_ID", "waybill_id"), ("PERMIT_ID", "permit_id"),
                  ("UN", "un_number"), ("CLASS", "hazard_class"), ("CARGO", "cargo_name"),
                  ("QUANTITY_KG", "quantity_kg"), ("PACKING_GROUP", "packing_group"),
                  ("CONSIGNOR", "consignor"), ("CONSIGNEE", "consignee"),
                  ("CARRIER", "carrier"), ("ORIGIN", "origin"),
                  ("DESTINATION", "destination"), ("DRIVER_ID", "driver_id"),
                  ("DRIVER_NAME", "driver_name"), ("ESCORT_ID", "escort_id"),
                  ("VALID_FROM", "valid_from"), ("VALID_UNTIL", "valid_until"))


def driver_of(permit: Permit) -> Driver | None:
    """Who drives under ``permit`` (None: the permit names nobody)."""
    if not (permit.driver_name or permit.driver_id or permit.driver_licence):
        return None
    return Driver(name=permit.driver_name or "", driver_id=permit.driver_id or "",
                  licence=permit.driver_licence or "", org=permit.driver_licence_issuer or "",
                  valid_until=permit.driver_licence_until)


def waybill_of(permit: Permit) -> str:
    pairs = []
    for key, name in WAYBILL_FIELDS:
        value = getattr(permit, name)
        if value is None or value == "":
            continue
        text = value.isoformat() if hasattr(value, "isoformat") else str(value)
        pairs.append(f"{key}:={text.replace(';', ',')}")
    return ";".join(pairs)


class Permits:
    def __init__(self) -> None:
        self.by_plate: dict[str, Permit] = {}
        self.live = False
        """Set once the topic has been read to its end: drivers seen after that are new."""
        self._changed: list[tuple[str, Driver]] = []

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """A ``yrd.permits`` record (a null value: revoked; one that does not decode: kept
        out, as the worker keeps it out)."""
        if key is None:
            return
        plate = key.decode("utf-8", "replace")
        before = self.by_plate.get(plate)
        if value is None:
            self.by_plate.pop(plate, None)
            return
        try:
            permit = _decoder.decode(value)
        except (msgspec.DecodeError, ValueError):
            return
        self.by_plate[plate] = permit
        driver = driver_of(permit)
        if self.live and driver is not None and \
                (before is None or driver_of(before) != driver):
            self._changed.append((plate, driver))

    def driver(self, plate: str) -> Driver | None:
        permit = self.by_plate.get(plate)
        return driver_of(permit) if permit is not None else None

    def waybill(self, plate: str) -> str | None:
        permit = self.by_plate.get(plate)
        return waybill_of(permit) if permit is not None else None

    def static_info(self, plate: str, colour: int) -> str:
        """CAR_INFO of a truck: what the platform knows of it (its permit's carrier)."""
        permit = self.by_plate.get(plate)
        fields: dict[str, object] = {"VEHICLE_COLOR": colour, "TRANS_TYPE": TRANS_TYPE}
        if permit is not None and permit.carrier:
            fields["OWERS_NAME"] = permit.carrier.replace(";", ",")
        return static_text(fields)

    def changed(self) -> list[tuple[str, Driver]]:
        """Drivers new or changed since the last call (to report with 0x120C)."""
        out, self._changed = self._changed, []
        return out
