"""Terminal profiles: what a maker's additional items 0xE0-0xFF of a 0x0200 mean.

JT/T 808 leaves items 0xE0-0xFF to each terminal maker, and makers disagree: one maker's
1-byte 0xE1 is a tank-leak sensor, another's the battery level. An item means something
only under the profile of the terminal that sent it; with no profile, the gateway keeps
it raw (``Ping.raw_items``) instead of guessing.

A profile is chosen per vehicle (:func:`select`): the carrier's declaration of the
vehicle's terminal (``yrd.vehicle-terminals``: a profile name, or maker and model)
overrides what the terminal said of itself in its registration (0x0100 maker id and
model). docs/terminal-profiles.md says how to add one.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ..core.models import Terminal, VehicleTerminal

MAKER_ITEMS = range(0xE0, 0x100)
"""The additional item ids JT/T 808 leaves to the terminal maker."""


class ItemDecoder(msgspec.Struct, frozen=True):
    """One maker item a profile reads: the item id and size it must have, the name its
    value gets in ``Ping.alarm_extra``, and how its bytes are read (big-endian)."""

    item: int
    size: int
    field: str
    read: Literal["unsigned", "signed"] = "unsigned"

    def value(self, data: bytes) -> int:
        return int.from_bytes(data, "big", signed=self.read == "signed")


class Profile(msgspec.Struct, frozen=True, kw_only=True):
    """A terminal model's maker items. ``maker`` and ``model_prefix`` match the 0x0100
    registration (maker id exactly, model by its start); a profile without ``maker`` is
    chosen only by a carrier's declaration of its name."""

    name: str
    maker: str | None = None
    model_prefix: str = ""
    items: tuple[ItemDecoder, ...]

    def decoder(self, item: int, size: int) -> ItemDecoder | None:
        """The decoder of this item id at this size (another size is not this layout)."""
        for decoder in self.items:
            if decoder.item == item and decoder.size == size:
                return decoder
        return None

    def matches(self, maker: str, model: str) -> bool:
        return (self.maker is not None and self.maker.upper() == maker.strip().upper()
                and model.strip().upper().startswith(self.model_prefix.upper()))


PROFILES: tuple[Profile, ...] = (
    # The project's hazmat tank terminal (and the simulated terminals, which register as
    # maker "YRD", model "SIM-808"): 1-byte 0xE1 is the tank's leak sensor, non-zero while
    # it detects a leak (a critical DEVICE_ALARM in the worker).
    Profile(name="yrd-tank-sensor", maker="YRD", model_prefix="SIM-808",
            items=(ItemDecoder(0xE1, 1, "tank_leak"),)),
    # Trackers whose 1-byte 0xE1 is the battery level in percent (0xFF: charging).
    # Layout from Traccar's Jt808ProtocolDecoder (0xD4/0xE1/0xE9 of one byte: battery
    # level) and the captured frame of its Jt808ProtocolDecoderTest added in commit
    # 5da3b8fcb "Decode 808 battery level" (item e1 01 2d: 45 %). The frame names no
    # maker, so this profile is chosen by a carrier's declaration only.
    Profile(name="tracker-battery-e1",
            items=(ItemDecoder(0xE1, 1, "battery_pct"),)),
)

_BY_NAME = {profile.name: profile for profile in PROFILES}


def by_name(name: str) -> Profile | None:
    return _BY_NAME.get(name)


def matching(maker: str, model: str) -> Profile | None:
    """The profile of a maker and model: the one with the longest matching model prefix."""
    found = [p for p in PROFILES if p.matches(maker, model)]
    return max(found, key=lambda p: len(p.model_prefix)) if found else None


def select(declared: VehicleTerminal | None, terminal: Terminal | None) -> Profile | None:
    """The profile that reads a vehicle's maker items. A carrier's declaration wins over
    the terminal's registration, also when it names no profile we know: the carrier knows
    what is fitted, so its items stay raw rather than be read with the wrong layout."""
    if declared is not None and declared.profile is not None:
        return by_name(declared.profile)
    if declared is not None and declared.maker is not None:
        return matching(declared.maker, declared.model or "")
    if terminal is not None:
        return matching(terminal.maker, terminal.model)
    return None
