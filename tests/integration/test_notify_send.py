"""Sending notices over real sockets: an aiohttp server on 127.0.0.1 plays each robot
(and our webhook's receiver, and an SMS gateway), answering from a script (delivered, rate
limited, HTTP 500, a dropped connection, no answer); an aiosmtpd server receives e-mail.
Nothing on the sending path is mocked."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import message_from_bytes, policy
from urllib.parse import parse_qs

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller

from yrd_hazmat.notify.channels import (DingTalk, Email, Feishu, Sms, WeCom, Webhook,
                                        verify_webhook)
from yrd_hazmat.notify.notice import Notice
from yrd_hazmat.notify.send import SmtpSettings, deliver

NOW = datetime(2026, 12, 7, 8, 30, tzinfo=timezone.utc)
SUBJECT = "紧急 苏A12345 危化品车辆超速"
NOTICE = Notice(notice_id="alert-42", subject=SUBJECT, severity="critical",
                lines=["速度 95 km/h，限速 80", '司机 "张三"\n电话 138'],
                link="https://desk.example/alerts/42")


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Endpoint:
    """Answers each request with the next step of its script: (status, JSON or bytes),
    "close" (drops the connection) or "hang" (never answers)."""

    script: list = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(Received(request.method, request.path, parse_qs(request.query_string),
                                      request.raw_path.partition("?")[2], dict(request.headers), body))
        step = self.script.pop(0)
        if callable(step):
            step = step(body)
        if step == "close":
            request.transport.close()
            return web.Response()
        if step == "hang":
            await asyncio.sleep(30)
        status, answer = step
        data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        return web.Response(status=status, body=data, content_type="application/json")


@pytest_asyncio.fixture(loop_scope="function")
async def endpoint():
    """Start an endpoint on 127.0.0.1 (a free port) for a path and query: ``await
    endpoint(path, script)``."""
    servers = []

    async def start(path_qs: str, script: list) -> Endpoint:
        point = Endpoint(script=list(script))
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", point.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        point.url = str(server.make_url("")).rstrip("/") + path_qs
        return point

    yield start
    for server in servers:
        await server.close()


@pytest_asyncio.fixture(loop_scope="function")
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


def free_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def send(channel, session, notice=NOTICE, timeout_s=5.0):
    answer = await deliver(channel, notice, now=NOW, session=session, smtp=None, timeout_s=timeout_s)
    return answer.ok, answer.retry


# -- each robot: delivered, rate limited, HTTP 500, connection dropped --


def check_dingtalk(got: Received) -> None:
    assert got.method == "POST" and got.path == "/robot/send"
    assert got.query["access_token"] == ["d1ngtok3n"]
    assert got.query["timestamp"] == ["1796632200000"]
    digest = hmac.new(b"SECd1ng", b"1796632200000\nSECd1ng", hashlib.sha256).digest()
    assert got.query["sign"] == [base64.b64encode(digest).decode()]
    body = json.loads(got.body)
    assert body["msgtype"] == "markdown" and body["markdown"]["title"] == SUBJECT
    assert body["at"] == {"atMobiles": ["13800000001"], "isAtAll": False}
    assert "@13800000001" in body["markdown"]["text"]


def check_wecom(got: Received) -> None:
    assert got.method == "POST" and got.path == "/cgi-bin/webhook/send"
    assert got.query["key"] == ["w3ck3y"]
    body = json.loads(got.body)
    assert body["msgtype"] == "markdown" and SUBJECT in body["markdown"]["content"]


def check_feishu(got: Received) -> None:
    assert got.method == "POST" and got.path == "/open-apis/bot/v2/hook/f3ishu-hook"
    body = json.loads(got.body)
    key = f"{body['timestamp']}\nf3ishu-secret".encode()
    assert body["timestamp"] == "1796632200"
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert body["msg_type"] == "post"
    assert body["content"]["post"]["zh_cn"]["title"] == SUBJECT


def check_webhook(got: Received) -> None:
    assert got.method == "POST" and got.path == "/hooks/yrd"
    assert got.headers["X-YRD-Delivery"] == "alert-42"
    assert verify_webhook("w3bh00k", got.headers["X-YRD-Timestamp"], got.body,
                          got.headers["X-YRD-Signature"], now=NOW)
    assert json.loads(got.body)["lines"] == NOTICE.lines


ROBOTS = {
    "dingtalk": (lambda url: DingTalk(url=url, secret="SECd1ng", at_mobiles=["13800000001"]),
                 "/robot/send?access_token=d1ngtok3n", {"errcode": 0, "errmsg": "ok"},
                 {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}, check_dingtalk),
    "wecom": (lambda url: WeCom(url=url), "/cgi-bin/webhook/send?key=w3ck3y",
              {"errcode": 0, "errmsg": "ok"}, {"errcode": 45009, "errmsg": "api freq out of limit"},
              check_wecom),
    "feishu": (lambda url: Feishu(url=url, secret="f3ishu-secret"), "/open-apis/bot/v2/hook/f3ishu-hook",
               {"code": 0, "msg": "success", "data": {}}, {"code": 11232, "msg": "frequency limited"},
               check_feishu),
    "webhook": (lambda url: Webhook(url=url, secret="w3bh00k"), "/hooks/yrd", b"", {"error": "slow down"},
                check_webhook),
}


@pytest.mark.parametrize("kind", list(ROBOTS))
async def test_robot_delivered_then_rate_limited_then_500_then_dropped(kind, endpoint, session):
    make, path, ok, limited, check = ROBOTS[kind]
    limit_status = 429 if kind == "webhook" else 200
    point = await endpoint(path, [(200, ok), (limit_status, limited), (500, b"oops"), "close"])
    channel = make(point.url)
    assert await send(channel, session) == (True, False)
    assert await send(channel, session) == (False, True)
    assert await send(channel, session) == (False, True)
    dropped = await deliver(channel, NOTICE, now=NOW, session=session, smtp=None)
    assert (dropped.ok, dropped.retry) == (False, True)
    assert "Disconnected" in dropped.reason or "Connection" in dropped.reason
    assert len(point.received) == 4
    check(point.received[0])


async def test_a_refused_signature_is_permanent_and_says_why(endpoint, session):
    point = await endpoint("/robot/send?access_token=d1ngtok3n",
                           [(200, {"errcode": 310000, "errmsg": "sign not match"})])
    answer = await deliver(DingTalk(url=point.url, secret="SECwrong"), NOTICE, now=NOW,
                           session=session, smtp=None)
    assert (answer.ok, answer.retry) == (False, False)
    assert "310000" in answer.reason and "sign not match" in answer.reason


async def test_the_dingtalk_sign_reaches_the_robot_percent_encoded_as_sent(endpoint, session):
    point = await endpoint("/robot/send?access_token=d1ngtok3n", [(200, {"errcode": 0, "errmsg": "ok"})])
    await send(DingTalk(url=point.url, secret="SECd1ng"), session)
    raw = dict(item.split("=", 1) for item in point.received[0].raw_query.split("&"))
    digest = hmac.new(b"SECd1ng", b"1796632200000\nSECd1ng", hashlib.sha256).digest()
    sign = base64.b64encode(digest).decode()
    assert raw["sign"] == sign.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


async def test_an_endpoint_that_does_not_answer_in_time_is_retried(endpoint, session):
    point = await endpoint("/hooks/yrd", ["hang"])
    answer = await deliver(Webhook(url=point.url), NOTICE, now=NOW, session=session, smtp=None,
                           timeout_s=0.3)
    assert (answer.ok, answer.retry) == (False, True)
    assert "Timeout" in answer.reason


async def test_nothing_listening_is_retried_and_the_reason_hides_the_token(session):
    url = f"http://127.0.0.1:{free_port()}/robot/send?access_token=d1ngtok3n"
    answer = await deliver(DingTalk(url=url), NOTICE, now=NOW, session=session, smtp=None)
    assert (answer.ok, answer.retry) == (False, True)
    assert "d1ngtok3n" not in answer.reason


async def test_wecom_mention_is_a_second_message_and_both_must_arrive(endpoint, session):
    point = await endpoint("/cgi-bin/webhook/send?key=w3ck3y", [
        (200, {"errcode": 0, "errmsg": "ok"}), (200, {"errcode": 45009, "errmsg": "api freq out of limit"})])
    answer = await deliver(WeCom(url=point.url, mentioned_mobiles=["13800000001"]), NOTICE, now=NOW,
                           session=session, smtp=None)
    assert (answer.ok, answer.retry) == (False, True)
    assert "1 of 2 failed: request 2" in answer.reason and "45009" in answer.reason
    mention = json.loads(point.received[1].body)
    assert mention["msgtype"] == "text"
    assert mention["text"]["mentioned_mobile_list"] == ["13800000001"]


# -- SMS: one request per phone, all must succeed --


def by_phone(body: bytes):
    sent = json.loads(body)  # fails the test if the template did not stay JSON
    if sent["mobile"] == "13900000002":
        return 200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL"}
    return 200, {"Code": "OK"}


async def test_sms_goes_to_each_phone_and_names_the_one_that_failed(endpoint, session):
    point = await endpoint("/sms/send", [by_phone, by_phone])
    sms = Sms(url=point.url, phones=["13800000001", "13900000002"],
              body='{"mobile": "{phone}", "content": "{text}", "ref": "{notice_id}"}',
              headers={"X-Api-Key": "sms-k3y"}, ok_contains='"Code": "OK"')
    answer = await deliver(sms, NOTICE, now=NOW, session=session, smtp=None)
    assert (answer.ok, answer.retry) == (False, False)
    assert "13900000002" in answer.reason and "13800000001" not in answer.reason
    first = point.received[0]
    assert first.headers["X-Api-Key"] == "sms-k3y"
    assert json.loads(first.body) == {"mobile": "13800000001", "ref": "alert-42",
                                      "content": f"{SUBJECT} https://desk.example/alerts/42"}


async def test_sms_by_get_with_a_form_query(endpoint, session):
    point = await endpoint("/sms?user=yrd", [(200, b"OK 1"), (200, b"OK 2")])
    sms = Sms(url=point.url, phones=["13800000001", "13900000002"], method="GET",
              body="to={phone}&msg={text}", ok_contains="OK")
    assert await send(sms, session) == (True, False)
    assert [r.method for r in point.received] == ["GET", "GET"]
    assert point.received[1].query == {"user": ["yrd"], "to": ["13900000002"],
                                       "msg": [f"{SUBJECT} https://desk.example/alerts/42"]}


# -- e-mail over SMTP --


class Inbox:
    def __init__(self, reply: str = "250 Message accepted for delivery") -> None:
        self.reply = reply
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return self.reply


class LocalSmtpd(Controller):
    """aiosmtpd's Controller on port 0: its readiness probe must use the bound port."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def smtpd():
    started = []

    def start(reply: str = "250 Message accepted for delivery") -> tuple[Inbox, SmtpSettings]:
        inbox = Inbox(reply)
        controller = LocalSmtpd(inbox, hostname="127.0.0.1", port=0)
        controller.start()
        started.append(controller)
        return inbox, SmtpSettings(host="127.0.0.1", port=controller.port, sender="yrd@hazmat.example",
                                   timeout_s=5)

    yield start
    for controller in started:
        controller.stop()


async def test_email_arrives_with_its_chinese_subject_message_id_and_body(smtpd, session):
    inbox, smtp = smtpd()
    answer = await deliver(Email(to=["duty@nj.example"]), NOTICE, now=NOW, session=session, smtp=smtp)
    assert (answer.ok, answer.retry) == (True, False)
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "yrd@hazmat.example" and envelope.rcpt_tos == ["duty@nj.example"]
    mail = message_from_bytes(envelope.original_content, policy=policy.default)
    assert mail["Subject"] == SUBJECT
    assert mail["Message-ID"] == "<alert-42@yrd-hazmat>"
    body = mail.get_content()
    assert "速度 95 km/h，限速 80" in body and "https://desk.example/alerts/42" in body


async def test_email_refused_with_550_is_permanent(smtpd, session):
    _, smtp = smtpd("550 5.1.1 mailbox unavailable")
    answer = await deliver(Email(to=["nobody@nj.example"]), NOTICE, now=NOW, session=session, smtp=smtp)
    assert (answer.ok, answer.retry) == (False, False)
    assert "550" in answer.reason


async def test_email_deferred_with_451_is_retried(smtpd, session):
    _, smtp = smtpd("451 4.3.0 try again later")
    answer = await deliver(Email(to=["duty@nj.example"]), NOTICE, now=NOW, session=session, smtp=smtp)
    assert (answer.ok, answer.retry) == (False, True)


async def test_email_to_a_closed_port_is_retried(session):
    smtp = SmtpSettings(host="127.0.0.1", port=free_port(), timeout_s=2)
    answer = await deliver(Email(to=["duty@nj.example"]), NOTICE, now=NOW, session=session, smtp=smtp)
    assert (answer.ok, answer.retry) == (False, True)
    assert "Connection" in answer.reason or "refused" in answer.reason


async def test_an_email_channel_without_smtp_settings_is_a_programming_error(session):
    with pytest.raises(ValueError):
        await deliver(Email(to=["duty@nj.example"]), NOTICE, now=NOW, session=session, smtp=None)
