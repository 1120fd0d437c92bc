"""The Notes codec (MS-ASNOTE, 14.0+) against VJOURNAL text."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from twisted.trial.unittest import TestCase

from easyncd.backends.groupware.vobj.journal import parse_vjournal
from easyncd.protocol.codecs.base import BodyPreference, CodecContext, CodecError
from easyncd.protocol.codecs.notes import (
    NotesCodec,
    format_compact_datetime,
    parse_compact_datetime,
)
from easyncd.wbxml import Element, decode, encode

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vjournal"
UTC = timezone.utc
NOW = datetime(2024, 3, 20, 12, 0, tzinfo=UTC).timestamp()
CODEC = NotesCodec()


def fixture(name: str) -> str:
    """The text of a VJOURNAL fixture."""
    return (FIXTURES / name).read_text(encoding="utf-8")


def ctx(version: str = "16.1", **kw: object) -> CodecContext:
    """A CodecContext at NOW."""
    return CodecContext(protocol_version=version, now=NOW, **kw)  # type: ignore[arg-type]


def wire(element: Element) -> Element:
    """``element`` through WBXML and back."""
    return decode(encode(element))


def note_data(subject: str | None = "Groceries", body: str | None = "milk\nbread",
              body_type: int = 1, categories: tuple[str, ...] = ("Home",),
              modified: str | None = "20240319T170500Z") -> Element:
    """What a device sends for a note."""
    app = Element("AirSync:ApplicationData")
    if subject is not None:
        app.add("Notes:Subject", subject)
    if body is not None:
        element = app.add("AirSyncBase:Body")
        element.add("AirSyncBase:Type", str(body_type))
        element.add("AirSyncBase:Data", body)
    app.add("Notes:MessageClass", "IPM.StickyNote")
    if modified is not None:
        app.add("Notes:LastModifiedDate", modified)
    if categories:
        element = app.add("Notes:Categories")
        for category in categories:
            element.add("Notes:Category", category)
    return app


class NotesTests(TestCase):
    """Round trips, fixtures, HTML, ghosting."""

    def test_round_trip_every_version(self) -> None:
        for version in ("14.0", "14.1", "16.0", "16.1"):
            sent = note_data(categories=("Home", "Weekly"))
            stored = CODEC.from_eas(wire(sent), None, ctx(version))
            self.assertTrue(stored.uid)
            back = wire(CODEC.to_eas(stored.data, ctx(version)))
            self.assertEqual(back.findtext("Notes:Subject"), "Groceries")
            self.assertEqual(back.findtext("AirSyncBase:Body/AirSyncBase:Data"), "milk\nbread")
            self.assertEqual(back.findtext("AirSyncBase:Body/AirSyncBase:Type"), "1")
            self.assertEqual(back.findtext("Notes:MessageClass"), "IPM.StickyNote")
            self.assertEqual(back.findtext("Notes:LastModifiedDate"), "20240319T170500Z")
            self.assertEqual([c.text for c in back.findall("Notes:Categories/Notes:Category")],
                             ["Home", "Weekly"])

    def test_stored_vjournal(self) -> None:
        data = CODEC.from_eas(note_data(modified=None), None, ctx()).data
        note = parse_vjournal(data)
        self.assertIn("BEGIN:VJOURNAL", data)
        self.assertEqual(note.subject, "Groceries")
        self.assertEqual(note.body, "milk\nbread")
        self.assertEqual(note.last_modified, datetime(2024, 3, 20, 12, 0, tzinfo=UTC))
        self.assertEqual(note.created, datetime(2024, 3, 20, 12, 0, tzinfo=UTC))
        self.assertEqual(note.stamp, datetime(2024, 3, 20, 12, 0, tzinfo=UTC))

    def test_evolution_memo_to_device(self) -> None:
        shown = CODEC.to_eas(fixture("evolution_memo.ics"), ctx("14.1"))
        self.assertEqual(shown.findtext("Notes:Subject"), "Wi-Fi at the cottage")
        self.assertEqual(shown.findtext("AirSyncBase:Body/AirSyncBase:Data"),
                         "Network: Cottage-5G\nPassword is on the router, bottom side.")
        self.assertEqual(shown.findtext("Notes:LastModifiedDate"), "20240305T071000Z")
        self.assertEqual(shown.findtext("Notes:Categories/Notes:Category"), "Holidays")
        # Without LAST-MODIFIED, the DTSTAMP.
        rfc = CODEC.to_eas(fixture("rfc5545_journal.ics"), ctx())
        self.assertEqual(rfc.findtext("Notes:LastModifiedDate"), "19970901T130000Z")
        self.assertIsNone(rfc.find("Notes:Categories"))

    def test_device_change_keeps_unknown_properties(self) -> None:
        original = fixture("evolution_memo.ics")
        shown = wire(CODEC.to_eas(original, ctx()))
        subject = shown.find("Notes:Subject")
        assert subject is not None
        subject.text = "Cottage Wi-Fi"
        data = CODEC.from_eas(shown, original, ctx()).data
        flat = data.replace("\r\n ", "")
        self.assertIn("SUMMARY:Cottage Wi-Fi", flat)
        self.assertIn('X-EVOLUTION-CALDAV-ETAG:"6d1f3e"', flat)
        self.assertIn("DTSTART;VALUE=DATE:20240304", flat)
        self.assertIn("UID:20240304T101500Z-12345-1000-1-3@laptop", flat)
        note = parse_vjournal(data)
        self.assertEqual(note.body,
                         "Network: Cottage-5G\nPassword is on the router, bottom side.")
        self.assertEqual(note.categories, ("Holidays",))

    def test_html(self) -> None:
        original = fixture("thunderbird_html_note.ics")
        html_ctx = ctx(body_preferences=(BodyPreference(2),))
        shown = CODEC.to_eas(original, html_ctx)
        self.assertEqual(shown.findtext("AirSyncBase:Body/AirSyncBase:Type"), "2")
        self.assertEqual(shown.findtext("AirSyncBase:Body/AirSyncBase:Data"),
                         "<html><body><ul><li>Eggs</li><li>Flour</li></ul></body></html>")
        self.assertEqual(CODEC.to_eas(original, ctx()).findtext(
            "AirSyncBase:Body/AirSyncBase:Data"), "Eggs\nFlour")
        sent = note_data(body="<p>Sugar</p><p>Salt</p>", body_type=2)
        note = parse_vjournal(CODEC.from_eas(sent, original, ctx()).data)
        self.assertEqual(note.body, "Sugar\nSalt")
        self.assertEqual(note.body_html, "<p>Sugar</p><p>Salt</p>")
        # Plain text unchanged: the HTML form stays; changed: it goes.
        same = parse_vjournal(CODEC.from_eas(note_data(body="Eggs\nFlour"), original, ctx()).data)
        self.assertIsNotNone(same.body_html)
        other = parse_vjournal(CODEC.from_eas(note_data(body="Eggs"), original, ctx()).data)
        self.assertIsNone(other.body_html)

    def test_ghosting(self) -> None:
        original = fixture("thunderbird_html_note.ics")
        change = note_data(subject="List", body=None, categories=())
        kept = parse_vjournal(CODEC.from_eas(
            change, original, ctx(supported=frozenset({"Notes:Subject"}))).data)
        self.assertEqual(kept.subject, "List")
        self.assertEqual(kept.categories, ("Personal", "Kitchen"))
        self.assertEqual(kept.body, "Eggs\nFlour")
        cleared = parse_vjournal(CODEC.from_eas(change, original, ctx()).data)
        self.assertEqual(cleared.categories, ())
        self.assertEqual(cleared.body, "Eggs\nFlour")  # a body not sent is kept

    def test_message_class(self) -> None:
        bad = note_data()
        message_class = bad.find("Notes:MessageClass")
        assert message_class is not None
        message_class.text = "IPM.Note"
        self.assertRaises(CodecError, CODEC.from_eas, bad, None, ctx())
        message_class.text = "IPM.StickyNote.Blue"
        data = CODEC.from_eas(bad, None, ctx()).data
        self.assertEqual(CODEC.to_eas(data, ctx()).findtext("Notes:MessageClass"),
                         "IPM.StickyNote.Blue")

    def test_filter_and_errors(self) -> None:
        for filter_type in (0, 1, 8):
            self.assertTrue(CODEC.in_filter(fixture("evolution_memo.ics"), filter_type, NOW))
        self.assertRaises(CodecError, CODEC.to_eas, "nope", ctx())
        self.assertRaises(CodecError, CODEC.from_eas, note_data(), "nope", ctx())
        self.assertRaises(CodecError, CODEC.from_eas, note_data(modified="yesterday"), None,
                          ctx())
        self.assertEqual(CODEC.eas_class, "Notes")

    def test_compact_dates(self) -> None:
        self.assertEqual(parse_compact_datetime("20240319T170500Z"),
                         datetime(2024, 3, 19, 17, 5, tzinfo=UTC))
        self.assertEqual(parse_compact_datetime("2024-03-19T17:05:00.000Z"),
                         datetime(2024, 3, 19, 17, 5, tzinfo=UTC))
        self.assertIsNone(parse_compact_datetime(None))
        self.assertEqual(format_compact_datetime(datetime(2024, 3, 19, 17, 5)),
                         "20240319T170500Z")
