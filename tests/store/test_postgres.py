"""The conformance suite against the PostgreSQL engine, plus what only it does.

Every test gets a fresh, uniquely named database on the server named by
``EASYNCD_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``),
dropped afterwards.  A server that cannot be reached makes the tests fail.
"""
from __future__ import annotations

import uuid
from urllib.parse import urlsplit
from typing import Any, Generator

import psycopg2
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.trial import unittest

from easyncd.store import open_store
from easyncd.store.interfaces import StoreUnavailable
from easyncd.store.postgres import PostgresStateStore
from easyncd.testing.postgres import create_database, database_url, drop_database, server_url
from tests.store.conformance import SchemaMigrationMixin, StateStoreConformanceMixin

def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class PostgresTestMixin:
    """Fresh databases on the test server."""

    def create_database(self) -> str:
        """Create a database for this test; returns its URL.  Dropped at cleanup."""
        name, url = create_database()
        self.addCleanup(drop_database, name)  # type: ignore[attr-defined]
        return url

    def run_sql(self, url: str, statement: str, params: tuple[Any, ...] = ()) -> None:
        """Run one statement on ``url`` outside the store."""
        connection = psycopg2.connect(url, connect_timeout=10)
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(statement, params or None)
        finally:
            connection.close()

    def _open(self, url: str, **kwargs: Any) -> PostgresStateStore:
        store = PostgresStateStore(url, _reactor(), **kwargs)
        self.addCleanup(store.close)  # type: ignore[attr-defined]
        return store


class PostgresConformanceTests(
    PostgresTestMixin, StateStoreConformanceMixin, unittest.TestCase
):
    """PostgresStateStore passes the shared suite."""

    @inlineCallbacks
    def make_store(self) -> Generator[Any, Any, Any]:
        self.url = self.create_database()
        store = self._open(self.url, pool_size=2)
        yield store.migrate()
        return store

    def set_schema_version(self, store: Any, version: int) -> None:
        self.run_sql(self.url, "UPDATE schema_version SET version = %s", (version,))

    def fail_account_inserts(self, store: Any, user: str) -> None:
        self.run_sql(
            self.url,
            "ALTER TABLE accounts ADD CONSTRAINT refuse_account CHECK (username <> %s)",
            (user,),
        )


class PostgresMigrationTests(PostgresTestMixin, SchemaMigrationMixin, unittest.TestCase):
    """Schema upgrades on PostgreSQL."""

    def make_unmigrated_store(self, schema_dir: str, key: Any = None) -> Any:
        url = key or self.create_database()
        return self._open(url, schema_dir=schema_dir, pool_size=1), url


class PostgresEngineTests(PostgresTestMixin, unittest.TestCase):
    """What only the PostgreSQL engine does."""

    @inlineCallbacks
    def test_concurrent_migrations(self) -> Generator[Any, Any, None]:
        # Two nodes start at once on an empty database: the advisory lock
        # lets one create the schema; the other then finds it up to date.
        url = self.create_database()
        stores = [self._open(url, pool_size=1) for _ in range(3)]
        yield gatherResults([store.migrate() for store in stores])
        versions = yield gatherResults([store.schema_version() for store in stores])
        from easyncd.store.migrations import load_plan

        newest = load_plan("postgresql").version
        self.assertEqual(versions, [newest] * 3)

    @inlineCallbacks
    def test_open_store_and_pool(self) -> Generator[Any, Any, None]:
        url = self.create_database()
        store = open_store(url, _reactor(), pool_size=3)
        self.addCleanup(store.close)
        self.assertEqual(store.engine, "postgresql")
        yield store.migrate()
        # Concurrent transactions on the pool's connections.
        yield gatherResults([
            store.register_account(f"dev{i}", "alice", "iPhone", None, float(i))
            for i in range(10)
        ])
        devices = yield store.list_devices("alice")
        self.assertEqual(len(devices), 10)

    @inlineCallbacks
    def test_concurrent_folder_adds_get_distinct_ids(self) -> Generator[Any, Any, None]:
        url = self.create_database()
        store = self._open(url, pool_size=4)
        yield store.migrate()
        folders = yield gatherResults([
            store.add_folder("alice", "0", f"F{i}", 12, f"f{i}") for i in range(8)
        ])
        self.assertEqual(len({f.server_id for f in folders}), 8)
        self.assertEqual((yield store.folder_revision("alice")), 8)

    @inlineCallbacks
    def test_concurrent_compare_and_set(self) -> Generator[Any, Any, None]:
        from easyncd.store.interfaces import SyncStateConflict

        url = self.create_database()
        store = self._open(url, pool_size=4)
        yield store.migrate()
        yield store.register_account("dev1", "alice", "iPhone", None, 1.0)
        yield store.advance_sync_state("dev1", "alice", "1", None, 1, "s1")
        results = yield gatherResults([
            store.advance_sync_state("dev1", "alice", "1", 1, 2 + i, f"s{i}").addCallbacks(
                lambda _: "ok", lambda f: f.trap(SyncStateConflict) and "conflict")
            for i in range(4)
        ])
        self.assertEqual(sorted(results), ["conflict", "conflict", "conflict", "ok"])

    @inlineCallbacks
    def test_reconnects_after_lost_connections(self) -> Generator[Any, Any, None]:
        url = self.create_database()
        store = self._open(url, pool_size=2)
        yield store.migrate()
        yield store.register_account("dev1", "alice", "iPhone", None, 1.0)
        name = urlsplit(url).path.lstrip("/")
        # The server drops every connection (a restart, an admin, a failover).
        self.run_sql(
            server_url(),
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        outcomes = []
        for _ in range(3):
            try:
                device = yield store.get_device("dev1")
            except StoreUnavailable:
                outcomes.append("unavailable")
            else:
                outcomes.append(device.device_id)
        # txpostgres logs the rollback that could not reach the server.
        self.flushLoggedErrors(psycopg2.InterfaceError, psycopg2.OperationalError)
        # At most the calls on the dead connections fail; then it reconnects.
        self.assertEqual(outcomes[-1], "dev1")
        self.assertIn(outcomes[0], ("unavailable", "dev1"))

    @inlineCallbacks
    def test_unreachable_server(self) -> Generator[Any, Any, None]:
        store = self._open("postgresql://postgres@127.0.0.1:1/easyncd")
        error = yield self.assertFailure(store.migrate(), StoreUnavailable)
        self.assertIn("127.0.0.1:1", str(error))
        # It fails again (and may succeed later): no stale half-started pool.
        yield self.assertFailure(store.get_device("dev1"), StoreUnavailable)

    @inlineCallbacks
    def test_missing_database(self) -> Generator[Any, Any, None]:
        url = database_url("easyncd_does_not_exist_" + uuid.uuid4().hex[:8])
        store = self._open(url)
        yield self.assertFailure(store.migrate(), StoreUnavailable)
