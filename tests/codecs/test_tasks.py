"""The Tasks codec (MS-ASTASK) against VTODO text."""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

from twisted.trial.unittest import TestCase

from easyncd.backends.groupware.vobj.todo import parse_vtodo
from easyncd.protocol.codecs.base import BodyPreference, CodecContext, CodecError
from easyncd.protocol.codecs.tasks import (
    SUPPORTED_ELEMENTS,
    TasksCodec,
    format_eas_datetime,
    parse_eas_datetime,
)
from easyncd.wbxml import Element, decode, encode

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vtodo"
UTC = timezone.utc
#: 2024-03-20T12:00:00Z, the "now" of every request here.
NOW = datetime(2024, 3, 20, 12, 0, tzinfo=UTC).timestamp()
CODEC = TasksCodec()


def fixture(name: str) -> str:
    """The text of a VTODO fixture."""
    return (FIXTURES / name).read_text(encoding="utf-8")


def ctx(version: str = "16.1", zone: str = "Europe/Berlin", **kw: object) -> CodecContext:
    """A CodecContext for a device in ``zone``."""
    return CodecContext(protocol_version=version, default_timezone=zone, now=NOW,
                        **kw)  # type: ignore[arg-type]


def app_data(*children: Element | tuple[str, str]) -> Element:
    """An AirSync:ApplicationData with ``(tag, text)`` or element children."""
    app = Element("AirSync:ApplicationData")
    for child in children:
        if isinstance(child, Element):
            app.append(child)
        else:
            app.add(*child)
    return app


def group(tag: str, *children: tuple[str, str]) -> Element:
    """An element with ``(tag, text)`` children."""
    element = Element(tag)
    for child in children:
        element.add(*child)
    return element


def plain_body(text: str) -> Element:
    """An AirSyncBase:Body of Type 1."""
    return group("AirSyncBase:Body", ("AirSyncBase:Type", "1"), ("AirSyncBase:Data", text))


def wire(element: Element) -> Element:
    """``element`` through WBXML and back (every tag must exist in its page)."""
    return decode(encode(element))


def fields(app: Element) -> dict[str, str]:
    """Tag -> text of the direct children that have text."""
    return {c.tag: c.text for c in app.children if isinstance(c.text, str)}


def full_task(version: str) -> Element:
    """What a device in Berlin sends for a fully filled-in task."""
    body: Element | tuple[str, str]
    body = ("Tasks:Body", "Call about the roof\nBring photos") if version == "2.5" \
        else plain_body("Call about the roof\nBring photos")
    return app_data(
        body,
        ("Tasks:Subject", "Call the insurer"),
        ("Tasks:Importance", "2"),
        ("Tasks:UtcStartDate", "2024-03-24T23:00:00.000Z"),
        ("Tasks:StartDate", "2024-03-25T00:00:00.000Z"),
        ("Tasks:UtcDueDate", "2024-03-31T22:00:00.000Z"),
        ("Tasks:DueDate", "2024-04-01T00:00:00.000Z"),
        group("Tasks:Categories", ("Tasks:Category", "House"), ("Tasks:Category", "Calls")),
        group("Tasks:Recurrence", ("Tasks:Type", "3"),
              ("Tasks:Start", "2024-03-25T00:00:00.000Z"),
              ("Tasks:Occurrences", "6"), ("Tasks:Interval", "1"),
              ("Tasks:DayOfWeek", "2"), ("Tasks:WeekOfMonth", "5"),
              ("Tasks:Regenerate", "0"), ("Tasks:DeadOccur", "0")),
        ("Tasks:Complete", "0"),
        ("Tasks:Sensitivity", "1"),
        ("Tasks:ReminderTime", "2024-03-31T07:00:00.000Z"),
        ("Tasks:ReminderSet", "1"),
    )


class RoundTripTests(TestCase):
    """Device -> server -> device gives back what the device sent."""

    def test_full_task_every_version(self) -> None:
        for version in ("2.5", "12.1", "14.1", "16.1"):
            sent = full_task(version)
            stored = CODEC.from_eas(wire(sent), None, ctx(version))
            self.assertTrue(stored.uid)
            back = wire(CODEC.to_eas(stored.data, ctx(version)))
            got = fields(back)
            for tag, text in fields(sent).items():
                self.assertEqual(got.get(tag), text, (version, tag))
            self.assertEqual(
                [c.text for c in back.findall("Tasks:Categories/Tasks:Category")],
                ["House", "Calls"])
            recurrence = back.find("Tasks:Recurrence")
            assert recurrence is not None
            for child in sent.find("Tasks:Recurrence").children:  # type: ignore[union-attr]
                self.assertEqual(recurrence.findtext(child.tag), child.text, (version, child.tag))
            self.assertEqual(recurrence.findtext("Tasks:CalendarType"),
                             None if version in ("2.5", "12.1") else "0")
            if version == "2.5":
                self.assertEqual(back.findtext("Tasks:Body"), "Call about the roof\nBring photos")
                self.assertIsNone(back.find("AirSyncBase:Body"))
            else:
                self.assertEqual(back.findtext("AirSyncBase:Body/AirSyncBase:Data"),
                                 "Call about the roof\nBring photos")

    def test_stored_form(self) -> None:
        stored = CODEC.from_eas(full_task("14.1"), None, ctx("14.1")).data
        task = parse_vtodo(stored)
        self.assertEqual(task.start, date(2024, 3, 25))
        self.assertEqual(task.due, date(2024, 4, 1))
        self.assertEqual(task.rrule, "FREQ=MONTHLY;COUNT=6;BYDAY=-1MO")
        self.assertEqual(task.importance, 2)
        self.assertEqual(task.sensitivity, 1)
        self.assertEqual(task.reminder, datetime(2024, 3, 31, 7, 0, tzinfo=UTC))
        self.assertEqual(task.created, datetime(2024, 3, 20, 12, 0, tzinfo=UTC))
        self.assertIn("DUE;VALUE=DATE:20240401", stored)

    def test_fixtures_round_trip_through_a_device(self) -> None:
        """Server -> device -> server: the device sends back what it got and
        the stored VTODO means the same (and keeps its TZIDs)."""
        for name in ("thunderbird_task.ics", "apple_reminders.ics", "nextcloud_tasks.ics",
                     "thunderbird_monthly.ics", "hourly_rule.ics"):
            for version in ("12.1", "14.1", "16.1"):
                original = fixture(name)
                shown = wire(CODEC.to_eas(original, ctx(version)))
                stored = CODEC.from_eas(shown, original, ctx(version)).data
                before, after = parse_vtodo(original), parse_vtodo(stored)
                for field in ("uid", "summary", "description", "start", "due", "completed",
                              "completed_at", "importance", "sensitivity", "reminder_set",
                              "reminder", "categories", "rrule", "regenerate", "dead_occur"):
                    self.assertEqual(getattr(after, field), getattr(before, field),
                                     (name, version, field))
                self.assertEqual(fields(wire(CODEC.to_eas(stored, ctx(version)))),
                                 fields(shown), (name, version))
        kept = CODEC.from_eas(wire(CODEC.to_eas(fixture("thunderbird_task.ics"), ctx())),
                              fixture("thunderbird_task.ics"), ctx()).data
        self.assertIn("DUE;TZID=Europe/Berlin:20240402T170000", kept)
        self.assertIn("X-MOZ-GENERATION:3", kept)
        self.assertIn("TRIGGER;RELATED=END:-PT1H", kept)


class DueDateZoneTests(TestCase):
    """A due date is a day: it never shifts, whatever the zones."""

    ZONES = ("UTC", "Europe/Berlin", "America/Los_Angeles", "Pacific/Auckland",
             "Asia/Kolkata", "Pacific/Kiritimati", "Pacific/Pago_Pago", "America/St_Johns")
    #: Days around DST changes (US 2024-03-10, EU 2024-03-31, NZ 2024-04-07,
    #: EU 2024-10-27, US 2024-11-03) and a leap day.
    DAYS = (date(2024, 3, 10), date(2024, 3, 31), date(2024, 4, 7), date(2024, 10, 27),
            date(2024, 11, 3), date(2024, 2, 29), date(2024, 12, 31))

    def test_device_zone_vs_server_zone(self) -> None:
        for device_zone in self.ZONES:
            for server_zone in self.ZONES:
                for day in self.DAYS:
                    local = datetime(day.year, day.month, day.day)
                    from zoneinfo import ZoneInfo
                    instant = local.replace(tzinfo=ZoneInfo(device_zone)).astimezone(UTC)
                    sent = app_data(("Tasks:Subject", "x"),
                                    ("Tasks:UtcDueDate", format_eas_datetime(instant)),
                                    ("Tasks:DueDate", format_eas_datetime(local)),
                                    ("Tasks:Complete", "0"))
                    stored = CODEC.from_eas(sent, None, ctx(zone=device_zone)).data
                    self.assertEqual(parse_vtodo(stored).due, day)
                    shown = CODEC.to_eas(stored, ctx(zone=server_zone))
                    self.assertEqual(shown.findtext("Tasks:DueDate"),
                                     format_eas_datetime(local), (device_zone, server_zone))
                    expected = local.replace(tzinfo=ZoneInfo(server_zone)).astimezone(UTC)
                    self.assertEqual(shown.findtext("Tasks:UtcDueDate"),
                                     format_eas_datetime(expected))

    def test_only_utc_sent(self) -> None:
        sent = app_data(("Tasks:Subject", "x"),
                        ("Tasks:UtcDueDate", "2024-03-30T23:00:00.000Z"),
                        ("Tasks:Complete", "0"))
        stored = CODEC.from_eas(sent, None, ctx(zone="Europe/Berlin")).data
        self.assertEqual(parse_vtodo(stored).due, date(2024, 3, 31))

    def test_ical_date_due(self) -> None:
        shown = CODEC.to_eas(fixture("apple_reminders.ics"), ctx(zone="America/New_York"))
        self.assertEqual(shown.findtext("Tasks:DueDate"), "2024-03-11T00:00:00.000Z")
        self.assertEqual(shown.findtext("Tasks:UtcDueDate"), "2024-03-11T04:00:00.000Z")

    def test_timed_due(self) -> None:
        sent = app_data(("Tasks:Subject", "Standup"),
                        ("Tasks:UtcDueDate", "2024-03-21T08:30:00.000Z"),
                        ("Tasks:DueDate", "2024-03-21T09:30:00.000Z"),
                        ("Tasks:Complete", "0"))
        stored = CODEC.from_eas(sent, None, ctx()).data
        self.assertEqual(parse_vtodo(stored).due, datetime(2024, 3, 21, 8, 30, tzinfo=UTC))
        shown = CODEC.to_eas(stored, ctx(zone="America/New_York"))
        self.assertEqual(shown.findtext("Tasks:UtcDueDate"), "2024-03-21T08:30:00.000Z")
        self.assertEqual(shown.findtext("Tasks:DueDate"), "2024-03-21T04:30:00.000Z")

    def test_floating_due(self) -> None:
        sent = app_data(("Tasks:Subject", "x"), ("Tasks:DueDate", "2024-03-21T09:30:00.000Z"),
                        ("Tasks:Complete", "0"))
        stored = CODEC.from_eas(sent, None, ctx()).data
        self.assertEqual(parse_vtodo(stored).due, datetime(2024, 3, 21, 9, 30))
        shown = CODEC.to_eas(stored, ctx(zone="Asia/Tokyo"))
        self.assertEqual(shown.findtext("Tasks:DueDate"), "2024-03-21T09:30:00.000Z")
        self.assertEqual(shown.findtext("Tasks:UtcDueDate"), "2024-03-21T00:30:00.000Z")

    def test_start_after_due_is_refused(self) -> None:
        sent = app_data(("Tasks:StartDate", "2024-03-22T00:00:00.000Z"),
                        ("Tasks:DueDate", "2024-03-21T00:00:00.000Z"),
                        ("Tasks:Complete", "0"))
        self.assertRaises(CodecError, CODEC.from_eas, sent, None, ctx())


class CompletionTests(TestCase):
    """Complete, DateCompleted, STATUS and FilterType 8."""

    def test_complete_and_reopen(self) -> None:
        original = fixture("thunderbird_task.ics")
        self.assertTrue(CODEC.in_filter(original, 8, NOW))
        done = app_data(("Tasks:Subject", "Steuererklärung abgeben"),
                        ("Tasks:Complete", "1"),
                        ("Tasks:DateCompleted", "2024-03-19T18:00:00.000Z"))
        supported = frozenset({"Tasks:Subject", "Tasks:Complete", "Tasks:DateCompleted"})
        stored = CODEC.from_eas(done, original, ctx(supported=supported)).data
        self.assertIn("STATUS:COMPLETED", stored)
        self.assertIn("COMPLETED:20240319T180000Z", stored)
        self.assertFalse(CODEC.in_filter(stored, 8, NOW))
        self.assertTrue(CODEC.in_filter(stored, 0, NOW))
        shown = CODEC.to_eas(stored, ctx())
        self.assertEqual(shown.findtext("Tasks:Complete"), "1")
        self.assertEqual(shown.findtext("Tasks:DateCompleted"), "2024-03-19T18:00:00.000Z")
        # Ghosted fields were kept.
        task = parse_vtodo(stored)
        self.assertEqual(task.categories, ("Finanzen", "Büro"))
        self.assertEqual(task.importance, 2)
        reopen = app_data(("Tasks:Subject", "Steuererklärung abgeben"), ("Tasks:Complete", "0"))
        reopened = CODEC.from_eas(reopen, stored, ctx(supported=supported)).data
        self.assertTrue(CODEC.in_filter(reopened, 8, NOW))
        self.assertNotIn("COMPLETED:", reopened.replace("STATUS:COMPLETED", ""))
        self.assertIsNone(CODEC.to_eas(reopened, ctx()).find("Tasks:DateCompleted"))

    def test_complete_without_date_uses_now(self) -> None:
        stored = CODEC.from_eas(app_data(("Tasks:Subject", "x"), ("Tasks:Complete", "1")),
                                None, ctx()).data
        self.assertEqual(parse_vtodo(stored).completed_at,
                         datetime(2024, 3, 20, 12, 0, tzinfo=UTC))

    def test_completed_ical_without_date(self) -> None:
        text = fixture("apple_reminders.ics").replace("COMPLETED:20240311T163822Z\r\n", "")
        text = text.replace("COMPLETED:20240311T163822Z\n", "")
        shown = CODEC.to_eas(text, ctx())
        self.assertEqual(shown.findtext("Tasks:Complete"), "1")
        self.assertEqual(shown.findtext("Tasks:DateCompleted"), "2024-03-11T16:38:22.000Z")

    def test_unreadable_item_stays_in_filter(self) -> None:
        self.assertTrue(CODEC.in_filter("garbage", 8, NOW))


class GhostingTests(TestCase):
    """MS-ASCMD Supported: absent + supported = cleared, absent + unsupported = kept."""

    def test_supported_absent_is_cleared(self) -> None:
        original = fixture("thunderbird_task.ics")
        change = app_data(("Tasks:Subject", "Renamed"), ("Tasks:Complete", "0"))
        stored = CODEC.from_eas(change, original, ctx(supported=SUPPORTED_ELEMENTS)).data
        task = parse_vtodo(stored)
        self.assertEqual(task.summary, "Renamed")
        self.assertEqual(task.categories, ())
        self.assertIsNone(task.due)
        self.assertFalse(task.reminder_set)
        self.assertIsNone(task.importance)
        # The body was not sent: kept.
        self.assertEqual(task.description,
                         "Belege aus dem Ordner\nund die Lohnsteuerbescheinigung.")

    def test_no_supported_list_means_everything_supported(self) -> None:
        change = app_data(("Tasks:Subject", "Renamed"), ("Tasks:Complete", "0"))
        task = parse_vtodo(CODEC.from_eas(change, fixture("nextcloud_tasks.ics"), ctx()).data)
        self.assertIsNone(task.rrule)
        self.assertEqual(task.categories, ())

    def test_unsupported_absent_is_kept(self) -> None:
        original = fixture("nextcloud_tasks.ics")
        change = app_data(("Tasks:Subject", "Water the cactus"))
        task = parse_vtodo(CODEC.from_eas(
            change, original, ctx(supported=frozenset({"Tasks:Subject"}))).data)
        self.assertEqual(task.summary, "Water the cactus")
        self.assertEqual(task.rrule, "FREQ=WEEKLY;INTERVAL=1;BYDAY=FR")
        self.assertEqual(task.categories, ("Home",))
        self.assertEqual(task.due, date(2024, 3, 1))
        self.assertEqual(task.sensitivity, 0)
        self.assertEqual(task.description, "Balcony and kitchen")

    def test_empty_body_clears(self) -> None:
        change = app_data(plain_body(""), ("Tasks:Subject", "x"), ("Tasks:Complete", "0"))
        task = parse_vtodo(CODEC.from_eas(change, fixture("nextcloud_tasks.ics"), ctx()).data)
        self.assertIsNone(task.description)

    def test_rule_the_device_never_saw_is_kept(self) -> None:
        original = fixture("hourly_rule.ics")
        shown = CODEC.to_eas(original, ctx())
        self.assertIsNone(shown.find("Tasks:Recurrence"))
        stored = CODEC.from_eas(shown, original, ctx()).data
        self.assertEqual(parse_vtodo(stored).rrule, "FREQ=HOURLY;COUNT=4")


class RecurrenceTests(TestCase):
    """Tasks:Recurrence, Regenerate and DeadOccur."""

    def test_regenerate_and_dead_occur(self) -> None:
        sent = app_data(("Tasks:Subject", "Change the filter"),
                        ("Tasks:UtcDueDate", "2024-04-01T07:00:00.000Z"),
                        ("Tasks:DueDate", "2024-04-01T00:00:00.000Z"),
                        group("Tasks:Recurrence", ("Tasks:Type", "2"),
                              ("Tasks:Start", "2024-01-01T00:00:00.000Z"),
                              ("Tasks:Interval", "3"), ("Tasks:DayOfMonth", "1"),
                              ("Tasks:Until", "2025-01-01T00:00:00.000Z"),
                              ("Tasks:Regenerate", "1"), ("Tasks:DeadOccur", "1")),
                        ("Tasks:Complete", "0"))
        stored = CODEC.from_eas(sent, None, ctx("14.1", zone="America/Los_Angeles")).data
        task = parse_vtodo(stored)
        self.assertEqual(task.rrule, "FREQ=MONTHLY;INTERVAL=3;UNTIL=20250101;BYMONTHDAY=1")
        self.assertTrue(task.regenerate)
        self.assertTrue(task.dead_occur)
        self.assertEqual(task.recurrence_start, date(2024, 1, 1))
        back = CODEC.to_eas(stored, ctx("14.1", zone="America/Los_Angeles"))
        recurrence = back.find("Tasks:Recurrence")
        assert recurrence is not None
        self.assertEqual(recurrence.findtext("Tasks:Start"), "2024-01-01T00:00:00.000Z")
        self.assertEqual(recurrence.findtext("Tasks:Until"), "2025-01-01T00:00:00.000Z")
        self.assertEqual(recurrence.findtext("Tasks:Regenerate"), "1")
        self.assertEqual(recurrence.findtext("Tasks:DeadOccur"), "1")
        self.assertEqual(recurrence.findtext("Tasks:Interval"), "3")

    def test_unknown_type_is_refused(self) -> None:
        sent = app_data(("Tasks:Subject", "x"), ("Tasks:Complete", "0"),
                        group("Tasks:Recurrence", ("Tasks:Type", "4")))
        self.assertRaises(CodecError, CODEC.from_eas, sent, None, ctx())

    def test_removed_recurrence(self) -> None:
        original = fixture("thunderbird_monthly.ics")
        shown = CODEC.to_eas(original, ctx())
        shown.children = [c for c in shown.children if c.tag != "Tasks:Recurrence"]
        self.assertIsNone(parse_vtodo(CODEC.from_eas(shown, original, ctx()).data).rrule)


class ContentTests(TestCase):
    """Bodies, defaults and malformed input."""

    def test_html_body_preference(self) -> None:
        sent = app_data(group("AirSyncBase:Body", ("AirSyncBase:Type", "2"),
                              ("AirSyncBase:Data", "<p>Hello <b>you</b></p>")),
                        ("Tasks:Subject", "x"), ("Tasks:Complete", "0"))
        stored = CODEC.from_eas(sent, None, ctx()).data
        task = parse_vtodo(stored)
        self.assertEqual(task.description, "Hello you")
        self.assertEqual(task.description_html, "<p>Hello <b>you</b></p>")
        html_ctx = ctx(body_preferences=(BodyPreference(2),))
        self.assertEqual(CODEC.to_eas(stored, html_ctx).findtext(
            "AirSyncBase:Body/AirSyncBase:Data"), "<p>Hello <b>you</b></p>")
        self.assertEqual(CODEC.to_eas(stored, ctx()).findtext(
            "AirSyncBase:Body/AirSyncBase:Data"), "Hello you")

    def test_legacy_truncation(self) -> None:
        shown = CODEC.to_eas(fixture("nextcloud_tasks.ics"), ctx("2.5", truncation=0))
        self.assertIsNone(shown.find("Tasks:Body"))
        self.assertEqual(shown.findtext("Tasks:BodyTruncated"), "1")
        self.assertEqual(shown.findtext("Tasks:BodySize"), "19")

    def test_defaults(self) -> None:
        stored = CODEC.from_eas(app_data(("Tasks:Subject", "bare")), None, ctx()).data
        shown = fields(CODEC.to_eas(stored, ctx()))
        self.assertEqual(shown["Tasks:Importance"], "1")
        self.assertEqual(shown["Tasks:Complete"], "0")
        self.assertEqual(shown["Tasks:Sensitivity"], "0")
        self.assertEqual(shown["Tasks:ReminderSet"], "0")
        self.assertNotIn("Tasks:DueDate", shown)

    def test_reminder_set_without_time(self) -> None:
        sent = app_data(("Tasks:Subject", "x"), ("Tasks:DueDate", "2024-05-01T00:00:00.000Z"),
                        ("Tasks:ReminderSet", "1"))
        stored = CODEC.from_eas(sent, None, ctx()).data
        shown = CODEC.to_eas(stored, ctx())
        self.assertEqual(shown.findtext("Tasks:ReminderSet"), "1")
        self.assertEqual(shown.findtext("Tasks:ReminderTime"), "2024-04-30T22:00:00.000Z")

    def test_bad_input(self) -> None:
        self.assertRaises(CodecError, CODEC.to_eas, "not ical", ctx())
        self.assertRaises(CodecError, CODEC.from_eas, app_data(), "not ical", ctx())
        for tag, value in (("Tasks:Importance", "7"), ("Tasks:Importance", "high"),
                           ("Tasks:Sensitivity", "9"), ("Tasks:DueDate", "tomorrow")):
            self.assertRaises(CodecError, CODEC.from_eas, app_data((tag, value)), None, ctx())

    def test_dates(self) -> None:
        self.assertEqual(parse_eas_datetime("2024-03-15T08:00:00.000Z"),
                         datetime(2024, 3, 15, 8, 0))
        self.assertEqual(parse_eas_datetime("20240315T080000Z"), datetime(2024, 3, 15, 8, 0))
        self.assertIsNone(parse_eas_datetime(""))
        self.assertEqual(format_eas_datetime(datetime(2024, 3, 15, 9, tzinfo=timezone.utc)),
                         "2024-03-15T09:00:00.000Z")
        self.assertEqual(CODEC.eas_class, "Tasks")
