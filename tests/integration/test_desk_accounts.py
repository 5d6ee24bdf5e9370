"""Accounts managed without editing a file, and the audit log, on a real broker: the
region's administrator creates, changes and disables accounts on the desk; an account
added with ``yrd-hazmat users add`` signs in to a running desk; a disabled account's
session ends at its next request; an administrator cannot lock themselves out; each role
may do what its table says; every change is an entry on ``yrd.audit`` with who, what,
from where and how it went."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.harness import Kafka
from tests.integration.test_desk_carrier import carrier_settings, one_desk

pytestmark = pytest.mark.integration


async def sign_in(server, name: str, password: str) -> tuple[TestClient, int]:
    client = TestClient(server)
    await client.start_server()
    client.session.headers["Origin"] = str(client.make_url("")).rstrip("/")
    answer = await client.post("/api/login", json={"name": name, "password": password})
    return client, answer.status


async def test_accounts_on_the_desk_and_from_the_cli_with_their_audit(env, tmp_path):
    settings = carrier_settings(env, tmp_path)
    async with one_desk(settings, "chief", "sh-duty") as (desk, (chief, sh)):
        server = chief.server
        assert (await sh.get("/api/accounts")).status == 403  # a supervisor: not accounts
        made = await chief.put("/api/accounts/js-sup", json={
            "role": "supervisor", "province": "JS", "password": "js-sup-password"})
        assert made.status == 201, await made.text()
        shown = await made.json()
        assert shown["role"] == "supervisor" and "password" not in shown
        assert (await chief.put("/api/accounts/js-x", json={
            "role": "duty", "password": "long-enough-1"})).status == 400  # no province
        assert (await chief.put("/api/accounts/js-y", json={
            "role": "duty", "province": "JS", "password": "short"})).status == 400
        assert (await chief.put("/api/accounts/js-z", json={
            "role": "duty", "province": "JS"})).status == 400  # new: needs a password
        listed = {a["name"]: a for a in await (await chief.get("/api/accounts")).json()}
        assert listed["js-sup"]["province"] == "JS" and "chief" in listed
        assert all("password" not in a for a in listed.values())

        js, status = await sign_in(server, "js-sup", "js-sup-password")
        assert status == 200
        me = await (await js.get("/api/me")).json()
        assert me["role"] == "supervisor" and "decide_appeal" in me["may"]
        assert "manage_users" not in me["may"] and me["provinces"] == ["JS"]
        assert (await js.get("/api/accounts")).status == 403

        disabled = await chief.put("/api/accounts/js-sup", json={
            "role": "supervisor", "province": "JS", "disabled": True})
        assert disabled.status == 200
        assert (await js.get("/api/me")).status == 401  # its session ends
        assert (await sign_in(server, "js-sup", "js-sup-password"))[1] == 401
        assert (await chief.put("/api/accounts/chief", json={
            "role": "region", "disabled": True})).status == 409  # no locking out
        assert (await chief.delete("/api/accounts/chief")).status == 409

        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "yrd_hazmat.cli", "users", "add", "zj-reader", "--role",
             "readonly", "--province", "ZJ", "--password-stdin", "--by", "ops-admin"],
            env=env, input="zj-reader-password\n", capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        for _ in range(300):  # the running desk follows the accounts' topic
            if desk.users.get("zj-reader") is not None:
                break
            await asyncio.sleep(0.1)
        reader, status = await sign_in(server, "zj-reader", "zj-reader-password")
        assert status == 200
        assert (await reader.get("/api/trucks")).status == 200
        assert (await reader.post("/api/trucks/浙A00001/commands", json={
            "kind": "text", "text": "x"})).status == 403  # read-only
        for client in (js, reader):
            await client.close()

    entries = Kafka(env["KAFKA_BOOTSTRAP"]).read(env["YRD_TOPIC_AUDIT"], lambda rs: any(
        r and r["action"] == "account.add" for r in rs) and sum(
        1 for r in rs if r and r["action"] == "PUT /api/accounts/{name}") >= 6 and any(
        r and r["action"] == "DELETE /api/accounts/{name}" for r in rs), 60)
    puts = [e for e in entries if e["action"] == "PUT /api/accounts/{name}"]
    made = next(e for e in puts if e["target"] == "js-sup" and e["outcome"] == "ok")
    assert made["user"] == "chief" and made["address"] == "127.0.0.1"
    assert made["details"]["created"] is True and made["details"]["account_role"] == "supervisor"
    assert made["role"] == "region"  # the administrator's own role
    assert "password" not in json.dumps(made["details"]).replace("password_set", "")
    refused = [e for e in entries if e["target"] == "chief" and e["action"] != "login"]
    assert [(e["action"], e["outcome"], e["details"]["status"]) for e in refused] == [
        ("PUT /api/accounts/{name}", "refused", 409),
        ("DELETE /api/accounts/{name}", "refused", 409)]
    cli_add = next(e for e in entries if e["action"] == "account.add")
    assert (cli_add["user"], cli_add["target"]) == ("ops-admin", "zj-reader")
    logins = [e for e in entries if e["action"] == "login"]
    assert {e["user"] for e in logins} >= {"chief", "js-sup", "zj-reader"}


async def test_the_region_manages_accounts_in_the_browser(env, tmp_path):
    """In Chromium: the region's administrator sees 用户管理 (a supervisor does not), makes a
    duty officer's account with the form, sees it in the table, and the new account signs
    in to its province. No script errors."""
    from tests.integration.test_desk_browser import chromium, desk_page, serving
    from tests.integration.test_desk_carrier_browser import sign_in as browser_sign_in

    settings = carrier_settings(env, tmp_path)
    async with serving(settings) as url, chromium() as browser:
        sup = await desk_page(browser)
        await browser_sign_in(sup, url, "sh-duty")
        assert await sup.locator('#views button[data-view="accounts"]').is_hidden()
        chief = await desk_page(browser)
        await browser_sign_in(chief, url, "chief")
        await chief.click('#views button[data-view="accounts"]')
        await chief.locator("#accounts-table tr[data-account='chief']").wait_for()
        form = chief.locator("#account-form")
        await form.locator("input[name=name]").fill("ah-duty")
        await form.locator("select[name=role]").select_option("duty")
        await form.locator("select[name=province]").select_option("AH")
        await form.locator("input[name=password]").fill("ah-duty-password")
        await form.locator("button[type=submit]").click()
        row = chief.locator("#accounts-table tr[data-account='ah-duty']")
        await row.wait_for()
        assert "值班员" in await row.inner_text() and "安徽" in await row.inner_text()
        newcomer = await desk_page(browser)
        await browser_sign_in(newcomer, url, "ah-duty", "ah-duty-password")
        assert "ah-duty" in await newcomer.locator("#who").inner_text()
        assert sup.errors == [] and chief.errors == [] and newcomer.errors == []


async def test_a_supervisor_subscribes_by_e_mail_and_sms_in_the_browser(env, tmp_path):
    """The 通知 form makes an e-mail subscription to escalations and an SMS one to raised
    alerts, scoped to the supervisor's province; both are on the subscriptions' topic as
    the notifier reads them."""
    from tests.integration.test_desk_browser import chromium, desk_page, serving
    from tests.integration.test_desk_carrier_browser import sign_in as browser_sign_in
    from yrd_hazmat.notify.subscriptions import decode

    settings = carrier_settings(env, tmp_path)
    async with serving(settings) as url, chromium() as browser:
        page = await desk_page(browser)
        await browser_sign_in(page, url, "sh-duty")
        await page.click('#views button[data-view="notifications"]')
        form = page.locator("#subscription-form")
        for sub_id, kind, recipients, events in (
                ("sh-mail", "email", "duty@sh.example.org, chief@sh.example.org", "escalated"),
                ("sh-sms", "sms", "13800000000", "")):
            await form.locator("input[name=subscription_id]").fill(sub_id)
            await form.locator("input[name=name]").fill(f"上海 {kind}")
            await form.locator("select[name=kind]").select_option(kind)
            if kind == "sms":
                await form.locator("input[name=url]").fill("https://sms.example.org/send")
            await form.locator("input[name=recipients]").fill(recipients)
            await form.locator("input[name=events]").fill(events)
            await form.locator("button[type=submit]").click()
            await page.locator(f"#subscriptions-list li[data-subscription='{sub_id}']").wait_for()
        assert page.errors == []
    records = Kafka(env["KAFKA_BOOTSTRAP"]).read(env["YRD_TOPIC_SUBSCRIPTIONS"],
                                                lambda rs: len(rs) >= 2, 30)
    subs = {s.subscription_id: s for s in (decode(json.dumps(r).encode()) for r in records)}
    mail, sms = subs["sh-mail"], subs["sh-sms"]
    assert (mail.channel.kind, mail.channel.to, mail.events, mail.provinces) == (
        "email", ["duty@sh.example.org", "chief@sh.example.org"], ["escalated"], ["SH"])
    assert (sms.channel.kind, sms.channel.phones, sms.events) == ("sms", ["13800000000"],
                                                                  ["raised"])
    assert "{phone}" in sms.channel.body and sms.owner == "sh-duty"
