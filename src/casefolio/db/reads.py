"""What a domain read runs its statements on, and how a read of one statement is declared.

A read takes a `Reader`: an ordinary SQLAlchemy read session, or any `StatementRunner`,
which runs one read-only statement and returns its rows. The read-optimised runner lives
behind the fast-path seam (fastpath/); the domain only ever writes plain SQLAlchemy
statements, and answers alike on both (tests/fastpath/test_fast_path.py).

A `BatchedRead` declares a read of a few keys twice: for one set of keys (`single`) and for
many at once (`many`, joined to `key_table`), so that a runner that can share one round trip
between concurrent reads (PostgreSQL's, fastpath/batching.py) may; a session runs `single`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, runtime_checkable

from sqlalchemy import ARRAY, Executable, Select, bindparam, cast, column, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import TableValuedAlias
from sqlalchemy.types import TypeEngine

#: What a single-statement read returns: its rows, as SQLAlchemy's Rows or plain tuples.
Rows = Sequence[Sequence[Any]]

#: The column of `BatchedRead.many` that says whose row it is (WITH ORDINALITY's, 1-based).
POSITION = "position"


def key_table(**keys: TypeEngine[Any]) -> TableValuedAlias:
    """The keys of a batch as a table to join a read to: a column per key (each sent as one
    array parameter of the key's name) and `position`, the key's 1-based place in the batch."""
    # Cast: unnest() takes any array, so PostgreSQL cannot infer the parameters' types.
    arrays = [cast(bindparam(name, type_=ARRAY(kind)), ARRAY(kind)) for name, kind in keys.items()]
    columns = [column(name, kind) for name, kind in keys.items()]
    return (
        func.unnest(*arrays)
        .table_valued(*columns, with_ordinality=POSITION)
        .render_derived(name="batch_keys")
    )


@dataclass(frozen=True, eq=False)
class BatchedRead:
    """One read, as a statement for one set of `keys` (`single`, bind parameters of the keys'
    names) and for many (`many`: the same columns followed by the key's position, in the order
    of the positions, each key's rows in `single`'s order; parameters are arrays, key_table)."""

    single: Select[Any]
    many: Select[Any]
    keys: frozenset[str]
    #: Reads one statement answers at most (None: the runner's own bound); reads of many
    #: rows each (pages) take a smaller one, so that one statement's answer stays small.
    max_batch: int | None = None


@runtime_checkable
class StatementRunner(Protocol):
    """Runs read-only statements outside any session (fastpath.statements.StatementReader)."""

    @property
    def dialect_name(self) -> str:
        """The database's kind, as SQLAlchemy names it ("sqlite", "postgresql")."""
        ...

    async def execute(self, statement: Executable, parameters: Mapping[str, Any]) -> Rows:
        """Given a read-only statement and its parameters, return all its rows."""
        ...

    async def execute_batched(self, read: BatchedRead, parameters: Mapping[str, Any]) -> Rows:
        """Given a batched read and its keys' values, return the rows `read.single` returns
        (a runner may append the key's position to each row)."""
        ...


#: What a read runs its statements on: a read session, or a StatementRunner.
Reader: TypeAlias = AsyncSession | StatementRunner


def dialect_name(db: Reader) -> str:
    """Given a reader, return the database's kind ("sqlite", "postgresql")."""
    if isinstance(db, AsyncSession):
        return db.get_bind().dialect.name
    return db.dialect_name


async def read_all(db: Reader, statement: Executable, parameters: Mapping[str, Any]) -> Rows:
    """Given a reader, a read-only statement and its parameters, return all its rows."""
    if isinstance(db, AsyncSession):
        rows: Rows = (await db.execute(statement, parameters)).all()
        return rows
    return await db.execute(statement, parameters)


async def read_rows(db: Reader, read: BatchedRead, parameters: Mapping[str, Any]) -> Rows:
    """Given a reader, a batched read and its keys' values, return the read's rows."""
    if isinstance(db, AsyncSession):
        rows: Rows = (await db.execute(read.single, parameters)).all()
        return rows
    return await db.execute_batched(read, parameters)
