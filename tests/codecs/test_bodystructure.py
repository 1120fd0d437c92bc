"""Tests for easyncd.backends.imap.bodystructure."""
from __future__ import annotations

import json
import os

from twisted.mail.imap4 import parseNestedParens
from twisted.trial.unittest import TestCase

from easyncd.backends.imap.bodystructure import (
    BodyPart,
    BodyStructureError,
    parse_bodystructure,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "mail")


def dovecot_structure(name: str) -> BodyPart:
    """The BODYSTRUCTURE Dovecot sent for a fixture, parsed as the IMAP
    client parses it."""
    with open(os.path.join(FIXTURES, name + ".imap.json"), encoding="ascii") as handle:
        raw = json.load(handle)["bodystructure"].encode("latin-1")
    return parse_bodystructure(parseNestedParens(raw)[0])


class DovecotStructureTests(TestCase):
    """Structures recorded from Dovecot."""

    def test_single_part(self) -> None:
        root = dovecot_structure("plain")
        self.assertEqual(root.part_id, "1")
        self.assertEqual(root.content_type, "text/plain")
        self.assertEqual(root.charset, "us-ascii")
        self.assertEqual(root.encoding, "7bit")
        self.assertEqual(root.size, 148)
        self.assertEqual(root.lines, 7)
        self.assertEqual(root.children, ())

    def test_nested_multipart_ids(self) -> None:
        root = dovecot_structure("mixed_attachments")
        self.assertEqual(root.part_id, "")
        self.assertEqual(root.content_type, "multipart/mixed")
        self.assertEqual([p.part_id for p in root.walk()],
                         ["", "1", "1.1", "1.2", "2", "3", "4"])
        self.assertEqual(root.find("1").subtype, "alternative")  # type: ignore[union-attr]
        pdf = root.find("2")
        assert pdf is not None
        self.assertEqual(pdf.content_type, "application/pdf")
        self.assertEqual(pdf.disposition, "attachment")
        self.assertEqual(pdf.filename, "contract.pdf")
        self.assertEqual(root.params.get("boundary"), "==mixed==")

    def test_rfc2231_filename(self) -> None:
        notes = dovecot_structure("mixed_attachments").find("3")
        assert notes is not None
        self.assertEqual(notes.filename, "Notizen für München.txt")

    def test_message_rfc822(self) -> None:
        root = dovecot_structure("forwarded")
        message = root.find("2")
        assert message is not None
        self.assertEqual(message.content_type, "message/rfc822")
        self.assertEqual(message.envelope_subject, "Quarterly numbers")
        self.assertEqual(len(message.children), 1)
        inner = message.children[0]
        # A multipart inside message/rfc822 keeps the part's id; its parts are 2.1, 2.2.
        self.assertEqual(inner.part_id, "2")
        self.assertEqual([c.part_id for c in inner.children], ["2.1", "2.2"])
        self.assertEqual(inner.children[1].content_type, "text/html")

    def test_related_with_content_id(self) -> None:
        image = dovecot_structure("related_inline").find("2")
        assert image is not None
        self.assertEqual(image.id, "<logo123@example.org>")
        self.assertEqual(image.disposition, "inline")

    def test_every_fixture_parses(self) -> None:
        names = sorted(n[:-10] for n in os.listdir(FIXTURES) if n.endswith(".imap.json"))
        self.assertGreaterEqual(len(names), 17)
        for name in names:
            root = dovecot_structure(name)
            self.assertTrue(root.type, name)


class OddStructureTests(TestCase):
    """What other servers send."""

    def test_bytes_and_int_atoms(self) -> None:
        root = parse_bodystructure(
            [b"TEXT", b"PLAIN", [b"CHARSET", b"ISO-8859-1"], None, None, b"QUOTED-PRINTABLE",
             1234, 20])
        self.assertEqual(root.content_type, "text/plain")
        self.assertEqual(root.charset, "ISO-8859-1")
        self.assertEqual(root.encoding, "quoted-printable")
        self.assertEqual((root.size, root.lines), (1234, 20))

    def test_missing_fields_and_extension_data(self) -> None:
        root = parse_bodystructure(["image", "jpeg", None])
        self.assertEqual(root.content_type, "image/jpeg")
        self.assertEqual(root.size, 0)
        self.assertEqual(root.encoding, "7bit")

    def test_nil_type_and_bad_numbers(self) -> None:
        root = parse_bodystructure([None, None, "junk", None, None, None, "many", "x"])
        self.assertEqual(root.content_type, "text/plain")
        self.assertEqual(root.params, {})
        self.assertEqual(root.size, 0)
        self.assertIsNone(root.lines)

    def test_multipart_without_subtype(self) -> None:
        root = parse_bodystructure([["text", "plain", None, None, None, "7bit", "3", "1"]])
        self.assertEqual(root.content_type, "multipart/mixed")
        self.assertEqual(root.children[0].part_id, "1")
        self.assertEqual(root.children[0].size, 3)

    def test_disposition_without_params_and_odd_param_list(self) -> None:
        root = parse_bodystructure(
            ["application", "octet-stream", ["name", "a.bin", "dangling"], None, None,
             "base64", "100", None, "ATTACHMENT", None, None])
        self.assertEqual(root.disposition, "attachment")
        self.assertEqual(root.filename, "a.bin")

    def test_message_rfc822_without_body(self) -> None:
        root = parse_bodystructure(["message", "rfc822", None, None, None, "7bit", "50"])
        self.assertEqual(root.content_type, "message/rfc822")
        self.assertEqual(root.children, ())

    def test_rfc2231_continuations(self) -> None:
        root = parse_bodystructure(
            ["application", "pdf", None, None, None, "base64", 10, None,
             ["attachment", ["filename*0*", "utf-8''Gr%C3%BC", "filename*1", "sse.pdf"]]])
        self.assertEqual(root.filename, "Grüsse.pdf")

    def test_not_a_list(self) -> None:
        self.assertRaises(BodyStructureError, parse_bodystructure, b"TEXT")  # type: ignore[arg-type]
        self.assertRaises(BodyStructureError, parse_bodystructure, [])

    def test_deep_nesting_is_refused(self) -> None:
        node: list[object] = ["text", "plain", None, None, None, "7bit", 1, 1]
        for _ in range(100):
            node = [node, "mixed"]
        self.assertRaises(BodyStructureError, parse_bodystructure, node)
