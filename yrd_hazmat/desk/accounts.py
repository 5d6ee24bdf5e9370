"""Accounts on the desk (用户管理), for the region's administrators (``manage_users``):

- ``GET /api/accounts``: every account (the topic's over the start-up file's), without its
  password hash;
- ``PUT /api/accounts/{name}``: create or change one: ``role``, ``province``, ``carrier``,
  ``disabled``, and ``password`` (at least 10 characters; required for a new account,
  kept when absent); published on ``yrd.desk-users``, its hash made off the event loop;
- ``DELETE /api/accounts/{name}``: a tombstone (an account of the start-up file stays
  until the file changes: disable it instead).

An administrator cannot disable, demote or remove their own account (409): the region
keeps someone who can manage it. A changed or disabled account's sessions follow at their
next request (the desk looks each request's account up).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from datetime import datetime
from typing import Any, Literal

import msgspec
from aiohttp import web

from ..accounts import Account, Role, encode
from ..core.timeutil import CHINA_TZ
from .access import USER
from .audit import note
from .bodies import http_error, read_json
from .users import Users, hash_password

MIN_PASSWORD = 10
Publish = Callable[[str, bytes, bytes | None], Awaitable[None]]


class AccountRequest(msgspec.Struct, forbid_unknown_fields=True):
    role: Role
    province: Literal["SH", "JS", "ZJ", "AH"] | None = None
    carrier: str | None = None
    disabled: bool = False
    password: str | None = None


def shown(a: Account) -> dict[str, Any]:
    """An account as the desk shows it: everything but the password's hash."""
    row = msgspec.to_builtins(a)
    row.pop("password", None)
    return row


class AccountAdmin:
    def __init__(self, users: Users, topic: str, publish: Publish, hashing: Executor) -> None:
        self.users = users
        self.topic = topic
        self.publish = publish
        self.hashing = hashing

    async def list(self, request: web.Request) -> web.Response:
        return web.json_response([shown(a) for a in self.users.all()])

    async def put(self, request: web.Request) -> web.Response:
        me: Account = request[USER]
        name = request.match_info["name"]
        body = await read_json(request, AccountRequest)
        before = self.users.account(name)
        if name == me.name and (body.disabled or body.role != me.role):
            raise http_error(web.HTTPConflict, "your own account keeps its role and stays "
                                               "enabled: ask another administrator")
        if body.password is not None and len(body.password) < MIN_PASSWORD:
            raise http_error(web.HTTPBadRequest,
                             f"a password has at least {MIN_PASSWORD} characters")
        if before is None and body.password is None:
            raise http_error(web.HTTPBadRequest, "a new account needs a password")
        password = before.password if before is not None else ""
        if body.password is not None:
            password = await asyncio.get_running_loop().run_in_executor(
                self.hashing, hash_password, body.password)
        try:
            account = Account(name=name, role=body.role, province=body.province,
                              carrier=body.carrier, disabled=body.disabled, password=password,
                              updated_by=me.name, updated_at=datetime.now(CHINA_TZ))
        except ValueError as exc:
            raise http_error(web.HTTPBadRequest, str(exc)) from None
        value = encode(account)
        await self.publish(self.topic, name.encode(), value)
        self.users.apply(name.encode(), value)
        note(request, account_role=account.role, province=account.province,
             carrier=account.carrier,
             disabled=account.disabled, password_set=body.password is not None,
             created=before is None)
        return web.json_response(shown(account), status=201 if before is None else 200)

    async def delete(self, request: web.Request) -> web.Response:
        me: Account = request[USER]
        name = request.match_info["name"]
        if name == me.name:
            raise http_error(web.HTTPConflict, "you cannot remove your own account")
        if self.users.account(name) is None:
            raise http_error(web.HTTPNotFound, "no such account")
        await self.publish(self.topic, name.encode(), None)
        self.users.apply(name.encode(), None)
        return web.json_response({"deleted": name})
