"""Leases: an answer that comes after its lease ran out, and another worker claimed the
delivery meanwhile, does not take the delivery back from that worker."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import anyio
import httpx
from sqlalchemy import select

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import WebhookAttempt, WebhookDelivery
from casefolio.outbound.worker import Worker
from tests.clocks import Clock
from tests.factories import Actor
from tests.outbound.conftest import Matter, register_webhook, upload_file
from tests.outbound.receiver import Receiver, receiver
from tests.outbound.test_webhooks import PATIENT_SECONDS


async def _until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(30):
        while True:
            if condition():
                return
            await anyio.sleep(0.01)


async def _lease(db: Database) -> tuple[str, datetime | None, int]:
    async with db.read() as session:
        [row] = await session.execute(
            select(WebhookDelivery.status, WebhookDelivery.claimed_until, WebhookDelivery.attempts)
        )
        return row.status, row.claimed_until, row.attempts


async def test_a_late_failure_leaves_the_delivery_to_the_worker_that_claimed_it_since(
    client: httpx.AsyncClient,
    matter: Matter,
    operator: Actor,
    settings: Settings,
    db: Database,
) -> None:
    patient = settings.model_copy(update={"webhook_timeout_seconds": PATIENT_SECONDS})
    clock = Clock()
    first, second, third = (Worker(patient, db, clock=clock) for _ in range(3))
    hooked: Receiver
    with receiver() as hooked:
        await register_webhook(client, operator, hooked.url, ["document.created"])
        held = [threading.Event(), threading.Event()]
        hooked.holds = list(held)
        hooked.answers = [(500, {}), (500, {})]
        await upload_file(client, matter)

        async def round_of(worker: Worker, done: anyio.Event) -> None:
            await worker.run_once()
            done.set()

        def start(worker: Worker) -> anyio.Event:
            done = anyio.Event()
            tasks.start_soon(round_of, worker, done)
            return done

        try:
            async with anyio.create_task_group() as tasks:
                # The first worker's attempt is out (the endpoint holds it) past its lease...
                first_done = start(first)
                await _until(lambda: len(hooked.holds) == 1)
                clock.advance(PATIENT_SECONDS + 6)
                # ...so a second worker claims the delivery and sends it (held too).
                start(second)
                await _until(lambda: not hooked.holds)
                _, second_lease, _ = await _lease(db)
                # The first attempt's failure comes, and is stored.
                held[0].set()
                await first_done.wait()
                status, lease, attempts = await _lease(db)
                assert (status, lease, attempts) == ("pending", second_lease, 1)
                # Past when the late failure would retry, within the second worker's lease:
                # a third worker finds nothing to send (the second's attempt is still out).
                clock.advance(PATIENT_SECONDS / 2)
                assert await third.run_once() == 0
                held[1].set()
        finally:
            for event in held:
                event.set()
            for worker in (first, second, third):
                await worker.close()
        assert len(hooked.received) == 2 and len(set(hooked.ids())) == 1
    # Both attempts are in the delivery's log; the second's failure schedules its retry.
    async with db.read() as session:
        attempts_logged = list(await session.scalars(select(WebhookAttempt.status_code)))
    assert attempts_logged == [500, 500]
    status, lease, attempts = await _lease(db)
    assert (status, lease, attempts) == ("pending", None, 2)


async def test_a_redelivery_asked_for_while_an_attempt_is_out_is_sent_after_it(
    client: httpx.AsyncClient,
    matter: Matter,
    operator: Actor,
    settings: Settings,
    db: Database,
) -> None:
    """The attempt out when a redelivery is asked for succeeds: the delivery is sent again
    all the same (the earlier code marked it delivered, and the redelivery never went)."""
    clock = Clock()
    worker = Worker(settings, db, clock=clock)
    hooked: Receiver
    with receiver() as hooked:
        hook = await register_webhook(client, operator, hooked.url, ["document.created"])
        out = threading.Event()
        hooked.holds = [out]
        await upload_file(client, matter)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(worker.run_once)
                await _until(lambda: not hooked.holds)  # the first attempt is out
                async with db.read() as session:
                    [delivery_id] = await session.scalars(select(WebhookDelivery.id))
                again = await client.post(
                    f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery_id}/redeliver",
                    headers=operator.headers,
                )
                assert again.status_code == 202
                out.set()  # ...and succeeds
            assert await _lease(db) == ("pending", None, 0)
            clock.advance(1)
            await worker.run_once()
        finally:
            out.set()
            await worker.close()
        assert len(hooked.received) == 2 and len(set(hooked.ids())) == 1
    assert await _lease(db) == ("delivered", None, 1)
    async with db.read() as session:
        logged = list(await session.scalars(select(WebhookAttempt.status_code)))
    assert logged == [200, 200]
