"""A table kept from a compacted topic: key -> the latest record that decodes (a tombstone
removes the key, a record that does not decode changes nothing), fed by a follower's
apply. Subscriptions, deadline lines and desk accounts are such tables."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")


class CompactedTable(Generic[T]):
    def __init__(self, decode: Callable[[bytes], T], key_of: Callable[[T], str],
                 items: Iterable[T] = ()) -> None:
        self._decode = decode
        self._key_of = key_of
        self._by_key: dict[str, T] = {key_of(item): item for item in items}
        self.refused = 0
        """Records that did not decode (another writer's fault: counted, skipped)."""

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: str) -> T | None:
        return self._by_key.get(key)

    def all(self) -> list[T]:
        return [self._by_key[k] for k in sorted(self._by_key)]

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        if value is None:
            self._by_key.pop(key.decode("utf-8", "replace"), None)
            return
        try:
            item = self._decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
            self.refused += 1
            return
        self._by_key[self._key_of(item)] = item
