"""The monthly assessment on the desk (月度考核): the reports ``yrd-hazmat assess`` kept
with the archive (:mod:`yrd_hazmat.assess.stored`), as the same self-contained page. The
region's users see the whole report; a province's users the rows of their province (its
cities, its days and violations, the region's headline for comparison); a carrier's
account its own row and violations (and nothing else of the desk)."""

from __future__ import annotations

from ..archive.store import Store
from ..assess import report, stored
from .users import CARRIER, REGION, User


def months(store: Store) -> list[str]:
    return stored.months(store)


def page(store: Store, month: str, user: User) -> str | None:
    """The month's page for ``user`` (None: no report kept for that month). ValueError:
    not a month."""
    figures = stored.load(store, month)
    if figures is None:
        return None
    kept = f"yrd-hazmat assess, kept {figures.end:%Y-%m-%d}" if figures.end else None
    if user.jurisdiction == CARRIER:
        return report.html(figures, carrier=user.carrier, generated_at=kept)
    provinces = None if user.jurisdiction == REGION else {user.jurisdiction}
    return report.html(figures, provinces=provinces, generated_at=kept)
