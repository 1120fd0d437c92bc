"""The pure helpers of the groupware backends."""
from __future__ import annotations

from twisted.trial import unittest

from easyncd.backends.groupware.items import (
    ADD,
    CHANGE,
    DELETE,
    check_item,
    extract_uid,
    net_changes,
    parse_id,
)
from easyncd.backends.interfaces import InvalidItem


class UidTests(unittest.TestCase):
    """The UID comes from a text scan."""

    def test_forms(self) -> None:
        self.assertEqual(extract_uid("BEGIN:VCARD\nUID:abc\nEND:VCARD"), "abc")
        self.assertEqual(extract_uid("BEGIN:VCARD\r\nuid;VALUE=TEXT:abc \r\nEND:VCARD"), "abc")
        self.assertEqual(extract_uid("X\r\nUID:ab\r\n c\r\n\td\r\nSUMMARY:x"), "abcd")
        self.assertIsNone(extract_uid("BEGIN:VCARD\nFN:UID:abc\nEND:VCARD"))
        self.assertIsNone(extract_uid("BEGIN:VCARD\nUID:\nEND:VCARD"))
        # The first one: the master VEVENT's, exceptions share it anyway.
        self.assertEqual(extract_uid("UID:one\nUID:two"), "one")

    def test_check_item(self) -> None:
        self.assertEqual(check_item("contacts", "begin:vcard\nUID:x\nend:vcard"), "x")
        self.assertIsNone(check_item("tasks", "BEGIN:VCALENDAR\nEND:VCALENDAR"))
        for kind, data in (("contacts", "BEGIN:VCALENDAR"), ("notes", "BEGIN:VCARD"),
                           ("calendar", b"BEGIN:VCALENDAR"), ("calendar", "  ")):
            self.assertRaises(InvalidItem, check_item, kind, data)

    def test_parse_id(self) -> None:
        self.assertEqual(parse_id("12"), 12)
        for bad in ("0", "012", "-1", "1.5", "abc", "", None, "9" * 30, True):
            self.assertIsNone(parse_id(bad), bad)


class NetChangesTests(unittest.TestCase):
    """History rows to net changes."""

    def test_rules(self) -> None:
        rows = [(11, "n", ADD), (12, "n", DELETE),   # added and deleted: nothing
                (13, "m", ADD), (14, "m", CHANGE),   # added then changed: added
                (15, "o", CHANGE), (16, "p", DELETE),  # old items
                (17, "q", CHANGE), (18, "q", DELETE),  # changed then deleted: deleted
                (19, "o", CHANGE)]
        changes = net_changes(rows, 10, 19)
        self.assertEqual((changes.since, changes.until), (10, 19))
        self.assertEqual(changes.added, ("m",))
        self.assertEqual(changes.changed, ("o",))
        self.assertEqual(changes.deleted, ("p", "q"))
