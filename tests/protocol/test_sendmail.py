"""SendMail, SmartReply and SmartForward with a fake SMTP sender and a fake mail backend."""
from __future__ import annotations

import email
from email import policy as email_policy
from typing import Any, Iterable, Sequence

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.imap.client import FetchedMessage
from easyncd.backends.interfaces import (
    FOLDER_INBOX,
    FOLDER_SENT,
    MailBackendUnavailable,
    MailFolder,
)
from easyncd.backends.smtp import SMTPAuthFailed, SMTPRejected, SMTPUnavailable
from easyncd.protocol.commands import sendmail
from easyncd.protocol.commands.sendmail import (
    FORWARDED,
    SENT_IDS_COLLECTION,
    SendMailCommand,
    SmartForwardCommand,
    SmartReplyCommand,
    send_stored_message,
)
from easyncd.protocol.context import CommandResponse
from easyncd.protocol import dispatch as dispatch_module
from easyncd.protocol.dispatch import dispatch
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element, encode
from tests.protocol.helpers import make_clock, make_context, result_of

NS = "ComposeMail:"
CONFIG = ("policy.mode=none", "auth.default_domain=example.test")

NEW_MAIL = (b"From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>\r\n"
            b"Bcc: carol@example.test\r\nSubject: Hello\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nHi Bob\r\n")
REPLY_MAIL = (b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: Re: Report\r\n"
              b"Content-Type: text/plain; charset=utf-8\r\n\r\nThanks!\r\n")
ORIGINAL = (b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: Report\r\n"
            b"Message-ID: <orig-1@example.test>\r\nDate: Mon, 13 Nov 2023 10:00:00 +0000\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
            b"--XX\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThe report body.\r\n"
            b"--XX\r\nContent-Type: application/pdf; name=report.pdf\r\n"
            b"Content-Disposition: attachment; filename=report.pdf\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--XX--\r\n")


class FakeSMTP:
    """Records what it is asked to send; fails with ``error`` when set;
    ``hold`` keeps the next send pending until released."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str], bytes, str | None, str | None]] = []
        self.error: Exception | None = None
        self.hold = False
        self.pending: list[Deferred[None]] = []

    def send(self, sender: str, recipients: list[str], message: bytes, *,
             username: str | None = None, password: str | None = None) -> Deferred[None]:
        if self.error is not None:
            return fail(self.error)
        self.sent.append((sender, recipients, message, username, password))
        if self.hold:
            d: Deferred[None] = Deferred()
            self.pending.append(d)
            return d
        return succeed(None)


class FakeMail:
    """A mail backend with mailboxes in memory (the calls SendMail makes)."""

    def __init__(self, sent_folder: bool = True) -> None:
        self.boxes: dict[str, dict[int, tuple[set[str], bytes]]] = {"INBOX": {}, "Drafts": {}}
        if sent_folder:
            self.boxes["Sent"] = {}
        self.calls: list[str] = []
        self.fetch_error: Exception | None = None
        self.append_error: Exception | None = None

    def add(self, mailbox: str, message: bytes, flags: Iterable[str] = ()) -> int:
        box = self.boxes[mailbox]
        uid = max(box, default=0) + 1
        box[uid] = (set(flags), message)
        return uid

    def special_folder(self, user: str, password: str, eas_type: int) -> Deferred[str | None]:
        self.calls.append("special_folder")
        names = {FOLDER_SENT: "Sent", FOLDER_INBOX: "INBOX"}
        name = names.get(eas_type)
        return succeed(name if name in self.boxes else None)

    def create_folder(self, user: str, password: str, parent: str | None,
                      display_name: str) -> Deferred[MailFolder]:
        self.calls.append(f"create_folder {display_name}")
        self.boxes[display_name] = {}
        return succeed(MailFolder(display_name, None, "/", FOLDER_SENT, display_name))

    def fetch_messages(self, user: str, password: str, mailbox: str, uids: Sequence[int],
                       items: Sequence[str]) -> Deferred[list[FetchedMessage]]:
        self.calls.append(f"fetch {mailbox} {list(uids)} {list(items)}")
        if self.fetch_error is not None:
            return fail(self.fetch_error)
        box = self.boxes.get(mailbox, {})
        return succeed([FetchedMessage(uid=uid, sections={"": box[uid][1]})
                        for uid in uids if uid in box])

    def append(self, user: str, password: str, mailbox: str, message: bytes,
               flags: Iterable[str] = (), date: Any = None) -> Deferred[int]:
        self.calls.append(f"append {mailbox}")
        if self.append_error is not None:
            return fail(self.append_error)
        return succeed(self.add(mailbox, message, flags))

    def set_flags(self, user: str, password: str, mailbox: str, uids: Sequence[int],
                  add: Iterable[str] = (), remove: Iterable[str] = ()
                  ) -> Deferred[dict[int, frozenset[str]]]:
        self.calls.append(f"set_flags {mailbox} {list(uids)} {list(add)}")
        result = {}
        for uid in uids:
            flags, _ = self.boxes[mailbox][uid]
            flags.update(add)
            flags.difference_update(remove)
            result[uid] = frozenset(flags)
        return succeed(result)

    def delete(self, user: str, password: str, mailbox: str, uids: Sequence[int],
               to_trash: bool) -> Deferred[dict[int, int]]:
        self.calls.append(f"delete {mailbox} {list(uids)}")
        for uid in uids:
            self.boxes[mailbox].pop(uid, None)
        return succeed({})


class FakePush:
    def __init__(self) -> None:
        self.notified: list[tuple[str, list[str]]] = []

    def notify(self, user: str, topics: Iterable[str]) -> None:
        self.notified.append((user, list(topics)))


def wbxml_request(command: str, mime: bytes, client_id: str = "c1", *, save: bool = True,
                  replace: bool = False, folder_id: str | None = None,
                  item_id: str | None = None, long_id: str | None = None) -> bytes:
    root = Element(NS + command)
    root.add(NS + "ClientId", client_id)
    if save:
        root.add(NS + "SaveInSentItems")
    if replace:
        root.add(NS + "ReplaceMime")
    if folder_id or item_id or long_id:
        source = root.add(NS + "Source")
        if folder_id:
            source.add(NS + "FolderId", folder_id)
        if item_id:
            source.add(NS + "ItemId", item_id)
        if long_id:
            source.add(NS + "LongId", long_id)
    root.add(NS + "Mime", mime)
    return encode(root)


def status(response: CommandResponse) -> str | None:
    assert response.body is not None, response
    return response.body.findtext(NS + "Status")


def parsed(message: bytes) -> email.message.Message:
    return email.message_from_bytes(message, policy=email_policy.compat32)


def register(case: SynchronousTestCase) -> None:
    """The three commands in the dispatcher's registry (whether or not the
    real registry has them yet)."""
    commands = dict(dispatch_module.COMMANDS)
    for cls in (SendMailCommand, SmartReplyCommand, SmartForwardCommand):
        commands[cls.name] = cls
    case.patch(dispatch_module, "COMMANDS", commands)


class ComposeCommandTests(SynchronousTestCase):
    def setUp(self) -> None:
        register(self)
        self.clock = make_clock()
        self.store: Any = MemoryStateStore()
        result_of(self.store.register_account("dev1", "alice", "TestDevice", None,
                                              self.clock.seconds()))
        self.inbox_folder = result_of(self.store.add_folder(
            "alice", "0", "Inbox", 2, "imap:INBOX")).server_id
        self.calendar_folder = result_of(self.store.add_folder(
            "alice", "0", "Calendar", 8, "groupware:calendar:default")).server_id
        self.smtp = FakeSMTP()
        self.mail = FakeMail()
        self.push = FakePush()
        self.original_uid = self.mail.add("INBOX", ORIGINAL, ["\\Seen"])

    def run_command(self, command: str, body: bytes, version: str = "16.1",
                    parameters: dict[str, str] | None = None) -> CommandResponse:
        ctx = make_context(self.store, command, version, config_overrides=CONFIG,
                           clock=self.clock, parameters=parameters,
                           services={"smtp": self.smtp, "mail": self.mail, "push": self.push})
        ctx.password = "pw"
        return result_of(dispatch(ctx, body))

    def server_id(self, uid: int | None = None) -> str:
        return f"{self.inbox_folder}:{uid or self.original_uid}"

    # -- SendMail ---------------------------------------------------------------------

    def test_sendmail_wbxml(self) -> None:
        response = self.run_command("SendMail", wbxml_request("SendMail", NEW_MAIL))
        self.assertEqual((response.http_status, response.body), (200, None))
        [(sender, recipients, message, username, password)] = self.smtp.sent
        self.assertEqual(sender, "alice@example.test")
        self.assertEqual(recipients, ["bob@example.test", "carol@example.test"])
        self.assertEqual((username, password), ("alice", "pw"))
        self.assertNotIn(b"Bcc:", message)
        [(flags, copy)] = self.mail.boxes["Sent"].values()
        self.assertEqual(flags, {"\\Seen"})
        self.assertIn(b"Bcc: carol@example.test", copy)
        self.assertTrue(copy.endswith(message))
        self.assertEqual(self.push.notified, [("alice", ["imap:Sent"])])

    def test_sendmail_without_save_in_sent(self) -> None:
        self.run_command("SendMail", wbxml_request("SendMail", NEW_MAIL, save=False))
        self.assertEqual(len(self.smtp.sent), 1)
        self.assertEqual(self.mail.boxes["Sent"], {})
        self.assertNotIn("append Sent", self.mail.calls)

    def test_sent_folder_created_when_missing(self) -> None:
        self.mail = FakeMail(sent_folder=False)
        self.run_command("SendMail", wbxml_request("SendMail", NEW_MAIL))
        self.assertIn("create_folder Sent", self.mail.calls)
        self.assertEqual(len(self.mail.boxes["Sent"]), 1)

    def test_sendmail_foreign_from_rewritten(self) -> None:
        mime = NEW_MAIL.replace(b"alice@example.test", b"mallory@evil.test")
        self.run_command("SendMail", wbxml_request("SendMail", mime))
        sender, _, message, _, _ = self.smtp.sent[0]
        self.assertEqual(sender, "alice@example.test")
        self.assertEqual(parsed(message)["From"], "Alice <alice@example.test>")

    def test_sendmail_query_form_12_1(self) -> None:
        response = self.run_command("SendMail", NEW_MAIL, "12.1",
                                    parameters={"SaveInSent": "T"})
        self.assertEqual((response.http_status, response.body), (200, None))
        self.assertEqual(len(self.smtp.sent), 1)
        self.assertEqual(len(self.mail.boxes["Sent"]), 1)

    def test_sendmail_query_form_2_5_no_save(self) -> None:
        response = self.run_command("SendMail", NEW_MAIL, "2.5",
                                    parameters={"SaveInSent": "F"})
        self.assertEqual(response.http_status, 200)
        self.assertEqual(len(self.smtp.sent), 1)
        self.assertEqual(self.mail.boxes["Sent"], {})

    def test_query_form_retry_not_sent_twice(self) -> None:
        for _ in range(2):
            response = self.run_command("SendMail", NEW_MAIL, "12.1",
                                        parameters={"SaveInSent": "T"})
            self.assertEqual(response.http_status, 200)
        self.assertEqual(len(self.smtp.sent), 1)
        self.assertEqual(len(self.mail.boxes["Sent"]), 1)

    def test_wbxml_body_at_12_1_is_not_mime(self) -> None:
        response = self.run_command("SendMail", b"\x03\x01j\x00", "12.1")
        self.assertEqual(response.http_status, 400)
        self.assertEqual(self.smtp.sent, [])

    def test_empty_body_refused(self) -> None:
        self.assertEqual(self.run_command("SendMail", b"", "12.1").http_status, 400)
        self.assertEqual(status(self.run_command("SendMail", b"")), "101")

    # -- errors ---------------------------------------------------------------------------

    def test_invalid_mime(self) -> None:
        response = self.run_command("SendMail", wbxml_request("SendMail", b"no headers here"))
        self.assertEqual(status(response), "107")
        self.assertEqual(self.smtp.sent, [])
        self.assertEqual(self.run_command("SendMail", b"no headers", "12.1").http_status, 400)

    def test_no_recipients(self) -> None:
        mime = b"From: alice@example.test\r\nSubject: x\r\n\r\nbody\r\n"
        self.assertEqual(status(self.run_command("SendMail", wbxml_request("SendMail", mime))),
                         "119")

    def test_missing_client_id_or_mime(self) -> None:
        root = Element(NS + "SendMail")
        root.add(NS + "Mime", NEW_MAIL)
        self.assertEqual(status(self.run_command("SendMail", encode(root))), "103")
        root = Element(NS + "SendMail")
        root.add(NS + "ClientId", "x")
        self.assertEqual(status(self.run_command("SendMail", encode(root))), "101")
        self.assertEqual(self.smtp.sent, [])

    def test_smtp_errors_map_to_status(self) -> None:
        cases = [
            (SMTPRejected(True, 550, "no such user", ("nobody@example.test",)), "116", 500),
            (SMTPRejected(True, 554, "rejected"), "120", 500),
            (SMTPRejected(True, 552, "too big"), "122", 500),
            (SMTPRejected(False, 450, "busy", ("busy@example.test",)), "111", 503),
            (SMTPUnavailable("down"), "111", 503),
            (SMTPAuthFailed("535"), "120", 500),
        ]
        for number, (error, code, http) in enumerate(cases):
            self.smtp.error = error
            response = self.run_command("SendMail",
                                        wbxml_request("SendMail", NEW_MAIL, f"e{number}"))
            self.assertEqual(status(response), code, error)
            old = self.run_command("SendMail", NEW_MAIL + str(number).encode(), "12.1",
                                   parameters={"SaveInSent": "T"})
            self.assertEqual(old.http_status, http, error)
        self.assertEqual(self.mail.boxes["Sent"], {})
        # Nothing was remembered as sent: a retry sends.
        self.smtp.error = None
        response = self.run_command("SendMail", wbxml_request("SendMail", NEW_MAIL, "e0"))
        self.assertEqual(response.body, None)
        self.assertEqual(len(self.smtp.sent), 1)

    def test_no_smtp_configured(self) -> None:
        ctx = make_context(self.store, "SendMail", config_overrides=CONFIG, clock=self.clock)
        response = result_of(dispatch(ctx, wbxml_request("SendMail", NEW_MAIL)))
        self.assertEqual(status(response), "110")

    def test_sent_copy_failure_still_success(self) -> None:
        self.mail.append_error = MailBackendUnavailable("imap down")
        response = self.run_command("SendMail", wbxml_request("SendMail", NEW_MAIL))
        self.assertEqual((response.http_status, response.body), (200, None))
        self.assertEqual(len(self.smtp.sent), 1)

    def test_unexpected_error_after_sending_still_success(self) -> None:
        self.mail.append_error = RuntimeError("bug")
        response = self.run_command("SmartReply", wbxml_request(
            "SmartReply", REPLY_MAIL, item_id=self.server_id()))
        self.assertEqual((response.http_status, response.body), (200, None))
        self.assertEqual(len(self.smtp.sent), 1)
        self.assertIn("\\Answered", self.mail.boxes["INBOX"][self.original_uid][0])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    # -- ClientId ----------------------------------------------------------------------------

    def test_same_client_id_not_sent_twice(self) -> None:
        body = wbxml_request("SendMail", NEW_MAIL, "same")
        self.assertEqual(self.run_command("SendMail", body).body, None)
        self.assertEqual(status(self.run_command("SendMail", body)), "118")
        self.assertEqual(len(self.smtp.sent), 1)
        self.assertEqual(len(self.mail.boxes["Sent"]), 1)
        state = result_of(self.store.get_sync_state("dev1", "alice", SENT_IDS_COLLECTION))
        self.assertIn('"same"', state.state)
        # Another ClientId is another message.
        self.run_command("SendMail", wbxml_request("SendMail", NEW_MAIL, "other"))
        self.assertEqual(len(self.smtp.sent), 2)

    def test_client_ids_forgotten_after_a_week(self) -> None:
        body = wbxml_request("SendMail", NEW_MAIL, "old")
        self.run_command("SendMail", body)
        self.clock.advance(sendmail.SENT_IDS_KEEP + 1)
        self.assertEqual(self.run_command("SendMail", body).body, None)
        self.assertEqual(len(self.smtp.sent), 2)

    def test_retry_while_sending_waits_for_the_outcome(self) -> None:
        self.smtp.hold = True
        body = wbxml_request("SendMail", NEW_MAIL, "slow")

        def start() -> Deferred[CommandResponse]:
            ctx = make_context(self.store, "SendMail", config_overrides=CONFIG,
                               clock=self.clock,
                               services={"smtp": self.smtp, "mail": self.mail})
            ctx.password = "pw"
            return Deferred.fromCoroutine(dispatch(ctx, body))

        first = start()
        first.cancel()  # the device went away; the send goes on
        self.failureResultOf(first)
        second = start()
        self.assertNoResult(second)
        self.assertEqual(len(self.smtp.sent), 1)
        self.smtp.pending[0].callback(None)
        self.assertEqual(status(self.successResultOf(second)), "118")
        self.assertEqual(len(self.smtp.sent), 1)
        self.assertEqual(len(self.mail.boxes["Sent"]), 1)

    def test_retry_after_failed_attempt_sends(self) -> None:
        self.smtp.hold = True
        body = wbxml_request("SendMail", NEW_MAIL, "flaky")
        ctx1 = make_context(self.store, "SendMail", config_overrides=CONFIG, clock=self.clock,
                            services={"smtp": self.smtp, "mail": self.mail})
        ctx2 = make_context(self.store, "SendMail", config_overrides=CONFIG, clock=self.clock,
                            services={"smtp": self.smtp, "mail": self.mail})
        first = Deferred.fromCoroutine(dispatch(ctx1, body))
        second = Deferred.fromCoroutine(dispatch(ctx2, body))
        self.smtp.pending.pop(0).errback(SMTPUnavailable("down"))
        self.assertEqual(status(self.successResultOf(first)), "111")
        # The waiting retry tried itself.
        self.assertEqual(len(self.smtp.sent), 2)
        self.smtp.pending.pop(0).callback(None)
        self.assertEqual(self.successResultOf(second).body, None)

    # -- SmartReply / SmartForward -----------------------------------------------------------

    def test_smart_reply_wbxml(self) -> None:
        response = self.run_command("SmartReply", wbxml_request(
            "SmartReply", REPLY_MAIL, folder_id=self.inbox_folder, item_id=self.server_id()))
        self.assertEqual((response.http_status, response.body), (200, None))
        [(_, recipients, message, _, _)] = self.smtp.sent
        self.assertEqual(recipients, ["bob@example.test"])
        sent = parsed(message)
        self.assertEqual(sent["In-Reply-To"], "<orig-1@example.test>")
        self.assertIn(b"The report body.", message)
        self.assertNotIn(b"report.pdf", message)
        self.assertEqual(self.mail.boxes["INBOX"][self.original_uid][0], {"\\Seen", "\\Answered"})
        self.assertIn(f"fetch INBOX [{self.original_uid}] ['BODY.PEEK[]']", self.mail.calls)
        self.assertIn(("alice", ["imap:Sent", "imap:INBOX"]), self.push.notified)

    def test_smart_reply_replace_mime(self) -> None:
        self.run_command("SmartReply", wbxml_request(
            "SmartReply", REPLY_MAIL, replace=True, folder_id=self.inbox_folder,
            item_id=self.server_id()))
        message = self.smtp.sent[0][2]
        self.assertNotIn(b"The report body.", message)
        self.assertEqual(parsed(message)["In-Reply-To"], "<orig-1@example.test>")

    def test_smart_forward_keeps_attachments(self) -> None:
        mime = REPLY_MAIL.replace(b"Re: Report", b"Fw: Report").replace(
            b"To: bob@example.test", b"To: dave@example.test")
        response = self.run_command("SmartForward", wbxml_request(
            "SmartForward", mime, item_id=self.server_id()))
        self.assertEqual(response.body, None)
        message = parsed(self.smtp.sent[0][2])
        self.assertEqual(message.get_content_type(), "multipart/mixed")
        names = [part.get_filename() for part in message.walk() if part.get_filename()]
        self.assertEqual(names, ["report.pdf"])
        self.assertIn(FORWARDED, self.mail.boxes["INBOX"][self.original_uid][0])

    def test_smart_forward_query_form_12_1(self) -> None:
        mime = REPLY_MAIL.replace(b"To: bob@example.test", b"To: dave@example.test")
        response = self.run_command(
            "SmartForward", mime, "12.1",
            parameters={"ItemId": self.server_id(), "CollectionId": self.inbox_folder,
                        "SaveInSent": "T"})
        self.assertEqual((response.http_status, response.body), (200, None))
        self.assertIn(b"report.pdf", self.smtp.sent[0][2])
        self.assertIn(FORWARDED, self.mail.boxes["INBOX"][self.original_uid][0])
        self.assertEqual(len(self.mail.boxes["Sent"]), 1)

    def test_smart_reply_query_form_2_5_plain_item_id(self) -> None:
        response = self.run_command(
            "SmartReply", REPLY_MAIL, "2.5",
            parameters={"ItemId": str(self.original_uid), "CollectionId": self.inbox_folder})
        self.assertEqual(response.http_status, 200)
        self.assertIn("\\Answered", self.mail.boxes["INBOX"][self.original_uid][0])

    def test_smart_reply_by_long_id(self) -> None:
        response = self.run_command("SmartReply", wbxml_request(
            "SmartReply", REPLY_MAIL, long_id=self.server_id()))
        self.assertEqual(response.body, None)
        self.assertIn("\\Answered", self.mail.boxes["INBOX"][self.original_uid][0])

    def test_smart_reply_unknown_item(self) -> None:
        for item in (self.server_id(999), "77:1", "nonsense", f"{self.inbox_folder}:abc"):
            response = self.run_command("SmartReply", wbxml_request(
                "SmartReply", REPLY_MAIL, f"c-{item}", item_id=item))
            self.assertEqual(status(response), "150", item)
        old = self.run_command("SmartReply", REPLY_MAIL, "12.1",
                               parameters={"ItemId": self.server_id(999)})
        self.assertEqual(old.http_status, 500)
        self.assertEqual(self.run_command("SmartReply", REPLY_MAIL, "12.1").http_status, 400)
        self.assertEqual(self.smtp.sent, [])

    def test_smart_reply_without_source(self) -> None:
        self.assertEqual(status(self.run_command(
            "SmartReply", wbxml_request("SmartReply", REPLY_MAIL))), "103")

    def test_smart_reply_original_unreachable(self) -> None:
        self.mail.fetch_error = MailBackendUnavailable("down")
        response = self.run_command("SmartReply", wbxml_request(
            "SmartReply", REPLY_MAIL, item_id=self.server_id()))
        self.assertEqual(status(response), "111")
        self.assertEqual(self.smtp.sent, [])

    def test_smart_reply_refused_leaves_original_unflagged(self) -> None:
        self.smtp.error = SMTPRejected(True, 550, "unknown", ("bob@example.test",))
        response = self.run_command("SmartReply", wbxml_request(
            "SmartReply", REPLY_MAIL, item_id=self.server_id()))
        self.assertEqual(status(response), "116")
        self.assertEqual(self.mail.boxes["INBOX"][self.original_uid][0], {"\\Seen"})
        self.assertEqual(self.mail.boxes["Sent"], {})

    def test_smart_forward_of_calendar_item_sends_device_message(self) -> None:
        response = self.run_command("SmartForward", wbxml_request(
            "SmartForward", REPLY_MAIL, item_id=f"{self.calendar_folder}:event-1"))
        self.assertEqual(response.body, None)
        self.assertEqual(len(self.smtp.sent), 1)
        self.assertFalse(any(call.startswith("fetch") for call in self.mail.calls))

    # -- a stored message (16.x drafts) ----------------------------------------------------------

    def test_send_stored_draft(self) -> None:
        uid = self.mail.add("Drafts", NEW_MAIL, ["\\Draft"])
        ctx = make_context(self.store, "Sync", config_overrides=CONFIG, clock=self.clock,
                           services={"smtp": self.smtp, "mail": self.mail})
        ctx.password = "pw"
        result_of(send_stored_message(ctx, "Drafts", uid))
        self.assertEqual(len(self.smtp.sent), 1)
        self.assertEqual(self.mail.boxes["Drafts"], {})
        self.assertEqual(len(self.mail.boxes["Sent"]), 1)

    def test_send_stored_draft_failure_keeps_it(self) -> None:
        uid = self.mail.add("Drafts", NEW_MAIL, ["\\Draft"])
        self.smtp.error = SMTPUnavailable("down")
        ctx = make_context(self.store, "Sync", config_overrides=CONFIG, clock=self.clock,
                           services={"smtp": self.smtp, "mail": self.mail})
        with self.assertRaises(sendmail.SendFailure) as caught:
            result_of(send_stored_message(ctx, "Drafts", uid))
        self.assertEqual(caught.exception.status, 111)
        self.assertIn(uid, self.mail.boxes["Drafts"])


class ParseTests(SynchronousTestCase):
    def test_wbxml_fields(self) -> None:
        root = Element(NS + "SmartForward")
        root.add(NS + "ClientId", "abc")
        root.add(NS + "SaveInSentItems")
        source = root.add(NS + "Source")
        source.add(NS + "FolderId", "5")
        source.add(NS + "ItemId", "5:12")
        source.add(NS + "InstanceId", "2023-11-14T10:00:00.000Z")
        root.add(NS + "Mime", "From: a@b\r\n\r\nx")
        request = sendmail.parse_wbxml(sendmail.Kind.FORWARD, root)
        self.assertEqual(
            (request.client_id, request.save_in_sent, request.replace_mime, request.folder_id,
             request.item_id, request.instance_id, request.mime),
            ("abc", True, False, "5", "5:12", "2023-11-14T10:00:00.000Z", b"From: a@b\r\n\r\nx"),
        )

    def test_wrong_top_element(self) -> None:
        with self.assertRaises(sendmail.SendFailure):
            sendmail.parse_wbxml(sendmail.Kind.SEND, Element(NS + "SmartReply"))

    def test_commands_registered_names(self) -> None:
        self.assertEqual([SendMailCommand.name, SmartReplyCommand.name, SmartForwardCommand.name],
                         ["SendMail", "SmartReply", "SmartForward"])


class UnregisteredDeviceTests(SynchronousTestCase):
    """A device that never ran FolderSync or Provision (provisioning off)."""

    def test_client_id_remembered_for_new_device(self) -> None:
        register(self)
        clock = make_clock()
        store: Any = MemoryStateStore()
        smtp = FakeSMTP()
        body = wbxml_request("SendMail", NEW_MAIL, "first", save=False)
        for expected in (None, "118"):
            ctx = make_context(store, "SendMail", config_overrides=CONFIG, clock=clock,
                               services={"smtp": smtp})
            response = result_of(dispatch(ctx, body))
            self.assertEqual(None if response.body is None else status(response), expected)
        self.assertEqual(len(smtp.sent), 1)
        self.assertIsNotNone(result_of(store.get_account("dev1", "alice")))
