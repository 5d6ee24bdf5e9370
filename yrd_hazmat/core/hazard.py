"""Hazard classes of dangerous goods (GB 6944-2012, the UN classes)."""

from __future__ import annotations

from typing import Final, Literal, get_args

HazardClass = Literal[
    "1", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "2", "2.1", "2.2", "2.3", "3",
    "4", "4.1", "4.2", "4.3", "5", "5.1", "5.2", "6", "6.1", "6.2", "7", "8", "9",
]
"""Every class and division a ban or a permit may name."""
CLASSES: Final = frozenset(get_args(HazardClass))

ALL: Final = "all"


def is_banned(cargo_class: str | None, banned: frozenset[str]) -> bool:
    """Whether cargo of ``cargo_class`` falls under a ban on ``banned`` classes.

    A class bans its divisions ("2" covers "2.3"); "all" bans every cargo.
    Unknown cargo (``None``) counts as banned whenever anything is: without a
    permit nobody can show the load is harmless.
    """
    if not banned:
        return False
    if ALL in banned or cargo_class is None:
        return True
    return cargo_class in banned or cargo_class.split(".")[0] in banned
