"""Answers an endpoint may give that the worker must store like any other: a Retry-After
past what a date can hold, a body with NUL bytes, a refusal longer than the log's column.
One endpoint's answer never keeps the others' from being stored (they are stored together,
in one transaction)."""

from __future__ import annotations

import ipaddress
import random
from datetime import timedelta
from functools import partial

import anyio
import httpx
import pytest
from sqlalchemy import select

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import Webhook, WebhookAttempt, WebhookDelivery
from casefolio.domain import webhooks
from casefolio.domain.principal import Principal
from casefolio.outbound import results
from casefolio.outbound.delivery import Outcome
from casefolio.outbound.results import Claimed
from casefolio.outbound.worker import UNSTORABLE, Worker
from tests.clocks import Clock
from tests.factories import Actor
from tests.outbound.conftest import Matter, register_webhook, upload_file
from tests.outbound.receiver import receiver
from tests.races import until_backends_wait_on_locks
from tests.refusals import refusing


async def _deliveries(db: Database) -> dict[int, WebhookDelivery]:
    async with db.read() as session:
        return {d.webhook_id: d for d in await session.scalars(select(WebhookDelivery))}


@pytest.mark.parametrize("retry_after", ["99999999999", "999999999999", "1e400", "inf"])
async def test_a_retry_after_past_any_date_waits_the_schedules_longest(
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    operator: Actor,
    settings: Settings,
    worker: Worker,
    clock: Clock,
    retry_after: str,
) -> None:
    with receiver() as busy, receiver() as fine:
        slow = await register_webhook(client, operator, busy.url, ["document.created"])
        fast = await register_webhook(client, operator, fine.url, ["document.created"])
        busy.answers = [(503, {"retry-after": retry_after})]
        await upload_file(client, matter)
        # Both answers are stored in this round (a date past year 9999 failed the round's
        # store, every round's again, and no answer of any endpoint was stored any more).
        await worker.run_once()
        assert len(busy.received) == 1 and len(fine.received) == 1
        found = await _deliveries(db)
        assert found[int(fast["id"])].status == "delivered"
        waiting = found[int(slow["id"])]
        assert waiting.status == "pending" and waiting.claimed_until is None
        longest = timedelta(seconds=max(settings.webhook_retry_schedule))
        assert waiting.next_attempt_at == clock() + longest
        # It goes out again then, with the same webhook-id.
        clock.advance(longest.total_seconds() - 1)
        await worker.run_once()
        assert len(busy.received) == 1
        clock.advance(1)
        await worker.run_once()
        assert len(busy.received) == 2 and len(set(busy.ids())) == 1
        assert (await _deliveries(db))[int(slow["id"])].status == "delivered"


async def _answered_beside_a_plain_one(
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    operator: Actor,
    worker: Worker,
    body: bytes,
) -> tuple[WebhookAttempt, WebhookAttempt]:
    """One endpoint answers 200 with `body`, another plainly, in one round: both deliveries
    are delivered in it, and nothing is due or sent again after. Return the two attempts
    (the odd one first)."""
    with receiver() as odd_end, receiver() as fine:
        odd = await register_webhook(client, operator, odd_end.url, ["document.created"])
        plain = await register_webhook(client, operator, fine.url, ["document.created"])
        odd_end.body = body
        await upload_file(client, matter)
        await worker.run_once()
        found = await _deliveries(db)
        assert found[int(odd["id"])].status == "delivered"
        assert found[int(plain["id"])].status == "delivered"
        async with db.read() as session:
            attempts = {a.delivery_id: a for a in await session.scalars(select(WebhookAttempt))}
        # Nothing is due any more, and nothing was sent twice.
        assert await worker.run_once() == 0
        assert len(odd_end.received) == 1 and len(fine.received) == 1
    return attempts[found[int(odd["id"])].id], attempts[found[int(plain["id"])].id]


async def test_an_answer_whose_body_holds_nul_bytes_is_stored(
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    operator: Actor,
    worker: Worker,
) -> None:
    # PostgreSQL's text holds no NUL: the store failed, in every round after.
    attempt, _ = await _answered_beside_a_plain_one(
        client, db, matter, operator, worker, b"ok\x00\x01\xff then more"
    )
    assert attempt.status_code == 200
    assert attempt.response_excerpt == "ok\ufffd\x01\ufffd then more"


async def test_a_refusal_longer_than_the_logs_column_is_stored_cut(
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    operator: Actor,
    worker: Worker,
) -> None:
    """A link-local address with a long zone (allowed when the webhook was registered, not
    any more) makes a refusal naming it twice, past the attempt log's 500 characters:
    PostgreSQL refused the store, in every round after."""
    who = Principal(operator.user_id, operator.email, "Op", True)
    url = f"http://[fe80::1%25{'z' * 400}]:9/hook"
    async with db.write() as session:
        spec = webhooks.WebhookSpec(url, ["document.created"])
        await webhooks.create(
            session, who=who, spec=spec, allowed=[ipaddress.ip_network("fe80::/10")]
        )
    with receiver() as fine:
        plain = await register_webhook(client, operator, fine.url, ["document.created"])
        await upload_file(client, matter)
        await worker.run_once()
        found = await _deliveries(db)
        assert found[int(plain["id"])].status == "delivered"
    async with db.read() as session:
        errors = [e for e in await session.scalars(select(WebhookAttempt.error)) if e]
    [refused] = errors
    assert len(refused) == 500 and refused.startswith("The host fe80::1%25zzz")


async def test_a_secret_that_cannot_be_read_fails_its_own_attempt_only(
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    operator: Actor,
    worker: Worker,
) -> None:
    """A secret damaged in the database (not base64) fails its webhook's attempt; it raised
    out of the send, and with it the round, and no other endpoint's answer was stored."""
    with receiver() as damaged, receiver() as fine:
        broken = await register_webhook(client, operator, damaged.url, ["document.created"])
        plain = await register_webhook(client, operator, fine.url, ["document.created"])
        async with db.write() as session:
            hook = await session.get_one(Webhook, int(broken["id"]))
            hook.secret = "whsec_not*base64"
        await upload_file(client, matter)
        await worker.run_once()
        found = await _deliveries(db)
        assert found[int(plain["id"])].status == "delivered"
        unsent = found[int(broken["id"])]
        assert unsent.status == "pending" and unsent.attempts == 1
        assert damaged.received == [] and len(fine.received) == 1
        async with db.read() as session:
            error = await session.scalar(
                select(WebhookAttempt.error).where(WebhookAttempt.delivery_id == unsent.id)
            )
        assert error is not None and error.startswith("Error: ")


async def test_an_answer_the_database_refuses_holds_back_no_other(
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    operator: Actor,
    worker: Worker,
) -> None:
    """An answer the database refuses for a reason nobody foresaw (here a trigger stands in
    for one) failed the store of the round's answers, round after round: no endpoint's
    answer was stored, and the worker did nothing else. Now each is stored apart, and the
    refused one without what it answered."""
    async with refusing(db, "webhook_attempts", "NEW.response_excerpt LIKE '%poison%'"):
        refused, plain = await _answered_beside_a_plain_one(
            client, db, matter, operator, worker, b"a poison pill"
        )
    assert refused.status_code == 200 and refused.response_excerpt == ""
    assert refused.error == UNSTORABLE
    assert plain.error is None


async def test_two_workers_storing_failures_of_one_endpoint_count_both(
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    operator: Actor,
    settings: Settings,
    clock: Clock,
    is_postgres: bool,
) -> None:
    """PostgreSQL, two workers storing a failed attempt of one endpoint each at once: both
    count in its failures in a row (each read the count before the other wrote it, and one
    increment was lost, so `failing` could come late or never)."""
    if not is_postgres:
        pytest.skip("SQLite's writers take turns: the two stores never overlap")
    hook = await register_webhook(client, operator, "http://127.0.0.1:9/hook", ["document.created"])
    await upload_file(client, matter, "a.txt")
    await upload_file(client, matter, "b.txt")
    fanning = Worker(settings, db, clock=clock)
    try:
        await fanning.fan_out()
    finally:
        await fanning.close()
    async with db.read() as session:
        rows = list(await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
    assert len(rows) == 2 and all(row.claimed_until is not None for row in rows)
    refused = Outcome(500, 1, "", None, None)
    answers = [
        (
            Claimed(
                row.id,
                row.msg_id,
                row.payload,
                hook["url"],
                [],
                0,
                row.webhook_id,
                leased_until=row.claimed_until,
            ),
            refused,
        )
        for row in rows
    ]
    # Both stores read the endpoint's health, then wait on their delivery's row lock.
    holder = db.writer()
    await holder.begin()
    try:
        await holder.execute(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.id.in_([r.id for r in rows]))
            .with_for_update()
        )
        async with anyio.create_task_group() as tasks:
            for answer in answers:
                tasks.start_soon(
                    partial(
                        results.store, db, settings, [answer], now=clock(), rng=random.Random(1)
                    )
                )
            await until_backends_wait_on_locks(db, 2)
            await holder.commit()
    finally:
        await holder.close()
    async with db.read() as session:
        stored = await session.get_one(Webhook, int(hook["id"]))
    assert stored.consecutive_failures == 2
