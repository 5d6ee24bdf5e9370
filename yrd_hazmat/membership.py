"""Static group membership: a restarted worker takes its old place in the group at once.

Without it, a worker killed with -9 holds its partitions until its session
times out, and its restart waits for that. With a ``group.instance.id`` the
broker hands a restarted member its old assignment immediately. The id must
be stable across restarts and unique among the running workers: Kubernetes
gives each StatefulSet pod a stable name (set ``YRD_GROUP_INSTANCE_ID`` to it);
on one host, each worker takes the lowest free *slot*, held by an exclusive
lock on a file that the kernel releases when the process dies, however it dies.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import tempfile
from pathlib import Path

_held: list[int] = []  # open slot files: the locks live as long as the process


def instance_id(app_id: str, configured: str | None, lock_dir: Path | None = None,
                max_slots: int = 64) -> str | None:
    """The worker's ``group.instance.id``: the configured one, or this host's lowest free
    slot for ``app_id`` (None when configured as '': static membership off)."""
    if configured is not None:
        return configured or None
    directory = lock_dir or Path(tempfile.gettempdir()) / "yrd-hazmat-slots"
    directory.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", app_id)
    for slot in range(max_slots):
        fd = os.open(directory / f"{safe}.{slot}", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _held.append(fd)
        return f"{app_id}-{socket.gethostname()}-{slot}"
    return None
