"""MeetingResponse through the real daemon, with real Dovecot and Postfix.

alice (the attendee) and bob (the organizer) are both local users: an
invitation from bob is appended to alice's INBOX, alice's device answers with
MeetingResponse, and the test checks her calendar (``easyncd-admin collection
export``), her mailbox (the invitation moved to Trash) and bob's INBOX (the
iTIP REPLY the server sent at 16.1 with SendResponse; nothing at 14.1, where
the device sends its own answer).
"""
from __future__ import annotations

import email
import json
import uuid
from email import policy as email_policy
from typing import Any

from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from easyncd.backends.groupware.event import STATUS_ACCEPTED, STATUS_DECLINED, STATUS_TENTATIVE
from easyncd.backends.groupware.vobj.calendar import parse_ics, parse_itip
from easyncd.backends.groupware.vobj.split import split_icalendar
from easyncd.backends.imap.client import IMAPError
from easyncd.backends.imap.connect import connect_imap
from easyncd.testing.daemon import SharedMailDaemon, mail_options, shared, folder_sync, wbxml_of
from easyncd.testing.smtpserver import MailServers, read_inbox
from easyncd.wbxml import Element

USERS = {"alice": "alice-pw", "bob": "bob-pw"}
MR = "MeetingResponse:"
#: Trash and Sent as SPECIAL-USE mailboxes, created on first login.
SPECIAL_USE = """
namespace inbox {
  inbox = yes
  mailbox Trash {
    auto = create
    special_use = \\Trash
  }
  mailbox Sent {
    auto = create
    special_use = \\Sent
  }
}
"""


def invitation(uid: str, summary: str) -> bytes:
    """A meeting request from bob to alice, as Thunderbird or Outlook send it."""
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nMETHOD:REQUEST\r\n"
        "BEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nSEQUENCE:0\r\nDTSTAMP:20231120T080000Z\r\n"
        "DTSTART:20231205T090000Z\r\nDTEND:20231205T100000Z\r\n"
        f"SUMMARY:{summary}\r\nLOCATION:Room 1\r\n"
        "ORGANIZER;CN=Bob:mailto:bob@example.test\r\n"
        "ATTENDEE;CN=Alice;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:"
        "mailto:alice@example.test\r\n"
        "ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:bob@example.test\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n")
    return (
        "From: Bob <bob@example.test>\r\nTo: Alice <alice@example.test>\r\n"
        f"Subject: Invitation: {summary}\r\nMessage-ID: <{uid}>\r\n"
        "Date: Mon, 20 Nov 2023 08:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative; boundary=ALT\r\n\r\n"
        "--ALT\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"You are invited to {summary}.\r\n"
        "--ALT\r\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\r\n\r\n"
        + ics + "--ALT--\r\n").encode("utf-8")


class _Environment(SharedMailDaemon):
    """Postfix + Dovecot + the daemon, shared by this module's tests."""

    def __init__(self) -> None:
        self.servers = MailServers(USERS, dovecot_extra_config=SPECIAL_USE)
        s = self.servers
        super().__init__(s, lambda: mail_options(s.dovecot, smtp_port=s.submission_port,
                                         domain=s.domain, **{"policy.mode": "none"}),
                         prefix="easyncd-meeting-")


def environment() -> _Environment:
    return shared(__name__, _Environment)


class MeetingResponseIntegrationTests(TestCase):
    """Accept, tentative and decline of invitations that arrived by mail."""

    timeout = 120

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.env = environment()
        self.servers = self.env.servers
        self.daemon = self.env.daemon
        self.device = "dev" + uuid.uuid4().hex[:10]
        self.marker = "meet-" + uuid.uuid4().hex[:10]
        self.uid = f"{self.marker}@example.test"

    # -- helpers -----------------------------------------------------------------------

    def post(self, command: str, body: Element, version: str = "16.1") -> Element:
        response = self.daemon.post(command, body, user="alice", password=USERS["alice"],
                                    device_id=self.device, version=version)
        self.assertEqual(response.status_code, 200, response.text)
        return wbxml_of(response)

    def folders(self) -> dict[str, str]:
        """FolderSync: folder type -> ServerId (the first of each type)."""
        answer = self.post("FolderSync", folder_sync())
        found: dict[str, str] = {}
        for add in answer.findall("FolderHierarchy:Changes/FolderHierarchy:Add"):
            found.setdefault(add.findtext("FolderHierarchy:Type") or "",
                             add.findtext("FolderHierarchy:ServerId") or "")
        self.assertIn("2", found, "FolderSync lists no Inbox")
        self.assertIn("8", found, "FolderSync lists no Calendar")
        return found

    async def imap(self, user: str) -> Any:
        s = self.servers
        return await connect_imap(self.reactor, s.host, s.dovecot.imap_port, "none", None,
                                  user, USERS[user], timeout=10, enable=())

    async def deliver(self, message: bytes) -> int:
        """APPEND to alice's INBOX; the UID."""
        client = await self.imap("alice")
        try:
            uid = await client.append_message("INBOX", message, [])
            assert uid is not None
            return int(uid)
        finally:
            await client.logout_quietly()

    async def mailbox(self, name: str) -> list[tuple[frozenset[str], bytes]]:
        client = await self.imap("alice")
        try:
            try:
                selected = await client.select_mailbox(name, readonly=True)
            except IMAPError:
                return []
            if not selected.exists:
                return []
            fetched, _ = await client.uid_fetch("1:*", ["FLAGS", "BODY.PEEK[]"])
            return [(m.flags or frozenset(), m.sections[""]) for m in fetched]
        finally:
            await client.logout_quietly()

    async def replies_to_bob(self, wait: float = 20.0) -> list[bytes]:
        """bob's messages about this test's meeting (waiting up to ``wait`` s)."""
        s = self.servers
        deadline = self.reactor.seconds() + wait
        while True:
            messages = await read_inbox(self.reactor, s.host, s.dovecot.imap_port, "bob",
                                        USERS["bob"])
            found = [m for m in messages if self.marker.encode() in m]
            if found or self.reactor.seconds() > deadline:
                return found
            await deferLater(self.reactor, 0.2)

    def sync(self, folder: str, key: str = "0") -> Element:
        request = Element("AirSync:Sync")
        collection = request.add("AirSync:Collections").add("AirSync:Collection")
        collection.add("AirSync:SyncKey", key)
        collection.add("AirSync:CollectionId", folder)
        if key != "0":
            collection.add("AirSync:WindowSize", "512")
        answer = self.post("Sync", request)
        found = answer.find("AirSync:Collections/AirSync:Collection")
        assert found is not None, answer.to_xml()
        return found

    def synced_adds(self, folder: str) -> dict[str, Element]:
        """A device's first Sync of a folder: ServerId -> ApplicationData."""
        key = self.sync(folder).findtext("AirSync:SyncKey") or ""
        adds: dict[str, Element] = {}
        while True:
            collection = self.sync(folder, key)
            key = collection.findtext("AirSync:SyncKey") or key
            for add in collection.findall("AirSync:Commands/AirSync:Add"):
                data = add.find("AirSync:ApplicationData")
                assert data is not None
                adds[add.findtext("AirSync:ServerId") or ""] = data
            if collection.find("AirSync:MoreAvailable") is None:
                return adds

    def invitation_id(self, inbox: str, count: int = 1) -> list[int]:
        """The UIDs of this test's invitations, as the device's Inbox Sync shows them."""
        found = []
        for server_id, data in self.synced_adds(inbox).items():
            if self.marker in (data.findtext("Email:Subject") or ""):
                self.assertEqual(data.findtext("Email:MessageClass"),
                                 "IPM.Schedule.Meeting.Request")
                found.append(int(server_id.split(":", 1)[1]))
        self.assertEqual(len(found), count)
        return sorted(found)

    def respond(self, inbox: str, uid: int, user_response: int, version: str = "16.1",
                text: str | None = None) -> Element:
        root = Element(MR + "MeetingResponse")
        request = root.add(MR + "Request")
        request.add(MR + "UserResponse", str(user_response))
        request.add(MR + "CollectionId", inbox)
        request.add(MR + "RequestId", f"{inbox}:{uid}")
        if text is not None:
            body = request.add(MR + "SendResponse").add("AirSyncBase:Body")
            body.add("AirSyncBase:Type", "1")
            body.add("AirSyncBase:Data", text)
        answer = self.post("MeetingResponse", root, version)
        result = answer.find(MR + "Result")
        assert result is not None, answer.to_xml()
        self.assertEqual(result.findtext(MR + "RequestId"), f"{inbox}:{uid}")
        return result

    def assert_ok(self, result: Element) -> None:
        self.assertEqual(result.findtext(MR + "Status"), "1", self.daemon.log()[-4000:])

    def calendar_export(self) -> str:
        listed = json.loads(self.daemon.admin("collection", "list", "alice", "--json").stdout)
        calendars = [c for c in listed if c["kind"] == "calendar" and c["default"]]
        self.assertEqual(len(calendars), 1, listed)
        return self.daemon.admin("collection", "export", "alice", calendars[0]["id"]).stdout

    def exported_event(self) -> str | None:
        """This test's event in alice's exported default calendar, None if absent."""
        items = [i for i in split_icalendar(self.calendar_export()) if i.uid == self.uid]
        self.assertLessEqual(len(items), 1)
        return items[0].text if items else None

    def alice_status(self) -> int:
        text = self.exported_event()
        assert text is not None, "the event is not in the calendar"
        self.assertNotIn("METHOD:", text)
        event = parse_ics(text)
        return next(a.status for a in event.attendees if a.email == "alice@example.test")

    def reply_of(self, raw: bytes) -> tuple[str, str]:
        """(Subject, text/calendar part) of a reply mail, checking its form."""
        message = email.message_from_bytes(raw, policy=email_policy.default)
        self.assertEqual(message.get_content_type(), "multipart/alternative")
        self.assertEqual(message["From"], "Alice <alice@example.test>")
        parts = {p.get_content_type(): p for p in message.iter_parts()}
        calendar = parts["text/calendar"]
        self.assertEqual(calendar.get_param("method"), "REPLY")
        return str(message["Subject"]), calendar.get_content()

    # -- tests -----------------------------------------------------------------------

    async def test_accept_16_1_files_event_and_replies(self) -> None:
        folders = self.folders()
        await self.deliver(invitation(self.uid, "Planning " + self.marker))
        [uid] = self.invitation_id(folders["2"])
        result = self.respond(folders["2"], uid, 1, text="Count me in")
        self.assert_ok(result)
        calendar_id = result.findtext(MR + "CalendarId") or ""
        self.assertTrue(calendar_id.startswith(folders["8"] + ":"), calendar_id)

        self.assertEqual(self.alice_status(), STATUS_ACCEPTED)

        [reply] = await self.replies_to_bob()
        subject, ics = self.reply_of(reply)
        self.assertEqual(subject, f"Accepted: Planning {self.marker}")
        self.assertIn(b"Count me in", reply)
        method, event, _ = parse_itip(ics)
        self.assertEqual((method, event.uid), ("REPLY", self.uid))
        self.assertEqual([(a.email, a.status) for a in event.attendees],
                         [("alice@example.test", STATUS_ACCEPTED)])

        # The invitation left the Inbox for Deleted Items.
        inbox = [m for _, m in await self.mailbox("INBOX") if self.marker.encode() in m]
        trash = [f for f, m in await self.mailbox("Trash") if self.marker.encode() in m]
        self.assertEqual(inbox, [])
        self.assertEqual(len(trash), 1)
        self.assertIn("\\Seen", trash[0])

        # A calendar Sync brings the new item under the same ServerId.
        ids = list(self.synced_adds(folders["8"]))
        self.assertIn(calendar_id, ids)

    async def test_tentative_then_decline(self) -> None:
        folders = self.folders()
        await self.deliver(invitation(self.uid, "Review " + self.marker))
        await self.deliver(invitation(self.uid, "Review " + self.marker))
        first, second = self.invitation_id(folders["2"], 2)
        result = self.respond(folders["2"], first, 2)
        self.assert_ok(result)
        self.assertEqual(self.alice_status(), STATUS_TENTATIVE)

        result = self.respond(folders["2"], second, 3, text="")
        self.assert_ok(result)
        self.assertIsNone(result.find(MR + "CalendarId"))
        self.assertIsNone(self.exported_event())
        [reply] = await self.replies_to_bob()
        subject, ics = self.reply_of(reply)
        self.assertEqual(subject, f"Declined: Review {self.marker}")
        _, event, _ = parse_itip(ics)
        self.assertEqual(event.attendees[0].status, STATUS_DECLINED)

    async def test_decline_files_nothing(self) -> None:
        folders = self.folders()
        await self.deliver(invitation(self.uid, "Party " + self.marker))
        [uid] = self.invitation_id(folders["2"])
        result = self.respond(folders["2"], uid, 3)
        self.assert_ok(result)
        self.assertIsNone(self.exported_event())

    async def test_accept_14_1_leaves_the_reply_to_the_device(self) -> None:
        folders = self.folders()
        await self.deliver(invitation(self.uid, "Lunch " + self.marker))
        [uid] = self.invitation_id(folders["2"])
        result = self.respond(folders["2"], uid, 1, version="14.1")
        self.assert_ok(result)
        self.assertEqual(self.alice_status(), STATUS_ACCEPTED)
        self.assertEqual(await self.replies_to_bob(wait=3.0), [])

    async def test_unknown_message(self) -> None:
        folders = self.folders()
        result = self.respond(folders["2"], 999999, 1)
        self.assertEqual(result.findtext(MR + "Status"), "2")
