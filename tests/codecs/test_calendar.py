"""CalendarCodec: golden round trips, all-day events in every zone, ghosting,
16.x instances, filters and .ics fixtures through EAS."""
from __future__ import annotations

import dataclasses
import os
from datetime import date, datetime
from zoneinfo import ZoneInfo

from twisted.trial.unittest import TestCase

from easyncd.backends.groupware.vobj.calendar import parse_ics, write_ics
from easyncd.backends.groupware.event import Event
from easyncd.protocol.codecs.base import BodyPreference, CodecContext, CodecError
from easyncd.protocol.codecs.calendar import CalendarCodec
from easyncd.protocol.codecs.recurrence import from_rrule
from easyncd.protocol.codecs.timezone import blob_for_zone, encode_blob, info_for_zone
from easyncd.wbxml import Element

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures", "ics")
UTC = ZoneInfo("UTC")
BERLIN_BLOB = blob_for_zone("Europe/Berlin", 2024)
NOW = datetime(2024, 3, 20, tzinfo=UTC).timestamp()
ME = "me@example.org"


def fixture(name: str) -> str:
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


def ctx(version: str, **kw: object) -> CodecContext:
    return CodecContext(protocol_version=version, user_address=ME, now=NOW, **kw)  # type: ignore[arg-type]


def el(tag: str, *children: object) -> Element:
    """Element("Calendar:Subject", "text") or with child elements; a bare
    name gets the Calendar namespace."""
    if ":" not in tag:
        tag = "Calendar:" + tag
    text = None
    kids: list[Element] = []
    for child in children:
        if isinstance(child, Element):
            kids.append(child)
        else:
            text = str(child)
    return Element(tag, text, kids)


def app(*children: Element) -> Element:
    return Element("AirSync:ApplicationData", None, list(children))


def plain_body(text: str) -> Element:
    return el("AirSyncBase:Body", el("AirSyncBase:Type", "1"),
              el("AirSyncBase:EstimatedDataSize", len(text.encode())),
              el("AirSyncBase:Data", text))


def series_14(version: str = "14.1") -> Element:
    """A weekly meeting organized by the user with a moved and a deleted
    occurrence, as a 14.1 device sends it (and as the server sends it back)."""
    return app(
        el("Timezone", BERLIN_BLOB), el("AllDayEvent", "0"),
        plain_body("Agenda: numbers"),
        el("BusyStatus", "2"),
        el("OrganizerName", "Me Myself"), el("OrganizerEmail", ME),
        el("DtStamp", "20240301T100000Z"),
        el("EndTime", "20240304T090000Z"), el("Location", "Room 1"),
        el("Reminder", "15"), el("Sensitivity", "0"), el("Subject", "Weekly"),
        el("StartTime", "20240304T083000Z"), el("UID", "series-1@example.org"),
        el("MeetingStatus", "1"),
        el("Attendees",
           el("Attendee", el("Email", "ann@example.org"), el("Name", "Ann"),
              el("AttendeeStatus", "3"), el("AttendeeType", "1")),
           el("Attendee", el("Email", "room@example.org"), el("Name", "Room 1"),
              el("AttendeeStatus", "0"), el("AttendeeType", "3"))),
        el("Categories", el("Category", "Work")),
        el("Recurrence", el("Type", "1"), el("Until", "20240527T073000Z"),
           el("Interval", "1"), el("DayOfWeek", "2"), el("CalendarType", "0"),
           el("FirstDayOfWeek", "1")),
        el("Exceptions",
           el("Exception", el("ExceptionStartTime", "20240311T083000Z"),
              el("Subject", "Weekly (moved)"), el("StartTime", "20240312T130000Z"),
              el("EndTime", "20240312T133000Z"), el("Location", "Room 2")),
           el("Exception", el("Deleted", "1"), el("ExceptionStartTime", "20240401T073000Z"))),
        el("ResponseRequested", "1"), el("ResponseType", "1"),
        el("DisallowNewTimeProposal", "0"),
        el("AirSyncBase:NativeBodyType", "1"))


def series_16() -> Element:
    """The same series in 16.1: Location objects, InstanceId, ClientUid."""
    return app(
        el("Timezone", BERLIN_BLOB), el("AllDayEvent", "0"),
        plain_body("Agenda: numbers"),
        el("BusyStatus", "2"),
        el("DtStamp", "20240301T100000Z"),
        el("EndTime", "20240304T090000Z"),
        el("AirSyncBase:Location", el("AirSyncBase:DisplayName", "Room 1"),
           el("AirSyncBase:City", "Berlin"), el("AirSyncBase:Latitude", "52.52"),
           el("AirSyncBase:Longitude", "13.405")),
        el("Reminder", "15"), el("Sensitivity", "0"), el("Subject", "Weekly"),
        el("StartTime", "20240304T083000Z"), el("ClientUid", "client-uid-7"),
        el("MeetingStatus", "1"),
        el("Attendees",
           el("Attendee", el("Email", "ann@example.org"), el("Name", "Ann"),
              el("AttendeeStatus", "3"), el("AttendeeType", "1"))),
        el("Recurrence", el("Type", "1"), el("Occurrences", "10"),
           el("Interval", "1"), el("DayOfWeek", "2"), el("CalendarType", "0")),
        el("Exceptions",
           el("Exception", el("AirSyncBase:InstanceId", "20240311T083000Z"),
              el("Subject", "Weekly (moved)"), el("StartTime", "20240312T130000Z"),
              el("EndTime", "20240312T133000Z"),
              el("AirSyncBase:Location", el("AirSyncBase:DisplayName", "Room 2"))),
           el("Exception", el("Deleted", "1"),
              el("AirSyncBase:InstanceId", "20240401T073000Z"))),
        el("ResponseRequested", "1"),
        el("DisallowNewTimeProposal", "0"),
        el("AirSyncBase:NativeBodyType", "1"))


def server_view_16(device: Element) -> Element:
    """What the server sends back for ``series_16``: the UID instead of the
    ClientUid, the organizer it filled in, and ResponseType."""
    out = app()
    for child in device.children:
        if child.tag == "Calendar:ClientUid":
            out.append(el("UID", child.text))
        elif child.tag == "Calendar:BusyStatus":
            out.append(child)
            out.append(el("OrganizerName", ME))
            out.append(el("OrganizerEmail", ME))
        elif child.tag == "Calendar:DisallowNewTimeProposal":
            out.append(el("ResponseType", "1"))
            out.append(child)
        else:
            out.append(child)
    return out


class GoldenRoundTripTests(TestCase):
    codec = CalendarCodec()

    def test_14_1_series_device_server_device(self) -> None:
        device = series_14()
        stored = self.codec.from_eas(device, None, ctx("14.1"))
        self.assertEqual(stored.uid, "series-1@example.org")
        back = self.codec.to_eas(stored.data, ctx("14.1"))
        self.assertEqual(back.to_xml(), device.to_xml())
        self.assertEqual(back, device)
        # And the same again through a Change (nothing ghosted, nothing lost).
        changed = self.codec.from_eas(device, stored.data, ctx("14.1"))
        self.assertEqual(self.codec.to_eas(changed.data, ctx("14.1")), device)

    def test_16_1_series_device_server_device(self) -> None:
        device = series_16()
        stored = self.codec.from_eas(device, None, ctx("16.1"))
        self.assertEqual(stored.uid, "client-uid-7")
        back = self.codec.to_eas(stored.data, ctx("16.1"))
        self.assertEqual(back.to_xml(), server_view_16(device).to_xml())
        again = self.codec.from_eas(back, stored.data, ctx("16.1"))
        self.assertEqual(self.codec.to_eas(again.data, ctx("16.1")), back)

    def test_stored_text_has_rrule_exdate_and_moved_vevent(self) -> None:
        stored = self.codec.from_eas(series_14(), None, ctx("14.1")).data
        self.assertIn("RRULE:FREQ=WEEKLY;UNTIL=20240527T073000Z;BYDAY=MO;WKST=MO", stored)
        self.assertIn("EXDATE;TZID=Europe/Berlin:20240401T093000", stored)
        self.assertIn("RECURRENCE-ID;TZID=Europe/Berlin:20240311T093000", stored)
        self.assertIn("DTSTART;TZID=Europe/Berlin:20240312T140000", stored)

    def test_windows_named_device_blob(self) -> None:
        info = dataclasses.replace(info_for_zone("Europe/Berlin", 2024),
                                   standard_name="W. Europe Standard Time",
                                   daylight_name="W. Europe Daylight Time")
        device = app(el("Timezone", encode_blob(info)), el("StartTime", "20240704T080000Z"),
                     el("EndTime", "20240704T090000Z"), el("Subject", "x"))
        stored = self.codec.from_eas(device, None, ctx("14.1")).data
        self.assertIn("DTSTART;TZID=Europe/Berlin:20240704T100000", stored)


class AllDayTests(TestCase):
    codec = CalendarCodec()
    ZONES = ["Pacific/Auckland", "Asia/Tokyo", "Asia/Kolkata", "Europe/Berlin", "UTC",
             "America/Sao_Paulo", "America/Los_Angeles", "Pacific/Honolulu"]

    def test_no_day_shift_in_any_zone(self) -> None:
        for zone in self.ZONES:
            tz = ZoneInfo(zone)
            start = datetime(2024, 3, 31, tzinfo=tz).astimezone(UTC)  # a DST day in Europe
            end = datetime(2024, 4, 1, tzinfo=tz).astimezone(UTC)
            device = app(el("Timezone", blob_for_zone(zone, 2024)), el("AllDayEvent", "1"),
                         el("StartTime", start.strftime("%Y%m%dT%H%M%SZ")),
                         el("EndTime", end.strftime("%Y%m%dT%H%M%SZ")), el("Subject", "Day"))
            stored = self.codec.from_eas(device, None, ctx("14.1", default_timezone=zone)).data
            self.assertIn("DTSTART;VALUE=DATE:20240331", stored, zone)
            self.assertIn("DTEND;VALUE=DATE:20240401", stored, zone)
            back = self.codec.to_eas(stored, ctx("14.1", default_timezone=zone))
            self.assertEqual(back.findtext("Calendar:StartTime"),
                             start.strftime("%Y%m%dT%H%M%SZ"), zone)
            self.assertEqual(back.findtext("Calendar:AllDayEvent"), "1")

    def test_device_in_another_zone_and_floating_times(self) -> None:
        # Tokyo midnight sent with a Berlin blob: 15:00 or 16:00 local, rounds to the next day.
        device = app(el("Timezone", BERLIN_BLOB), el("AllDayEvent", "1"),
                     el("StartTime", "20240714T150000Z"), el("EndTime", "20240715T150000Z"))
        stored = parse_ics(self.codec.from_eas(device, None, ctx("14.1")).data)
        self.assertEqual((stored.start, stored.end), (date(2024, 7, 15), date(2024, 7, 16)))
        device = app(el("AllDayEvent", "1"), el("StartTime", "20240714T000000"),
                     el("EndTime", "20240715T000000"))
        stored = parse_ics(self.codec.from_eas(device, None, ctx("16.1")).data)
        self.assertEqual(stored.start, date(2024, 7, 14))

    def test_ics_all_day_goes_out_at_local_midnight(self) -> None:
        out = self.codec.to_eas(fixture("apple_allday_yearly.ics"),
                                ctx("14.1", default_timezone="America/Los_Angeles"))
        self.assertEqual(out.findtext("Calendar:StartTime"), "20240315T070000Z")
        self.assertEqual(out.findtext("Calendar:EndTime"), "20240316T070000Z")
        self.assertEqual(out.find("Calendar:Recurrence/Calendar:Type").text, "5")  # type: ignore[union-attr]


class VersionTests(TestCase):
    codec = CalendarCodec()
    data = fixture("outlook_monthly.ics")

    def test_2_5_legacy_body_and_no_attendee_status(self) -> None:
        out = self.codec.to_eas(self.data, ctx("2.5"))
        self.assertEqual(out.findtext("Calendar:Body"),
                         "Quarterly numbers, please bring the slides.\n")
        self.assertIsNone(out.find("AirSyncBase:Body"))
        self.assertIsNone(out.find("Calendar:Attendees/Calendar:Attendee/Calendar:AttendeeType"))
        self.assertIsNone(out.find("Calendar:ResponseType"))
        self.assertIsNone(out.find("Calendar:Recurrence/Calendar:CalendarType"))

    def test_12_body_preference_and_truncation(self) -> None:
        out = self.codec.to_eas(self.data, ctx("12.1", body_preferences=(
            BodyPreference(1, truncation_size=9),)))
        self.assertEqual(out.findtext("AirSyncBase:Body/AirSyncBase:Data"), "Quarterly")
        self.assertEqual(out.findtext("AirSyncBase:Body/AirSyncBase:Truncated"), "1")
        self.assertEqual(out.findtext("Calendar:Attendees/Calendar:Attendee/Calendar:AttendeeType"),
                         "2")

    def test_14_meeting_fields(self) -> None:
        out = self.codec.to_eas(self.data, ctx("14.1"))
        self.assertEqual(out.findtext("Calendar:MeetingStatus"), "3")
        self.assertEqual(out.findtext("Calendar:BusyStatus"), "3")
        self.assertEqual(out.findtext("Calendar:Sensitivity"), "2")
        self.assertEqual(out.findtext("Calendar:DisallowNewTimeProposal"), "1")
        self.assertEqual(out.findtext("Calendar:ResponseRequested"), "1")
        self.assertEqual(out.findtext("Calendar:OrganizerEmail"), "carol@example.com")
        recurrence = out.find("Calendar:Recurrence")
        assert recurrence is not None
        self.assertEqual([(c.name, c.text) for c in recurrence.children],
                         [("Type", "3"), ("Occurrences", "12"), ("Interval", "1"),
                          ("DayOfWeek", "4"), ("WeekOfMonth", "5"), ("CalendarType", "0")])

    def test_16_location_object(self) -> None:
        out = self.codec.to_eas(self.data, ctx("16.1"))
        self.assertIsNone(out.find("Calendar:Location"))
        self.assertEqual(out.findtext("AirSyncBase:Location/AirSyncBase:DisplayName"),
                         "Board room")


class GhostingTests(TestCase):
    codec = CalendarCodec()

    def stored(self) -> str:
        return self.codec.from_eas(series_14(), None, ctx("14.1")).data

    def change(self) -> Element:
        return app(el("Timezone", BERLIN_BLOB), el("StartTime", "20240304T083000Z"),
                   el("EndTime", "20240304T093000Z"), el("Subject", "Renamed"))

    def test_unsupported_properties_are_kept(self) -> None:
        supported = frozenset({"Calendar:Subject", "Calendar:StartTime", "Calendar:EndTime"})
        new = parse_ics(self.codec.from_eas(self.change(), self.stored(),
                                            ctx("14.1", supported=supported)).data)
        self.assertEqual(new.summary, "Renamed")
        self.assertEqual(new.location, "Room 1")
        self.assertEqual(new.reminder, 15)
        self.assertEqual(new.categories, ["Work"])
        self.assertEqual(len(new.exceptions), 2)
        self.assertEqual(new.body, "Agenda: numbers")

    def test_supported_but_absent_properties_are_cleared(self) -> None:
        supported = frozenset({"Calendar:Subject", "Calendar:Location", "Calendar:Reminder",
                               "Calendar:Categories"})
        new = parse_ics(self.codec.from_eas(self.change(), self.stored(),
                                            ctx("14.1", supported=supported)).data)
        self.assertIsNone(new.location)
        self.assertIsNone(new.reminder)
        self.assertEqual(new.categories, [])
        self.assertIsNotNone(new.rrule)  # not in the list: kept
        self.assertEqual(new.body, "Agenda: numbers")  # bodies are never cleared by omission
        self.assertEqual(new.uid, "series-1@example.org")

    def test_no_supported_list_clears_everything_absent(self) -> None:
        new = parse_ics(self.codec.from_eas(self.change(), self.stored(), ctx("14.1")).data)
        self.assertIsNone(new.rrule)
        self.assertEqual(new.exceptions, [])
        self.assertIsNone(new.location)


class RecurrenceKeepingTests(TestCase):
    codec = CalendarCodec()

    def test_inexact_rule_survives_the_echo(self) -> None:
        data = fixture("outlook_monthly.ics").replace("RRULE:FREQ=MONTHLY;COUNT=12;BYDAY=-1TU",
                                                      "RRULE:FREQ=MONTHLY;COUNT=12;BYDAY=-1TU,-1TH")
        out = self.codec.to_eas(data, ctx("14.1"))
        new = parse_ics(self.codec.from_eas(out, data, ctx("14.1")).data)
        self.assertEqual(new.rrule, "FREQ=MONTHLY;COUNT=12;BYDAY=-1TU,-1TH")

    def test_rule_not_sent_is_kept_when_absent(self) -> None:
        data = fixture("hourly_unsupported.ics")
        out = self.codec.to_eas(data, ctx("14.1"))
        self.assertIsNone(out.find("Calendar:Recurrence"))
        new = parse_ics(self.codec.from_eas(out, data, ctx("14.1")).data)
        self.assertEqual(new.rrule, "FREQ=HOURLY;INTERVAL=4;COUNT=6")

    def test_a_real_pattern_change_replaces_the_rule(self) -> None:
        data = fixture("outlook_monthly.ics")
        out = self.codec.to_eas(data, ctx("14.1"))
        recurrence = out.find("Calendar:Recurrence")
        assert recurrence is not None
        recurrence.find("Calendar:Occurrences").text = "6"  # type: ignore[union-attr]
        new = parse_ics(self.codec.from_eas(out, data, ctx("14.1")).data)
        self.assertEqual(new.rrule, "FREQ=MONTHLY;COUNT=6;BYDAY=-1TU")


class IcsThroughEasTests(TestCase):
    codec = CalendarCodec()

    def test_fixtures_keep_recurrence_exceptions_and_zones(self) -> None:
        for name in ("google_weekly.ics", "thunderbird_daily.ics", "outlook_monthly.ics",
                     "nextcloud_custom_zone.ics", "apple_allday_yearly.ics"):
            for version in ("14.1", "16.1"):
                original = parse_ics(fixture(name))
                zone = "UTC" if original.all_day else "Europe/Berlin"
                context = ctx(version, default_timezone=zone)
                device = self.codec.to_eas(fixture(name), context)
                again = parse_ics(self.codec.from_eas(device, None, context).data)
                self.assertEqual(_pattern(again), _pattern(original), (name, version))
                self.assertEqual(again.start, original.start, (name, version))
                self.assertEqual(again.end, original.end, (name, version))
                self.assertEqual(_instants(again), _instants(original), (name, version))
                self.assertEqual(again.summary, original.summary)
                # Everything but the server-only link survives device -> server.
                device.children = [c for c in device.children
                                   if c.tag != "Calendar:OnlineMeetingExternalLink"]
                self.assertEqual(self.codec.to_eas(write_ics(again), context).to_xml(),
                                 device.to_xml(), (name, version))


def _pattern(event: Event) -> object:
    assert event.rrule is not None and event.start is not None
    return from_rrule(event.rrule, event.start, ZoneInfo("UTC"))


def _instants(event: Event) -> list[tuple[object, ...]]:
    def key(value: object) -> object:
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return value
    return [(key(o.original_start), o.deleted, key(o.start), key(o.end), o.summary)
            for o in event.exceptions]


class InstanceTests(TestCase):
    codec = CalendarCodec()

    def test_change_and_delete_one_occurrence(self) -> None:
        stored = self.codec.from_eas(series_16(), None, ctx("16.1")).data
        change = app(el("Subject", "Only this one"), el("StartTime", "20240318T100000Z"),
                     el("EndTime", "20240318T103000Z"))
        changed = self.codec.change_instance(change, "20240318T083000Z", stored, ctx("16.1")).data
        deleted = self.codec.delete_instance("20240325T083000Z", changed, ctx("16.1")).data
        exceptions = parse_ics(deleted).exceptions
        self.assertEqual(len(exceptions), 4)
        moved = [o for o in exceptions if o.summary == "Only this one"][0]
        self.assertEqual(moved.start, datetime(2024, 3, 18, 11, tzinfo=ZoneInfo("Europe/Berlin")))
        out = self.codec.to_eas(deleted, ctx("16.1"))
        ids = [e.findtext("AirSyncBase:InstanceId")
               for e in out.findall("Calendar:Exceptions/Calendar:Exception")]
        self.assertEqual(ids, ["20240311T083000Z", "20240318T083000Z", "20240325T083000Z",
                               "20240401T073000Z"])

    def test_instance_on_single_event_fails(self) -> None:
        data = self.codec.from_eas(app(el("Subject", "x")), None, ctx("16.1")).data
        self.assertRaises(CodecError, self.codec.delete_instance, "20240318T083000Z", data,
                          ctx("16.1"))


class FilterTests(TestCase):
    codec = CalendarCodec()

    def event(self, start: str, end: str, rrule: str | None = None) -> str:
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:t", "BEGIN:VEVENT", "UID:f",
                 "DTSTAMP:20240101T000000Z", f"DTSTART:{start}", f"DTEND:{end}"]
        if rrule:
            lines.append(f"RRULE:{rrule}")
        return "\r\n".join(lines + ["END:VEVENT", "END:VCALENDAR", ""])

    def test_filters(self) -> None:
        now = datetime(2024, 6, 1, tzinfo=UTC).timestamp()
        old = self.event("20240501T100000Z", "20240501T110000Z")
        recent = self.event("20240525T100000Z", "20240525T110000Z")
        self.assertFalse(self.codec.in_filter(old, 4, now))   # two weeks
        self.assertTrue(self.codec.in_filter(old, 5, now))    # a month
        self.assertTrue(self.codec.in_filter(recent, 4, now))
        self.assertTrue(self.codec.in_filter(old, 0, now))
        forever = self.event("20200101T100000Z", "20200101T110000Z", "FREQ=WEEKLY")
        ended = self.event("20200101T100000Z", "20200101T110000Z",
                           "FREQ=WEEKLY;UNTIL=20200301T000000Z")
        counted = self.event("20240101T100000Z", "20240101T110000Z", "FREQ=WEEKLY;COUNT=30")
        self.assertTrue(self.codec.in_filter(forever, 7, now))
        self.assertFalse(self.codec.in_filter(ended, 7, now))
        self.assertTrue(self.codec.in_filter(counted, 4, now))
        all_day = self.event("20240519", "20240520")
        self.assertTrue(self.codec.in_filter(all_day, 4, now))
        self.assertFalse(self.codec.in_filter(self.event("20240514", "20240515"), 4, now))
