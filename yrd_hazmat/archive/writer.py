"""Writing a kind's rows so that each Kafka record is in the archive exactly once, whatever
moment the process is killed at.

The archive's own files, not the consumer group, say what is written: per kind and
partition, ``_state/<kind>/p<n>.json`` holds the next offset to write. A flush of the
records ``first..last`` of a partition:

1. writes ``_state/<kind>/p<n>.pending``: the next offset it will reach and the names of
   the files it will write (names follow from the offsets, one per day);
2. writes those files (each whole or not at all: :class:`.store.Store`);
3. writes the state (``next`` = last + 1) and deletes the pending note;
4. then (the caller) commits the offsets to the consumer group: only a gauge of lag reads
   them.

Killed before 3, the next start finds the pending note ahead of the state, deletes
whatever of its files were written and reads again from the state's offset: those records
are written once, by the new run. Killed after the state was written, the state says they
are written (a pending note left behind is only deleted) and reading resumes past them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from . import layout
from .rows import Rows
from .store import Store

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """What was read for one kind since its last flush."""

    kind: str
    topic: str
    """The topic's name, in the files' names."""
    rows: Rows = field(init=False)
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)
    """partition -> (first, last) offset read (rows or not: a refused record counts)."""

    def __post_init__(self) -> None:
        self.rows = Rows(self.kind)

    def read(self, partition: int, first: int, last: int) -> None:
        had = self.ranges.get(partition)
        self.ranges[partition] = (had[0] if had else first, last)

    @property
    def records(self) -> int:
        return sum(last - first + 1 for first, last in self.ranges.values())

    def clear(self) -> None:
        self.rows = Rows(self.kind)
        self.ranges = {}


def tag(topic: str) -> str:
    """A topic's name as a file name's first part (no path separator)."""
    return topic.replace("/", "_")


def recover(store: Store, kind: str, partition: int) -> int | None:
    """The next offset to write for ``kind`` from ``partition`` (None: nothing written
    yet), after removing what a flush killed half way wrote."""
    pending = store.get(layout.pending_path(kind, partition))
    state = store.get(layout.state_path(kind, partition))
    written = int(json.loads(state)["next"]) if state is not None else None
    if pending is not None:
        try:
            note = json.loads(pending)
            files, reaches = list(note["files"]), int(note["next"])
        except (ValueError, KeyError, TypeError):
            files, reaches = [], -1
        if written is None or written < reaches:  # killed before its state was written
            gone = store.delete(files)
            log.warning("archive %s p%d: an unfinished flush undone (%d of its %d files "
                        "written)", kind, partition, gone, len(files))
        store.delete([layout.pending_path(kind, partition)])
    return written


def flush(store: Store, batch: Batch) -> dict[int, int]:
    """Write ``batch`` (see the module) and clear it; the next offset of each partition."""
    tables = batch.rows.tables()
    done: dict[int, int] = {}
    topic = tag(batch.topic)
    for partition, (first, last) in sorted(batch.ranges.items()):
        files = {day: layout.data_path(batch.kind, day, topic, partition, first, last)
                 for (day, p) in tables if p == partition}
        store.put(layout.pending_path(batch.kind, partition), json.dumps(
            {"next": last + 1, "files": sorted(files.values())}).encode())
        for day, path in files.items():
            store.put_table(path, tables[(day, partition)])
        store.put(layout.state_path(batch.kind, partition),
                  json.dumps({"next": last + 1}).encode())
        store.delete([layout.pending_path(batch.kind, partition)])
        done[partition] = last + 1
    batch.clear()
    return done
