"""The groupware conformance suite on PostgreSQL (a fresh database per test;
an unreachable server is a failure, never a skip)."""
from __future__ import annotations

import json
from typing import Any, Generator

import psycopg2
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial import unittest

from easyncd.backends.groupware import statements
from easyncd.backends.groupware.sql import SQLGroupwareBackend
from easyncd.store.postgres import PostgresStateStore
from easyncd.store.sql import to_format_style
from easyncd.testing.postgres import create_database, drop_database
from tests.groupware.conformance import GroupwareConformanceMixin, vcard


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class PostgresGroupwareMixin:
    """Backends on fresh PostgreSQL databases."""

    @inlineCallbacks
    def make_backend(self, clock: Any, hub: Any) -> Generator[Any, Any, Any]:
        name, self.url = create_database()
        self.addCleanup(drop_database, name)  # type: ignore[attr-defined]
        store = PostgresStateStore(self.url, _reactor(), pool_size=2)
        self.addCleanup(store.close)  # type: ignore[attr-defined]
        yield store.migrate()
        return SQLGroupwareBackend(store, clock, hub)

    def run_sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
        connection = psycopg2.connect(self.url, connect_timeout=10)
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(statement, params or None)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()


class PostgresGroupwareTests(
    PostgresGroupwareMixin, GroupwareConformanceMixin, unittest.TestCase
):
    """SQLGroupwareBackend on PostgreSQL passes the shared suite."""

    def fail_history_inserts(self, backend: Any) -> None:
        self.run_sql("ALTER TABLE gw_history ADD CONSTRAINT refuse_history"
                     " CHECK (revision < 0) NOT VALID")


class PostgresGroupwareEngineTests(PostgresGroupwareMixin, unittest.TestCase):
    """The history query uses the primary key index."""

    @inlineCallbacks
    def test_history_query_plan(self) -> Generator[Any, Any, None]:
        backend = yield self.make_backend(Clock(), None)
        collections = yield backend.list_collections("alice", "contacts")
        cid = collections[0].collection_id
        yield backend.add_items("alice", cid, [vcard(f"u{i}") for i in range(10_000)])
        self.run_sql("ANALYZE gw_history")
        rows = self.run_sql("EXPLAIN (FORMAT JSON) " + to_format_style(statements.SELECT_HISTORY),
                            (int(cid), 9990, 10_000))
        plan = rows[0][0]
        text = json.dumps(plan if not isinstance(plan, str) else json.loads(plan))
        self.assertIn("gw_history_pkey", text)
        self.assertNotIn("Seq Scan", text)


class PostgresGroupwareConcurrencyTests(PostgresGroupwareMixin, unittest.TestCase):
    """Concurrent writers on the pool's connections."""

    @inlineCallbacks
    def test_concurrent_writes_get_distinct_revisions(self) -> Generator[Any, Any, None]:
        from twisted.internet.defer import gatherResults

        backend = yield self.make_backend(Clock(), None)
        collections = yield backend.list_collections("alice", "contacts")
        cid = collections[0].collection_id
        items = yield gatherResults(
            [backend.add_item("alice", cid, vcard(f"u{i}")) for i in range(12)])
        self.assertEqual(sorted(i.revision for i in items), list(range(1, 13)))
        self.assertEqual(len({i.item_id for i in items}), 12)
        yield gatherResults(
            [backend.update_item("alice", cid, i.item_id, vcard(f"v{n}"))
             for n, i in enumerate(items)]
            + [backend.create_collection("alice", "contacts", f"C{n}") for n in range(4)])
        changes = yield backend.changes_since("alice", cid, 12)
        self.assertEqual(sorted(changes.changed, key=int), sorted((i.item_id for i in items),
                                                                  key=int))
        self.assertEqual((yield backend.current_revision("alice", cid)), 24)
