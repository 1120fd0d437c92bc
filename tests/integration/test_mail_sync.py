"""Sync of mail folders through the real daemon against a real Dovecot.

The daemon runs with ``[imap] enabled`` and ``auth.checkers = imap``; the
mailbox is filled and checked with the standard library's ``imaplib`` (an
independent client).  Every test runs twice: with Dovecot's full capability
list (CONDSTORE / QRESYNC) and with ``imap_capability = IMAP4rev1 IDLE`` (the
fallback change detection).
"""
from __future__ import annotations

import glob
import imaplib
import os
import re
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
from tests.integration.test_mail_folders import MAILBOXES

AS = "AirSync:"
BASE = "AirSyncBase:"
FH = "FolderHierarchy:"
PASSWORD = "alice mail pw"
FIXTURES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "fixtures", "mail",
                                         "*.eml")))


def collection(folder: str, key: str, window: int | None = None,
               commands: list[Element] | None = None) -> Element:
    element = Element(AS + "Collection")
    element.add(AS + "SyncKey", key)
    element.add(AS + "CollectionId", folder)
    if window is not None:
        element.add(AS + "WindowSize", str(window))
    options = element.add(AS + "Options")
    pref = options.add(BASE + "BodyPreference")
    pref.add(BASE + "Type", "2")
    pref.add(BASE + "TruncationSize", "5120")
    if commands:
        block = element.add(AS + "Commands")
        for command in commands:
            block.append(command)
    return element


def sync_body(*collections: Element, heartbeat: int | None = None) -> Element:
    root = Element(AS + "Sync")
    block = root.add(AS + "Collections")
    for element in collections:
        block.append(element)
    if heartbeat is not None:
        root.add(AS + "HeartbeatInterval", str(heartbeat))
    return root


class _MailSyncTests:
    """The tests; the subclasses choose Dovecot's capabilities."""

    extra_config = ""

    def setUp(self) -> None:
        case: Any = self
        self.dovecot = DovecotServer({"alice": PASSWORD},
                                     extra_config=MAILBOXES + self.extra_config)
        self.dovecot.start()
        case.addCleanup(self.dovecot.stop)
        tmp = tempfile.TemporaryDirectory()
        case.addCleanup(tmp.cleanup)
        self.daemon = Daemon(tmp.name, options=mail_options(self.dovecot))
        self.daemon.start()
        case.addCleanup(assert_stopped_cleanly, case, self.daemon)
        self.policy_key = provision(self.daemon, password=PASSWORD)
        self.client = self.imap()
        answer = self.post("FolderSync", folder_sync("0"))
        self.folders = {}
        for add in answer.findall(FH + "Changes/" + FH + "Add"):
            self.folders[str(add.findtext(FH + "DisplayName"))] = str(add.findtext(FH + "ServerId"))
        self.inbox = self.folders["Inbox"]

    # -- helpers -----------------------------------------------------------------------

    def imap(self) -> imaplib.IMAP4:
        case: Any = self
        client = imaplib.IMAP4("localhost", self.dovecot.imap_port)
        client.starttls(ssl.create_default_context(cafile=self.dovecot.ca_file))
        client.login("alice", PASSWORD)
        case.addCleanup(self._logout, client)
        return client

    @staticmethod
    def _logout(client: imaplib.IMAP4) -> None:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass

    def append(self, count: int, mailbox: str = "INBOX") -> None:
        for n in range(count):
            with open(FIXTURES[n % len(FIXTURES)], "rb") as handle:
                data = handle.read()
            status, _ = self.client.append(mailbox, None, None, data)
            assert status == "OK"

    def flags(self, mailbox: str = "INBOX") -> dict[int, str]:
        self.client.select(mailbox)
        status, lines = self.client.uid("FETCH", "1:*", "(FLAGS)")
        out: dict[int, str] = {}
        for line in lines:
            if isinstance(line, bytes):
                match = re.search(rb"UID (\d+) FLAGS \(([^)]*)\)", line)
                if match:
                    out[int(match.group(1))] = match.group(2).decode()
        return out

    def post(self, command: str, body: Element | None) -> Element:
        case: Any = self
        response = self.daemon.post(command, body, password=PASSWORD, policy_key=self.policy_key)
        case.assertEqual(response.status_code, 200, response.text)
        return wbxml_of(response)

    def sync(self, *collections: Element, heartbeat: int | None = None) -> Element | None:
        response = self.daemon.post("Sync", sync_body(*collections, heartbeat=heartbeat),
                                    password=PASSWORD, policy_key=self.policy_key)
        assert response.status_code == 200, response.text
        if not response.content:
            return None
        return wbxml_of(response).find(AS + "Collections/" + AS + "Collection")

    def initial(self) -> str:
        answer = self.sync(collection(self.inbox, "0"))
        assert answer is not None and answer.findtext(AS + "Status") == "1", answer
        return answer.findtext(AS + "SyncKey") or ""

    @staticmethod
    def ops(answer: Element, op: str) -> list[str]:
        block = answer.find(AS + "Commands")
        return [str(c.findtext(AS + "ServerId")) for c in (block.children if block else [])
                if c.tag == AS + op]

    def drain(self, key: str, window: int = 10) -> tuple[str, list[list[str]]]:
        pages: list[list[str]] = []
        while True:
            answer = self.sync(collection(self.inbox, key, window))
            if answer is None:
                return key, pages
            assert answer.findtext(AS + "Status") == "1"
            key = answer.findtext(AS + "SyncKey") or ""
            pages.append(self.ops(answer, "Add"))
            if answer.find(AS + "MoreAvailable") is None:
                return key, pages

    # -- tests -----------------------------------------------------------------------

    def test_initial_sync_paging_retry_and_device_changes(self) -> None:
        case: Any = self
        self.append(50)
        key = self.initial()
        first = self.sync(collection(self.inbox, key, 10))
        assert first is not None
        retry = self.sync(collection(self.inbox, key, 10))
        assert retry is not None
        case.assertEqual(first.to_xml(), retry.to_xml())
        key, pages = self.drain(first.findtext(AS + "SyncKey") or "", 10)
        pages.insert(0, self.ops(first, "Add"))
        case.assertEqual([10] * 5, [len(p) for p in pages])
        sent = [sid for page in pages for sid in page]
        case.assertEqual([f"{self.inbox}:{uid}" for uid in range(50, 0, -1)], sent)
        # Every message came rendered (its header fields and class).
        commands = first.find(AS + "Commands")
        assert commands is not None
        for add in commands.children:
            data = add.find(AS + "ApplicationData")
            assert data is not None
            case.assertIsNotNone(data.findtext("Email:DateReceived"))
            case.assertTrue(data.findtext("Email:DateReceived"), data.to_xml())
            case.assertTrue(data.findtext("Email:MessageClass"), data.to_xml())

        # Read, flag and delete from the device; seen through IMAP.
        read = Element(AS + "Change")
        read.add(AS + "ServerId", f"{self.inbox}:1")
        read.add(AS + "ApplicationData").add("Email:Read", "1")
        flag = Element(AS + "Change")
        flag.add(AS + "ServerId", f"{self.inbox}:2")
        flag.add(AS + "ApplicationData").add("Email:Flag").add("Email:Status", "2")
        delete = Element(AS + "Delete")
        delete.add(AS + "ServerId", f"{self.inbox}:3")
        answer = self.sync(collection(self.inbox, key, commands=[read, flag, delete]))
        assert answer is not None
        case.assertEqual("1", answer.findtext(AS + "Status"))
        case.assertIsNone(answer.find(AS + "Commands"))
        key = answer.findtext(AS + "SyncKey") or ""
        flags = self.flags()
        case.assertIn("\\Seen", flags[1])
        case.assertIn("\\Flagged", flags[2])
        case.assertNotIn(3, flags)
        case.assertEqual(1, len(self.flags("Trash")))
        # No echo of the device's own changes.
        case.assertIsNone(self.sync(collection(self.inbox, key)))

        # New mail and a flag change by another client show up.
        self.append(1)
        self.client.select("INBOX")
        self.client.uid("STORE", "4", "+FLAGS", "(\\Seen)")
        answer = self.sync(collection(self.inbox, key))
        assert answer is not None
        case.assertEqual([f"{self.inbox}:51"], self.ops(answer, "Add"))
        case.assertEqual([f"{self.inbox}:4"], self.ops(answer, "Change"))

    def test_wait_returns_on_new_mail(self) -> None:
        case: Any = self
        self.append(1)
        key, _ = self.drain(self.initial())
        result: list[Any] = []

        def waiting() -> None:
            started = time.monotonic()
            result.append(self.sync(collection(self.inbox, key), heartbeat=120))
            result.append(time.monotonic() - started)

        thread = threading.Thread(target=waiting)
        thread.start()
        time.sleep(2.0)
        other = imaplib.IMAP4("localhost", self.dovecot.imap_port)
        other.starttls(ssl.create_default_context(cafile=self.dovecot.ca_file))
        other.login("alice", PASSWORD)
        delivered = time.monotonic()
        with open(FIXTURES[0], "rb") as handle:
            other.append("INBOX", None, None, handle.read())
        other.logout()
        thread.join(60)
        case.assertFalse(thread.is_alive())
        answer, _elapsed = result
        case.assertIsNotNone(answer)
        case.assertEqual([f"{self.inbox}:2"], self.ops(answer, "Add"))
        # Within a few seconds of the delivery (IDLE, or the polling fallback).
        case.assertLess(time.monotonic() - delivered, 15)


class FullDovecotMailSyncTests(_MailSyncTests, TestCase):
    """Dovecot with CONDSTORE / QRESYNC."""


class PlainIMAPMailSyncTests(_MailSyncTests, TestCase):
    """Dovecot announcing only IMAP4rev1 and IDLE: the fallback paths."""

    extra_config = "imap_capability = IMAP4rev1 IDLE\n"
