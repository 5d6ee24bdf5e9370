"""Any JT/T 809 body by its MSG_ID: the link-management messages (:mod:`.links`) and the
businesses 0x1200/0x9200 (:mod:`.exchange`), 0x1300/0x9300 (:mod:`.inspection`),
0x1400/0x9400 (:mod:`.alarms`), 0x1500/0x9500 (:mod:`.control`), 0x1600/0x9600
(:mod:`.static`). Whatever the bytes, a body either decodes or raises
:class:`~yrd_hazmat.jt808.frame.FrameError` (``unsupported`` for a message or
sub-business not handled here)."""

from __future__ import annotations

from collections.abc import Callable

from ..jt808.frame import FrameError
from . import alarms, control, exchange, inspection, links, static
from .codec import Message, check_version
from .frame import V2011

BUSINESSES: dict[int, Callable[[int, bytes, int], Message]] = {
    exchange.UP_EXG_MSG: exchange.read, exchange.DOWN_EXG_MSG: exchange.read,
    inspection.UP_PLATFORM_MSG: inspection.read, inspection.DOWN_PLATFORM_MSG: inspection.read,
    alarms.UP_WARN_MSG: alarms.read, alarms.DOWN_WARN_MSG: alarms.read,
    control.UP_CTRL_MSG: control.read, control.DOWN_CTRL_MSG: control.read,
    static.UP_BASE_MSG: static.read, static.DOWN_BASE_MSG: static.read,
}
LINKS = frozenset(range(links.UP_CONNECT_REQ, links.UP_CLOSELINK_INFORM + 1)) | frozenset(
    range(links.DOWN_CONNECT_REQ, links.DOWN_CLOSELINK_INFORM + 1))


def read(msg_id: int, body: bytes, version: int = V2011) -> object:
    """The decoded body: a :class:`.codec.Message` for a business, a link message's Struct
    (or None when it has no body)."""
    check_version(version)
    if msg_id in LINKS:
        return links.read(msg_id, body, version)
    business = BUSINESSES.get(msg_id)
    if business is None:
        raise FrameError("unsupported", f"message 0x{msg_id:04x} is not supported")
    return business(msg_id, body, version)
