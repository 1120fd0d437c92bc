"""Cross-checks against Debian's libwbxml2-utils (real binaries).

Our bytes must decode with ``wbxml2xml -l ACTIVESYNC`` to the same tree, and
``xml2wbxml -a -n`` output must decode with ours to the same tree.  Trees are
compared by code page and token (libwbxml spells some names differently).
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from easyncd.wbxml import Element, decode, encode
from easyncd.wbxml.codepages import CODE_PAGES

from . import libwbxml
from .libwbxml import (
    DOCTYPE,
    LIBWBXML_BINARY,
    LIBWBXML_MISSING,
    lib_xml_to_tree,
    page_and_token,
    wbxml2xml,
    xml2wbxml,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wbxml"


def _every_tag() -> Element:
    """A flat document holding every tag libwbxml knows, with distinct text."""
    root = Element("AirSync:Sync")
    for page in CODE_PAGES:
        for token, name in sorted(page.tags.items()):
            tag = f"{page.namespace}:{name}"
            if tag in LIBWBXML_MISSING:
                continue
            text = f"{page.number}.{token}"
            root.add(tag, text.encode() if tag in LIBWBXML_BINARY else text)
    return root


def _to_lib_xml(root: Element) -> str:
    """Write a tree as the namespaced XML xml2wbxml reads (our names work
    wherever libwbxml's equal ours; callers pick tags accordingly)."""
    reverse = {
        (ns, ours): theirs for (ns, theirs), ours in libwbxml.LIBWBXML_NAMES.items()
    }
    parts = ['<?xml version="1.0" encoding="utf-8"?>', DOCTYPE]
    work: list[tuple[Element, bool]] = [(root, False)]
    while work:
        element, closing = work.pop()
        namespace = "Gal" if element.namespace == "GAL" else element.namespace
        name = reverse.get((element.namespace, element.name), element.name)
        if closing:
            parts.append(f"</{name}>")
            continue
        parts.append(f'<{name} xmlns="{namespace}:">')
        if isinstance(element.text, bytes):
            parts.append(base64.b64encode(element.text).decode())
        elif element.text is not None:
            parts.append(escape(element.text))
        work.append((element, True))
        work.extend((child, False) for child in reversed(element.children))
    return "".join(parts)


class ToolTestCase(TestCase):
    """Gives each test a scratch directory for the tools' files."""

    def setUp(self) -> None:
        for tool in (libwbxml.WBXML2XML, libwbxml.XML2WBXML):
            self.assertIsNotNone(shutil.which(tool), f"{tool} is not installed")
        self.workdir = Path(tempfile.mkdtemp(prefix="wbxml-test-"))
        self.addCleanup(shutil.rmtree, self.workdir, True)


class OurBytesWithLibwbxmlTests(ToolTestCase):
    """encode() -> wbxml2xml."""

    def test_every_tag(self) -> None:
        root = _every_tag()
        self.assertEqual(lib_xml_to_tree(wbxml2xml(encode(root), self.workdir)), root)

    def test_missing_tokens_are_unknown_to_libwbxml(self) -> None:
        # Documents why LIBWBXML_MISSING is excluded: libwbxml 0.11.8 names
        # these "unknown", and every other token it names is ours.
        root = Element("AirSync:Sync")
        for tag in sorted(LIBWBXML_MISSING):
            root.add(tag, "x")
        xml_text = wbxml2xml(encode(root), self.workdir)
        self.assertEqual(xml_text.count(b"<unknown>"), len(LIBWBXML_MISSING))

    def test_fixtures(self) -> None:
        for path in sorted(FIXTURES.glob("*.wbxml")):
            tree = decode(path.read_bytes())
            self.assertEqual(
                lib_xml_to_tree(wbxml2xml(encode(tree), self.workdir)), tree, path.name
            )

    def test_nested_email_with_opaque_body(self) -> None:
        root = Element("ItemOperations:ItemOperations")
        response = root.add("ItemOperations:Response")
        fetch = response.add("ItemOperations:Fetch")
        fetch.add("ItemOperations:Status", "1")
        props = fetch.add("ItemOperations:Properties")
        props.add("Email:Subject", "Ünïcødé ✓")
        body = props.add("AirSyncBase:Body")
        body.add("AirSyncBase:Type", "4")
        body.add("AirSyncBase:Data", "MIME-Version: 1.0\n\nHi")  # XML folds CR
        self.assertEqual(lib_xml_to_tree(wbxml2xml(encode(root), self.workdir)), root)

    @settings(max_examples=100, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(
                    ["Email:Subject", "Calendar:Location", "Contacts:FileAs",
                     "AirSyncBase:Data", "Settings:Model", "Find:Query"]
                ),
                st.text(
                    alphabet=st.characters(
                        min_codepoint=0x20, codec="utf-8",
                        exclude_characters="<>&\ufffe\uffff",
                    ),
                    min_size=1, max_size=30,
                ).filter(lambda s: s.strip() == s),
            ),
            min_size=1, max_size=6,
        )
    )
    def test_random_texts(self, items: list[tuple[str, str]]) -> None:
        root = Element("AirSync:Sync")
        for tag, text in items:
            if tag not in LIBWBXML_MISSING:
                root.add(tag, text)
        if root.children:
            self.assertEqual(
                lib_xml_to_tree(wbxml2xml(encode(root), self.workdir)), root
            )


class LibwbxmlBytesWithOursTests(ToolTestCase):
    """xml2wbxml -> decode()."""

    def test_fixture_documents(self) -> None:
        for path in sorted(FIXTURES.glob("*.xml")):
            xml_text = path.read_text(encoding="utf-8")
            if DOCTYPE not in xml_text:
                continue  # the spec's own example uses bare namespaces
            expected = lib_xml_to_tree(path.read_bytes())
            produced = xml2wbxml(xml_text, self.workdir)
            self.assertEqual(decode(produced), expected, path.name)
            self.assertEqual(encode(expected), produced, path.name)

    def test_every_tag(self) -> None:
        root = _every_tag()
        produced = xml2wbxml(_to_lib_xml(root), self.workdir)
        self.assertEqual(decode(produced), root)

    def test_public_id_in_string_table(self) -> None:
        # Without -a, xml2wbxml writes the public id into the string table.
        root = _every_tag()
        produced = xml2wbxml(_to_lib_xml(root), self.workdir, anonymous=False)
        self.assertEqual(produced[1:3], b"\x00\x00")
        self.assertEqual(decode(produced), root)

    def test_page_and_token_helper(self) -> None:
        self.assertEqual(page_and_token("{Contacts:}BusinessCity"), (1, 0x0D))
        self.assertEqual(page_and_token("{Gal:}Data"), (16, 0x12))
        self.assertIsNone(page_and_token("{Nope:}Data"))
