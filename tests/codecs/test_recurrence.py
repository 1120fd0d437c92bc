"""EAS Recurrence <-> RRULE for every EAS kind, version gates, inexact rules."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from twisted.trial.unittest import TestCase

from easyncd.protocol.codecs.recurrence import (
    Recurrence,
    from_element,
    from_rrule,
    to_element,
    to_rrule,
)
from easyncd.wbxml import Element

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")
START = datetime(2024, 3, 5, 10, 0, tzinfo=BERLIN)  # a Tuesday

#: (EAS pattern, RRULE) pairs, both directions exact.
TABLE = [
    (Recurrence(type=0, interval=1, occurrences=5), "FREQ=DAILY;COUNT=5"),
    (Recurrence(type=0, interval=3), "FREQ=DAILY;INTERVAL=3"),
    (Recurrence(type=0, day_of_week=62), "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR"),
    (Recurrence(type=1, interval=2, day_of_week=10,
                until=datetime(2024, 6, 1, 8, 0, tzinfo=UTC)),
     "FREQ=WEEKLY;INTERVAL=2;UNTIL=20240601T080000Z;BYDAY=MO,WE"),
    (Recurrence(type=1, day_of_week=65, first_day_of_week=1),
     "FREQ=WEEKLY;BYDAY=SU,SA;WKST=MO"),
    (Recurrence(type=2, day_of_month=5), "FREQ=MONTHLY;BYMONTHDAY=5"),
    (Recurrence(type=3, day_of_week=4, week_of_month=1), "FREQ=MONTHLY;BYDAY=1TU"),
    (Recurrence(type=3, day_of_week=32, week_of_month=5), "FREQ=MONTHLY;BYDAY=-1FR"),
    (Recurrence(type=3, day_of_week=62, week_of_month=2),
     "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=2"),
    (Recurrence(type=3, day_of_week=127, week_of_month=5),
     "FREQ=MONTHLY;BYDAY=SU,MO,TU,WE,TH,FR,SA;BYSETPOS=-1"),
    (Recurrence(type=5, day_of_month=5, month_of_year=3, occurrences=10),
     "FREQ=YEARLY;COUNT=10;BYMONTH=3;BYMONTHDAY=5"),
    (Recurrence(type=6, day_of_week=1, week_of_month=2, month_of_year=5),
     "FREQ=YEARLY;BYMONTH=5;BYDAY=2SU"),
    (Recurrence(type=5, day_of_month=1, month_of_year=5, calendar_type=15,
                is_leap_month=True),
     "RSCALE=CHINESE;FREQ=YEARLY;BYMONTH=5L;BYMONTHDAY=1"),
]


class RRuleTests(TestCase):
    def test_table_both_ways(self) -> None:
        for pattern, rule in TABLE:
            self.assertEqual(to_rrule(pattern, START, BERLIN), rule)
            self.assertEqual(from_rrule(rule, START, BERLIN), (pattern, True), rule)

    def test_rules_without_by_parts_use_the_start(self) -> None:
        self.assertEqual(from_rrule("FREQ=WEEKLY", START, BERLIN),
                         (Recurrence(type=1, day_of_week=4), True))
        self.assertEqual(from_rrule("FREQ=MONTHLY", START, BERLIN),
                         (Recurrence(type=2, day_of_month=5), True))
        self.assertEqual(from_rrule("FREQ=YEARLY", START, BERLIN),
                         (Recurrence(type=5, day_of_month=5, month_of_year=3), True))
        self.assertEqual(from_rrule("FREQ=MONTHLY;BYMONTHDAY=-1", START, BERLIN),
                         (Recurrence(type=3, day_of_week=127, week_of_month=5), True))

    def test_inexact_rules_give_the_closest_pattern(self) -> None:
        self.assertEqual(from_rrule("FREQ=MONTHLY;BYMONTHDAY=1,15", START, BERLIN),
                         (Recurrence(type=2, day_of_month=5), False))
        self.assertEqual(from_rrule("FREQ=YEARLY;BYMONTH=1,7;BYMONTHDAY=5", START, BERLIN),
                         (Recurrence(type=5, day_of_month=5, month_of_year=1), False))
        self.assertEqual(from_rrule("FREQ=DAILY;BYHOUR=9,17", START, BERLIN)[1], False)
        self.assertEqual(from_rrule("FREQ=MONTHLY;BYDAY=1MO,3MO", START, BERLIN)[1], False)
        self.assertEqual(from_rrule("FREQ=HOURLY;INTERVAL=4", START, BERLIN), (None, False))

    def test_all_day_until_is_a_date(self) -> None:
        day = date(2024, 3, 5)
        pattern, exact = from_rrule("FREQ=DAILY;UNTIL=20240310", day, BERLIN)
        self.assertTrue(exact)
        assert pattern is not None
        self.assertEqual(pattern.until, date(2024, 3, 10))
        self.assertEqual(to_rrule(pattern, day, BERLIN), "FREQ=DAILY;UNTIL=20240310")
        element = to_element(pattern, "14.1", tz=BERLIN)
        # Local midnight in Berlin, in UTC.
        self.assertEqual(element.findtext("Calendar:Until"), "20240309T230000Z")
        self.assertEqual(from_element(element, all_day=True, tz=BERLIN).until, date(2024, 3, 10))


class ElementTests(TestCase):
    def test_version_gates(self) -> None:
        pattern = Recurrence(type=1, day_of_week=2, first_day_of_week=1, occurrences=4)
        tags = lambda v: [c.name for c in to_element(pattern, v).children]  # noqa: E731
        self.assertEqual(tags("12.1"), ["Type", "Occurrences", "Interval", "DayOfWeek"])
        self.assertEqual(tags("14.0"), ["Type", "Occurrences", "Interval", "DayOfWeek",
                                        "CalendarType"])
        self.assertEqual(tags("14.1"), ["Type", "Occurrences", "Interval", "DayOfWeek",
                                        "CalendarType", "FirstDayOfWeek"])

    def test_round_trip_every_kind(self) -> None:
        for pattern, _rule in TABLE:
            element = to_element(pattern, "16.1", tz=BERLIN)
            back = from_element(element, tz=BERLIN)
            self.assertEqual(back.__class__(**{**back.__dict__, "calendar_type": None}),
                             pattern.__class__(**{**pattern.__dict__, "calendar_type": None}))
            self.assertEqual(to_element(back, "16.1", tz=BERLIN), element)

    def test_tasks_namespace(self) -> None:
        pattern = Recurrence(type=0, interval=2, until=datetime(2024, 5, 1, tzinfo=UTC),
                             start=date(2024, 3, 1))
        element = to_element(pattern, "14.1", "Tasks")
        self.assertEqual(element.tag, "Tasks:Recurrence")
        self.assertEqual(element.findtext("Tasks:Start"), "2024-03-01T00:00:00.000Z")
        self.assertEqual(element.findtext("Tasks:Until"), "2024-05-01T00:00:00.000Z")
        self.assertEqual(element.findtext("Tasks:Regenerate"), "0")
        back = from_element(element)
        self.assertEqual((back.type, back.interval, back.until, back.start),
                         (0, 2, datetime(2024, 5, 1, tzinfo=UTC), date(2024, 3, 1)))

    def test_bad_type(self) -> None:
        element = Element("Calendar:Recurrence")
        element.add("Calendar:Type", "4")
        self.assertRaises(ValueError, from_element, element)
