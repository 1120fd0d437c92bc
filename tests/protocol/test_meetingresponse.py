"""Tests for MeetingResponse (easyncd.protocol.commands.meetingresponse) and
the iTIP answer (easyncd.protocol.itip), with the memory store, the memory
groupware backend, a fake mail backend serving Dovecot-recorded messages and
a fake SMTP sender."""
from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
import json
import os
from datetime import datetime
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from twisted.internet.defer import fail, succeed
from twisted.mail.imap4 import parseNestedParens
from twisted.trial.unittest import TestCase

from easyncd.backends.groupware.event import (
    STATUS_ACCEPTED,
    STATUS_DECLINED,
    STATUS_TENTATIVE,
    Attendee,
    Event,
    Organizer,
)
from easyncd.backends.groupware.vobj.calendar import parse_ics, parse_itip, write_ics
from easyncd.backends.imap.client import FetchedMessage
from easyncd.backends.interfaces import FOLDER_DELETED, KIND_CALENDAR, MailBackendUnavailable
from easyncd.backends.smtp import SMTPRejected
from easyncd.protocol import itip
from easyncd.protocol.collections import groupware_backend_id
from easyncd.protocol.commands.meetingresponse import MeetingResponseCommand
from easyncd.protocol.context import CommandResponse
from easyncd.testing.memory_groupware import MemoryGroupwareBackend
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element, decode, encode
from tests.protocol.helpers import make_clock, make_context, result_of

MR = "MeetingResponse:"
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "mail")
UTC = ZoneInfo("UTC")

SINGLE_INVITE = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Test//EN\r
METHOD:{method}\r
BEGIN:VEVENT\r
UID:{uid}\r
SEQUENCE:2\r
DTSTAMP:20231120T080000Z\r
DTSTART:20231205T090000Z\r
DTEND:20231205T100000Z\r
{recurrence}SUMMARY:Budget review\r
ORGANIZER;CN=Bob:mailto:{organizer}\r
ATTENDEE;CN=Alice;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:alice@example.test\r
ATTENDEE;CN=Carol;PARTSTAT=ACCEPTED:mailto:carol@example.test\r
END:VEVENT\r
END:VCALENDAR\r
"""


def single_invite(method: str = "REQUEST", uid: str = "budget-1@example.test",
                  organizer: str = "bob@example.test", recurrence: str = "") -> str:
    """An invitation to a single event, addressed to alice@example.test."""
    return SINGLE_INVITE.format(method=method, uid=uid, organizer=organizer,
                                recurrence=recurrence)


def parsed(raw: bytes) -> EmailMessage:
    """A sent message, parsed."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(raw: bytes) -> tuple[EmailMessage, EmailMessage]:
    """(text/plain, text/calendar) of a reply mail."""
    message = parsed(raw)
    plain, cal = message.iter_parts()
    assert isinstance(plain, EmailMessage) and isinstance(cal, EmailMessage)
    return plain, cal


class FakeMessage:
    """A stored message: raw BODYSTRUCTURE (nested lists), sections, flags."""

    def __init__(self, structure: Any, sections: dict[str, bytes]) -> None:
        self.structure = structure
        self.sections = sections
        self.flags: set[str] = set()


def recorded(name: str) -> FakeMessage:
    """A fixture message as Dovecot recorded it."""
    with open(os.path.join(FIXTURES, name + ".imap.json"), encoding="ascii") as handle:
        raw = json.load(handle)
    return FakeMessage(parseNestedParens(raw["bodystructure"].encode("latin-1"))[0],
                       {k: v.encode("latin-1") for k, v in raw["sections"].items()})


def calendar_mail(ics: str, headers: str = "") -> FakeMessage:
    """A single-part text/calendar message."""
    data = ics.encode("utf-8")
    structure = ["text", "calendar", ["charset", "utf-8", "method", "REQUEST"], None, None,
                 "7bit", str(len(data)), "10", None, None, None, None]
    head = ("From: Bob <bob@example.test>\r\nTo: alice@example.test\r\n"
            "Subject: Invitation\r\n" + headers + "\r\n").encode("ascii")
    return FakeMessage(structure, {"HEADER": head, "1": data})


class FakeMail:
    """The IMailBackend methods MeetingResponse uses, over in-memory mailboxes."""

    def __init__(self, trash: str | None = "Trash") -> None:
        self.boxes: dict[str, dict[int, FakeMessage]] = {"INBOX": {}}
        self.trash = trash
        if trash:
            self.boxes[trash] = {}
        self.unavailable = False
        self.calls: list[tuple[Any, ...]] = []

    def put(self, message: FakeMessage, mailbox: str = "INBOX") -> int:
        box = self.boxes[mailbox]
        uid = max(box, default=0) + 1
        box[uid] = message
        return uid

    def _check(self) -> None:
        if self.unavailable:
            raise MailBackendUnavailable("connection refused")

    def fetch_messages(self, user: str, password: str, mailbox: str, uids: Sequence[int],
                       items: Sequence[str]) -> Any:
        self.calls.append(("fetch_messages", user, password, mailbox, tuple(uids), tuple(items)))
        try:
            self._check()
        except MailBackendUnavailable as exc:
            return fail(exc)
        found = []
        for uid in uids:
            message = self.boxes[mailbox].get(uid)
            if message is not None:
                found.append(FetchedMessage(uid=uid, flags=frozenset(message.flags),
                                            bodystructure=message.structure,
                                            sections={"HEADER": message.sections["HEADER"]}))
        return succeed(found)

    def fetch_part(self, user: str, password: str, mailbox: str, uid: int, part: str,
                   offset: int = 0, length: int | None = None) -> Any:
        self.calls.append(("fetch_part", mailbox, uid, part))
        return succeed(self.boxes[mailbox][uid].sections[part])

    def set_flags(self, user: str, password: str, mailbox: str, uids: Sequence[int],
                  add: Sequence[str] = (), remove: Sequence[str] = ()) -> Any:
        self.calls.append(("set_flags", mailbox, tuple(uids), tuple(add)))
        for uid in uids:
            self.boxes[mailbox][uid].flags |= set(add)
        return succeed({uid: frozenset(self.boxes[mailbox][uid].flags) for uid in uids})

    def special_folder(self, user: str, password: str, eas_type: int) -> Any:
        return succeed(self.trash if eas_type == FOLDER_DELETED else None)

    def move(self, user: str, password: str, mailbox: str, uids: Sequence[int],
             to_mailbox: str) -> Any:
        self.calls.append(("move", mailbox, tuple(uids), to_mailbox))
        moved = {}
        for uid in uids:
            moved[uid] = self.put(self.boxes[mailbox].pop(uid), to_mailbox)
        return succeed(moved)


class FakeSMTP:
    """Records what would be sent; ``error`` makes every send fail."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str], bytes, dict[str, Any]]] = []
        self.error: Exception | None = None

    def send(self, sender: str, recipients: list[str], message: bytes, **kwargs: Any) -> Any:
        if self.error is not None:
            return fail(self.error)
        self.sent.append((sender, recipients, message, kwargs))
        return succeed(None)


class MeetingResponseTests(TestCase):
    """The command over fakes."""

    def setUp(self) -> None:
        self.clock = make_clock()
        self.store = MemoryStateStore()
        self.groupware = MemoryGroupwareBackend(clock=self.clock)
        self.mail = FakeMail()
        self.smtp = FakeSMTP()
        self.inbox = result_of(self.store.add_folder("alice", "0", "Inbox", 2, "imap:INBOX"))
        calendars = result_of(self.groupware.list_collections("alice", KIND_CALENDAR))
        self.calendar_id = calendars[0].collection_id
        self.calendar = result_of(self.store.add_folder(
            "alice", "0", "Calendar", 8, groupware_backend_id(self.calendar_id)))

    # -- plumbing -----------------------------------------------------------------------

    def run_command(self, body: Element | None, version: str = "16.1",
                    overrides: Sequence[str] = ("auth.default_domain=example.test",)
                    ) -> CommandResponse:
        ctx = make_context(self.store, "MeetingResponse", version, clock=self.clock,
                           config_overrides=overrides,
                           services={"mail": self.mail, "smtp": self.smtp,
                                     "groupware": self.groupware})
        ctx.password = "pw"
        if body is not None:
            body = decode(encode(body))  # what the wire gives
        return result_of(MeetingResponseCommand().run(ctx, body))

    def request(self, user_response: int, request_id: str | None, *,
                collection_id: str | None = None, long_id: str | None = None,
                instance_id: str | None = None, send: Element | bool | None = None,
                ) -> Element:
        root = Element(MR + "MeetingResponse")
        self.add_request(root, user_response, request_id, collection_id=collection_id,
                         long_id=long_id, instance_id=instance_id, send=send)
        return root

    def add_request(self, root: Element, user_response: int, request_id: str | None, *,
                    collection_id: str | None = None, long_id: str | None = None,
                    instance_id: str | None = None, send: Element | bool | None = None
                    ) -> None:
        req = root.add(MR + "Request")
        req.add(MR + "UserResponse", str(user_response))
        if long_id is not None:
            req.add("Search:LongId", long_id)
        if request_id is not None:
            req.add(MR + "CollectionId", collection_id or request_id.split(":")[0])
            req.add(MR + "RequestId", request_id)
        if instance_id is not None:
            req.add(MR + "InstanceId", instance_id)
        if isinstance(send, Element):
            req.append(send)
        elif send:
            req.add(MR + "SendResponse")

    def results(self, response: CommandResponse) -> list[dict[str, str | None]]:
        assert response.body is not None
        self.assertEqual(response.body.tag, MR + "MeetingResponse")
        return [{"RequestId": r.findtext(MR + "RequestId"), "Status": r.findtext(MR + "Status"),
                 "CalendarId": r.findtext(MR + "CalendarId")}
                for r in response.body.findall(MR + "Result")]

    def one(self, response: CommandResponse) -> dict[str, str | None]:
        results = self.results(response)
        self.assertEqual(len(results), 1)
        return results[0]

    def inbox_id(self, uid: int) -> str:
        return f"{self.inbox.server_id}:{uid}"

    def calendar_items(self) -> list[Any]:
        _, ids = result_of(self.groupware.list_items("alice", self.calendar_id))
        items: list[Any] = result_of(self.groupware.get_items("alice", self.calendar_id, ids))
        return items

    def only_event(self) -> tuple[Any, Event]:
        items = self.calendar_items()
        self.assertEqual(len(items), 1)
        return items[0], parse_ics(items[0].data)

    @staticmethod
    def status_of(event: Event, address: str) -> int:
        return next(a.status for a in event.attendees if a.email == address)

    # -- accepting an invitation mail ------------------------------------------------------

    def test_accept_mail_files_the_event(self) -> None:
        """Accept: the event is in the default calendar with PARTSTAT=ACCEPTED,
        the answer names it, nothing is mailed without SendResponse."""
        uid = self.mail.put(recorded("meeting_request"))
        result = self.one(self.run_command(self.request(1, self.inbox_id(uid))))
        item, event = self.only_event()
        self.assertEqual(result, {"RequestId": self.inbox_id(uid), "Status": "1",
                                  "CalendarId": f"{self.calendar.server_id}:{item.item_id}"})
        self.assertEqual(event.uid, "meeting-7f3a@example.org")
        self.assertEqual(event.rrule, "FREQ=WEEKLY;BYDAY=MO;COUNT=10")
        # The account "alice" is alice@example.com in this invitation (local part).
        self.assertEqual(self.status_of(event, "alice@example.com"), STATUS_ACCEPTED)
        self.assertEqual(self.status_of(event, "dave@example.net"), 5)
        self.assertNotIn("METHOD", item.data)
        self.assertEqual(self.smtp.sent, [])

    def test_invitation_mail_goes_to_deleted_items(self) -> None:
        uid = self.mail.put(recorded("meeting_request"))
        self.run_command(self.request(1, self.inbox_id(uid)))
        self.assertEqual(self.mail.boxes["INBOX"], {})
        self.assertEqual(len(self.mail.boxes["Trash"]), 1)
        self.assertIn("\\Seen", self.mail.boxes["Trash"][1].flags)
        # Only what is needed was fetched: structure + header, then the calendar part.
        fetch = [c for c in self.mail.calls if c[0] == "fetch_messages"][0]
        self.assertEqual(fetch[1:4], ("alice", "pw", "INBOX"))
        self.assertEqual(set(fetch[5]), {"BODYSTRUCTURE", "BODY.PEEK[HEADER]"})
        self.assertIn(("fetch_part", "INBOX", uid, "1.3"), self.mail.calls)

    def test_without_trash_the_mail_stays_read(self) -> None:
        self.mail = FakeMail(trash=None)
        uid = self.mail.put(recorded("meeting_request"))
        self.assertEqual(self.one(self.run_command(self.request(2, self.inbox_id(uid))))
                         ["Status"], "1")
        self.assertEqual(self.mail.boxes["INBOX"][uid].flags, {"\\Seen"})

    def test_tentative(self) -> None:
        uid = self.mail.put(calendar_mail(single_invite()))
        self.assertEqual(self.one(self.run_command(self.request(2, self.inbox_id(uid))))
                         ["Status"], "1")
        _, event = self.only_event()
        self.assertEqual(self.status_of(event, "alice@example.test"), STATUS_TENTATIVE)
        self.assertEqual(self.status_of(event, "carol@example.test"), STATUS_ACCEPTED)
        self.assertEqual(event.busy_status, 1)
        self.assertIsNotNone(event.appointment_reply_time)

    def test_accept_twice_updates_the_same_item(self) -> None:
        first = self.mail.put(calendar_mail(single_invite()))
        second = self.mail.put(calendar_mail(single_invite()))
        one = self.one(self.run_command(self.request(2, self.inbox_id(first))))
        two = self.one(self.run_command(self.request(1, self.inbox_id(second))))
        item, event = self.only_event()
        self.assertEqual(one["CalendarId"], two["CalendarId"])
        self.assertEqual(self.status_of(event, "alice@example.test"), STATUS_ACCEPTED)

    def test_decline_files_nothing(self) -> None:
        uid = self.mail.put(calendar_mail(single_invite()))
        result = self.one(self.run_command(self.request(3, self.inbox_id(uid))))
        self.assertEqual(result["Status"], "1")
        self.assertIsNone(result["CalendarId"])
        self.assertEqual(self.calendar_items(), [])

    def test_decline_removes_an_accepted_event(self) -> None:
        first = self.mail.put(calendar_mail(single_invite()))
        second = self.mail.put(calendar_mail(single_invite()))
        self.run_command(self.request(1, self.inbox_id(first)))
        self.assertEqual(len(self.calendar_items()), 1)
        result = self.one(self.run_command(self.request(3, self.inbox_id(second))))
        self.assertEqual((result["Status"], result["CalendarId"]), ("1", None))
        self.assertEqual(self.calendar_items(), [])

    def test_several_requests_each_answered(self) -> None:
        good = self.mail.put(calendar_mail(single_invite()))
        root = Element(MR + "MeetingResponse")
        self.add_request(root, 1, self.inbox_id(good))
        self.add_request(root, 1, self.inbox_id(99))
        response = self.run_command(root)
        self.assertEqual([r["Status"] for r in self.results(response)], ["1", "2"])
        self.assertEqual(response.status, "2")

    def test_long_id(self) -> None:
        uid = self.mail.put(calendar_mail(single_invite()))
        result = self.one(self.run_command(self.request(1, None, long_id=self.inbox_id(uid))))
        self.assertEqual(result["Status"], "1")
        self.assertIsNone(result["RequestId"])
        self.assertIsNotNone(result["CalendarId"])

    # -- the iTIP reply ------------------------------------------------------------------

    def test_send_response_at_16_sends_a_reply(self) -> None:
        uid = self.mail.put(recorded("meeting_request"))
        send = Element(MR + "SendResponse")
        body = send.add("AirSyncBase:Body")
        body.add("AirSyncBase:Type", "1")
        body.add("AirSyncBase:Data", "See you there")
        self.assertEqual(self.one(self.run_command(self.request(1, self.inbox_id(uid),
                                                                send=send)))["Status"], "1")
        self.assertEqual(len(self.smtp.sent), 1)
        sender, recipients, raw, kwargs = self.smtp.sent[0]
        self.assertEqual((sender, recipients), ("alice@example.com", ["bob@example.org"]))
        self.assertEqual(kwargs, {"username": "alice", "password": "pw"})
        message = parsed(raw)
        self.assertEqual(message["Subject"], "Accepted: Weekly planning")
        self.assertEqual(message.get_content_type(), "multipart/alternative")
        plain, cal = parts(raw)
        self.assertEqual(plain.get_content().strip(), "See you there")
        self.assertEqual(cal.get_content_type(), "text/calendar")
        self.assertEqual(cal.get_param("method"), "REPLY")
        method, reply, recurrence_id = parse_itip(cal.get_content())
        self.assertEqual(method, "REPLY")
        self.assertIsNone(recurrence_id)
        self.assertEqual(reply.uid, "meeting-7f3a@example.org")
        self.assertEqual(reply.organizer, Organizer("bob@example.org", "Bob Sender"))
        self.assertEqual([(a.email, a.status) for a in reply.attendees],
                         [("alice@example.com", STATUS_ACCEPTED)])
        self.assertIn(b"\r\n", raw)
        self.assertNotIn(b"\r\r", raw)

    def test_reply_keeps_sequence_and_recurrence_id(self) -> None:
        invite = single_invite(recurrence="RECURRENCE-ID:20231205T090000Z\r\n")
        uid = self.mail.put(calendar_mail(invite))
        self.run_command(self.request(3, self.inbox_id(uid), send=True))
        message = parsed(self.smtp.sent[0][2])
        self.assertEqual(message["Subject"], "Declined: Budget review")
        cal = parts(self.smtp.sent[0][2])[1]
        text = cal.get_content()
        self.assertIn("SEQUENCE:2", text)
        self.assertIn("RECURRENCE-ID:20231205T090000Z", text)
        self.assertIn("PARTSTAT=DECLINED", text)
        self.assertNotIn("carol@example.test", text)

    def test_no_reply_before_16(self) -> None:
        """14.1: the device sends the answer itself (SendMail); the server
        files the event only."""
        uid = self.mail.put(calendar_mail(single_invite()))
        result = self.one(self.run_command(self.request(1, self.inbox_id(uid), send=True),
                                           version="14.1"))
        self.assertEqual(result["Status"], "1")
        self.assertEqual(self.smtp.sent, [])
        self.assertEqual(len(self.calendar_items()), 1)

    def test_no_send_response_no_reply_at_16(self) -> None:
        uid = self.mail.put(calendar_mail(single_invite()))
        self.run_command(self.request(1, self.inbox_id(uid)))
        self.assertEqual(self.smtp.sent, [])

    def test_proposed_time_is_a_counter(self) -> None:
        uid = self.mail.put(calendar_mail(single_invite()))
        send = Element(MR + "SendResponse")
        send.add(MR + "ProposedStartTime", "2023-12-05T13:00:00.000Z")
        send.add(MR + "ProposedEndTime", "2023-12-05T14:00:00.000Z")
        self.assertEqual(self.one(self.run_command(self.request(2, self.inbox_id(uid),
                                                                send=send)))["Status"], "1")
        message = parsed(self.smtp.sent[0][2])
        self.assertTrue(str(message["Subject"]).startswith("New Time Proposed"))
        cal = parts(self.smtp.sent[0][2])[1]
        self.assertEqual(cal.get_param("method"), "COUNTER")
        method, counter, _ = parse_itip(cal.get_content())
        self.assertEqual(method, "COUNTER")
        self.assertEqual(counter.start, datetime(2023, 12, 5, 13, tzinfo=UTC))
        # The calendar keeps the organizer's time.
        _, event = self.only_event()
        self.assertEqual(event.start, datetime(2023, 12, 5, 9, tzinfo=UTC))

    def test_smtp_failure_is_status_3(self) -> None:
        self.smtp.error = SMTPRejected(True, 550, "no such user")
        uid = self.mail.put(calendar_mail(single_invite()))
        result = self.one(self.run_command(self.request(1, self.inbox_id(uid), send=True)))
        self.assertEqual(result, {"RequestId": self.inbox_id(uid), "Status": "3",
                                  "CalendarId": None})
        # The invitation stays for the retry.
        self.assertIn(uid, self.mail.boxes["INBOX"])

    # -- refusals --------------------------------------------------------------------------

    def assert_status(self, body: Element, status: str, version: str = "16.1") -> None:
        self.assertEqual(self.one(self.run_command(body, version))["Status"], status)
        self.assertEqual(self.calendar_items(), [])
        self.assertEqual(self.smtp.sent, [])

    def test_bad_user_response(self) -> None:
        uid = self.mail.put(calendar_mail(single_invite()))
        self.assert_status(self.request(4, self.inbox_id(uid)), "2")

    def test_unknown_message(self) -> None:
        self.assert_status(self.request(1, self.inbox_id(42)), "2")

    def test_request_id_of_another_folder(self) -> None:
        uid = self.mail.put(calendar_mail(single_invite()))
        self.assert_status(self.request(1, self.inbox_id(uid),
                                        collection_id=self.calendar.server_id), "2")

    def test_unknown_folder(self) -> None:
        self.assert_status(self.request(1, "999:1"), "2")

    def test_mail_without_invitation(self) -> None:
        uid = self.mail.put(recorded("plain"))
        self.assert_status(self.request(1, self.inbox_id(uid)), "2")

    def test_cancellation_is_no_request(self) -> None:
        uid = self.mail.put(recorded("meeting_cancel"))
        self.assert_status(self.request(1, self.inbox_id(uid)), "2")

    def test_own_meeting(self) -> None:
        uid = self.mail.put(calendar_mail(single_invite(organizer="alice@example.test")))
        self.assert_status(self.request(1, self.inbox_id(uid)), "2")

    def test_instance_id_on_a_mail(self) -> None:
        uid = self.mail.put(recorded("meeting_request"))
        self.assert_status(self.request(1, self.inbox_id(uid),
                                        instance_id="2023-12-11T09:00:00.000Z"), "2")

    def test_imap_unavailable_is_status_3(self) -> None:
        uid = self.mail.put(calendar_mail(single_invite()))
        self.mail.unavailable = True
        self.assert_status(self.request(1, self.inbox_id(uid)), "3")

    def test_empty_body(self) -> None:
        response = self.run_command(None, "14.1")
        assert response.body is not None
        self.assertEqual(response.body.findtext(MR + "Status"), "103")
        self.assertEqual(self.run_command(None, "12.1").http_status, 400)
        self.assertEqual(self.run_command(Element(MR + "MeetingResponse"), "16.1").status,
                         "103")

    # -- calendar items -------------------------------------------------------------------

    def put_item(self, recurring: bool = True) -> str:
        event = Event(uid="series-1@example.test", summary="Standup",
                      start=datetime(2023, 12, 4, 9, tzinfo=ZoneInfo("Europe/Berlin")),
                      end=datetime(2023, 12, 4, 9, 15, tzinfo=ZoneInfo("Europe/Berlin")),
                      organizer=Organizer("bob@example.test"),
                      attendees=[Attendee("alice@example.test", status=5, rsvp=True)],
                      rrule="FREQ=DAILY;COUNT=5" if recurring else None)
        item = result_of(self.groupware.add_item("alice", self.calendar_id, write_ics(event)))
        return f"{self.calendar.server_id}:{item.item_id}"

    def test_accept_calendar_item(self) -> None:
        server_id = self.put_item()
        result = self.one(self.run_command(self.request(1, server_id, send=True)))
        self.assertEqual(result, {"RequestId": server_id, "Status": "1",
                                  "CalendarId": server_id})
        _, event = self.only_event()
        self.assertEqual(self.status_of(event, "alice@example.test"), STATUS_ACCEPTED)
        self.assertEqual(self.smtp.sent[0][:2], ("alice@example.test", ["bob@example.test"]))

    def test_decline_calendar_item_removes_it(self) -> None:
        server_id = self.put_item()
        result = self.one(self.run_command(self.request(3, server_id)))
        self.assertEqual((result["Status"], result["CalendarId"]), ("1", None))
        self.assertEqual(self.calendar_items(), [])

    def test_decline_one_instance(self) -> None:
        server_id = self.put_item()
        # 2023-12-06 09:00 Berlin = 08:00Z.
        result = self.one(self.run_command(self.request(
            3, server_id, instance_id="2023-12-06T08:00:00.000Z", send=True)))
        self.assertEqual(result["Status"], "1")
        _, event = self.only_event()
        self.assertEqual([(o.original_start, o.deleted) for o in event.exceptions],
                         [(datetime(2023, 12, 6, 9, tzinfo=ZoneInfo("Europe/Berlin")), True)])
        self.assertEqual(self.status_of(event, "alice@example.test"), 5)
        text = parts(self.smtp.sent[0][2])[1].get_content()
        self.assertIn("RECURRENCE-ID:20231206T080000Z", text)

    def test_accept_one_instance(self) -> None:
        server_id = self.put_item()
        self.one(self.run_command(self.request(1, server_id,
                                               instance_id="2023-12-05T08:00:00.000Z")))
        _, event = self.only_event()
        self.assertEqual(len(event.exceptions), 1)
        occurrence = event.exceptions[0]
        self.assertFalse(occurrence.deleted)
        assert occurrence.attendees is not None
        self.assertEqual(occurrence.attendees[0].status, STATUS_ACCEPTED)
        self.assertEqual(self.status_of(event, "alice@example.test"), 5)

    def test_instance_errors(self) -> None:
        server_id = self.put_item()
        self.assertEqual(self.one(self.run_command(self.request(
            1, server_id, instance_id="2023-12-05T08:30:00.000Z")))["Status"], "2")
        self.assertEqual(self.one(self.run_command(self.request(
            1, server_id, instance_id="yesterday")))["Status"], "104")
        self.assertEqual(self.one(self.run_command(self.request(
            1, server_id, instance_id="2023-12-05T08:00:00.000Z"), "14.0"))["Status"], "2")
        single = self.put_item(recurring=False)
        self.assertEqual(self.one(self.run_command(self.request(
            1, single, instance_id="2023-12-04T08:00:00.000Z")))["Status"], "146")


class ITIPTests(TestCase):
    """easyncd.protocol.itip on its own."""

    def event(self) -> Event:
        return Event(uid="u1", summary="Plan", start=datetime(2024, 1, 8, 10, tzinfo=UTC),
                     end=datetime(2024, 1, 8, 11, tzinfo=UTC),
                     organizer=Organizer("boss@example.test", "Boss"),
                     attendees=[Attendee("Alice@Example.test", "Alice", rsvp=True),
                                Attendee("al@other.test")])

    def test_find_attendee(self) -> None:
        event = self.event()
        self.assertEqual(itip.find_attendee(event, ["alice@example.test"]),
                         event.attendees[0])
        self.assertEqual(itip.find_attendee(event, ["mailto:AL@other.test"]),
                         event.attendees[1])
        self.assertEqual(itip.find_attendee(event, [], "alice"), event.attendees[0])
        self.assertIsNone(itip.find_attendee(event, [], "bob"))
        self.assertTrue(itip.is_organizer(event, ["BOSS@example.test"]))
        self.assertFalse(itip.is_organizer(event, ["alice@example.test"]))

    def test_set_status(self) -> None:
        event = self.event()
        now = datetime(2024, 1, 1, tzinfo=UTC)
        itip.set_status(event, event.attendees[0], STATUS_DECLINED, now)
        self.assertEqual([(a.status, a.rsvp) for a in event.attendees],
                         [(STATUS_DECLINED, False), (0, False)])
        self.assertEqual(event.appointment_reply_time, now)

    def test_reply_without_organizer(self) -> None:
        event = self.event()
        event.organizer = None
        with self.assertRaises(ValueError):
            itip.build_reply(event, event.attendees[0], STATUS_ACCEPTED,
                             datetime(2024, 1, 1, tzinfo=UTC))

    def test_default_reply_text(self) -> None:
        event = self.event()
        mail = itip.build_reply(event, event.attendees[0], STATUS_TENTATIVE,
                                datetime(2024, 1, 1, tzinfo=UTC))
        message = parsed(mail.message)
        self.assertEqual(message["From"], "Alice <Alice@Example.test>")
        self.assertEqual(message["To"], "Boss <boss@example.test>")
        self.assertEqual(message["Message-ID"], mail.message_id)
        plain = parts(mail.message)[0].get_content()
        self.assertIn("Alice has tentatively accepted: Plan", plain)
