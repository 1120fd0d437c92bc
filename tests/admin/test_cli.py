"""End-to-end tests: the real easyncd-admin entry point in a subprocess, on a
temporary config and SQLite database, plus in-process tests of the parser."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from easyncd.admin import cli
from easyncd.config import render_default_config

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHIPPED = os.path.join(ROOT, "etc", "easyncd.conf")


class CommandLineTests(TestCase):
    """``python -m easyncd.admin.cli`` against a temporary data directory."""

    def setUp(self) -> None:
        self.base = os.path.abspath(self.mktemp())
        self.data_dir = os.path.join(self.base, "data")
        os.makedirs(self.data_dir)
        self.db = os.path.join(self.data_dir, "state.db")
        self.config = os.path.join(self.base, "easyncd.conf")
        with open(self.config, "w", encoding="utf-8") as handle:
            handle.write(
                "[server]\n"
                f"data_dir = {self.data_dir}\n"
                "[store]\n"
                f"database = sqlite:///{self.db}\n"
            )
        self.env = {key: value for key, value in os.environ.items()
                    if key not in ("STATE_DIRECTORY", "PYTHONPATH")}
        self.env["PYTHONPATH"] = ROOT
        self.env["HOME"] = self.base

    def admin(self, *args: str, stdin: str = "", config: str | None = "default"
              ) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "easyncd.admin.cli"]
        if config == "default":
            command += ["-f", self.config]
        elif config is not None:
            command += ["-f", config]
        return subprocess.run(
            command + list(args), input=stdin, capture_output=True, text=True,
            env=self.env, cwd=self.base, timeout=60,
        )

    def assert_ok(self, result: subprocess.CompletedProcess[str]) -> None:
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("Traceback", result.stderr)

    def assert_fails(self, result: subprocess.CompletedProcess[str], message: str) -> None:
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        lines = result.stderr.splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertIn(message, lines[0])

    def test_users(self) -> None:
        self.assert_ok(self.admin("user", "add", "alice", stdin="pw-alice\n"))
        self.assert_ok(self.admin("user", "add", "bob", stdin="pw-bob\n"))
        listed = self.admin("user", "list")
        self.assert_ok(listed)
        self.assertEqual(listed.stdout, "alice\nbob\n")
        self.assert_fails(self.admin("user", "add", "alice", stdin="x\n"), "user exists: alice")
        self.assert_ok(self.admin("user", "passwd", "alice", stdin="new-pw\n"))
        from easyncd.backends.users_file import UsersFile
        users = UsersFile(os.path.join(self.data_dir, "users"))
        self.assertTrue(users.verify("alice", "new-pw"))
        self.assertFalse(users.verify("alice", "pw-alice"))
        self.assert_fails(self.admin("user", "passwd", "carol", stdin="x\n"), "no such user: carol")
        self.assert_fails(self.admin("user", "add", "carol", stdin="\n"), "empty password")
        self.assert_ok(self.admin("user", "remove", "bob"))
        self.assertEqual(self.admin("user", "list").stdout, "alice\n")
        self.assert_fails(self.admin("user", "remove", "bob"), "no such user: bob")

    async def populate(self) -> None:
        """Two devices in the SQLite database, through the real store."""
        from twisted.internet import reactor

        from easyncd.store import open_store

        store = open_store(f"sqlite:///{self.db}", reactor)
        await store.migrate()
        for device_id, user, version in (("DEV1", "alice", "16.1"), ("DEV1", "bob", "14.0"),
                                         ("DEV2", "alice", "16.1")):
            await store.register_account(device_id, user, "iPhone", "Apple-iPhone/1", 1000.0)
            await store.record_request(device_id, user, "Sync", version, 2000.0)
        await store.set_device_info("DEV1", {"Model": "iPhone12,1", "OS": "iOS 17.1"})
        await store.close()

    def test_devices(self) -> Deferred[None]:
        return Deferred.fromCoroutine(self._test_devices())

    async def _test_devices(self) -> None:
        await self.populate()
        listed = self.admin("device", "list")
        self.assert_ok(listed)
        lines = listed.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["DEVICE", "ID", "TYPE", "USERS", "LAST", "SEEN",
                                            "POLICY", "WIPE"])
        self.assertEqual([line.split()[0] for line in lines[1:]], ["DEV1", "DEV2"])
        self.assertIn("alice,bob", lines[1])
        mine = self.admin("device", "list", "--user", "bob", "--json")
        self.assert_ok(mine)
        self.assertEqual([d["device_id"] for d in json.loads(mine.stdout)], ["DEV1"])

        shown = self.admin("device", "show", "DEV1")
        self.assert_ok(shown)
        self.assertIn("  Model: iPhone12,1\n", shown.stdout)
        self.assertIn("account bob:\n  protocol version: 14.0\n  last command:     Sync\n",
                      shown.stdout)

        wiped = self.admin("device", "wipe", "DEV1", "--account-only", "--user", "bob")
        self.assert_ok(wiped)
        self.assertIn("14.0", wiped.stderr)
        self.assertIn("16.1", wiped.stderr)
        self.assertIn("pending (account)", self.admin("device", "show", "DEV1").stdout)
        cancelled = self.admin("device", "cancel-wipe", "DEV1")
        self.assert_ok(cancelled)
        self.assertIn("cancelled", cancelled.stdout)
        self.assert_ok(self.admin("device", "wipe", "DEV2"))
        self.assertIn("pending (device)", self.admin("device", "list").stdout)
        usage = self.admin("device", "wipe", "DEV2", "--user", "alice")
        self.assert_fails(usage, "--account-only")

        self.assert_ok(self.admin("device", "trace", "DEV1", "on"))
        self.assertIn("trace:        on", self.admin("device", "show", "DEV1").stdout)
        self.assert_ok(self.admin("device", "resync", "DEV1"))
        self.assert_ok(self.admin("device", "remove", "DEV2"))
        self.assertEqual(
            [d["device_id"] for d in json.loads(self.admin("device", "list", "--json").stdout)],
            ["DEV1"])

    def test_user_remove_with_devices(self) -> Deferred[None]:
        return Deferred.fromCoroutine(self._test_user_remove_with_devices())

    async def _test_user_remove_with_devices(self) -> None:
        await self.populate()
        self.assert_ok(self.admin("user", "add", "alice", stdin="pw\n"))
        removed = self.admin("user", "remove", "--devices", "alice")
        self.assert_ok(removed)
        self.assertIn("DEV1, DEV2", removed.stdout)
        self.assertEqual(self.admin("user", "list").stdout, "")
        left = json.loads(self.admin("device", "list", "--json").stdout)
        self.assertEqual([d["device_id"] for d in left], ["DEV1"])
        self.assertEqual([a["user"] for a in left[0]["accounts"]], ["bob"])

    def test_devices_on_empty_database(self) -> None:
        listed = self.admin("device", "list")
        self.assert_ok(listed)
        self.assertEqual(listed.stdout, "")
        self.assertTrue(os.path.exists(self.db))
        as_json = self.admin("device", "list", "--json")
        self.assert_ok(as_json)
        self.assertEqual(as_json.stdout.strip(), "[]")

    def test_unknown_device(self) -> None:
        for args in (("wipe", "NOPE"), ("show", "NOPE"), ("cancel-wipe", "NOPE"),
                     ("remove", "NOPE"), ("trace", "NOPE", "on"), ("resync", "NOPE")):
            self.assert_fails(self.admin("device", *args), "no such device: NOPE")

    def test_db_upgrade_and_check(self) -> None:
        checked = self.admin("config", "check")
        self.assert_ok(checked)
        self.assertIn("schema version: none yet", checked.stdout)
        self.assertFalse(os.path.exists(self.db))
        upgraded = self.admin("db", "upgrade")
        self.assert_ok(upgraded)
        self.assertIn("schema version", upgraded.stdout)
        checked = self.admin("config", "check")
        self.assert_ok(checked)
        lines = checked.stdout.splitlines()
        self.assertEqual(lines[0], f"OK: {self.config}")
        self.assertIn(f"database: sqlite:///{self.db}", lines)
        self.assertIn("listen: tcp:8080:interface=127.0.0.1", lines)
        self.assertTrue(any(re.fullmatch(r"schema version: \d+ \(up to date\)", line)
                            for line in lines), lines)

    def test_check_bad_option(self) -> None:
        bad = os.path.join(self.base, "bad.conf")
        with open(bad, "w", encoding="utf-8") as handle:
            handle.write("[auth]\ncache_ttl = soon\n")
        result = self.admin("config", "check", config=bad)
        self.assert_fails(result, bad)
        self.assertIn("[auth] cache_ttl", result.stderr)

    def test_check_unknown_option(self) -> None:
        bad = os.path.join(self.base, "bad.conf")
        with open(bad, "w", encoding="utf-8") as handle:
            handle.write("[server]\nlisten_on = tcp:80\n")
        self.assert_fails(self.admin("config", "check", config=bad),
                          f"{bad}: [server] listen_on: unknown option")

    def test_check_missing_file(self) -> None:
        missing = os.path.join(self.base, "missing.conf")
        self.assert_fails(self.admin("config", "check", config=missing), missing)

    def test_bad_override(self) -> None:
        self.assert_fails(self.admin("-o", "policy.mode=maybe", "config", "check"),
                          "[policy] mode")

    def test_check_shipped_config(self) -> None:
        result = self.admin("-o", f"server.data_dir={self.data_dir}",
                            "config", "check", config=SHIPPED)
        self.assert_ok(result)
        self.assertEqual(result.stdout.splitlines()[0], f"OK: {SHIPPED}")

    def test_unreachable_postgres(self) -> None:
        result = self.admin("-o", "store.database=postgresql://nobody:secret@127.0.0.1:1/x",
                            "device", "list")
        self.assert_fails(result, "database postgresql://nobody:***@127.0.0.1:1/x")
        self.assertNotIn("secret", result.stderr)

    def test_show_defaults(self) -> None:
        result = self.admin("config", "show-defaults", config=None)
        self.assert_ok(result)
        self.assertEqual(result.stdout, render_default_config())

    def test_usage_error(self) -> None:
        result = self.admin("device", "frobnicate")
        self.assertEqual(result.returncode, 2)
        self.assertIn("usage:", result.stderr)


class InProcessTests(TestCase):
    """Parser and helpers, without a subprocess."""

    def test_missing_command_is_usage_error(self) -> None:
        err = io.StringIO()
        self.patch(sys, "stderr", err)
        with self.assertRaises(SystemExit) as caught:
            cli.main([])
        self.assertEqual(caught.exception.code, 2)

    def test_wipe_options(self) -> None:
        args = cli.build_parser().parse_args(
            ["-f", "x.conf", "-o", "a.b=c", "device", "wipe", "D1", "--account-only",
             "--user", "alice"])
        self.assertEqual((args.config, args.overrides, args.group, args.command),
                         ("x.conf", ["a.b=c"], "device", "wipe"))
        self.assertTrue(args.account_only)
        self.assertEqual(args.user, "alice")

    def test_redact_url(self) -> None:
        self.assertEqual(cli.redact_url("postgresql://u:pw@db.example:5432/eas"),
                         "postgresql://u:***@db.example:5432/eas")
        self.assertEqual(cli.redact_url("postgresql://u@db/eas"), "postgresql://u@db/eas")
        self.assertEqual(cli.redact_url("sqlite:////var/lib/easyncd/easyncd.db"),
                         "sqlite:////var/lib/easyncd/easyncd.db")

    def test_sqlite_path(self) -> None:
        self.assertEqual(cli.sqlite_path("sqlite:////var/lib/x.db"), "/var/lib/x.db")
        self.assertEqual(cli.sqlite_path("sqlite:///var/x.db"), "/var/x.db")
        self.assertIsNone(cli.sqlite_path("sqlite:///:memory:"))
        self.assertIsNone(cli.sqlite_path("postgresql://u@h/d"))

    def test_show_defaults_in_process(self) -> None:
        out = io.StringIO()
        with self.assertRaises(SystemExit) as caught:
            cli.main(["config", "show-defaults"], out=out)
        self.assertEqual(caught.exception.code, 0)
        self.assertEqual(out.getvalue(), render_default_config())


class PostgresCommandLineTests(TestCase):
    """``db upgrade``, ``config check`` and ``device`` on a fresh PostgreSQL database
    (the server on 127.0.0.1:5432 that the integration tests use)."""

    def setUp(self) -> None:
        from easyncd.testing.postgres import create_database, drop_database

        self.name, self.url = create_database("easyncd_admin")
        self.addCleanup(drop_database, self.name)
        self.base = os.path.abspath(self.mktemp())
        os.makedirs(self.base)
        self.env = dict(os.environ, PYTHONPATH=ROOT, HOME=self.base)
        self.env.pop("STATE_DIRECTORY", None)

    def admin(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "easyncd.admin.cli", "-f", SHIPPED,
                   "-o", f"server.data_dir={self.base}", "-o", f"store.database={self.url}"]
        return subprocess.run(command + list(args), capture_output=True, text=True,
                              env=self.env, cwd=self.base, timeout=60)

    def test_upgrade_check_list(self) -> None:
        upgraded = self.admin("db", "upgrade")
        self.assertEqual(upgraded.returncode, 0, upgraded.stderr)
        self.assertIn(f"database {self.url} is at schema version", upgraded.stdout)
        checked = self.admin("config", "check")
        self.assertEqual(checked.returncode, 0, checked.stderr)
        self.assertTrue(re.search(r"^schema version: \d+ \(up to date\)$", checked.stdout, re.M),
                        checked.stdout)
        listed = self.admin("device", "list", "--json")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertEqual(listed.stdout.strip(), "[]")
        wiped = self.admin("device", "wipe", "NOPE")
        self.assertEqual(wiped.returncode, 1)
        self.assertEqual(wiped.stderr, "easyncd-admin: no such device: NOPE\n")
