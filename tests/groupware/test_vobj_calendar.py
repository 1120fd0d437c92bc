"""iCalendar <-> Event with hand-written exports of common programs."""
from __future__ import annotations

import dataclasses
import os
from datetime import date, datetime
from zoneinfo import ZoneInfo

from twisted.trial.unittest import TestCase

from easyncd.backends.groupware.event import (
    ATTENDEE_OPTIONAL,
    ATTENDEE_RESOURCE,
    Attendee,
    Event,
    Occurrence,
    Organizer,
)
from easyncd.backends.groupware.zones import RuleTimeZone
from easyncd.backends.groupware.vobj.calendar import ICalendarError, parse_ics, write_ics

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures", "ics")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
UTC = ZoneInfo("UTC")


def fixture(name: str) -> str:
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


def normalized(event: Event) -> Event:
    """``extra`` order is not significant (vobject sorts properties)."""
    return dataclasses.replace(event, extra=sorted(event.extra, key=lambda p: (p.name, p.value)))


class FixtureTests(TestCase):
    def assert_round_trip(self, event: Event) -> None:
        again = parse_ics(write_ics(event))
        self.assertEqual(normalized(again), normalized(event))

    def test_google(self) -> None:
        event = parse_ics(fixture("google_weekly.ics"))
        self.assertEqual(event.start, datetime(2024, 3, 4, 9, 30, tzinfo=BERLIN))
        self.assertEqual(event.rrule, "FREQ=WEEKLY;WKST=MO;UNTIL=20240527T073000Z;BYDAY=MO,WE")
        self.assertEqual(event.organizer, Organizer("alice@example.org", "Alice Example"))
        self.assertEqual(event.attendees[1], Attendee("bob@example.org", "bob@example.org",
                                                      status=5, rsvp=True))
        self.assertEqual(event.reminder, 10)
        self.assertEqual(event.location, "Room 4.01, Main building")
        self.assertEqual(event.body, "Weekly sync.\nAgenda in the doc.")
        self.assertEqual(event.online_meeting_link, "https://meet.google.com/abc-defg-hij")
        moved, deleted = event.exceptions
        self.assertEqual(moved.original_start, datetime(2024, 3, 13, 9, 30, tzinfo=BERLIN))
        self.assertEqual(moved.start, datetime(2024, 3, 13, 11, 0, tzinfo=BERLIN))
        self.assertEqual(moved.summary, "Team standup (moved)")
        self.assertIsNone(moved.location)  # same as the master's
        self.assertEqual(deleted, Occurrence(datetime(2024, 4, 3, 9, 30, tzinfo=BERLIN),
                                             deleted=True))
        self.assert_round_trip(event)

    def test_apple_all_day(self) -> None:
        event = parse_ics(fixture("apple_allday_yearly.ics"))
        self.assertTrue(event.all_day)
        self.assertEqual((event.start, event.end), (date(2024, 3, 15), date(2024, 3, 16)))
        self.assertEqual(event.busy_status, 0)
        self.assertEqual(event.reminder, 15 * 60)
        text = write_ics(event)
        self.assertIn("DTSTART;VALUE=DATE:20240315", text)
        self.assertNotIn("VTIMEZONE", text)
        self.assertIn("X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC", text)
        self.assert_round_trip(event)

    def test_thunderbird(self) -> None:
        event = parse_ics(fixture("thunderbird_daily.ics"))
        self.assertEqual(event.start, datetime(2024, 3, 8, 7, 0, tzinfo=NEW_YORK))
        self.assertEqual(event.categories, ["Personal", "Sport"])
        self.assertEqual(event.sensitivity, 2)
        self.assertEqual(event.reminder, 30)
        moved, deleted = event.exceptions
        self.assertEqual(moved.location, "Central Park")
        self.assertEqual(moved.start, datetime(2024, 3, 12, 6, 30, tzinfo=NEW_YORK))
        self.assertTrue(deleted.deleted)
        self.assertEqual(deleted.original_start, datetime(2024, 3, 14, 11, 0, tzinfo=UTC))
        self.assert_round_trip(event)

    def test_outlook_windows_zone(self) -> None:
        event = parse_ics(fixture("outlook_monthly.ics"))
        self.assertEqual(event.start, datetime(2024, 1, 30, 15, 0, tzinfo=BERLIN))
        self.assertEqual(event.busy_status, 3)
        self.assertEqual(event.sensitivity, 2)
        self.assertTrue(event.disallow_new_time_proposal)
        self.assertEqual([a.type for a in event.attendees], [ATTENDEE_OPTIONAL, ATTENDEE_RESOURCE])
        self.assertEqual(event.body, "Quarterly numbers, please bring the slides.\n")
        text = write_ics(event)
        self.assertIn("TZID:Europe/Berlin", text)
        self.assertIn("X-MS-OLK-CONFTYPE:0", text)
        self.assert_round_trip(event)

    def test_nextcloud_custom_zone_is_matched(self) -> None:
        event = parse_ics(fixture("nextcloud_custom_zone.ics"))
        assert isinstance(event.start, datetime)
        self.assertEqual(event.start.utcoffset().total_seconds(), 11 * 3600)  # type: ignore[union-attr]
        self.assertEqual(event.start.astimezone(UTC), datetime(2024, 4, 1, 22, 0, tzinfo=UTC))
        self.assertIsInstance(event.start.tzinfo, ZoneInfo)
        self.assert_round_trip(event)

    def test_unmatched_zone_keeps_its_name_and_rules(self) -> None:
        text = fixture("nextcloud_custom_zone.ics").replace("+1000", "+0930").replace(
            "+1100", "+1030").replace("BYMONTH=4;BYDAY=1SU", "BYMONTH=4;BYDAY=2SU")
        event = parse_ics(text)
        assert isinstance(event.start, datetime)
        self.assertIsInstance(event.start.tzinfo, RuleTimeZone)
        written = write_ics(event)
        self.assertIn("TZID:Custom Sydney", written)
        again = parse_ics(written)
        assert isinstance(again.start, datetime)
        self.assertEqual(again.start.astimezone(UTC), event.start.astimezone(UTC))

    def test_unsupported_rule_is_kept(self) -> None:
        event = parse_ics(fixture("hourly_unsupported.ics"))
        self.assertEqual(event.rrule, "FREQ=HOURLY;INTERVAL=4;COUNT=6")
        self.assertIn("RRULE:FREQ=HOURLY;INTERVAL=4;COUNT=6", write_ics(event))


class WriterTests(TestCase):
    def test_vtimezone_uses_iana_name_and_rules(self) -> None:
        event = Event(uid="u1", summary="x", start=datetime(2024, 7, 1, 9, tzinfo=BERLIN),
                      end=datetime(2024, 7, 1, 10, tzinfo=BERLIN))
        text = write_ics(event)
        self.assertIn("TZID:Europe/Berlin", text)
        self.assertIn("DTSTART;TZID=Europe/Berlin:20240701T090000", text)
        self.assertIn("RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU", text)
        self.assertNotIn("TZID:CEST", text)

    def test_exceptions_written_as_exdate_and_recurrence_id(self) -> None:
        event = Event(uid="u2", summary="s", start=date(2024, 1, 1), end=date(2024, 1, 2),
                      rrule="FREQ=DAILY;COUNT=5",
                      exceptions=[Occurrence(date(2024, 1, 2), deleted=True),
                                  Occurrence(date(2024, 1, 3), start=date(2024, 1, 4),
                                             end=date(2024, 1, 5), summary="later")])
        text = write_ics(event)
        self.assertIn("EXDATE;VALUE=DATE:20240102", text)
        self.assertIn("RECURRENCE-ID;VALUE=DATE:20240103", text)
        self.assertEqual(parse_ics(text).exceptions, event.exceptions)

    def test_errors(self) -> None:
        self.assertRaises(ICalendarError, parse_ics, "garbage")
        self.assertRaises(ICalendarError, parse_ics,
                          "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
