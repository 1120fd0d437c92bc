"""Golden bytes, round trips, the Element API and error handling."""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import TestCase

from easyncd.wbxml import Element, WBXMLError, decode, encode
from easyncd.wbxml.decoder import MAX_DEPTH

from .libwbxml import lib_xml_to_tree

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wbxml"

#: The bytes MS-ASWBXML section 4.1 prints for its contact example, as far as
#: the published page shows them; the rest of the fixture follows the same
#: XML by the same algorithm.
SPEC_PREFIX = bytes.fromhex(
    "03 01 6A 00 45 5C 4F 50 03 43 6F 6E 74 61 63 74 73 00 01 4B 03 32 00 01"
    " 52 03 32 00 01 4E 03 31 00 01 56 47 4D 03 32 3A 31 00 01 5D 00 11 4A 46"
    " 03 31 00 01 4C 03 30 00 01 4D 03 31 00 01 01 00 01 5E 03 46 75 6E 6B"
)

FIXTURE_NAMES = [
    "ms-aswbxml-contact-sync",
    "foldersync-request",
    "foldersync-response",
    "ping-request",
    "provision-response",
    "sync-email-response",
]


def _sample() -> Element:
    root = Element("AirSync:Sync")
    collection = root.add("AirSync:Collections").add("AirSync:Collection")
    collection.add("AirSync:SyncKey", "5")
    collection.add("AirSync:CollectionId", "1")
    collection.add("AirSync:GetChanges")
    add = collection.add("AirSync:Commands").add("AirSync:Add")
    add.add("AirSync:ServerId", "1:1")
    data = add.add("AirSync:ApplicationData")
    data.add("Email:Subject", "Grüße ☃ \U0001f600")
    body = data.add("AirSyncBase:Body")
    body.add("AirSyncBase:Type", "4")
    body.add("AirSyncBase:Data", b"\x00\x01\xffMIME")
    data.add("Email2:ConversationIndex", b"")
    data.add("Email:Read", "")
    return root


class GoldenTests(TestCase):
    """Fixture documents: bytes from the spec or from libwbxml's xml2wbxml."""

    def test_spec_prefix(self) -> None:
        data = (FIXTURES / "ms-aswbxml-contact-sync.wbxml").read_bytes()
        self.assertTrue(data.startswith(SPEC_PREFIX))

    def test_fixtures_decode_and_encode(self) -> None:
        for name in FIXTURE_NAMES:
            data = (FIXTURES / f"{name}.wbxml").read_bytes()
            expected = lib_xml_to_tree((FIXTURES / f"{name}.xml").read_bytes())
            tree = decode(data)
            self.assertEqual(tree, expected, name)
            self.assertEqual(encode(tree), data, name)

    def test_foldersync_request_bytes(self) -> None:
        root = Element("FolderHierarchy:FolderSync")
        root.add("FolderHierarchy:SyncKey", "0")
        self.assertEqual(
            encode(root), bytes.fromhex("03016a00000756520330000101")
        )

    def test_opaque_in_fixture(self) -> None:
        tree = decode((FIXTURES / "sync-email-response.wbxml").read_bytes())
        data = tree.find(
            "AirSync:Collections/AirSync:Collection/AirSync:Commands/"
            "AirSync:Add/AirSync:ApplicationData"
        )
        assert data is not None
        self.assertEqual(
            data.find("Email2:ConversationId").text,  # type: ignore[union-attr]
            bytes(range(16)),
        )
        self.assertEqual(data.findtext("Email:Subject"), "Grüße & 日本語")


class RoundTripTests(TestCase):
    """encode then decode gives the same tree."""

    def test_sample(self) -> None:
        root = _sample()
        data = encode(root)
        self.assertTrue(data.startswith(b"\x03\x01\x6a\x00"))
        self.assertEqual(decode(data), root)

    def test_empty_string_differs_from_no_content(self) -> None:
        with_empty = Element("Ping:Ping", "")
        without = Element("Ping:Ping")
        self.assertEqual(encode(without), b"\x03\x01\x6a\x00\x00\x0d\x05")
        self.assertEqual(
            encode(with_empty), b"\x03\x01\x6a\x00\x00\x0d\x45\x03\x00\x01"
        )
        self.assertEqual(decode(encode(with_empty)).text, "")
        self.assertIsNone(decode(encode(without)).text)

    def test_long_opaque_length(self) -> None:
        blob = bytes(range(256)) * 700  # length needs a 3-byte mb_u_int32
        root = Element("ItemOperations:Data", blob)
        data = encode(root)
        self.assertIn(b"\xc3\x8a\xf8\x00", data)
        self.assertEqual(decode(data).text, blob)

    def test_page_switch_only_when_needed(self) -> None:
        root = Element("AirSync:Sync")
        root.add("AirSyncBase:Type", "1")
        root.add("AirSyncBase:Type", "2")
        root.add("AirSync:Status", "1")
        self.assertEqual(
            encode(root),
            bytes.fromhex(
                "03016a00" "45" "0011" "4603310001" "4603320001"
                "0000" "4e03310001" "01"
            ),
        )

    def test_deep_tree_within_limit(self) -> None:
        root = leaf = Element("AirSync:Sync")
        for _ in range(MAX_DEPTH - 1):
            leaf = leaf.add("AirSync:Collection")
        leaf.text = "x"
        self.assertEqual(decode(encode(root)), root)

    def test_entities_and_string_table(self) -> None:
        # Header with the public id in the string table (as xml2wbxml writes
        # without -a), an ENTITY, and a STR_T reference.
        data = bytes.fromhex(
            "03" "00" "00" "6a" "05" "41420043" "00"
            "00" "0d" "45" "0341" "00" "0281" "60" "8300" "01"
        )
        self.assertEqual(decode(data), Element("Ping:Ping", "A\u00e0AB"))


class ElementTests(TestCase):
    """The Element helpers other modules code against."""

    def test_namespace_and_name(self) -> None:
        element = Element("FolderHierarchy:SyncKey", "0")
        self.assertEqual(element.namespace, "FolderHierarchy")
        self.assertEqual(element.name, "SyncKey")

    def test_append_and_add_return_child(self) -> None:
        root = Element("Ping:Ping")
        child = Element("Ping:Status", "1")
        self.assertIs(root.append(child), child)
        added = root.add("Ping:Folders")
        self.assertEqual(root.children, [child, added])
        self.assertEqual(Element("Ping:Ping", None, [child]).children, [child])

    def test_find_paths(self) -> None:
        root = _sample()
        self.assertEqual(
            root.findtext("AirSync:Collections/AirSync:Collection/AirSync:SyncKey"),
            "5",
        )
        self.assertIsNone(root.find("AirSync:Collection"))
        self.assertIsNone(root.find("AirSync:Nope/AirSync:Collection"))
        self.assertEqual(
            len(root.findall("AirSync:Collections/AirSync:Collection")), 1
        )
        self.assertEqual(root.findall("AirSync:Missing"), [])
        self.assertEqual(root.findtext("AirSync:Missing", "d"), "d")
        self.assertIsNone(root.findtext("AirSync:Missing"))

    def test_findtext_bytes_and_empty(self) -> None:
        root = Element("AirSyncBase:Body")
        root.add("AirSyncBase:Data", "ok".encode() + b"\xff")
        root.add("AirSyncBase:Type")
        self.assertEqual(root.findtext("AirSyncBase:Data"), "ok\ufffd")
        self.assertEqual(root.findtext("AirSyncBase:Type"), "")

    def test_equality(self) -> None:
        self.assertEqual(_sample(), _sample())
        self.assertNotEqual(Element("Ping:Ping", "1"), Element("Ping:Ping", b"1"))
        self.assertNotEqual(Element("Ping:Ping"), Element("Ping:Status"))
        other = _sample()
        other.children[0].children[0].add("AirSync:Status", "1")
        self.assertNotEqual(_sample(), other)
        self.assertNotEqual(Element("Ping:Ping"), "Ping:Ping")

    def test_repr(self) -> None:
        self.assertEqual(repr(Element("Ping:Id", "1")), "Element('Ping:Id', '1')")
        self.assertIn("1 children", repr(Element("Ping:Ping", None, [Element("Ping:Id")])))

    def test_to_xml(self) -> None:
        xml = _sample().to_xml()
        self.assertIn('xmlns:airsync="AirSync"', xml)
        self.assertIn('xmlns:airsyncbase="AirSyncBase"', xml)
        self.assertIn("<airsync:GetChanges/>", xml)
        self.assertIn(
            '<airsyncbase:Data opaque="base64">AAH/TUlNRQ==</airsyncbase:Data>', xml
        )
        self.assertIn("<email:Read></email:Read>", xml)
        self.assertIn("\n      <airsync:SyncKey>5</airsync:SyncKey>", xml)
        escaped = Element("Email:Subject", "a<b&c").to_xml()
        self.assertIn("<email:Subject xmlns:email=\"Email\">a&lt;b&amp;c</email:Subject>", escaped)


class EncodeErrorTests(TestCase):
    """Trees that cannot be encoded raise WBXMLError."""

    def test_unknown_tag(self) -> None:
        for tag in ("AirSync:Nope", "Nope:Sync", "Sync", ""):
            self.assertRaises(WBXMLError, encode, Element(tag))
        root = Element("AirSync:Sync")
        root.add("Email:NotATag", "x")
        self.assertRaises(WBXMLError, encode, root)

    def test_unencodable_text(self) -> None:
        self.assertRaises(WBXMLError, encode, Element("Ping:Id", "a\x00b"))
        self.assertRaises(WBXMLError, encode, Element("Ping:Id", "\ud800"))
        self.assertRaises(WBXMLError, encode, Element("Ping:Id", 5))  # type: ignore[arg-type]


class DecodeErrorTests(TestCase):
    """Malformed documents raise WBXMLError."""

    def assert_bad(self, hex_body: str, header: str = "03016a00") -> None:
        self.assertRaises(WBXMLError, decode, bytes.fromhex(header + hex_body))

    def test_headers(self) -> None:
        self.assertRaises(WBXMLError, decode, b"")
        self.assertRaises(WBXMLError, decode, b"\x03\x01\x6a")
        self.assert_bad("45 01", header="04016a00")  # version 1.4
        self.assert_bad("45 01", header="030104 00")  # charset 4
        self.assert_bad("45 01", header="03016a 05 4142")  # table too long
        self.assert_bad("45 01", header="03 ffffffff7f 6a00")  # overflow
        self.assert_bad("45 01", header="03 8080808080 01 6a00")  # 6-byte int
        self.assertRaises(WBXMLError, decode, "not bytes")  # type: ignore[arg-type]

    def test_structure(self) -> None:
        self.assert_bad("")  # no root
        self.assert_bad("01")  # END without element
        self.assert_bad("45")  # unclosed
        self.assert_bad("45 03 41")  # unterminated string
        self.assert_bad("45 01 01")  # trailing END
        self.assert_bad("45 01 45 01")  # second root
        self.assert_bad("03 41 00 45 01")  # string outside root
        self.assert_bad("c3 01 41 45 01")  # opaque outside root
        self.assert_bad("02 41 45 01")  # entity outside root
        self.assert_bad("83 00 45 01")  # STR_T outside root

    def test_tokens(self) -> None:
        self.assert_bad("7f 01")  # unknown token on page 0
        self.assert_bad("00 1a 45 01")  # code page 26
        self.assert_bad("00")  # truncated switch
        self.assert_bad("c5 01 01")  # attributes
        self.assert_bad("04 00")  # LITERAL
        self.assert_bad("45 43 01")  # PI
        self.assert_bad("45 40 41 00 01")  # EXT_I_0
        self.assert_bad("45 c0 01")  # EXT_0

    def test_content(self) -> None:
        self.assert_bad("45 03 ff fe 00 01")  # not UTF-8
        self.assert_bad("45 c3 05 41 01")  # opaque past the end
        self.assert_bad("45 c3 ff ff ff ff 7f 01")  # opaque overflow
        self.assert_bad("45 c3 01 41 03 41 00 01")  # opaque then string
        self.assert_bad("45 02 84 80 80 00 01")  # entity past U+10FFFF
        self.assert_bad("45 02 83 b0 00 01")  # surrogate entity
        self.assert_bad("45 02 00 01")  # NUL entity
        self.assert_bad("45 83 00 01")  # STR_T with empty table
        self.assert_bad("45 83 05 01", header="03016a 02 4100")

    def test_depth_limit(self) -> None:
        body = "45" + "4f" * MAX_DEPTH + "01" * (MAX_DEPTH + 1)
        self.assert_bad(body)
