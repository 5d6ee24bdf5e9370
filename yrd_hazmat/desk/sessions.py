"""Desk sessions: a signed token in the cookie, and the session's life on the server.

The token, ``name.expiry.sid.signature`` (HMAC-SHA256), says who and until when (the
absolute limit, ``YRD_DESK_SESSION_S``) and cannot be forged. Whether the session is still
open is the server's: :class:`SessionStore` keeps one Redis key per session, expiring
after ``YRD_DESK_IDLE_S`` without use, so a logout (the key deleted) or an idle session
ends at once, on every desk sharing the Redis and the secret. The user's jurisdiction is
looked up again on every request, so a user removed from the users file (and the desk
restarted) is out at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import msgspec
import redis.asyncio as aioredis


class Session(msgspec.Struct, frozen=True):
    """A token's content once its signature and expiry checked out."""

    name: str
    sid: str
    """The session's id: its key on the server."""
    expiry: int


class Sessions:
    def __init__(self, secret: bytes, ttl_s: float) -> None:
        self.secret = secret
        self.ttl_s = ttl_s

    def issue(self, name: str, now: float | None = None) -> tuple[str, Session]:
        """A new session's token and content (a fresh random id)."""
        expiry = int((now if now is not None else time.time()) + self.ttl_s)
        session = Session(name, secrets.token_urlsafe(24), expiry)
        payload = f"{_b64(name.encode())}.{expiry}.{session.sid}"
        return f"{payload}.{self._sign(payload)}", session

    def parse(self, token: str | None, now: float | None = None) -> Session | None:
        """The session of a well-signed, unexpired token, else None (whatever the token)."""
        if not token or token.count(".") != 3 or not token.isascii():
            return None
        encoded, expiry, sid, signature = token.split(".")
        payload = f"{encoded}.{expiry}.{sid}"
        if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return None
        try:
            if int(expiry) < (now if now is not None else time.time()):
                return None
            name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return Session(name, sid, int(expiry))

    def _sign(self, payload: str) -> str:
        return hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()


class SessionStore:
    """Open sessions in Redis: ``{prefix}:desk:session:{sid}`` -> user name, expiring after
    ``idle_s`` without use."""

    def __init__(self, redis: aioredis.Redis, prefix: str, idle_s: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.idle_s = max(1, round(idle_s))

    def _key(self, sid: str) -> str:
        return f"{self.prefix}:desk:session:{sid}"

    async def open(self, session: Session) -> None:
        await self.redis.set(self._key(session.sid), session.name, ex=self.idle_s)

    async def use(self, session: Session) -> bool:
        """Whether the session is open; if so, its idle time starts again (one round trip)."""
        name = await self.redis.getex(self._key(session.sid), ex=self.idle_s)
        return name == session.name

    async def is_open(self, session: Session) -> bool:
        """Whether the session is open, without counting as use (a live feed's check)."""
        return await self.redis.get(self._key(session.sid)) == session.name

    async def revoke(self, session: Session) -> None:
        await self.redis.delete(self._key(session.sid))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
