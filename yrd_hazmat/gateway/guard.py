"""Login throttling of the JT/T 809 link: a login flood is refused without harm.

Two bounds, over a sliding window of ``window_s``:

- logins (UP_CONNECT_REQ 0x1001) from one source address, whatever their result, at most
  ``attempts``: beyond, the address is refused (``address_throttled``) until its older
  attempts leave the window;
- failed logins of one configured platform, at most ``failures``: beyond, its logins are
  refused (``platform_throttled``) from any address but the one it last logged in from,
  so that guessing its password from elsewhere stops while the platform itself (back
  from where it always connects) still logs in.

A refused login is never checked, so a password cannot be guessed through it. Pure: a
clock is given; one gateway process's memory (each gateway throttles what it sees).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

ADDRESS_THROTTLED, PLATFORM_THROTTLED = "address_throttled", "platform_throttled"
MAX_TRACKED = 100_000
"""Addresses and platforms remembered; beyond, those quiet for a window are forgotten."""


class LoginGuard:
    def __init__(self, attempts: int, failures: int, window_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts
        self.failures = failures
        self.window_s = window_s
        self.clock = clock
        self._attempts: dict[str, deque[float]] = {}
        self._failures: dict[int, deque[float]] = {}
        self._trusted: dict[int, str] = {}
        """Access code -> the address of its latest accepted login."""

    def admit(self, address: str, access_code: int | None) -> str | None:
        """Counts a login from ``address`` for the platform ``access_code`` (None: not a
        configured one); the reason to refuse it unchecked, or None to check it."""
        now = self.clock()
        if len(self._attempts) >= MAX_TRACKED:
            self._forget_quiet(now)
        seen = _recent(self._attempts.setdefault(address, deque()), now, self.window_s)
        if len(seen) >= self.attempts:
            return ADDRESS_THROTTLED
        seen.append(now)
        if access_code is not None:
            failed = self._failures.get(access_code)
            if failed is not None and len(_recent(failed, now, self.window_s)) >= self.failures \
                    and self._trusted.get(access_code) != address:
                return PLATFORM_THROTTLED
        return None

    def failed(self, access_code: int) -> None:
        """A configured platform's login refused (wrong user, password, address)."""
        now = self.clock()
        failed = _recent(self._failures.setdefault(access_code, deque()), now, self.window_s)
        failed.append(now)
        if len(failed) > self.failures:
            failed.popleft()

    def succeeded(self, access_code: int, address: str) -> None:
        self._failures.pop(access_code, None)
        self._trusted[access_code] = address

    def _forget_quiet(self, now: float) -> None:
        for address, seen in list(self._attempts.items()):
            if not _recent(seen, now, self.window_s):
                del self._attempts[address]


def _recent(times: deque[float], now: float, window_s: float) -> deque[float]:
    """``times`` without those older than the window."""
    while times and times[0] <= now - window_s:
        times.popleft()
    return times
