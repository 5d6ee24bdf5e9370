"""``ReadModel``: the one object the worker, the desk and the tests hold.

It puts the parts together on one Redis client and one set of key names: the
queries are :class:`.readers.Readers`' own; writing goes from :meth:`submit` to
the :mod:`.outbox`, and from there, by the :mod:`.flusher`, through the
:mod:`.writer`. Nothing here but the assembly and the delegation.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from ..core.models import Alert
from .flusher import Flusher
from .keys import DEFAULT_PREFIX, SEEN_WINDOW, Keys
from .outbox import MAX_ALERTS, Outbox, VehicleUpdate
from .readers import Readers
from .writer import CHUNK, Writer

if TYPE_CHECKING:
    from ..config import Settings


class ReadModel(Readers):
    """Writes (from the worker, through the outbox) and reads (for dashboards, the CLI, tests)."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = DEFAULT_PREFIX,
        ttl_s: int = 7 * 86400,
        *,
        max_alerts: int = MAX_ALERTS,
        flush_interval_s: float = 0.5,
        max_backoff_s: float = 4.0,
        flush_timeout_s: float = 10.0,
        chunk: int = CHUNK,
        seen_window: int = SEEN_WINDOW,
    ) -> None:
        super().__init__(client, Keys(prefix), chunk=chunk)
        self.outbox = Outbox(max_alerts)
        self.writer = Writer(client, self.keys, ttl_s, chunk=chunk, seen_window=seen_window)
        self.flusher = Flusher(self.outbox, self.writer, interval_s=flush_interval_s,
                               max_backoff_s=max_backoff_s, timeout_s=flush_timeout_s,
                               secret=_password_of(client))

    @classmethod
    def from_url(
        cls,
        url: str,
        prefix: str = DEFAULT_PREFIX,
        ttl_s: int = 7 * 86400,
        *,
        timeout_s: float = 2.0,
        **options: Any,
    ) -> "ReadModel":
        """A read model on ``url``; Redis calls fail after ``timeout_s`` instead of hanging.

        A lost connection is retried once at once (e.g. a pooled connection
        closed by a Redis restart); a timeout is not retried.
        """
        client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        options.setdefault("flush_timeout_s", max(5.0, 4 * timeout_s))
        return cls(client, prefix, ttl_s, **options)

    @classmethod
    def from_settings(cls, settings: "Settings") -> "ReadModel":
        return cls.from_url(
            settings.redis_url.get_secret_value(),
            settings.redis_prefix,
            settings.redis_position_ttl_s,
            timeout_s=settings.redis_timeout_s,
            max_alerts=settings.readmodel_max_alerts,
            flush_interval_s=settings.readmodel_flush_s,
        )

    @property
    def healthy(self) -> bool:
        """False from a failed flush until one reaches Redis again."""
        return self.flusher.healthy

    @property
    def pending(self) -> tuple[int, int]:
        """(vehicles, alerts) waiting in the outbox."""
        return self.flusher.pending

    def submit(
        self, updates: Iterable[VehicleUpdate], alerts: Iterable[Alert], now: datetime
    ) -> None:
        """Queue one processed batch for the next flush. No I/O; never raises."""
        self.flusher.submit(updates, alerts, now)

    async def flush(self) -> bool:
        """One attempt to write the outbox; False if Redis could not be reached (kept)."""
        return await self.flusher.flush()

    async def apply(
        self, updates: Iterable[VehicleUpdate], alerts: Iterable[Alert], now: datetime
    ) -> None:
        """Submit one batch and flush at once; raises :class:`.FlushError` if Redis failed
        (the batch stays in the outbox for the next flush)."""
        self.flusher.submit(updates, alerts, now)
        await self.flusher.flush_or_raise()

    async def run(self, interval_s: float | None = None) -> None:
        """Flush every ``interval_s`` (default: ``flush_interval_s``) until :meth:`close`
        (or cancellation), backing off after failures."""
        await self.flusher.run(interval_s)

    async def close(self, timeout_s: float = 2.0) -> None:
        """Stop the flusher; one last flush attempt of at most ``timeout_s``; close Redis."""
        await self.flusher.close(timeout_s)
        await self.redis.aclose()

    def _text(self, error: BaseException) -> str:
        """The error as one line, without the Redis password."""
        return self.flusher.text(error)


def _password_of(client: aioredis.Redis) -> str | None:
    try:
        password = client.connection_pool.connection_kwargs.get("password")
    except AttributeError:
        return None
    return password or None
