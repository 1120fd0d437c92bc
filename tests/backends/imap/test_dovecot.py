"""EASIMAPClient and connect_imap against a real Dovecot (full extensions, and a reduced one)."""
from __future__ import annotations

import os
import tempfile
import shutil
from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from easyncd.backends.imap.client import EASIMAPClient, IMAPError
from easyncd.backends.imap.connect import IMAPAuthError, IMAPConnectError, connect_imap
from easyncd.backends.imap.protocol_parse import format_uid_set
from easyncd.testing.dovecot import DovecotServer, free_port, make_certificates

USERS = {"alice": "alice pw", "bob": "bob pw"}
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


def message(subject: str, body: str = "Hello there.\r\n") -> bytes:
    """A small RFC 5322 message (UTF-8 subject as an encoded word)."""
    from email.header import Header

    encoded = Header(subject, "utf-8").encode()
    return (
        f"From: Bob <bob@example.org>\r\nTo: Alice <alice@example.org>\r\nSubject: {encoded}\r\n"
        f"Message-ID: <{abs(hash(subject))}@example.org>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}"
    ).encode("utf-8")


class DovecotTestBase(TestCase):
    """A Dovecot of its own for each test (Dovecot slows repeated failed logins)."""

    extra_config = MAILBOXES

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor
        master_dir = tempfile.mkdtemp(prefix="easyncd-master-")
        self.addCleanup(shutil.rmtree, master_dir, True)
        os.chmod(master_dir, 0o755)
        masters = os.path.join(master_dir, "masters")
        with open(masters, "w", encoding="utf-8") as handle:
            handle.write("admin:{PLAIN}master secret::::::\n")
        os.chmod(masters, 0o644)
        extra = self.extra_config + f"""
auth_master_user_separator = *
passdb {{
  driver = passwd-file
  master = yes
  args = scheme=PLAIN {masters}
}}
"""
        self.server = DovecotServer(USERS, extra_config=extra)
        self.server.start()
        self.addCleanup(self.server.stop)

    async def connect(self, user: str = "alice", tls: str = "implicit", **kwargs: Any) -> EASIMAPClient:
        port = self.server.imaps_port if tls == "implicit" else self.server.imap_port
        password = kwargs.pop("password", USERS.get(user, ""))
        client = await connect_imap(
            self.reactor, "localhost", port, tls, self.server.ca_file, user, password, timeout=10, **kwargs
        )
        self.addCleanup(self.close, client)
        return client

    async def close(self, client: EASIMAPClient) -> None:
        if not client.closed.called:
            client.logout_quietly()
            transport: Any = client.transport
            timer = self.reactor.callLater(5, transport.abortConnection)
            await client.closed
            if timer.active():
                timer.cancel()

    async def fresh_mailbox(self, client: EASIMAPClient, name: str) -> str:
        await client.create_mailbox(name)
        return name


class FullDovecotTests(DovecotTestBase):
    async def test_connect_implicit_tls_enables_qresync(self) -> None:
        client = await self.connect()
        for cap in ("IDLE", "MOVE", "UIDPLUS", "QRESYNC", "CONDSTORE", "SPECIAL-USE", "LIST-STATUS", "LITERAL+"):
            self.assertIn(cap, client.capabilities_set)
        self.assertTrue(client.qresync_enabled)
        transport: Any = client.transport
        self.assertIsNotNone(transport.getPeerCertificate())
        self.assertFalse(client.startedTLS)

    async def test_connect_starttls(self) -> None:
        client = await self.connect(tls="starttls")
        self.assertTrue(client.startedTLS)
        self.assertIn("QRESYNC", client.enabled)

    async def test_wrong_password(self) -> None:
        with self.assertRaises(IMAPAuthError):
            await self.connect(tls="implicit", password="wrong")

    async def test_untrusted_certificate(self) -> None:
        other = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, other, True)
        paths = make_certificates(other)
        with self.assertRaises(IMAPConnectError) as caught:
            await connect_imap(self.reactor, "localhost", self.server.imaps_port, "implicit", paths["ca"],
                               "alice", USERS["alice"], timeout=10)
        self.assertIn("TLS", str(caught.exception))

    async def test_connection_refused(self) -> None:
        with self.assertRaises(IMAPConnectError):
            await connect_imap(self.reactor, "127.0.0.1", free_port(), "none", None, "alice", "x", timeout=5)

    async def test_master_user(self) -> None:
        client = await self.connect("alice", master_user="admin", password="master secret")
        await client.append_message("INBOX", message("via master"))
        separator = await self.connect("alice*admin", password="master secret")
        status = await separator.status("INBOX")
        self.assertGreaterEqual(status.messages or 0, 1)

    async def test_list_special_use_and_status(self) -> None:
        client = await self.connect()
        await client.create_mailbox("Proj\u00e9t/Sub \u65e5\u672c")
        mailboxes = {info.name: info for info in await client.list_mailboxes()}
        self.assertEqual(mailboxes["INBOX"].special_use, "\\Inbox")
        self.assertEqual(mailboxes["Drafts"].special_use, "\\Drafts")
        self.assertEqual(mailboxes["Sent"].special_use, "\\Sent")
        self.assertEqual(mailboxes["Trash"].special_use, "\\Trash")
        self.assertEqual(mailboxes["Junk"].special_use, "\\Junk")
        sub = mailboxes["Proj\u00e9t/Sub \u65e5\u672c"]
        self.assertEqual((sub.delimiter, sub.parent), ("/", "Proj\u00e9t"))
        statuses = dict((info.name, status) for info, status in await client.list_status())
        inbox = statuses["INBOX"]
        assert inbox is not None
        self.assertIsNotNone(inbox.uidvalidity)
        self.assertIsNotNone(inbox.highestmodseq)
        self.assertIsNotNone(statuses["Proj\u00e9t/Sub \u65e5\u672c"])
        await client.rename_mailbox("Proj\u00e9t/Sub \u65e5\u672c", "Proj\u00e9t/\u00dcber")
        await client.delete_mailbox("Proj\u00e9t/\u00dcber")
        names = [info.name for info in await client.list_mailboxes()]
        self.assertNotIn("Proj\u00e9t/\u00dcber", names)
        with self.assertRaises(IMAPError):
            await client.delete_mailbox("Does not exist")

    async def test_mail_cycle_with_qresync(self) -> None:
        client = await self.connect()
        box = await self.fresh_mailbox(client, "Cycle")
        uids = [await client.append_message(box, message(f"n\u00b0{i}"), ["\\Seen"] if i == 0 else [])
                for i in range(4)]
        self.assertTrue(all(isinstance(uid, int) for uid in uids))
        first = await client.select_mailbox(box, condstore=True)
        self.assertEqual(first.exists, 4)
        assert first.highestmodseq is not None

        messages, _ = await client.uid_fetch(
            "1:*", ["FLAGS", "MODSEQ", "RFC822.SIZE", "INTERNALDATE", "BODYSTRUCTURE", "ENVELOPE",
                    "BODY.PEEK[HEADER.FIELDS (SUBJECT)]", "BODY.PEEK[1]<0.5>", "BODY.PEEK[]"])
        self.assertEqual([m.uid for m in messages], uids)
        self.assertEqual(messages[0].flags, frozenset({"\\Seen"}))
        self.assertIn(b"Subject:", messages[0].sections["HEADER.FIELDS (SUBJECT)"])
        self.assertEqual(messages[0].sections["1<0>"], b"Hello")
        self.assertEqual(messages[0].sections[""], message("n\u00b00"))
        self.assertEqual(messages[0].size, len(message("n\u00b00")))
        assert messages[0].bodystructure is not None and messages[0].envelope is not None
        self.assertEqual(messages[0].bodystructure[:2], [b"text", b"plain"])
        self.assertIsNotNone(messages[0].internaldate)

        # Changes: a flag, a move, an expunge.
        stored = await client.uid_store(str(uids[1]), "+", ["\\Flagged", "$Work"], unchangedsince=first.highestmodseq)
        self.assertEqual(stored.modified, frozenset())
        mapping = await client.uid_move(str(uids[2]), "Trash")
        assert mapping is not None
        self.assertEqual(list(mapping), [uids[2]])
        await client.uid_expunge(str(uids[3]))

        # A second connection resynchronises with QRESYNC from the first state.
        other = await self.connect()
        again = await other.select_mailbox(
            box, qresync=(first.uidvalidity, first.highestmodseq, format_uid_set(u for u in uids if u)))
        self.assertEqual(again.uidvalidity, first.uidvalidity)
        self.assertEqual(again.vanished, frozenset({uids[2], uids[3]}))
        self.assertEqual([m.uid for m in again.changed], [uids[1]])
        self.assertEqual(again.changed[0].flags, frozenset({"\\Flagged", "$Work"}))
        # The same through UID FETCH (CHANGEDSINCE VANISHED).
        changed, vanished = await other.uid_fetch("1:*", ["FLAGS"], changedsince=first.highestmodseq, vanished=True)
        self.assertEqual([m.uid for m in changed], [uids[1]])
        self.assertEqual(vanished, frozenset({uids[2], uids[3]}))

        # A conditional store that lost the race.
        stale = await other.uid_store(str(uids[1]), "-", ["$Work"], unchangedsince=first.highestmodseq)
        self.assertEqual(stale.modified, frozenset({uids[1]}))

        # Search, including non-ASCII text (sent as a literal with CHARSET).
        self.assertEqual(await other.uid_search("FLAGGED"), [uids[1]])
        self.assertEqual(await other.uid_search('SUBJECT "n\u00b01"'), [uids[1]])
        self.assertEqual(await other.uid_search("UNDELETED"), [uids[0], uids[1]])

        trash = await other.select_mailbox("Trash", readonly=True)
        self.assertGreaterEqual(trash.exists, 1)
        self.assertTrue(trash.readonly)

    async def test_unsolicited_events_during_commands(self) -> None:
        watcher = await self.connect()
        box = await self.fresh_mailbox(watcher, "Watched")
        await watcher.select_mailbox(box)
        events: list[tuple[str, Any]] = []
        watcher.on_unsolicited = lambda kind, data: events.append((kind, data))
        writer = await self.connect()
        uid = await writer.append_message(box, message("news"))
        polled = await watcher.noop_poll()
        self.assertIn(("EXISTS", 1), polled)
        self.assertIn(("EXISTS", 1), events)
        await writer.select_mailbox(box)
        await writer.uid_store(str(uid), "+", ["\\Seen"])
        polled = await watcher.noop_poll()
        fetches = [data for kind, data in polled if kind == "FETCH"]
        self.assertEqual([(m.uid, m.flags) for m in fetches], [(uid, frozenset({"\\Seen"}))])

    async def test_idle_woken_by_append_from_second_connection(self) -> None:
        watcher = await self.connect()
        box = await self.fresh_mailbox(watcher, "Idle")
        await watcher.select_mailbox(box)
        woken: Deferred[tuple[str, Any]] = Deferred()

        def on_event(kind: str, data: Any) -> None:
            if not woken.called:
                woken.callback((kind, data))

        await watcher.idle(on_event)
        self.assertTrue(watcher.idling)
        writer = await self.connect()
        started = self.reactor.seconds()
        await writer.append_message(box, message("wake up"))
        woken.addTimeout(10, self.reactor)
        self.assertEqual(await woken, ("EXISTS", 1))
        self.assertLess(self.reactor.seconds() - started, 3)
        await watcher.done()
        self.assertFalse(watcher.idling)
        # The session is usable afterwards.
        status = await watcher.status(box)
        self.assertEqual(status.messages, 1)


class ReducedDovecotTests(DovecotTestBase):
    """A server offering only IMAP4rev1 and IDLE: every fallback path runs."""

    extra_config = MAILBOXES + "imap_capability = IMAP4rev1 IDLE\n"

    async def test_capabilities_reduced(self) -> None:
        client = await self.connect()
        self.assertEqual(client.capabilities_set, frozenset({"IMAP4REV1", "IDLE"}))
        self.assertEqual(client.enabled, frozenset())

    async def test_fallbacks(self) -> None:
        client = await self.connect(tls="starttls")
        box = await self.fresh_mailbox(client, "Entw\u00fcrfe alt")
        # APPEND with a synchronising literal; no APPENDUID.
        # (Dovecot answers APPENDUID/COPYUID even when UIDPLUS is not announced.)
        for index in range(3):
            await client.append_message(box, message(f"fallback {index}"))
        statuses = dict((info.name, status) for info, status in await client.list_status())
        status = statuses[box]
        assert status is not None
        self.assertEqual((status.messages, status.highestmodseq), (3, None))
        selected = await client.select_mailbox(box, condstore=True)
        self.assertEqual(selected.exists, 3)
        uids = await client.uid_search("ALL")
        self.assertEqual(len(uids), 3)
        # MOVE falls back to COPY + \Deleted + EXPUNGE (no COPYUID map).
        mapping = await client.uid_move(str(uids[0]), "Trash")
        self.assertIn(list(mapping or {uids[0]: 0}), ([uids[0]],))
        self.assertEqual(await client.uid_search("ALL"), uids[1:])
        await client.uid_expunge(str(uids[1]))
        self.assertEqual(await client.uid_search("ALL"), uids[2:])
        await client.uid_copy(str(uids[2]), "Trash")
        messages, vanished = await client.uid_fetch("1:*", ["FLAGS", "BODY.PEEK[HEADER]"])
        self.assertEqual([m.uid for m in messages], uids[2:])
        self.assertIn(b"fallback_2", messages[0].sections["HEADER"])
        self.assertEqual(vanished, frozenset())
        trash = await client.status("Trash")
        self.assertEqual(trash.messages, 2)
        infos = {info.name: info for info in await client.list_mailboxes()}
        self.assertEqual(infos["INBOX"].special_use, "\\Inbox")
        self.assertIn(box, infos)
        with self.assertRaises(IMAPError):
            await client.select_mailbox(box, qresync=(1, 1, None))
