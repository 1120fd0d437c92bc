"""SendMail, SmartReply and SmartForward through the real daemon, real Postfix and Dovecot.

The daemon authenticates against Dovecot (IMAP LOGIN), reads mail from it and
sends through Postfix's submission port (STARTTLS + AUTH as the user), which
delivers back into Dovecot, so each sent message is seen arriving.
"""
from __future__ import annotations

import email
import uuid
from email import policy as email_policy
from typing import Any

from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from easyncd.backends.imap.client import IMAPError
from easyncd.backends.imap.connect import connect_imap
from easyncd.store import open_store
from easyncd.testing.daemon import SharedMailDaemon, mail_options, shared, folder_sync, wbxml_of
from easyncd.testing.smtpserver import MailServers, wait_for_inbox
from easyncd.wbxml import Element

USERS = {"alice": "alice-pw", "bob": "bob-pw"}
NS = "ComposeMail:"
RFC822 = "message/rfc822"

ORIGINAL = (
    "From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: Quarterly report\r\n"
    "Message-ID: <report-{marker}@example.test>\r\nDate: Mon, 13 Nov 2023 10:00:00 +0000\r\n"
    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BOUNDARY\r\n\r\n"
    "--BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe numbers are in.\r\n"
    "--BOUNDARY\r\nContent-Type: application/pdf; name=report.pdf\r\n"
    "Content-Disposition: attachment; filename=report.pdf\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJeLjz9MK\r\n--BOUNDARY--\r\n"
).replace("{marker}", "{0}")


def mime(to: str, subject: str, body: str = "Hello from the phone") -> bytes:
    return (f"From: Alice <alice@example.test>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n").encode("utf-8")


def compose_request(command: str, message: bytes, client_id: str, *,
                    folder_id: str | None = None, item_id: str | None = None) -> Element:
    root = Element(NS + command)
    root.add(NS + "ClientId", client_id)
    root.add(NS + "SaveInSentItems")
    if item_id is not None:
        source = root.add(NS + "Source")
        if folder_id is not None:
            source.add(NS + "FolderId", folder_id)
        source.add(NS + "ItemId", item_id)
    root.add(NS + "Mime", message)
    return root


class _Environment(SharedMailDaemon):
    """Postfix + Dovecot + the daemon, shared by this module's tests."""

    def __init__(self) -> None:
        self.servers = MailServers(USERS)
        s = self.servers
        super().__init__(s, lambda: mail_options(s.dovecot, smtp_port=s.submission_port,
                                         domain=s.domain, **{"policy.mode": "none"}),
                         prefix="easyncd-send-", own_database=True)


def environment() -> _Environment:
    return shared(__name__, _Environment)


class MailSendTests(TestCase):
    """The three commands, old and new forms, end to end."""

    timeout = 120

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.env = environment()
        self.servers = self.env.servers
        self.daemon = self.env.daemon
        self.device = "dev" + uuid.uuid4().hex[:10]

    # -- helpers -----------------------------------------------------------------------

    def post(self, command: str, body: Any, version: str, **kwargs: Any) -> Any:
        kwargs.setdefault("content_type", RFC822 if isinstance(body, bytes) else
                          "application/vnd.ms-sync.wbxml")
        response = self.daemon.post(command, body, user="alice", password=USERS["alice"],
                                    device_id=self.device, version=version, **kwargs)
        return response

    async def mailbox(self, user: str, name: str) -> list[tuple[int, frozenset[str], bytes]]:
        """(uid, flags, message) of every message in a mailbox ([] if it does not exist)."""
        s = self.servers
        client = await connect_imap(self.reactor, s.host, s.dovecot.imap_port, "none", None,
                                    user, USERS[user], timeout=10, enable=())
        try:
            try:
                selected = await client.select_mailbox(name, readonly=True)
            except IMAPError:
                return []
            if not selected.exists:
                return []
            fetched, _ = await client.uid_fetch("1:*", ["FLAGS", "BODY.PEEK[]"])
            return [(m.uid, m.flags or frozenset(), m.sections[""])
                    for m in sorted(fetched, key=lambda m: m.uid)]
        finally:
            await client.logout_quietly()

    async def append(self, user: str, name: str, message: bytes) -> int:
        s = self.servers
        client = await connect_imap(self.reactor, s.host, s.dovecot.imap_port, "none", None,
                                    user, USERS[user], timeout=10, enable=())
        try:
            uid = await client.append_message(name, message, ["\\Seen"])
            assert uid is not None
            return int(uid)
        finally:
            await client.logout_quietly()

    async def arrived(self, user: str, marker: str, count: int = 1) -> list[bytes]:
        """The messages of ``user``'s INBOX holding ``marker`` once ``count`` arrived."""
        s = self.servers
        deadline = self.reactor.seconds() + 20
        while True:
            messages = await wait_for_inbox(self.reactor, s.host, s.dovecot.imap_port, user,
                                            USERS[user], 0)
            found = [m for m in messages if marker.encode() in m]
            if len(found) >= count or self.reactor.seconds() > deadline:
                return found
            await deferLater(self.reactor, 0.2)

    async def in_sent(self, marker: str) -> list[bytes]:
        return [m for _, _, m in await self.mailbox("alice", "Sent") if marker.encode() in m]

    async def inbox_folder(self) -> str:
        """alice's INBOX folder server id: from FolderSync when it lists mail
        folders, else registered in the store the way FolderSync does."""
        answer = wbxml_of(self.post("FolderSync", folder_sync(), "16.1"))
        for add in answer.findall("FolderHierarchy:Changes/FolderHierarchy:Add"):
            if add.findtext("FolderHierarchy:Type") == "2":
                return add.findtext("FolderHierarchy:ServerId") or ""
        store: Any = open_store(self.env.database, self.reactor)
        try:
            for folder in await store.list_folders("alice"):
                if folder.backend_id == "imap:INBOX":
                    return str(folder.server_id)
            folder = await store.add_folder("alice", "0", "Inbox", 2, "imap:INBOX")
            return str(folder.server_id)
        finally:
            await store.close()

    # -- SendMail ------------------------------------------------------------------------

    async def test_sendmail_12_1_query_form(self) -> None:
        marker = "q121-" + uuid.uuid4().hex[:8]
        response = self.post("SendMail", mime("Bob <bob@example.test>", marker), "12.1",
                             extra_query={"SaveInSent": "T"})
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.content, b"")
        [delivered] = await self.arrived("bob", marker)
        message = email.message_from_bytes(delivered, policy=email_policy.compat32)
        self.assertEqual(message["From"], "Alice <alice@example.test>")
        self.assertTrue(message["Message-ID"])
        [copy] = await self.in_sent(marker)
        self.assertIn(b"Hello from the phone", copy)

    async def test_sendmail_16_1_wbxml_and_client_id(self) -> None:
        marker = "w161-" + uuid.uuid4().hex[:8]
        body = mime("bob@example.test", marker)
        body = body.replace(b"To: bob@example.test\r\n",
                            b"To: bob@example.test\r\nBcc: alice@example.test\r\n")
        request = compose_request("SendMail", body, "client-" + marker)
        response = self.post("SendMail", request, "16.1")
        self.assertEqual((response.status_code, response.content), (200, b""), response.text)
        self.assertEqual(len(await self.arrived("bob", marker)), 1)
        # The Bcc recipient got it too, without seeing the Bcc header.
        [to_self] = await self.arrived("alice", marker)
        self.assertNotIn(b"Bcc:", to_self)
        [copy] = await self.in_sent(marker)
        self.assertIn(b"Bcc: alice@example.test", copy)
        flags = [f for _, f, m in await self.mailbox("alice", "Sent") if marker.encode() in m]
        self.assertEqual(flags, [frozenset({"\\Seen"})])

        # The same ClientId again: not sent twice.
        again = wbxml_of(self.post("SendMail", request, "16.1"))
        self.assertEqual(again.findtext(NS + "Status"), "118")
        later = "later-" + uuid.uuid4().hex[:8]
        self.post("SendMail", compose_request("SendMail", mime("bob@example.test", later),
                                              "client-" + later), "16.1")
        await self.arrived("bob", later)
        self.assertEqual(len(await self.arrived("bob", marker)), 1)
        self.assertEqual(len(await self.in_sent(marker)), 1)

    async def test_refused_recipient(self) -> None:
        marker = "refused-" + uuid.uuid4().hex[:8]
        request = compose_request("SendMail", mime("nobody@example.test", marker), marker)
        answer = wbxml_of(self.post("SendMail", request, "16.1"))
        self.assertEqual(answer.findtext(NS + "Status"), "116")
        old = self.post("SendMail", mime("nobody@example.test", marker), "12.1",
                        extra_query={"SaveInSent": "T"})
        self.assertEqual(old.status_code, 500)
        self.assertEqual(await self.in_sent(marker), [])
        # The refusal is not remembered as sent: the fixed message goes out.
        fixed = compose_request("SendMail", mime("bob@example.test", marker), marker)
        self.assertEqual(self.post("SendMail", fixed, "16.1").content, b"")
        self.assertEqual(len(await self.arrived("bob", marker)), 1)

    # -- SmartReply / SmartForward --------------------------------------------------------------

    async def test_smart_reply_16_1_and_forward_12_1(self) -> None:
        marker = uuid.uuid4().hex[:8]
        uid = await self.append("alice", "INBOX", ORIGINAL.format(marker).encode())
        folder = await self.inbox_folder()
        server_id = f"{folder}:{uid}"

        reply_marker = "reply-" + marker
        reply = mime("bob@example.test", "Re: Quarterly report " + reply_marker, "Thanks!")
        response = self.post("SmartReply", compose_request(
            "SmartReply", reply, "client-" + reply_marker, folder_id=folder, item_id=server_id),
            "16.1")
        self.assertEqual((response.status_code, response.content), (200, b""), response.text)
        [delivered] = await self.arrived("bob", reply_marker)
        message = email.message_from_bytes(delivered, policy=email_policy.compat32)
        self.assertEqual(message["In-Reply-To"], f"<report-{marker}@example.test>")
        self.assertIn(b"The numbers are in.", delivered)
        self.assertNotIn(b"report.pdf", delivered)

        forward_marker = "forward-" + marker
        forward = mime("bob@example.test", "Fw: Quarterly report " + forward_marker, "FYI")
        response = self.post("SmartForward", forward, "12.1", extra_query={
            "ItemId": server_id, "CollectionId": folder, "SaveInSent": "T"})
        self.assertEqual(response.status_code, 200, response.text)
        [delivered] = await self.arrived("bob", forward_marker)
        message = email.message_from_bytes(delivered, policy=email_policy.compat32)
        attachments = [(part.get_filename(), part.get_payload(decode=True))
                       for part in message.walk() if part.get_filename()]
        self.assertEqual(attachments, [("report.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")])
        self.assertIn(b"The numbers are in.", delivered)

        [flags] = [f for u, f, _ in await self.mailbox("alice", "INBOX") if u == uid]
        self.assertTrue({"\\Answered", "$Forwarded"} <= flags, flags)
        self.assertEqual(len(await self.in_sent(forward_marker)), 1)
        self.assertEqual(len(await self.in_sent(reply_marker)), 1)

    async def test_smart_reply_unknown_item(self) -> None:
        folder = await self.inbox_folder()
        marker = "missing-" + uuid.uuid4().hex[:8]
        answer = wbxml_of(self.post("SmartReply", compose_request(
            "SmartReply", mime("bob@example.test", marker), marker, folder_id=folder,
            item_id=f"{folder}:999999"), "16.1"))
        self.assertEqual(answer.findtext(NS + "Status"), "150")
        self.assertEqual(await self.in_sent(marker), [])

    # -- 16.x drafts -----------------------------------------------------------------------

    async def test_sync_add_draft_with_send(self) -> None:
        """A draft added in Drafts with Email2:Send is sent, filed in Sent and
        removed from Drafts."""
        marker = "draft-" + uuid.uuid4().hex[:8]
        s = self.servers
        client = await connect_imap(self.reactor, s.host, s.dovecot.imap_port, "none", None,
                                    "alice", USERS["alice"], timeout=10, enable=())
        try:
            await client.create_mailbox("Drafts")  # found by its common name
        except IMAPError:
            pass  # made by an earlier test
        finally:
            await client.logout_quietly()
        hierarchy = wbxml_of(self.post("FolderSync", folder_sync(), "16.1"))
        drafts = next(add.findtext("FolderHierarchy:ServerId") or ""
                      for add in hierarchy.findall("FolderHierarchy:Changes/FolderHierarchy:Add")
                      if add.findtext("FolderHierarchy:Type") == "3")

        def sync(key: str, add: Element | None = None) -> Element:
            request = Element("AirSync:Sync")
            collection = request.add("AirSync:Collections").add("AirSync:Collection")
            collection.add("AirSync:SyncKey", key)
            collection.add("AirSync:CollectionId", drafts)
            if add is not None:
                collection.add("AirSync:GetChanges", "0")
                collection.add("AirSync:Commands").append(add)
            return wbxml_of(self.post("Sync", request, "16.1"))

        first = sync("0")
        key = first.findtext("AirSync:Collections/AirSync:Collection/AirSync:SyncKey") or ""
        add = Element("AirSync:Add")
        add.add("AirSync:ClientId", "c-" + marker)
        app = add.add("AirSync:ApplicationData")
        app.add("Email:To", "bob@example.test")
        app.add("Email:Subject", marker)
        body = app.add("AirSyncBase:Body")
        body.add("AirSyncBase:Type", "1")
        body.add("AirSyncBase:Data", "Sent from the drafts folder")
        app.add("Email2:Send")
        answer = sync(key, add)
        response = answer.find("AirSync:Collections/AirSync:Collection/AirSync:Responses/"
                               "AirSync:Add")
        self.assertIsNotNone(response, answer.to_xml())
        assert response is not None
        self.assertEqual(response.findtext("AirSync:Status"), "1", answer.to_xml())
        [delivered] = await self.arrived("bob", marker)
        self.assertIn(b"Sent from the drafts folder", delivered)
        self.assertEqual(len(await self.in_sent(marker)), 1)
        drafts_left = [m for _, _, m in await self.mailbox("alice", "Drafts")
                       if marker.encode() in m]
        self.assertEqual(drafts_left, [])
