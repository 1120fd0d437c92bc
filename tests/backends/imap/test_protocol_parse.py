"""Tests for easyncd.backends.imap.protocol_parse."""
from __future__ import annotations

import datetime

from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.imap.protocol_parse import (
    IMAPParseError,
    decode_mutf7,
    encode_mutf7,
    format_internaldate,
    format_uid_set,
    literal_size,
    parse_internaldate,
    parse_uid_set,
    split_status,
    tokenize,
    uid_list,
)


class TokenizeTests(SynchronousTestCase):
    def test_atoms_strings_nil_lists(self) -> None:
        self.assertEqual(
            tokenize([b'* 1 FETCH (UID 7 FLAGS (\\Seen $Label1) X "a \\"q\\" \\\\b" NIL)']),
            ["*", "1", "FETCH", ["UID", "7", "FLAGS", ["\\Seen", "$Label1"], "X", b'a "q" \\b', None]],
        )

    def test_sections_stay_one_atom(self) -> None:
        self.assertEqual(
            tokenize([b"(BODY[HEADER.FIELDS (FROM TO)] NIL BODY[1.2]<0> NIL)"]),
            [["BODY[HEADER.FIELDS (FROM TO)]", None, "BODY[1.2]<0>", None]],
        )

    def test_literals_replace_announcements(self) -> None:
        self.assertEqual(
            tokenize([b"* 2 FETCH (BODY[] {5}", b" BODY[TEXT] {0}", b")"], [b"ab)c\r", b""]),
            ["*", "2", "FETCH", ["BODY[]", b"ab)c\r", "BODY[TEXT]", b""]],
        )

    def test_unbalanced(self) -> None:
        self.assertRaises(IMAPParseError, tokenize, [b"(a (b)"])
        self.assertRaises(IMAPParseError, tokenize, [b"a)"])

    def test_literal_size(self) -> None:
        self.assertEqual(literal_size(b"* 1 FETCH (BODY[] {12}"), 12)
        self.assertEqual(literal_size(b"A {3+}"), 3)
        self.assertIsNone(literal_size(b"* OK done"))
        self.assertIsNone(literal_size(b'* 1 FETCH (X "{3}")'))

    def test_split_status(self) -> None:
        self.assertEqual(split_status(b"[COPYUID 38505 304,319:320 3956:3958] Done"),
                         ("COPYUID", ["38505", "304,319:320", "3956:3958"], "Done"))
        self.assertEqual(split_status(b"[PERMANENTFLAGS (\\Seen \\*)] Flags"),
                         ("PERMANENTFLAGS", [["\\Seen", "\\*"]], "Flags"))
        self.assertEqual(split_status(b"just text"), ("", [], "just text"))


class UidSetTests(SynchronousTestCase):
    def test_parse(self) -> None:
        self.assertEqual(parse_uid_set("41,43:45,120:118"), frozenset({41, 43, 44, 45, 118, 119, 120}))
        self.assertEqual(parse_uid_set(b"7"), frozenset({7}))

    def test_uid_list_keeps_order(self) -> None:
        self.assertEqual(uid_list("304,319:320"), [304, 319, 320])
        self.assertEqual(uid_list("3958:3956"), [3958, 3957, 3956])

    def test_format(self) -> None:
        self.assertEqual(format_uid_set([7, 1, 2, 3, 9, 10]), "1:3,7,9:10")
        self.assertEqual(format_uid_set([5]), "5")
        self.assertRaises(ValueError, format_uid_set, [])


class ModifiedUtf7Tests(SynchronousTestCase):
    def test_rfc3501_example(self) -> None:
        name = "~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e"
        self.assertEqual(encode_mutf7(name), b"~peter/mail/&U,BTFw-/&ZeVnLIqe-")
        self.assertEqual(decode_mutf7(b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"), name)

    def test_ampersand_and_umlauts(self) -> None:
        self.assertEqual(encode_mutf7("A&B"), b"A&-B")
        self.assertEqual(encode_mutf7("Entw\u00fcrfe"), b"Entw&APw-rfe")
        self.assertEqual(decode_mutf7(b"Entw&APw-rfe"), "Entw\u00fcrfe")
        self.assertEqual(decode_mutf7(b"A&-B"), "A&B")

    def test_round_trip_astral(self) -> None:
        name = "Mail \U0001f4e7 & \u00e9t\u00e9"
        self.assertEqual(decode_mutf7(encode_mutf7(name)), name)

    def test_invalid_kept(self) -> None:
        self.assertEqual(decode_mutf7(b"a&!!-b"), "a&!!-b")


class DateTests(SynchronousTestCase):
    def test_parse(self) -> None:
        when = parse_internaldate(" 7-Jul-1996 02:44:25 -0700")
        self.assertEqual(when, datetime.datetime(1996, 7, 7, 9, 44, 25, tzinfo=datetime.timezone.utc))
        self.assertIsNone(parse_internaldate("garbage"))

    def test_format(self) -> None:
        when = datetime.datetime(2024, 3, 5, 6, 7, 8, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
        self.assertEqual(format_internaldate(when), b'" 5-Mar-2024 06:07:08 +0200"')
