"""The monthly assessment on the desk (月度考核): the report ``yrd-hazmat assess`` kept
with the archive, the whole region for the region's users, one province's rows for that
province's users; 404 for a month not assessed, 400 for what is not a month, 401 signed
out."""

from __future__ import annotations

import pytest

from tests.integration.test_desk import desk_client, desk_settings, login, users_file
from tests.unit.test_assess import REGISTERED, month  # noqa: F401 - the synthetic month
from yrd_hazmat.assess import stored
from yrd_hazmat.assess.figures import compute

pytestmark = pytest.mark.integration


async def test_the_months_report_for_each_jurisdiction(env, month, tmp_path):  # noqa: F811
    archive, _ = month
    stored.save(archive.store, compute(archive, "2026-11", REGISTERED))
    settings = desk_settings(env, users_file(tmp_path)).model_copy(
        update={"archive_dir": archive.store.root, "archive_s3_url": ""})
    async with desk_client(settings) as chief, desk_client(settings) as sh, \
            desk_client(settings) as nobody:
        assert (await nobody.get("/api/assessments")).status == 401
        assert (await nobody.get("/api/assessments/2026-11")).status == 401
        await login(chief, "chief")
        await login(sh, "sh-duty")
        listed = await chief.get("/api/assessments")
        assert listed.status == 200 and (await listed.json()) == {"months": ["2026-11"]}
        whole = await chief.get("/api/assessments/2026-11")
        assert whole.status == 200 and whole.content_type == "text/html"
        page = await whole.text()
        assert "75.0%" in page  # the region's online rate: 3 of 4 networked
        assert "苏州市" in page and "乙运输" in page  # Jiangsu's city, a carrier row
        mine = await (await sh.get("/api/assessments/2026-11")).text()
        assert "苏州市" not in mine and "乙运输" not in mine  # Shanghai's rows only
        assert "75.0%" in mine  # the region's headline, for comparison
        missing = await chief.get("/api/assessments/2026-10")
        assert missing.status == 404 and "yrd-hazmat assess --month 2026-10" in \
            (await missing.json())["error"]
        assert (await chief.get("/api/assessments/2026-13")).status == 400


def carrier_desk(env: dict[str, str], archive, tmp_path):
    """Desk settings over ``archive`` with November assessed and one user: ``jia``
    (password ``jia-pass``), the account of the carrier 甲运输."""
    import json

    from yrd_hazmat.desk.users import hash_password

    stored.save(archive.store, compute(archive, "2026-11", REGISTERED))
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"users": [
        {"name": "jia", "jurisdiction": "carrier", "carrier": "甲运输",
         "password": hash_password("jia-pass", 1_000)}]}))
    return desk_settings(env, str(users)).model_copy(
        update={"archive_dir": archive.store.root, "archive_s3_url": ""})


async def test_a_carriers_account_sees_its_own_assessment_and_no_other_carriers(env, month,  # noqa: F811
                                                                          tmp_path):
    settings = carrier_desk(env, month[0], tmp_path)
    async with desk_client(settings) as jia:
        answer = await jia.post("/api/login", json={"name": "jia", "password": "jia-pass"})
        assert answer.status == 200, await answer.text()
        me = await (await jia.get("/api/me")).json()
        assert (me["jurisdiction"], me["carrier"], me["provinces"]) == ("carrier", "甲运输", [])
        page = await (await jia.get("/api/assessments/2026-11")).text()
        assert "甲运输" in page and "乙运输" not in page
        # its own trucks only (none registered to it here), and no duty-shift tools
        assert await (await jia.get("/api/trucks")).json() == []
        assert await (await jia.get("/api/alerts/open")).json() == []
        assert (await jia.get("/api/trucks/沪A00001/track")).status == 404
        for path in ("/api/links", "/api/triage", "/api/resources"):
            refused = await jia.get(path)
            assert refused.status == 403, path
            assert "not for a carrier's account" in (await refused.json())["error"]
