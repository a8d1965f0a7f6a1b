"""Sending claimed deliveries, for the worker (worker.py): at most `concurrency` at once, one
endpoint at most a share of those places, each only while this worker holds its lease; the
answers are kept until a round stores them (results.py).

Sends may outlive the round that started them: a slow endpoint's go on while later rounds
send to the others, fan out, seal and index.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import anyio
from anyio.abc import TaskGroup
from sqlalchemy import CursorResult, Table, bindparam, update

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import WebhookDelivery
from casefolio.outbound import delivery, http1
from casefolio.outbound.results import Claimed

#: One endpoint's deliveries take at most this share of the places for sending at once, so
#: that a slow endpoint's leave most of them to the others'.
ENDPOINT_SHARE = 0.25
#: A lease outlasts one attempt by this much: time to store its answer.
LEASE_MARGIN = timedelta(seconds=5)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Places:
    """What a claim may take: how many deliveries more in all, and the endpoints that have
    their share out (claimed, being sent or waiting for a place) and so get none."""

    left: int
    saturated: list[int]


class Sender:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        clock: Callable[[], datetime],
        concurrency: int,
        most_out: int,
    ) -> None:
        """`most_out`: how many deliveries may be out at once (claimed and not answered),
        counting each endpoint's up to its share of the `concurrency` places."""
        self.settings, self.db, self.clock = settings, db, clock
        self.client = http1.Client()
        self.lease = timedelta(seconds=settings.webhook_timeout_seconds) + LEASE_MARGIN
        self._share = max(1, int(concurrency * ENDPOINT_SHARE))
        self._most_out = most_out
        self._limiter = anyio.CapacityLimiter(concurrency)
        #: Sends started and not yet answered, in all and by webhook.
        self.in_flight = 0
        self._out_by_hook: Counter[int] = Counter()
        #: Each endpoint's own places while it has sends out.
        self._endpoint_limiters: dict[int, anyio.CapacityLimiter] = {}
        #: Answers not yet stored.
        self.answers: list[tuple[Claimed, delivery.Outcome]] = []
        #: Deliveries handed to `send_all` and neither answered nor found to be another
        #: worker's (by id(): one delivery may be here twice, claimed again after its lease
        #: ran out while it waited for a place): `release` lets go of them.
        self._unanswered: dict[int, Claimed] = {}
        #: Set (and replaced) whenever a send ends.
        self.answered = anyio.Event()

    async def close(self) -> None:
        await self.client.aclose()

    def places(self, claimed: list[Claimed]) -> Places:
        """The places left beside what is out and `claimed` (claimed, not yet sent).

        An endpoint's deliveries count up to its share: those past it wait for its own
        places, not for the others'. Counted whole, a slow endpoint's backlog (a fan-out
        claims a whole batch; a claim takes up to `left` of one endpoint's) left no place
        for the other endpoints' due deliveries until it had been sent, minutes later.
        """
        out = self._out_by_hook.copy()
        out.update(item.webhook_id for item in claimed)
        saturated = [hook for hook, count in out.items() if count >= self._share]
        taken = sum(min(count, self._share) for count in out.values())
        return Places(self._most_out - taken, saturated)

    async def send_all(self, claimed: list[Claimed], background: TaskGroup | None) -> None:
        """Send `claimed`: started in `background` (see `wait_for_answers`), or, without
        one, until every one has answered."""
        self.in_flight += len(claimed)
        self._out_by_hook.update(item.webhook_id for item in claimed)
        self._unanswered.update((id(item), item) for item in claimed)
        if background is None:
            async with anyio.create_task_group() as tasks:
                for item in claimed:
                    tasks.start_soon(self._send, item)
            return
        for item in claimed:
            background.start_soon(self._send, item)

    async def wait_for_answers(self, items: list[Claimed], seconds: float) -> None:
        """Until each of `items` has its answer (or was found to be another worker's), or
        `seconds` have passed. Not for sends of earlier rounds still out: waiting for a
        hanging endpoint's made every round that sent anything last the whole `seconds`."""
        waiting = deque(items)  # each looked at once while answered, however many there are
        with anyio.move_on_after(seconds):
            while waiting:
                if id(waiting[0]) in self._unanswered:
                    await self.answered.wait()
                else:
                    waiting.popleft()

    def take_answers(self) -> list[tuple[Claimed, delivery.Outcome]]:
        answers, self.answers = self.answers, []
        return answers

    def give_back(self, answers: list[tuple[Claimed, delivery.Outcome]]) -> None:
        """Answers that could not be stored: the next round stores them."""
        self.answers[:0] = answers

    async def _send(self, item: Claimed) -> None:
        endpoint = self._endpoint_limiters.get(item.webhook_id)
        if endpoint is None:
            endpoint = self._endpoint_limiters[item.webhook_id] = anyio.CapacityLimiter(self._share)
        try:
            # The endpoint's place first: a slow endpoint's sends wait for their own places
            # without holding any of the others'.
            async with endpoint, self._limiter:
                if not await self._lease_covers(item):
                    del self._unanswered[id(item)]
                    return
                outcome = await delivery.attempt(
                    self.client,
                    url=item.url,
                    secrets_=item.secrets,
                    msg_id=item.msg_id,
                    body=item.payload,
                    allowed=self.settings.webhook_networks,
                    time_limit=self.settings.webhook_timeout_seconds,
                )
            self.answers.append((item, outcome))
            del self._unanswered[id(item)]
        finally:
            self.in_flight -= 1
            self._out_by_hook[item.webhook_id] -= 1
            if not self._out_by_hook[item.webhook_id]:
                del self._out_by_hook[item.webhook_id]
                del self._endpoint_limiters[item.webhook_id]
            answered, self.answered = self.answered, anyio.Event()
            answered.set()

    async def release(self, more: list[Claimed]) -> None:
        """Let go of the deliveries this worker holds and has no answer for (cancelled
        sends, those that waited for a place, and `more`), where it still holds them: the
        next worker sends them at once rather than when their leases run out."""
        held = [*self._unanswered.values(), *more, *(item for item, _ in self.answers)]
        if not held:
            return
        async with self.db.write() as session:
            connection = await session.connection()
            await connection.execute(
                _RELEASE, [{"key": i.delivery_id, "leased": i.leased_until} for i in held]
            )
        self._unanswered.clear()

    async def _lease_covers(self, item: Claimed) -> bool:
        """Whether this worker holds the delivery for a whole attempt from now. One that
        waited long for a place is leased again, unless its lease ran out and another worker
        claimed it meanwhile (then it is that worker's to send)."""
        now = self.clock()
        timeout = timedelta(seconds=self.settings.webhook_timeout_seconds)
        if item.leased_until - now > timeout + LEASE_MARGIN / 2:
            return True
        renewed = now + self.lease
        try:
            async with self.db.write() as session:
                result = await session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id == item.delivery_id,
                        WebhookDelivery.status == "pending",
                        WebhookDelivery.claimed_until == item.leased_until,
                    )
                    .values(claimed_until=renewed)
                )
        except Exception as exc:
            # Not sent now: the lease runs out and a later claim sends it.
            log.warning("a delivery's lease could not be renewed (%s)", exc)
            return False
        if cast(CursorResult[Any], result).rowcount != 1:
            return False
        item.leased_until = renewed
        return True


_DELIVERIES = cast(Table, WebhookDelivery.__table__)
#: One delivery let go of, if this worker still holds it (executed for many at once).
_RELEASE = (
    update(_DELIVERIES)
    .where(
        _DELIVERIES.c.id == bindparam("key"),
        _DELIVERIES.c.status == "pending",
        _DELIVERIES.c.claimed_until == bindparam("leased"),
    )
    .values(claimed_until=None)
)
