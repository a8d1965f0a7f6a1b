"""SELECTs compiled once and run on a plain DB-API connection: SQLite's StatementReader.

SQLAlchemy's Connection.execute pays, on every call, for what does not change between calls
of the same statement: the statement's cache key (a walk over all its columns), the compiled
cache lookup, the execution context and the result's metadata; for the document read, a
statement of 30 columns, a large share of the read (bench/README.md). A PreparedRead takes
from SQLAlchemy, once, what it would apply each time (the SQL, the order of the parameters,
and each bind and result column type's converter for the dialect, the TypeEngine methods
SQLAlchemy itself calls) and then only applies them.

Only plain SELECTs qualify (`prepare` returns None otherwise); the rest keep SQLAlchemy's
execution. A PreparedWrite does the same for a write whose every value its caller gives, in
the caller's transaction, on either database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy.exc
from sqlalchemy import Connection, Dialect, Executable, Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from casefolio.fastpath import sqlite_inline

Converter = Callable[[Any], Any] | None
Rows = list[tuple[Any, ...]]


class PreparedRead:
    """A SELECT compiled once for SQLite (pysqlite: positional `?` parameters)."""

    def __init__(self, statement: Select[Any], compiled: SQLCompiler, dialect: Dialect) -> None:
        self.sql = compiled.string
        binds = compiled.binds
        # Parameters the caller supplies (bindparam("name")), and the statement's own values.
        self._parameters: list[tuple[str, bool, Any, Converter]] = []
        for name in compiled.positiontup or ():
            bind = binds[name]
            default = None if bind.required else bind.effective_value
            converter = bind.type.dialect_impl(dialect).bind_processor(dialect)
            self._parameters.append((name, bind.required, default, converter))
        # Only the columns whose values change on the way out (timestamps, JSON, booleans),
        # applied by one function per statement that builds the converted row in one tuple
        # display (a list, item assignments and a tuple per row cost several times more: a
        # page of documents converts a thousand rows).
        converters: dict[str, Callable[[Any], Any]] = {}
        shown = []
        for index, column in enumerate(statement.selected_columns):
            converter = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if converter is None:
                shown.append(f"row[{index}]")
            else:
                converters[f"convert_{index}"] = converter
                shown.append(f"convert_{index}(row[{index}])")
        self._convert: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None
        if converters:
            # Generated from column positions and names made here, nothing from outside.
            source = f"lambda row: ({', '.join(shown)},)"
            self._convert = eval(source, converters)

    def run(self, connection: sqlite3.Connection, parameters: Mapping[str, Any]) -> Rows:
        """Given an open connection and the statement's parameters, return all its rows."""
        sent = []
        for name, required, default, converter in self._parameters:
            if name in parameters:
                value = parameters[name]
            elif required:
                # As SQLAlchemy refuses it: a missing value must not silently read as NULL.
                raise sqlalchemy.exc.InvalidRequestError(
                    f"A value is required for bind parameter {name!r}"
                )
            else:
                value = default
            sent.append(converter(value) if converter is not None else value)
        try:
            rows: Rows = connection.execute(self.sql, sent).fetchall()
        except sqlite3.Error as error:
            # The error SQLAlchemy would raise (OperationalError etc., the original as .orig),
            # so that callers and the API's error handlers see one kind whichever path ran.
            raise sqlalchemy.exc.DBAPIError.instance(
                self.sql, sent, error, sqlite3.Error
            ) from error
        convert = self._convert
        if convert is None:
            return rows
        return [convert(row) for row in rows]


def prepare(statement: Executable, dialect: Dialect) -> PreparedRead | None:
    """A PreparedRead of `statement` for SQLite, or None where SQLAlchemy must execute it:
    another database, anything but a plain SELECT, or a SELECT whose SQL or values change
    from one execution to the next (IN lists, literal execution, computed values)."""
    if not isinstance(statement, Select) or dialect.name != "sqlite":
        return None
    compiled = statement.compile(dialect=dialect)
    if not isinstance(compiled, SQLCompiler):
        return None
    if compiled.post_compile_params or compiled.literal_execute_params:
        return None
    if any(bind.callable is not None for bind in compiled.binds.values()):
        return None  # a value computed at each execution, which a PreparedRead would freeze
    return PreparedRead(statement, compiled, dialect)


class PreparedWrite:
    """A statement compiled once for one dialect and run on the DB-API cursor of a
    Connection, in that connection's transaction: the recorder's inserts, one or two in
    every writing transaction, where SQLAlchemy's per-execution work cost several times
    the database's own (bench/README.md).

    Every parameter is a `bindparam` the caller names and supplies (a statement with
    values of its own, computed values, IN lists or a dialect without positional
    parameters is refused); each is converted by its type's bind processor for the
    dialect, as SQLAlchemy would. A DB-API error is raised as SQLAlchemy raises it.
    """

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler) or not compiled.positional:
            raise ValueError(f"{dialect.name}: a prepared write needs positional parameters")
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise ValueError("a prepared write's SQL must not change between executions")
        self.sql = compiled.string
        self._dialect_name = dialect.name
        self._parameters: list[tuple[str, Converter]] = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            if not bind.required or bind.callable is not None:
                raise ValueError(f"{name!r}: a prepared write takes every value from its caller")
            converter = bind.type.dialect_impl(dialect).bind_processor(dialect)
            self._parameters.append((name, converter))

    def values(self, parameters: Mapping[str, Any]) -> list[Any]:
        """The positional values the DB-API gets for `parameters`."""
        sent = []
        for name, converter in self._parameters:
            try:
                value = parameters[name]
            except KeyError:
                # As SQLAlchemy refuses it: a missing value must not silently write NULL.
                raise sqlalchemy.exc.InvalidRequestError(
                    f"A value is required for bind parameter {name!r}"
                ) from None
            sent.append(converter(value) if converter is not None else value)
        return sent

    def run(self, connection: Connection, parameters: Mapping[str, Any]) -> list[Any]:
        """Given a connection in its transaction and the statement's parameters, execute it
        on the connection's DB-API cursor; return the rows it returns (none for a plain
        INSERT)."""
        if connection.dialect.name != self._dialect_name:
            raise ValueError(f"prepared for {self._dialect_name}, not {connection.dialect.name}")
        sent = self.values(parameters)
        dbapi = connection.dialect.loaded_dbapi
        # SQLite's inline driver (sqlite_inline.py) runs it at once when it can.
        inline = getattr(connection.connection.dbapi_connection, "_connection", None)
        try:
            if isinstance(inline, sqlite_inline.Connection):
                rows = inline.run_holding_lock(self.sql, sent)
                if rows is not None:
                    return rows
            cursor = connection.connection.cursor()
            try:
                cursor.execute(self.sql, sent)
                return list(cursor.fetchall()) if cursor.description else []
            finally:
                cursor.close()
        except dbapi.Error as error:
            raise sqlalchemy.exc.DBAPIError.instance(self.sql, sent, error, dbapi.Error) from error
