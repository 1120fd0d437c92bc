"""Byte-exact tests of EASIMAPClient's NOTIFY (RFC 5465) and of STATUS / LIST events."""
from __future__ import annotations

from typing import Any

from easyncd.backends.imap.client import IMAPError, MailboxInfo, MailboxStatus
from tests.backends.imap.test_client import ClientTestBase

NOTIFY_CAPS = b"IMAP4rev1 LITERAL+ ENABLE IDLE CONDSTORE QRESYNC LIST-EXTENDED LIST-STATUS NOTIFY"


class NotifyCommandTests(ClientTestBase):
    caps = NOTIFY_CAPS

    def test_notify_set_status_mailboxes(self) -> None:
        d = self.client.notify_set(["INBOX", "Sent", "Entw\u00fcrfe", 'a "b"'], status=True)
        self.assertEqual(
            self.written(),
            b'0001 NOTIFY SET STATUS (SELECTED (MessageNew MessageExpunge FlagChange)) '
            b'(MAILBOXES (INBOX "Sent" "Entw&APw-rfe" "a \\"b\\"") (MessageNew MessageExpunge FlagChange))\r\n')
        self.assertFalse(self.client.notifying)
        self.feed(b"* STATUS Sent (MESSAGES 2 UIDNEXT 3 UIDVALIDITY 7 UNSEEN 1 HIGHESTMODSEQ 9)\r\n"
                  b'* STATUS "Entw&APw-rfe" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 8 UNSEEN 0 HIGHESTMODSEQ 1)\r\n'
                  b"0001 OK NOTIFY completed\r\n")
        self.assertEqual(self.successResultOf(d), [
            MailboxStatus("Sent", 2, 3, 7, 1, 9), MailboxStatus("Entw\u00fcrfe", 0, 1, 8, 0, 1)])
        self.assertTrue(self.client.notifying)
        self.assertEqual(self.unsolicited, [])
        # Dovecot repeats them after the OK: events then.
        self.feed(b"* STATUS Sent (MESSAGES 2 UIDNEXT 3 UIDVALIDITY 7 UNSEEN 1 HIGHESTMODSEQ 9)\r\n")
        self.assertEqual(self.unsolicited, [("STATUS", MailboxStatus("Sent", 2, 3, 7, 1, 9))])

    def test_notify_set_other_scopes_and_none(self) -> None:
        d = self.client.notify_set(scope="personal", events=("MessageNew", "MessageExpunge"), selected_events=None)
        self.assertEqual(self.written(), b"0001 NOTIFY SET (PERSONAL (MessageNew MessageExpunge))\r\n")
        self.feed(b"0001 OK done\r\n")
        self.assertEqual(self.successResultOf(d), [])
        d = self.client.notify_set(["Lists"], scope="SUBTREE", selected_events=())
        self.assertEqual(self.written(), b'0002 NOTIFY SET (SELECTED NONE) (SUBTREE ("Lists") '
                                         b"(MessageNew MessageExpunge FlagChange))\r\n")
        self.feed(b"0002 OK done\r\n")
        self.successResultOf(d)
        d2 = self.client.notify_none()
        self.assertEqual(self.written(), b"0003 NOTIFY NONE\r\n")
        self.assertTrue(self.client.notifying)
        self.feed(b"0003 OK done\r\n")
        self.successResultOf(d2)
        self.assertFalse(self.client.notifying)

    def test_bad_arguments(self) -> None:
        with self.assertRaises(ValueError):
            self.client.notify_set([])  # MAILBOXES needs names
        with self.assertRaises(ValueError):
            self.client.notify_set(["INBOX"], scope="PERSONAL")
        with self.assertRaises(ValueError):
            self.client.notify_set(["INBOX"], scope="EVERYWHERE")
        with self.assertRaises(ValueError):
            self.client.notify_set(["INBOX"], events=("Message New",))
        with self.assertRaises(ValueError):
            self.client.notify_set(events=(), selected_events=None)
        self.assertEqual(self.written(), b"")

    def test_refused(self) -> None:
        d = self.client.notify_set(["INBOX"])
        self.written()
        self.feed(b"0001 NO [BADEVENT (MessageNew MessageExpunge)] Unsupported event\r\n")
        error = self.failureResultOf(d, IMAPError).value
        self.assertEqual((error.code, error.status), ("BADEVENT", "NO"))
        self.assertFalse(self.client.notifying)


class NotifyEventTests(ClientTestBase):
    caps = NOTIFY_CAPS

    def setUp(self) -> None:
        super().setUp()
        d = self.client.notify_set(["INBOX", "Sent", "Other"])
        self.written()
        self.feed(b"0001 OK done\r\n")
        self.successResultOf(d)

    def test_status_events_during_idle(self) -> None:
        events: list[tuple[str, Any]] = []
        d = self.client.idle(lambda kind, data: events.append((kind, data)))
        self.assertEqual(self.written(), b"0002 IDLE\r\n")
        self.feed(b"+ idling\r\n")
        self.successResultOf(d)
        self.feed(b"* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 5 UNSEEN 1 HIGHESTMODSEQ 2)\r\n"
                  b"* STATUS Other (MESSAGES 1 UIDNEXT 2 UNSEEN 1 HIGHESTMODSEQ 2)\r\n"
                  b"* STATUS Other (HIGHESTMODSEQ 3)\r\n"
                  b'* LIST () "/" NewBox\r\n'
                  b'* LIST (\\NonExistent) "/" Gone\r\n'
                  b'* LIST () "/" "Renamed" ("OLDNAME" ("Old&APw-"))\r\n')
        self.assertEqual(events, [
            ("STATUS", MailboxStatus("INBOX", 1, 2, 5, 1, 2)),
            ("STATUS", MailboxStatus("Other", messages=1, uidnext=2, unseen=1, highestmodseq=2)),
            ("STATUS", MailboxStatus("Other", highestmodseq=3)),
            ("LIST", MailboxInfo("NewBox", "/", frozenset(), None, b"NewBox")),
            ("LIST", MailboxInfo("Gone", "/", frozenset({"\\NonExistent"}), None, b"Gone")),
            ("LIST", MailboxInfo("Renamed", "/", frozenset(), None, b"Renamed", "Old\u00fc")),
        ])
        self.assertEqual(self.unsolicited, [])
        done = self.client.done()
        self.assertEqual(self.written(), b"DONE\r\n")
        self.feed(b"0002 OK Idle completed\r\n")
        self.successResultOf(done)

    def test_status_events_with_no_command_and_during_other_commands(self) -> None:
        self.feed(b"* STATUS Sent (MESSAGES 2 UIDNEXT 3 UIDVALIDITY 7 UNSEEN 2 HIGHESTMODSEQ 3)\r\n")
        self.assertEqual(self.unsolicited, [("STATUS", MailboxStatus("Sent", 2, 3, 7, 2, 3))])
        self.unsolicited.clear()
        # During a STATUS of another mailbox: only the asked one is the answer.
        d = self.client.status("INBOX")
        self.assertEqual(self.written(), b"0002 STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)\r\n")
        self.feed(b"* STATUS Other (MESSAGES 4 UIDNEXT 5 UNSEEN 0 HIGHESTMODSEQ 8)\r\n"
                  b"* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 5 UNSEEN 0 HIGHESTMODSEQ 4)\r\n"
                  b"0002 OK Status completed\r\n")
        self.assertEqual(self.successResultOf(d), MailboxStatus("INBOX", 1, 2, 5, 0, 4))
        self.assertEqual(self.unsolicited, [
            ("STATUS", MailboxStatus("Other", messages=4, uidnext=5, unseen=0, highestmodseq=8))])
        self.unsolicited.clear()
        # During a NOOP.
        noop = self.client.noop_poll()
        self.written()
        self.feed(b"* STATUS INBOX (HIGHESTMODSEQ 6)\r\n0003 OK NOOP completed\r\n")
        self.assertEqual(self.successResultOf(noop), [("STATUS", MailboxStatus("INBOX", highestmodseq=6))])
        self.assertEqual(self.unsolicited, [("STATUS", MailboxStatus("INBOX", highestmodseq=6))])

    def test_list_answers_are_not_events(self) -> None:
        d = self.client.list_status()
        self.written()
        self.feed(b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
                  b"* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 5 UNSEEN 0 HIGHESTMODSEQ 4)\r\n"
                  b"0002 OK List completed\r\n")
        [(info, status)] = self.successResultOf(d)
        self.assertEqual((info.name, status), ("INBOX", MailboxStatus("INBOX", 1, 2, 5, 0, 4)))
        self.assertEqual(self.unsolicited, [])

    def test_status_name_as_utf8_literal(self) -> None:
        # Dovecot 2.3 sends non-ASCII names of NOTIFY's STATUS as UTF-8 literals.
        name = "Entw\u00fcrfe".encode("utf-8")
        self.feed(b"* STATUS {%d}\r\n" % len(name) + name + b" (MESSAGES 1 UIDNEXT 2 UNSEEN 1 HIGHESTMODSEQ 2)\r\n")
        self.assertEqual(self.unsolicited, [
            ("STATUS", MailboxStatus("Entw\u00fcrfe", messages=1, uidnext=2, unseen=1, highestmodseq=2))])

    def test_overflow(self) -> None:
        self.feed(b"* OK [NOTIFICATIONOVERFLOW] Too many events\r\n")
        self.assertEqual(self.unsolicited, [("NOTIFICATIONOVERFLOW", "Too many events")])
        self.assertFalse(self.client.notifying)


class StatusWithoutNotifyTests(ClientTestBase):
    """Without NOTIFY on, a STATUS answer is the command's whatever name the server echoes."""

    def test_status_answer_with_other_spelling(self) -> None:
        d = self.client.status("Entw\u00fcrfe", ["MESSAGES"])
        self.assertEqual(self.written(), b'0001 STATUS "Entw&APw-rfe" (MESSAGES)\r\n')
        self.feed(b'* STATUS "entw&APw-rfe" (MESSAGES 3)\r\n0001 OK done\r\n')
        self.assertEqual(self.successResultOf(d), MailboxStatus("Entw\u00fcrfe", messages=3))
        self.assertEqual(self.unsolicited, [])
