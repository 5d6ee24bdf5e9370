"""How a :class:`~.notice.Notice` is carried on each channel: a channel's settings (a
tagged union on ``kind``: webhook, the duty rooms' chat robots, an SMS gateway, e-mail),
the request that carries a notice (rendered, signed), and what the answer means
(:class:`Answer`: delivered, worth a retry, or refused for good).

Pure: no I/O and no clock (``now`` is passed in, an aware datetime); :mod:`.send` sends.
Secrets (signing secrets, the robots' tokens and keys in their URLs, the SMS gateway's
header values) never show in a repr: :meth:`masked` gives what a desk may show.

Formats, from each tool's documentation:

- DingTalk, "自定义机器人发送群消息" and "自定义机器人安全设置": a ``markdown`` message;
  signed by ``&timestamp=<ms>&sign=<urlencode(base64(HMAC-SHA256(secret,
  f"{ms}\\n{secret}")))>`` on the URL; mentioned mobiles are listed in ``at.atMobiles``
  and written ``@mobile`` in the text.
- WeCom, "群机器人配置说明": a ``markdown`` message (content at most 4096 bytes of
  UTF-8). Its markdown mentions only by ``<@userid>``; mobiles can be mentioned only in a
  ``text`` message (``mentioned_mobile_list``, content at most 2048 bytes), so a channel
  with ``mentioned_mobiles`` sends the markdown, then a short text naming the notice
  that mentions them (two requests, both must succeed).
- Feishu, "自定义机器人使用指南": a ``post`` message (rich text: plain text runs and a
  link, nothing to escape); signed by ``"timestamp"`` (seconds, a string) and
  ``"sign"`` (``base64(HMAC-SHA256(key=f"{s}\\n{secret}", message=b""))``) in the body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Literal
from urllib.parse import quote_plus, urlsplit, urlunsplit

import msgspec

from .notice import Notice

REPEAT_MARK = "可能重复 (may be a repeat)"
SMS_LIMIT = 3 * 67
"""Characters in an SMS: three segments of a concatenated message in UCS-2 (67 each;
70 for a single one). A gateway's own signature (【...】) counts too: keep it in mind."""
WECOM_MARKDOWN_LIMIT = 4096
WECOM_TEXT_LIMIT = 2048
MASK = "****"

DINGTALK_RETRY = frozenset({130101, 130102, 410100})
"""Sent too fast (20 a minute per robot): worth a retry later. 310000 (signature,
keyword, IP), 300001 and 400101 (token), 400102 (robot stopped) and the rest: permanent."""
WECOM_RETRY = frozenset({45009, 45033, -1})
"""45009 api freq out of limit, 45033 too many concurrent calls, -1 system busy."""
FEISHU_RETRY = frozenset({11232, 99991400})
"""11232 frequency limited (100 a minute, 5 a second), 99991400 request rate limit.
9499 is "Bad Request" (a malformed body), 19021 sign, 19022 IP, 19024 keyword:
permanent."""


# -- channels --------------------------------------------------------------------------


class _Channel(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    @property
    def kind(self) -> str:
        """The channel's kind (its tag: webhook, dingtalk, wecom, feishu, sms, email)."""
        return type(self).__struct_config__.tag

    def masked(self) -> dict[str, Any]:
        """The settings as a desk may show them: secrets, URL tokens and keys, header
        values and key-like values in an SMS template as ``****``."""
        shown = msgspec.to_builtins(self)
        for name, value in shown.items():
            if name == "url":
                shown[name] = mask_url(value)
            elif name == "secret" and value is not None:
                shown[name] = MASK
            elif name == "headers":
                shown[name] = {key: MASK for key in value}
            elif name == "body":
                shown[name] = _TEMPLATE_SECRET.sub(rf"\1{MASK}", value)
        return shown

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.masked().items() if k != "kind")
        return f"{type(self).__name__}({fields})"

    def __rich_repr__(self):
        yield from ((k, v) for k, v in self.masked().items() if k != "kind")


class Webhook(_Channel, kw_only=True, tag="webhook"):
    """A POST of the notice as JSON (its fields, plus ``sent_at``), with headers
    ``X-YRD-Delivery: <notice_id>`` and ``X-YRD-Timestamp: <unix seconds>``; with a
    secret also ``X-YRD-Signature: sha256=<hex>``, the hex HMAC-SHA256 keyed with the
    secret (UTF-8) of ``f"{timestamp}.".encode() + body`` (the raw body bytes). A receiver
    recomputes it, compares in constant time and refuses a timestamp more than a few
    minutes off its clock (:func:`verify_webhook`); it drops a repeated X-YRD-Delivery."""

    url: str
    secret: str | None = None


class DingTalk(_Channel, kw_only=True, tag="dingtalk"):
    url: str
    """https://oapi.dingtalk.com/robot/send?access_token=..."""
    secret: str | None = None
    """The "加签" secret (SEC...)."""
    at_mobiles: list[str] = []
    at_all: bool = False


class WeCom(_Channel, kw_only=True, tag="wecom"):
    url: str
    """https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=..."""
    mentioned_mobiles: list[str] = []


class Feishu(_Channel, kw_only=True, tag="feishu"):
    url: str
    """https://open.feishu.cn/open-apis/bot/v2/hook/<token>"""
    secret: str | None = None


class Sms(_Channel, kw_only=True, tag="sms"):
    """A generic HTTP SMS gateway, one request per phone. ``body`` is a template with
    ``{phone}``, ``{text}`` and ``{notice_id}``, filled with values JSON-escaped
    (``content_type="json"``: put the placeholders inside quotes) or form-encoded
    (``"form"``). With ``method="GET"`` the filled template, form-encoded, is the URL's
    query. Success: a status in ``ok_status`` and, when set, ``ok_contains`` in the
    answer's body."""

    url: str
    phones: list[str]
    method: Literal["POST", "GET"] = "POST"
    body: str
    content_type: Literal["json", "form"] = "json"
    headers: dict[str, str] = {}
    ok_status: list[int] = msgspec.field(default_factory=lambda: [200])
    ok_contains: str | None = None


class Email(_Channel, kw_only=True, tag="email"):
    to: list[str]


Channel = Webhook | DingTalk | WeCom | Feishu | Sms | Email
ROBOTS = (DingTalk, WeCom, Feishu)


# -- requests and answers --------------------------------------------------------------


class HttpRequest(msgspec.Struct, frozen=True, kw_only=True):
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    label: str = ""
    """Whom it is for, when a channel sends several (an SMS: the phone)."""

    def __repr__(self) -> str:
        return f"HttpRequest({self.method} {mask_url(self.url)}, {len(self.body)} bytes)"


class EmailRequest(msgspec.Struct, frozen=True, kw_only=True):
    to: list[str]
    message: EmailMessage


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    retry: bool = False
    """Not delivered, but worth another attempt (rate limit, server error, no connection)."""
    reason: str = ""


_SECRET_QUERY_KEY = re.compile(r"token|key|secret|sign|pass|auth", re.I)
_HOOK_PATH = re.compile(r"(/hook/)[^/?#]+")
_TEMPLATE_SECRET = re.compile(  # "apikey": "..." in a JSON template, apikey=... in a form
    r'((?:"[^"]*(?:token|key|secret|sign|pass|auth)[^"]*"\s*:\s*")|'
    r'(?:\b[\w.-]*(?:token|key|secret|sign|pass|auth)[\w.-]*=))(?!\{)[^"&{]*', re.I)


def mask_url(url: str) -> str:
    """The URL with its credentials as ``****``: a password in the user part, query
    values whose name holds token, key, secret, sign, pass or auth (DingTalk's
    access_token, WeCom's key) and the token after ``/hook/`` (Feishu)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{hostport}"
    query = "&".join(
        f"{item.partition('=')[0]}={MASK}" if _SECRET_QUERY_KEY.search(item.partition("=")[0])
        else item for item in parts.query.split("&")) if parts.query else ""
    path = _HOOK_PATH.sub(rf"\1{MASK}", parts.path)
    return urlunsplit(parts._replace(netloc=netloc, path=path, query=query))


# -- text ------------------------------------------------------------------------------


def title(notice: Notice) -> str:
    """The subject, marked when the notice may be a repeat and counted when a digest."""
    text = notice.subject
    if notice.items > 1:
        text = f"{text}（共 {notice.items} 条 / {notice.items} alerts）"
    return f"【{REPEAT_MARK}】{text}" if notice.repeat else text


_MD_INLINE = re.compile(r"([\\`*_\[\]<>~|])")
_MD_LINE_START = re.compile(r"^(\s*)([#>+\-=]|\d+\.)", re.M)


def escape_markdown(text: str) -> str:
    """User text made inert in markdown: inline markup characters backslash-escaped, and
    a heading, quote or list marker at a line's start too."""
    text = _MD_INLINE.sub(r"\\\1", text)
    return _MD_LINE_START.sub(lambda m: m[1] + "\\" + m[2], text)


def _md_link(notice: Notice) -> str:
    if not notice.link:
        return ""
    href = notice.link.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
    return f"[查看告警 / open on the desk]({href})"


def truncate_utf8(text: str, limit: int, ellipsis: str = "…") -> str:
    """At most ``limit`` bytes of UTF-8, cut between characters, ``ellipsis`` when cut."""
    data = text.encode()
    if len(data) <= limit:
        return text
    room = limit - len(ellipsis.encode())
    return data[:room].decode(errors="ignore") + ellipsis


def sms_text(notice: Notice) -> str:
    """The subject and the link in at most :data:`SMS_LIMIT` characters: the subject cut
    with "…" to leave the link whole (a link too long for the room is dropped)."""
    link = f" {notice.link}" if notice.link else ""
    if len(link) > SMS_LIMIT // 2:
        link = ""
    head = title(notice)
    room = SMS_LIMIT - len(link)
    if len(head) > room:
        head = head[: room - 1] + "…"
    return head + link


def plain_body(notice: Notice) -> str:
    top = [REPEAT_MARK] if notice.repeat else []
    count = [f"共 {notice.items} 条 / {notice.items} alerts"] if notice.items > 1 else []
    link = [f"查看 / open: {notice.link}"] if notice.link else []
    return "\n".join([*top, notice.subject, *count, "", *notice.lines, *([""] + link if link else [])]) + "\n"


# -- signing ---------------------------------------------------------------------------


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return now


def webhook_signature(secret: str, timestamp: int | str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify_webhook(secret: str, timestamp: str | int, body: bytes, signature: str,
                   now: datetime, tolerance_s: float = 300) -> bool:
    """A receiver's check of X-YRD-Signature: the right secret, this body, and a
    timestamp within ``tolerance_s`` of ``now``."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(_aware(now).timestamp() - sent) > tolerance_s:
        return False
    return hmac.compare_digest(webhook_signature(secret, sent, body), signature)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """Base64 of HMAC-SHA256(secret, f"{timestamp}\\n{secret}"), URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return quote_plus(base64.b64encode(digest.digest()))


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Base64 of HMAC-SHA256 keyed with f"{timestamp}\\n{secret}" over nothing."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


# -- rendering -------------------------------------------------------------------------


def render(channel: Channel, notice: Notice, *, now: datetime,
           sender: str = "yrd-hazmat@localhost") -> list[HttpRequest] | EmailRequest:
    """The request(s) that carry ``notice`` on ``channel``, signed as of ``now``."""
    _aware(now)
    match channel:
        case Email():
            return EmailRequest(to=list(channel.to), message=render_email(channel, notice, now=now, sender=sender))
        case Webhook():
            return [_webhook(channel, notice, now)]
        case DingTalk():
            return [_dingtalk(channel, notice, now)]
        case WeCom():
            return _wecom(channel, notice)
        case Feishu():
            return [_feishu(channel, notice, now)]
        case Sms():
            return [_sms(channel, notice, phone) for phone in channel.phones]
    raise TypeError(f"not a channel: {channel!r}")


def _json_post(url: str, payload: Any, headers: dict[str, str] | None = None) -> HttpRequest:
    return HttpRequest(method="POST", url=url, body=json.dumps(payload, ensure_ascii=False).encode(),
                       headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def _webhook(channel: Webhook, notice: Notice, now: datetime) -> HttpRequest:
    timestamp = int(now.timestamp())
    body = msgspec.json.encode({**msgspec.to_builtins(notice), "sent_at": now.isoformat()})
    headers = {"Content-Type": "application/json", "X-YRD-Delivery": notice.notice_id,
               "X-YRD-Timestamp": str(timestamp)}
    if channel.secret:
        headers["X-YRD-Signature"] = webhook_signature(channel.secret, timestamp, body)
    return HttpRequest(method="POST", url=channel.url, headers=headers, body=body)


def _markdown_lines(notice: Notice) -> list[str]:
    lines = [escape_markdown(line) for line in notice.lines]
    return lines + ([_md_link(notice)] if notice.link else [])


def _dingtalk(channel: DingTalk, notice: Notice, now: datetime) -> HttpRequest:
    head = title(notice)
    mentions = " ".join(f"@{mobile}" for mobile in channel.at_mobiles)
    text = "\n\n".join([f"### {escape_markdown(head)}", *_markdown_lines(notice), *([mentions] if mentions else [])])
    url = channel.url
    if channel.secret:
        ms = int(now.timestamp() * 1000)
        url += f"{'&' if '?' in url else '?'}timestamp={ms}&sign={dingtalk_sign(channel.secret, ms)}"
    return _json_post(url, {
        "msgtype": "markdown",
        "markdown": {"title": head, "text": text},
        "at": {"atMobiles": list(channel.at_mobiles), "isAtAll": channel.at_all},
    })


def _wecom(channel: WeCom, notice: Notice) -> list[HttpRequest]:
    head = title(notice)
    colour = {"critical": "warning", "warning": "warning", "info": "comment"}[notice.severity]
    content = "\n".join([f'**<font color="{colour}">{escape_markdown(head)}</font>**', *_markdown_lines(notice)])
    requests = [_json_post(channel.url, {"msgtype": "markdown",
                                         "markdown": {"content": truncate_utf8(content, WECOM_MARKDOWN_LIMIT)}})]
    if channel.mentioned_mobiles:
        requests.append(_json_post(channel.url, {"msgtype": "text", "text": {
            "content": truncate_utf8(f"请查看 / please see: {head}", WECOM_TEXT_LIMIT),
            "mentioned_mobile_list": list(channel.mentioned_mobiles)}}))
    return requests


def _feishu(channel: Feishu, notice: Notice, now: datetime) -> HttpRequest:
    paragraphs: list[list[dict[str, str]]] = [[{"tag": "text", "text": line}] for line in notice.lines]
    if notice.link:
        paragraphs.append([{"tag": "a", "text": "查看告警 / open on the desk", "href": notice.link}])
    payload: dict[str, Any] = {}
    if channel.secret:
        seconds = int(now.timestamp())
        payload |= {"timestamp": str(seconds), "sign": feishu_sign(channel.secret, seconds)}
    payload |= {"msg_type": "post",
                "content": {"post": {"zh_cn": {"title": title(notice), "content": paragraphs}}}}
    return _json_post(channel.url, payload)


_PLACEHOLDER = re.compile(r"\{(phone|text|notice_id)\}")


def _sms(channel: Sms, notice: Notice, phone: str) -> HttpRequest:
    values = {"phone": phone, "text": sms_text(notice), "notice_id": notice.notice_id}
    form = channel.method == "GET" or channel.content_type == "form"
    escape = quote_plus if form else (lambda v: json.dumps(v, ensure_ascii=False)[1:-1])
    filled = _PLACEHOLDER.sub(lambda m: escape(values[m[1]]), channel.body)
    if channel.method == "GET":
        url = channel.url + ("&" if "?" in channel.url else "?") + filled if filled else channel.url
        return HttpRequest(method="GET", url=url, headers=dict(channel.headers), body=b"", label=phone)
    kind = ("application/x-www-form-urlencoded; charset=utf-8" if form
            else "application/json; charset=utf-8")
    return HttpRequest(method="POST", url=channel.url, headers={"Content-Type": kind, **channel.headers},
                       body=filled.encode(), label=phone)


_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def message_id(notice_id: str) -> str:
    """``<id@yrd-hazmat>``, the id's characters outside ``[A-Za-z0-9_-]`` as ``=XX``
    (UTF-8 hex): the same notice, the same Message-ID, on every attempt."""
    safe = _MSGID_UNSAFE.sub(lambda m: "".join(f"={b:02X}" for b in m[0].encode()), notice_id)
    return f"<{safe}@yrd-hazmat>"


def render_email(channel: Email, notice: Notice, *, now: datetime, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(channel.to)
    message["Subject"] = notice.subject
    message["Message-ID"] = message_id(notice.notice_id)
    message["Date"] = format_datetime(_aware(now))
    message["X-YRD-Delivery"] = notice.notice_id
    message.set_content(plain_body(notice), cte="base64")  # 7-bit clean through any relay
    return message


# -- answers ---------------------------------------------------------------------------


def read_answer(channel: Channel, status: int, body: bytes) -> Answer:
    """What an HTTP answer means: delivered, worth a retry (429, 408, 5xx, a robot's rate
    limit), or refused for good (any other 4xx, a robot's other error codes)."""
    if isinstance(channel, Email):
        raise TypeError("an e-mail's answer is its SMTP reply (see notify.send)")
    text = body[:300].decode(errors="replace").strip()
    if isinstance(channel, Sms) and status in channel.ok_status:
        if channel.ok_contains is None or channel.ok_contains in body.decode(errors="replace"):
            return Answer(ok=True, reason=f"HTTP {status}")
        return Answer(ok=False, reason=f"HTTP {status} without {channel.ok_contains!r}: {text}")
    if isinstance(channel, ROBOTS):
        code, message = _robot_code(body)
        retry_codes = {DingTalk: DINGTALK_RETRY, WeCom: WECOM_RETRY, Feishu: FEISHU_RETRY}[type(channel)]
        if code in retry_codes:
            return Answer(ok=False, retry=True, reason=f"HTTP {status}, code {code}: {message}")
        if 200 <= status < 300:
            if code == 0:
                return Answer(ok=True, reason=f"code 0: {message}")
            return Answer(ok=False, reason=f"HTTP {status}, code {code}: {message or text}")
    elif 200 <= status < 300 and not isinstance(channel, Sms):
        return Answer(ok=True, reason=f"HTTP {status}")
    retry = status in (408, 429) or status >= 500
    return Answer(ok=False, retry=retry, reason=f"HTTP {status}: {text}")


def _robot_code(body: bytes) -> tuple[int | None, str]:
    """``errcode``/``errmsg`` (DingTalk, WeCom), ``code``/``msg`` or the older
    ``StatusCode``/``StatusMessage`` (Feishu); None when unreadable."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None, ""
    if not isinstance(answer, dict):
        return None, ""
    for code_key, msg_key in (("errcode", "errmsg"), ("code", "msg"), ("StatusCode", "StatusMessage")):
        code = answer.get(code_key)
        if isinstance(code, int) and not isinstance(code, bool):
            return code, str(answer.get(msg_key, ""))
    return None, ""
