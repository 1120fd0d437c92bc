"""An independent EAS client (pyactivesync, EAS 16.1) against the real daemon,
a real Dovecot and a real Postfix delivering into it.

pyactivesync reads, flags, moves, deletes and sends; the mailbox is filled and
checked with the standard library's ``imaplib`` (another independent client).
Every test runs twice: with Dovecot's full capability list (CONDSTORE /
QRESYNC) and with ``imap_capability = IMAP4rev1 IDLE``.

Where pyactivesync itself is off: its ``FolderType`` numbers from 12 up are
shifted by one (MS-ASCMD: 12 is a user-created *mail* folder, pyactivesync
calls it ``USER_GENERIC``), so folder types are compared as integers here.
"""
from __future__ import annotations

import email
import email.policy
import glob
import imaplib
import os
import re
import smtplib
import ssl
import threading
import time
import uuid
from email.message import EmailMessage
from typing import Any

from twisted.trial.unittest import TestCase

from easyncd.testing.daemon import SharedMailDaemon, mail_options, shared
from easyncd.testing.smtpserver import MailServers, wait_for_inbox
from tests.integration.test_mail_folders import MAILBOXES

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "mail")
#: Every test has its own user, so tests sharing the servers never meet.
USERS = {name: f"{name} mail pw" for name in ("reader", "sender", "friend", "pinger")}
#: MS-ASCMD FolderHierarchy:Type values (not pyactivesync's enum, see above).
INBOX, DRAFTS, DELETED, SENT, USER_MAIL = 2, 3, 4, 5, 12


def fixture(name: str) -> bytes:
    with open(os.path.join(FIXTURES, name), "rb") as handle:
        return handle.read()


def fixture_names() -> list[str]:
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(FIXTURES, "*.eml")))


class _Environment(SharedMailDaemon):
    """Postfix + Dovecot (with the given extra config) + the daemon."""

    def __init__(self, extra_config: str) -> None:
        self.servers = MailServers(USERS, dovecot_extra_config=MAILBOXES + extra_config)
        s = self.servers
        super().__init__(s, lambda: mail_options(s.dovecot, smtp_port=s.submission_port,
                                         domain=s.domain),
                         prefix="easyncd-pyas-")


def environment(extra_config: str) -> _Environment:
    """One environment per Dovecot configuration, shared by its tests."""
    return shared((__name__, extra_config), lambda: _Environment(extra_config))


class _PyActiveSyncMailTests:
    """The tests; the subclasses choose Dovecot's capabilities."""

    extra_config = ""
    timeout = 120

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.env = environment(self.extra_config)
        self.servers = self.env.servers
        self.daemon = self.env.daemon
        case: Any = self
        log_start = len(self.daemon.log())
        case.addCleanup(lambda: case.assertNotIn("Traceback", self.daemon.log()[log_start:]))

    # -- helpers -----------------------------------------------------------------------

    def client(self, user: str) -> Any:
        from pyactivesync import Client

        case: Any = self
        client = Client(server=f"127.0.0.1:{self.daemon.port}", username=user,
                        password=USERS[user], device_id="PYAS" + uuid.uuid4().hex[:12],
                        timeout=60)
        client._transport.base_url = f"{self.daemon.base}/Microsoft-Server-ActiveSync"
        case.addCleanup(client.close)
        client.provision()
        return client

    def imap(self, user: str) -> imaplib.IMAP4:
        case: Any = self
        client = imaplib.IMAP4("localhost", self.servers.dovecot.imap_port)
        client.starttls(ssl.create_default_context(cafile=self.servers.ca_file))
        client.login(user, USERS[user])
        case.addCleanup(self._logout, client)
        return client

    @staticmethod
    def _logout(client: imaplib.IMAP4) -> None:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass

    @staticmethod
    def messages(client: imaplib.IMAP4, mailbox: str) -> dict[int, tuple[str, bytes]]:
        """uid -> (flags, whole message) of a mailbox, read without setting \\Seen."""
        status, _ = client.select(f'"{mailbox}"', readonly=True)
        assert status == "OK", mailbox
        status, lines = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        out: dict[int, tuple[str, bytes]] = {}
        for line in lines:
            if isinstance(line, tuple):
                match = re.search(rb"UID (\d+)", line[0])
                flags = re.search(rb"FLAGS \(([^)]*)\)", line[0])
                assert match is not None and flags is not None, line[0]
                out[int(match.group(1))] = (flags.group(1).decode(), line[1])
        return out

    def full_sync(self, client: Any, folder: str, key: str = "0",
                  window: int = 25) -> tuple[str, list[Any]]:
        """Sync a folder to the end (bootstrapping when ``key`` is "0"); (key, adds)."""
        if key == "0":
            result = client.sync_folder(folder, "0")
            key = result.sync_key
        adds: list[Any] = []
        while True:
            result = client.sync_folder(folder, key, window_size=window)
            key = result.sync_key
            adds.extend(result.added)
            if not result.more_available:
                return key, adds

    @staticmethod
    def by_type(folders: list[Any]) -> dict[int, Any]:
        return {int(folder.type): folder for folder in folders}

    # -- tests -----------------------------------------------------------------------

    def test_read_fetch_flag_move_delete_search(self) -> None:
        from pyactivesync import EmailChange, FolderType

        case: Any = self
        user = "reader"
        imap = self.imap(user)
        _, capabilities = imap.capability()
        announced = b" ".join(c for c in capabilities if isinstance(c, bytes)).split()
        case.assertEqual(not self.extra_config, b"QRESYNC" in announced, announced)
        names = fixture_names()
        for name in names:
            status, _ = imap.append("INBOX", None, None, fixture(name))
            case.assertEqual("OK", status)
        client = self.client(user)

        # FolderSync: the special mailboxes with their EAS types, and a user folder
        # created through EAS (type 12, a user-created mail folder).  First, because
        # pyactivesync's folder calls all send FolderSync with SyncKey 0, which
        # (rightly) resets the device's collection sync states.
        archive = client.create_folder("Archive", type=FolderType(USER_MAIL))
        listed = client.list_folders()
        case.assertEqual([(archive.id, USER_MAIL)],
                         [(f.id, int(f.type)) for f in listed if f.name == "Archive"])
        folders = self.by_type(listed)
        case.assertEqual("Inbox", folders[INBOX].name)
        case.assertEqual("Sent", folders[SENT].name)
        case.assertEqual("Drafts", folders[DRAFTS].name)
        case.assertEqual("Trash", folders[DELETED].name)
        inbox = folders[INBOX].id

        # GetItemEstimate after the bootstrap: every message is still to come.
        bootstrap = client.sync_folder(inbox, "0")
        case.assertEqual([], bootstrap.added)
        case.assertEqual(len(names), client.get_item_estimate(inbox, bootstrap.sync_key))

        # Sync in pages of 5: every message once, with its header fields.
        key, adds = self.full_sync(client, inbox, bootstrap.sync_key, window=5)
        case.assertEqual(len(names), len(adds))
        case.assertEqual(len(names), len({add.server_id for add in adds}))
        by_subject = {add.fields.get("Email.Subject"): add for add in adds}
        expected = {
            "plain.eml": ("Quarterly numbers", "bob@example.org", "Bob Sender"),
            "mixed_attachments.eml": ("Contract and notes", "bob@example.org", "Bob Sender"),
            "alternative.eml": ("Re: Grüße aus Köln", "juergen@example.de", "Jürgen Müller"),
            "latin1.eml": ("Übersicht für März", "joerg@example.de", "Jörg Schäfer"),
            "html_only.eml": ("This week's offers", "news@shop.example", "Newsletter"),
        }
        for name, (subject, address, display) in expected.items():
            add = by_subject.get(subject)
            assert add is not None, f"{name}: {subject!r} not in {sorted(map(str, by_subject))}"
            case.assertIn(address, add.fields.get("Email.From", ""), name)
            case.assertIn(display, add.fields.get("Email.From", ""), name)
            case.assertEqual("IPM.Note", add.fields.get("Email.MessageClass"), name)
            case.assertTrue(add.fields.get("Email.DateReceived"), name)
        case.assertEqual(0, client.get_item_estimate(inbox, key))

        # ItemOperations Fetch: the HTML body and the attachment's exact bytes.
        contract = by_subject["Contract and notes"].server_id
        fetched = client.fetch_item(inbox, contract)
        body = fetched.body
        assert body is not None
        case.assertEqual(2, int(body.type))
        case.assertIn("<i>contract</i>", str(body.data))
        # As stored: imaplib's APPEND sends the fixture with CRLF line ends.
        stored = re.sub(rb"\r?\n", b"\r\n", fixture("mixed_attachments.eml"))
        original = email.message_from_bytes(stored, policy=email.policy.default)
        parts = {p.get_filename(): p.get_payload(decode=True) for p in original.walk()
                 if p.get_filename()}
        case.assertIn("contract.pdf", parts)
        case.assertEqual(list(parts), [a.display_name for a in fetched.attachments])
        for attachment in fetched.attachments:
            case.assertEqual(parts[attachment.display_name],
                             client.fetch_attachment(attachment.file_reference))
        # Fetching did not mark it read.
        uid = int(contract.rsplit(":", 1)[1])
        case.assertNotIn("\\Seen", self.messages(imap, "INBOX")[uid][0])

        # Read and flag from the device, seen over IMAP.
        plain = by_subject["Quarterly numbers"].server_id
        html = by_subject["This week's offers"].server_id
        changes = client.apply_email_changes(inbox, key, [
            EmailChange(server_id=plain, read=True),
            EmailChange(server_id=html, flagged=True),
        ])
        case.assertEqual({plain: "1", html: "1"}, changes.statuses)
        key = changes.sync_key
        flags = {uid: f for uid, (f, _) in self.messages(imap, "INBOX").items()}
        case.assertIn("\\Seen", flags[int(plain.rsplit(":", 1)[1])])
        case.assertNotIn("\\Flagged", flags[int(plain.rsplit(":", 1)[1])])
        case.assertIn("\\Flagged", flags[int(html.rsplit(":", 1)[1])])
        # No echo of the device's own changes.
        again = client.sync_folder(inbox, key)
        case.assertEqual(([], [], []), (again.added, again.changed, again.deleted))
        key = again.sync_key

        # MoveItems to the user folder: gone from the Inbox, once in the folder, and
        # not echoed back to the device that moved it.
        archive_key, archive_adds = self.full_sync(client, archive.id)
        case.assertEqual([], archive_adds)
        new_id = client.move_item(contract, inbox, archive.id)
        case.assertTrue(new_id.startswith(archive.id + ":"), new_id)
        case.assertNotIn(uid, self.messages(imap, "INBOX"))
        moved = self.messages(imap, "Archive")
        case.assertEqual([int(new_id.rsplit(":", 1)[1])], list(moved))
        case.assertIn(b"Subject: Contract and notes", moved[int(new_id.rsplit(":", 1)[1])][1])
        after = client.sync_folder(inbox, key)
        key = after.sync_key
        case.assertEqual(([], [], []), (after.added, after.changed, after.deleted))
        echo = client.sync_folder(archive.id, archive_key)
        case.assertEqual(([], [], []), (echo.added, echo.changed, echo.deleted))
        _, archive_adds = self.full_sync(client, archive.id)  # from scratch
        case.assertEqual([new_id], [a.server_id for a in archive_adds])
        case.assertEqual("Contract and notes", archive_adds[0].fields.get("Email.Subject"))

        # Delete (as a move to Trash).
        deleted = client.apply_email_changes(inbox, key, [EmailChange(server_id=plain,
                                                                     delete=True)])
        case.assertEqual({plain: "1"}, deleted.statuses)
        key = deleted.sync_key
        case.assertNotIn(int(plain.rsplit(":", 1)[1]), self.messages(imap, "INBOX"))
        trash = self.messages(imap, "Trash")
        case.assertEqual(1, len(trash))
        case.assertIn(b"Subject: Quarterly numbers", next(iter(trash.values()))[1])
        final = client.sync_folder(inbox, key)
        case.assertEqual(([], []), (final.added, final.deleted))
        case.assertEqual(0, client.get_item_estimate(inbox, final.sync_key))

        # Search (date range) and Find (free text).
        results = client.search_mailbox(inbox, date_received_after="2000-01-01T00:00:00.000Z",
                                        max_results=50)
        case.assertEqual(len(names) - 2, len(results))
        found = client.find_mailbox("offers", folder_id=inbox)
        case.assertEqual([html], [item.server_id for item in found.items])
        case.assertEqual("This week's offers", found.items[0].fields.get("Email.Subject"))
        case.assertEqual([html], [r.get("AirSync.ServerId")
                                  for r in client.search_mailbox(inbox, free_text="offers")])
        nothing = client.find_mailbox("zzzunfindablezzz", folder_id=inbox)
        case.assertEqual([], nothing.items)

    async def test_send_draft_and_oof(self) -> None:
        from pyactivesync import StatusError

        case: Any = self
        client = self.client("sender")
        folders = self.by_type(client.list_folders())
        marker = "pyas-" + uuid.uuid4().hex[:8]
        message = EmailMessage()
        message["From"] = f"Sender <{self.servers.address('sender')}>"
        message["To"] = f"Friend <{self.servers.address('friend')}>"
        message["Subject"] = f"Hello {marker}"
        message.set_content(f"Sent by pyactivesync {marker}.\n")
        message.add_attachment(b"\x00\x01binary\xff", maintype="application",
                               subtype="octet-stream", filename="blob.bin")
        client.send_mail(message)

        s = self.servers
        arrived = await wait_for_inbox(self.reactor, s.host, s.dovecot.imap_port, "friend",
                                       USERS["friend"], 1, timeout=20)
        case.assertEqual(1, len(arrived), s.log_tail())
        received = email.message_from_bytes(arrived[0], policy=email.policy.default)
        case.assertEqual(f"Hello {marker}", received["Subject"])
        [blob] = [p for p in received.walk() if p.get_filename() == "blob.bin"]
        case.assertEqual(b"\x00\x01binary\xff", blob.get_payload(decode=True))
        imap = self.imap("sender")
        sent = self.messages(imap, "Sent")
        case.assertEqual(1, len(sent))
        case.assertIn(marker.encode(), next(iter(sent.values()))[1])
        # The Sent copy shows up in the device's Sent folder.
        _, sent_adds = self.full_sync(client, folders[SENT].id)
        case.assertEqual([f"Hello {marker}"], [a.fields.get("Email.Subject") for a in sent_adds])

        # A 16.1 draft lands in Drafts.
        drafts = folders[DRAFTS].id
        key, existing = self.full_sync(client, drafts)
        case.assertEqual([], existing)
        draft = EmailMessage()
        draft["From"] = self.servers.address("sender")
        draft["To"] = self.servers.address("friend")
        draft["Subject"] = f"Draft {marker}"
        draft.set_content("Not finished yet.\n")
        added = client.create_email_draft(drafts, key, draft)
        case.assertEqual("1", added.status)
        assert added.server_id is not None
        case.assertTrue(added.server_id.startswith(drafts + ":"), added.server_id)
        stored = self.messages(imap, "Drafts")
        case.assertEqual([int(added.server_id.rsplit(":", 1)[1])], list(stored))
        flags, data = next(iter(stored.values()))
        case.assertIn("\\Draft", flags)
        case.assertIn(f"Subject: Draft {marker}".encode(), data)
        # Not echoed back to the device that created it.
        echo = client.sync_folder(drafts, added.sync_key)
        case.assertEqual([], echo.added)
        # Nothing was sent.
        case.assertEqual(1, len(await wait_for_inbox(self.reactor, s.host, s.dovecot.imap_port,
                                                     "friend", USERS["friend"], 1)))

        # Oof: easyncd keeps no vacation settings and says so (Settings Oof Status 3).
        with case.assertRaises(StatusError) as raised:
            client.get_oof()
        case.assertEqual(("Settings.Oof", "3"), (raised.exception.command,
                                                 raised.exception.code))

    def test_ping_wakes_on_new_mail(self) -> None:
        case: Any = self
        client = self.client("pinger")
        inbox = self.by_type(client.list_folders())[INBOX].id
        key, adds = self.full_sync(client, inbox)
        case.assertEqual([], adds)
        result: list[Any] = []

        def waiting() -> None:
            started = time.monotonic()
            try:
                result.append(client.ping(inbox, heartbeat=120, timeout=150))
            except Exception as failure:  # reported below
                result.append(failure)
            result.append(time.monotonic() - started)

        thread = threading.Thread(target=waiting)
        thread.start()
        time.sleep(1.5)
        case.assertTrue(thread.is_alive(), result)
        s = self.servers
        with smtplib.SMTP(s.host, s.smtp_port, timeout=10) as smtp:
            delivered = time.monotonic()
            smtp.sendmail("bob@example.org", [s.address("pinger")], fixture("plain.eml"))
        thread.join(60)
        case.assertFalse(thread.is_alive())
        ping, _ = result
        case.assertNotIsInstance(ping, Exception)
        case.assertEqual("2", ping.status)
        case.assertEqual([inbox], ping.changed_folder_ids)
        # SMTP -> Postfix -> LMTP -> Dovecot -> IDLE/poll -> Ping: about 0.5 s here.
        case.assertLess(time.monotonic() - delivered, 5)
        key, adds = self.full_sync(client, inbox, key)
        case.assertEqual(["Quarterly numbers"], [a.fields.get("Email.Subject") for a in adds])


class FullDovecotPyActiveSyncTests(_PyActiveSyncMailTests, TestCase):
    """Dovecot with CONDSTORE / QRESYNC."""


class PlainIMAPPyActiveSyncTests(_PyActiveSyncMailTests, TestCase):
    """Dovecot announcing only IMAP4rev1 and IDLE: the fallback paths."""

    extra_config = "imap_capability = IMAP4rev1 IDLE\n"
