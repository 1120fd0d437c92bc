"""The mail watcher with NOTIFY (RFC 5465), and its fallbacks, over the fake IMAP server."""
from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from easyncd.backends.imap.backend import IMAPMailBackend
from easyncd.backends.imap.client import MailboxStatus
from easyncd.backends.imap.pool import IMAPPool
from easyncd.backends.imap.watch import UserWatcher
from tests.backends.imap.fakes import FULL, FakeIMAPServer

NOTIFY = FULL | {"NOTIFY"}


class NotifyWatchTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.server = FakeIMAPServer({"alice": "pw"}, NOTIFY)
        self.server.create("alice", "Other")
        self.pool = IMAPPool(self.clock, self.server.connect)
        self.backend = IMAPMailBackend(self.clock, self.pool, poll_interval=30, watch_linger=60)
        self.seen: list[str] = []

    def commands(self) -> list[str]:
        out = [command for _, command in self.server.commands]
        self.server.commands.clear()
        return out

    def watcher(self) -> UserWatcher:
        return self.backend._watchers["alice"]

    def test_one_session_notifies_every_mailbox_at_once(self) -> None:
        registration = self.successResultOf(
            self.backend.watch("alice", "pw", ["Sent", "INBOX", "Other"], self.seen.append))
        self.assertEqual(self.commands(), ["NOTIFY SET MAILBOXES INBOX Other Sent", "IDLE"])
        client = self.server.live("alice")[0]
        self.assertEqual((self.watcher().mode, client.selected, client.idling), ("notify", None, True))
        for box in ("Other", "INBOX", "Sent"):
            self.server.deliver("alice", box)
        self.assertEqual(self.seen, ["Other", "INBOX", "Sent"])  # at once, no clock involved
        uid = self.server.deliver("alice", "Other")
        self.server.store("alice", "Other", uid, {"\\Flagged"})
        self.server.expunge("alice", "Sent", [1])
        self.assertEqual(self.seen[3:], ["Other", "Other", "Sent"])
        # The same STATUS again (Dovecot repeats them) is no news.
        assert client.idle_state is not None
        client.idle_state["on_event"]("STATUS", client.status_of(self.server.boxes["alice"]["Other"]))
        self.assertEqual(len(self.seen), 6)
        # No polling: a long wait sends nothing but the IDLE renewal.
        self.clock.advance(30)
        self.assertEqual(self.commands(), [])
        self.clock.advance(25 * 60)
        self.assertEqual(self.commands(), ["DONE", "IDLE"])  # same NOTIFY set: just the IDLE again
        self.assertEqual(len(self.seen), 6)
        registration.stop()
        self.server.deliver("alice", "Other")
        self.assertEqual(len(self.seen), 6)
        self.clock.advance(60)
        self.assertEqual(self.server.live("alice"), [])

    def test_events_outside_idle_and_partial_status(self) -> None:
        self.successResultOf(self.backend.watch("alice", "pw", ["INBOX", "Other"], self.seen.append))
        client = self.server.live("alice")[0]
        handler = client.on_unsolicited
        assert handler is not None
        # Only HIGHESTMODSEQ (a flag change): merged, reported.
        known = client.status_of(self.server.boxes["alice"]["Other"])
        handler("STATUS", MailboxStatus("Other", highestmodseq=(known.highestmodseq or 0) + 5))
        self.assertEqual(self.seen, ["Other"])
        handler("STATUS", MailboxStatus("Other", highestmodseq=(known.highestmodseq or 0) + 5))
        handler("STATUS", MailboxStatus("Unwatched", messages=3))
        handler("LIST", None)
        self.assertEqual(self.seen, ["Other"])
        # A mailbox the NOTIFY's STATUS answer did not cover: its first STATUS is news.
        handler("STATUS", MailboxStatus("inbox", messages=1))
        self.assertEqual(self.seen, ["Other", "INBOX"])

    def test_more_mailboxes_reannounced_on_the_same_session(self) -> None:
        other: list[str] = []
        self.successResultOf(self.backend.watch("alice", "pw", ["INBOX"], self.seen.append))
        client = self.server.live("alice")[0]
        self.commands()
        self.successResultOf(self.backend.watch("alice", "pw", ["Other"], other.append))
        self.assertEqual(self.server.live("alice"), [client])
        self.assertEqual(self.commands(), ["DONE", "NOTIFY SET MAILBOXES INBOX Other", "IDLE"])
        self.server.deliver("alice", "Other")
        self.server.deliver("alice", "INBOX")
        self.assertEqual((self.seen, other), (["INBOX"], ["Other"]))

    def test_changes_while_reconnecting_are_reported(self) -> None:
        self.successResultOf(self.backend.watch("alice", "pw", ["INBOX", "Other"], self.seen.append))
        first = self.server.live("alice")[0]
        self.server.down = True
        self.server.drop(first)
        self.server.deliver("alice", "Other")  # nobody listens
        self.clock.advance(1)
        self.server.down = False
        self.clock.advance(2)
        self.clock.advance(2)
        self.assertEqual(len(self.server.live("alice")), 1)
        self.assertEqual(self.seen, ["Other"])  # the NOTIFY's STATUS answer differed from what was known
        self.server.deliver("alice", "INBOX")
        self.assertEqual(self.seen, ["Other", "INBOX"])

    def test_refused_notify_falls_back_to_idle_and_polling(self) -> None:
        self.server.refuse_notify = True
        self.successResultOf(self.backend.watch("alice", "pw", ["INBOX", "Other"], self.seen.append))
        client = self.server.live("alice")[0]
        self.assertEqual(self.watcher().mode, "idle")
        self.assertEqual(client.selected, "INBOX")
        self.server.deliver("alice", "INBOX")
        self.server.deliver("alice", "Other")
        self.assertEqual(self.seen, ["INBOX"])
        self.clock.advance(30)
        self.assertEqual(self.seen, ["INBOX", "Other"])

    def test_overflow_reports_all_and_renotifies_then_gives_up(self) -> None:
        self.successResultOf(self.backend.watch("alice", "pw", ["INBOX", "Other"], self.seen.append))
        self.commands()
        self.server.overflow("alice")
        self.assertEqual(self.seen, ["INBOX", "Other"])
        self.assertEqual(self.commands(), ["DONE", "NOTIFY SET MAILBOXES INBOX Other", "IDLE"])
        self.server.deliver("alice", "Other")
        self.assertEqual(self.seen[2:], ["Other"])
        self.server.overflow("alice")  # again before a renewal: NOTIFY is not worth it here
        self.assertEqual(self.watcher().mode, "idle")
        self.assertEqual(self.server.live("alice")[0].selected, "INBOX")

    def test_non_ascii_names_use_personal(self) -> None:
        self.server.create("alice", "Entw\u00fcrfe")
        self.successResultOf(self.backend.watch("alice", "pw", ["INBOX", "Entw\u00fcrfe"], self.seen.append))
        self.assertEqual(self.commands(), ["NOTIFY SET PERSONAL ", "IDLE"])
        self.server.deliver("alice", "Sent")  # not watched: ignored
        self.server.deliver("alice", "Entw\u00fcrfe")
        self.assertEqual(self.seen, ["Entw\u00fcrfe"])

    def test_without_notify_option(self) -> None:
        watcher = UserWatcher(self.clock, self.pool, "alice", "pw", use_notify=False)
        self.successResultOf(watcher.register(["INBOX", "Other"], self.seen.append))
        self.assertEqual(watcher.mode, "idle")
        self.assertNotIn("NOTIFY", " ".join(self.commands()))
        watcher.stop()


class NoNotifyCapabilityTests(TestCase):
    def test_idle_path_when_not_announced(self) -> None:
        clock = Clock()
        server = FakeIMAPServer({"alice": "pw"}, FULL)
        backend = IMAPMailBackend(clock, IMAPPool(clock, server.connect), poll_interval=30)
        seen: list[str] = []
        self.successResultOf(backend.watch("alice", "pw", ["INBOX", "Sent"], seen.append))
        self.assertEqual(backend._watchers["alice"].mode, "idle")
        self.assertNotIn("NOTIFY", " ".join(c for _, c in server.commands))
        server.deliver("alice", "Sent")
        clock.advance(30)
        self.assertEqual(seen, ["Sent"])
