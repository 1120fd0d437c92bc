"""Tests for easyncd.admin.users: the users file actions and password input."""
from __future__ import annotations

import io
import os

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from easyncd.admin import users
from easyncd.admin.errors import AdminError
from easyncd.backends.users_file import UsersFile
from easyncd.testing.memory_store import MemoryStateStore


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class ReadNewPasswordTests(TestCase):
    """read_new_password: one line from a pipe, asked twice on a terminal."""

    def test_one_line_without_newline(self) -> None:
        self.assertEqual(users.read_new_password(io.StringIO("s3cret pw\nnext\n")), "s3cret pw")

    def test_line_without_trailing_newline(self) -> None:
        self.assertEqual(users.read_new_password(io.StringIO("abc")), "abc")

    def test_crlf_stripped(self) -> None:
        self.assertEqual(users.read_new_password(io.StringIO("abc\r\n")), "abc")

    def test_empty_refused(self) -> None:
        with self.assertRaises(AdminError) as caught:
            users.read_new_password(io.StringIO("\n"))
        self.assertEqual(str(caught.exception), "empty password")

    def test_terminal_asks_twice(self) -> None:
        prompts: list[str] = []

        def ask(prompt: str) -> str:
            prompts.append(prompt)
            return "pw1"

        self.assertEqual(users.read_new_password(_TTY(), ask=ask), "pw1")
        self.assertEqual(prompts, ["New password: ", "Repeat password: "])

    def test_terminal_mismatch(self) -> None:
        answers = iter(["pw1", "pw2"])
        with self.assertRaises(AdminError) as caught:
            users.read_new_password(_TTY(), ask=lambda prompt: next(answers))
        self.assertEqual(str(caught.exception), "the passwords do not match")


class UsersFileActionTests(TestCase):
    """add, list, passwd and remove against a real users file."""

    def setUp(self) -> None:
        self.path = os.path.join(self.mktemp(), "users")
        os.makedirs(os.path.dirname(self.path))
        self.file = UsersFile(self.path, log_n=4)

    def test_add_list_passwd_remove(self) -> None:
        self.assertEqual(users.list_users(self.file), [])
        users.add_user(self.file, "bob", "pw-b")
        users.add_user(self.file, "alice", "pw-a")
        self.assertEqual(users.list_users(self.file), ["alice", "bob"])
        self.assertTrue(self.file.verify("alice", "pw-a"))
        users.set_password(self.file, "alice", "new")
        self.assertTrue(self.file.verify("alice", "new"))
        self.assertFalse(self.file.verify("alice", "pw-a"))
        users.remove_user(self.file, "bob")
        self.assertEqual(users.list_users(self.file), ["alice"])

    def test_add_existing(self) -> None:
        users.add_user(self.file, "alice", "pw")
        with self.assertRaises(AdminError) as caught:
            users.add_user(self.file, "alice", "other")
        self.assertEqual(str(caught.exception), "user exists: alice")
        self.assertTrue(self.file.verify("alice", "pw"))

    def test_passwd_unknown(self) -> None:
        with self.assertRaises(AdminError) as caught:
            users.set_password(self.file, "nobody", "pw")
        self.assertEqual(str(caught.exception), "no such user: nobody")

    def test_remove_unknown(self) -> None:
        with self.assertRaises(AdminError) as caught:
            users.remove_user(self.file, "nobody")
        self.assertEqual(str(caught.exception), "no such user: nobody")

    def test_bad_name(self) -> None:
        with self.assertRaises(AdminError) as caught:
            users.add_user(self.file, "a:b", "pw")
        self.assertIn("':'", str(caught.exception))
        self.assertEqual(users.list_users(self.file), [])


class RemoveUserDevicesTests(TestCase):
    """remove_user_devices drops the user's accounts, and devices left empty."""

    def test_remove(self) -> None:
        store = MemoryStateStore()
        self.successResultOf(store.migrate())
        self.successResultOf(store.register_account("dev1", "alice", "iPhone", None, 10.0))
        self.successResultOf(store.register_account("dev1", "bob", "iPhone", None, 10.0))
        self.successResultOf(store.register_account("dev2", "alice", "Android", None, 10.0))
        self.successResultOf(store.register_account("dev3", "carol", "Android", None, 10.0))
        touched = self.successResultOf(
            Deferred.fromCoroutine(users.remove_user_devices(store, "alice")))
        self.assertEqual(touched, ["dev1", "dev2"])
        remaining = self.successResultOf(store.list_devices())
        self.assertEqual([d.device_id for d in remaining], ["dev1", "dev3"])
        self.assertEqual([a.user for a in remaining[0].accounts], ["bob"])
        self.assertEqual(self.successResultOf(store.list_devices(user="alice")), [])
