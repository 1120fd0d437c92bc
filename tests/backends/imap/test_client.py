"""Byte-exact tests of EASIMAPClient: what it writes, and what it makes of the server's lines."""
from __future__ import annotations

import datetime
from typing import Any

from twisted.internet.error import ConnectionLost
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.imap.client import EASIMAPClient, FetchedMessage, IMAPError, MailboxInfo

CAPS = b"IMAP4rev1 LITERAL+ SASL-IR ENABLE IDLE CONDSTORE QRESYNC UIDPLUS MOVE SPECIAL-USE LIST-EXTENDED LIST-STATUS"


class ClientTestBase(SynchronousTestCase):
    caps = CAPS

    def setUp(self) -> None:
        self.transport = StringTransport()
        self.client = EASIMAPClient()
        self.client.makeConnection(self.transport)
        self.unsolicited: list[tuple[str, Any]] = []
        self.client.on_unsolicited = lambda kind, data: self.unsolicited.append((kind, data))
        self.feed(b"* OK [CAPABILITY " + self.caps + b"] ready\r\n")
        self.successResultOf(self.client.greeted)

    def feed(self, data: bytes) -> None:
        self.client.dataReceived(data)

    def written(self) -> bytes:
        value = self.transport.value()
        self.transport.clear()
        return value


class GreetingLoginTests(ClientTestBase):
    caps = b"IMAP4rev1 STARTTLS LOGINDISABLED"

    def test_greeting_capabilities(self) -> None:
        self.assertEqual(self.client.capabilities_set, frozenset({"IMAP4REV1", "STARTTLS", "LOGINDISABLED"}))
        self.assertEqual(self.client.state, "unauth")

    def test_login_quoted_then_capabilities_from_code(self) -> None:
        d = self.client.login_plain("alice", 'p"w\\')
        self.assertEqual(self.written(), b'0001 LOGIN "alice" "p\\"w\\\\"\r\n')
        self.feed(b"0001 OK [CAPABILITY IMAP4rev1 IDLE MOVE] Logged in\r\n")
        self.assertEqual(self.successResultOf(d), frozenset({"IMAP4REV1", "IDLE", "MOVE"}))
        self.assertEqual(self.written(), b"")

    def test_login_literal_synchronising_and_capability_command(self) -> None:
        d = self.client.login_plain("j\u00fcrgen", "pw")
        self.assertEqual(self.written(), b"0001 LOGIN {7}\r\n")
        self.feed(b"+ go ahead\r\n")
        self.assertEqual(self.written(), "j\u00fcrgen".encode() + b' "pw"\r\n')
        self.feed(b"0001 OK Logged in\r\n")
        self.assertEqual(self.written(), b"0002 CAPABILITY\r\n")
        self.feed(b"* CAPABILITY IMAP4rev1 UIDPLUS\r\n0002 OK done\r\n")
        self.assertEqual(self.successResultOf(d), frozenset({"IMAP4REV1", "UIDPLUS"}))

    def test_login_refused(self) -> None:
        d = self.client.login_plain("alice", "bad")
        self.written()
        self.feed(b"0001 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
        error = self.failureResultOf(d, IMAPError).value
        self.assertEqual((error.code, error.response, error.status),
                         ("AUTHENTICATIONFAILED", "Authentication failed.", "NO"))

    def test_authenticate_plain_without_sasl_ir(self) -> None:
        d = self.client.authenticate_plain("alice", "admin", "secret")
        self.assertEqual(self.written(), b"0001 AUTHENTICATE PLAIN\r\n")
        self.feed(b"+ \r\n")
        self.assertEqual(self.written(), b"YWxpY2UAYWRtaW4Ac2VjcmV0\r\n")
        self.feed(b"0001 OK [CAPABILITY IMAP4rev1] Logged in\r\n")
        self.successResultOf(d)

    def test_starttls(self) -> None:
        # StringTransport has no startTLS: record the call instead.
        started: list[Any] = []
        self.transport.startTLS = started.append  # type: ignore[attr-defined]
        d = self.client.starttls("ctx")
        self.assertEqual(self.written(), b"0001 STARTTLS\r\n")
        self.feed(b"0001 OK Begin TLS negotiation now.\r\n")
        self.assertEqual(started, ["ctx"])
        self.assertEqual(self.client.capabilities_set, frozenset())
        self.assertEqual(self.written(), b"0002 CAPABILITY\r\n")
        self.feed(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n0002 OK done\r\n")
        self.assertEqual(self.successResultOf(d), frozenset({"IMAP4REV1", "AUTH=PLAIN"}))


class SessionTests(ClientTestBase):
    def test_authenticate_plain_sasl_ir(self) -> None:
        d = self.client.authenticate_plain("alice", "admin", "secret")
        self.assertEqual(self.written(), b"0001 AUTHENTICATE PLAIN YWxpY2UAYWRtaW4Ac2VjcmV0\r\n")
        self.feed(b"0001 OK [CAPABILITY IMAP4rev1 QRESYNC] Logged in\r\n")
        self.successResultOf(d)

    def test_enable(self) -> None:
        d = self.client.enable("condstore", "QRESYNC")
        self.assertEqual(self.written(), b"0001 ENABLE CONDSTORE QRESYNC\r\n")
        self.feed(b"* ENABLED CONDSTORE QRESYNC\r\n0001 OK Enabled.\r\n")
        self.assertEqual(self.successResultOf(d), frozenset({"CONDSTORE", "QRESYNC"}))
        self.assertTrue(self.client.qresync_enabled)

    def test_list_special_use(self) -> None:
        d = self.client.list_mailboxes()
        self.assertEqual(self.written(), b'0001 LIST "" "*" RETURN (SPECIAL-USE)\r\n')
        self.feed(
            b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
            b'* LIST (\\HasNoChildren \\Drafts) "/" "Entw&APw-rfe"\r\n'
            b'* LIST (\\Noselect \\HasChildren) "/" {7}\r\nA "b" c\r\n'
            b'* LIST (\\HasNoChildren \\TRASH) NIL 2023\r\n'
            b"0001 OK List completed.\r\n"
        )
        self.assertEqual(self.successResultOf(d), [
            MailboxInfo("INBOX", "/", frozenset({"\\HasNoChildren"}), "\\Inbox", b"INBOX"),
            MailboxInfo("Entw\u00fcrfe", "/", frozenset({"\\HasNoChildren", "\\Drafts"}), "\\Drafts", b"Entw&APw-rfe"),
            MailboxInfo('A "b" c', "/", frozenset({"\\Noselect", "\\HasChildren"}), None, b'A "b" c'),
            MailboxInfo("2023", None, frozenset({"\\HasNoChildren", "\\Trash"}), "\\Trash", b"2023"),
        ])

    def test_list_status_extension(self) -> None:
        d = self.client.list_status()
        self.assertEqual(
            self.written(),
            b'0001 LIST "" "*" RETURN (SPECIAL-USE STATUS (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ))\r\n',
        )
        self.feed(
            b'* LIST (\\HasChildren) "/" INBOX\r\n'
            b'* STATUS INBOX (MESSAGES 3 UIDNEXT 4 UIDVALIDITY 99 UNSEEN 1 HIGHESTMODSEQ 7)\r\n'
            b'* LIST (\\Noselect) "/" Shared\r\n'
            b'* LIST () "/" "INBOX/&AOk-t&AOk-"\r\n'
            b'* STATUS "INBOX/&AOk-t&AOk-" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 5 UNSEEN 0 HIGHESTMODSEQ 1)\r\n'
            b"0001 OK done\r\n"
        )
        result = self.successResultOf(d)
        self.assertEqual([(info.name, status) for info, status in result][1], ("Shared", None))
        inbox, summer = result[0][1], result[2][1]
        assert inbox is not None and summer is not None
        self.assertEqual((inbox.messages, inbox.uidnext, inbox.uidvalidity, inbox.unseen, inbox.highestmodseq),
                         (3, 4, 99, 1, 7))
        self.assertEqual((summer.name, summer.uidvalidity), ("INBOX/\u00e9t\u00e9", 5))

    def test_create_rename_delete_modified_utf7(self) -> None:
        self.client.create_mailbox("R\u00e9sum\u00e9 & Co")
        self.assertEqual(self.written(), b'0001 CREATE "R&AOk-sum&AOk- &- Co"\r\n')
        self.feed(b"0001 OK done\r\n")
        self.client.rename_mailbox("a", "\u65e5")
        self.assertEqual(self.written(), b'0002 RENAME "a" "&ZeU-"\r\n')
        self.feed(b"0002 OK done\r\n")
        d = self.client.delete_mailbox("x")
        self.assertEqual(self.written(), b'0003 DELETE "x"\r\n')
        self.feed(b"0003 NO [NONEXISTENT] Mailbox doesn't exist: x\r\n")
        self.assertEqual(self.failureResultOf(d, IMAPError).value.code, "NONEXISTENT")

    def test_noop_poll_reports_events(self) -> None:
        d = self.client.noop_poll()
        self.assertEqual(self.written(), b"0001 NOOP\r\n")
        self.feed(b"* 4 EXISTS\r\n* 2 EXPUNGE\r\n* 1 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (12))\r\n"
                  b"* VANISHED 3,5:6\r\n0001 OK NOOP completed.\r\n")
        events = self.successResultOf(d)
        expected = [
            ("EXISTS", 4), ("EXPUNGE", 2),
            ("FETCH", FetchedMessage(uid=9, flags=frozenset({"\\Seen"}), modseq=12, seq=1)),
            ("VANISHED", frozenset({3, 5, 6})),
        ]
        self.assertEqual(events, expected)
        self.assertEqual(self.unsolicited, expected)

    def test_unsolicited_without_command(self) -> None:
        self.feed(b"* 12 EXISTS\r\n* 3 RECENT\r\n")
        self.assertEqual(self.unsolicited, [("EXISTS", 12)])

    def test_queued_commands_go_one_at_a_time(self) -> None:
        d1 = self.client.noop_poll()
        d2 = self.client.noop_poll()
        self.assertEqual(self.written(), b"0001 NOOP\r\n")
        self.feed(b"0001 OK done\r\n")
        self.assertEqual(self.written(), b"0002 NOOP\r\n")
        self.feed(b"0002 OK done\r\n")
        self.assertEqual((self.successResultOf(d1), self.successResultOf(d2)), ([], []))


class SelectedTests(ClientTestBase):
    def setUp(self) -> None:
        super().setUp()
        self.client.enabled = frozenset({"CONDSTORE", "QRESYNC"})

    def test_select_qresync(self) -> None:
        d = self.client.select_mailbox("INBOX", qresync=(67890007, 20050715194045000, "41,43:211"))
        self.assertEqual(self.written(), b"0001 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211))\r\n")
        self.feed(
            b"* OK [CLOSED] Previous mailbox closed\r\n"
            b"* 172 EXISTS\r\n"
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
            b"* OK [PERMANENTFLAGS (\\Seen \\*)] Limited\r\n"
            b"* OK [UIDVALIDITY 67890007] UIDs valid\r\n"
            b"* OK [UIDNEXT 600] Predicted next UID\r\n"
            b"* OK [HIGHESTMODSEQ 20050715194045001] Highest\r\n"
            b"* VANISHED (EARLIER) 41,43:45,118:116\r\n"
            b"* 49 FETCH (UID 117 FLAGS (\\Seen \\Answered) MODSEQ (90060115194045001))\r\n"
            b"0001 OK [READ-WRITE] mailbox selected\r\n"
        )
        result = self.successResultOf(d)
        self.assertEqual((result.uidvalidity, result.uidnext, result.exists, result.highestmodseq, result.readonly),
                         (67890007, 600, 172, 20050715194045001, False))
        self.assertEqual(result.vanished, frozenset({41, 43, 44, 45, 116, 117, 118}))
        self.assertEqual([(m.uid, m.flags, m.modseq) for m in result.changed],
                         [(117, frozenset({"\\Seen", "\\Answered"}), 90060115194045001)])
        self.assertEqual(result.permanentflags, frozenset({"\\Seen", "\\*"}))
        self.assertEqual(self.unsolicited, [])
        self.assertEqual(self.client.selected, "INBOX")

    def test_examine_condstore_readonly_nomodseq(self) -> None:
        d = self.client.select_mailbox("Sent", readonly=True, condstore=True)
        self.assertEqual(self.written(), b'0001 EXAMINE "Sent" (CONDSTORE)\r\n')
        self.feed(b"* 0 EXISTS\r\n* OK [UIDVALIDITY 3] x\r\n* OK [NOMODSEQ] no\r\n0001 OK [READ-ONLY] done\r\n")
        result = self.successResultOf(d)
        self.assertEqual((result.exists, result.uidvalidity, result.uidnext, result.highestmodseq, result.readonly),
                         (0, 3, None, None, True))

    def test_qresync_needs_enable(self) -> None:
        self.client.enabled = frozenset()
        self.failureResultOf(self.client.select_mailbox("INBOX", qresync=(1, 2, None)), IMAPError)
        self.assertEqual(self.written(), b"")

    def test_uid_fetch_literals_and_unsolicited(self) -> None:
        d = self.client.uid_fetch("1:*", ["FLAGS", "BODY.PEEK[HEADER]", "BODY.PEEK[1.2]<0.5000>", "RFC822.SIZE",
                                          "INTERNALDATE", "BODYSTRUCTURE"], changedsince=5, vanished=True)
        self.assertEqual(
            self.written(),
            b"0001 UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER] BODY.PEEK[1.2]<0.5000> RFC822.SIZE INTERNALDATE "
            b"BODYSTRUCTURE) (CHANGEDSINCE 5 VANISHED)\r\n",
        )
        header = b"Subject: hi\r\n\r\n"
        # One response with two literals, fed in awkward pieces.
        data = (
            b"* VANISHED (EARLIER) 3:4\r\n"
            b"* 1 FETCH (UID 10 FLAGS (\\Seen) MODSEQ (6) RFC822.SIZE 120 "
            b'INTERNALDATE "17-Jul-1996 02:44:25 -0700" '
            b'BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "UTF-8") NIL NIL "7BIT" 5 1 NIL NIL NIL NIL) '
            b"BODY[HEADER] {%d}\r\n" % len(header) + header + b" BODY[1.2]<0> {4}\r\nab)\n)\r\n"
            b"* 5 EXISTS\r\n"
            b"* 2 FETCH (UID 11 FLAGS () MODSEQ (7) BODY[HEADER] NIL)\r\n"
            b"* 1 EXPUNGE\r\n"
            b"0001 OK Fetch completed.\r\n"
        )
        for index in range(0, len(data), 7):
            self.feed(data[index:index + 7])
        messages, vanished = self.successResultOf(d)
        self.assertEqual(vanished, frozenset({3, 4}))
        first, second = messages
        self.assertEqual((first.uid, first.seq, first.flags, first.modseq, first.size),
                         (10, 1, frozenset({"\\Seen"}), 6, 120))
        self.assertEqual(first.sections, {"HEADER": header, "1.2<0>": b"ab)\n"})
        self.assertEqual(first.internaldate,
                         datetime.datetime(1996, 7, 17, 9, 44, 25, tzinfo=datetime.timezone.utc))
        self.assertEqual(first.bodystructure,
                         [b"TEXT", b"PLAIN", [b"CHARSET", b"UTF-8"], None, None, b"7BIT", "5", "1",
                          None, None, None, None])
        self.assertEqual((second.uid, second.flags, second.sections), (11, frozenset(), {"HEADER": b""}))
        # The FETCH answers are the command's; EXISTS and EXPUNGE are reported.
        self.assertEqual(self.unsolicited, [("EXISTS", 5), ("EXPUNGE", 1)])

    def test_uid_search_plain_and_literal(self) -> None:
        d = self.client.uid_search("SINCE 1-Feb-2024 NOT DELETED")
        self.assertEqual(self.written(), b"0001 UID SEARCH SINCE 1-Feb-2024 NOT DELETED\r\n")
        self.feed(b"* SEARCH 2 84 882 (MODSEQ 917162500)\r\n0001 OK done\r\n")
        self.assertEqual(self.successResultOf(d), [2, 84, 882])
        self.client.capabilities_set = self.client.capabilities_set - {"LITERAL+"}
        d = self.client.uid_search('OR SUBJECT "caf\u00e9" TEXT "a\\"b" UNDELETED')
        self.assertEqual(self.written(), b"0002 UID SEARCH CHARSET UTF-8 OR SUBJECT {5}\r\n")
        self.feed(b"+ Ready\r\n")
        self.assertEqual(self.written(), "caf\u00e9".encode() + b' TEXT "a\\"b" UNDELETED\r\n')
        self.feed(b"* SEARCH\r\n0002 OK done\r\n")
        self.assertEqual(self.successResultOf(d), [])

    def test_uid_store_unchangedsince_modified(self) -> None:
        d = self.client.uid_store("1:3", "+", ["\\Flagged", "$Work"], unchangedsince=12)
        self.assertEqual(self.written(), b"0001 UID STORE 1:3 (UNCHANGEDSINCE 12) +FLAGS.SILENT (\\Flagged $Work)\r\n")
        self.feed(b"* 1 FETCH (UID 1 MODSEQ (13))\r\n0001 OK [MODIFIED 2:3] Conditional STORE failed\r\n")
        result = self.successResultOf(d)
        self.assertEqual([(m.uid, m.modseq) for m in result], [(1, 13)])
        self.assertEqual(result.modified, frozenset({2, 3}))
        self.assertEqual(self.unsolicited, [])
        d = self.client.uid_store("4", "", ["\\Seen"], silent=False)
        self.assertEqual(self.written(), b"0002 UID STORE 4 FLAGS (\\Seen)\r\n")
        self.feed(b"0002 OK done\r\n")
        self.successResultOf(d)

    def test_uid_copy_copyuid(self) -> None:
        d = self.client.uid_copy("304,319:320", "Archive")
        self.assertEqual(self.written(), b'0001 UID COPY 304,319:320 "Archive"\r\n')
        self.feed(b"0001 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n")
        self.assertEqual(self.successResultOf(d), {304: 3956, 319: 3957, 320: 3958})

    def test_uid_copy_trycreate(self) -> None:
        d = self.client.uid_copy("1", "Nope")
        self.written()
        self.feed(b"0001 NO [TRYCREATE] Mailbox doesn't exist\r\n")
        self.assertEqual(self.failureResultOf(d, IMAPError).value.code, "TRYCREATE")

    def test_uid_move(self) -> None:
        d = self.client.uid_move("42:43", "Trash")
        self.assertEqual(self.written(), b'0001 UID MOVE 42:43 "Trash"\r\n')
        self.feed(b"* OK [COPYUID 432432 42:43 11:12] Moved\r\n* VANISHED 42:43\r\n* 7 EXISTS\r\n"
                  b"0001 OK Move completed.\r\n")
        self.assertEqual(self.successResultOf(d), {42: 11, 43: 12})
        self.assertEqual(self.unsolicited, [("EXISTS", 7)])

    def test_append_literal_plus(self) -> None:
        message = b"Subject: x\r\n\r\nbody\r\n"
        when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
        d = self.client.append_message("Drafts", message, ["\\Draft", "\\Seen"], when)
        self.assertEqual(
            self.written(),
            b'0001 APPEND "Drafts" (\\Draft \\Seen) " 2-Jan-2024 03:04:05 +0000" {%d+}\r\n' % len(message)
            + message + b"\r\n",
        )
        self.feed(b"0001 OK [APPENDUID 38505 3955] APPEND completed\r\n")
        self.assertEqual(self.successResultOf(d), 3955)

    def test_connection_lost_fails_commands(self) -> None:
        d = self.client.noop_poll()
        self.client.connectionLost(Failure(ConnectionLost()))
        self.failureResultOf(d, ConnectionLost)
        self.successResultOf(self.client.closed)


class FallbackTests(ClientTestBase):
    caps = b"IMAP4rev1 IDLE"

    def test_append_synchronising_literal(self) -> None:
        d = self.client.append_message("INBOX", b"hello")
        self.assertEqual(self.written(), b"0001 APPEND INBOX {5}\r\n")
        self.feed(b"+ OK\r\n")
        self.assertEqual(self.written(), b"hello\r\n")
        self.feed(b"0001 OK APPEND completed\r\n")
        self.assertIsNone(self.successResultOf(d))

    def test_append_refused_before_continuation(self) -> None:
        d = self.client.append_message("INBOX", b"hello")
        self.written()
        self.feed(b"0001 NO [OVERQUOTA] Quota exceeded\r\n")
        self.assertEqual(self.failureResultOf(d, IMAPError).value.code, "OVERQUOTA")
        self.assertEqual(self.written(), b"")

    def test_move_falls_back_to_copy_store_expunge(self) -> None:
        d = self.client.uid_move("5", "Trash")
        self.assertEqual(self.written(), b'0001 UID COPY 5 "Trash"\r\n')
        self.feed(b"0001 OK done\r\n")
        self.assertEqual(self.written(), b"0002 UID STORE 5 +FLAGS.SILENT (\\Deleted)\r\n")
        self.feed(b"0002 OK done\r\n")
        self.assertEqual(self.written(), b"0003 EXPUNGE\r\n")
        self.feed(b"* 2 EXPUNGE\r\n0003 OK done\r\n")
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(self.unsolicited, [])

    def test_list_then_status(self) -> None:
        d = self.client.list_status()
        self.assertEqual(self.written(), b'0001 LIST "" "*"\r\n')
        self.feed(b'* LIST (\\HasNoChildren) "." INBOX\r\n* LIST (\\Noselect) "." "x"\r\n'
                  b'* LIST () "." "Gone"\r\n0001 OK done\r\n')
        self.assertEqual(self.written(), b"0002 STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)\r\n")
        self.feed(b"* STATUS INBOX (MESSAGES 2 UIDNEXT 3 UIDVALIDITY 4 UNSEEN 0)\r\n0002 OK done\r\n")
        self.assertEqual(self.written(), b'0003 STATUS "Gone" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)\r\n')
        self.feed(b"0003 NO Mailbox doesn't exist\r\n")
        result = self.successResultOf(d)
        self.assertEqual([(i.name, s) for i, s in result][1:], [("x", None), ("Gone", None)])
        status = result[0][1]
        assert status is not None
        self.assertEqual((status.name, status.messages, status.uidnext, status.highestmodseq), ("INBOX", 2, 3, None))

    def test_select_plain(self) -> None:
        d = self.client.select_mailbox("INBOX", condstore=True)
        self.assertEqual(self.written(), b"0001 SELECT INBOX\r\n")
        self.feed(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\n* OK [UIDNEXT 2] x\r\n0001 OK [READ-WRITE] ok\r\n")
        self.assertEqual(self.successResultOf(d).highestmodseq, None)


class IdleTests(ClientTestBase):
    def test_idle_events_done(self) -> None:
        events: list[tuple[str, Any]] = []
        d = self.client.idle(lambda kind, data: events.append((kind, data)))
        self.assertEqual(self.written(), b"0001 IDLE\r\n")
        self.assertNoResult(d)
        self.feed(b"+ idling\r\n")
        self.successResultOf(d)
        self.assertTrue(self.client.idling)
        self.feed(b"* 5 EXISTS\r\n* 2 EXPUNGE\r\n* VANISHED 7:8\r\n* 3 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (40))\r\n")
        self.assertEqual(events, [
            ("EXISTS", 5), ("EXPUNGE", 2), ("VANISHED", frozenset({7, 8})),
            ("FETCH", FetchedMessage(uid=9, flags=frozenset({"\\Seen"}), modseq=40, seq=3)),
        ])
        self.assertEqual(self.unsolicited, [])
        done = self.client.done()
        self.assertEqual(self.written(), b"DONE\r\n")
        self.assertNoResult(done)
        self.feed(b"0001 OK Idle completed.\r\n")
        self.successResultOf(done)
        self.assertFalse(self.client.idling)
        self.successResultOf(self.client.done())

    def test_command_during_idle_sends_done_first(self) -> None:
        self.client.idle(lambda kind, data: None)
        self.feed(b"+ idling\r\n")
        self.written()
        d = self.client.noop_poll()
        self.assertEqual(self.written(), b"DONE\r\n")
        self.feed(b"0001 OK Idle completed.\r\n")
        self.assertEqual(self.written(), b"0002 NOOP\r\n")
        self.feed(b"0002 OK done\r\n")
        self.assertEqual(self.successResultOf(d), [])

    def test_done_before_continuation(self) -> None:
        self.client.idle(lambda kind, data: None)
        self.written()
        done = self.client.done()
        self.assertEqual(self.written(), b"")
        self.feed(b"+ idling\r\n")
        self.assertEqual(self.written(), b"DONE\r\n")
        self.feed(b"0001 OK Idle completed.\r\n")
        self.successResultOf(done)

    def test_idle_refused(self) -> None:
        d = self.client.idle(lambda kind, data: None)
        self.feed(b"0001 BAD Unknown command\r\n")
        self.assertEqual(self.failureResultOf(d, IMAPError).value.status, "BAD")
        self.assertFalse(self.client.idling)

    def test_connection_lost_while_idling(self) -> None:
        self.client.idle(lambda kind, data: None)
        self.feed(b"+ idling\r\n")
        done = self.client.done()
        self.client.connectionLost(Failure(ConnectionLost()))
        self.failureResultOf(done, ConnectionLost)

    def test_handler_error_does_not_break_client(self) -> None:
        def broken(kind: str, data: Any) -> None:
            raise RuntimeError("boom")

        self.client.idle(broken)
        self.feed(b"+ idling\r\n* 1 EXISTS\r\n")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        done = self.client.done()
        self.feed(b"0001 OK Idle completed.\r\n")
        self.successResultOf(done)


class CapabilityCacheTests(SynchronousTestCase):
    def test_auth_mechanisms_in_stock_cache(self) -> None:
        client = EASIMAPClient()
        client.makeConnection(StringTransport())
        client.dataReceived(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN AUTH STARTTLS] hi\r\n")
        cache: Any = client._capCache
        self.assertEqual(cache[b"AUTH"], [b"LOGIN", b"PLAIN"])
        self.assertIsNone(cache[b"STARTTLS"])


class StockCommandTests(ClientTestBase):
    """The inherited IMAP4Client commands still work on our wire reader."""

    def test_stock_get_capabilities_and_logout(self) -> None:
        d = self.client.getCapabilities(useCache=0)
        self.assertEqual(self.written(), b"0001 CAPABILITY\r\n")
        self.feed(b"* CAPABILITY IMAP4rev1 IDLE AUTH=PLAIN\r\n0001 OK done\r\n")
        self.assertEqual(self.successResultOf(d), {b"IMAP4rev1": None, b"IDLE": None, b"AUTH": [b"PLAIN"]})
        d = self.client.logout()
        self.assertEqual(self.written(), b"0002 LOGOUT\r\n")
        self.feed(b"* BYE Logging out\r\n0002 OK Logout completed.\r\n")
        self.assertIsNone(self.successResultOf(d))
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.unsolicited, [("BYE", "Logging out")])
