"""What keeps the desk safe to expose to a police network: login throttling and audit,
the same-origin rule for state-changing requests, and the headers every response carries.

Pure parts (the throttle, the origin rule, the policy) are functions of their inputs and a
clock, so they are unit-tested without a server.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from prometheus_client import Counter

from .audit import audit

LOGINS = Counter("yrd_desk_logins", "Desk login attempts by result (ok, failed, throttled)",
                 ["result"])
MAX_LOCKOUT_S = 3600.0
MAX_TRACKED = 100_000
"""Names and addresses remembered by the throttle; beyond, the idle ones are forgotten."""


# --- login throttling ---------------------------------------------------------------------
@dataclass
class _Record:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0
    lockouts: int = 0
    last: float = 0.0


class Throttle:
    """Failed logins per key (a name, an address): after ``limit`` failures within
    ``window_s`` the key is locked for ``lockout_s``, each further lockout twice as long
    (up to an hour). A key is forgotten once unlocked and quiet for a window, so the
    growth resets after a calm period. One desk process's memory: several desks each
    throttle what they see."""

    def __init__(self, limit: int, window_s: float, lockout_s: float,
                 clock=time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.clock = clock
        self._records: dict[str, _Record] = {}

    def retry_after(self, *keys: str) -> float:
        """Seconds until the most locked of ``keys`` may try again (0: none is locked)."""
        now = self.clock()
        waits = [r.locked_until - now for k in keys if (r := self._records.get(k)) is not None]
        return max([0.0, *waits])

    def failed(self, *keys: str) -> None:
        now = self.clock()
        if len(self._records) >= MAX_TRACKED:
            self._forget_quiet(now)
        for key in keys:
            record = self._records.setdefault(key, _Record())
            record.last = now
            record.failures.append(now)
            while record.failures and record.failures[0] <= now - self.window_s:
                record.failures.popleft()
            if len(record.failures) >= self.limit:
                record.locked_until = now + min(MAX_LOCKOUT_S,
                                                self.lockout_s * 2 ** record.lockouts)
                record.lockouts += 1
                record.failures.clear()

    def succeeded(self, key: str) -> None:
        self._records.pop(key, None)

    def _forget_quiet(self, now: float) -> None:
        for key, record in list(self._records.items()):
            if record.locked_until < now and record.last < now - self.window_s:
                del self._records[key]


def audit_login(name: str, address: str | None, result: str) -> None:
    """One line per login attempt (the name quoted: it is the caller's text) and the
    counter ``yrd_desk_logins_total{result}``."""
    LOGINS.labels(result=result).inc()
    audit(name, "login", None, result, address=address or "-")


# --- same origin --------------------------------------------------------------------------
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def same_origin(origin: str | None, referer: str | None, host: str | None,
                scheme: str) -> bool:
    """Whether a state-changing request comes from the desk's own page: its ``Origin`` (or,
    without one, its ``Referer``) is ``scheme://host`` of the desk. Neither header, or
    ``Origin: null`` (a sandboxed frame, a redirect), is refused: browsers send Origin
    with every POST, so only a forged request lacks both."""
    claimed = origin or referer
    if not claimed or not host:
        return False
    parts = urlsplit(claimed)
    return (parts.scheme.lower(), parts.netloc.lower()) == (scheme.lower(), host.lower())


# --- headers ------------------------------------------------------------------------------
def content_security_policy(tile_url: str | None) -> str:
    """Only the desk's own scripts, data and connections; pictures also from the tile
    host when one is configured ({s} subdomains as a wildcard). Inline styles are allowed
    (the map library positions its markers with them); inline scripts are not."""
    images = "'self' data: blob:"
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "*"))
        if parts.scheme in ("http", "https") and parts.netloc:
            images += f" {parts.scheme}://{parts.netloc}"
    return ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            f"img-src {images}; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")


def security_headers(tile_url: str | None) -> dict[str, str]:
    return {"Content-Security-Policy": content_security_policy(tile_url),
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin"}
