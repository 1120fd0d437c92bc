"""Tests for easyncd.backends.users_file."""
from __future__ import annotations

import os
import stat

from twisted.trial.unittest import SynchronousTestCase, TestCase

from easyncd.backends.interfaces import AuthBackendUnavailable, IAuthenticator
from easyncd.backends.users_file import (
    NoSuchUser,
    ScryptHash,
    UserExists,
    UsersFile,
    UsersFileChecker,
    UsersFileError,
    hash_password,
)

CHEAP = 4  # scrypt log2(N) for fast tests


class HashTests(SynchronousTestCase):
    def test_format(self) -> None:
        text = hash_password("secret", log_n=CHEAP)
        self.assertTrue(text.startswith("$scrypt$ln=4,r=8,p=1$"))
        self.assertNotIn("secret", text)
        parsed = ScryptHash.parse(text)
        self.assertEqual(parsed.format(), text)
        self.assertTrue(parsed.matches("secret"))
        self.assertFalse(parsed.matches("Secret"))

    def test_default_cost(self) -> None:
        text = hash_password("pässwörd")
        self.assertTrue(text.startswith("$scrypt$ln=15,r=8,p=1$"))
        self.assertTrue(ScryptHash.parse(text).matches("pässwörd"))

    def test_salted(self) -> None:
        self.assertNotEqual(hash_password("x", log_n=CHEAP), hash_password("x", log_n=CHEAP))

    def test_bad_hashes(self) -> None:
        for text in ("", "plain", "$scrypt$ln=4,r=8$AAAA$AAAA", "$scrypt$ln=4,r=8,p=1$AAAA",
                     "$scrypt$ln=x,r=8,p=1$AAAA$AAAA", "$scrypt$ln=4,r=8,p=1$!!$AAAA",
                     "$scrypt$ln=99,r=8,p=1$AAAA$AAAA"):
            self.assertRaises(ValueError, ScryptHash.parse, text)


class UsersFileTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = self.mktemp()
        os.mkdir(self.dir)
        self.path = os.path.join(self.dir, "users")
        self.users = UsersFile(self.path, log_n=CHEAP)

    def test_missing_file(self) -> None:
        self.assertEqual(self.users.users(), [])
        self.assertFalse(self.users.verify("alice", "x"))
        self.assertRaises(NoSuchUser, self.users.remove, "alice")
        self.assertRaises(NoSuchUser, self.users.set_password, "alice", "x")

    def test_round_trip(self) -> None:
        self.users.add("bob", "hunter2")
        self.users.add("alice", "s3cret")
        self.assertEqual(self.users.users(), ["alice", "bob"])
        self.assertTrue(self.users.verify("alice", "s3cret"))
        self.assertTrue(self.users.verify("bob", "hunter2"))
        again = UsersFile(self.path)
        self.assertEqual(again.users(), ["alice", "bob"])
        self.assertTrue(again.verify("alice", "s3cret"))

    def test_wrong_password_and_unknown_user(self) -> None:
        self.users.add("alice", "s3cret")
        self.assertFalse(self.users.verify("alice", "S3cret"))
        self.assertFalse(self.users.verify("alice", ""))
        self.assertFalse(self.users.verify("carol", "s3cret"))

    def test_exists(self) -> None:
        self.users.add("alice", "one")
        self.assertRaises(UserExists, self.users.add, "alice", "two")
        self.assertTrue(self.users.verify("alice", "one"))

    def test_set_password(self) -> None:
        self.users.add("alice", "one")
        self.users.set_password("alice", "two")
        self.assertFalse(self.users.verify("alice", "one"))
        self.assertTrue(self.users.verify("alice", "two"))
        self.assertEqual(self.users.users(), ["alice"])

    def test_remove(self) -> None:
        self.users.add("alice", "one")
        self.users.add("bob", "two")
        self.users.remove("alice")
        self.assertEqual(self.users.users(), ["bob"])
        self.assertFalse(self.users.verify("alice", "one"))

    def test_bad_names_and_passwords(self) -> None:
        for name in ("", "a:b", "a b", "a\tb", "a\nb", "#alice"):
            self.assertRaises(UsersFileError, self.users.add, name, "pw")
        self.assertRaises(UsersFileError, self.users.add, "alice", "")
        self.users.add("alice", "pw")
        self.assertRaises(UsersFileError, self.users.set_password, "alice", "")
        self.assertEqual(self.users.users(), ["alice"])

    def test_mode_0600_and_no_leftovers(self) -> None:
        self.users.add("alice", "pw")
        self.users.set_password("alice", "pw2")
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        self.assertEqual(os.listdir(self.dir), ["users"])
        with open(self.path, encoding="utf-8") as handle:
            name, _, hashed = handle.read().rstrip("\n").partition(":")
        self.assertEqual(name, "alice")
        self.assertTrue(ScryptHash.parse(hashed).matches("pw2"))

    def test_atomic_replace(self) -> None:
        """A write replaces the file (new inode): a reader never sees half of it."""
        self.users.add("alice", "pw")
        before = os.stat(self.path).st_ino
        self.users.add("bob", "pw")
        self.assertNotEqual(os.stat(self.path).st_ino, before)

    def test_comments_kept(self) -> None:
        with open(self.path, "w", encoding="utf-8") as handle:
            handle.write("# the users\n\n" + "alice:" + hash_password("a", log_n=CHEAP) + "\n")
        self.users.add("bob", "b")
        self.users.remove("alice")
        with open(self.path, encoding="utf-8") as handle:
            text = handle.read()
        self.assertTrue(text.startswith("# the users\n\n"))
        self.assertEqual(self.users.users(), ["bob"])

    def test_reread_on_change(self) -> None:
        self.users.add("alice", "one")
        self.assertTrue(self.users.verify("alice", "one"))
        other = UsersFile(self.path, log_n=CHEAP)
        other.set_password("alice", "two")
        self.assertFalse(self.users.verify("alice", "one"))
        self.assertTrue(self.users.verify("alice", "two"))
        os.unlink(self.path)
        self.assertEqual(self.users.users(), [])

    def test_garbage_hash_line(self) -> None:
        with open(self.path, "w", encoding="utf-8") as handle:
            handle.write("alice:notahash\nnocolon\n")
        self.assertEqual(self.users.users(), ["alice"])
        self.assertFalse(self.users.verify("alice", "notahash"))


class CheckerTests(TestCase):
    """The checker hashes in the real reactor's thread pool."""

    def setUp(self) -> None:
        from twisted.internet import reactor

        path = self.mktemp()
        self.users = UsersFile(path, log_n=CHEAP)
        self.users.add("alice", "pw")
        self.checker = UsersFileChecker(self.users, reactor)

    def test_provides(self) -> None:
        self.assertTrue(IAuthenticator.providedBy(self.checker))

    async def test_authenticate(self) -> None:
        self.assertTrue(await self.checker.authenticate("alice", "pw"))
        self.assertFalse(await self.checker.authenticate("alice", "nope"))
        self.assertFalse(await self.checker.authenticate("bob", "pw"))

    async def test_unreadable_file_is_unavailable(self) -> None:
        from twisted.internet import reactor

        directory = self.mktemp()
        os.mkdir(directory)  # a directory where the file should be: cannot be read
        checker = UsersFileChecker(UsersFile(directory, log_n=CHEAP), reactor)
        with self.assertRaises(AuthBackendUnavailable):
            await checker.authenticate("alice", "pw")
        self.flushLoggedErrors()
