"""The webhook worker: fans the outbox out into deliveries, and delivers them at least once.

Each round is up to four short transactions and no transaction is open while a request is
out: numbering (PostgreSQL: committed changes get their feed numbers, sealing.py), fan-out
(new changes become one delivery per matching webhook, and the fan-out position moves,
together), claim (claims.py: due deliveries are leased for a while, `FOR UPDATE SKIP
LOCKED` on PostgreSQL so several workers never take the same one), results (results.py: attempts,
next attempt times, endpoint health), and once a second sealing (audit entries hashed into
the chain, sealing.py), each written set-based rather than row by row. A step first looks, in a
read, whether it has anything to do: a write transaction takes SQLite's one write lock,
which the requests' own writes wait for. A worker killed mid-round loses nothing: its
leases run out and the deliveries go out again, with the same `webhook-id`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta

import anyio
from anyio.abc import TaskGroup
from sqlalchemy import func, select, text

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import Change, Webhook
from casefolio.db.types import utcnow
from casefolio.domain import events
from casefolio.domain.failures import passing as _passing
from casefolio.outbound import claims, delivery, feed, sealing
from casefolio.outbound import results as results_
from casefolio.outbound.results import Claimed
from casefolio.outbound.sending import Sender
from casefolio.outbound.signal import signal
from casefolio.search.index import Indexer

SYSTEM = events.Actor("system")
FAN_OUT_BATCH = 1000
#: pg_advisory_xact_lock key: one fan-out at a time across workers.
FAN_OUT_LOCK = 0x6361_7365_666F_6C6A
TRIM_EVERY = timedelta(hours=1)
#: Sealing waits for nobody (readers of hashes seal first): a transaction, and its commit,
#: at most this often rather than every round.
SEAL_EVERY = timedelta(seconds=1)
#: After a wake-up on an idle worker: commits that follow within this go in the same round.
BATCH_WINDOW_SECONDS = 0.01
#: Before the next round when changes committed during the last (fewer than a batch). Under
#: a steady stream of writes each round's fixed cost (its reads, two or three write
#: transactions and their commits, on SQLite under the write lock the uploads wait for) is
#: shared by what gathered meanwhile: the longer the gathering, the less of it per upload.
#: Only a busy worker waits this long; an idle one still wakes within BATCH_WINDOW_SECONDS.
BUSY_WINDOW_SECONDS = 0.25
#: How long a round waits for its deliveries' answers. In `run` a send still waiting then
#: goes on in the background and a later round stores its answer: a slow or hanging endpoint
#: holds back neither other endpoints' deliveries nor the fan-out, sealing and indexing.
ROUND_SEND_WAIT_SECONDS = 1.0
#: After a failed round the next waits this long, doubling while rounds keep failing, up to
#: ROUND_RETRY_MAX_SECONDS.
ROUND_RETRY_SECONDS = 0.5
ROUND_RETRY_MAX_SECONDS = 30.0
#: The attempt log's error for an answer the database refused to store as it came.
UNSTORABLE = "The endpoint's answer could not be stored; the worker's log says why."
#: How long a stopping worker may take to store its answers and let go of its deliveries.
SETTLE_SECONDS = 5.0
log = logging.getLogger(__name__)


class Worker:
    """`clock`, `rng` and `pause` (the wait after a failed round) are injectable so tests walk
    the retry schedules without waiting."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        batch: int = 200,
        concurrency: int = 64,
        pause: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.settings, self.db, self.clock, self.pause = settings, db, clock, pause
        self.rng = rng or random.Random()
        self.sender = Sender(settings, db, clock=clock, concurrency=concurrency, most_out=batch)
        self._last_trim: datetime | None = None
        self._last_seal: datetime | None = None
        self.indexer = Indexer(settings, db, clock=clock)  # search: extracts new versions' text
        #: Whether the last round left work behind (a full batch): the next starts at once.
        self.backlog = False
        #: Deliveries the last fan-out inserted already claimed, to be sent this round.
        self._fresh: list[Claimed] = []
        #: Where `run` sends: sends there outlive the round that started them.
        self._sending: TaskGroup | None = None

    async def close(self) -> None:
        await self.sender.close()
        await self.indexer.close()

    async def run_once(self) -> int:
        """One round: number, fan out, deliver what is due, seal; return how many things it
        did."""
        events.current_actor.set(SYSTEM)
        self.backlog = False
        done = await sealing.number_pending(self.db)  # so that the fan-out sees them
        done += await self.fan_out()
        done += await self.deliver_due()
        # Apart from each other: one failing every round (a seal the database refuses) held
        # back those after it for good. The first failure is raised once all have run.
        failed: Exception | None = None
        for step in (self._seal_now_and_then, self.indexer.run_once, self._trim_now_and_then):
            try:
                done += await step()
            except Exception as exc:
                if failed is not None:
                    log.warning("a worker round's %s failed too (%s)", step.__name__, exc)
                failed = failed or exc
        if failed is not None:
            raise failed
        return done

    async def run(self) -> None:
        """Forever: rounds while there is work, else wait for a commit (or a second).

        A round that left work behind is followed at once. If changes committed while a
        round ran, the next one lets more gather for BUSY_WINDOW_SECONDS; after a wake-up an
        idle worker lets a few milliseconds of commits gather. So under load a round carries
        many deliveries, and takes SQLite's write lock that much less often. Sends outlive
        their round (`deliver_due`); an answer that comes between rounds wakes the worker.
        """
        try:
            async with anyio.create_task_group() as sending:
                self._sending = sending
                try:
                    await self._rounds()
                finally:
                    self._sending = None
        finally:
            # Stopped (a server shutting down cancels it): the answers that came are stored
            # and the deliveries held without one let go of. Both waited for their leases to
            # run out: the answered went out again, the others only then.
            with anyio.move_on_after(SETTLE_SECONDS, shield=True):
                await self._settle()

    async def _settle(self) -> None:
        try:
            await self._store_answers()
        except Exception as exc:
            log.warning("a stopping worker could not store its answers (%s)", exc)
        try:
            await self.sender.release(self._fresh)
            self._fresh = []
        except Exception as exc:
            log.warning("a stopping worker could not let go of its deliveries (%s)", exc)

    async def _rounds(self) -> None:
        failures = 0
        while True:
            seen = signal.generation
            try:
                await self.run_once()
            except Exception as exc:
                # Each step is its own transaction: a failed one changed nothing, and the
                # next round takes it up again. Rounds fail while the database restarts or
                # fails over, or while SQLite's lock is held past its wait.
                failures += 1
                wait = min(ROUND_RETRY_MAX_SECONDS, ROUND_RETRY_SECONDS * 2 ** (failures - 1))
                log.warning(
                    "a worker round failed (%s); the next in %.1f s",
                    str(exc).partition("\n")[0] or type(exc).__name__,
                    wait,
                    exc_info=not _passing(exc),
                )
                await self.pause(wait)
                continue
            if failures:
                log.info("the worker's rounds succeed again")
                failures = 0
            if self.backlog or self.sender.answers:
                continue
            if signal.generation != seen:
                await anyio.sleep(BUSY_WINDOW_SECONDS)
            elif await self._wait_for_work(feed.RECHECK_SECONDS):
                await anyio.sleep(BATCH_WINDOW_SECONDS)

    async def _wait_for_work(self, seconds: float) -> bool:
        """Wait up to `seconds` for a commit or a send's answer; return whether one came."""
        came = False

        async def for_commit() -> None:
            nonlocal came
            came = await signal.wait(seconds)
            tasks.cancel_scope.cancel()

        async def for_answer(answered: anyio.Event) -> None:
            nonlocal came
            await answered.wait()
            came = True
            tasks.cancel_scope.cancel()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(for_commit)
            if self.sender.in_flight:
                tasks.start_soon(for_answer, self.sender.answered)
        return came

    async def fan_out(self) -> int:
        async with self.db.read() as session:
            newest = await session.scalar(select(func.max(Change.seq)))
            if newest is None or newest <= await feed.state(session, feed.FANNED_OUT):
                return 0
        # Shielded from a stop: the deliveries it claims are held from its commit on, and a
        # stop lets go only of those the worker knows of (`_settle`).
        with anyio.CancelScope(shield=True):
            fanned_out = await self._fan_out_once()
        return fanned_out

    async def _fan_out_once(self) -> int:
        async with self.db.write() as session:
            if self.db.engine.dialect.name == "postgresql":
                await session.execute(text(f"SELECT pg_advisory_xact_lock({FAN_OUT_LOCK})"))
            position = await feed.state(session, feed.FANNED_OUT)
            changes = list(
                await session.scalars(
                    select(Change)
                    .where(Change.seq > position)
                    .order_by(Change.seq)
                    .limit(FAN_OUT_BATCH)
                )
            )
            if not changes:
                return 0
            hooks = list(await session.scalars(select(Webhook).where(Webhook.active.is_(True))))
            now = self.clock()
            first_at = now + timedelta(seconds=self.settings.webhook_retry_schedule[0])
            fresh = await claims.insert_fresh(
                session,
                claims.new_rows(changes, hooks, first_at),
                hooks,
                now=now,
                lease=self.sender.lease,
                # An endpoint with its share out gets none: they wait for a later claim.
                saturated=self.sender.places(self._fresh).saturated,
            )
            await feed.set_state(session, feed.FANNED_OUT, changes[-1].seq)
        # Only once committed: a fan-out that failed to commit claimed nothing.
        self._fresh += fresh
        self.backlog |= len(changes) == FAN_OUT_BATCH
        return len(changes)

    async def deliver_due(self) -> int:
        """Send what is due, wait for the answers (in `run` for ROUND_SEND_WAIT_SECONDS at most)
        and store every answer that came, also those of earlier rounds' sends (first: an
        answered delivery is not claimed again while its answer waits)."""
        done = await self._store_answers()
        if (places := self.sender.places(self._fresh)).left > 0:
            with anyio.CancelScope(shield=True):  # as in fan_out
                more, full = await claims.claim_due(
                    self.db, now=self.clock(), places=places, lease=self.sender.lease
                )
                self._fresh += more
            self.backlog |= full
        # Only now: if the claim failed, the next round sends the fan-out's (dropped here,
        # they waited for their leases to run out). From here the sender knows them.
        claimed, self._fresh = self._fresh, []
        await self.sender.send_all(claimed, self._sending)
        if claimed and self._sending is not None:
            await self.sender.wait_for_answers(claimed, ROUND_SEND_WAIT_SECONDS)
        return done + len(claimed) + await self._store_answers()

    async def _store_answers(self) -> int:
        answers = self.sender.take_answers()
        if not answers:
            return 0
        try:
            await self._store(answers)
        except Exception as exc:
            if _passing(exc):
                self.sender.give_back(answers)
                raise
            # The database refused something in one answer (the refusals known are kept
            # out in results.py). Given back whole, it would fail this store round after
            # round, and with it every endpoint's answer and the rounds' other work.
            log.error("storing %d answers failed; storing each apart", len(answers), exc_info=exc)
            await self._store_apart(answers)
        except BaseException:
            self.sender.give_back(answers)
            raise
        return len(answers)

    async def _store_apart(self, answers: list[tuple[Claimed, delivery.Outcome]]) -> None:
        """Store each answer in a transaction of its own; one the database refuses is stored
        without what it answered, and if even that fails it is left to its lease (the
        delivery goes out again once its lease has run out)."""
        for index, (item, outcome) in enumerate(answers):
            try:
                await self._store([(item, outcome)])
                continue
            except Exception as exc:
                if _passing(exc):
                    self.sender.give_back(answers[index:])
                    raise
                log.error("delivery %d: its answer cannot be stored", item.delivery_id)
            plain = replace(outcome, excerpt="", error=UNSTORABLE)
            try:
                await self._store([(item, plain)])
            except Exception as exc:
                if _passing(exc):
                    self.sender.give_back(answers[index:])
                    raise
                log.exception("delivery %d: left to its lease", item.delivery_id)

    async def _store(self, answers: list[tuple[Claimed, delivery.Outcome]]) -> None:
        await results_.store(self.db, self.settings, answers, now=self.clock(), rng=self.rng)

    async def _seal_now_and_then(self) -> int:
        now = self.clock()
        if self._last_seal is not None and now - self._last_seal < SEAL_EVERY:
            return 0
        self._last_seal = now
        return await sealing.seal_pending(self.db)

    async def _trim_now_and_then(self) -> int:
        now = self.clock()
        if self._last_trim is not None and now - self._last_trim < TRIM_EVERY:
            return 0
        self._last_trim = now
        async with self.db.write() as session:
            await feed.trim(session, retention=timedelta(days=self.settings.changes_retention_days))
        return 0  # not counted: a trim leaves no work behind for the next round


@asynccontextmanager
async def running_worker(settings: Settings, db: Database) -> AsyncIterator[Worker]:
    """A worker running in the background of this process while the block runs."""
    worker = Worker(settings, db)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(worker.run)
            yield worker
            tasks.cancel_scope.cancel()
    finally:
        await worker.close()
