"""Webhooks: registration, signatures (checked with the standardwebhooks package), retries,
Retry-After, 410, failing endpoints, rotation, tests, redelivery, SSRF, visibility."""

from __future__ import annotations

import ipaddress
import json
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import select
from standardwebhooks import Webhook as Verifier

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry, Webhook, WebhookAttempt, WebhookDelivery
from casefolio.domain import webhooks
from casefolio.domain.errors import Invalid
from casefolio.domain.principal import Principal
from casefolio.outbound import worker as worker_module
from casefolio.outbound.worker import Worker
from tests.clocks import Clock
from tests.factories import Actor
from tests.outbound.conftest import Matter, register_webhook, upload_file
from tests.outbound.receiver import Receiver, receiver
from tests.races import second_after_first


async def _audit(db: Database, action: str) -> list[AuditEntry]:
    async with db.read() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


async def test_a_delivery_is_signed_as_standard_webhooks_say(
    client: httpx.AsyncClient,
    matter: Matter,
    operator: Actor,
    worker: Worker,
    hook_receiver: Receiver,
) -> None:
    hook = await register_webhook(client, operator, hook_receiver.url, ["document.created"])
    assert hook["secret"].startswith("whsec_") and hook["projectIds"] is None
    read = await client.get(f"/api/v1/webhooks/{hook['id']}", headers=operator.headers)
    assert "secret" not in read.json()
    document = await upload_file(client, matter)
    await client.post(matter.url("/folders"), json={"name": "F"}, headers=matter.writer.headers)

    assert await worker.run_once() > 0
    [got] = hook_receiver.received
    assert got.headers["content-type"] == "application/json"
    payload = Verifier(hook["secret"]).verify(got.body, got.headers)
    assert payload["type"] == "document.created"
    assert payload["data"]["documentId"] == document
    assert payload["data"]["projectId"] == str(matter.id)
    assert payload["data"]["links"]["document"].endswith(f"/documents/{document}")
    assert "content" not in json.dumps(payload).lower().replace("contenttype", "")
    # A wrong secret does not verify.
    with pytest.raises(Exception, match=r"(?i)signature"):
        Verifier("whsec_" + "A" * 44).verify(got.body, got.headers)
    # Nothing else is due, and nothing is sent twice.
    assert await worker.run_once() == 0 and len(hook_receiver.received) == 1


async def test_failures_retry_on_the_schedule_with_the_same_id(
    client: httpx.AsyncClient,
    matter: Matter,
    operator: Actor,
    worker: Worker,
    clock: Clock,
    hook_receiver: Receiver,
) -> None:
    hook = await register_webhook(client, operator, hook_receiver.url, ["document.created"])
    hook_receiver.answers = [(500, {}), (503, {"retry-after": "600"})]
    await upload_file(client, matter)
    await worker.run_once()
    assert len(hook_receiver.received) == 1
    await worker.run_once()  # the next attempt waits ~5 s on the injected clock
    assert len(hook_receiver.received) == 1
    clock.advance(5.6)
    await worker.run_once()
    assert len(hook_receiver.received) == 2
    clock.advance(300 * 1.1)  # the schedule says 5 min, Retry-After 10 min: it waits
    await worker.run_once()
    assert len(hook_receiver.received) == 2
    clock.advance(600 - 300 * 1.1 + 1)
    await worker.run_once()
    assert len(hook_receiver.received) == 3
    assert len(set(hook_receiver.ids())) == 1

    log = await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=operator.headers)
    [entry] = log.json()
    assert entry["status"] == "delivered"
    assert [a["statusCode"] for a in entry["attempts"]] == [500, 503, 200]
    assert entry["attempts"][0]["responseExcerpt"] == "answer 500"
    assert entry["attempts"][0]["nextAttemptAt"] is not None
    assert (
        entry["attempts"][2]["nextAttemptAt"] is None and entry["msgId"] == hook_receiver.ids()[0]
    )


async def test_410_disables_and_a_run_of_failures_marks_failing(
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    operator: Actor,
    worker: Worker,
    clock: Clock,
) -> None:
    with receiver() as gone, receiver() as flaky:
        first = await register_webhook(client, operator, gone.url, ["document.created"])
        second = await register_webhook(client, operator, flaky.url, ["document.created"])
        gone.answers = [(410, {})]
        flaky.answers = [(500, {})] * 20
        for n in range(3):
            await upload_file(client, matter, f"{n}.txt")
            await worker.run_once()
            clock.advance(400)
        states = {
            h["id"]: h
            for h in (await client.get("/api/v1/webhooks", headers=operator.headers)).json()
        }
        assert states[first["id"]]["active"] is False
        assert "410" in states[first["id"]]["disabledReason"]
        assert len(gone.received) == 1  # nothing more after the 410
        assert states[second["id"]]["failing"] is True and states[second["id"]]["active"]
        assert [e.target_id for e in await _audit(db, "webhook.disabled")] == [int(first["id"])]
        assert [e.target_id for e in await _audit(db, "webhook.failing")] == [int(second["id"])]


async def test_a_redirect_is_a_failure_and_is_not_followed(
    client: httpx.AsyncClient, matter: Matter, operator: Actor, worker: Worker
) -> None:
    with receiver() as target, receiver() as redirector:
        hook = await register_webhook(client, operator, redirector.url, ["document.created"])
        redirector.answers = [(302, {"location": target.url})]
        await upload_file(client, matter)
        await worker.run_once()
        assert len(redirector.received) == 1 and target.received == []
        log = await client.get(
            f"/api/v1/webhooks/{hook['id']}/deliveries", headers=operator.headers
        )
        assert log.json()[0]["status"] == "pending"
        assert log.json()[0]["attempts"][0]["statusCode"] == 302


async def test_rotation_signs_with_both_secrets_and_test_and_redeliver_send_again(
    client: httpx.AsyncClient,
    operator: Actor,
    worker: Worker,
    clock: Clock,
    hook_receiver: Receiver,
) -> None:
    hook = await register_webhook(client, operator, hook_receiver.url, ["document.created"])
    rotated = await client.post(
        f"/api/v1/webhooks/{hook['id']}/rotate-secret", headers=operator.headers
    )
    assert rotated.status_code == 200 and rotated.json()["secret"] != hook["secret"]
    queued = await client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=operator.headers)
    assert queued.status_code == 202
    clock.catch_up()  # queued at the real "now"
    await worker.run_once()
    [got] = hook_receiver.received
    assert len(got.headers["webhook-signature"].split()) == 2
    for secret in (hook["secret"], rotated.json()["secret"]):
        assert Verifier(secret).verify(got.body, got.headers)["type"] == "webhook.test"
    # Its time is written as every event's (docs/api.md): milliseconds, not microseconds.
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", json.loads(got.body)["timestamp"]
    )

    again = await client.post(
        f"/api/v1/webhooks/{hook['id']}/deliveries/{queued.json()['deliveryId']}/redeliver",
        headers=operator.headers,
    )
    assert again.status_code == 202
    clock.advance(1)
    await worker.run_once()
    assert len(hook_receiver.received) == 2 and len(set(hook_receiver.ids())) == 1


async def test_a_rotated_out_secret_stops_signing_when_its_overlap_ends(
    client: httpx.AsyncClient,
    operator: Actor,
    worker: Worker,
    clock: Clock,
    settings: Settings,
    hook_receiver: Receiver,
) -> None:
    """The old secret signs beside the new one for the overlap only: once it is over, a
    leaked old secret no longer verifies anything sent."""
    hook = await register_webhook(client, operator, hook_receiver.url, ["document.created"])
    rotated = await client.post(
        f"/api/v1/webhooks/{hook['id']}/rotate-secret", headers=operator.headers
    )
    assert rotated.status_code == 200
    queued = await client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=operator.headers)
    assert queued.status_code == 202
    clock.catch_up()
    clock.advance(settings.webhook_secret_overlap.total_seconds() + 1)
    await worker.run_once()
    [got] = hook_receiver.received
    assert len(got.headers["webhook-signature"].split()) == 1
    signed = Verifier(rotated.json()["secret"]).verify(got.body, got.headers)
    assert signed["type"] == "webhook.test"
    with pytest.raises(Exception, match=r"(?i)signature"):
        Verifier(hook["secret"]).verify(got.body, got.headers)


async def test_registration_checks_events_rights_and_addresses(
    client: httpx.AsyncClient, db: Database, matter: Matter, operator: Actor, settings: Settings
) -> None:
    url = "http://127.0.0.1:9/hook"

    async def refused(actor: Actor, body: dict[str, Any], status: int, words: str) -> None:
        got = await client.post("/api/v1/webhooks", json=body, headers=actor.headers)
        assert got.status_code == status, got.text
        assert words in got.json()["detail"]

    await refused(operator, {"url": url, "events": ["document.eaten"]}, 400, "document.eaten")
    await refused(operator, {"url": "ftp://x/", "events": ["document.created"]}, 400, "http")
    for target in ("http://169.254.169.254/latest", "http://10.1.2.3/", "http://[::1]:8/"):
        await refused(operator, {"url": target, "events": ["document.created"]}, 400, "resolves")
    # A host name IDNA cannot encode (found by the fuzz test: it was a 500).
    idna_bad = "http://\u00d3\u00f1\u0083\U000b8f2f\U000b8a26/"
    await refused(operator, {"url": idna_bad, "events": ["document.created"]}, 400, "ASCII")
    # A request's Host header is ASCII: an internationalized name is given in its xn-- form.
    body = {"url": "http://b\u00fccher.de/hook", "events": ["document.created"]}
    await refused(operator, body, 400, "xn--bcher-kva.de")
    # Userinfo, even empty, would travel in the Host header; port 0 is no port.
    for odd, words in (
        ("http://@127.0.0.1:9/h", "credentials"),
        ("http://:@127.0.0.1:9/h", "credentials"),
        ("http://127.0.0.1:0/h", "between 1 and 65535"),
        ("http://:80/h", "host is not valid: it is empty"),  # what the schema's pattern allows
    ):
        await refused(operator, {"url": odd, "events": ["document.created"]}, 400, words)
    for bracketed in ("http://iw]x/", "Http://[\u0080\u00f1", "http://[::g]/"):
        body = {"url": bracketed, "events": ["document.created"]}
        await refused(operator, body, 400, "host is not valid")
    unsendables = [
        "http://127.0.0.1:9/a b",
        "http://127.0.0.1:9/caf\u00e9",
        "http://x/\x7f",
        # urlsplit drops tabs and line breaks: these were stored as sent, checked without them.
        "http://127.0.0.1:9/pa\nth",
        "http://127.0.0.1\t:9/h",
        "http://127.0.0.1:9/h\r\n",
        # The fragment is kept with the URL, under the same rule (the OpenAPI pattern's).
        "http://127.0.0.1:9/h#caf\u00e9",
        "http://127.0.0.1:9/h#a b",
    ]
    for unsendable in unsendables:
        body = {"url": unsendable, "events": ["document.created"]}
        await refused(operator, body, 400, "percent-encode")
    assert (await client.get("/api/v1/webhooks", headers=operator.headers)).json() == []
    # A project admin: only for projects they administer, never installation-wide.
    await refused(matter.admin, {"url": url, "events": ["document.created"]}, 403, "projectIds")
    await refused(
        matter.writer,
        {"url": url, "events": ["document.created"], "projectIds": [str(matter.id)]},
        403,
        "",
    )
    mine = await register_webhook(
        client, matter.admin, url, ["document.created"], projectIds=[str(matter.id)]
    )
    listed = await client.get("/api/v1/webhooks", headers=matter.admin.headers)
    assert [h["id"] for h in listed.json()] == [mine["id"]]
    other = await client.get(f"/api/v1/webhooks/{mine['id']}", headers=matter.writer.headers)
    assert other.status_code == 404
    async with db.read() as session:
        assert len(list(await session.scalars(select(WebhookDelivery)))) == 0
    # Without the allowance, loopback is refused too (the default).
    async with db.write() as session:
        who = Principal(operator.user_id, operator.email, "Op", True)
        spec = webhooks.WebhookSpec(url, ["document.created"])
        with pytest.raises(Invalid, match="loopback"):
            await webhooks.create(session, who=who, spec=spec, allowed=[])


async def test_delivery_rechecks_the_address_and_the_owners_access(
    client: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    matter: Matter,
    operator: Actor,
    worker: Worker,
    clock: Clock,
    hook_receiver: Receiver,
) -> None:
    hook = await register_webhook(
        client, matter.admin, hook_receiver.url, ["document.created"], projectIds=[str(matter.id)]
    )
    await upload_file(client, matter, "seen.txt")
    await worker.run_once()
    assert len(hook_receiver.received) == 1
    # The admin loses the project: its events no longer reach the admin's webhook.
    removed = await client.delete(
        matter.url(f"/users/{matter.admin.email}"), headers=operator.headers
    )
    assert removed.status_code == 204
    await upload_file(client, matter, "unseen.txt")
    await worker.run_once()
    assert len(hook_receiver.received) == 1
    async with db.read() as session:
        statuses = [d.status for d in await session.scalars(select(WebhookDelivery))]
    assert sorted(statuses) == ["delivered", "dropped"]
    # Its log no longer shows the owner what happens there, not even a type and a time;
    # an operator sees the whole log.
    log = f"/api/v1/webhooks/{hook['id']}/deliveries"
    owners = (await client.get(log, headers=matter.admin.headers)).json()
    assert [(d["type"], d["status"]) for d in owners] == [("document.created", "delivered")]
    everything = (await client.get(log, headers=operator.headers)).json()
    assert [d["status"] for d in everything] == ["dropped", "delivered"]
    # Nor does a redelivery by its id, which the log hides: it was a 202, telling the owner
    # the delivery exists (and queueing it again); now the 404 of any unknown delivery.
    again = await client.post(
        f"/api/v1/webhooks/{hook['id']}/deliveries/{everything[0]['id']}/redeliver",
        headers=matter.admin.headers,
    )
    assert again.status_code == 404, again.text
    unchanged = (await client.get(log, headers=operator.headers)).json()
    assert unchanged == everything

    # An operator's webhook whose address is no longer allowed at delivery time.
    await register_webhook(client, operator, hook_receiver.url, ["document.created"])
    strict = Worker(settings.model_copy(update={"webhook_allowed_networks": []}), db, clock=clock)
    try:
        await upload_file(client, matter, "blocked.txt")
        await strict.run_once()
    finally:
        await strict.close()
    assert len(hook_receiver.received) == 1
    async with db.read() as session:
        errors = [a.error for a in await session.scalars(select(WebhookAttempt))]
    assert any(e and "loopback" in e for e in errors), errors


async def _walk(client: httpx.AsyncClient, actor: Actor, url: str) -> list[list[dict[str, Any]]]:
    """Every page of a list, following its Link header."""
    pages: list[list[dict[str, Any]]] = []
    while url:
        answer = await client.get(url, headers=actor.headers)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        link = answer.headers.get("link", "")
        url = link[link.index("<") + 1 : link.index(">")] if link else ""
    return pages


async def test_webhooks_page_in_id_order_and_deliveries_newest_first(
    client: httpx.AsyncClient, operator: Actor, hook_receiver: Receiver
) -> None:
    made = [
        await register_webhook(client, operator, f"{hook_receiver.url}?n={n}", ["document.created"])
        for n in range(3)
    ]
    read = await client.get(f"/api/v1/webhooks/{made[0]['id']}", headers=operator.headers)
    # The registration's answer is the webhook as read, and its secret.
    assert {k: v for k, v in made[0].items() if k != "secret"} == read.json()
    pages = await _walk(client, operator, "/api/v1/webhooks?limit=2")
    assert [[h["id"] for h in page] for page in pages] == [
        [made[0]["id"], made[1]["id"]],
        [made[2]["id"]],
    ]
    queued = []
    for _ in range(3):
        sent = await client.post(f"/api/v1/webhooks/{made[0]['id']}/test", headers=operator.headers)
        assert sent.status_code == 202, sent.text
        queued.append(sent.json()["deliveryId"])
    pages = await _walk(client, operator, f"/api/v1/webhooks/{made[0]['id']}/deliveries?limit=2")
    assert [[d["id"] for d in page] for page in pages] == [
        [queued[2], queued[1]],
        [queued[0]],
    ]


async def test_a_webhook_deleted_meanwhile_is_404_to_a_second_delete_and_409_to_a_patch(
    client: httpx.AsyncClient, db: Database, operator: Actor, is_postgres: bool
) -> None:
    """PostgreSQL, each request waiting for a DELETE that commits first: a second DELETE
    finds nothing (404, one webhook.deleted in the audit trail), and a PATCH whose update
    then matches no row is a concurrent change (409), not a server error."""
    if not is_postgres:
        pytest.skip("SQLite's writers take turns: the second request never reads it live")
    who = Principal(operator.user_id, operator.email, "Operator", True)
    url = "http://127.0.0.1:9/hook"
    racing = {
        "DELETE": lambda hook: client.delete(f"/api/v1/webhooks/{hook}", headers=operator.headers),
        "PATCH": lambda hook: client.patch(
            f"/api/v1/webhooks/{hook}", json={"description": "late"}, headers=operator.headers
        ),
    }
    for method, expected in (("DELETE", 404), ("PATCH", 409)):
        hook = (await register_webhook(client, operator, url, ["document.created"]))["id"]
        answer = await second_after_first(
            db,
            partial(webhooks.delete, who=who, webhook_id=int(hook)),
            partial(racing[method], hook),
        )
        assert answer.status_code == expected, (method, answer.text)
        async with db.read() as session:
            deletions = await session.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.action == "webhook.deleted", AuditEntry.target_id == int(hook)
                )
            )
            assert list(deletions) == ["webhook.deleted"], method
        gone = await client.get(f"/api/v1/webhooks/{hook}", headers=operator.headers)
        assert gone.status_code == 404


async def test_a_webhook_whose_address_no_longer_passes_can_still_be_switched_off(
    db: Database, operator: Actor
) -> None:
    who = Principal(operator.user_id, operator.email, "Op", True)
    loopback = [ipaddress.ip_network("127.0.0.0/8")]
    async with db.write() as session:
        spec = webhooks.WebhookSpec("http://127.0.0.1:9/hook", ["document.created"])
        hook = await webhooks.create(session, who=who, spec=spec, allowed=loopback)
    # Loopback is no longer allowed (the setting changed): stopping it needs no check...
    async with db.write() as session:
        off = await webhooks.update(
            session, who=who, webhook_id=hook.id, allowed=[], active=False, description="paused"
        )
        assert not off.active and off.description == "paused"
    # ...switching it on again, or pointing it elsewhere, is checked as a registration is.
    for change in ({"active": True}, {"url": "http://127.0.0.2:9/hook"}):
        async with db.write() as session:
            with pytest.raises(Invalid, match="loopback"):
                await webhooks.update(session, who=who, webhook_id=hook.id, allowed=[], **change)
    async with db.read() as session:
        assert not (await session.get_one(Webhook, hook.id)).active


async def _statuses_by_hook(db: Database) -> dict[int, list[str]]:
    async with db.read() as session:
        rows = await session.execute(
            select(WebhookDelivery.webhook_id, WebhookDelivery.status).order_by(WebhookDelivery.id)
        )
        found: dict[int, list[str]] = {}
        for hook_id, status in rows:
            found.setdefault(hook_id, []).append(status)
        return found


async def _until(db: Database, condition: Any, seconds: float = 30) -> dict[int, list[str]]:
    """The deliveries' statuses by webhook once they meet `condition` (polled)."""
    with anyio.fail_after(seconds):
        while True:
            statuses = await _statuses_by_hook(db)
            if condition(statuses):
                return statuses
            await anyio.sleep(0.05)


#: The attempt timeout of the hanging-endpoint tests: long enough that no attempt ends by it.
PATIENT_SECONDS = 60.0


@dataclass
class HangingAndPrompt:
    """Two endpoints subscribed to document.created: one holds every request until released,
    one answers at once; a worker runs in the background."""

    hanging: Receiver
    prompt: Receiver
    slow: int  # the hanging endpoint's webhook id
    fast: int


@asynccontextmanager
async def _hanging_and_prompt(
    client: httpx.AsyncClient,
    operator: Actor,
    settings: Settings,
    db: Database,
    before_worker: Callable[[], Awaitable[object]],
    **worker_options: Any,
) -> AsyncIterator[HangingAndPrompt]:
    # An attempt may wait a minute: a worker whose rounds waited for every answer would hold
    # the prompt endpoint's deliveries back that long.
    patient = settings.model_copy(update={"webhook_timeout_seconds": PATIENT_SECONDS})
    with receiver() as hanging, receiver() as prompt:
        hanging.hold = threading.Event()
        slow = await register_webhook(client, operator, hanging.url, ["document.created"])
        fast = await register_webhook(client, operator, prompt.url, ["document.created"])
        await before_worker()
        worker = Worker(patient, db, **worker_options)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(worker.run)
                yield HangingAndPrompt(hanging, prompt, int(slow["id"]), int(fast["id"]))
                tasks.cancel_scope.cancel()
        finally:
            hanging.hold.set()
            await worker.close()


async def test_a_hanging_endpoint_holds_back_no_other_delivery(
    client: httpx.AsyncClient, matter: Matter, operator: Actor, settings: Settings, db: Database
) -> None:
    async def nothing() -> None:
        pass

    async with _hanging_and_prompt(client, operator, settings, db, nothing) as ends:
        await upload_file(client, matter, "first.txt")
        seen = await _until(db, lambda s: s.get(ends.fast) == ["delivered"])
        assert seen[ends.slow] == ["pending"] and ends.hanging.received == []
        # The next change goes out too while the first attempt still hangs.
        await upload_file(client, matter, "second.txt")
        seen = await _until(db, lambda s: s.get(ends.fast) == ["delivered"] * 2)
        assert seen[ends.slow] == ["pending"] * 2 and ends.hanging.received == []
        assert ends.hanging.hold is not None
        ends.hanging.hold.set()
        await _until(db, lambda s: s.get(ends.slow) == ["delivered"] * 2)
    assert len(ends.prompt.received) == 2 and len(ends.hanging.received) == 2


async def test_a_hanging_endpoint_takes_only_its_share_of_the_places(
    client: httpx.AsyncClient, matter: Matter, operator: Actor, settings: Settings, db: Database
) -> None:
    async def five_uploads() -> None:
        for n in range(5):
            await upload_file(client, matter, f"{n}.txt")

    # Four places for sending at once, so one endpoint's share is one of them: five hanging
    # deliveries would otherwise take all four and leave the prompt endpoint's waiting.
    async with _hanging_and_prompt(
        client, operator, settings, db, five_uploads, concurrency=4
    ) as ends:
        seen = await _until(db, lambda s: s.get(ends.fast) == ["delivered"] * 5)
        assert seen[ends.slow] == ["pending"] * 5 and ends.hanging.received == []
        # While its share is out, the hanging endpoint's new delivery is not claimed: it
        # waits in the outbox rather than for a place, with its lease running.
        await upload_file(client, matter, "6.txt")
        await _until(db, lambda s: s.get(ends.fast) == ["delivered"] * 6)
        async with db.read() as session:
            newest = await session.scalar(
                select(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == ends.slow)
                .order_by(WebhookDelivery.id.desc())
                .limit(1)
            )
        assert newest is not None and newest.status == "pending"
        assert newest.claimed_until is None
        assert ends.hanging.hold is not None
        ends.hanging.hold.set()
        await _until(db, lambda s: s.get(ends.slow) == ["delivered"] * 6)
    assert len(ends.prompt.received) == 6 and len(ends.hanging.received) == 6


async def test_a_delivery_that_waited_past_its_lease_is_leased_again_or_left_to_its_new_owner(
    client: httpx.AsyncClient,
    matter: Matter,
    operator: Actor,
    settings: Settings,
    db: Database,
    clock: Clock,
) -> None:
    async def three_uploads() -> None:
        for n in range(3):
            await upload_file(client, matter, f"{n}.txt")

    # One place for the hanging endpoint: two of its three deliveries wait for it.
    async with _hanging_and_prompt(
        client, operator, settings, db, three_uploads, concurrency=4, clock=clock
    ) as ends:
        await _until(db, lambda s: s.get(ends.fast) == ["delivered"] * 3)
        async with db.write() as session:
            waiting = list(
                await session.scalars(
                    select(WebhookDelivery)
                    .where(WebhookDelivery.webhook_id == ends.slow)
                    .order_by(WebhookDelivery.id)
                )
            )
            # Almost a whole attempt's time passed: the sending delivery's lease still holds,
            # the waiting ones' are nearly out, and another worker claimed the last one
            # (as if its lease had run out).
            clock.advance(PATIENT_SECONDS + 3)
            taken = waiting[-1]
            taken.claimed_until = clock() + timedelta(minutes=5)
        assert ends.hanging.hold is not None
        ends.hanging.hold.set()
        seen = await _until(db, lambda s: s.get(ends.slow, [])[:2] == ["delivered"] * 2)
        assert seen[ends.slow] == ["delivered", "delivered", "pending"]
    # The last was left to the worker that claimed it: this one never sent it.
    assert taken.msg_id not in ends.hanging.ids() and len(ends.hanging.received) == 2


@pytest.mark.parametrize("backlog_from", ["fan-out", "outbox"])
async def test_a_hanging_endpoints_backlog_leaves_the_places_to_the_others(
    client: httpx.AsyncClient,
    matter: Matter,
    operator: Actor,
    settings: Settings,
    db: Database,
    clock: Clock,
    backlog_from: str,
) -> None:
    """Ten deliveries to the hanging endpoint come due before the prompt endpoint's one, with
    eight deliveries out at most and one place for sending each endpoint: those waiting for
    the hanging endpoint's place take none of the eight, and the prompt endpoint's delivery
    goes out beside them (not after the hanging ten, ten minutes later)."""
    queued: dict[str, int] = {}

    async def backlog() -> None:
        hooks = (await client.get("/api/v1/webhooks", headers=operator.headers)).json()
        slow, fast = (h["id"] for h in hooks)  # in the order _hanging_and_prompt made them
        for n in range(10):
            if backlog_from == "fan-out":  # claimed as the fan-out inserts them
                await upload_file(client, matter, f"{n}.txt")
            else:  # waiting in the outbox, claimed by the claim of due deliveries
                await client.post(f"/api/v1/webhooks/{slow}/test", headers=operator.headers)
        sent = await client.post(f"/api/v1/webhooks/{fast}/test", headers=operator.headers)
        queued["fast"] = int(sent.json()["deliveryId"])
        clock.catch_up()  # queued at the real "now"

    async def delivered(delivery_id: int) -> bool:
        async with db.read() as session:
            found = await session.get(WebhookDelivery, delivery_id)
            return found is not None and found.status == "delivered"

    async with _hanging_and_prompt(
        client, operator, settings, db, backlog, concurrency=4, batch=8, clock=clock
    ) as ends:
        with anyio.fail_after(15):
            while True:
                if await delivered(queued["fast"]):
                    break
                await anyio.sleep(0.05)
        assert ends.hanging.received == []
        assert ends.hanging.hold is not None
        ends.hanging.hold.set()
        await _until(db, lambda s: s.get(ends.slow) == ["delivered"] * 10)
    assert len(ends.hanging.received) == 10 and len(set(ends.hanging.ids())) == 10


async def test_a_worker_stopped_mid_round_stores_its_answers_and_lets_go_of_the_rest(
    client: httpx.AsyncClient,
    matter: Matter,
    operator: Actor,
    settings: Settings,
    db: Database,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker stops (its server shuts down) while its round waits for a hanging endpoint:
    the prompt endpoint's answers are stored, not sent again by the next worker, and the
    deliveries it holds unanswered (one being sent, one waiting for the endpoint's place)
    are free at once for the next worker, not only when their leases run out."""
    # The round waits for every answer until it is stopped: the prompt answers are in.
    monkeypatch.setattr(worker_module, "ROUND_SEND_WAIT_SECONDS", 3600.0)
    patient = settings.model_copy(update={"webhook_timeout_seconds": PATIENT_SECONDS})
    with receiver() as hanging, receiver() as prompt:
        hanging.hold = threading.Event()
        await register_webhook(client, operator, hanging.url, ["document.created"])
        await register_webhook(client, operator, prompt.url, ["document.created"])
        for n in range(2):
            await upload_file(client, matter, f"{n}.txt")
        # One place for sending to each endpoint: one hanging delivery waits for it.
        worker = Worker(patient, db, clock=clock, concurrency=4)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(worker.run)
                with anyio.fail_after(30):
                    while True:  # both prompt answers in; the round still waits
                        if len(worker.sender.answers) == 2:
                            break
                        await anyio.sleep(0.02)
                tasks.cancel_scope.cancel()
        finally:
            await worker.close()
        async with db.read() as session:
            rows = list(await session.scalars(select(WebhookDelivery)))
        hooks = {hook["url"]: int(hook["id"]) for hook in await _hooks(client, operator)}
        slow, fast = hooks[hanging.url], hooks[prompt.url]
        stored = sorted((d.webhook_id, d.status, d.claimed_until is None) for d in rows)
        assert stored == sorted([(fast, "delivered", True)] * 2 + [(slow, "pending", True)] * 2)
        # The next worker, at the same moment: the hanging endpoint's two go out, only they.
        hanging.hold.set()
        successor = Worker(settings, db, clock=clock)
        try:
            await successor.run_once()
        finally:
            await successor.close()
        assert len(prompt.received) == 2
        assert set(hanging.ids()) == {d.msg_id for d in rows if d.webhook_id == slow}
    async with db.read() as session:
        statuses = {d.status for d in await session.scalars(select(WebhookDelivery))}
    assert statuses == {"delivered"}


async def test_a_round_waits_for_its_own_sends_not_an_earlier_rounds_hanging_one(
    client: httpx.AsyncClient,
    matter: Matter,
    operator: Actor,
    settings: Settings,
    db: Database,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A send left out by an earlier round (its endpoint hangs) held up every later round
    that sent anything: it waited for all sends out, so each such round took the whole
    ROUND_SEND_WAIT_SECONDS and stored its prompt answers only then."""
    patient = settings.model_copy(update={"webhook_timeout_seconds": PATIENT_SECONDS})
    with receiver() as hanging, receiver() as prompt:
        hanging.hold = threading.Event()
        await register_webhook(client, operator, hanging.url, ["document.created"])
        await register_webhook(client, operator, prompt.url, ["folder.created"])
        # The first round waits a moment for the hanging send, then leaves it out.
        monkeypatch.setattr(worker_module, "ROUND_SEND_WAIT_SECONDS", 0.05)
        worker = Worker(patient, db, clock=clock)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(worker.run)
                await upload_file(client, matter)
                with anyio.fail_after(30):
                    while True:  # the hanging send is out
                        if worker.sender.in_flight == 1:
                            break
                        await anyio.sleep(0.02)
                # From now on a round waits as long as it takes for the sends it waits for.
                monkeypatch.setattr(worker_module, "ROUND_SEND_WAIT_SECONDS", 3600.0)
                made = await client.post(
                    matter.url("/folders"), json={"name": "F"}, headers=matter.writer.headers
                )
                assert made.status_code == 201, made.text
                hooks = {h["url"]: int(h["id"]) for h in await _hooks(client, operator)}
                fast, slow = hooks[prompt.url], hooks[hanging.url]
                statuses = await _until(db, lambda s: s.get(fast) == ["delivered"], seconds=15)
                assert statuses[slow] == ["pending"]  # still out, its endpoint still holding
                hanging.hold.set()
                await _until(db, lambda s: s.get(slow) == ["delivered"])
                tasks.cancel_scope.cancel()
        finally:
            hanging.hold.set()
            await worker.close()
    assert len(prompt.received) == 1 and len(hanging.received) == 1


async def _hooks(client: httpx.AsyncClient, actor: Actor) -> list[dict[str, Any]]:
    listed = await client.get("/api/v1/webhooks", headers=actor.headers)
    assert listed.status_code == 200
    hooks: list[dict[str, Any]] = listed.json()
    return hooks
