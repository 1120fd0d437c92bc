"""Tests for easyncd.protocol.codecs.mime (charsets, headers, addresses)."""
from __future__ import annotations

import base64

from twisted.trial.unittest import TestCase

from easyncd.protocol.codecs.mime import (
    decode_header,
    decode_text,
    decode_transfer,
    format_address,
    lookup_charset,
    parse_addresses,
    parse_headers,
)


class CharsetTests(TestCase):
    """Any bytes become clean text."""

    def test_aliases(self) -> None:
        self.assertEqual(lookup_charset("ISO-8859-1"), "cp1252")
        self.assertEqual(lookup_charset("us-ascii"), "cp1252")
        self.assertEqual(lookup_charset("Shift_JIS"), "cp932")
        self.assertEqual(lookup_charset("gb2312"), "gb18030")
        self.assertEqual(lookup_charset("ks_c_5601-1987"), "cp949")
        self.assertEqual(lookup_charset("utf-8*en"), "utf-8")
        self.assertIsNone(lookup_charset("x-unknown"))
        self.assertIsNone(lookup_charset("base64"))  # a codec, but not a charset
        self.assertIsNone(lookup_charset(None))

    def test_declared_charsets(self) -> None:
        self.assertEqual(decode_text("Grüße".encode("latin-1"), "iso-8859-1"), "Grüße")
        self.assertEqual(decode_text("€".encode("cp1252"), "iso-8859-1"), "€")
        self.assertEqual(decode_text("Мир".encode("koi8-r"), "KOI8-R"), "Мир")
        self.assertEqual(decode_text("日本".encode("shift_jis"), "shift_jis"), "日本")
        self.assertEqual(decode_text("①".encode("cp932"), "shift_jis"), "①")

    def test_mislabelled_utf8_and_missing_charset(self) -> None:
        self.assertEqual(decode_text("Grüße".encode("utf-8"), "iso-8859-1"), "Grüße")
        self.assertEqual(decode_text("Grüße".encode("utf-8"), None), "Grüße")
        self.assertEqual(decode_text("Grüße".encode("latin-1"), None), "Grüße")
        self.assertEqual(decode_text("Grüße".encode("latin-1"), "utf-8"), "Gr\ufffd\ufffde")

    def test_controls_removed(self) -> None:
        self.assertEqual(decode_text(b"a\x00b\x1bc\td\r\n", "us-ascii"), "abc\td\r\n")
        self.assertEqual(decode_text(b"\xff\xfe\x00\xd8", "utf-16-le"), "\ufffd")

    def test_every_byte_in_every_charset_is_valid_utf8(self) -> None:
        data = bytes(range(256)) * 2
        for charset in ("utf-8", "iso-8859-1", "koi8-r", "shift_jis", "iso-2022-jp", "big5",
                        "utf-16", "utf-7", "x-garbage", None, "euc-kr", "gb2312"):
            text = decode_text(data, charset)
            text.encode("utf-8")
            self.assertNotIn("\x00", text)


class TransferTests(TestCase):
    """base64 and quoted-printable."""

    def test_base64_lenient(self) -> None:
        encoded = base64.b64encode(b"hello world!")
        self.assertEqual(decode_transfer(encoded[:5] + b"\r\n*" + encoded[5:], "base64"),
                         b"hello world!")
        self.assertEqual(decode_transfer(b"aGVsbG8", "BASE64"), b"hello")
        self.assertEqual(decode_transfer(b"aGVsbG8", "base64", partial=True), b"hel")
        self.assertEqual(decode_transfer(b"!!!", "base64"), b"")

    def test_quoted_printable(self) -> None:
        self.assertEqual(decode_transfer(b"Caf=C3=A9 =\r\nbar", "quoted-printable"),
                         "Café bar".encode())
        self.assertEqual(decode_transfer(b"Caf=C3=A", "quoted-printable", partial=True),
                         b"Caf\xc3")
        self.assertEqual(decode_transfer(b"raw", "8bit"), b"raw")


class HeaderTests(TestCase):
    """Header blocks, encoded words, addresses."""

    def test_parse_headers(self) -> None:
        headers = parse_headers(b"Subject: one\r\n two\r\nX-A: 1\r\nx-a: 2\r\nbroken line\r\n"
                                b"From: \xe9t\xe9 <a@b>\r\n\r\nBody: no\r\n")
        self.assertEqual(headers.get("subject"), "one two")
        self.assertEqual(headers.get_all("X-A"), ["1", "2"])
        self.assertEqual(headers.get("from"), "été <a@b>")
        self.assertNotIn("body", headers)
        self.assertIsNone(headers.get("cc"))

    def test_decode_header(self) -> None:
        self.assertEqual(decode_header("=?utf-8?q?Gr=C3=BC=C3=9Fe?= aus =?ISO-8859-1?Q?K=F6ln?="),
                         "Grüße aus Köln")
        # A character split over two encoded words.
        self.assertEqual(decode_header("=?utf-8?B?w6k=?= =?utf-8?B?w6k=?="), "éé")
        self.assertEqual(decode_header("=?utf-8?B?4pyT?==?utf-8?Q?_ok?="), "✓ ok")
        self.assertEqual(decode_header("=?x-bogus?Q?Caf=C3=A9?="), "Café")
        self.assertEqual(decode_header("=?utf-8*de?Q?Tsch=C3=BC?="), "Tschü")
        self.assertEqual(decode_header("plain\x00text"), "plaintext")
        self.assertEqual(decode_header("=?utf-8?B?!!!?="), "")

    def test_addresses(self) -> None:
        self.assertEqual(
            parse_addresses('"Doe, Jane" <jane@x.org>, =?utf-8?q?J=C3=BCrgen?= <j@x.de>, '
                            'team: a@x.org, b@x.org;, bogus'),
            [("Doe, Jane", "jane@x.org"), ("Jürgen", "j@x.de"), ("", "a@x.org"),
             ("", "b@x.org")])
        self.assertEqual(parse_addresses("a@x.org (Old Style), <bare@x.org>, "
                                         '"quoted@x.org" <real@x.org>'),
                         [("Old Style", "a@x.org"), ("", "bare@x.org"),
                          ("quoted@x.org", "real@x.org")])
        self.assertEqual(parse_addresses("undisclosed-recipients:;"), [])
        self.assertEqual(parse_addresses(None), [])
        self.assertEqual(format_address('Say "hi"', "a@b"), '"Say \\"hi\\"" <a@b>')
        self.assertEqual(format_address("", "a@b"), "a@b")
