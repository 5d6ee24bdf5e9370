"""What is known delivered up, per Kafka partition.

JT/T 809 acknowledges neither UP_EXG_MSG_REAL_LOCATION 0x1202, nor the history 0x1203,
nor the alarm 0x1402. What it does answer is the link test: UP_LINKTEST_REQ 0x1005 is
answered by UP_LINKTEST_RSP 0x1006 on the same main link. The link is one TCP stream, read
in order by the upper platform, so the answer to a link test proves that the upper
platform has read every frame written before it. A link test is therefore a *probe*:
the offsets of everything written (or skipped) before it are confirmed when its answer
arrives, and only confirmed offsets are committed to the consumer group. The n-th answer
answers the n-th test (0x1006 has no body to say which): probes are kept in order.

When the link drops, the probes without an answer are forgotten and reading resumes at
the confirmed offsets: everything after them is sent again (as history, 0x1203). Nothing
is lost; what the upper platform had read of the last unconfirmed stretch (at most one
confirmation interval of records, plus what a crash left uncommitted between an answer
and its commit) arrives twice.
"""

from __future__ import annotations

from collections import deque
from typing import Hashable

Partition = Hashable
"""A Kafka TopicPartition (any hashable key in the tests)."""


class Ledger:
    """Offsets (the next record to read, as Kafka commits them) written and confirmed."""

    def __init__(self, confirmed: dict[Partition, int]) -> None:
        self.confirmed: dict[Partition, int] = dict(confirmed)
        self.written: dict[Partition, int] = dict(confirmed)
        self._probes: deque[dict[Partition, int]] = deque()
        self._committed: dict[Partition, int] = dict(confirmed)

    def wrote(self, partition: Partition, offset: int) -> None:
        """The record at ``offset`` was written on the link (or needs not go up)."""
        if offset + 1 > self.written.get(partition, 0):
            self.written[partition] = offset + 1

    @property
    def pending(self) -> bool:
        """Something written that no probe covers yet."""
        last = self._probes[-1] if self._probes else self.confirmed
        return any(last.get(p, 0) < off for p, off in self.written.items())

    @property
    def probes(self) -> int:
        """Link tests sent and not answered."""
        return len(self._probes)

    def probe(self) -> None:
        """A link test was written after everything written so far."""
        self._probes.append(dict(self.written))

    def answered(self) -> bool:
        """A link test's answer arrived: what was written before that test is delivered.
        False if no test was waiting (an answer nobody asked for)."""
        if not self._probes:
            return False
        for partition, offset in self._probes.popleft().items():
            if offset > self.confirmed.get(partition, 0):
                self.confirmed[partition] = offset
        return True

    def to_commit(self) -> dict[Partition, int]:
        """Confirmed offsets not committed yet (marked committed by this call)."""
        out = {p: off for p, off in self.confirmed.items() if self._committed.get(p) != off}
        self._committed.update(out)
        return out

    def commit_failed(self, offsets: dict[Partition, int]) -> None:
        """The commit of ``offsets`` (from :meth:`to_commit`) failed: offer them again."""
        for partition in offsets:
            self._committed.pop(partition, None)

    def dropped(self) -> dict[Partition, int]:
        """The link dropped: unanswered probes are void, and reading goes back to the
        confirmed offsets (returned, to seek to)."""
        self._probes.clear()
        self.written = dict(self.confirmed)
        return dict(self.confirmed)

    def unconfirmed(self) -> int:
        """Records written (or skipped) and not confirmed."""
        return sum(max(0, off - self.confirmed.get(p, 0)) for p, off in self.written.items())
