"""Change detection on a session that has the mailbox selected already
(``IMAPMailBackend.changes``: NOOP + STATUS, and CHANGEDSINCE when the point
moved), against the fake IMAP server: the same answers as a new SELECT."""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from easyncd.backends.imap.backend import IMAPMailBackend
from easyncd.backends.imap.pool import IMAPPool
from easyncd.backends.interfaces import MailChanges, MailState
from easyncd.protocol.mailsync.snapshot import FastSnapshot
from tests.backends.imap.fakes import FULL, FakeIMAPServer


class SelectedMailboxChangesTests(TestCase):
    capabilities = FULL

    def setUp(self) -> None:
        self.server = FakeIMAPServer({"alice": "pw"}, self.capabilities)
        self.backend = IMAPMailBackend(Clock(), IMAPPool(Clock(), self.server.connect))
        self.uids = [self.server.deliver("alice", "INBOX", b"m%d" % i) for i in range(20)]
        self.first = self.changes(None)

    def wait(self, d: "Deferred[Any]") -> Any:
        return self.successResultOf(d)

    def changes(self, since: MailState | None, mailbox: str = "INBOX") -> MailChanges:
        return self.wait(self.backend.changes("alice", "pw", mailbox, since))

    def commands(self) -> list[str]:
        found = [c for _, c in self.server.commands]
        self.server.commands.clear()
        return found

    def test_no_change_costs_noop_and_status(self) -> None:
        self.commands()
        again = self.changes(self.first.state)
        self.assertTrue(again.empty)
        self.assertEqual(again.state.point, self.first.state.point)
        self.assertIs(again.state.snapshot, self.first.state.snapshot)
        self.assertEqual(self.commands(), ["NOOP", "STATUS INBOX"])

    def test_changes_without_select(self) -> None:
        s = self.server
        s.store("alice", "INBOX", self.uids[3], {"\\Seen"})
        s.store("alice", "INBOX", self.uids[5], {"\\Deleted"})
        s.expunge("alice", "INBOX", [self.uids[7]])
        new = s.deliver("alice", "INBOX", b"new", flags={"\\Flagged"})
        self.commands()
        found = self.changes(self.first.state)
        commands = self.commands()
        self.assertEqual(commands[:2], ["NOOP", "STATUS INBOX"])
        self.assertTrue(commands[2].startswith("UID FETCH 1:* FLAGS CHANGEDSINCE"), commands)
        self.assertFalse(any(c.startswith(("EXAMINE", "SELECT")) for c in commands))
        self.assertEqual(found.added, (new,))
        self.assertEqual(dict(found.changed), {self.uids[3]: frozenset({"\\Seen"})})
        self.assertEqual(found.removed, (self.uids[5], self.uids[7]))
        self.assertFalse(found.reset)
        # The same answer as a fresh SELECT (QRESYNC) on another session.
        self.wait(self.backend.changes("alice", "pw", "Trash", None))  # deselect INBOX
        self.commands()
        fresh = self.changes(self.first.state)
        self.assertIn("EXAMINE INBOX QRESYNC", self.commands())
        self.assertEqual((fresh.added, dict(fresh.changed), fresh.removed),
                         (found.added, dict(found.changed), found.removed))
        self.assertEqual(fresh.state.point, found.state.point)
        self.assertEqual(fresh.state.snapshot.as_dict(), found.state.snapshot.as_dict())
        # And from the new state on, nothing.
        self.assertTrue(self.changes(found.state).empty)

    def test_fast_snapshot_is_kept(self) -> None:
        fast = MailState(self.first.state.point, FastSnapshot.of(self.first.state.snapshot))
        self.server.store("alice", "INBOX", self.uids[0], {"\\Answered"})
        found = self.changes(fast)
        self.assertIsInstance(found.state.snapshot, FastSnapshot)
        self.assertEqual(found.state.snapshot.flags_of(self.uids[0]), frozenset({"\\Answered"}))

    def test_other_mailbox_selected_selects(self) -> None:
        self.wait(self.backend.changes("alice", "pw", "Trash", None))
        self.commands()
        self.assertTrue(self.changes(self.first.state).empty)
        self.assertEqual(self.commands(), ["EXAMINE INBOX QRESYNC"])

    def test_uidvalidity_change_is_a_reset(self) -> None:
        self.server.recreate("alice", "INBOX")
        uid = self.server.deliver("alice", "INBOX", b"again")
        found = self.changes(self.first.state)
        self.assertTrue(found.reset)
        self.assertEqual(found.added, (uid,))


class CondstoreOnlyTests(TestCase):
    """Without QRESYNC the mailbox is selected again (no VANISHED to rely on)."""

    def test_selects(self) -> None:
        server = FakeIMAPServer({"alice": "pw"}, FULL - {"QRESYNC"})
        backend = IMAPMailBackend(Clock(), IMAPPool(Clock(), server.connect))
        server.deliver("alice", "INBOX", b"m")
        first = self.successResultOf(backend.changes("alice", "pw", "INBOX", None))
        server.commands.clear()
        self.assertTrue(self.successResultOf(backend.changes("alice", "pw", "INBOX",
                                                             first.state)).empty)
        self.assertNotIn("NOOP", [c for _, c in server.commands])
