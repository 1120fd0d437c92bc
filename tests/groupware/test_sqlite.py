"""The groupware conformance suite on SQLite, plus what only SQLite shows."""
from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from typing import Any, Generator

from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial import unittest

from easyncd.backends.groupware import statements
from easyncd.backends.groupware.sql import SQLGroupwareBackend
from easyncd.store.sqlite import SQLiteStateStore
from tests.groupware.conformance import GroupwareConformanceMixin, vcard


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class SQLiteGroupwareMixin:
    """Backends on fresh SQLite files."""

    @inlineCallbacks
    def make_backend(self, clock: Any, hub: Any) -> Generator[Any, Any, Any]:
        directory = tempfile.mkdtemp(prefix="easyncd-gw-")
        self.addCleanup(shutil.rmtree, directory, True)  # type: ignore[attr-defined]
        self.path = os.path.join(directory, "state.db")
        store = SQLiteStateStore(self.path, _reactor())
        self.addCleanup(store.close)  # type: ignore[attr-defined]
        yield store.migrate()
        return SQLGroupwareBackend(store, clock, hub)


class SQLiteGroupwareTests(SQLiteGroupwareMixin, GroupwareConformanceMixin, unittest.TestCase):
    """SQLGroupwareBackend on SQLite passes the shared suite."""

    def fail_history_inserts(self, backend: Any) -> None:
        with sqlite3.connect(self.path) as connection:
            connection.execute(
                "CREATE TRIGGER refuse_history BEFORE INSERT ON gw_history"
                " BEGIN SELECT RAISE(ABORT, 'refused'); END")


class SQLiteGroupwareEngineTests(SQLiteGroupwareMixin, unittest.TestCase):
    """The history query uses the (collection_id, revision) key."""

    @inlineCallbacks
    def test_history_query_plan(self) -> Generator[Any, Any, None]:
        backend = yield self.make_backend(Clock(), None)
        collections = yield backend.list_collections("alice", "contacts")
        cid = collections[0].collection_id
        yield backend.add_items("alice", cid, [vcard(f"u{i}") for i in range(2000)])
        with sqlite3.connect(self.path) as connection:
            connection.execute("ANALYZE")
            plan = connection.execute(
                "EXPLAIN QUERY PLAN " + statements.SELECT_HISTORY, (int(cid), 1990, 2000)
            ).fetchall()
            rows = connection.execute(statements.SELECT_HISTORY, (int(cid), 1990, 2000))
            self.assertEqual(len(rows.fetchall()), 10)
        details = " ".join(str(row[-1]) for row in plan)
        self.assertIn("SEARCH gw_history USING", details)
        self.assertIn("revision>? AND revision<?", details)
        self.assertNotIn("SCAN", details)
