"""Push for mail folders other than INBOX, through the real daemon against a real Dovecot.

A Ping on INBOX, Sent and a user folder answers Status 2 naming the folder
an independent client (``imaplib``) appended to: within a second with
Dovecot's NOTIFY (one IMAP session covers every folder), within the
``[imap] poll_interval`` when the server announces no NOTIFY (IDLE on INBOX,
STATUS polling of the others).  The following Sync carries the message.
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
from tests.integration.test_mail_folders import MAILBOXES, message
from tests.integration.test_mail_sync import collection, sync_body

AS = "AirSync:"
FH = "FolderHierarchy:"
PASSWORD = "alice push pw"
PROJECTS = "Projects"


class _MailPushTests:
    extra_config = ""
    poll_interval = 30
    #: How soon a non-INBOX folder must wake the Ping.
    other_within = 1.0

    def setUp(self) -> None:
        case: Any = self
        self.dovecot = DovecotServer({"alice": PASSWORD}, extra_config=MAILBOXES + self.extra_config)
        self.dovecot.start()
        case.addCleanup(self.dovecot.stop)
        tmp = tempfile.TemporaryDirectory()
        case.addCleanup(tmp.cleanup)
        self.daemon = Daemon(tmp.name, options=mail_options(
            self.dovecot, **{"imap.poll_interval": str(self.poll_interval)}))
        self.daemon.start()
        case.addCleanup(assert_stopped_cleanly, case, self.daemon)
        self.policy_key = provision(self.daemon, password=PASSWORD)
        client = self.imap()
        status, _ = client.create(PROJECTS)
        case.assertEqual(status, "OK")
        client.logout()
        answer = self.post("FolderSync", folder_sync("0"))
        self.folders = {str(add.findtext(FH + "DisplayName")): str(add.findtext(FH + "ServerId"))
                        for add in answer.findall(FH + "Changes/" + FH + "Add")}
        self.latencies: list[tuple[str, float]] = []

    # -- helpers -----------------------------------------------------------------------

    def imap(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("localhost", self.dovecot.imap_port)
        client.starttls(ssl.create_default_context(cafile=self.dovecot.ca_file))
        client.login("alice", PASSWORD)
        return client

    def post(self, command: str, body: Element | None) -> Element:
        case: Any = self
        response = self.daemon.post(command, body, password=PASSWORD, policy_key=self.policy_key)
        case.assertEqual(response.status_code, 200, response.text)
        return wbxml_of(response)

    def sync(self, folder: str, key: str) -> Element | None:
        response = self.daemon.post("Sync", sync_body(collection(folder, key)), password=PASSWORD,
                                    policy_key=self.policy_key)
        assert response.status_code == 200, response.text
        if not response.content:
            return None
        return wbxml_of(response).find(AS + "Collections/" + AS + "Collection")

    def synced(self, folder: str) -> str:
        """A Sync key with everything in ``folder`` sent."""
        answer = self.sync(folder, "0")
        assert answer is not None and answer.findtext(AS + "Status") == "1", answer
        key = answer.findtext(AS + "SyncKey") or ""
        while True:
            answer = self.sync(folder, key)
            if answer is None:
                return key
            key = answer.findtext(AS + "SyncKey") or key
            if answer.find(AS + "MoreAvailable") is None:
                return key

    def ping_while_appending(self, mailbox: str, names: list[str]) -> tuple[str, list[str], float]:
        """Ping on the folders ``names``; 2 s later APPEND to ``mailbox``: (Status, folders, seconds)."""
        body = Element("Ping:Ping")
        body.add("Ping:HeartbeatInterval", "120")
        container = body.add("Ping:Folders")
        for name in names:
            entry = container.add("Ping:Folder")
            entry.add("Ping:Id", self.folders[name])
            entry.add("Ping:Class", "Email")
        outcome: dict[str, Any] = {}

        def ping() -> None:
            try:
                outcome["answer"] = self.post("Ping", body)
            except BaseException as exc:  # reported below
                outcome["error"] = exc
            outcome["at"] = time.monotonic()

        thread = threading.Thread(target=ping, daemon=True)
        thread.start()
        time.sleep(2.0)  # the Ping is waiting (the watch is set up)
        case: Any = self
        case.assertNotIn("at", outcome, outcome)
        client = self.imap()
        try:
            appended_at = time.monotonic()
            status, _ = client.append(mailbox, None, None, message(f"push-{mailbox}-{appended_at}"))
            case.assertEqual(status, "OK")
        finally:
            client.logout()
        thread.join(60)
        case.assertNotIn("error", outcome)
        answer = outcome["answer"]
        changed = [str(e.text) for e in answer.findall("Ping:Folders/Ping:Folder")]
        elapsed = outcome["at"] - appended_at
        self.latencies.append((mailbox, elapsed))
        return answer.findtext("Ping:Status") or "", changed, elapsed

    # -- tests -----------------------------------------------------------------------

    def test_ping_wakes_for_any_watched_folder(self) -> None:
        case: Any = self
        watched = ["Inbox", "Sent", PROJECTS]
        key = self.synced(self.folders[PROJECTS])
        status, changed, elapsed = self.ping_while_appending(PROJECTS, watched)
        case.assertEqual((status, changed), ("2", [self.folders[PROJECTS]]))
        case.assertLess(elapsed, self.other_within)
        # The following Sync carries the new message.
        answer = self.sync(self.folders[PROJECTS], key)
        assert answer is not None
        adds = [c.findtext(AS + "ServerId") for c in answer.findall(AS + "Commands/" + AS + "Add")]
        case.assertEqual(adds, [f"{self.folders[PROJECTS]}:1"])
        # Sent, then INBOX, on the same warm watch.
        status, changed, elapsed = self.ping_while_appending("Sent", watched)
        case.assertEqual((status, changed), ("2", [self.folders["Sent"]]))
        case.assertLess(elapsed, self.other_within)
        status, changed, elapsed = self.ping_while_appending("INBOX", watched)
        case.assertEqual((status, changed), ("2", [self.folders["Inbox"]]))
        case.assertLess(elapsed, 1.0)
        case.assertNotIn("Traceback", self.daemon.log())
        print("\nPing latencies (s): " + ", ".join(f"{box} {seconds:.3f}" for box, seconds in self.latencies))


class NotifyMailPushTests(_MailPushTests, TestCase):
    """Dovecot's own capabilities (NOTIFY among them): every folder within a second."""


class PollingMailPushTests(_MailPushTests, TestCase):
    """No NOTIFY announced: INBOX by IDLE, the others by STATUS every 2 s."""

    extra_config = "imap_capability = IMAP4rev1 IDLE CONDSTORE QRESYNC ENABLE UIDPLUS MOVE SPECIAL-USE LIST-EXTENDED\n"
    poll_interval = 2
    other_within = 3.0
