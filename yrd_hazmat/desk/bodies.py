"""Request bodies and error answers: every body the desk accepts is JSON of a known shape
and size, and anything else is a 400 saying why (never a 500, never a logged trace),
signed in or not."""

from __future__ import annotations

import json
from typing import Annotated, TypeVar

import msgspec
from aiohttp import web

MAX_BODY_BYTES = 16 * 1024
"""No desk body needs more: a note is 2,000 characters at most."""
NAME_MAX = 64
PASSWORD_MAX = 1024
T = TypeVar("T")


class LoginRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``POST /api/login``."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
    password: Annotated[str, msgspec.Meta(max_length=PASSWORD_MAX)]


def http_error(kind: type[web.HTTPError], message: str, **headers: str) -> web.HTTPError:
    """An error answer: JSON ``{"error": message}``."""
    return kind(text=json.dumps({"error": message}, ensure_ascii=False),
                content_type="application/json", headers=headers or None)


async def read_json(request: web.Request, kind: type[T], *, empty: T | None = None) -> T:
    """The request's body as ``kind``; ``empty`` for no body at all where that is allowed.
    400 with the reason when it is too large, not JSON (or not UTF-8), or not of the shape
    ``kind`` says (a missing or unknown field, a text too long)."""
    data = await _body(request)
    if not data.strip():
        if empty is not None:
            return empty
        raise http_error(web.HTTPBadRequest, "the body is empty: JSON expected")
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as exc:
        raise http_error(web.HTTPBadRequest, f"invalid body: {exc}") from None
    except msgspec.DecodeError:
        raise http_error(web.HTTPBadRequest, "the body is not JSON") from None


async def _body(request: web.Request) -> bytes:
    too_large = f"the body is larger than {MAX_BODY_BYTES} bytes"
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise http_error(web.HTTPBadRequest, too_large)
    data = bytearray()
    while chunk := await request.content.read(MAX_BODY_BYTES + 1):
        data += chunk
        if len(data) > MAX_BODY_BYTES:
            raise http_error(web.HTTPBadRequest, too_large)
    return bytes(data)
