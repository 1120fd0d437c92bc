"""IMAPMailBackend and IMAPPool against a real Dovecot, with all extensions and with IMAP4rev1 + IDLE only."""
from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from easyncd.backends.imap.backend import IMAPMailBackend
from easyncd.backends.imap.pool import IMAPPool, imap_connector
from easyncd.backends.interfaces import (
    FOLDER_DELETED,
    FOLDER_DRAFTS,
    FOLDER_INBOX,
    FOLDER_SENT,
    FOLDER_USER_MAIL,
    MailAuthFailed,
    MailQuery,
    MailState,
)
from easyncd.testing.dovecot import DovecotServer

USERS = {"alice": "alice pw"}
MAILBOXES = """\
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = create
  }
  mailbox Sent {
    special_use = \\Sent
    auto = create
  }
  mailbox Trash {
    special_use = \\Trash
    auto = create
  }
  mailbox Junk {
    special_use = \\Junk
    auto = create
  }
}
"""


def message(subject: str, body: str = "Hello there.\r\n", date: str = "Wed, 01 May 2024 12:00:00 +0000") -> bytes:
    return (
        f"From: Bob <bob@example.org>\r\nTo: Alice <alice@example.org>\r\nSubject: {subject}\r\n"
        f"Date: {date}\r\nMessage-ID: <{subject.replace(' ', '.')}@example.org>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode("utf-8")


if TYPE_CHECKING:
    _Base = TestCase
else:
    _Base = object


class BackendDovecotMixin(_Base):
    extra_config = MAILBOXES

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.server = DovecotServer(USERS, extra_config=self.extra_config)
        self.server.start()
        self.addCleanup(self.server.stop)
        self.backend = self.make_backend()
        self.other = self.make_backend()  # "another mail client" making changes

    def make_backend(self) -> IMAPMailBackend:
        connect = imap_connector(self.reactor, "localhost", self.server.imap_port, "starttls",
                                 self.server.ca_file, timeout=10)
        pool = IMAPPool(self.reactor, connect, idle_timeout=30)
        backend = IMAPMailBackend(self.reactor, pool, poll_interval=1)
        self.addCleanup(self.shutdown, backend)
        return backend

    async def shutdown(self, backend: IMAPMailBackend) -> None:
        backend.stop()
        d: Deferred[None] = Deferred()
        self.reactor.callLater(0.05, d.callback, None)
        await d

    async def test_folders(self) -> None:
        folders = await self.backend.list_folders("alice", "alice pw")
        self.assertEqual(
            sorted((f.name, f.eas_type) for f in folders),
            [("Drafts", FOLDER_DRAFTS), ("INBOX", FOLDER_INBOX), ("Junk", FOLDER_USER_MAIL),
             ("Sent", FOLDER_SENT), ("Trash", FOLDER_DELETED)])
        created = await self.backend.create_folder("alice", "alice pw", "INBOX", "Projekte \u00e4")
        self.assertEqual((created.name, created.parent), ("INBOX/Projekte \u00e4", "INBOX"))
        renamed = await self.backend.rename_folder("alice", "alice pw", created.name, None, "Archiv \u00e4")
        self.assertEqual((renamed.name, renamed.parent, renamed.eas_type), ("Archiv \u00e4", None, 12))
        await self.backend.delete_folder("alice", "alice pw", renamed.name)
        names = [f.name for f in await self.backend.list_folders("alice", "alice pw")]
        self.assertNotIn(renamed.name, names)

    async def test_changes_exact(self) -> None:
        b, o, pw = self.backend, self.other, "alice pw"
        uids = [await o.append("alice", pw, "INBOX", message(f"m{i}")) for i in range(6)]
        first = await b.changes("alice", pw, "INBOX", None)
        self.assertEqual(first.added, tuple(uids))
        self.assertTrue((await b.changes("alice", pw, "INBOX", first.state)).empty)

        new = await o.append("alice", pw, "INBOX", message("new"))
        await o.set_flags("alice", pw, "INBOX", [uids[0]], add=["\\Seen", "$label1"])
        await o.set_flags("alice", pw, "INBOX", [uids[1]], add=["\\Deleted"])  # hidden
        await o.delete("alice", pw, "INBOX", [uids[2]], False)  # expunged
        trashed = await o.delete("alice", pw, "INBOX", [uids[3]], True)  # moved to Trash
        moved = await o.move("alice", pw, "INBOX", [uids[4]], "Junk")
        self.assertEqual(list(trashed), [uids[3]])
        self.assertEqual(list(moved), [uids[4]])

        state = MailState.from_bytes(first.state.to_bytes())  # as kept in the store
        got = await b.changes("alice", pw, "INBOX", state)
        self.assertEqual(got.added, (new,))
        self.assertEqual(dict(got.changed), {uids[0]: frozenset({"\\Seen", "$label1"})})
        self.assertEqual(got.removed, (uids[1], uids[2], uids[3], uids[4]))
        self.assertFalse(got.reset)
        self.assertEqual(sorted(got.state.snapshot.uids()), [uids[0], uids[5], new])
        self.assertTrue((await b.changes("alice", pw, "INBOX", got.state)).empty)

        # The moved messages are in their new places with the UIDs returned.
        junk = await b.fetch_messages("alice", pw, "Junk", list(moved.values()), ["BODY.PEEK[HEADER]"])
        self.assertIn(b"Subject: m4", junk[0].sections["HEADER"])
        trash = await b.fetch_messages("alice", pw, "Trash", list(trashed.values()), ["FLAGS"])
        self.assertEqual(len(trash), 1)

    async def test_uidvalidity_change_resets(self) -> None:
        b, pw = self.backend, "alice pw"
        await b.create_folder("alice", pw, None, "Box")
        old = await b.append("alice", pw, "Box", message("old"))
        await b.append("alice", pw, "INBOX", message("inbox"))
        box = await b.changes("alice", pw, "Box", None)
        inbox = await b.changes("alice", pw, "INBOX", None)
        await self.other.delete_folder("alice", pw, "Box")
        await self.other.create_folder("alice", pw, None, "Box")
        fresh = await self.other.append("alice", pw, "Box", message("fresh"))
        got = await b.changes("alice", pw, "Box", box.state)
        self.assertTrue(got.reset)
        self.assertNotEqual(got.state.point.uidvalidity, box.state.point.uidvalidity)
        self.assertEqual((got.added, got.removed), ((fresh,), (old,)))
        self.assertTrue((await b.changes("alice", pw, "INBOX", inbox.state)).empty)

    async def test_fetch_parts_and_search(self) -> None:
        b, pw = self.backend, "alice pw"
        body = "x" * 5000 + "END\r\n"
        uid = await b.append("alice", pw, "INBOX", message("budget report", body))
        await b.append("alice", pw, "INBOX", message("other", date="Mon, 01 Jan 2018 10:00:00 +0000"),
                       date=datetime.datetime(2018, 1, 1, 10, tzinfo=datetime.timezone.utc))
        got = await b.fetch_messages("alice", pw, "INBOX", [uid], [
            "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE", "BODY.PEEK[HEADER]", "BODY.PEEK[1]<0.100>"])
        self.assertEqual(got[0].sections["1<0>"], b"x" * 100)
        self.assertIn(b"Subject: budget report", got[0].sections["HEADER"])
        self.assertIsNotNone(got[0].bodystructure)
        chunks: list[bytes] = []
        total = await b.stream_part("alice", pw, "INBOX", uid, "1", chunks.append, chunk_size=2048)
        self.assertEqual((total, [len(c) for c in chunks]), (5005, [2048, 2048, 909]))
        self.assertTrue(b"".join(chunks).endswith(b"END\r\n"))
        hits = await b.search("alice", pw, MailQuery(text="budget"))
        self.assertEqual([(h.mailbox, h.uid) for h in hits], [("INBOX", uid)])
        recent = await b.search("alice", pw, MailQuery(since=datetime.datetime(2020, 1, 1)))
        self.assertEqual([h.uid for h in recent], [uid])

    async def test_watch_wakes_within_a_second(self) -> None:
        pw = "alice pw"
        woken: Deferred[str] = Deferred()

        def on_change(mailbox: str) -> None:
            if not woken.called:
                woken.callback(mailbox)

        registration = await self.backend.watch("alice", pw, ["INBOX", "Sent"], on_change)
        started = self.reactor.seconds()
        await self.other.append("alice", pw, "INBOX", message("wake up"))
        woken.addTimeout(5, self.reactor)
        self.assertEqual(await woken, "INBOX")
        self.assertLess(self.reactor.seconds() - started, 1.0)
        # A polled mailbox is noticed within the poll interval (1 s here).
        polled: Deferred[str] = Deferred()
        registration.stop()
        second = await self.backend.watch(
            "alice", pw, ["INBOX", "Sent"], lambda box: None if polled.called or box != "Sent" else polled.callback(box))
        await self.other.append("alice", pw, "Sent", message("sent one"))
        polled.addTimeout(5, self.reactor)
        self.assertEqual(await polled, "Sent")
        second.stop()

    async def test_warm_session_reused(self) -> None:
        pool = self.backend.pool
        for _ in range(5):
            await self.backend.folder_state("alice", "alice pw", "INBOX")
        self.assertEqual(pool.logins, 1)
        with self.assertRaises(MailAuthFailed):
            await self.backend.folder_state("alice", "wrong", "INBOX")
        await self.backend.folder_state("alice", "alice pw", "INBOX")
        self.assertEqual(pool.logins, 1)


class FullDovecotBackendTests(BackendDovecotMixin, TestCase):
    async def test_qresync_used(self) -> None:
        pw = "alice pw"
        for i in range(3):
            await self.backend.append("alice", pw, "INBOX", message(f"m{i}"))
        first = await self.backend.changes("alice", pw, "INBOX", None)
        self.assertIsNotNone(first.state.point.highestmodseq)


class ReducedDovecotBackendTests(BackendDovecotMixin, TestCase):
    """IMAP4rev1 + IDLE only: no CONDSTORE/QRESYNC, UIDPLUS, MOVE, SPECIAL-USE announced."""

    extra_config = MAILBOXES + "imap_capability = IMAP4rev1 IDLE\n"

    async def test_fallback_used(self) -> None:
        pw = "alice pw"
        await self.backend.append("alice", pw, "INBOX", message("m"))
        first = await self.backend.changes("alice", pw, "INBOX", None)
        self.assertIsNone(first.state.point.highestmodseq)
