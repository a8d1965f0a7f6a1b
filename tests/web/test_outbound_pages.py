"""The webhook and audit pages: the same rules as `/api/v1/webhooks` and `/api/v1/audit`, the
secret shown once after a redirect, real deliveries (the worker, a receiver on 127.0.0.1) in
the log, redelivery, and the audit trail's filters and keyset pages."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta

import httpx
import pytest
from standardwebhooks import Webhook as Verifier

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.types import utcnow
from casefolio.outbound.worker import Worker
from tests.api.v1.conftest import Matter, make_matter, upload
from tests.clocks import Clock
from tests.factories import Actor
from tests.outbound.receiver import Receiver, receiver
from tests.web.conftest import Person

MakePerson = Callable[[Actor], Awaitable[Person]]
SECRET = re.compile(r'id="secret" type="text" readonly value="(whsec_[^"]+)"')


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Webhook URLs may point at the test receiver on the loopback network."""
    return settings.model_copy(
        update={"webhook_allowed_networks": ["127.0.0.0/8"], "webhook_timeout_seconds": 5.0}
    )


@pytest.fixture
async def worker(settings: Settings, db: Database) -> AsyncIterator[tuple[Worker, Clock]]:
    clock = Clock()
    made = Worker(settings, db, clock=clock, rng=random.Random(1))
    yield made, clock
    await made.close()


@pytest.fixture
def hook_receiver() -> Iterator[Receiver]:
    with receiver() as made:
        yield made


async def _deliver(worker: tuple[Worker, Clock]) -> None:
    run, clock = worker
    clock.now = utcnow() + timedelta(seconds=1)  # what was queued "now" is due
    await run.run_once()


async def _register(someone: Person, url: str, **fields: str) -> httpx.Response:
    return await someone.post(
        "/admin/webhooks", {"url": url, "event:document.created": "on", **fields}
    )


async def test_an_operator_registers_a_webhook_sees_its_secret_once_and_follows_its_log(
    person: MakePerson,
    operator: Actor,
    client: httpx.AsyncClient,
    hook_receiver: Receiver,
    worker: tuple[Worker, Clock],
) -> None:
    op = await person(operator)
    made = await _register(op, hook_receiver.url, description="the DMS bridge")
    assert made.status_code == 303
    page_url = made.headers["location"]
    hook_id = int(page_url.rsplit("/", 1)[1])
    # A HEAD (a prefetch) shows nothing, so it leaves the secret to the GET.
    assert (await op.http.head(page_url)).status_code == 200
    shown = await op.http.get(page_url)
    [secret] = SECRET.findall(shown.text)
    reloaded = await op.http.get(page_url)
    assert secret not in reloaded.text and "shown only this once" not in reloaded.text
    listed = await op.http.get("/admin/webhooks")
    assert hook_receiver.url in listed.text and "the DMS bridge" in listed.text
    assert secret not in listed.text

    assert (await op.post(f"{page_url}/test")).headers["location"] == f"{page_url}?done=test"
    await _deliver(worker)
    [got] = hook_receiver.received
    assert Verifier(secret).verify(got.body, got.headers)["type"] == "webhook.test"
    log = (await op.http.get(page_url)).text
    assert "webhook.test" in log and "delivered" in log and "200," in log

    delivery = (
        await client.get(f"/api/v1/webhooks/{hook_id}/deliveries", headers=operator.headers)
    ).json()[0]
    again = await op.post(f"{page_url}/deliveries/{delivery['id']}/redeliver")
    assert again.status_code == 303
    await _deliver(worker)
    assert len(hook_receiver.ids()) == 2 and len(set(hook_receiver.ids())) == 1

    rotated = await op.post(f"{page_url}/rotate-secret")
    assert rotated.status_code == 303
    [new_secret] = SECRET.findall((await op.http.get(page_url)).text)
    assert new_secret != secret

    off = await op.post(f"{page_url}/active", {"active": "false"})
    assert off.status_code == 303
    assert "switched off" in (await op.http.get(page_url)).text
    read = await client.get(f"/api/v1/webhooks/{hook_id}", headers=operator.headers)
    assert read.json()["active"] is False

    assert (await op.post(f"{page_url}/delete")).headers["location"] == "/admin/webhooks"
    gone = await client.get(f"/api/v1/webhooks/{hook_id}", headers=operator.headers)
    assert gone.status_code == 404
    trail = await op.http.get("/admin/audit", params={"targetType": "webhook"})
    for action in ("webhook.created", "webhook.secret_rotated", "webhook.deleted"):
        assert action in trail.text, action


async def test_a_project_admin_registers_for_projects_they_administer_and_sees_their_own(
    person: MakePerson,
    operator: Actor,
    client: httpx.AsyncClient,
    db: Database,
    hook_receiver: Receiver,
) -> None:
    matter = await make_matter(client, db, operator)
    other = await make_matter(client, db, operator)
    admin = await person(matter.admin)
    op = await person(operator)
    assert (await _register(op, hook_receiver.url)).status_code == 303
    theirs = (await client.get("/api/v1/webhooks", headers=operator.headers)).json()[0]

    everywhere = await _register(admin, hook_receiver.url)
    assert everywhere.status_code == 403 and "installation-wide" in everywhere.text
    elsewhere = await _register(admin, hook_receiver.url, projectIds=str(other.id))
    assert elsewhere.status_code in (403, 404)
    unknown_event = await admin.post(
        "/admin/webhooks",
        {"url": hook_receiver.url, "event:no.such": "on", f"project:{matter.id}": "on"},
    )
    assert unknown_event.status_code == 400 and "Unknown event types: no.such" in unknown_event.text
    outside = await _register(admin, "http://10.1.2.3/hook", **{f"project:{matter.id}": "on"})
    assert outside.status_code == 400
    assert len((await client.get("/api/v1/webhooks", headers=operator.headers)).json()) == 1

    form = (await admin.http.get("/admin/webhooks")).text
    assert f'name="project:{matter.id}"' in form and f'name="project:{other.id}"' not in form
    made = await _register(admin, hook_receiver.url, **{f"project:{matter.id}": "on"})
    assert made.status_code == 303
    listed = (await admin.http.get("/admin/webhooks")).text
    assert listed.count('href="/admin/webhooks/') == 1
    # The operator's webhook is invisible to them: not found, and left as it was.
    for path in ("", "/test", "/delete", "/rotate-secret"):
        url = f"/admin/webhooks/{theirs['id']}{path}"
        answer = await (admin.http.get(url) if not path else admin.post(url))
        assert answer.status_code == 404, path
    after = await client.get(f"/api/v1/webhooks/{theirs['id']}", headers=operator.headers)
    assert after.json() == theirs
    # A writer administers nothing: offered no project, and refused whatever they send.
    writer = await person(matter.writer)
    assert "You administer no project" in (await writer.http.get("/admin/webhooks")).text
    refused = await _register(writer, hook_receiver.url, projectIds=str(matter.id))
    assert refused.status_code == 403
    assert len((await client.get("/api/v1/webhooks", headers=operator.headers)).json()) == 2


async def test_forms_without_the_csrf_token_change_nothing(
    person: MakePerson, operator: Actor, client: httpx.AsyncClient, hook_receiver: Receiver
) -> None:
    op = await person(operator)
    forged = await op.http.post(
        "/admin/webhooks", data={"url": hook_receiver.url, "event:document.created": "on"}
    )
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert (await client.get("/api/v1/webhooks", headers=operator.headers)).json() == []


async def _entry_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r"<tr>\s*<td>(\d+)</td>", html)]


async def test_the_audit_page_filters_and_pages_as_the_api_does(
    person: MakePerson, operator: Actor, client: httpx.AsyncClient, db: Database
) -> None:
    matter: Matter = await make_matter(client, db, operator)
    other = await make_matter(client, db, operator)
    for n in range(5):
        made = await upload(client, matter, b"%d" % n, f"claim-{n}.txt")
        assert made.status_code == 201
    assert (await upload(client, other, b"x", "elsewhere.txt")).status_code == 201
    op = await person(operator)

    query = {"project": str(matter.id), "action": "document.created"}
    api = await client.get(
        "/api/v1/audit",
        params={"projectId": matter.id, "action": "document.created", "limit": 1000},
        headers=operator.headers,
    )
    expected = [int(e["id"]) for e in api.json()]
    assert len(expected) == 5
    seen: list[int] = []
    url = "/admin/audit?" + "&".join(f"{k}={v}" for k, v in {**query, "limit": 2}.items())
    while url:
        page = await op.http.get(url)
        assert page.status_code == 200
        seen += await _entry_ids(page.text)
        found = re.search(r'href="(/admin/audit\?[^"]+)" rel="next"', page.text)
        url = found.group(1).replace("&amp;", "&") if found else ""
    assert seen == expected
    by_user = await op.http.get("/admin/audit", params={"user": str(matter.writer.user_id)})
    assert len(await _entry_ids(by_user.text)) == 5
    tomorrow = (utcnow() + timedelta(days=1)).date().isoformat()
    assert await _entry_ids((await op.http.get(f"/admin/audit?after={tomorrow}")).text) == []
    assert len(await _entry_ids((await op.http.get(f"/admin/audit?before={tomorrow}")).text))

    # A project admin names a project they administer; other projects are not found.
    admin = await person(matter.admin)
    whole = await admin.http.get("/admin/audit")
    assert whole.status_code == 403 and "Only operators" in whole.text
    theirs = await admin.http.get("/admin/audit", params={"project": str(matter.id)})
    assert theirs.status_code == 200 and len(await _entry_ids(theirs.text)) >= 5
    assert (await admin.http.get(f"/admin/audit?project={other.id}")).status_code == 404
    reader = await person(matter.reader)
    assert (await reader.http.get(f"/admin/audit?project={matter.id}")).status_code == 403

    for bad in ("project=abc", "after=yesterday", "cursor=%%%", "limit=0", "targetId=-1"):
        answer = await op.http.get(f"/admin/audit?{bad}")
        assert answer.status_code == 400, bad


async def test_hostile_ids_and_fields_are_a_clear_400_never_a_500(
    person: MakePerson, operator: Actor, hook_receiver: Receiver
) -> None:
    op = await person(operator)
    made = await _register(op, hook_receiver.url)
    page = made.headers["location"]
    for value in ("0", "-1", "abc", "99999999999999999999", "1e3"):
        for path in (f"/admin/webhooks/{value}", f"{page}/deliveries/{value}/redeliver"):
            answer = await (op.http.get(path) if "redeliver" not in path else op.post(path))
            assert answer.status_code in (400, 404, 422), (path, answer.status_code)
        for field in ("projectIds", f"project:{value}"):
            answer = await _register(op, hook_receiver.url, **{field: value})
            assert answer.status_code in (400, 404), (field, value, answer.status_code)
        for name in ("project", "user", "targetId", "cursor", "after", "before", "limit"):
            answer = await op.http.get("/admin/audit", params={name: value})
            assert answer.status_code in (200, 400), (name, value, answer.status_code)
    long = "x" * 5000
    assert (await _register(op, long)).status_code == 400
    assert (await op.http.get("/admin/audit", params={"action": long})).status_code == 400
    # The API's bounds hold for the page too: a URL past 2,000 characters, over 1,000
    # projects, over 100 event types (and a refusal does not list 15,000 names back).
    too_long = await _register(op, hook_receiver.url + "?" + "a" * 2000)
    assert too_long.status_code == 400 and "longer than 2000" in too_long.text
    many = await op.post(
        "/admin/webhooks",
        {"url": hook_receiver.url, **{f"event:x{n}": "on" for n in range(15_000)}},
    )
    assert many.status_code == 400 and "at most 100 event types" in many.text
    assert len(many.content) < 20_000
    listed = await op.http.get("/admin/webhooks")
    assert listed.text.count('href="/admin/webhooks/') == 1  # the first one only


async def test_what_a_page_changes_is_audited_as_the_signed_in_person(
    person: MakePerson, operator: Actor, client: httpx.AsyncClient
) -> None:
    op = await person(operator)
    assert (await op.post("/projects", {"name": "Audited"})).status_code == 303
    trail = await client.get(
        "/api/v1/audit", params={"action": "project.created"}, headers=operator.headers
    )
    [entry] = trail.json()
    assert entry["actor"] == {"kind": "web", "userId": operator.user_id, "tokenId": None}
