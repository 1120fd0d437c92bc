"""The SQLite engine: one connection in one database thread (SQLite wants a
single writer), WAL journal, foreign keys on, a busy timeout for other
processes (easyncd-admin) writing at the same time."""
from __future__ import annotations

import os
import sqlite3
from typing import Any, TypeVar

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure
from zope.interface import implementer

from easyncd.store.base import SQLStateStore
from easyncd.store.interfaces import IStateStore, StoreUnavailable
from easyncd.store.migrations import SCHEMA_DIR
from easyncd.store.programs import Execute, Program
from easyncd.store.sql import SQLITE

T = TypeVar("T")

#: Seconds a statement waits for another process's write lock.
BUSY_TIMEOUT = 10.0

_UNAVAILABLE_MESSAGES = ("unable to open", "database is locked", "disk i/o error",
                         "readonly database", "not a database")


def _prepare_connection(connection: sqlite3.Connection) -> None:
    """Per-connection settings, run by the pool after every connect."""
    connection.isolation_level = None  # we issue BEGIN/COMMIT ourselves
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
    connection.execute("PRAGMA synchronous = NORMAL")


def run_program(cursor: Any, program: Program[T], write: bool) -> T:
    """Drive ``program`` on a synchronous DB-API cursor inside one transaction."""
    cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    answer: Any = None
    while True:
        try:
            step = program.send(answer)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        cursor.execute(step.statement, step.params)
        answer = cursor.rowcount if isinstance(step, Execute) else cursor.fetchall()


@implementer(IStateStore)
class SQLiteStateStore(SQLStateStore):
    """IStateStore on an SQLite file (or ``:memory:``)."""

    engine = SQLITE

    def __init__(self, path: str, reactor: Any, schema_dir: str = SCHEMA_DIR) -> None:
        super().__init__(schema_dir)
        self.path = path
        self._closed = False
        if path != ":memory:":
            parent = os.path.dirname(os.path.abspath(path))
            try:
                os.makedirs(parent, exist_ok=True)
            except OSError as error:
                raise StoreUnavailable(f"cannot create {parent}: {error}") from error
        self._pool = adbapi.ConnectionPool(
            "sqlite3",
            path,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT,
            cp_min=1,
            cp_max=1,
            cp_openfun=_prepare_connection,
            cp_reactor=reactor,
        )

    def run_program(self, label: str, program: Program[T], write: bool = True) -> "Deferred[T]":
        d: Deferred[T] = self._pool.runInteraction(run_program, program, write)

        def failed(failure: Failure) -> Failure:
            error = failure.value
            if isinstance(error, sqlite3.OperationalError) and any(
                text in str(error).lower() for text in _UNAVAILABLE_MESSAGES
            ):
                unavailable = StoreUnavailable(f"{label}: {self.path}: {error}")
                unavailable.__cause__ = error
                return Failure(unavailable)
            assert error is not None
            return Failure(self._wrap_error(label, error))

        return d.addErrback(failed)

    def close(self) -> "Deferred[None]":
        """Close the connection and stop the database thread."""
        if not self._closed:
            self._closed = True
            self._pool.close()
        return succeed(None)
