"""The desk's audit trail: one line per thing a desk user did or looked at that matters
(a login, an action on an incident, a command, a subscription or an account changed, a
track looked at...), on the ``yrd_hazmat.desk.audit`` logger and, once the desk runs, as
an entry on ``yrd.audit`` (:data:`sink`, :mod:`yrd_hazmat.audit`), through :func:`audit`
alone.

Each line reads ``desk ACTION OUTCOME: user='NAME' target='TARGET' key=value...`` and the
log record carries the same fields as a dict in its ``audit`` attribute (who, when, what,
on what, with what outcome) for a handler that ships them as records.
"""

from __future__ import annotations

import logging
from datetime import datetime
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..audit import AuditEntry
from ..audit import entry as audit_entry
from ..core.timeutil import CHINA_TZ

log = logging.getLogger("yrd_hazmat.desk.audit")
TEXT_MAX = 64
"""Characters of a caller's text (a name, a target) written to a line."""
FAILED = ("failed", "throttled", "refused", "forbidden", "not_found", "error")
sink: Callable[[AuditEntry], None] | None = None
"""Where each entry also goes (the desk sets it: its producer, to ``yrd.audit``)."""


def audit(user: str, action: str, target: str | None, outcome: str, *,
          role: str | None = None, **details: Any) -> None:
    """Write who (``user``) did what (``action``) to what (``target``) and how it went
    (``outcome``: ok, failed, refused, or an HTTP status), with ``details`` (key=value)."""
    at = datetime.now(CHINA_TZ)
    fields = [f"user={user[:TEXT_MAX]!r}"]
    if target is not None:
        fields.append(f"target={str(target)[:TEXT_MAX]!r}")
    fields += [f"{key}={_shown(value)}" for key, value in details.items()]
    level = logging.WARNING if outcome.startswith(FAILED) else logging.INFO
    log.log(level, "desk %s %s: %s", action, outcome, " ".join(fields),
            extra={"audit": {"at": at.isoformat(), "user": user, "action": action,
                             "target": target, "outcome": outcome, **details}})
    if sink is not None:
        address = details.pop("address", None)
        shown = {k: v.isoformat() if isinstance(v, datetime) else v
                 for k, v in details.items()}
        sink(audit_entry(user, action, target, role=role, address=address, outcome=(
            "ok" if outcome == "ok" else "failed" if outcome in ("error", "failed")
            else "refused"), reason=None if outcome in ("ok", "refused", "failed") else outcome,
            **shown))


def _shown(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return repr(value[:TEXT_MAX]) if " " in value or "=" in value or not value else value
    return str(value)


DETAILS: web.RequestKey[dict[str, Any]] = web.RequestKey("audit_details", dict)
"""What a handler adds to its request's audit line (the desk writes one line per
state-changing request, whatever its outcome)."""


def note(request: web.Request, **details: Any) -> None:
    """Add ``details`` to the request's audit line."""
    request.setdefault(DETAILS, {}).update(details)


async def audited(request: web.Request, handler: Any, user: str,
                  role: str | None = None) -> web.StreamResponse:
    """Run a state-changing request's handler and write its audit line: the route (the
    action), its path's parameters (the target), ``ok`` or ``refused`` with the status,
    and what the handler noted."""
    resource = request.match_info.route.resource
    action = f"{request.method} {resource.canonical if resource else request.path}"
    target = "/".join(request.match_info.values()) or None
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        audit(user, action, target, "refused", role=role, status=exc.status,
              **request.get(DETAILS, {}), address=request.remote)
        raise
    except Exception:
        audit(user, action, target, "error", role=role, **request.get(DETAILS, {}),
              address=request.remote)
        raise
    audit(user, action, target, "ok" if response.status < 400 else "refused", role=role,
          status=response.status, **request.get(DETAILS, {}), address=request.remote)
    return response
