"""Schema files, statement splitting and the placeholder conversion."""
from __future__ import annotations

import os
import shutil
import tempfile

from twisted.trial import unittest

from easyncd.store import sql
from easyncd.store.migrations import SCHEMA_DIR, load_plan, split_statements
from easyncd.store.programs import classify_folder_changes
from easyncd.store.interfaces import Folder, FolderChanges


class SchemaPlanTests(unittest.TestCase):
    """Which files apply, in which order."""

    def _dir(self, names: dict[str, str]) -> str:
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        for name, text in names.items():
            with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
                handle.write(text)
        return directory

    def test_shipped_schema(self) -> None:
        for dialect in (sql.SQLITE, sql.POSTGRESQL):
            plan = load_plan(dialect)
            self.assertGreaterEqual(plan.version, 1)
            steps = plan.steps_from(0)
            self.assertEqual(steps[0].kind, "full")
            text = " ".join(steps[0].statements)
            for table in ("schema_version", "devices", "accounts", "folders",
                          "folder_counters", "sync_states"):
                self.assertIn(f"CREATE TABLE {table} ", text)
            self.assertEqual(plan.steps_from(plan.version), [])
        self.assertTrue(os.path.isdir(SCHEMA_DIR))

    def test_dialect_files_replace_portable_ones(self) -> None:
        directory = self._dir({
            "full_001.sql": "CREATE TABLE a (x INTEGER);",
            "delta_002_b.sql": "CREATE TABLE b (x INTEGER);",
            "delta_002_b.postgresql.sql": "CREATE TABLE b (x BIGINT);",
            "delta_003_c.sqlite.sql": "CREATE TABLE c (x INTEGER);",
            "README.txt": "not a schema file",
        })
        sqlite_plan = load_plan(sql.SQLITE, directory)
        postgres_plan = load_plan(sql.POSTGRESQL, directory)
        self.assertEqual(
            [s.name for s in sqlite_plan.steps_from(1)],
            ["delta_002_b.sql", "delta_003_c.sqlite.sql"],
        )
        self.assertEqual(
            [s.statements for s in postgres_plan.steps_from(1)],
            [("CREATE TABLE b (x BIGINT)",)],
        )
        self.assertEqual(sqlite_plan.version, 3)
        self.assertEqual(postgres_plan.version, 2)
        self.assertEqual(
            [s.name for s in sqlite_plan.steps_from(0)],
            ["full_001.sql", "delta_002_b.sql", "delta_003_c.sqlite.sql"],
        )

    def test_newest_full_file_starts_an_empty_database(self) -> None:
        directory = self._dir({
            "full_001.sql": "CREATE TABLE a (x INTEGER);",
            "delta_002_b.sql": "CREATE TABLE b (x INTEGER);",
            "full_002.sql": "CREATE TABLE a (x INTEGER);\nCREATE TABLE b (x INTEGER);",
            "delta_003_c.sql": "CREATE TABLE c (x INTEGER);",
        })
        plan = load_plan(sql.SQLITE, directory)
        self.assertEqual([s.name for s in plan.steps_from(0)], ["full_002.sql", "delta_003_c.sql"])
        self.assertEqual(
            [s.name for s in plan.steps_from(1)], ["delta_002_b.sql", "delta_003_c.sql"])

    def test_missing_delta(self) -> None:
        directory = self._dir({
            "full_001.sql": "CREATE TABLE a (x INTEGER);",
            "delta_003_c.sql": "CREATE TABLE c (x INTEGER);",
        })
        self.assertRaises(ValueError, load_plan(sql.SQLITE, directory).steps_from, 1)

    def test_split_statements(self) -> None:
        text = (
            "-- comment; with a semicolon\n"
            "CREATE TABLE a (\n    x TEXT DEFAULT 'a;b'\n);\n\n"
            "CREATE INDEX i ON a (x);\n"
            "INSERT INTO a VALUES ('tail')"
        )
        self.assertEqual(split_statements(text), (
            "CREATE TABLE a (\n    x TEXT DEFAULT 'a;b'\n)",
            "CREATE INDEX i ON a (x)",
            "INSERT INTO a VALUES ('tail')",
        ))


class PlaceholderTests(unittest.TestCase):
    """``?`` to ``%s``."""

    def test_to_format_style(self) -> None:
        self.assertEqual(
            sql.to_format_style("SELECT a FROM t WHERE b = ? AND c LIKE 'x%?' AND d = ?"),
            "SELECT a FROM t WHERE b = %s AND c LIKE 'x%%?' AND d = %s",
        )
        self.assertEqual(sql.for_dialect("a = ?", sql.SQLITE), "a = ?")
        self.assertEqual(sql.for_dialect("a = ?", sql.POSTGRESQL), "a = %s")

    def test_every_statement_converts(self) -> None:
        # Shared statements keep their placeholder count in both styles.
        for name in dir(sql):
            value = getattr(sql, name)
            if isinstance(value, str) and name.isupper() and "?" in value:
                self.assertEqual(
                    value.count("?"), sql.to_format_style(value).count("%s"), name)


class ClassifyTests(unittest.TestCase):
    """The net-change rules on revision columns."""

    def test_rules(self) -> None:
        def folder(server_id: str) -> Folder:
            return Folder("u", server_id, "0", "F" + server_id, 12, "b")

        rows = [
            (folder("1"), 1, 1, None),   # old, untouched
            (folder("2"), 1, 5, None),   # old, changed in range
            (folder("3"), 4, 6, None),   # added and changed in range
            (folder("4"), 4, 4, 6),      # added and deleted in range
            (folder("5"), 1, 1, 5),      # old, deleted in range
            (folder("6"), 1, 8, None),   # changed after the range
            (folder("7"), 1, 1, 8),      # deleted after the range
            (folder("8"), 8, 8, None),   # added after the range
        ]
        self.assertEqual(
            classify_folder_changes(rows, 3, 7),
            FolderChanges(added=(folder("3"),), changed=(folder("2"),), deleted=("5",)),
        )
