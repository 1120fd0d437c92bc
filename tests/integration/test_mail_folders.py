"""Mail folders and mail push through the real daemon and a real Dovecot.

The daemon runs with ``[imap] enabled`` and ``auth.checkers = imap`` (the
device's password is the mail password); the IMAP side is checked with the
standard library's ``imaplib`` (an independent client), which also plays the
"other mail client" changing mailboxes and delivering mail.
"""
from __future__ import annotations

import imaplib
import ssl
import tempfile
import threading
import time
from typing import Any

from twisted.trial.unittest import TestCase

from easyncd.testing.daemon import Daemon, mail_options, folder_sync, provision, wbxml_of
from easyncd.testing.dovecot import DovecotServer
from easyncd.wbxml import Element
from tests.integration.test_daemon import assert_stopped_cleanly

NS = "FolderHierarchy:"
PASSWORD = "alice mail pw"
MAILBOXES = """\
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
}
"""


def message(subject: str) -> bytes:
    return (f"From: Bob <bob@example.org>\r\nTo: Alice <alice@example.org>\r\n"
            f"Subject: {subject}\r\nDate: Wed, 01 May 2024 12:00:00 +0000\r\n"
            f"Message-ID: <{subject}@example.org>\r\n\r\nHello.\r\n").encode("ascii")


class MailFolderTests(TestCase):
    """FolderSync, FolderCreate/Update/Delete and Ping on mail folders."""

    def setUp(self) -> None:
        self.dovecot = DovecotServer({"alice": PASSWORD}, extra_config=MAILBOXES)
        self.dovecot.start()
        self.addCleanup(self.dovecot.stop)
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.daemon = Daemon(tmp.name, options=mail_options(self.dovecot))
        self.daemon.start()
        self.addCleanup(assert_stopped_cleanly, self, self.daemon)
        self.policy_key = provision(self.daemon, password=PASSWORD)
        # Dovecot creates the special mailboxes at the first login.
        self.imap().logout()

    # -- helpers -----------------------------------------------------------

    def imap(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("localhost", self.dovecot.imap_port)
        context = ssl.create_default_context(cafile=self.dovecot.ca_file)
        client.starttls(context)
        client.login("alice", PASSWORD)
        self.addCleanup(self._logout, client)
        return client

    @staticmethod
    def _logout(client: imaplib.IMAP4) -> None:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass

    def mailboxes(self) -> set[str]:
        client = self.imap()
        status, lines = client.list()
        self.assertEqual(status, "OK")
        names = set()
        for line in lines:
            assert isinstance(line, bytes)
            # (\HasNoChildren) "/" Name  or  ... "/" "Name with spaces"
            name = line.decode("utf-8").split(' "/" ', 1)[1]
            names.add(name.strip('"'))
        client.logout()
        return names

    def post(self, command: str, body: Element | None) -> Element:
        response = self.daemon.post(command, body, password=PASSWORD,
                                    policy_key=self.policy_key)
        self.assertEqual(response.status_code, 200, response.text)
        return wbxml_of(response)

    def folder_sync(self, key: str) -> tuple[str, list[dict[str, str]]]:
        answer = self.post("FolderSync", folder_sync(key))
        self.assertEqual(answer.findtext(NS + "Status"), "1", answer.to_xml())
        changes = []
        block = answer.find(NS + "Changes")
        for element in block.children if block is not None else []:
            if element.tag == NS + "Count":
                continue
            entry = {"op": element.tag[len(NS):]}
            for child in element.children:
                entry[child.tag[len(NS):]] = str(child.text or "")
            changes.append(entry)
        return answer.findtext(NS + "SyncKey") or "", changes

    def command(self, tag: str, **values: str) -> Element:
        body = Element(NS + tag)
        for name, value in values.items():
            body.add(NS + name, value)
        return self.post(tag, body)

    # -- tests ---------------------------------------------------------------

    def test_hierarchy_and_folder_commands(self) -> None:
        client = self.imap()
        for name in ("Projects", "Projects/2024"):
            self.assertEqual(client.create(name)[0], "OK")
        key, changes = self.folder_sync("0")
        by_name = {c["DisplayName"]: c for c in changes if c["op"] == "Add"}
        self.assertEqual(by_name["Inbox"]["Type"], "2")
        self.assertEqual(by_name["Drafts"]["Type"], "3")
        self.assertEqual(by_name["Trash"]["Type"], "4")
        self.assertEqual(by_name["Sent"]["Type"], "5")
        self.assertEqual(by_name["Projects"]["Type"], "12")
        self.assertEqual(by_name["Projects"]["ParentId"], "0")
        self.assertEqual(by_name["2024"]["Type"], "12")
        self.assertEqual(by_name["2024"]["ParentId"], by_name["Projects"]["ServerId"])
        self.assertIn("Contacts", by_name)  # groupware beside mail

        # A mailbox created by another client shows up at the next FolderSync.
        self.assertEqual(client.create("Projects/Later")[0], "OK")
        key, changes = self.folder_sync(key)
        self.assertEqual([(c["op"], c["DisplayName"], c["ParentId"], c["Type"]) for c in changes],
                         [("Add", "Later", by_name["Projects"]["ServerId"], "12")])

        # FolderCreate under Inbox and at the top.
        answer = self.command("FolderCreate", SyncKey=key, ParentId=by_name["Inbox"]["ServerId"],
                              DisplayName="Receipts", Type="12")
        self.assertEqual(answer.findtext(NS + "Status"), "1", answer.to_xml())
        key = answer.findtext(NS + "SyncKey") or ""
        receipts = answer.findtext(NS + "ServerId") or ""
        answer = self.command("FolderCreate", SyncKey=key, ParentId="0",
                              DisplayName="Archive \u00e4", Type="12")
        self.assertEqual(answer.findtext(NS + "Status"), "1", answer.to_xml())
        key = answer.findtext(NS + "SyncKey") or ""
        archive = answer.findtext(NS + "ServerId") or ""
        boxes = self.mailboxes()
        self.assertIn("INBOX/Receipts", boxes)
        self.assertIn("Archive &AOQ-", boxes)  # modified UTF-7 on the wire
        answer = self.command("FolderCreate", SyncKey=key, ParentId="0", DisplayName="Projects",
                              Type="12")
        self.assertEqual(answer.findtext(NS + "Status"), "2", answer.to_xml())

        # FolderUpdate: rename and move Receipts under the archive.
        answer = self.command("FolderUpdate", SyncKey=key, ServerId=receipts, ParentId=archive,
                              DisplayName="Bills")
        self.assertEqual(answer.findtext(NS + "Status"), "1", answer.to_xml())
        key = answer.findtext(NS + "SyncKey") or ""
        boxes = self.mailboxes()
        self.assertIn("Archive &AOQ-/Bills", boxes)
        self.assertNotIn("INBOX/Receipts", boxes)

        # Special folders stay.
        answer = self.command("FolderUpdate", SyncKey=key, ServerId=by_name["Inbox"]["ServerId"],
                              ParentId="0", DisplayName="Other")
        self.assertEqual(answer.findtext(NS + "Status"), "2", answer.to_xml())
        answer = self.command("FolderDelete", SyncKey=key, ServerId=by_name["Trash"]["ServerId"])
        self.assertEqual(answer.findtext(NS + "Status"), "3", answer.to_xml())

        # FolderDelete: the mailbox and its children go.
        answer = self.command("FolderDelete", SyncKey=key, ServerId=by_name["Projects"]["ServerId"])
        self.assertEqual(answer.findtext(NS + "Status"), "1", answer.to_xml())
        key = answer.findtext(NS + "SyncKey") or ""
        boxes = self.mailboxes()
        self.assertFalse({"Projects", "Projects/2024", "Projects/Later"} & boxes, boxes)
        self.assertIn("Trash", boxes)

        # The hierarchy the device ends with matches the mailboxes.
        _, changes = self.folder_sync("0")
        names = sorted(c["DisplayName"] for c in changes
                       if c["op"] == "Add" and c["Type"] in ("2", "3", "4", "5", "12"))
        self.assertEqual(names, ["Archive \u00e4", "Bills", "Drafts", "Inbox", "Sent", "Trash"])

    def test_ping_on_inbox_wakes_on_new_mail(self) -> None:
        _, changes = self.folder_sync("0")
        inbox = next(c["ServerId"] for c in changes if c.get("Type") == "2")
        body = Element("Ping:Ping")
        body.add("Ping:HeartbeatInterval", "120")
        folder = body.add("Ping:Folders").add("Ping:Folder")
        folder.add("Ping:Id", inbox)
        folder.add("Ping:Class", "Email")
        outcome: dict[str, Any] = {}

        def ping() -> None:
            try:
                outcome["answer"] = self.post("Ping", body)
            except BaseException as exc:  # reported below
                outcome["error"] = exc
            outcome["at"] = time.monotonic()

        thread = threading.Thread(target=ping, daemon=True)
        thread.start()
        time.sleep(2.0)  # the Ping is waiting (IDLE set up)
        self.assertNotIn("at", outcome, outcome)
        client = self.imap()
        appended_at = time.monotonic()
        status, _ = client.append("INBOX", None, None, message("push-test"))
        self.assertEqual(status, "OK")
        thread.join(30)
        self.assertNotIn("error", outcome)
        answer = outcome["answer"]
        self.assertEqual(answer.findtext("Ping:Status"), "2", answer.to_xml())
        self.assertEqual([e.text for e in answer.findall("Ping:Folders/Ping:Folder")], [inbox])
        self.assertLess(outcome["at"] - appended_at, 1.0)
        self.assertNotIn("Traceback", self.daemon.log())

