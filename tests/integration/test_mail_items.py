"""ItemOperations, GetAttachment and MoveItems on mail, through the real daemon
against a real Dovecot.

Messages are appended to alice's INBOX over IMAP; the device (this test) runs
FolderSync, fetches a message by ServerId, its attachment by FileReference
(whole and in a range, inline base64 and multipart), the same attachment
with GetAttachment at 12.1, moves a message to a user folder with MoveItems
(checked over IMAP and in the next Syncs of both folders), and downloads a
30 MB attachment while the daemon's peak RSS is watched.
"""
from __future__ import annotations

import base64
import os
import random
import struct
import urllib.parse
import uuid
from typing import Any

import requests
from twisted.trial.unittest import TestCase

from easyncd.backends.imap.connect import connect_imap
from easyncd.testing.daemon import SharedMailDaemon, mail_options, shared, folder_sync, wbxml_of
from easyncd.testing.dovecot import DovecotServer
from easyncd.wbxml import Element, decode, encode

USERS = {"alice": "alice-pw"}
IO = "ItemOperations:"
BIG = 30 * 1024 * 1024


def with_attachment(subject: str, payload: bytes, filename: str = "report.pdf",
                    content_type: str = "application/pdf") -> bytes:
    """A multipart/mixed message: a text part and one base64 attachment."""
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    head = (
        "From: Bob <bob@example.test>\r\nTo: Alice <alice@example.test>\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{uuid.uuid4().hex}@example.test>\r\n"
        "Date: Mon, 13 Nov 2023 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the attachment.\r\n"
        f'--b1\r\nContent-Type: {content_type}; name="{filename}"\r\n'
        f'Content-Disposition: attachment; filename="{filename}"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode("ascii")
    return head + encoded + b"--b1--\r\n"


def split_multipart(data: bytes) -> list[bytes]:
    """The parts of a MultiPartResponse, read independently of easyncd."""
    count = struct.unpack("<i", data[:4])[0]
    parts = []
    for index in range(count):
        offset, length = struct.unpack("<ii", data[4 + 8 * index:12 + 8 * index])
        parts.append(data[offset:offset + length])
    return parts


class _Environment(SharedMailDaemon):
    """Dovecot + the daemon, shared by this module's tests."""

    def __init__(self) -> None:
        self.dovecot = DovecotServer(USERS)
        self.payload = random.Random(5).randbytes(150_000)
        self.uid: int | None = None
        super().__init__(self.dovecot, lambda: mail_options(self.dovecot, **{"policy.mode": "none"}),
                         prefix="easyncd-items-")


def environment() -> _Environment:
    return shared(__name__, _Environment)


class MailItemsIntegrationTests(TestCase):
    """ItemOperations / GetAttachment / MoveItems against Dovecot."""

    timeout = 300

    async def setUp(self) -> None:  # type: ignore[override]
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.env = environment()
        self.daemon = self.env.daemon
        self.device = "dev" + uuid.uuid4().hex[:10]
        if self.env.uid is None:
            client = await self.imap()
            try:
                await client.create_mailbox("Projects")
                await client.append_message(
                    "Projects", with_attachment("Kick-off", b"agenda", "a.txt", "text/plain"), [])
                self.env.uid = await client.append_message(
                    "INBOX", with_attachment("Quarterly report", self.env.payload), [])
            finally:
                await client.logout_quietly()
        self.ids = self.folders()

    async def imap(self) -> Any:
        d = self.env.dovecot
        return await connect_imap(self.reactor, d.host, d.imap_port, "none", None,
                                  "alice", USERS["alice"], timeout=10, enable=())

    # -- HTTP ---------------------------------------------------------------------------

    def post(self, command: str, body: Element | None, *, version: str = "16.1",
             multipart: bool = False, query: dict[str, str] | None = None,
             stream: bool = False) -> requests.Response:
        params = {"Cmd": command, "User": "alice", "DeviceId": self.device,
                  "DeviceType": "TestPhone", **(query or {})}
        headers = {"MS-ASProtocolVersion": version,
                   "Content-Type": "application/vnd.ms-sync.wbxml"}
        if multipart:
            headers["MS-ASAcceptMultiPart"] = "T"
        url = f"{self.daemon.base}/Microsoft-Server-ActiveSync?{urllib.parse.urlencode(params)}"
        return requests.post(url, data=encode(body) if body is not None else b"",
                             headers=headers, auth=("alice", USERS["alice"]), timeout=120,
                             stream=stream)

    def wbxml(self, command: str, body: Element, version: str = "16.1") -> Element:
        response = self.post(command, body, version=version)
        self.assertEqual(response.status_code, 200, response.text)
        return wbxml_of(response)

    def folders(self) -> dict[str, str]:
        answer = self.wbxml("FolderSync", folder_sync())
        ids = {}
        for add in answer.findall("FolderHierarchy:Changes/FolderHierarchy:Add"):
            name = add.findtext("FolderHierarchy:DisplayName") or ""
            if add.findtext("FolderHierarchy:Type") == "2":
                ids["INBOX"] = add.findtext("FolderHierarchy:ServerId") or ""
            elif name == "Projects":
                ids["Projects"] = add.findtext("FolderHierarchy:ServerId") or ""
        self.assertEqual(set(ids), {"INBOX", "Projects"}, answer.to_xml())
        return ids

    def sync(self, folder: str, key: str) -> tuple[str, list[str], list[str]]:
        """One Sync of a mail folder: (new key, added ServerIds, deleted ServerIds)."""
        root = Element("AirSync:Sync")
        collection = root.add("AirSync:Collections").add("AirSync:Collection")
        collection.add("AirSync:SyncKey", key)
        collection.add("AirSync:CollectionId", folder)
        if key != "0":
            collection.add("AirSync:GetChanges", "1")
            collection.add("AirSync:WindowSize", "100")
            pref = collection.add("AirSync:Options").add("AirSyncBase:BodyPreference")
            pref.add("AirSyncBase:Type", "1")
            pref.add("AirSyncBase:TruncationSize", "200")
        response = self.post("Sync", root)
        self.assertEqual(response.status_code, 200, response.text)
        if not response.content:
            return key, [], []  # nothing changed (MS-ASCMD: an empty Sync response)
        answer = wbxml_of(response)
        found = answer.find("AirSync:Collections/AirSync:Collection")
        assert found is not None, answer.to_xml()
        self.assertEqual(found.findtext("AirSync:Status"), "1", answer.to_xml())
        adds = [a.findtext("AirSync:ServerId") or ""
                for a in found.findall("AirSync:Commands/AirSync:Add")]
        deletes = [a.findtext("AirSync:ServerId") or ""
                   for a in found.findall("AirSync:Commands/AirSync:Delete")]
        return found.findtext("AirSync:SyncKey") or "", adds, deletes

    def fetch_element(self, reference: str, byte_range: str | None = None) -> Element:
        fetch = Element(IO + "Fetch")
        fetch.add(IO + "Store", "Mailbox")
        fetch.add("AirSyncBase:FileReference", reference)
        if byte_range:
            fetch.add(IO + "Options").add(IO + "Range", byte_range)
        return Element(IO + "ItemOperations", children=[fetch])

    def item(self) -> Element:
        """The test message fetched by ServerId: its Properties."""
        fetch = Element(IO + "Fetch")
        fetch.add(IO + "Store", "Mailbox")
        fetch.add("AirSync:CollectionId", self.ids["INBOX"])
        fetch.add("AirSync:ServerId", f"{self.ids['INBOX']}:{self.env.uid}")
        pref = fetch.add(IO + "Options").add("AirSyncBase:BodyPreference")
        pref.add("AirSyncBase:Type", "1")
        answer = self.wbxml("ItemOperations", Element(IO + "ItemOperations", children=[fetch]))
        result = answer.find(f"{IO}Response/{IO}Fetch")
        assert result is not None, answer.to_xml()
        self.assertEqual(result.findtext(IO + "Status"), "1", answer.to_xml())
        self.assertEqual(result.findtext("AirSync:Class"), "Email")
        properties = result.find(IO + "Properties")
        assert properties is not None
        return properties

    def reference(self) -> str:
        properties = self.item()
        reference = properties.findtext(
            "AirSyncBase:Attachments/AirSyncBase:Attachment/AirSyncBase:FileReference")
        assert reference, properties.to_xml()
        return reference

    # -- tests --------------------------------------------------------------------------

    def test_fetch_item_by_server_id(self) -> None:
        properties = self.item()
        self.assertEqual(properties.findtext("Email:Subject"), "Quarterly report")
        self.assertIn("See the attachment.",
                      properties.findtext("AirSyncBase:Body/AirSyncBase:Data") or "")
        self.assertEqual(properties.findtext(
            "AirSyncBase:Attachments/AirSyncBase:Attachment/AirSyncBase:DisplayName"),
            "report.pdf")

    def test_fetch_attachment_inline_with_range(self) -> None:
        answer = self.wbxml("ItemOperations", self.fetch_element(self.reference(), "1000-4999"))
        result = answer.find(f"{IO}Response/{IO}Fetch")
        assert result is not None
        self.assertEqual(result.findtext(IO + "Status"), "1", answer.to_xml())
        self.assertEqual(result.findtext(f"{IO}Properties/{IO}Range"), "1000-4999")
        self.assertEqual(result.findtext(f"{IO}Properties/{IO}Total"),
                         str(len(self.env.payload)))
        self.assertEqual(result.findtext(f"{IO}Properties/AirSyncBase:ContentType"),
                         "application/pdf")
        data = base64.b64decode(result.findtext(f"{IO}Properties/{IO}Data") or "")
        self.assertEqual(data, self.env.payload[1000:5000])

    def test_fetch_attachment_multipart_whole(self) -> None:
        response = self.post("ItemOperations", self.fetch_element(self.reference()),
                             multipart=True)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers["Content-Type"], "application/vnd.ms-sync.multipart")
        self.assertEqual(int(response.headers["Content-Length"]), len(response.content))
        parts = split_multipart(response.content)
        self.assertEqual(len(parts), 2)
        answer = decode(parts[0])
        self.assertEqual(answer.findtext(f"{IO}Response/{IO}Fetch/{IO}Properties/{IO}Part"),
                         "1")
        self.assertEqual(parts[1], self.env.payload)

    def test_get_attachment_at_12_1(self) -> None:
        reference = self.reference()
        response = self.post("GetAttachment", None, version="12.1",
                             query={"AttachmentName": reference})
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.headers["Content-Type"], "application/pdf")
        self.assertEqual(response.content, self.env.payload)
        refused = self.post("GetAttachment", None, version="14.1",
                            query={"AttachmentName": reference})
        self.assertNotEqual(refused.status_code, 200)
        missing = self.post("GetAttachment", None, version="12.1",
                            query={"AttachmentName": f"{self.ids['INBOX']}:99999:2"})
        self.assertEqual(missing.status_code, 500)

    async def test_move_items_to_a_user_folder(self) -> None:
        client = await self.imap()
        try:
            uid = await client.append_message(
                "INBOX", with_attachment("Move me", b"tiny", "a.txt", "text/plain"), [])
        finally:
            await client.logout_quietly()
        inbox, projects = self.ids["INBOX"], self.ids["Projects"]
        inbox_key, _, _ = self.sync(inbox, "0")
        inbox_key, adds, _ = self.sync(inbox, inbox_key)
        self.assertIn(f"{inbox}:{uid}", adds)
        projects_key, _, _ = self.sync(projects, "0")
        projects_key, _, _ = self.sync(projects, projects_key)

        root = Element("Move:MoveItems")
        move = root.add("Move:Move")
        move.add("Move:SrcMsgId", f"{inbox}:{uid}")
        move.add("Move:SrcFldId", inbox)
        move.add("Move:DstFldId", projects)
        answer = self.wbxml("MoveItems", root)
        self.assertEqual(answer.findtext("Move:Response/Move:Status"), "3", answer.to_xml())
        destination = answer.findtext("Move:Response/Move:DstMsgId") or ""
        self.assertTrue(destination.startswith(projects + ":"), destination)
        new_uid = int(destination.split(":")[1])

        client = await self.imap()
        try:
            await client.select_mailbox("Projects", readonly=True)
            found, _ = await client.uid_fetch(str(new_uid), ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
            self.assertIn(b"Move me", b"".join(found[0].sections.values()))
            await client.select_mailbox("INBOX", readonly=True)
            self.assertNotIn(uid, await client.uid_search("ALL", charset=None))
        finally:
            await client.logout_quietly()

        # The device moved it itself: neither folder's next Sync mentions it.
        _, adds, deletes = self.sync(projects, projects_key)
        self.assertNotIn(destination, adds)
        _, adds, deletes = self.sync(inbox, inbox_key)
        self.assertNotIn(f"{inbox}:{uid}", deletes)

    async def test_big_attachment_streams_in_bounded_memory(self) -> None:
        payload = os.urandom(BIG)
        client = await self.imap()
        try:
            uid = await client.append_message("INBOX", with_attachment(
                "Big one", payload, "big.bin", "application/octet-stream"), [])
        finally:
            await client.logout_quietly()
        del payload  # keep only a digest in the test process
        reference = f"{self.ids['INBOX']}:{uid}:2"
        # Warm up the code paths, then measure.
        self.post("ItemOperations", self.fetch_element(reference, "0-99"), multipart=True)
        before = self.rss()
        response = self.post("ItemOperations", self.fetch_element(reference), multipart=True,
                             stream=True)
        self.assertEqual(response.status_code, 200)
        received = 0
        head = b""
        for chunk in response.iter_content(256 * 1024):
            if len(head) < 4096:
                head += chunk[:4096]
            received += len(chunk)
        self.assertEqual(received, int(response.headers["Content-Length"]))
        count, offset, length = struct.unpack("<iii", head[:12])
        self.assertEqual(count, 2)
        self.assertEqual(struct.unpack("<ii", head[12:20])[1], BIG)
        peak = self.rss()["VmHWM"]
        growth = peak - before["VmRSS"]
        self.assertLess(growth, 10 * 1024, f"daemon peak RSS grew by {growth} kB")

    def rss(self) -> dict[str, int]:
        """VmRSS and VmHWM of the daemon, in kB."""
        assert self.daemon.process is not None
        values = {}
        with open(f"/proc/{self.daemon.process.pid}/status", encoding="ascii") as handle:
            for line in handle:
                name, _, rest = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    values[name] = int(rest.split()[0])
        return values
