"""The email follow-up flag: reading the device's Flag, combining stored data
with ``\\Flagged``, and the codec sending it (MS-ASEMAIL 2.2.2.34, 3.2.5.4.2)."""
from __future__ import annotations

from dataclasses import replace

from twisted.trial.unittest import TestCase

from easyncd.protocol.codecs.base import BodyPreference
from easyncd.protocol.codecs.email import email_to_eas
from easyncd.protocol.codecs.emailflag import (
    FLAG_TAGS,
    InvalidFlag,
    flag_element,
    merge_completed,
    parse_flag,
)
from easyncd.wbxml import Element, decode, encode
from tests.codecs.test_email import Recorded, ctx

ACTIVE = {"Email:Status": "2", "Email:FlagType": "Flag for follow up",
          "Tasks:StartDate": "2023-11-20T00:00:00.000Z",
          "Tasks:DueDate": "2023-11-22T00:00:00.000Z",
          "Tasks:UtcStartDate": "2023-11-19T23:00:00.000Z",
          "Tasks:UtcDueDate": "2023-11-21T23:00:00.000Z"}
COMPLETE = {"Email:Status": "1", "Email:CompleteTime": "2023-11-21T09:00:00.000Z",
            "Tasks:DateCompleted": "2023-11-21T09:00:00.000Z"}


def flag(children: dict[str, str]) -> Element:
    element = Element("Email:Flag")
    for tag, value in children.items():
        element.add(tag, value)
    return element


def children(element: Element) -> dict[str, str]:
    return {c.tag: str(c.text) for c in element.children}


class ParseFlagTests(TestCase):
    def test_active_keeps_every_known_child_in_order(self) -> None:
        sent = {"Tasks:ReminderTime": "2023-11-21T08:00:00.000Z", **ACTIVE,
                "Tasks:ReminderSet": "1", "Tasks:Subject": "Follow up",
                "Tasks:OrdinalDate": "2023-11-20T10:00:00.000Z",
                "Tasks:SubOrdinalDate": "5555555", "Email:Unknown": "x"}
        parsed = parse_flag(flag(sent))
        self.assertTrue(parsed.flagged)
        assert parsed.data is not None
        self.assertNotIn("Email:Unknown", parsed.data)
        self.assertEqual([t for t in FLAG_TAGS if t in sent], list(parsed.data))

    def test_complete_and_clear(self) -> None:
        done = parse_flag(flag(COMPLETE))
        self.assertEqual(("1", False, COMPLETE), (done.status, done.flagged, dict(done.data or {})))
        for cleared in (flag({}), flag({**COMPLETE, "Email:Status": "0"}),
                        flag({"Tasks:DueDate": "2023-11-22T00:00:00.000Z"})):
            self.assertEqual(("0", None), (parse_flag(cleared).status, parse_flag(cleared).data))

    def test_invalid_status(self) -> None:
        self.assertRaises(InvalidFlag, parse_flag, flag({"Email:Status": "3"}))
        self.assertRaises(InvalidFlag, parse_flag, flag({"Email:Status": "active"}))

    def test_completion_keeps_the_dates_it_leaves_out(self) -> None:
        merged = merge_completed(COMPLETE, ACTIVE)
        self.assertEqual({**ACTIVE, **COMPLETE}, merged)
        self.assertEqual([t for t in FLAG_TAGS if t in merged], list(merged))
        self.assertEqual(COMPLETE, merge_completed(COMPLETE, None))
        # What the device sends wins.
        own = {**COMPLETE, "Tasks:DueDate": "2023-12-01T00:00:00.000Z"}
        self.assertEqual("2023-12-01T00:00:00.000Z", merge_completed(own, ACTIVE)["Tasks:DueDate"])


class FlagElementTests(TestCase):
    def test_combinations(self) -> None:
        plain = {"Email:Status": "2", "Email:FlagType": "Flag for follow up"}
        self.assertEqual(ACTIVE, children(flag_element(True, ACTIVE)))
        self.assertEqual(plain, children(flag_element(True, None)))
        # Flagged again elsewhere after a completion: active, without old data.
        self.assertEqual(plain, children(flag_element(True, COMPLETE)))
        self.assertEqual(COMPLETE, children(flag_element(False, COMPLETE)))
        # Cleared elsewhere: the stale active data is not shown.
        self.assertEqual({}, children(flag_element(False, ACTIVE)))
        self.assertEqual({}, children(flag_element(False, None)))

    def test_active_without_flag_type_gets_the_default(self) -> None:
        element = flag_element(True, {"Email:Status": "2", "Tasks:DueDate": "x"})
        self.assertEqual(["Email:Status", "Email:FlagType", "Tasks:DueDate"],
                         [c.tag for c in element.children])


class CodecFlagTests(TestCase):
    def render(self, version: str, flags: tuple[str, ...], follow_up: dict[str, str] | None,
               ) -> Element | None:
        context = ctx(version, BodyPreference(1, 200))
        view = replace(Recorded("plain").view(context, flags=flags), follow_up=follow_up)
        app = email_to_eas(view, context, folder_server_id="5")
        app = decode(encode(app))
        return app.find("Email:Flag")

    def test_stored_dates_are_sent(self) -> None:
        element = self.render("16.1", ("\\Flagged",), ACTIVE)
        assert element is not None
        self.assertEqual(ACTIVE, children(element))
        element = self.render("12.1", ("\\Seen",), COMPLETE)
        assert element is not None
        self.assertEqual(COMPLETE, children(element))

    def test_without_stored_data_as_before(self) -> None:
        element = self.render("14.1", ("\\Flagged",), None)
        assert element is not None
        self.assertEqual({"Email:Status": "2", "Email:FlagType": "Flag for follow up"},
                         children(element))
        element = self.render("14.1", (), None)
        assert element is not None
        self.assertEqual([], element.children)

    def test_no_flag_in_2_5(self) -> None:
        self.assertIsNone(self.render("2.5", ("\\Flagged",), ACTIVE))
