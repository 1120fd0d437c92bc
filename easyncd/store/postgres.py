"""The PostgreSQL engine, on txpostgres (asynchronous psycopg2 connections).

Every txpostgres import stays in this module: txpostgres has had no release
since 2019 and does not declare psycopg2, which easyncd depends on itself.
"""
from __future__ import annotations

from typing import Any, TypeVar

import psycopg2
from twisted.internet.defer import Deferred, FirstError, fail, inlineCallbacks, succeed
from twisted.python.failure import Failure
from txpostgres import txpostgres
from zope.interface import implementer

from easyncd.store.base import SQLStateStore
from easyncd.store.interfaces import IStateStore, StoreUnavailable
from easyncd.store.migrations import SCHEMA_DIR
from easyncd.store.programs import Execute, Program
from easyncd.store.sql import POSTGRESQL, to_format_style

T = TypeVar("T")

#: Seconds to wait for the server when connecting.
CONNECT_TIMEOUT = 10


class _Pool(txpostgres.ConnectionPool):  # type: ignore[misc]
    """txpostgres' pool with the reactor passed in instead of imported."""

    def __init__(self, reactor: Any, *connargs: Any, **connkw: Any) -> None:
        self.reactor = reactor
        super().__init__(None, *connargs, **connkw)


@inlineCallbacks
def run_program(cursor: Any, program: Program[T]) -> Any:
    """Drive ``program`` on a txpostgres cursor (txpostgres began the transaction)."""
    answer: Any = None
    while True:
        try:
            step = program.send(answer)
        except StopIteration as stop:
            return stop.value
        params = step.params or None
        statement = to_format_style(step.statement) if params else step.statement
        yield cursor.execute(statement, params)
        answer = cursor.rowcount if isinstance(step, Execute) else cursor.fetchall()


def _is_unavailable(error: BaseException | None) -> bool:
    if isinstance(error, FirstError):
        return _is_unavailable(error.subFailure.value)
    return isinstance(error, (psycopg2.OperationalError, psycopg2.InterfaceError,
                              ConnectionError, txpostgres.RollbackFailed))


@implementer(IStateStore)
class PostgresStateStore(SQLStateStore):
    """IStateStore on a PostgreSQL database."""

    engine = POSTGRESQL

    def __init__(
        self, dsn: str, reactor: Any, pool_size: int = 4, schema_dir: str = SCHEMA_DIR
    ) -> None:
        super().__init__(schema_dir)
        self.dsn = dsn
        self._reactor = reactor
        self._pool_size = max(1, pool_size)
        self._pool: Any = None
        #: Pools given up after a lost connection; their busy connections are
        #: closed once they come back.
        self._retired: list[Any] = []
        self._waiting: list[Deferred[None]] | None = None
        self._closed = False

    def _describe(self) -> str:
        """The DSN without a password, for messages."""
        try:
            params = psycopg2.extensions.parse_dsn(self.dsn)
        except psycopg2.Error:
            return "the PostgreSQL server"
        host = params.get("host", "localhost")
        port = params.get("port", "5432")
        return f"postgresql://{params.get('user', '')}@{host}:{port}/{params.get('dbname', '')}"

    def _ensure_started(self) -> "Deferred[None]":
        """Connect the pool once; a failed attempt is retried on the next call."""
        if self._closed:
            return fail(StoreUnavailable("the store is closed"))
        if self._pool is not None and self._waiting is None:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        if self._waiting is not None:
            self._waiting.append(waiter)
            return waiter
        self._waiting = [waiter]
        pool = _Pool(self._reactor, self.dsn, connect_timeout=CONNECT_TIMEOUT,
                     min=self._pool_size)
        self._pool = pool

        def started(_: Any) -> None:
            waiting, self._waiting = self._waiting or [], None
            for each in waiting:
                each.callback(None)

        def failed(failure: Failure) -> None:
            waiting, self._waiting = self._waiting or [], None
            self._pool = None
            _close_pool(pool)
            cause = failure.value
            if isinstance(cause, FirstError):
                cause = cause.subFailure.value
            error = StoreUnavailable(f"cannot connect to {self._describe()}: {cause}")
            error.__cause__ = cause
            for each in waiting:
                each.errback(Failure(error))

        pool.start().addCallbacks(started, failed)
        return waiter

    def run_program(self, label: str, program: Program[T], write: bool = True) -> "Deferred[T]":
        def run(_: Any) -> Deferred[T]:
            return self._pool.runInteraction(run_program, program)  # type: ignore[no-any-return]

        def failed(failure: Failure) -> Failure:
            error = failure.value
            if isinstance(error, StoreUnavailable):
                return failure
            if _is_unavailable(error):
                self._retire_pool()
                unavailable = StoreUnavailable(f"{label}: {self._describe()}: {error}")
                unavailable.__cause__ = error
                return Failure(unavailable)
            assert error is not None
            return Failure(self._wrap_error(label, error))

        d = self._ensure_started()
        d.addCallback(run)
        return d.addErrback(failed)  # type: ignore[return-value]

    def _retire_pool(self) -> None:
        """Give up the current pool after a lost connection: the next
        transaction connects afresh (the server may be back by then)."""
        for pool in self._retired:
            _close_pool(pool)
        if self._pool is not None and self._waiting is None:
            self.log.warn("lost the PostgreSQL connection; reconnecting on next use")
            _close_pool(self._pool)
            self._retired.append(self._pool)
            self._pool = None

    def close(self) -> "Deferred[None]":
        """Close every connection of the pool."""
        self._closed = True
        for pool in self._retired:
            _close_pool(pool)
        self._retired = []
        if self._pool is not None:
            _close_pool(self._pool)
            self._pool = None
        return succeed(None)


def _close_pool(pool: Any) -> None:
    """Close the idle connections of a pool (those that did connect)."""
    for connection in list(pool.connections):
        if getattr(connection, "_connection", None) is None:
            continue
        try:
            connection.close()
        except (psycopg2.Error, AttributeError):
            pass
