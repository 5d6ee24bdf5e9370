"""The pictures trucks' terminals uploaded (``yrd.media``), kept in memory so the desk can
show the photo a command asked for.

The topic holds 30 days of files; the desk keeps the newest up to :data:`BUDGET_BYTES`
(decoded), so a desk started on a full topic does not hold all of it.
"""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from dataclasses import dataclass

import msgspec

from ..core.models import Media

BUDGET_BYTES = 64 * 1024 * 1024
CONTENT_TYPES = {"jpeg": "image/jpeg", "tif": "image/tiff", "mp3": "audio/mpeg",
                 "wav": "audio/wav", "wmv": "video/x-ms-wmv"}
_decoder = msgspec.json.Decoder(Media)


@dataclass(frozen=True)
class Picture:
    vehicle_id: str
    content_type: str
    data: bytes


class MediaStore:
    """Media id -> its file, the newest first kept within a byte budget."""

    def __init__(self, budget_bytes: int = BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self._pictures: OrderedDict[str, Picture] = OrderedDict()
        self._bytes = 0

    def get(self, media_id: str) -> Picture | None:
        return self._pictures.get(media_id)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One ``yrd.media`` record; an unreadable one is skipped (the gateway wrote it)."""
        if value is None:
            return
        try:
            media = _decoder.decode(value)
            data = base64.b64decode(media.data, validate=True)
        except (msgspec.DecodeError, msgspec.ValidationError, binascii.Error):
            return
        self._put(media.media_id, Picture(
            media.vehicle_id, CONTENT_TYPES.get(media.format, "application/octet-stream"), data))

    def _put(self, media_id: str, picture: Picture) -> None:
        old = self._pictures.pop(media_id, None)
        if old is not None:
            self._bytes -= len(old.data)
        self._pictures[media_id] = picture
        self._bytes += len(picture.data)
        while self._bytes > self.budget_bytes and len(self._pictures) > 1:
            _, dropped = self._pictures.popitem(last=False)
            self._bytes -= len(dropped.data)
