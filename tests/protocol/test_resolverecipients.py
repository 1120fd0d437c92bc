"""ResolveRecipients: local users and contacts, ambiguity, certificates,
free/busy from the groupware calendars, photos, version gates, bad requests."""
from __future__ import annotations

import base64
import datetime
import os
import tempfile
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from twisted.internet.defer import fail
from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.groupware.event import Event
from easyncd.backends.groupware.vobj import parse_ics
from easyncd.backends.interfaces import KIND_CALENDAR, KIND_CONTACTS
from easyncd.protocol import dispatch as dispatch_module
from easyncd.protocol.commands import COMMANDS
from easyncd.protocol.commands.resolverecipients import (
    ResolveRecipientsCommand,
    busy_periods,
    freebusy_slots,
)
from easyncd.protocol.context import CommandResponse
from easyncd.testing.memory_groupware import MemoryGroupwareBackend
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element, decode, encode
from tests.protocol.helpers import dispatch_sync, make_context, provision_device, result_of

NS = "ResolveRecipients:"
UTC = datetime.timezone.utc
PHOTO = b"\xff\xd8\xff\xe0" + b"photo-bytes" * 10


def vcard(uid: str, fn: str, given: str, family: str, *emails: str,
          photo: bytes | None = None, nickname: str | None = None) -> str:
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"UID:{uid}", f"FN:{fn}", f"N:{family};{given};;;"]
    lines += [f"EMAIL;TYPE=INTERNET:{email}" for email in emails]
    if nickname:
        lines.append(f"NICKNAME:{nickname}")
    if photo is not None:
        lines.append("PHOTO;ENCODING=b;TYPE=JPEG:" + base64.b64encode(photo).decode("ascii"))
    lines.append("END:VCARD")
    return "\r\n".join(lines) + "\r\n"


def vevent(uid: str, start: str, end: str, *extra: str) -> str:
    return "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//easyncd tests//EN",
        "BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20240101T000000Z",
        f"DTSTART:{start}", f"DTEND:{end}", "SUMMARY:x", *extra,
        "END:VEVENT", "END:VCALENDAR",
    ]) + "\r\n"


def request(*to: str, options: Iterable[Element] = ()) -> Element:
    root = Element(NS + "ResolveRecipients")
    for value in to:
        root.add(NS + "To", value)
    children = list(options)
    if children:
        root.append(Element(NS + "Options", None, children))
    return root


def availability(start: str, end: str) -> Element:
    return Element(NS + "Availability", None, [Element(NS + "StartTime", start),
                                                Element(NS + "EndTime", end)])


class ResolveTestCase(SynchronousTestCase):
    """Alice asks; bob and carol are in the users file; alice has contacts."""

    def setUp(self) -> None:
        self.store: Any = MemoryStateStore()
        result_of(self.store.migrate())
        self.groupware: Any = MemoryGroupwareBackend()
        directory = tempfile.mkdtemp()
        self.users_file = os.path.join(directory, "users")
        self.addCleanup(os.rmdir, directory)
        self.addCleanup(os.remove, self.users_file)
        with open(self.users_file, "w", encoding="utf-8") as handle:
            handle.write("alice:x\nbob:x\ncarol:x\n")
        self.add_contact(vcard("c1", "Zoe Zimmer", "Zoe", "Zimmer", "zoe@elsewhere.org",
                               photo=PHOTO))
        self.add_contact(vcard("c2", "John Smith", "John", "Smith", "john@smith.net"))
        self.add_contact(vcard("c3", "Jane Smith", "Jane", "Smith", "jane@smith.net",
                               "jane.work@corp.net"))
        self.add_contact(vcard("c4", "Robert Builder", "Robert", "Builder", "bob@example.com",
                               nickname="Bobby"))

    def default(self, user: str, kind: str) -> str:
        for collection in result_of(self.groupware.list_collections(user, kind)):
            if collection.is_default:
                return str(collection.collection_id)
        raise AssertionError(kind)

    def add_contact(self, data: str, user: str = "alice") -> None:
        result_of(self.groupware.add_item(user, self.default(user, KIND_CONTACTS), data))

    def add_event(self, data: str, user: str = "bob") -> None:
        result_of(self.groupware.add_item(user, self.default(user, KIND_CALENDAR), data))

    def resolve(self, body: Element | None, version: str = "16.1",
                overrides: Iterable[str] = (), groupware: Any = None) -> CommandResponse:
        ctx = make_context(
            self.store, "ResolveRecipients", version,
            config_overrides=("auth.default_domain=example.com",
                              f"auth.users_file={self.users_file}", *overrides),
            services={"groupware": groupware or self.groupware})
        response = result_of(ResolveRecipientsCommand().run(ctx, body))
        assert response.body is not None
        self.assertEqual(decode(encode(response.body)), response.body)
        return response

    def responses(self, body: Element, **kwargs: Any) -> list[Element]:
        answer = self.resolve(body, **kwargs)
        assert answer.body is not None
        self.assertEqual(answer.body.findtext(NS + "Status"), "1")
        return answer.body.findall(NS + "Response")

    def one(self, body: Element, **kwargs: Any) -> Element:
        found = self.responses(body, **kwargs)
        self.assertEqual(len(found), 1)
        return found[0]

    def recipients(self, response: Element) -> list[tuple[str, str, str]]:
        return [(r.findtext(NS + "Type") or "", r.findtext(NS + "DisplayName") or "",
                 r.findtext(NS + "EmailAddress") or "")
                for r in response.findall(NS + "Recipient")]


class ResolutionTests(ResolveTestCase):
    def test_local_user_by_address_and_by_name(self) -> None:
        for query in ("carol@example.com", "Carol@Example.COM", "carol",
                      "Carol <carol@example.com>"):
            response = self.one(request(query))
            self.assertEqual(response.findtext(NS + "To"), query)
            self.assertEqual(response.findtext(NS + "Status"), "1", query)
            self.assertEqual(response.findtext(NS + "RecipientCount"), "1")
            self.assertEqual(self.recipients(response), [("1", "carol", "carol@example.com")])

    def test_contact_by_prefix_and_address(self) -> None:
        for query in ("zoe", "Zim", "zoe zim", "zoe@elsewhere.org"):
            response = self.one(request(query))
            self.assertEqual(response.findtext(NS + "Status"), "1", query)
            self.assertEqual(self.recipients(response),
                             [("2", "Zoe Zimmer", "zoe@elsewhere.org")])

    def test_contact_of_a_local_user_is_the_local_entry(self) -> None:
        """bob@example.com is a local user and alice's contact "Robert Builder"."""
        for query in ("Robert", "bobby", "bob", "bob@example.com"):
            response = self.one(request(query))
            self.assertEqual(self.recipients(response),
                             [("1", "Robert Builder", "bob@example.com")], query)

    def test_ambiguous(self) -> None:
        response = self.one(request("smith"))
        self.assertEqual(response.findtext(NS + "Status"), "2")
        self.assertEqual(response.findtext(NS + "RecipientCount"), "3")
        self.assertEqual(self.recipients(response), [
            ("2", "Jane Smith", "jane.work@corp.net"), ("2", "Jane Smith", "jane@smith.net"),
            ("2", "John Smith", "john@smith.net")])
        limited = self.one(request("smith", options=[
            Element(NS + "MaxAmbiguousRecipients", "1"),
            Element(NS + "CertificateRetrieval", "2")]))
        self.assertEqual(limited.findtext(NS + "Status"), "3")
        self.assertEqual(limited.findtext(NS + "RecipientCount"), "1")
        # Suggestions carry no certificates.
        self.assertIsNone(limited.find(NS + "Recipient/" + NS + "Certificates"))

    def test_exact_name_beats_prefixes(self) -> None:
        response = self.one(request("John Smith"))
        self.assertEqual(response.findtext(NS + "Status"), "1")
        self.assertEqual(self.recipients(response), [("2", "John Smith", "john@smith.net")])

    def test_unresolved(self) -> None:
        for query in ("nobody@nowhere.example", "Quentin"):
            response = self.one(request(query))
            self.assertEqual(response.findtext(NS + "Status"), "4")
            self.assertEqual(response.findtext(NS + "RecipientCount"), "0")
            self.assertEqual(response.findall(NS + "Recipient"), [])

    def test_several_to_answered_in_order(self) -> None:
        found = self.responses(request("zoe", "nobody@x.org", "carol"))
        self.assertEqual([r.findtext(NS + "To") for r in found],
                         ["zoe", "nobody@x.org", "carol"])
        self.assertEqual([r.findtext(NS + "Status") for r in found], ["1", "4", "1"])

    def test_accounts_known_to_the_store_are_local(self) -> None:
        provision_device(self.store, user="dave", device_id="davephone")
        response = self.one(request("dave"))
        self.assertEqual(self.recipients(response), [("1", "dave", "dave@example.com")])

    def test_without_users_file_checker(self) -> None:
        response = self.one(request("carol"), overrides=("auth.checkers=imap",))
        self.assertEqual(response.findtext(NS + "Status"), "4")

    def test_without_domain_local_names_have_no_address(self) -> None:
        ctx = make_context(self.store, "ResolveRecipients",
                           config_overrides=(f"auth.users_file={self.users_file}",),
                           services={"groupware": self.groupware})
        answer = result_of(ResolveRecipientsCommand().run(ctx, request("carol", "zoe")))
        assert answer.body is not None
        statuses = [r.findtext(NS + "Status") for r in answer.body.findall(NS + "Response")]
        self.assertEqual(statuses, ["4", "1"])

    def test_certificates(self) -> None:
        for retrieval in ("2", "3"):
            response = self.one(request("carol", options=[
                Element(NS + "CertificateRetrieval", retrieval),
                Element(NS + "MaxCertificates", "10")]))
            certificates = response.find(NS + "Recipient/" + NS + "Certificates")
            assert certificates is not None
            self.assertEqual(certificates.findtext(NS + "Status"), "7")
            self.assertEqual(certificates.findtext(NS + "CertificateCount"), "0")
            self.assertIsNone(certificates.find(NS + "Certificate"))
        plain = self.one(request("carol", options=[Element(NS + "CertificateRetrieval", "1")]))
        self.assertIsNone(plain.find(NS + "Recipient/" + NS + "Certificates"))


class PictureTests(ResolveTestCase):
    def picture(self, query: str, *limits: Element, version: str = "16.1") -> Element:
        response = self.one(request(query, options=[Element(NS + "Picture", None, limits)]),
                            version=version)
        found = response.find(NS + "Recipient/" + NS + "Picture")
        assert found is not None
        return found

    def test_contact_photo(self) -> None:
        picture = self.picture("zoe", version="14.1")
        self.assertEqual(picture.findtext(NS + "Status"), "1")
        self.assertEqual(picture.find(NS + "Data").text, PHOTO)  # type: ignore[union-attr]

    def test_limits_and_no_photo(self) -> None:
        too_big = self.picture("zoe", Element(NS + "MaxSize", str(len(PHOTO) - 1)))
        self.assertEqual(too_big.findtext(NS + "Status"), "174")
        self.assertIsNone(too_big.find(NS + "Data"))
        fits = self.picture("zoe", Element(NS + "MaxSize", str(len(PHOTO))))
        self.assertEqual(fits.findtext(NS + "Status"), "1")
        limit = self.picture("zoe", Element(NS + "MaxPictures", "0"))
        self.assertEqual(limit.findtext(NS + "Status"), "175")
        self.assertEqual(self.picture("carol").findtext(NS + "Status"), "173")

    def test_picture_needs_14_1(self) -> None:
        answer = self.resolve(request("zoe", options=[Element(NS + "Picture")]), version="14.0")
        assert answer.body is not None
        self.assertEqual(answer.body.findtext(NS + "Status"), "5")
        self.assertEqual(answer.body.findall(NS + "Response"), [])


class AvailabilityTests(ResolveTestCase):
    def setUp(self) -> None:
        super().setUp()
        # Monday 2024-03-04, 08:00-12:00 UTC = 8 slots.
        self.add_event(vevent("busy", "20240304T090000Z", "20240304T100000Z"))
        self.add_event(vevent("tent", "20240304T103000Z", "20240304T110000Z",
                              "STATUS:TENTATIVE"))
        self.add_event(vevent("oof", "20240304T080000Z", "20240304T083000Z",
                              "X-MICROSOFT-CDO-BUSYSTATUS:OOF"))
        self.add_event(vevent("free", "20240304T083000Z", "20240304T090000Z",
                              "TRANSP:TRANSPARENT"))
        self.add_event(vevent("declined", "20240304T110000Z", "20240304T113000Z",
                              "ORGANIZER:mailto:zoe@elsewhere.org",
                              "ATTENDEE;PARTSTAT=DECLINED:mailto:bob@example.com"))
        self.add_event(vevent("unanswered", "20240304T113000Z", "20240304T120000Z",
                              "ORGANIZER:mailto:zoe@elsewhere.org",
                              "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:bob@example.com"))
        # A short meeting inside a slot marks the whole slot; overlaps keep the higher digit.
        self.add_event(vevent("short", "20240304T091000Z", "20240304T092000Z",
                              "X-MICROSOFT-CDO-BUSYSTATUS:OOF"))
        # Carol's calendar is her own.
        self.add_event(vevent("carol", "20240304T080000Z", "20240304T120000Z"), user="carol")

    def freebusy(self, query: str, start: str = "2024-03-04T08:00:00.000Z",
                 end: str = "2024-03-04T12:00:00.000Z", version: str = "14.0",
                 to_count: int = 1) -> Element:
        body = request(*([query] * to_count), options=[availability(start, end)])
        response = self.responses(body, version=version)[0]
        found = response.find(NS + "Recipient/" + NS + "Availability")
        assert found is not None
        return found

    def test_merged_free_busy(self) -> None:
        result = self.freebusy("bob")
        self.assertEqual(result.findtext(NS + "Status"), "1")
        self.assertEqual(result.findtext(NS + "MergedFreeBusy"), "30320101")

    def test_window_not_on_slot_boundaries(self) -> None:
        # 09:15 - 10:20: three digits starting at 09:15 (busy, busy, busy).
        result = self.freebusy("bob@example.com", "2024-03-04T09:15:00.000Z",
                               "2024-03-04T10:20:00.000Z")
        self.assertEqual(result.findtext(NS + "MergedFreeBusy"), "320")

    def test_other_users_calendar(self) -> None:
        self.assertEqual(self.freebusy("carol").findtext(NS + "MergedFreeBusy"), "22222222")
        self.assertEqual(self.freebusy("alice").findtext(NS + "MergedFreeBusy"), "00000000")

    def test_contacts_have_no_free_busy(self) -> None:
        result = self.freebusy("zoe")
        self.assertEqual(result.findtext(NS + "Status"), "163")
        self.assertIsNone(result.find(NS + "MergedFreeBusy"))

    def test_more_than_100_recipients(self) -> None:
        result = self.freebusy("bob", to_count=101)
        self.assertEqual(result.findtext(NS + "Status"), "160")
        self.assertEqual(self.freebusy("bob", to_count=100).findtext(NS + "Status"), "1")

    def test_ambiguous_gets_no_free_busy(self) -> None:
        response = self.responses(request("smith", options=[
            availability("2024-03-04T08:00:00.000Z", "2024-03-04T12:00:00.000Z")]))[0]
        self.assertEqual(response.findtext(NS + "Status"), "2")
        self.assertIsNone(response.find(NS + "Recipient/" + NS + "Availability"))

    def test_version_gate_and_bad_ranges(self) -> None:
        body = request("bob", options=[availability("2024-03-04T08:00:00.000Z",
                                                    "2024-03-04T12:00:00.000Z")])
        for version in ("2.5", "12.1"):
            answer = self.resolve(body, version=version)
            self.assertEqual(answer.body.findtext(NS + "Status"), "5")  # type: ignore[union-attr]
        for start, end in (("2024-03-04T12:00:00.000Z", "2024-03-04T08:00:00.000Z"),
                           ("2024-03-04T08:00:00.000Z", "2026-02-01T08:00:00.000Z"),
                           ("yesterday", "2024-03-04T08:00:00.000Z")):
            answer = self.resolve(request("bob", options=[availability(start, end)]))
            self.assertEqual(answer.body.findtext(NS + "Status"), "5")  # type: ignore[union-attr]

    def test_backend_failure_is_transient(self) -> None:
        class Failing:
            def __init__(self, real: Any) -> None:
                self.real = real

            def __getattr__(self, name: str) -> Any:
                return getattr(self.real, name)

            def list_collections(self, user: str, kind: Any = None, **kw: Any) -> Any:
                if kind == KIND_CALENDAR:
                    return fail(RuntimeError("database gone"))
                return self.real.list_collections(user, kind, **kw)

        answer = self.resolve(request("bob", options=[availability(
            "2024-03-04T08:00:00.000Z", "2024-03-04T12:00:00.000Z")]),
            groupware=Failing(self.groupware))
        self.assertEqual(answer.body.findtext(  # type: ignore[union-attr]
            f"{NS}Response/{NS}Recipient/{NS}Availability/{NS}Status"), "162")
        self.flushLoggedErrors(RuntimeError)


class RecurrenceFreeBusyTests(SynchronousTestCase):
    """busy_periods on its own: series, exceptions, zones, floating and all-day."""

    start = datetime.datetime(2024, 3, 25, 0, 0, tzinfo=UTC)
    end = datetime.datetime(2024, 4, 1, 0, 0, tzinfo=UTC)

    def periods(self, event: Event, me: frozenset[str] = frozenset()) -> list[tuple[str, str, int]]:
        return sorted((b.strftime("%m-%dT%H:%M"), e.strftime("%m-%dT%H:%M"), d)
                      for b, e, d in busy_periods(event, self.start, self.end, me))

    def test_daily_series_across_dst_with_exceptions(self) -> None:
        """09:00 Berlin daily: 08:00 UTC before 31 March, 07:00 UTC after."""
        event = parse_ics("\r\n".join([
            "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:x",
            "BEGIN:VEVENT", "UID:s", "DTSTAMP:20240101T000000Z",
            "DTSTART;TZID=Europe/Berlin:20240329T090000",
            "DTEND;TZID=Europe/Berlin:20240329T093000",
            "RRULE:FREQ=DAILY;COUNT=5", "EXDATE;TZID=Europe/Berlin:20240330T090000",
            "END:VEVENT",
            "BEGIN:VEVENT", "UID:s", "DTSTAMP:20240101T000000Z",
            "RECURRENCE-ID;TZID=Europe/Berlin:20240401T090000",
            "DTSTART;TZID=Europe/Berlin:20240331T150000",
            "DTEND;TZID=Europe/Berlin:20240331T160000",
            "X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE",
            "END:VEVENT", "END:VCALENDAR"]) + "\r\n")
        self.assertIsInstance(event.start, datetime.datetime)
        self.assertEqual(event.start.tzinfo, ZoneInfo("Europe/Berlin"))  # type: ignore[union-attr]
        self.assertEqual(self.periods(event), [
            ("03-29T08:00", "03-29T08:30", 2),
            ("03-31T07:00", "03-31T07:30", 2),
            ("03-31T13:00", "03-31T14:00", 1),   # 1 April's occurrence, moved into the window
        ])

    def test_floating_and_all_day(self) -> None:
        floating = Event(uid="f", start=datetime.datetime(2024, 3, 26, 10, 0),
                         end=datetime.datetime(2024, 3, 26, 11, 0))
        self.assertEqual(self.periods(floating), [("03-26T10:00", "03-26T11:00", 2)])
        all_day = Event(uid="d", start=datetime.date(2024, 3, 27), end=datetime.date(2024, 3, 28),
                        busy_status=3)
        self.assertEqual(self.periods(all_day), [("03-27T00:00", "03-28T00:00", 3)])
        weekly = Event(uid="w", start=datetime.date(2024, 3, 1), end=datetime.date(2024, 3, 2),
                       rrule="FREQ=WEEKLY")
        self.assertEqual(self.periods(weekly), [("03-29T00:00", "03-30T00:00", 2)])

    def test_outside_cancelled_and_unreadable_rules(self) -> None:
        before = Event(uid="b", start=datetime.datetime(2024, 3, 1, 10, tzinfo=UTC),
                       end=datetime.datetime(2024, 3, 1, 11, tzinfo=UTC))
        self.assertEqual(self.periods(before), [])
        cancelled = Event(uid="c", start=datetime.datetime(2024, 3, 26, 10, tzinfo=UTC),
                          end=datetime.datetime(2024, 3, 26, 11, tzinfo=UTC), status="CANCELLED")
        self.assertEqual(self.periods(cancelled), [])
        broken = Event(uid="x", start=datetime.datetime(2024, 3, 26, 10, tzinfo=UTC),
                       end=datetime.datetime(2024, 3, 26, 11, tzinfo=UTC), rrule="FREQ=NEVER")
        self.assertEqual(self.periods(broken), [("03-26T10:00", "03-26T11:00", 2)])
        minutely = Event(uid="m", start=datetime.datetime(2000, 1, 1, tzinfo=UTC),
                         end=datetime.datetime(2000, 1, 1, 0, 1, tzinfo=UTC),
                         rrule="FREQ=MINUTELY")
        self.assertEqual(self.periods(minutely), [])

    def test_slots(self) -> None:
        self.assertEqual(freebusy_slots(self.start, self.end), 7 * 48)
        self.assertEqual(freebusy_slots(self.start, self.start + datetime.timedelta(minutes=31)),
                         2)


class RequestTests(ResolveTestCase):
    def top(self, body: Element | None, version: str = "16.1") -> str | None:
        answer = self.resolve(body, version=version)
        assert answer.body is not None
        return answer.body.findtext(NS + "Status")

    def test_protocol_errors(self) -> None:
        self.assertEqual(self.top(None), "5")
        self.assertEqual(self.top(Element("Settings:Settings")), "5")
        self.assertEqual(self.top(request()), "5")
        self.assertEqual(self.top(request("x" * 257)), "5")
        self.assertEqual(self.top(request(*(["bob"] * 1001))), "5")
        self.assertEqual(self.top(request("bob", options=[
            Element(NS + "CertificateRetrieval", "4")])), "5")
        self.assertEqual(self.top(request("bob", options=[
            Element(NS + "MaxAmbiguousRecipients", "-1")])), "5")
        self.assertEqual(self.top(request("bob", options=[Element(NS + "Bogus", "1")])), "5")
        twice = request("bob", options=[Element(NS + "CertificateRetrieval", "2"),
                                        Element(NS + "CertificateRetrieval", "2")])
        self.assertEqual(self.top(twice), "5")
        self.assertEqual(self.top(request("x" * 256)), "1")

    def test_contacts_unreadable_is_a_server_error(self) -> None:
        class Broken:
            def list_collections(self, user: str, kind: Any = None, **kw: Any) -> Any:
                return fail(RuntimeError("no groupware"))

        answer = self.resolve(request("zoe"), groupware=Broken())
        self.assertEqual(answer.body.findtext(NS + "Status"), "6")  # type: ignore[union-attr]
        self.flushLoggedErrors(RuntimeError)

    def test_through_the_dispatcher(self) -> None:
        """WBXML in, WBXML out, for every protocol version."""
        self.patch(dispatch_module, "COMMANDS",
                   {**COMMANDS, "ResolveRecipients": ResolveRecipientsCommand})
        for version in ("2.5", "12.0", "12.1", "14.0", "14.1", "16.0", "16.1"):
            ctx = make_context(self.store, "ResolveRecipients", version,
                               config_overrides=("policy.mode=none",
                                                 "auth.default_domain=example.com",
                                                 f"auth.users_file={self.users_file}"),
                               services={"groupware": self.groupware})
            response = dispatch_sync(ctx, encode(request("carol", "zoe")))
            self.assertEqual(response.http_status, 200, version)
            assert response.body is not None
            self.assertEqual(response.status, "1")
            statuses = [r.findtext(NS + "Status") for r in response.body.findall(NS + "Response")]
            self.assertEqual(statuses, ["1", "1"], version)
