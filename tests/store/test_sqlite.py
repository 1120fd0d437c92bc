"""The conformance suite against the SQLite engine, plus what only it does."""
from __future__ import annotations

import os
import sqlite3
import tempfile
from typing import Any, Generator

from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest

from easyncd.store import open_store, sqlite_path
from easyncd.store.interfaces import StoreUnavailable
from easyncd.store.sqlite import SQLiteStateStore
from tests.store.conformance import SchemaMigrationMixin, StateStoreConformanceMixin


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class SQLiteTestMixin:
    """Stores on temporary SQLite files."""

    def _new_path(self) -> str:
        directory = tempfile.mkdtemp(prefix="easyncd-store-")
        self.addCleanup(_remove_tree, directory)  # type: ignore[attr-defined]
        return os.path.join(directory, "state", "easyncd.db")

    def _open(self, path: str, **kwargs: Any) -> SQLiteStateStore:
        store = SQLiteStateStore(path, _reactor(), **kwargs)
        self.addCleanup(store.close)  # type: ignore[attr-defined]
        return store


class SQLiteConformanceTests(SQLiteTestMixin, StateStoreConformanceMixin, unittest.TestCase):
    """SQLiteStateStore passes the shared suite."""

    @inlineCallbacks
    def make_store(self) -> Generator[Any, Any, Any]:
        self.path = self._new_path()
        store = self._open(self.path)
        yield store.migrate()
        return store

    def set_schema_version(self, store: Any, version: int) -> None:
        with sqlite3.connect(self.path) as connection:
            connection.execute("UPDATE schema_version SET version = ?", (version,))

    def fail_account_inserts(self, store: Any, user: str) -> None:
        with sqlite3.connect(self.path) as connection:
            connection.execute(
                "CREATE TRIGGER refuse_account BEFORE INSERT ON accounts"
                f" WHEN NEW.username = '{user}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )


class SQLiteMigrationTests(SQLiteTestMixin, SchemaMigrationMixin, unittest.TestCase):
    """Schema upgrades on SQLite."""

    def make_unmigrated_store(self, schema_dir: str, key: Any = None) -> Any:
        path = key or self._new_path()
        return self._open(path, schema_dir=schema_dir), path


class SQLiteEngineTests(SQLiteTestMixin, unittest.TestCase):
    """What only the SQLite engine does."""

    @inlineCallbacks
    def test_wal_journal_and_parent_directory(self) -> Generator[Any, Any, None]:
        path = self._new_path()
        self.assertFalse(os.path.exists(os.path.dirname(path)))
        store = open_store("sqlite://" + path, _reactor())
        self.addCleanup(store.close)
        self.assertEqual(store.engine, "sqlite")
        yield store.migrate()
        self.assertTrue(os.path.exists(path))
        with sqlite3.connect(path) as connection:
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        self.assertEqual(mode, "wal")

    @inlineCallbacks
    def test_foreign_keys_are_enforced(self) -> Generator[Any, Any, None]:
        # remove_device relies on ON DELETE CASCADE, which SQLite only
        # honours with foreign_keys on; check the pool's connection has it.
        path = self._new_path()
        store = self._open(path)
        yield store.migrate()
        yield store.register_account("dev1", "alice", "iPhone", None, 1.0)
        yield store.advance_sync_state("dev1", "alice", "1", None, 1, "s")
        yield store.remove_device("dev1")
        with sqlite3.connect(path) as connection:
            rows = connection.execute("SELECT count(*) FROM sync_states").fetchone()[0]
        self.assertEqual(rows, 0)

    @inlineCallbacks
    def test_memory_database(self) -> Generator[Any, Any, None]:
        store = open_store("sqlite:///:memory:", _reactor())
        self.addCleanup(store.close)
        yield store.migrate()
        yield store.register_account("dev1", "alice", "iPhone", None, 1.0)
        device = yield store.get_device("dev1")
        self.assertEqual(device.device_id, "dev1")

    def test_unusable_directory(self) -> None:
        blocker = self._new_path()
        os.makedirs(os.path.dirname(blocker))
        with open(blocker, "w", encoding="utf-8"):
            pass
        # A file stands where the directory should be.
        self.assertRaises(StoreUnavailable, open_store,
                          "sqlite://" + os.path.join(blocker, "sub", "x.db"), _reactor())

    @inlineCallbacks
    def test_unopenable_file(self) -> Generator[Any, Any, None]:
        path = self._new_path()
        os.makedirs(path)  # a directory where the database file should be
        store = self._open(path)
        error = yield self.assertFailure(store.migrate(), StoreUnavailable)
        self.assertIn("migrate", str(error))

    def test_url_forms(self) -> None:
        self.assertEqual(sqlite_path("sqlite:///var/lib/x.db"), "/var/lib/x.db")
        self.assertEqual(sqlite_path("sqlite:////var/lib/x.db"), "/var/lib/x.db")
        self.assertEqual(sqlite_path("sqlite:///:memory:"), ":memory:")
        self.assertRaises(ValueError, sqlite_path, "sqlite://x.db")
        self.assertRaises(ValueError, sqlite_path, "sqlite:///")
        self.assertRaises(ValueError, open_store, "mysql://x/y", _reactor())


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
