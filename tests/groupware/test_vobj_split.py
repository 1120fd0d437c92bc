"""Tests for easyncd.backends.groupware.vobj.split: multi-item files <-> items."""
from __future__ import annotations

import os

from twisted.trial.unittest import TestCase

from easyncd.backends.groupware.vobj import (
    SplitError,
    item_summary,
    join_icalendar,
    join_vcards,
    parse_ics,
    parse_vcard,
    parse_vcards,
    parse_vjournal,
    parse_vtodo,
    split_file,
    split_icalendar,
    split_vcards,
    with_uid,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
CHOIR = "7d1c6f0e-2b8a-4f39-9d1e-5a4c3b2a1f00"
DENTIST = "3b0e9a44-61f2-4c0d-8e7a-1f2e3d4c5b6a"
HOLIDAYS = "a5e1d2c3-b4f5-4a6b-9c8d-7e6f5a4b3c2d"


def fixture(*parts: str) -> str:
    with open(os.path.join(FIXTURES, *parts), encoding="utf-8", newline="") as handle:
        return handle.read()


def zones_in(text: str) -> list[str]:
    """The TZIDs of the VTIMEZONEs of an iCalendar text, in order."""
    found = []
    inside = False
    for line in text.splitlines():
        if line == "BEGIN:VTIMEZONE":
            inside = True
        elif line == "END:VTIMEZONE":
            inside = False
        elif inside and line.startswith("TZID:"):
            found.append(line[5:])
    return found


class SplitVCardTests(TestCase):
    """A ``.vcf`` with several vCards."""

    def setUp(self) -> None:
        self.items = split_vcards(fixture("vcard", "address_book_export.vcf"))

    def test_one_item_per_vcard(self) -> None:
        self.assertEqual([i.component for i in self.items], ["VCARD"] * 4)
        self.assertEqual([i.uid for i in self.items], [
            "0b9a4f5e-3c2d-4e1f-8a7b-6c5d4e3f2a1b", None,
            "c6d7e8f9-0a1b-4c2d-9e3f-4a5b6c7d8e9f", None])
        for item in self.items:
            self.assertTrue(item.text.startswith("BEGIN:VCARD\r\n"))
            self.assertTrue(item.text.endswith("END:VCARD\r\n"))
            self.assertEqual(item.text.count("BEGIN:VCARD"), 1)

    def test_properties_kept_verbatim(self) -> None:
        """vCard 2.1 quoted-printable soft breaks stay in their item."""
        second = self.items[1].text
        self.assertIn("ADR;HOME;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:;;Hauptstra=C3=9Fe 5;"
                      "Berlin;;10115;=\r\nDeutschland\r\n", second)
        contact = parse_vcard(second)
        self.assertEqual(contact.first_name, "Jürgen")
        self.assertEqual(contact.last_name, "Schröder")
        self.assertEqual(contact.home_address.country, "Deutschland")
        first = parse_vcard(self.items[0].text)
        self.assertEqual(first.email1_address, "johnny@example.com")
        self.assertIn("item1.X-ABADR:us", self.items[0].text)

    def test_with_uid(self) -> None:
        item = with_uid(self.items[3], "new-uid-1")
        self.assertEqual(item.uid, "new-uid-1")
        self.assertEqual(parse_vcard(item.text).uid, "new-uid-1")
        self.assertTrue(item.text.endswith("UID:new-uid-1\r\nEND:VCARD\r\n"))
        # An item with a UID keeps it.
        kept = with_uid(self.items[0], "other")
        self.assertEqual(parse_vcard(kept.text).uid, "0b9a4f5e-3c2d-4e1f-8a7b-6c5d4e3f2a1b")
        self.assertRaises(ValueError, with_uid, self.items[3], "a\r\nb")

    def test_join_and_split_again(self) -> None:
        joined = join_vcards(item.text for item in self.items)
        self.assertEqual(joined.count("BEGIN:VCARD"), 4)
        self.assertEqual([i.text for i in split_vcards(joined)], [i.text for i in self.items])
        self.assertEqual(join_vcards([]), "")

    def test_every_fixture(self) -> None:
        """Each fixture splits into cards that read as the file does."""
        directory = os.path.join(FIXTURES, "vcard")
        for name in sorted(os.listdir(directory)):
            text = fixture("vcard", name)
            items = split_file(text)
            self.assertTrue(items, name)
            self.assertEqual([parse_vcard(i.text) for i in items], parse_vcards(text), name)


class SplitICalendarTests(TestCase):
    """An ``.ics`` export with a series, its moved occurrence and zones."""

    def setUp(self) -> None:
        self.text = fixture("ics", "calendar_export.ics")
        self.items = split_icalendar(self.text)

    def test_one_calendar_per_uid(self) -> None:
        self.assertEqual([i.uid for i in self.items], [CHOIR, DENTIST, HOLIDAYS, None])
        self.assertEqual({i.component for i in self.items}, {"VEVENT"})
        for item in self.items:
            self.assertTrue(item.text.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"))
            self.assertTrue(item.text.endswith("END:VCALENDAR\r\n"))
            self.assertIn("PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN", item.text)
            self.assertNotIn("METHOD:", item.text)
            self.assertNotIn("X-WR-CALNAME", item.text)

    def test_series_with_override_and_zone(self) -> None:
        choir = self.items[0].text
        self.assertEqual(choir.count("BEGIN:VEVENT"), 2)
        # The master first, although the file has the override first.
        self.assertLess(choir.index("RRULE:"), choir.index("RECURRENCE-ID"))
        self.assertEqual(zones_in(choir), ["Europe/Berlin"])
        event = parse_ics(choir)
        self.assertEqual(event.uid, CHOIR)
        self.assertEqual(len(event.exceptions), 2)
        self.assertEqual(sorted(o.deleted for o in event.exceptions), [False, True])
        self.assertEqual(str(getattr(event.start, "tzinfo", None)), "Europe/Berlin")

    def test_zones_only_where_used(self) -> None:
        self.assertEqual(zones_in(self.items[1].text), [])
        self.assertEqual(zones_in(self.items[2].text), [])
        self.assertEqual(zones_in(self.items[3].text), ["America/New_York"])

    def test_quoted_tzid(self) -> None:
        items = split_icalendar(fixture("ics", "outlook_monthly.ics"))
        self.assertEqual(len(items), 1)
        self.assertEqual(zones_in(items[0].text), ["W. Europe Standard Time"])
        self.assertEqual(parse_ics(items[0].text), parse_ics(fixture("ics", "outlook_monthly.ics")))

    def test_with_uid(self) -> None:
        item = with_uid(self.items[3], "generated-1")
        event = parse_ics(item.text)
        self.assertEqual(event.uid, "generated-1")
        self.assertEqual(event.summary, "Call with the New York office")

    def test_join_and_split_again(self) -> None:
        second = split_icalendar(fixture("ics", "thunderbird_daily.ics"))
        joined = join_icalendar(i.text for i in self.items + second)
        # Each zone once, every component once.
        self.assertEqual(zones_in(joined), ["Europe/Berlin", "America/New_York"])
        self.assertEqual(joined.count("BEGIN:VEVENT"), 7)
        self.assertEqual(joined.count("BEGIN:VCALENDAR"), 1)
        again = split_icalendar(joined)
        self.assertEqual([i.uid for i in again], [i.uid for i in self.items + second])
        for before, after in zip(self.items + second, again):
            self.assertEqual(parse_ics(after.text), parse_ics(before.text))
        self.assertEqual(join_icalendar([]).count("BEGIN:VCALENDAR"), 1)

    def test_several_calendars(self) -> None:
        """A file of concatenated VCALENDARs (tasks and notes fixtures)."""
        names = sorted(os.listdir(os.path.join(FIXTURES, "vtodo")))
        text = "".join(fixture("vtodo", name) for name in names)
        items = split_file(text)
        self.assertEqual(len(items), len(names))
        self.assertEqual({i.component for i in items}, {"VTODO"})
        for name, item in zip(names, items):
            self.assertEqual(parse_vtodo(item.text), parse_vtodo(fixture("vtodo", name)), name)
        notes = split_file(fixture("vjournal", "evolution_memo.ics"))
        self.assertEqual([n.component for n in notes], ["VJOURNAL"])
        self.assertEqual(parse_vjournal(notes[0].text),
                         parse_vjournal(fixture("vjournal", "evolution_memo.ics")))


class SplitErrorTests(TestCase):
    """What is not a vCard / iCalendar file."""

    def test_blank(self) -> None:
        self.assertEqual(split_file(""), [])
        self.assertEqual(split_file("\r\n \r\n"), [])

    def test_broken(self) -> None:
        for text in (
            "BEGIN:VCARD\r\nFN:A\r\n",
            "BEGIN:VCARD\r\nFN:A\r\nEND:VCALENDAR\r\n",
            "FN:A\r\n",
            "hello world",
            "BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
            "BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n",
        ):
            self.assertRaises(SplitError, split_file, text)
        self.assertRaises(SplitError, split_vcards, "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
        self.assertRaises(SplitError, split_icalendar, "BEGIN:VCARD\r\nEND:VCARD\r\n")

    def test_bom_and_bare_line_ends(self) -> None:
        items = split_file("\ufeffBEGIN:VCARD\nVERSION:3.0\nFN:A\nUID:u1\nEND:VCARD\n")
        self.assertEqual([(i.uid, i.text) for i in items], [
            ("u1", "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nUID:u1\r\nEND:VCARD\r\n")])


class SummaryTests(TestCase):
    """The one-line description of ``item list``."""

    def test_contacts(self) -> None:
        items = split_vcards(fixture("vcard", "address_book_export.vcf"))
        self.assertEqual([item_summary(i.text) for i in items],
                         ["Johnny Appleseed", "Jürgen Schröder", "Maria Garcia", "Hans Meier"])
        self.assertEqual(item_summary("BEGIN:VCARD\r\nN:Doe;Jane;;;\r\nEND:VCARD\r\n"),
                         "Jane Doe")

    def test_events(self) -> None:
        items = split_icalendar(fixture("ics", "calendar_export.ics"))
        self.assertEqual([item_summary(i.text) for i in items], [
            "Choir rehearsal (2024-03-05 19:30 Europe/Berlin)",
            "Dentist (2024-04-05 14:00 UTC)",
            "Summer holidays (2024-07-22)",
            "Call with the New York office (2024-03-12 09:00 America/New_York)",
        ])

    def test_tasks_notes_and_junk(self) -> None:
        task = split_file(fixture("vtodo", "thunderbird_task.ics"))[0]
        self.assertEqual(item_summary(task.text), parse_vtodo(task.text).summary)
        note = split_file(fixture("vjournal", "evolution_memo.ics"))[0]
        self.assertEqual(item_summary(note.text), parse_vjournal(note.text).subject)
        self.assertEqual(item_summary("not at all"), "")
