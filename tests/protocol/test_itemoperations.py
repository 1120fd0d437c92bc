"""ItemOperations: Fetch of groupware items, EmptyFolderContents, and the
operations that do not apply here answered with their Status."""
from __future__ import annotations

import struct
from dataclasses import replace
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.interfaces import KIND_CONTACTS, KIND_NOTES
from easyncd.protocol.codecs.base import CodecContext, CodecError
from easyncd.protocol.commands import itemoperations
from easyncd.protocol.commands.foldersync import FolderSyncCommand
from easyncd.protocol.commands.itemoperations import (
    ItemOperationsCommand,
    codec_for,
    multipart,
    parse_body_preferences,
)
from easyncd.protocol.context import CommandResponse
from easyncd.protocol.serverids import item_server_id
from easyncd.testing.memory_groupware import MemoryGroupwareBackend
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element, decode, encode
from tests.protocol.helpers import make_clock, make_context, result_of

NS = "ItemOperations:"
AS = "AirSync:"
BASE = "AirSyncBase:"

VCARD = ("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u1\r\nFN:Ann Example\r\nN:Example;Ann;;;\r\n"
         "TEL;TYPE=CELL:+49 170 1234567\r\nEND:VCARD\r\n")
VJOURNAL = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VJOURNAL\r\n"
            "UID:n1\r\nDTSTAMP:20240315T083000Z\r\nSUMMARY:Shopping\r\n"
            "DESCRIPTION:Milk\\, bread\\, eggs and a very long list of other things\r\n"
            "END:VJOURNAL\r\nEND:VCALENDAR\r\n")


def fetch(collection_id: str | None, server_id: str | None, store: str = "Mailbox",
          options: Element | None = None) -> Element:
    element = Element(NS + "Fetch")
    element.add(NS + "Store", store)
    if collection_id is not None:
        element.add(AS + "CollectionId", collection_id)
    if server_id is not None:
        element.add(AS + "ServerId", server_id)
    if options is not None:
        element.append(options)
    return element


def operations(*children: Element) -> Element:
    return Element(NS + "ItemOperations", children=children)


def results(response: CommandResponse) -> list[Element]:
    assert response.body is not None
    self_response = response.body.find(NS + "Response")
    assert self_response is not None
    return self_response.children


class _BrokenCodec:
    eas_class = "Contacts"

    def to_eas(self, data: str, ctx: CodecContext) -> Element:
        raise CodecError("unreadable")


class ItemOperationsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.store: Any = MemoryStateStore()
        self.clock = make_clock()
        self.groupware: Any = MemoryGroupwareBackend(clock=self.clock)
        result_of(FolderSyncCommand().run(self.ctx("FolderSync"), Element(
            "FolderHierarchy:FolderSync", children=[Element("FolderHierarchy:SyncKey", "0")])))
        folders = {f.display_name: f for f in result_of(self.store.list_folders("alice"))}
        self.contacts_folder = folders["Contacts"].server_id
        self.notes_folder = folders["Notes"].server_id
        self.contacts = folders["Contacts"].backend_id.split(":", 1)[1]
        self.notes = folders["Notes"].backend_id.split(":", 1)[1]
        self.contact = result_of(self.groupware.add_item("alice", self.contacts, VCARD))
        self.note = result_of(self.groupware.add_item("alice", self.notes, VJOURNAL))
        self.contact_id = item_server_id(self.contacts_folder, self.contact.item_id)
        self.note_id = item_server_id(self.notes_folder, self.note.item_id)

    def ctx(self, command: str = "ItemOperations", version: str = "16.1") -> Any:
        return make_context(self.store, command, version=version, clock=self.clock,
                            services={"groupware": self.groupware})

    def run_ops(self, body: Element | None, version: str = "16.1") -> CommandResponse:
        response = result_of(ItemOperationsCommand().run(self.ctx(version=version), body))
        assert response.body is not None
        self.assertEqual(decode(encode(response.body)), response.body)
        return response

    # -- Fetch -------------------------------------------------------------------------

    def test_fetch_contact(self) -> None:
        response = self.run_ops(operations(fetch(self.contacts_folder, self.contact_id)))
        assert response.body is not None
        self.assertEqual(response.body.findtext(NS + "Status"), "1")
        [answer] = results(response)
        self.assertEqual([c.tag for c in answer.children],
                         [NS + "Status", AS + "CollectionId", AS + "ServerId", AS + "Class",
                          NS + "Properties"])
        self.assertEqual(answer.findtext(NS + "Status"), "1")
        self.assertEqual(answer.findtext(AS + "ServerId"), self.contact_id)
        self.assertEqual(answer.findtext(AS + "Class"), "Contacts")
        properties = answer.find(NS + "Properties")
        assert properties is not None
        expected = codec_for(KIND_CONTACTS).to_eas(VCARD, CodecContext("16.1",
                                                                        now=self.clock.seconds()))
        self.assertEqual(properties.children, expected.children)
        self.assertEqual(properties.findtext("Contacts:FirstName"), "Ann")

    def test_fetch_with_body_preference_and_schema(self) -> None:
        options = Element(NS + "Options")
        options.add(NS + "Schema").add("Notes:Subject")
        preference = options.add(BASE + "BodyPreference")
        preference.add(BASE + "Type", "1")
        preference.add(BASE + "TruncationSize", "4")
        response = self.run_ops(operations(fetch(self.notes_folder, self.note_id, options=options)))
        [answer] = results(response)
        self.assertEqual(answer.findtext(AS + "Class"), "Notes")
        properties = answer.find(NS + "Properties")
        assert properties is not None
        self.assertEqual([c.tag for c in properties.children], ["Notes:Subject"])
        self.assertEqual(properties.findtext("Notes:Subject"), "Shopping")
        # Without Schema: the whole item, the body cut as asked.
        options.children = [preference]
        response = self.run_ops(operations(fetch(self.notes_folder, self.note_id, options=options)))
        properties = results(response)[0].find(NS + "Properties")
        assert properties is not None
        self.assertEqual(properties.findtext(BASE + "Body/" + BASE + "Data"), "Milk")
        self.assertEqual(properties.findtext(BASE + "Body/" + BASE + "Truncated"), "1")
        self.assertEqual(properties.findtext(BASE + "Body/" + BASE + "Type"), "1")

    def test_fetch_infers_collection_from_server_id(self) -> None:
        [answer] = results(self.run_ops(operations(fetch(None, self.contact_id))))
        self.assertEqual(answer.findtext(NS + "Status"), "1")
        self.assertEqual(answer.findtext(AS + "CollectionId"), self.contacts_folder)

    def test_fetch_failures(self) -> None:
        missing = item_server_id(self.contacts_folder, "9999")
        long_id = fetch(None, None)
        long_id.add("Search:LongId", "RgAAAA")
        attachment = fetch(None, None)
        attachment.add(BASE + "FileReference", "5:1:0")
        library = fetch(None, None, store="DocumentLibrary")
        library.add("DocumentLibrary:LinkId", r"\\server\share\file.txt")
        cases = [
            (fetch(self.contacts_folder, missing), "6"),
            (fetch("999", "999:1"), "6"),
            (fetch(self.notes_folder, self.contact_id), "6"),   # not in that folder
            (fetch(self.contacts_folder, "garbage"), "6"),
            (fetch(self.contacts_folder, None), "2"),
            (long_id, "6"),
            (attachment, "15"),
            (library, "9"),
        ]
        response = self.run_ops(operations(*(body for body, _ in cases)))
        assert response.body is not None
        self.assertEqual(response.body.findtext(NS + "Status"), "1")
        answers = results(response)
        self.assertEqual([a.findtext(NS + "Status") for a in answers],
                         [status for _, status in cases])
        self.assertTrue(all(a.find(NS + "Properties") is None for a in answers))
        self.assertEqual(answers[0].findtext(AS + "ServerId"), missing)
        self.assertEqual(answers[6].findtext(BASE + "FileReference"), "5:1:0")
        self.assertEqual(answers[7].findtext("DocumentLibrary:LinkId"),
                         r"\\server\share\file.txt")

    def test_fetch_of_unreadable_item(self) -> None:
        self.patch(itemoperations, "codec_for", lambda kind: _BrokenCodec())
        [answer] = results(self.run_ops(operations(fetch(self.contacts_folder,
                                                         self.contact_id))))
        self.assertEqual(answer.findtext(NS + "Status"), "14")

    # -- EmptyFolderContents ---------------------------------------------------------------

    def test_empty_folder_contents(self) -> None:
        result_of(self.groupware.add_item("alice", self.contacts,
                                          VCARD.replace("u1", "u2")))
        empty = Element(NS + "EmptyFolderContents")
        empty.add(AS + "CollectionId", self.contacts_folder)
        empty.add(NS + "Options").add(NS + "DeleteSubFolders")
        unknown = Element(NS + "EmptyFolderContents")
        unknown.add(AS + "CollectionId", "999")
        [done, missing] = results(self.run_ops(operations(empty, unknown)))
        self.assertEqual([c.tag for c in done.children], [NS + "Status", AS + "CollectionId"])
        self.assertEqual((done.findtext(NS + "Status"), done.findtext(AS + "CollectionId")),
                         ("1", self.contacts_folder))
        self.assertEqual(missing.findtext(NS + "Status"), "6")
        self.assertEqual(result_of(self.groupware.list_items("alice", self.contacts))[1], [])
        # Other collections are untouched; the deletes are in the history.
        self.assertEqual(result_of(self.groupware.list_items("alice", self.notes))[1],
                         [self.note.item_id])
        changes = result_of(self.groupware.changes_since("alice", self.contacts, 1))
        self.assertEqual(changes.deleted, (self.contact.item_id,))

    # -- Move and malformed requests ---------------------------------------------------------

    def test_conversation_move_is_refused(self) -> None:
        to_groupware = Element(NS + "Move")
        to_groupware.add(NS + "ConversationId", b"\x01\x02")
        to_groupware.add(NS + "DstFldId", self.contacts_folder)
        to_nowhere = Element(NS + "Move")
        to_nowhere.add(NS + "ConversationId", b"\x03")
        to_nowhere.add(NS + "DstFldId", "999")
        [first, second] = results(self.run_ops(operations(to_groupware, to_nowhere)))
        self.assertEqual(first.findtext(NS + "Status"), "156")
        self.assertEqual(first.find(NS + "ConversationId").text, b"\x01\x02")  # type: ignore[union-attr]
        self.assertEqual(second.findtext(NS + "Status"), "6")
        # Before 14.0 there is no Move: a protocol error.
        old = self.run_ops(operations(to_groupware), version="12.1")
        assert old.body is not None
        self.assertEqual(old.body.findtext(NS + "Status"), "2")

    def test_malformed(self) -> None:
        for body in (None, operations(), Element("Move:MoveItems"),
                     operations(Element(NS + "Nonsense"))):
            response = self.run_ops(body)
            assert response.body is not None
            self.assertEqual(response.body.findtext(NS + "Status"), "2")
            self.assertEqual(response.status, "2")
            self.assertIsNone(response.body.find(NS + "Response"))

    def test_parse_body_preferences(self) -> None:
        options = Element(NS + "Options")
        first = options.add(BASE + "BodyPreference")
        first.add(BASE + "Type", "2")
        first.add(BASE + "TruncationSize", "512")
        first.add(BASE + "AllOrNone", "1")
        second = options.add(BASE + "BodyPreference")
        second.add(BASE + "Type", "1")
        second.add(BASE + "Preview", "100")
        options.add(BASE + "BodyPreference")  # no Type: ignored
        found = parse_body_preferences(options)
        self.assertEqual([(p.body_type, p.truncation_size, p.all_or_none, p.preview)
                          for p in found], [(2, 512, True, None), (1, None, False, 100)])
        self.assertEqual(parse_body_preferences(None), ())


class MultipartTests(SynchronousTestCase):
    def test_multipart_answer_wraps_the_wbxml(self) -> None:
        store: Any = MemoryStateStore()
        groupware: Any = MemoryGroupwareBackend()
        ctx = make_context(store, "ItemOperations", services={"groupware": groupware})
        ctx.request = replace(ctx.request, accept_multipart=True)
        empty = Element(NS + "EmptyFolderContents")
        empty.add(AS + "CollectionId", "999")
        response = result_of(ItemOperationsCommand().run(ctx, operations(empty)))
        assert response.raw_body is not None and response.body is not None
        self.assertEqual(response.headers["Content-Type"], "application/vnd.ms-sync.multipart")
        count, offset, length = struct.unpack("<iii", response.raw_body[:12])
        self.assertEqual((count, offset), (1, 12))
        self.assertEqual(response.raw_body[offset:offset + length], encode(response.body))
        self.assertEqual(len(response.raw_body), 12 + length)
        self.assertEqual(multipart([b"ab", b"cde"]),
                         struct.pack("<iiiii", 2, 20, 2, 22, 3) + b"abcde")
