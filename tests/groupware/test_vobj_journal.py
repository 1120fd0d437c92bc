"""VJOURNAL <-> Note (easyncd.backends.groupware.vobj.journal)."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path

from twisted.trial.unittest import TestCase

from easyncd.backends.groupware.note import NOTE_MESSAGE_CLASS, Note
from easyncd.backends.groupware.vobj.journal import VObjectError, parse_vjournal, write_vjournal

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
UTC = timezone.utc


def fixture(name: str) -> str:
    """The text of a VJOURNAL fixture."""
    return (FIXTURES / "vjournal" / name).read_text(encoding="utf-8")


def unfolded(text: str) -> str:
    """``text`` with RFC 5545 folding undone."""
    return text.replace("\r\n ", "").replace("\r\n", "\n")


class ParseTests(TestCase):
    """Evolution memos, Thunderbird HTML notes and the RFC 5545 example."""

    def test_evolution_memo(self) -> None:
        note = parse_vjournal(fixture("evolution_memo.ics"))
        self.assertEqual(note.uid, "20240304T101500Z-12345-1000-1-3@laptop")
        self.assertEqual(note.subject, "Wi-Fi at the cottage")
        self.assertEqual(note.body,
                         "Network: Cottage-5G\nPassword is on the router, bottom side.")
        self.assertIsNone(note.body_html)
        self.assertEqual(note.categories, ("Holidays",))
        self.assertEqual(note.last_modified, datetime(2024, 3, 5, 7, 10, tzinfo=UTC))
        self.assertEqual(note.created, datetime(2024, 3, 4, 10, 15, 12, tzinfo=UTC))
        self.assertEqual(note.message_class, NOTE_MESSAGE_CLASS)

    def test_html_note(self) -> None:
        note = parse_vjournal(fixture("thunderbird_html_note.ics"))
        self.assertEqual(note.body, "Eggs\nFlour")
        self.assertEqual(note.body_html,
                         "<html><body><ul><li>Eggs</li><li>Flour</li></ul></body></html>")
        self.assertEqual(note.categories, ("Personal", "Kitchen"))

    def test_rfc_example(self) -> None:
        note = parse_vjournal(fixture("rfc5545_journal.ics"))
        self.assertEqual(note.subject, "Staff meeting minutes")
        assert note.body is not None
        self.assertTrue(note.body.startswith("1. Staff meeting: Participants include Joe, Lisa"))
        self.assertIn("\n2. Telephone Conference", note.body)
        self.assertIsNone(note.last_modified)

    def test_several_descriptions(self) -> None:
        text = fixture("rfc5545_journal.ics").replace(
            "END:VJOURNAL", "DESCRIPTION:Addendum\r\nEND:VJOURNAL")
        body = parse_vjournal(text).body
        assert body is not None
        self.assertTrue(body.endswith("\n\nAddendum"))

    def test_not_a_journal(self) -> None:
        self.assertRaises(VObjectError, parse_vjournal, "BEGIN:VCARD\r\nEND:VCARD\r\n")
        self.assertRaises(VObjectError, parse_vjournal,
                          (FIXTURES / "vtodo" / "nextcloud_tasks.ics").read_text())


class WriteTests(TestCase):
    """Writing keeps unknown properties and rewrites only changes."""

    def test_unchanged_round_trip(self) -> None:
        for name in ("evolution_memo.ics", "thunderbird_html_note.ics", "rfc5545_journal.ics"):
            note = parse_vjournal(fixture(name))
            self.assertEqual(parse_vjournal(write_vjournal(note)), note, name)

    def test_change_keeps_the_rest(self) -> None:
        note = parse_vjournal(fixture("evolution_memo.ics"))
        changed = dataclasses.replace(note, subject="Cottage Wi-Fi", categories=("Travel", "Home"),
                                      last_modified=datetime(2024, 6, 1, 12, tzinfo=UTC))
        text = unfolded(write_vjournal(changed))
        self.assertIn("SUMMARY:Cottage Wi-Fi", text)
        self.assertIn("CATEGORIES:Travel,Home", text)
        self.assertIn("LAST-MODIFIED:20240601T120000Z", text)
        self.assertIn("DTSTART;VALUE=DATE:20240304", text)
        self.assertIn("CLASS:PUBLIC", text)
        self.assertIn('X-EVOLUTION-CALDAV-ETAG:"6d1f3e"', text)
        self.assertEqual(parse_vjournal(text), changed)

    def test_new_note_and_html(self) -> None:
        stamp = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
        note = Note(uid="N-1", subject="Ideas", body="one\ntwo", body_html="<p>one</p><p>two</p>",
                    categories=("Work",), last_modified=stamp, created=stamp, stamp=stamp)
        text = write_vjournal(note)
        flat = unfolded(text)
        self.assertIn("BEGIN:VJOURNAL", flat)
        self.assertIn("X-ALT-DESC;FMTTYPE=text/html:<p>one</p><p>two</p>", flat)
        self.assertNotIn("X-EASYNCD-MESSAGE-CLASS", flat)
        self.assertEqual(parse_vjournal(text), note)
        variant = dataclasses.replace(note, message_class="IPM.StickyNote.Custom")
        self.assertEqual(parse_vjournal(write_vjournal(variant)).message_class,
                         "IPM.StickyNote.Custom")

    def test_clearing(self) -> None:
        note = parse_vjournal(fixture("thunderbird_html_note.ics"))
        text = unfolded(write_vjournal(dataclasses.replace(
            note, body=None, body_html=None, categories=(), subject=None)))
        for gone in ("DESCRIPTION", "X-ALT-DESC", "CATEGORIES", "SUMMARY"):
            self.assertNotIn(gone, text)
        self.assertIn("X-MOZ-GENERATION:2", text)
