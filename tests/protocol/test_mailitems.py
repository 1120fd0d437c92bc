"""ItemOperations / MoveItems / GetAttachment on mail folders, with a fake IMailBackend."""
from __future__ import annotations

import base64
import binascii
import json
import os
import quopri
import random
import struct
from typing import Any, Iterable, Sequence

from twisted.internet.defer import Deferred, fail, succeed
from twisted.mail.imap4 import parseNestedParens
from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.imap.client import FetchedMessage
from easyncd.backends.interfaces import (
    FOLDER_DELETED,
    FOLDER_INBOX,
    FOLDER_USER_MAIL,
    FolderPoint,
    MailboxSnapshot,
    MailChanges,
    MailError,
    MailState,
    NoSuchMailbox,
)
from easyncd.protocol import mailitems
from easyncd.protocol.codecs.email import conversation_id, file_reference
from easyncd.protocol.codecs.mime import parse_headers
from easyncd.protocol.commands.getattachment import GetAttachmentCommand
from easyncd.protocol.commands.itemoperations import ItemOperationsCommand
from easyncd.protocol.commands.moveitems import MoveItemsCommand
from easyncd.protocol.context import CommandResponse
from easyncd.protocol.mailsync.state import MailSyncState
from easyncd.protocol.serverids import long_id, split_long_id
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element, decode
from tests.protocol.helpers import make_context, provision_device, result_of

IO = "ItemOperations:"
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "mail")


def fixture(name: str) -> dict[str, Any]:
    with open(os.path.join(FIXTURES, name + ".imap.json"), encoding="ascii") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


class FakeMessage:
    def __init__(self, structure: str, sections: dict[str, bytes], size: int,
                 flags: Iterable[str] = ()) -> None:
        self.structure = parseNestedParens(structure.encode("latin-1"))[0]
        self.sections = sections
        self.size = size
        self.flags = frozenset(flags)


def decoded(raw: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.b64decode(b"".join(raw.split()))
    if encoding == "quoted-printable":
        return binascii.a2b_qp(raw)
    return raw


class FakeMail:
    """An IMailBackend in memory (only what these commands use)."""

    def __init__(self, binary: bool = True) -> None:
        self.binary = binary
        self.boxes: dict[str, dict[int, FakeMessage]] = {"INBOX": {}, "Archive": {},
                                                         "Trash": {}}
        self.uidnext: dict[str, int] = {name: 1 for name in self.boxes}
        self.streamed = 0
        self.chunk_sizes: list[int] = []
        self.emptied: list[tuple[str, bool]] = []

    def add(self, mailbox: str, message: FakeMessage) -> int:
        uid = self.uidnext[mailbox]
        self.uidnext[mailbox] = uid + 1
        self.boxes[mailbox][uid] = message
        return uid

    def add_fixture(self, mailbox: str, name: str, flags: Iterable[str] = ()) -> int:
        data = fixture(name)
        sections = {k: v.encode("latin-1") for k, v in data["sections"].items()}
        return self.add(mailbox, FakeMessage(data["bodystructure"], sections, data["size"], flags))

    def _box(self, mailbox: str) -> dict[int, FakeMessage]:
        if mailbox not in self.boxes:
            raise NoSuchMailbox(mailbox)
        return self.boxes[mailbox]

    def fetch_messages(self, user: str, password: str, mailbox: str, uids: Sequence[int],
                       items: Sequence[str]) -> Deferred[list[FetchedMessage]]:
        try:
            box = self._box(mailbox)
        except MailError as exc:
            return fail(exc)
        out = []
        for uid in uids:
            message = box.get(uid)
            if message is None:
                continue
            fetched = FetchedMessage(uid=uid, flags=message.flags, size=message.size,
                                     bodystructure=message.structure)
            for item in items:
                if item.startswith("BINARY.SIZE["):
                    if not self.binary:
                        return fail(MailError("BAD unknown fetch item"))
                    section = item[len("BINARY.SIZE["):-1]
                    encoding = "base64"
                    fetched.extra[item] = str(len(decoded(message.sections[section], encoding)))
                elif item.startswith("BODY.PEEK[HEADER.FIELDS"):
                    fetched.sections[item[len("BODY.PEEK["):-1]] = message.sections["HEADER"]
                elif item.startswith("BODY.PEEK["):
                    section, _, partial = item[len("BODY.PEEK["):].partition("]")
                    data = message.sections.get(section, b"")
                    if partial:
                        offset, length = map(int, partial.strip("<>").split("."))
                        fetched.sections[f"{section}<{offset}>"] = data[offset:offset + length]
                    else:
                        fetched.sections[section] = data
            out.append(fetched)
        return succeed(out)

    def stream_part(self, user: str, password: str, mailbox: str, uid: int, part: str,
                    write: Any, chunk_size: int = 1 << 20) -> Deferred[int]:
        self.chunk_sizes.append(chunk_size)

        async def run() -> int:
            data = self.boxes[mailbox][uid].sections[part]
            offset = 0
            while True:
                chunk = data[offset:offset + chunk_size]
                self.streamed += len(chunk)
                if chunk:
                    result = write(chunk)
                    if isinstance(result, Deferred):
                        await result
                offset += len(chunk)
                if len(chunk) < chunk_size:
                    return offset

        return Deferred.fromCoroutine(run())

    def move(self, user: str, password: str, mailbox: str, uids: Sequence[int],
             to_mailbox: str) -> Deferred[dict[int, int]]:
        if to_mailbox not in self.boxes:
            return fail(NoSuchMailbox(f"NO [TRYCREATE] ({to_mailbox})"))
        mapping = {}
        for uid in uids:
            message = self.boxes[mailbox].pop(uid, None)
            if message is not None:
                mapping[uid] = self.add(to_mailbox, message)
        return succeed(mapping)

    def folder_state(self, user: str, password: str, mailbox: str) -> Deferred[FolderPoint]:
        if mailbox not in self.boxes:
            return fail(NoSuchMailbox(mailbox))
        return succeed(FolderPoint(1, self.uidnext[mailbox], None, len(self.boxes[mailbox])))

    def changes(self, user: str, password: str, mailbox: str, since: Any,
                window_start: Any = None) -> Deferred[MailChanges]:
        box = self.boxes[mailbox]
        snapshot = MailboxSnapshot.from_flags({uid: m.flags for uid, m in box.items()})
        state = MailState(FolderPoint(1, self.uidnext[mailbox], None, len(box)), snapshot)
        return succeed(MailChanges(state=state, added=tuple(sorted(box)), reset=True))

    def empty(self, user: str, password: str, mailbox: str,
              delete_subfolders: bool = False) -> Deferred[int]:
        count = len(self.boxes[mailbox])
        self.boxes[mailbox].clear()
        self.emptied.append((mailbox, delete_subfolders))
        return succeed(count)


def attachment_message(payload: bytes, encoding: str = "base64",
                       content_type: tuple[str, str] = ("application", "octet-stream"),
                       headers: bytes = b"Subject: big\r\n") -> FakeMessage:
    if encoding == "base64":
        raw = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    elif encoding == "quoted-printable":
        raw = quopri.encodestring(payload).replace(b"\n", b"\r\n")
    else:
        raw = payload
    text = b"hello\r\n"
    structure = (
        f'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" {len(text)} 1 NIL NIL NIL NIL)'
        f'("{content_type[0]}" "{content_type[1]}" ("name" "file.bin") NIL NIL "{encoding}" '
        f'{len(raw)} NIL ("attachment" ("filename" "file.bin")) NIL NIL) "mixed" '
        f'("boundary" "b") NIL NIL NIL)')
    return FakeMessage(structure, {"HEADER": headers + b"\r\n", "1": text, "2": raw},
                       len(raw) + 200)


def fetch_request(*fetches: Element) -> Element:
    return Element(IO + "ItemOperations", children=list(fetches))


def attachment_fetch(reference: str, byte_range: str | None = None) -> Element:
    fetch = Element(IO + "Fetch")
    fetch.add(IO + "Store", "Mailbox")
    fetch.add("AirSyncBase:FileReference", reference)
    if byte_range is not None:
        fetch.add(IO + "Options").add(IO + "Range", byte_range)
    return fetch


def path(root: Element | None, *tags: str) -> Element:
    """The element at ``tags`` under ``root`` (AssertionError when missing)."""
    for tag in tags:
        assert root is not None
        root = root.find(tag)
    assert root is not None
    return root


def split_multipart(data: bytes) -> list[bytes]:
    count = struct.unpack("<i", data[:4])[0]
    parts = []
    for index in range(count):
        offset, length = struct.unpack("<ii", data[4 + 8 * index:12 + 8 * index])
        parts.append(data[offset:offset + length])
    return parts


class MailItemsTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.store: Any = MemoryStateStore()
        provision_device(self.store)
        self.mail = FakeMail()
        add = self.store.add_folder
        self.inbox = result_of(add("alice", "0", "Inbox", FOLDER_INBOX, "imap:INBOX")).server_id
        self.archive = result_of(add("alice", "0", "Archive", FOLDER_USER_MAIL,
                                     "imap:Archive")).server_id
        self.trash = result_of(add("alice", "0", "Trash", FOLDER_DELETED,
                                   "imap:Trash")).server_id
        self.contacts = result_of(add("alice", "0", "Contacts", 9,
                                      "groupware:contacts:default")).server_id

    def ctx(self, command: str, version: str = "16.1", multipart: bool = False,
            parameters: dict[str, str] | None = None) -> Any:
        ctx = make_context(self.store, command, version, services={"mail": self.mail},
                           parameters=parameters)
        ctx.password = "secret"
        if multipart:
            from dataclasses import replace
            ctx.request = replace(ctx.request, accept_multipart=True)
        return ctx

    def item_operations(self, body: Element, **kwargs: Any) -> CommandResponse:
        return result_of(ItemOperationsCommand().run(self.ctx("ItemOperations", **kwargs), body))

    def body_of(self, response: CommandResponse) -> tuple[bytes, Element]:
        data = result_of(mailitems.collect(response))
        if response.stream is not None:
            self.assertEqual(len(data), response.stream_length)
        if response.headers.get("Content-Type") == mailitems.MULTIPART_TYPE:
            return data, decode(split_multipart(data)[0])
        if response.stream is None:
            assert response.body is not None
            return b"", response.body
        return data, decode(data)

    def set_state(self, folder: str, uids: dict[int, Iterable[str]]) -> None:
        state = MailSyncState(mail=MailState(
            FolderPoint(1, max(uids, default=0) + 1, None, len(uids)),
            MailboxSnapshot.from_flags({u: frozenset(f) for u, f in uids.items()})))
        result_of(self.store.advance_sync_state("dev1", "alice", folder, None, 7,
                                                state.to_text()))

    def state(self, folder: str) -> MailSyncState:
        stored = result_of(self.store.get_sync_state("dev1", "alice", folder))
        state = MailSyncState.from_text(stored.state)
        assert state is not None
        return state


class TransferDecoderTests(SynchronousTestCase):
    def feed_randomly(self, encoding: str, raw: bytes) -> bytes:
        rng = random.Random(7)
        decoder = mailitems.TransferDecoder(encoding)
        out, position = [], 0
        while position < len(raw):
            step = rng.randint(1, 97)
            out.append(decoder.feed(raw[position:position + step]))
            position += step
        out.append(decoder.finish())
        return b"".join(out)

    def test_base64_in_any_chunks(self) -> None:
        payload = random.Random(1).randbytes(5000)
        raw = base64.encodebytes(payload).replace(b"\n", b"\r\n")
        self.assertEqual(self.feed_randomly("base64", raw), payload)

    def test_base64_without_padding_and_with_junk(self) -> None:
        raw = base64.b64encode(b"hello world!?").rstrip(b"=")
        self.assertEqual(self.feed_randomly("BASE64", b" \t" + raw + b"\r\n!"), b"hello world!?")

    def test_quoted_printable_in_any_chunks(self) -> None:
        payload = ("Grüße aus München = schön\r\n" * 50 + "x" * 200).encode("utf-8")
        raw = quopri.encodestring(payload).replace(b"\n", b"\r\n")
        self.assertEqual(self.feed_randomly("quoted-printable", raw),
                         binascii.a2b_qp(raw))

    def test_identity(self) -> None:
        self.assertEqual(self.feed_randomly("8bit", b"abc" * 100), b"abc" * 100)

    def test_byte_range(self) -> None:
        self.assertEqual(mailitems.parse_byte_range("0-99"), (0, 99))
        self.assertIsNone(mailitems.parse_byte_range(None))
        self.assertRaises(ValueError, mailitems.parse_byte_range, "9-1")
        self.assertRaises(ValueError, mailitems.parse_byte_range, "abc")

    def test_long_id(self) -> None:
        self.assertEqual(long_id("7", "42"), "7:42")
        self.assertEqual(split_long_id("7:42"), ("7", "42"))
        self.assertIsNone(split_long_id("742"))


class FetchItemTests(MailItemsTestCase):
    def test_fetch_by_server_id(self) -> None:
        uid = self.mail.add_fixture("INBOX", "mixed_attachments", flags=["\\Seen"])
        fetch = Element(IO + "Fetch")
        fetch.add(IO + "Store", "Mailbox")
        fetch.add("AirSync:CollectionId", self.inbox)
        fetch.add("AirSync:ServerId", f"{self.inbox}:{uid}")
        options = fetch.add(IO + "Options")
        pref = options.add("AirSyncBase:BodyPreference")
        pref.add("AirSyncBase:Type", "2")
        pref.add("AirSyncBase:TruncationSize", "100")
        _, root = self.body_of(self.item_operations(fetch_request(fetch)))
        answer = path(root, IO + "Response", IO + "Fetch")
        self.assertEqual(answer.findtext(IO + "Status"), "1")
        self.assertEqual(answer.findtext("AirSync:Class"), "Email")
        self.assertEqual(answer.findtext("AirSync:ServerId"), f"{self.inbox}:{uid}")
        properties = answer.find(IO + "Properties")
        assert properties is not None
        self.assertEqual(properties.findtext("Email:Read"), "1")
        self.assertEqual(properties.find("AirSyncBase:Body").findtext(  # type: ignore[union-attr]
            "AirSyncBase:Type"), "2")
        attachments = properties.find("AirSyncBase:Attachments")
        assert attachments is not None
        self.assertEqual(len(attachments.children), 3)

    def test_fetch_by_long_id(self) -> None:
        uid = self.mail.add_fixture("INBOX", "plain")
        fetch = Element(IO + "Fetch")
        fetch.add(IO + "Store", "Mailbox")
        fetch.add("Search:LongId", long_id(self.inbox, str(uid)))
        _, root = self.body_of(self.item_operations(fetch_request(fetch)))
        answer = path(root, IO + "Response", IO + "Fetch")
        self.assertEqual(answer.findtext(IO + "Status"), "1")
        self.assertEqual(answer.findtext("Search:LongId"), f"{self.inbox}:{uid}")
        self.assertIsNotNone(path(answer, IO + "Properties", "Email:Subject"))

    def test_unknown_message_and_deleted_message(self) -> None:
        uid = self.mail.add_fixture("INBOX", "plain", flags=["\\Deleted"])
        statuses = []
        for server_id in (f"{self.inbox}:{uid}", f"{self.inbox}:999", f"{self.inbox}:x"):
            fetch = Element(IO + "Fetch")
            fetch.add(IO + "Store", "Mailbox")
            fetch.add("AirSync:CollectionId", self.inbox)
            fetch.add("AirSync:ServerId", server_id)
            _, root = self.body_of(self.item_operations(fetch_request(fetch)))
            statuses.append(path(root, IO + "Response", IO + "Fetch")
                            .findtext(IO + "Status"))
        self.assertEqual(statuses, ["6", "6", "6"])

    def test_unknown_long_id(self) -> None:
        fetch = Element(IO + "Fetch")
        fetch.add(IO + "Store", "Mailbox")
        fetch.add("Search:LongId", f"{self.contacts}:5")
        _, root = self.body_of(self.item_operations(fetch_request(fetch)))
        self.assertEqual(path(root, IO + "Response", IO + "Fetch")
                         .findtext(IO + "Status"), "6")


class FetchAttachmentTests(MailItemsTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.uid = self.mail.add_fixture("INBOX", "mixed_attachments")
        raw = self.mail.boxes["INBOX"][self.uid].sections["2"]
        self.pdf = base64.b64decode(b"".join(raw.split()))
        self.reference = file_reference(self.inbox, self.uid, "2")

    def answer(self, root: Element) -> Element:
        found = path(root, IO + "Response", IO + "Fetch")
        assert found is not None
        return found

    def test_inline_whole(self) -> None:
        data, root = self.body_of(self.item_operations(fetch_request(
            attachment_fetch(self.reference))))
        answer = self.answer(root)
        self.assertEqual(answer.findtext(IO + "Status"), "1")
        self.assertEqual(answer.findtext("AirSyncBase:FileReference"), self.reference)
        properties = answer.find(IO + "Properties")
        assert properties is not None
        self.assertEqual(properties.findtext("AirSyncBase:ContentType"), "application/pdf")
        self.assertEqual(properties.findtext(IO + "Total"), str(len(self.pdf)))
        self.assertIsNone(properties.find(IO + "Range"))
        self.assertEqual(base64.b64decode(properties.findtext(IO + "Data") or ""), self.pdf)

    def test_inline_range(self) -> None:
        _, root = self.body_of(self.item_operations(fetch_request(
            attachment_fetch(self.reference, "10-109"))))
        properties = self.answer(root).find(IO + "Properties")
        assert properties is not None
        self.assertEqual(properties.findtext(IO + "Range"), "10-109")
        self.assertEqual(properties.findtext(IO + "Total"), str(len(self.pdf)))
        self.assertEqual(base64.b64decode(properties.findtext(IO + "Data") or ""),
                         self.pdf[10:110])

    def test_range_past_the_end_is_clamped(self) -> None:
        total = len(self.pdf)
        _, root = self.body_of(self.item_operations(fetch_request(
            attachment_fetch(self.reference, f"{total - 5}-{total + 100}"))))
        properties = self.answer(root).find(IO + "Properties")
        assert properties is not None
        self.assertEqual(properties.findtext(IO + "Range"), f"{total - 5}-{total - 1}")
        self.assertEqual(base64.b64decode(properties.findtext(IO + "Data") or ""),
                         self.pdf[-5:])

    def test_invalid_ranges(self) -> None:
        total = len(self.pdf)
        for byte_range in (f"{total}-{total + 10}", "5-1"):
            _, root = self.body_of(self.item_operations(fetch_request(
                attachment_fetch(self.reference, byte_range))))
            self.assertEqual(self.answer(root).findtext(IO + "Status"), "8")

    def test_multipart_two_attachments(self) -> None:
        other = file_reference(self.inbox, self.uid, "3")
        response = self.item_operations(
            fetch_request(attachment_fetch(self.reference, "0-9"), attachment_fetch(other)),
            multipart=True)
        self.assertEqual(response.headers["Content-Type"], mailitems.MULTIPART_TYPE)
        data = result_of(mailitems.collect(response))
        self.assertEqual(len(data), response.stream_length)
        parts = split_multipart(data)
        self.assertEqual(len(parts), 3)
        root = decode(parts[0])
        fetches = root.find(IO + "Response").findall(IO + "Fetch")  # type: ignore[union-attr]
        self.assertEqual([f.find(IO + "Properties").findtext(IO + "Part")  # type: ignore[union-attr]
                          for f in fetches], ["1", "2"])
        self.assertIsNone(fetches[0].find(IO + "Properties").find(IO + "Data"))  # type: ignore[union-attr]
        self.assertEqual(parts[1], self.pdf[:10])
        self.assertEqual(parts[2], self.mail.boxes["INBOX"][self.uid].sections["3"])

    def test_without_binary_extension_counts(self) -> None:
        self.mail.binary = False
        _, root = self.body_of(self.item_operations(fetch_request(
            attachment_fetch(self.reference))))
        properties = self.answer(root).find(IO + "Properties")
        assert properties is not None
        self.assertEqual(properties.findtext(IO + "Total"), str(len(self.pdf)))
        self.assertEqual(base64.b64decode(properties.findtext(IO + "Data") or ""), self.pdf)

    def test_quoted_printable_attachment(self) -> None:
        text = ("Zeile mit Umlauten: äöü = gleich\n" * 40).encode("utf-8")
        uid = self.mail.add("INBOX", attachment_message(text, "quoted-printable",
                                                        ("text", "plain")))
        payload = text.replace(b"\n", b"\r\n")  # canonical line ends
        _, root = self.body_of(self.item_operations(fetch_request(
            attachment_fetch(file_reference(self.inbox, uid, "2")))))
        properties = self.answer(root).find(IO + "Properties")
        assert properties is not None
        self.assertEqual(properties.findtext(IO + "Total"), str(len(payload)))
        self.assertEqual(base64.b64decode(properties.findtext(IO + "Data") or ""), payload)

    def test_bad_references(self) -> None:
        for reference in ("garbage", file_reference(self.inbox, 999, "2"),
                          file_reference(self.inbox, self.uid, "9"),
                          file_reference("12345", self.uid, "2")):
            _, root = self.body_of(self.item_operations(fetch_request(
                attachment_fetch(reference))))
            self.assertEqual(self.answer(root).findtext(IO + "Status"), "15", reference)

    def test_large_attachment_streams_in_chunks_and_range_stops_early(self) -> None:
        payload = random.Random(3).randbytes(3 * (1 << 20))
        uid = self.mail.add("INBOX", attachment_message(payload))
        reference = file_reference(self.inbox, uid, "2")
        response = self.item_operations(fetch_request(attachment_fetch(reference)),
                                        multipart=True)
        writes: list[int] = []
        out = bytearray()

        def write(data: bytes) -> None:
            writes.append(len(data))
            out.extend(data)

        result_of(response.stream(write))  # type: ignore[misc]
        self.assertEqual(bytes(split_multipart(bytes(out))[1]), payload)
        self.assertGreater(len(writes), 3)
        self.assertLessEqual(max(writes[1:]), 1 << 20)
        # A range near the start reads only the start of the part.
        self.mail.streamed = 0
        response = self.item_operations(fetch_request(attachment_fetch(reference, "0-999")))
        data, root = self.body_of(response)
        properties = self.answer(root).find(IO + "Properties")
        assert properties is not None
        self.assertEqual(base64.b64decode(properties.findtext(IO + "Data") or ""), payload[:1000])
        self.assertLess(self.mail.streamed, 200_000)

    def test_slow_client_is_waited_for(self) -> None:
        payload = bytes(range(256)) * 20000
        uid = self.mail.add("INBOX", attachment_message(payload))
        response = self.item_operations(fetch_request(attachment_fetch(
            file_reference(self.inbox, uid, "2"))), multipart=True)
        pending: list[Deferred[None]] = []
        out = bytearray()

        def write(data: bytes) -> Deferred[None]:
            out.extend(data)
            waiter: Deferred[None] = Deferred()
            pending.append(waiter)
            return waiter

        done = response.stream(write)  # type: ignore[misc]
        fired: list[object] = []
        done.addBoth(fired.append)
        rounds = 0
        while pending:
            self.assertEqual(len(pending), 1)  # one write at a time
            pending.pop().callback(None)
            rounds += 1
        self.assertEqual(fired, [None])
        self.assertEqual(split_multipart(bytes(out))[1], payload)
        self.assertGreater(rounds, 2)


class EmptyAndMoveTests(MailItemsTestCase):
    def test_empty_folder_contents(self) -> None:
        self.mail.add_fixture("Trash", "plain")
        self.set_state(self.trash, {1: ["\\Seen"]})
        operation = Element(IO + "EmptyFolderContents")
        operation.add("AirSync:CollectionId", self.trash)
        operation.add(IO + "Options").add(IO + "DeleteSubFolders")
        response = self.item_operations(fetch_request(operation))
        assert response.body is not None
        answer = path(response.body, IO + "Response", IO + "EmptyFolderContents")
        self.assertEqual(answer.findtext(IO + "Status"), "1")
        self.assertEqual(self.mail.emptied, [("Trash", True)])
        self.assertEqual(len(self.state(self.trash).mail.snapshot), 0)  # type: ignore[union-attr]

    def test_conversation_move(self) -> None:
        first = self.mail.add("INBOX", attachment_message(
            b"x", headers=b"Message-ID: <root@x>\r\nSubject: Plan\r\n"))
        second = self.mail.add("INBOX", attachment_message(
            b"y", headers=b"Message-ID: <r2@x>\r\nReferences: <root@x>\r\nSubject: Re: Plan\r\n"))
        self.mail.add("INBOX", attachment_message(
            b"z", headers=b"Message-ID: <other@x>\r\nSubject: Other\r\n"))
        self.set_state(self.inbox, {first: [], second: [], 3: []})
        wanted = conversation_id(parse_headers(b"Message-ID: <root@x>\r\n\r\n"), "Plan")
        operation = Element(IO + "Move")
        operation.add(IO + "ConversationId", wanted)
        operation.add(IO + "DstFldId", self.archive)
        response = self.item_operations(fetch_request(operation))
        assert response.body is not None
        answer = path(response.body, IO + "Response", IO + "Move")
        self.assertEqual(answer.findtext(IO + "Status"), "1")
        self.assertEqual(sorted(self.mail.boxes["INBOX"]), [3])
        self.assertEqual(len(self.mail.boxes["Archive"]), 2)
        self.assertEqual(list(self.state(self.inbox).mail.snapshot.uids()), [3])  # type: ignore[union-attr]
        # Nothing left of that conversation: not found.
        response = self.item_operations(fetch_request(operation))
        assert response.body is not None
        self.assertEqual(path(response.body, IO + "Response", IO + "Move")
                         .findtext(IO + "Status"), "6")


class MoveItemsTests(MailItemsTestCase):
    def move(self, source: str, src_folder: str, dst_folder: str) -> tuple[str, str | None]:
        root = Element("Move:MoveItems")
        move = root.add("Move:Move")
        move.add("Move:SrcMsgId", source)
        move.add("Move:SrcFldId", src_folder)
        move.add("Move:DstFldId", dst_folder)
        response = result_of(MoveItemsCommand().run(self.ctx("MoveItems"), root))
        assert response.body is not None
        answer = response.body.find("Move:Response")
        assert answer is not None
        return answer.findtext("Move:Status") or "", answer.findtext("Move:DstMsgId")

    def test_move_between_mail_folders(self) -> None:
        self.mail.add_fixture("Archive", "plain")
        uid = self.mail.add_fixture("INBOX", "plain", flags=["\\Seen"])
        self.set_state(self.inbox, {uid: ["\\Seen"]})
        self.set_state(self.archive, {1: []})
        status, destination = self.move(f"{self.inbox}:{uid}", self.inbox, self.archive)
        self.assertEqual((status, destination), ("3", f"{self.archive}:2"))
        self.assertEqual(list(self.mail.boxes["Archive"]), [1, 2])
        self.assertNotIn(uid, self.state(self.inbox).mail.snapshot)  # type: ignore[union-attr]
        target = self.state(self.archive).mail.snapshot  # type: ignore[union-attr]
        self.assertEqual(target.flags_of(2), frozenset({"\\Seen"}))

    def test_statuses(self) -> None:
        uid = self.mail.add_fixture("INBOX", "plain")
        source = f"{self.inbox}:{uid}"
        self.assertEqual(self.move(source, self.inbox, self.inbox), ("4", None))
        self.assertEqual(self.move(f"{self.inbox}:77", self.inbox, self.archive), ("1", None))
        self.assertEqual(self.move(f"{self.archive}:1", self.inbox, self.archive), ("1", None))
        self.assertEqual(self.move(source, self.inbox, self.contacts), ("2", None))
        self.assertEqual(self.move(source, self.inbox, "999"), ("2", None))
        del self.mail.boxes["Archive"]
        self.assertEqual(self.move(source, self.inbox, self.archive), ("2", None))
        self.assertIn(uid, self.mail.boxes["INBOX"])


class GetAttachmentTests(MailItemsTestCase):
    def run_command(self, name: str | None) -> CommandResponse:
        parameters = {} if name is None else {"AttachmentName": name}
        return result_of(GetAttachmentCommand().run(
            self.ctx("GetAttachment", "12.1", parameters=parameters), None))

    def test_streams_the_attachment(self) -> None:
        payload = b"\x00\x01binary\xff" * 1000
        uid = self.mail.add("INBOX", attachment_message(payload, content_type=("image", "png")))
        response = self.run_command(file_reference(self.inbox, uid, "2"))
        self.assertEqual(response.http_status, 200)
        self.assertEqual(response.headers["Content-Type"], "image/png")
        self.assertEqual(response.stream_length, len(payload))
        self.assertEqual(result_of(mailitems.collect(response)), payload)

    def test_errors(self) -> None:
        self.assertEqual(self.run_command(None).http_status, 400)
        self.assertEqual(self.run_command("nonsense").http_status, 500)
        self.assertEqual(self.run_command(file_reference(self.inbox, 5, "2")).http_status, 500)
