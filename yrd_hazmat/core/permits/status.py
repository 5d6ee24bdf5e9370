"""A vehicle's permit as the rules see it: the latest permit record and its revocation."""

from __future__ import annotations

from typing import Literal

import msgspec

from .model import CompiledPermit, Permit

Validity = Literal["ok", "none", "revoked", "not_yet_valid", "expired"]


class PermitStatus(msgspec.Struct, frozen=True, kw_only=True):
    permit: CompiledPermit | None = None
    revoked_at_ms: int | None = None
    """Record time of the tombstone that revoked ``permit`` (pings before it are covered)."""

    @property
    def document(self) -> Permit | None:
        """The permit as published (cargo, crew, provinces), if the vehicle has one."""
        return self.permit.permit if self.permit is not None else None

    def validity(self, ts_ms: int) -> Validity:
        """Whether the permit is in force at event time ``ts_ms``, and if not, why."""
        permit = self.permit
        if permit is None:
            return "none"
        if self.revoked_at_ms is not None and ts_ms >= self.revoked_at_ms:
            return "revoked"
        if ts_ms < permit.valid_from_ms:
            return "not_yet_valid"
        if ts_ms > permit.valid_until_ms:
            return "expired"
        return "ok"

    def cargo_class(self, ts_ms: int) -> str | None:
        """The hazard class on board, if a permit says so (a revoked one no longer does)."""
        if self.document is None or self.validity(ts_ms) in ("none", "revoked"):
            return None
        return self.document.hazard_class


NO_PERMIT = PermitStatus()
