"""How a notice is carried on each channel: the robots' payloads laid out as their
documentation shows them, signatures recomputed here from the documented algorithms,
what each answer means, secrets kept out of reprs, SMS templates, e-mail headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy

import msgspec
import pytest
from rich.pretty import pretty_repr

from yrd_hazmat.notify.channels import (
    REPEAT_MARK, SMS_LIMIT, Channel, DingTalk, Email, EmailRequest, Feishu, Sms, WeCom,
    Webhook, escape_markdown, mask_url, read_answer, render, sms_text, truncate_utf8,
    verify_webhook)
from yrd_hazmat.notify.notice import Notice
from yrd_hazmat.notify.send import SmtpSettings

NOW = datetime(2026, 12, 7, 8, 30, tzinfo=timezone.utc)  # 1796632200 s
SUBJECT = "紧急 苏A12345 危化品车辆超速"
LINES = ["速度 95 km/h，限速 80", "位置 G2 京沪高速 无锡段"]
LINK = "https://desk.example/alerts/42"
NOTICE = Notice(notice_id="alert-42", subject=SUBJECT, lines=LINES, severity="critical", link=LINK)

DINGTALK_URL = "https://oapi.dingtalk.com/robot/send?access_token=d1ngtok3n"
DINGTALK_SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
WECOM_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
FEISHU_URL = "https://open.feishu.cn/open-apis/bot/v2/hook/5e3d587e-d78e-4a07-bd07-265f269f86fd"
FEISHU_SECRET = "nIMtb7r3N9pkXyXdtAbx6e"


def only(requests):
    assert isinstance(requests, list) and len(requests) == 1
    return requests[0]


def body_of(request) -> dict:
    return json.loads(request.body.decode("utf-8"))


# -- DingTalk: "自定义机器人发送群消息" (markdown type, at) and "自定义机器人安全设置" (加签) --


def test_dingtalk_markdown_payload_is_the_documented_layout():
    channel = DingTalk(url=DINGTALK_URL, at_mobiles=["13800000001"])
    request = only(render(channel, NOTICE, now=NOW))
    assert request.method == "POST"
    assert request.url == DINGTALK_URL  # no secret: no timestamp, no sign
    assert request.headers["Content-Type"].startswith("application/json")
    assert body_of(request) == {
        "msgtype": "markdown",
        "markdown": {
            "title": "紧急 苏A12345 危化品车辆超速",
            "text": "### 紧急 苏A12345 危化品车辆超速\n\n"
                    "速度 95 km/h，限速 80\n\n"
                    "位置 G2 京沪高速 无锡段\n\n"
                    "[查看告警 / open on the desk](https://desk.example/alerts/42)\n\n"
                    "@13800000001",
        },
        "at": {"atMobiles": ["13800000001"], "isAtAll": False},
    }


def test_dingtalk_mentions_every_at_mobile_in_the_text_and_can_mention_all():
    channel = DingTalk(url=DINGTALK_URL, at_mobiles=["13800000001", "13900000002"], at_all=True)
    body = body_of(only(render(channel, NOTICE, now=NOW)))
    assert "@13800000001" in body["markdown"]["text"] and "@13900000002" in body["markdown"]["text"]
    assert body["at"] == {"atMobiles": ["13800000001", "13900000002"], "isAtAll": True}


def test_dingtalk_sign_is_the_documented_hmac_of_timestamp_and_secret():
    request = only(render(DingTalk(url=DINGTALK_URL, secret=DINGTALK_SECRET), NOTICE, now=NOW))
    base, _, query = request.url.partition("?")
    assert base == "https://oapi.dingtalk.com/robot/send"
    raw = dict(item.split("=", 1) for item in query.split("&"))
    assert raw["access_token"] == "d1ngtok3n"
    assert raw["timestamp"] == "1796632200000"  # milliseconds
    # The docs' Python sample: string_to_sign = '{}\n{}'.format(timestamp, secret),
    # hmac.new(secret, string_to_sign, sha256), base64, urllib.parse.quote_plus.
    # (Neither DingTalk's nor Feishu's page publishes a worked timestamp/secret/sign
    # triple, so the value is recomputed here.)
    digest = hmac.new(DINGTALK_SECRET.encode("utf-8"),
                      "1796632200000\n{}".format(DINGTALK_SECRET).encode("utf-8"),
                      digestmod=hashlib.sha256).digest()
    assert raw["sign"] == urllib.parse.quote_plus(base64.b64encode(digest))
    assert "+" not in raw["sign"] and "/" not in raw["sign"] and "=" not in raw["sign"]


# -- WeCom: "群机器人配置说明" (markdown: content ≤ 4096 bytes; text: mentioned_mobile_list) --


def test_wecom_markdown_payload_is_the_documented_layout():
    request = only(render(WeCom(url=WECOM_URL), NOTICE, now=NOW))
    assert request.url == WECOM_URL
    assert body_of(request) == {
        "msgtype": "markdown",
        "markdown": {
            "content": '**<font color="warning">紧急 苏A12345 危化品车辆超速</font>**\n'
                       "速度 95 km/h，限速 80\n"
                       "位置 G2 京沪高速 无锡段\n"
                       "[查看告警 / open on the desk](https://desk.example/alerts/42)",
        },
    }


def test_wecom_mobiles_are_mentioned_by_a_following_text_message():
    markdown, mention = render(WeCom(url=WECOM_URL, mentioned_mobiles=["13800000001"]), NOTICE, now=NOW)
    assert body_of(markdown)["msgtype"] == "markdown"
    assert body_of(mention) == {
        "msgtype": "text",
        "text": {
            "content": "请查看 / please see: 紧急 苏A12345 危化品车辆超速",
            "mentioned_mobile_list": ["13800000001"],
        },
    }


def test_wecom_markdown_is_cut_to_4096_bytes_between_characters():
    long_lines = ["a" + "危" * 1000, "化" * 1000]  # 3 bytes a character, off by one
    notice = msgspec.structs.replace(NOTICE, lines=long_lines)
    content = body_of(only(render(WeCom(url=WECOM_URL), notice, now=NOW)))["markdown"]["content"]
    assert 4096 - 3 - 2 <= len(content.encode("utf-8")) <= 4096
    assert content.endswith("…")
    full = '**<font color="warning">' + SUBJECT + "</font>**\n" + "\n".join(long_lines)
    assert full.startswith(content[:-1])


def test_truncate_utf8_drops_a_partial_character():
    assert truncate_utf8("ab" + "危" * 10, 9) == "ab危…"  # 2 + 3 + 3 = 8 bytes, not 9
    assert truncate_utf8("ab危", 5) == "ab危"


# -- Feishu: "自定义机器人使用指南" (post rich text; 签名校验 in the body) --


def test_feishu_post_payload_is_the_documented_layout_with_its_sign():
    request = only(render(Feishu(url=FEISHU_URL, secret=FEISHU_SECRET), NOTICE, now=NOW))
    assert request.url == FEISHU_URL
    # The docs' Python sample: string_to_sign = '{}\n{}'.format(timestamp, secret);
    # hmac.new(string_to_sign.encode("utf-8"), digestmod=hashlib.sha256) (an empty
    # message), base64.
    sign = base64.b64encode(hmac.new("1796632200\n{}".format(FEISHU_SECRET).encode("utf-8"),
                                     digestmod=hashlib.sha256).digest()).decode("utf-8")
    assert body_of(request) == {
        "timestamp": "1796632200",
        "sign": sign,
        "msg_type": "post",
        "content": {"post": {"zh_cn": {
            "title": "紧急 苏A12345 危化品车辆超速",
            "content": [
                [{"tag": "text", "text": "速度 95 km/h，限速 80"}],
                [{"tag": "text", "text": "位置 G2 京沪高速 无锡段"}],
                [{"tag": "a", "text": "查看告警 / open on the desk", "href": "https://desk.example/alerts/42"}],
            ],
        }}},
    }


def test_feishu_without_a_secret_sends_no_sign():
    body = body_of(only(render(Feishu(url=FEISHU_URL), NOTICE, now=NOW)))
    assert "sign" not in body and "timestamp" not in body
    assert body["msg_type"] == "post"


# -- our webhook --


WEBHOOK = Webhook(url="https://ops.example/hooks/yrd", secret="s3cret")


def test_webhook_posts_the_notice_as_json_with_delivery_and_signature():
    request = only(render(WEBHOOK, NOTICE, now=NOW))
    assert body_of(request) == {
        "notice_id": "alert-42", "subject": SUBJECT, "lines": LINES, "severity": "critical",
        "link": LINK, "repeat": False, "items": 1, "kind": "alert",
        "sent_at": "2026-12-07T08:30:00+00:00",
    }
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-YRD-Delivery"] == "alert-42"
    assert request.headers["X-YRD-Timestamp"] == "1796632200"
    expected = hmac.new(b"s3cret", b"1796632200." + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-YRD-Signature"] == f"sha256={expected}"


def test_webhook_without_a_secret_is_unsigned():
    request = only(render(Webhook(url="https://ops.example/hooks/yrd"), NOTICE, now=NOW))
    assert "X-YRD-Signature" not in request.headers


def test_verify_webhook_accepts_the_signed_body_and_refuses_tampering_and_stale_times():
    request = only(render(WEBHOOK, NOTICE, now=NOW))
    ts, sig = request.headers["X-YRD-Timestamp"], request.headers["X-YRD-Signature"]
    assert verify_webhook("s3cret", ts, request.body, sig, now=NOW + timedelta(seconds=299))
    assert not verify_webhook("s3cret", ts, request.body.replace(b"95", b"59"), sig, now=NOW)
    assert not verify_webhook("other", ts, request.body, sig, now=NOW)
    assert not verify_webhook("s3cret", ts, request.body, sig, now=NOW + timedelta(seconds=301))
    assert not verify_webhook("s3cret", str(int(ts) + 1), request.body, sig, now=NOW)
    assert not verify_webhook("s3cret", "soon", request.body, sig, now=NOW)


# -- text: repeats, digests, markdown escaping --


def test_repeat_and_digest_show_in_every_chat_title():
    notice = msgspec.structs.replace(NOTICE, repeat=True, items=5, kind="digest")
    for channel in (DingTalk(url=DINGTALK_URL), Feishu(url=FEISHU_URL)):
        body = body_of(only(render(channel, notice, now=NOW)))
        head = body["markdown"]["title"] if "markdown" in body else body["content"]["post"]["zh_cn"]["title"]
        assert head.startswith(f"【{REPEAT_MARK}】") and "共 5 条" in head
    content = body_of(only(render(WeCom(url=WECOM_URL), notice, now=NOW)))["markdown"]["content"]
    assert REPEAT_MARK in content and "共 5 条" in content
    assert sms_text(notice).startswith(f"【{REPEAT_MARK}】")


def test_user_text_is_escaped_in_markdown_channels():
    notice = msgspec.structs.replace(NOTICE, lines=["# 司机 **张三** [电话](tel:1) <@all>"], link=None)
    text = body_of(only(render(DingTalk(url=DINGTALK_URL), notice, now=NOW)))["markdown"]["text"]
    assert text.endswith("\\# 司机 \\*\\*张三\\*\\* \\[电话\\](tel:1) \\<@all\\>")
    assert escape_markdown("2026-12-07 a_b") == "2026-12-07 a\\_b"  # a dash inside a line stays


def test_a_markdown_link_cannot_break_out_of_its_parentheses():
    notice = msgspec.structs.replace(NOTICE, link="https://desk.example/a (1)")
    text = body_of(only(render(DingTalk(url=DINGTALK_URL), notice, now=NOW)))["markdown"]["text"]
    assert "(https://desk.example/a%20%281%29)" in text


# -- answers --


def answer(channel, status, payload):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    got = read_answer(channel, status, body)
    return got.ok, got.retry


DING, WE, FEI = DingTalk(url=DINGTALK_URL), WeCom(url=WECOM_URL), Feishu(url=FEISHU_URL)


@pytest.mark.parametrize(("channel", "status", "payload", "expected"), [
    (DING, 200, {"errcode": 0, "errmsg": "ok"}, (True, False)),
    (DING, 200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}, (False, True)),
    (DING, 200, {"errcode": 410100, "errmsg": "发送速度太快而限流"}, (False, True)),
    (DING, 200, {"errcode": 310000, "errmsg": "sign not match"}, (False, False)),
    (DING, 200, {"errcode": 300001, "errmsg": "token is not exist"}, (False, False)),
    (WE, 200, {"errcode": 0, "errmsg": "ok"}, (True, False)),
    (WE, 200, {"errcode": 45009, "errmsg": "api freq out of limit"}, (False, True)),
    (WE, 200, {"errcode": 93000, "errmsg": "invalid webhook url"}, (False, False)),
    (FEI, 200, {"code": 0, "msg": "success", "data": {}}, (True, False)),
    (FEI, 200, {"Extra": None, "StatusCode": 0, "StatusMessage": "success"}, (True, False)),
    (FEI, 200, {"code": 11232, "msg": "frequency limited"}, (False, True)),
    (FEI, 400, {"code": 11232, "msg": "frequency limited"}, (False, True)),
    (FEI, 200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}, (False, False)),
    (FEI, 400, {"code": 9499, "msg": "Bad Request", "data": {}}, (False, False)),
    (DING, 200, b"<html>gateway</html>", (False, False)),
    (WE, 200, b"", (False, False)),
])
def test_robot_answers(channel, status, payload, expected):
    assert answer(channel, status, payload) == expected


@pytest.mark.parametrize("channel", [DING, WE, FEI, WEBHOOK])
@pytest.mark.parametrize(("status", "expected"), [
    (429, (False, True)), (500, (False, True)), (502, (False, True)), (503, (False, True)),
    (408, (False, True)), (400, (False, False)), (401, (False, False)), (404, (False, False)),
])
def test_http_status_classes(channel, status, expected):
    assert answer(channel, status, b"busy") == expected


def test_webhook_answers_any_2xx_as_delivered_and_says_why_not():
    assert answer(WEBHOOK, 204, b"") == (True, False)
    assert answer(WEBHOOK, 200, b"whatever") == (True, False)
    assert "HTTP 503" in read_answer(WEBHOOK, 503, b"").reason
    assert "130101" in read_answer(DING, 200, b'{"errcode":130101,"errmsg":"send too fast"}').reason


def test_sms_success_needs_an_ok_status_and_the_ok_text():
    sms = Sms(url="https://sms.example/send", phones=["13800000001"], body="{text}",
              ok_status=[200, 201], ok_contains='"code":"OK"')
    assert answer(sms, 201, b'{"code":"OK"}') == (True, False)
    assert answer(sms, 200, b'{"code":"isv.BUSINESS_LIMIT_CONTROL"}') == (False, False)
    assert answer(sms, 202, b'{"code":"OK"}') == (False, False)
    assert answer(sms, 503, b"") == (False, True)


# -- SMS templates --


QUOTED = msgspec.structs.replace(NOTICE, subject='紧急 "苏A12345" 超速\n注意 \\ 反斜杠')


def test_sms_json_template_stays_valid_json_with_quotes_and_newlines():
    sms = Sms(url="https://sms.example/send", phones=["13800000001", "13900000002"],
              body='{"mobile": "{phone}", "content": "{text}", "ref": "{notice_id}"}',
              headers={"Authorization": "Bearer t0k"})
    requests = render(sms, QUOTED, now=NOW)
    assert [r.label for r in requests] == ["13800000001", "13900000002"]
    assert [json.loads(r.body) for r in requests] == [
        {"mobile": "13800000001", "content": sms_text(QUOTED), "ref": "alert-42"},
        {"mobile": "13900000002", "content": sms_text(QUOTED), "ref": "alert-42"},
    ]
    assert sms_text(QUOTED) == '紧急 "苏A12345" 超速\n注意 \\ 反斜杠 https://desk.example/alerts/42'
    assert requests[0].headers == {"Content-Type": "application/json; charset=utf-8",
                                   "Authorization": "Bearer t0k"}


def test_sms_form_template_is_form_encoded_and_get_puts_it_in_the_query():
    form = Sms(url="https://sms.example/send", phones=["13800000001"], content_type="form",
               body="to={phone}&msg={text}")
    request = only(render(form, QUOTED, now=NOW))
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert urllib.parse.parse_qs(request.body.decode()) == {"to": ["13800000001"], "msg": [sms_text(QUOTED)]}
    get = msgspec.structs.replace(form, method="GET", url="https://sms.example/send?user=yrd")
    request = only(render(get, QUOTED, now=NOW))
    assert request.method == "GET" and request.body == b""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query)
    assert query == {"user": ["yrd"], "to": ["13800000001"], "msg": [sms_text(QUOTED)]}


def test_a_placeholder_inside_a_value_is_not_filled_again():
    notice = msgspec.structs.replace(NOTICE, subject="{phone}", link=None)
    sms = Sms(url="https://sms.example/send", phones=["13800000001"], body='{"t": "{text}", "p": "{phone}"}')
    assert json.loads(only(render(sms, notice, now=NOW)).body) == {"t": "{phone}", "p": "13800000001"}


def test_a_long_sms_is_cut_to_three_segments_keeping_the_link():
    notice = msgspec.structs.replace(NOTICE, subject="超速" * 200)
    text = sms_text(notice)
    assert len(text) == SMS_LIMIT == 201
    assert text.endswith("… https://desk.example/alerts/42")


# -- e-mail --


def test_email_headers_and_body():
    notice = msgspec.structs.replace(NOTICE, notice_id="alert:42/7", repeat=True)
    request = render(Email(to=["duty@nj.example", "ops@nj.example"]), notice, now=NOW,
                     sender="yrd@hazmat.example")
    assert isinstance(request, EmailRequest)
    assert request.to == ["duty@nj.example", "ops@nj.example"]
    raw = request.message.as_bytes()
    assert raw.isascii()  # the Chinese subject went out RFC 2047-encoded
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == SUBJECT
    assert parsed["From"] == "yrd@hazmat.example"
    assert parsed["To"] == "duty@nj.example, ops@nj.example"
    assert parsed["Message-ID"] == "<alert=3A42=2F7@yrd-hazmat>"
    assert parsed["Date"].datetime == NOW
    body = parsed.get_content()
    assert body.splitlines()[0] == REPEAT_MARK
    assert all(line in body for line in LINES) and LINK in body


def test_the_same_notice_gets_the_same_message_id():
    first = render(Email(to=["a@x.example"]), NOTICE, now=NOW).message["Message-ID"]
    again = render(Email(to=["a@x.example"]), NOTICE, now=NOW + timedelta(minutes=5)).message["Message-ID"]
    assert first == again == "<alert-42@yrd-hazmat>"


# -- secrets out of sight --


def test_reprs_hide_secrets_tokens_and_keys():
    channels = [
        (DingTalk(url=DINGTALK_URL, secret=DINGTALK_SECRET), ["d1ngtok3n", DINGTALK_SECRET]),
        (WeCom(url=WECOM_URL), ["693a91f6-7xxx"]),
        (Feishu(url=FEISHU_URL, secret=FEISHU_SECRET), ["5e3d587e", FEISHU_SECRET]),
        (Webhook(url="https://ops.example/h?token=tkn9", secret="s3cret"), ["tkn9", "s3cret"]),
        (Sms(url="https://sms.example/send", phones=["1"], body="{text}",
             headers={"Authorization": "Bearer t0k"}), ["t0k"]),
        (Sms(url="https://sms.example/send?apikey=qk3y", phones=["1"],
             body='{"api_key": "jk3y", "to": "{phone}", "text": "{text}"}'), ["qk3y", "jk3y"]),
        (Sms(url="https://sms.example/send", phones=["1"], content_type="form",
             body="user=yrd&password=fpw9&to={phone}&msg={text}"), ["fpw9"]),
    ]
    for channel, secrets in channels:
        for shown in (repr(channel), pretty_repr(channel), str(channel.masked())):
            assert not any(secret in shown for secret in secrets), shown
            assert "****" in shown
    assert repr(DingTalk(url=DINGTALK_URL)).startswith(
        "DingTalk(url='https://oapi.dingtalk.com/robot/send?access_token=****'")
    signed = only(render(DingTalk(url=DINGTALK_URL, secret=DINGTALK_SECRET), NOTICE, now=NOW))
    assert "d1ngtok3n" not in repr(signed)
    smtp = SmtpSettings(host="smtp.example", username="yrd", password="pa55word")
    assert "pa55word" not in repr(smtp) and "pa55word" not in pretty_repr(smtp)


def test_masking_keeps_what_identifies_the_endpoint():
    assert mask_url("https://u:pw@h.example/x?a=1&key=k") == "https://u:****@h.example/x?a=1&key=****"
    assert mask_url(FEISHU_URL) == "https://open.feishu.cn/open-apis/bot/v2/hook/****"


def test_channels_decode_from_settings_by_kind():
    decoded = msgspec.json.decode(
        b'[{"kind": "wecom", "url": "https://w", "mentioned_mobiles": ["1"]},'
        b' {"kind": "email", "to": ["a@x.example"]}]', type=list[Channel])
    assert decoded == [WeCom(url="https://w", mentioned_mobiles=["1"]), Email(to=["a@x.example"])]


def test_now_must_be_aware():
    with pytest.raises(ValueError):
        render(WEBHOOK, NOTICE, now=datetime(2026, 12, 7, 8, 30))
