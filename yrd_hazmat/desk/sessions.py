"""Signed, expiring session tokens: ``name.expiry.signature`` (HMAC-SHA256).

The server keeps no session table: a token is valid while its signature matches and
it has not expired; its user's jurisdiction is looked up again on every request, so
a user removed from the users file (and the desk restarted) is out at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time


class Sessions:
    def __init__(self, secret: bytes, ttl_s: float) -> None:
        self.secret = secret
        self.ttl_s = ttl_s

    def issue(self, name: str, now: float | None = None) -> str:
        expiry = int((now if now is not None else time.time()) + self.ttl_s)
        payload = f"{_b64(name.encode())}.{expiry}"
        return f"{payload}.{self._sign(payload)}"

    def user_of(self, token: str | None, now: float | None = None) -> str | None:
        """The user name of a valid, unexpired token, else None."""
        if not token or token.count(".") != 2:
            return None
        encoded, expiry, signature = token.split(".")
        payload = f"{encoded}.{expiry}"
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            if int(expiry) < (now if now is not None else time.time()):
                return None
            return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None

    def _sign(self, payload: str) -> str:
        return hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
