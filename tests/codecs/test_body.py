"""Tests for easyncd.protocol.codecs.body (MS-ASAIRS Body, 2.5 Body)."""
from __future__ import annotations

from twisted.trial.unittest import TestCase

from easyncd.protocol.codecs.base import BodyPreference, CodecContext
from easyncd.protocol.codecs.body import (
    body_element,
    html_to_text,
    legacy_truncation_limit,
    read_body,
    text_to_html,
)
from easyncd.wbxml import Element, decode, encode

LEGACY = ("Contacts:Body", "Contacts:BodySize", "Contacts:BodyTruncated")


def _children(element: Element) -> dict[str, str | bytes | None]:
    return {child.tag: child.text for child in element.children}


class AirSyncBaseBodyTests(TestCase):
    """12.0+ bodies."""

    def test_default_is_whole_plain_text(self) -> None:
        [body] = body_element("héllo\nworld", CodecContext("12.1"))
        self.assertEqual(body.tag, "AirSyncBase:Body")
        self.assertEqual(
            [(c.tag, c.text) for c in body.children],
            [("AirSyncBase:Type", "1"), ("AirSyncBase:EstimatedDataSize", "12"),
             ("AirSyncBase:Data", "héllo\nworld")])

    def test_truncation_counts_bytes_and_keeps_characters_whole(self) -> None:
        ctx = CodecContext("14.1", (BodyPreference(1, truncation_size=2),))
        [body] = body_element("héllo", ctx)
        fields = _children(body)
        self.assertEqual(fields["AirSyncBase:EstimatedDataSize"], "6")
        self.assertEqual(fields["AirSyncBase:Truncated"], "1")
        self.assertEqual(fields["AirSyncBase:Data"], "h")

    def test_not_truncated_when_it_fits(self) -> None:
        ctx = CodecContext("14.1", (BodyPreference(1, truncation_size=6),))
        [body] = body_element("héllo", ctx)
        self.assertNotIn("AirSyncBase:Truncated", _children(body))
        self.assertEqual(_children(body)["AirSyncBase:Data"], "héllo")

    def test_all_or_none_sends_no_data_when_it_would_be_cut(self) -> None:
        ctx = CodecContext("14.0", (BodyPreference(1, truncation_size=3, all_or_none=True),))
        [body] = body_element("hello", ctx)
        self.assertEqual(
            [(c.tag, c.text) for c in body.children],
            [("AirSyncBase:Type", "1"), ("AirSyncBase:EstimatedDataSize", "5"),
             ("AirSyncBase:Truncated", "1")])

    def test_all_or_none_falls_through_to_the_next_preference(self) -> None:
        ctx = CodecContext("14.0", (BodyPreference(2, truncation_size=3, all_or_none=True),
                                    BodyPreference(1, truncation_size=100)))
        [body] = body_element("hello", ctx)
        self.assertEqual(_children(body)["AirSyncBase:Type"], "1")
        self.assertEqual(_children(body)["AirSyncBase:Data"], "hello")

    def test_html_preference_converts_plain_text(self) -> None:
        ctx = CodecContext("12.0", (BodyPreference(2),))
        [body] = body_element("a < b\nc", ctx)
        self.assertEqual(_children(body)["AirSyncBase:Type"], "2")
        self.assertEqual(_children(body)["AirSyncBase:Data"], text_to_html("a < b\nc"))
        self.assertIn("a &lt; b<br>", str(_children(body)["AirSyncBase:Data"]))

    def test_html_given_is_sent_as_is(self) -> None:
        ctx = CodecContext("12.0", (BodyPreference(2),))
        [body] = body_element("x", ctx, html="<p>x</p>")
        self.assertEqual(_children(body)["AirSyncBase:Data"], "<p>x</p>")

    def test_rtf_and_mime_get_plain_text(self) -> None:
        for kind in (3, 4):
            [body] = body_element("x", CodecContext("14.1", (BodyPreference(kind),)))
            self.assertEqual(_children(body)["AirSyncBase:Type"], "1")

    def test_preview_from_14_0_only(self) -> None:
        pref = (BodyPreference(1, truncation_size=2, preview=8),)
        [body] = body_element("one two three", CodecContext("14.0", pref))
        self.assertEqual(_children(body)["AirSyncBase:Preview"], "one two ")
        self.assertEqual(body.children[-1].tag, "AirSyncBase:Preview")
        [old] = body_element("one two three", CodecContext("12.1", pref))
        self.assertNotIn("AirSyncBase:Preview", _children(old))

    def test_empty_body_gives_nothing(self) -> None:
        self.assertEqual(body_element("", CodecContext("16.1")), [])
        self.assertEqual(body_element("", CodecContext("2.5"), legacy_tags=LEGACY), [])

    def test_encodes_with_the_wbxml_tables(self) -> None:
        ctx = CodecContext("16.1", (BodyPreference(1, 4, preview=3),))
        app = Element("AirSync:ApplicationData", children=body_element("hello", ctx))
        self.assertEqual(len(decode(encode(app)).children[0].children), 5)


class LegacyBodyTests(TestCase):
    """2.5 bodies."""

    def test_whole(self) -> None:
        elements = body_element("hi", CodecContext("2.5"), legacy_tags=LEGACY)
        self.assertEqual([(e.tag, e.text) for e in elements],
                         [("Contacts:Body", "hi"), ("Contacts:BodyTruncated", "0")])

    def test_truncation_code(self) -> None:
        text = "x" * 600
        elements = body_element(text, CodecContext("2.5", truncation=1), legacy_tags=LEGACY)
        self.assertEqual([(e.tag, e.text) for e in elements],
                         [("Contacts:Body", "x" * 512), ("Contacts:BodySize", "600"),
                          ("Contacts:BodyTruncated", "1")])

    def test_truncate_all(self) -> None:
        elements = body_element("abc", CodecContext("2.5", truncation=0), legacy_tags=LEGACY)
        self.assertEqual([(e.tag, e.text) for e in elements],
                         [("Contacts:BodySize", "3"), ("Contacts:BodyTruncated", "1")])

    def test_without_legacy_tags_nothing(self) -> None:
        self.assertEqual(body_element("abc", CodecContext("2.5")), [])

    def test_limits(self) -> None:
        self.assertIsNone(legacy_truncation_limit(None))
        self.assertIsNone(legacy_truncation_limit(9))
        self.assertEqual(legacy_truncation_limit(4), 5120)
        self.assertEqual(legacy_truncation_limit(300), 300)


class ReadBodyTests(TestCase):
    """Incoming bodies."""

    def test_airsyncbase(self) -> None:
        app = Element("AirSync:ApplicationData")
        body = app.add("AirSyncBase:Body")
        body.add("AirSyncBase:Type", "1")
        body.add("AirSyncBase:Data", "a\r\nb")
        self.assertEqual(read_body(app, "Contacts:Body"), "a\nb")

    def test_html_is_read_as_text(self) -> None:
        app = Element("AirSync:ApplicationData")
        body = app.add("AirSyncBase:Body")
        body.add("AirSyncBase:Type", "2")
        body.add("AirSyncBase:Data", "<html><body><p>A &amp; B</p>C<br>D</body></html>")
        self.assertEqual(read_body(app, None), "A & B\nC\nD")

    def test_rtf_counts_as_not_sent(self) -> None:
        app = Element("AirSync:ApplicationData")
        body = app.add("AirSyncBase:Body")
        body.add("AirSyncBase:Type", "3")
        body.add("AirSyncBase:Data", "e1xydGY=")
        self.assertIsNone(read_body(app, None))

    def test_body_without_data_is_empty(self) -> None:
        app = Element("AirSync:ApplicationData")
        app.add("AirSyncBase:Body").add("AirSyncBase:Type", "1")
        self.assertEqual(read_body(app, None), "")

    def test_legacy_and_absent(self) -> None:
        app = Element("AirSync:ApplicationData")
        self.assertIsNone(read_body(app, "Contacts:Body"))
        app.add("Contacts:Body", "old")
        self.assertEqual(read_body(app, "Contacts:Body"), "old")
        self.assertIsNone(read_body(app, None))

    def test_html_to_text_drops_style(self) -> None:
        self.assertEqual(html_to_text("<head><style>p{}</style></head><p>x</p>"), "x")
