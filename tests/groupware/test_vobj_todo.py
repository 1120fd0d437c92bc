"""VTODO <-> Task (easyncd.backends.groupware.vobj.todo), on real-world exports."""
from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from twisted.trial.unittest import TestCase

from easyncd.backends.groupware.task import (
    Task,
    importance_from_priority,
    priority_from_importance,
)
from easyncd.backends.groupware.vobj.todo import VObjectError, parse_vtodo, write_vtodo

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vtodo"
UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def fixture(name: str) -> str:
    """The text of a VTODO fixture."""
    return (FIXTURES / name).read_text(encoding="utf-8")


def unfolded(text: str) -> str:
    """``text`` with RFC 5545 folding undone, for substring checks."""
    return text.replace("\r\n ", "").replace("\r\n", "\n")


class ParseTests(TestCase):
    """Reading the exports of Thunderbird, Apple Reminders and Nextcloud Tasks."""

    def test_thunderbird(self) -> None:
        task = parse_vtodo(fixture("thunderbird_task.ics"))
        self.assertEqual(task.uid, "6f0a6c43-9c2e-4b1e-8f0e-2b7c1d5e9a01")
        self.assertEqual(task.summary, "Steuererklärung abgeben")
        self.assertEqual(task.description,
                         "Belege aus dem Ordner\nund die Lohnsteuerbescheinigung.")
        self.assertEqual(task.start, datetime(2024, 3, 25, 9, 0, tzinfo=BERLIN))
        self.assertEqual(task.due, datetime(2024, 4, 2, 17, 0, tzinfo=BERLIN))
        self.assertFalse(task.completed)  # IN-PROCESS, 40 %
        self.assertEqual(task.importance, 2)
        self.assertEqual(task.sensitivity, 2)
        self.assertEqual(task.categories, ("Finanzen", "Büro"))
        # TRIGGER;RELATED=END:-PT1H -> one hour before the due time.
        self.assertTrue(task.reminder_set)
        self.assertEqual(task.reminder, datetime(2024, 4, 2, 14, 0, tzinfo=UTC))
        self.assertEqual(task.last_modified, datetime(2024, 3, 2, 10, 10, 1, tzinfo=UTC))

    def test_apple_reminders_completed(self) -> None:
        task = parse_vtodo(fixture("apple_reminders.ics"))
        self.assertTrue(task.completed)
        self.assertEqual(task.completed_at, datetime(2024, 3, 11, 16, 38, 22, tzinfo=UTC))
        self.assertEqual(task.due, date(2024, 3, 11))
        self.assertEqual(task.importance, 0)  # PRIORITY 9 = low
        self.assertEqual(task.reminder, datetime(2024, 3, 11, 8, 0, tzinfo=UTC))

    def test_nextcloud_recurring(self) -> None:
        task = parse_vtodo(fixture("nextcloud_tasks.ics"))
        self.assertEqual(task.rrule, "FREQ=WEEKLY;INTERVAL=1;BYDAY=FR")
        self.assertEqual(task.start, date(2024, 3, 1))
        self.assertEqual(task.due, date(2024, 3, 1))
        self.assertEqual(task.importance, 1)
        self.assertEqual(task.sensitivity, 0)
        self.assertFalse(task.reminder_set)
        self.assertFalse(task.completed)

    def test_status_less_completion(self) -> None:
        text = fixture("hourly_rule.ics").replace(
            "SUMMARY:Check the oven", "SUMMARY:Check the oven\r\nCOMPLETED:20240301T100000Z")
        self.assertTrue(parse_vtodo(text).completed)
        percent = fixture("hourly_rule.ics").replace(
            "SUMMARY:Check the oven", "SUMMARY:Check the oven\r\nPERCENT-COMPLETE:100")
        self.assertTrue(parse_vtodo(percent).completed)
        self.assertFalse(parse_vtodo(fixture("hourly_rule.ics")).completed)

    def test_duration_gives_due(self) -> None:
        text = fixture("hourly_rule.ics").replace("DUE:20240301T090000Z", "DURATION:PT2H")
        self.assertEqual(parse_vtodo(text).due, datetime(2024, 3, 1, 10, 0, tzinfo=UTC))

    def test_relative_alarm_to_start(self) -> None:
        text = fixture("hourly_rule.ics").replace(
            "END:VTODO", "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT10M\r\n"
            "DESCRIPTION:x\r\nEND:VALARM\r\nEND:VTODO")
        task = parse_vtodo(text)
        self.assertEqual(task.reminder,
                         datetime(2024, 3, 1, 8, 0, tzinfo=UTC) - timedelta(minutes=10))

    def test_not_a_vtodo(self) -> None:
        self.assertRaises(VObjectError, parse_vtodo, "garbage")
        self.assertRaises(VObjectError, parse_vtodo, (Path(__file__).resolve().parent.parent
                                                      / "fixtures" / "vjournal"
                                                      / "evolution_memo.ics").read_text())


class WriteTests(TestCase):
    """Writing keeps what the model does not know and rewrites only changes."""

    def test_unchanged_round_trip(self) -> None:
        for name in ("thunderbird_task.ics", "apple_reminders.ics", "nextcloud_tasks.ics",
                     "thunderbird_monthly.ics", "hourly_rule.ics"):
            task = parse_vtodo(fixture(name))
            again = parse_vtodo(write_vtodo(task))
            self.assertEqual(again, task, name)

    def test_unknown_properties_survive_a_change(self) -> None:
        task = parse_vtodo(fixture("thunderbird_task.ics"))
        text = unfolded(write_vtodo(dataclasses.replace(task, summary="Steuern")))
        self.assertIn("SUMMARY:Steuern", text)
        self.assertIn("X-MOZ-GENERATION:3", text)
        self.assertIn("X-MOZ-LASTACK:20240302T101001Z", text)
        self.assertIn("DUE;TZID=Europe/Berlin:20240402T170000", text)
        self.assertIn("TRIGGER;RELATED=END:-PT1H", text)
        self.assertIn("STATUS:IN-PROCESS", text)
        self.assertIn("PERCENT-COMPLETE:40", text)
        self.assertIn("TZID:Europe/Berlin", text)
        nextcloud = parse_vtodo(fixture("nextcloud_tasks.ics"))
        text = unfolded(write_vtodo(dataclasses.replace(nextcloud, categories=("Garden",))))
        self.assertIn("RELATED-TO:9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", text)
        self.assertIn("X-OC-HIDESUBTASKS:0", text)
        self.assertIn("CATEGORIES:Garden", text)
        self.assertIn("RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=FR", text)

    def test_changed_due_is_written_in_utc(self) -> None:
        task = parse_vtodo(fixture("thunderbird_task.ics"))
        moved = dataclasses.replace(task, due=datetime(2024, 4, 3, 15, 0, tzinfo=UTC))
        text = unfolded(write_vtodo(moved))
        self.assertIn("DUE:20240403T150000Z", text)
        self.assertNotIn("DUE;TZID", text)
        self.assertEqual(parse_vtodo(text).due, moved.due)

    def test_same_instant_keeps_the_zone(self) -> None:
        task = parse_vtodo(fixture("thunderbird_task.ics"))
        same = dataclasses.replace(task, due=datetime(2024, 4, 2, 15, 0, tzinfo=UTC))
        self.assertIn("DUE;TZID=Europe/Berlin:20240402T170000", unfolded(write_vtodo(same)))

    def test_completion(self) -> None:
        task = parse_vtodo(fixture("thunderbird_task.ics"))
        done_at = datetime(2024, 4, 1, 12, 0, tzinfo=UTC)
        done = write_vtodo(dataclasses.replace(task, completed=True, completed_at=done_at))
        text = unfolded(done)
        self.assertIn("STATUS:COMPLETED", text)
        self.assertIn("PERCENT-COMPLETE:100", text)
        self.assertIn("COMPLETED:20240401T120000Z", text)
        reopened = unfolded(write_vtodo(dataclasses.replace(
            parse_vtodo(done), completed=False, completed_at=None)))
        self.assertIn("STATUS:NEEDS-ACTION", reopened)
        self.assertNotIn("COMPLETED:", reopened.replace("STATUS:COMPLETED", ""))
        self.assertNotIn("PERCENT-COMPLETE", reopened)
        self.assertFalse(parse_vtodo(reopened).completed)

    def test_new_task(self) -> None:
        stamp = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
        task = Task(uid="NEW-1", summary="Renew passport", description="Photo!",
                    start=date(2024, 3, 4), due=date(2024, 3, 8), importance=2,
                    sensitivity=3, reminder_set=True,
                    reminder=datetime(2024, 3, 8, 7, 0, tzinfo=UTC),
                    categories=("Admin", "a,b"), rrule="FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=8",
                    regenerate=True, dead_occur=True, recurrence_start=date(2024, 3, 4),
                    stamp=stamp, created=stamp, last_modified=stamp)
        text = write_vtodo(task)
        flat = unfolded(text)
        self.assertIn("PRODID:-//easyncd//NONSGML easyncd//EN", flat)
        self.assertIn("DUE;VALUE=DATE:20240308", flat)
        self.assertIn("DTSTART;VALUE=DATE:20240304", flat)
        self.assertIn("PRIORITY:1", flat)
        self.assertIn("CLASS:CONFIDENTIAL", flat)
        self.assertIn("TRIGGER;VALUE=DATE-TIME:20240308T070000Z", flat)
        self.assertIn("ACTION:DISPLAY", flat)
        self.assertNotIn("VTIMEZONE", flat)
        self.assertEqual(parse_vtodo(text), task)

    def test_reminder_without_time_is_at_due(self) -> None:
        task = Task(uid="R", due=date(2024, 5, 1), reminder_set=True,
                    stamp=datetime(2024, 1, 1, tzinfo=UTC))
        text = unfolded(write_vtodo(task))
        self.assertIn("TRIGGER;RELATED=END:PT0S", text)
        parsed = parse_vtodo(text)
        self.assertTrue(parsed.reminder_set)
        self.assertEqual(parsed.reminder, datetime(2024, 5, 1))

    def test_removing_the_reminder_and_rule(self) -> None:
        task = parse_vtodo(fixture("thunderbird_task.ics"))
        text = unfolded(write_vtodo(dataclasses.replace(task, reminder_set=False,
                                                        reminder=None)))
        self.assertNotIn("VALARM", text)
        nextcloud = parse_vtodo(fixture("nextcloud_tasks.ics"))
        self.assertNotIn("RRULE", write_vtodo(dataclasses.replace(nextcloud, rrule=None)))


class PriorityTests(TestCase):
    """PRIORITY <-> Importance."""

    def test_table(self) -> None:
        for priority, importance in ((None, None), (0, None), (1, 2), (4, 2), (5, 1),
                                     (6, 0), (9, 0)):
            self.assertEqual(importance_from_priority(priority), importance, priority)
        for importance, priority in ((None, None), (0, 9), (1, 5), (2, 1)):
            self.assertEqual(priority_from_importance(importance), priority)
            self.assertEqual(importance_from_priority(priority), importance)
