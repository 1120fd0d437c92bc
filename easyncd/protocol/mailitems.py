"""The mail side of ItemOperations, MoveItems and GetAttachment.

**Fetch** (ItemOperations, Store ``Mailbox``):

* an item by ``CollectionId`` + ``ServerId`` (``"<folder server id>:<uid>"``)
  or by ``Search:LongId`` (the same form, see
  :func:`easyncd.protocol.serverids.long_id`): its properties through the
  email codec, for the ``Options`` BodyPreference / BodyPartPreference /
  MIMESupport (``Schema`` and ``RightsManagementSupport`` are ignored: mail
  properties are always sent whole);
* an attachment by ``AirSyncBase:FileReference``
  (:func:`~easyncd.protocol.codecs.email.parse_file_reference`), optionally
  cut by ``Options/Range`` ``"m-n"`` (zero-based, inclusive; the end is
  clamped to the attachment; a start past the end is Status 8).  The answer
  holds ``AirSyncBase:ContentType``, ``Range`` (when asked), ``Total`` (the
  decoded size) and the octets: inline as base64 ``Data``, or with
  ``MS-ASAcceptMultiPart: T`` as a binary part named by ``Part``.

Attachments are never held whole: the response is streamed
(:attr:`CommandResponse.stream`) from the IMAP server through an incremental
transfer decoder, chunk by chunk, waiting whenever the client is slower.  The
exact decoded size must be known before the first byte (it is in ``Total``
and in the Content-Length / multipart header): unencoded parts take the
BODYSTRUCTURE size, base64 parts the server's ``BINARY.SIZE`` (RFC 3516) and,
when the server has no BINARY, a counting pass over the part (streamed, not
kept); quoted-printable parts always a counting pass.  The streamed body is
always exactly as long as announced (a damaged encoding is cut or padded).
A range is read from the start of the part and the reading stops after its
end.

**EmptyFolderContents** of a mail folder expunges its messages (and its
sub-folders with ``DeleteSubFolders``); the device emptied its copy, so the
folder's Sync state of this device forgets them.

**Move** (14.0+, a conversation): a conversation is the set of messages whose
:func:`~easyncd.protocol.codecs.email.conversation_id` (MD5 of the thread's
root Message-ID, or of the bare subject) equals the ConversationId.  IMAP
cannot search by that digest, so the header fields that make it (Message-ID,
References, In-Reply-To, Subject) are fetched for the mail folders that can
hold a conversation -- every mail folder but Drafts, Deleted Items, Sent
Items, Outbox and the destination -- and the matching messages are moved.
``MoveAlways`` (moving future mail too) needs server-side rules and is not
kept.  Status 6 when the destination is unknown or no message matches.

**MoveItems** between two mail folders: IMAP ``MOVE`` (or COPY + expunge),
``DstMsgId`` with the new UID; the source and target Sync states of this
device are updated so that its next Sync shows the message neither twice nor
as a deletion (:func:`record_mail_writes`).

**GetAttachment** (2.5 - 12.1) lives in
:mod:`easyncd.protocol.commands.getattachment` and uses
:func:`prepare_attachment` and :func:`stream_attachment`.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import inspect
import re
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable, Iterable, Mapping, Sequence

from twisted.internet.defer import Deferred

from easyncd.backends.imap.bodystructure import BodyPart, parse_bodystructure
from easyncd.backends.interfaces import (
    FOLDER_DELETED,
    FOLDER_DRAFTS,
    FOLDER_OUTBOX,
    FOLDER_SENT,
    MailBackendUnavailable,
    MailboxSnapshot,
    MailError,
    MailState,
    NoSuchMailbox,
)
from easyncd.protocol.codecs.base import CodecContext, CodecError
from easyncd.protocol.codecs.email import conversation_id, email_to_eas, parse_file_reference
from easyncd.protocol.codecs.mime import parse_headers
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.mailsync.state import MailSyncState
from easyncd.protocol.serverids import item_server_id, split_long_id, split_server_id
from easyncd.store.interfaces import Folder, NoSuchFolder, SyncStateConflict
from easyncd.wbxml import Element, encode

NS = "ItemOperations:"
AIRSYNC = "AirSync:"
BASE = "AirSyncBase:"
SEARCH = "Search:"
MAIL_PREFIX = "imap:"

#: The Content-Type of a multipart answer (MS-ASCMD 2.2.1.10.1).
MULTIPART_TYPE = "application/vnd.ms-sync.multipart"
#: Octets asked of the IMAP server per round trip when streaming a part.
CHUNK_SIZE = 1 << 20
#: Encodings whose octets are the content as they are.
_IDENTITY = frozenset({"", "7bit", "8bit", "binary"})
_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_B64_DELETE = bytes(b for b in range(256) if b not in _B64_ALPHABET)
#: Header fields that make a ConversationId.
_THREAD_FIELDS = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID REFERENCES IN-REPLY-TO SUBJECT)]"
_NOT_CONVERSATION_TYPES = frozenset({FOLDER_DRAFTS, FOLDER_DELETED, FOLDER_SENT, FOLDER_OUTBOX})
_CONFLICT_ATTEMPTS = 3


class FetchStatus(IntEnum):
    """ItemOperations Status values (MS-ASCMD 2.2.3.177.8) used for mail."""

    Success = 1
    ProtocolError = 2
    ServerError = 3
    NotFound = 6
    InvalidRange = 8
    ConversionFailed = 14
    InvalidAttachment = 15
    ActionNotSupported = 156


class MoveStatus(IntEnum):
    """MoveItems Status (MS-ASCMD 2.2.3.177.10)."""

    InvalidSource = 1
    InvalidDestination = 2
    Success = 3
    SameFolder = 4
    Failure = 5


# -- plumbing ------------------------------------------------------------------------------

@dataclass(frozen=True)
class MailTarget:
    """A folder server id resolved to its mailbox."""

    folder: Folder
    mailbox: str


def mail_backend(ctx: CommandContext) -> Any:
    """The configured IMailBackend, or None."""
    return ctx.services.get("mail")


def _creds(ctx: CommandContext) -> tuple[str, str]:
    return ctx.request.account, ctx.password or ""


async def mail_folder(ctx: CommandContext, server_id: str | None) -> MailTarget | None:
    """The mailbox behind a folder server id, None when it is not a mail folder."""
    if not server_id:
        return None
    store: Any = ctx.store
    try:
        folder: Folder = await store.get_folder(ctx.request.account, server_id)
    except NoSuchFolder:
        return None
    if not folder.backend_id.startswith(MAIL_PREFIX):
        return None
    return MailTarget(folder, folder.backend_id[len(MAIL_PREFIX):])


async def _is_mail_folder(ctx: CommandContext, server_id: str | None) -> bool:
    return await mail_folder(ctx, server_id) is not None


# -- transfer decoding -------------------------------------------------------------------

class TransferDecoder:
    """Incremental Content-Transfer-Encoding decoder (base64, quoted-printable;
    anything else passes through).  ``feed`` returns what can be decoded so
    far, ``finish`` the rest."""

    def __init__(self, encoding: str | None) -> None:
        self.encoding = (encoding or "").strip().lower()
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        """Decode a chunk (carrying an incomplete group or line over)."""
        if self.encoding == "base64":
            data = self._pending + data.translate(None, _B64_DELETE)
            cut = len(data) - len(data) % 4
            self._pending = data[cut:]
            return _b64(data[:cut])
        if self.encoding == "quoted-printable":
            data = self._pending + data
            cut = data.rfind(b"\n") + 1
            self._pending = data[cut:]
            return binascii.a2b_qp(data[:cut]) if cut else b""
        return data

    def finish(self) -> bytes:
        """Decode what is left."""
        rest, self._pending = self._pending, b""
        if not rest:
            return b""
        if self.encoding == "base64":
            rest = rest.rstrip(b"=")
            if len(rest) % 4 == 1:
                rest = rest[:-1]
            return _b64(rest + b"=" * (-len(rest) % 4))
        if self.encoding == "quoted-printable":
            return binascii.a2b_qp(rest)
        return rest


def _b64(data: bytes) -> bytes:
    if not data:
        return b""
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        # Padding in the middle (glued parts): decode group by group.
        out = bytearray()
        for start in range(0, len(data), 4):
            group = data[start:start + 4]
            try:
                out += binascii.a2b_base64(group)
            except binascii.Error:
                continue
        return bytes(out)


class _Enough(Exception):
    """Stops a stream once the wanted range has been written."""


WriteFn = Callable[[bytes], Any]


async def _call(write: WriteFn, data: bytes) -> None:
    result = write(data)
    if inspect.isawaitable(result):
        await result


# -- attachments ---------------------------------------------------------------------------

@dataclass(frozen=True)
class AttachmentSource:
    """One attachment (or a range of it) ready to be streamed: ``start`` and
    ``length`` are in decoded octets, ``total`` the whole decoded size."""

    mailbox: str
    uid: int
    part_id: str
    encoding: str
    content_type: str
    total: int
    start: int = 0
    length: int = 0
    ranged: bool = False

    @property
    def end(self) -> int:
        """The last octet sent (inclusive), -1 when nothing is."""
        return self.start + self.length - 1


class AttachmentProblem(Exception):
    """Why an attachment cannot be served; ``status`` is the ItemOperations Status."""

    def __init__(self, status: FetchStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _find_part(structure: BodyPart, part_id: str) -> BodyPart | None:
    if structure.part_id == part_id:
        return structure
    for child in structure.children:
        found = _find_part(child, part_id)
        if found is not None:
            return found
    return None


def parse_byte_range(text: str | None) -> tuple[int, int] | None:
    """``"m-n"`` -> (m, n); None when absent; ValueError when malformed."""
    if text is None or not text.strip():
        return None
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if match is None:
        raise ValueError(f"bad range {text!r}")
    first, last = int(match.group(1)), int(match.group(2))
    if first > last:
        raise ValueError(f"bad range {text!r}")
    return first, last


async def prepare_attachment(ctx: CommandContext, reference: str,
                             byte_range: str | None = None) -> AttachmentSource:
    """Resolve a FileReference of the user's mail to what :func:`stream_attachment`
    needs, with its exact decoded size.  AttachmentProblem otherwise."""
    mail = mail_backend(ctx)
    if mail is None:
        raise AttachmentProblem(FetchStatus.InvalidAttachment, "no mail backend")
    try:
        folder_id, uid, part_id = parse_file_reference(reference)
        wanted = parse_byte_range(byte_range)
    except ValueError as exc:
        status = FetchStatus.InvalidRange if "range" in str(exc) else FetchStatus.InvalidAttachment
        raise AttachmentProblem(status, str(exc)) from None
    target = await mail_folder(ctx, folder_id)
    if target is None:
        raise AttachmentProblem(FetchStatus.InvalidAttachment, f"no mail folder {folder_id}")
    user, password = _creds(ctx)
    try:
        found = await mail.fetch_messages(user, password, target.mailbox, [uid],
                                          ["FLAGS", "BODYSTRUCTURE"])
    except NoSuchMailbox:
        raise AttachmentProblem(FetchStatus.InvalidAttachment, "mailbox gone") from None
    except MailError as exc:
        raise AttachmentProblem(FetchStatus.ServerError, str(exc)) from None
    message = next((m for m in found if m.uid == uid), None)
    if message is None or not message.bodystructure:
        raise AttachmentProblem(FetchStatus.InvalidAttachment, f"no message {uid}")
    try:
        structure = parse_bodystructure(message.bodystructure)
    except ValueError:
        raise AttachmentProblem(FetchStatus.InvalidAttachment, "unreadable structure") from None
    part = _find_part(structure, part_id)
    if part is None or part.is_multipart:
        raise AttachmentProblem(FetchStatus.InvalidAttachment, f"no part {part_id}")
    encoding = (part.encoding or "").strip().lower()
    total = await _decoded_size(mail, user, password, target.mailbox, uid, part, encoding)
    start, length = 0, total
    if wanted is not None:
        first, last = wanted
        if first >= total and not (first == 0 and total == 0):
            raise AttachmentProblem(FetchStatus.InvalidRange,
                                    f"range {first}-{last} outside {total} octets")
        start, length = first, max(0, min(last, total - 1) - first + 1)
    return AttachmentSource(target.mailbox, uid, part_id,
                            encoding if encoding in ("base64", "quoted-printable") else "",
                            part.content_type, total, start, length, wanted is not None)


async def _decoded_size(mail: Any, user: str, password: str, mailbox: str, uid: int,
                        part: BodyPart, encoding: str) -> int:
    if encoding not in ("base64", "quoted-printable"):
        return part.size
    if encoding == "base64":
        try:
            found = await mail.fetch_messages(user, password, mailbox, [uid],
                                              [f"BINARY.SIZE[{part.part_id}]"])
            for message in found:
                for key, value in getattr(message, "extra", {}).items():
                    if key.upper().startswith("BINARY.SIZE"):
                        size = value.decode() if isinstance(value, bytes) else str(value)
                        if size.isdigit():
                            return int(size)
        except MailBackendUnavailable:
            raise
        except MailError:
            pass  # no BINARY extension: count
    counted = 0
    decoder = TransferDecoder(encoding)

    def count(chunk: bytes) -> None:
        nonlocal counted
        counted += len(decoder.feed(chunk))

    await mail.stream_part(user, password, mailbox, uid, part.part_id, count, CHUNK_SIZE)
    return counted + len(decoder.finish())


async def stream_attachment(ctx: CommandContext, source: AttachmentSource,
                            write: WriteFn) -> int:
    """Write the decoded octets ``source.start`` .. ``source.end`` to ``write``
    (which may return a Deferred to slow down); exactly ``source.length`` of
    them.  Fires with that count."""
    mail = mail_backend(ctx)
    user, password = _creds(ctx)
    decoder = TransferDecoder(source.encoding)
    position = 0
    written = 0
    wanted = source.length

    async def emit(data: bytes) -> None:
        nonlocal position, written
        begin = position
        position += len(data)
        if position <= source.start or written >= wanted:
            return
        piece = data[max(0, source.start - begin):]
        piece = piece[:wanted - written]
        if piece:
            written += len(piece)
            await _call(write, piece)

    def sink(chunk: bytes) -> Deferred[None]:
        async def run() -> None:
            await emit(decoder.feed(chunk))
            if written >= wanted:
                raise _Enough()
        return Deferred.fromCoroutine(run())

    if wanted > 0:
        # Encoded octets needed to reach the end of the range (chunks no larger).
        chunk_size = CHUNK_SIZE if source.encoding else min(CHUNK_SIZE, source.end + 1)
        if source.encoding == "base64":
            chunk_size = min(CHUNK_SIZE, max(64 * 1024, (source.end + 1) * 140 // 100 + 1024))
        try:
            await mail.stream_part(user, password, source.mailbox, source.uid,
                                   source.part_id, sink, max(1, chunk_size))
        except _Enough:
            pass
        else:
            await emit(decoder.finish())
    if written < wanted:
        ctx.log.warn("Attachment {part} of {uid} in {mailbox} is shorter than announced:"
                     " padded {missing} octets", part=source.part_id, uid=source.uid,
                     mailbox=source.mailbox, missing=wanted - written)
        while written < wanted:
            pad = min(CHUNK_SIZE, wanted - written)
            written += pad
            await _call(write, bytes(pad))
    return written


class _Base64Writer:
    """Base64 of a stream, written as it comes (three octets at a time)."""

    def __init__(self, write: WriteFn) -> None:
        self.write = write
        self.rest = b""

    async def __call__(self, data: bytes) -> None:
        data = self.rest + data
        cut = len(data) - len(data) % 3
        self.rest = data[cut:]
        if cut:
            await _call(self.write, base64.b64encode(data[:cut]))

    async def close(self) -> None:
        if self.rest:
            await _call(self.write, base64.b64encode(self.rest))
            self.rest = b""


def base64_length(octets: int) -> int:
    """The length of the base64 text of ``octets`` octets."""
    return 4 * ((octets + 2) // 3)


# -- the response of one ItemOperations request --------------------------------------------

@dataclass
class ResponseParts:
    """The attachments an ItemOperations answer streams, in order."""

    multipart: bool
    sources: list[AttachmentSource] = field(default_factory=list)

    def add(self, source: AttachmentSource) -> Element:
        """Register ``source``; returns the element that stands for its
        octets in Properties (``Part`` or a ``Data`` placeholder)."""
        self.sources.append(source)
        index = len(self.sources)
        if self.multipart:
            return Element(NS + "Part", str(index))
        return Element(NS + "Data", _marker(index))


def _marker(index: int) -> str:
    return f"\ue000easyncd-stream-{index}\ue001"


def streamed_response(ctx: CommandContext, root: Element, parts: ResponseParts,
                      status: str) -> CommandResponse:
    """The CommandResponse of an ItemOperations answer with attachments:
    inline base64 Data or multipart, streamed with an exact length."""
    wbxml = encode(root)
    sources = list(parts.sources)
    if parts.multipart:
        lengths = [len(wbxml)] + [s.length for s in sources]
        header = struct.pack("<i", len(lengths))
        offset = 4 + 8 * len(lengths)
        for length in lengths:
            header += struct.pack("<ii", offset, length)
            offset += length

        async def run_multipart(write: WriteFn) -> None:
            await _call(write, header + wbxml)
            for source in sources:
                await stream_attachment(ctx, source, write)

        return CommandResponse(body=root, status=status, headers={"Content-Type": MULTIPART_TYPE},
                               stream=lambda write: Deferred.fromCoroutine(run_multipart(write)),
                               stream_length=offset)
    pieces: list[bytes] = []
    rest = wbxml
    for index in range(1, len(sources) + 1):
        before, sep, rest = rest.partition(_marker(index).encode("utf-8"))
        if not sep:
            raise ValueError("stream placeholder lost in the WBXML")
        pieces.append(before)
    pieces.append(rest)
    total = sum(len(p) for p in pieces) + sum(base64_length(s.length) for s in sources)

    async def run_inline(write: WriteFn) -> None:
        for piece, source in zip(pieces, sources):
            await _call(write, piece)
            encoder = _Base64Writer(write)
            await stream_attachment(ctx, source, encoder)
            await encoder.close()
        await _call(write, pieces[-1])

    return CommandResponse(body=root, status=status,
                           headers={"Content-Type": "application/vnd.ms-sync.wbxml"},
                           stream=lambda write: Deferred.fromCoroutine(run_inline(write)),
                           stream_length=total)


async def collect(response: CommandResponse) -> bytes:
    """The whole streamed body (tests and small answers only)."""
    if response.stream is None:
        return response.raw_body or b""
    out: list[bytes] = []
    result = response.stream(out.append)
    if inspect.isawaitable(result):
        await result
    return b"".join(out)


# -- ItemOperations Fetch -------------------------------------------------------------------

def _status_first(answer: Element, code: FetchStatus) -> Element:
    answer.children.insert(0, Element(NS + "Status", str(int(code))))
    return answer


async def fetch(ctx: CommandContext, operation: Element, parts: ResponseParts) -> Element | None:
    """The answer to a Fetch (Store Mailbox) if it is about mail, None when it
    is not (a groupware item): FileReference, LongId, or a ServerId in a mail
    folder."""
    if mail_backend(ctx) is None:
        return None
    reference = operation.findtext(BASE + "FileReference")
    if reference is not None:
        return await _fetch_attachment(ctx, operation, reference.strip(), parts)
    long_id = operation.findtext(SEARCH + "LongId")
    if long_id is not None:
        answer = Element(NS + "Fetch")
        answer.add(SEARCH + "LongId", long_id)
        found = split_long_id(long_id.strip())
        if found is None or not found[1].isdigit() or not await _is_mail_folder(ctx, found[0]):
            return _status_first(answer, FetchStatus.NotFound)
        return await _fetch_item(ctx, operation, answer, found[0], int(found[1]))
    server_id = (operation.findtext(AIRSYNC + "ServerId") or "").strip()
    collection_id = operation.findtext(AIRSYNC + "CollectionId")
    parts_of_id = split_server_id(server_id)
    if parts_of_id is None:
        return None
    folder_id = collection_id.strip() if collection_id else parts_of_id[0]
    if not await _is_mail_folder(ctx, folder_id):
        return None
    answer = Element(NS + "Fetch")
    answer.add(AIRSYNC + "CollectionId", folder_id)
    answer.add(AIRSYNC + "ServerId", server_id)
    if parts_of_id[0] != folder_id or not parts_of_id[1].isdigit():
        return _status_first(answer, FetchStatus.NotFound)
    return await _fetch_item(ctx, operation, answer, folder_id, int(parts_of_id[1]))


async def _fetch_item(ctx: CommandContext, operation: Element, answer: Element,
                      folder_id: str, uid: int) -> Element:
    from easyncd.protocol.mailsearch import QueryError, fetch_views, render_options

    target = await mail_folder(ctx, folder_id)
    if target is None:
        return _status_first(answer, FetchStatus.NotFound)
    options = operation.find(NS + "Options")
    try:
        render = render_options(options)
    except QueryError:
        return _status_first(answer, FetchStatus.ProtocolError)
    clock: Any = ctx.clock
    cctx = CodecContext(protocol_version=ctx.request.protocol_version,
                        body_preferences=render.body_preferences, now=float(clock.seconds()))
    user, password = _creds(ctx)
    try:
        views = await fetch_views(mail_backend(ctx), user, password, target.mailbox, [uid],
                                  cctx, render)
    except NoSuchMailbox:
        return _status_first(answer, FetchStatus.NotFound)
    except MailError as exc:
        ctx.log.warn("ItemOperations: fetching {uid} of {mailbox} for {user} failed: {error}",
                     uid=uid, mailbox=target.mailbox, user=user, error=str(exc))
        return _status_first(answer, FetchStatus.ServerError)
    view = views.get(uid)
    if view is None or view.has_flag("\\Deleted"):
        return _status_first(answer, FetchStatus.NotFound)
    try:
        data = email_to_eas(view, cctx, folder_server_id=target.folder.server_id,
                            mime_support=render.mime_support,
                            body_part_preferences=render.body_part_preferences)
    except CodecError as exc:
        ctx.log.warn("ItemOperations: message {uid} of {mailbox} cannot be converted: {error}",
                     uid=uid, mailbox=target.mailbox, error=str(exc))
        return _status_first(answer, FetchStatus.ConversionFailed)
    answer.add(AIRSYNC + "Class", "Email")
    answer.append(Element(NS + "Properties", children=data.children))
    return _status_first(answer, FetchStatus.Success)


async def _fetch_attachment(ctx: CommandContext, operation: Element, reference: str,
                            parts: ResponseParts) -> Element:
    answer = Element(NS + "Fetch")
    answer.add(BASE + "FileReference", reference)
    options = operation.find(NS + "Options")
    byte_range = options.findtext(NS + "Range") if options is not None else None
    try:
        source = await prepare_attachment(ctx, reference, byte_range)
    except AttachmentProblem as problem:
        if problem.status == FetchStatus.ServerError:
            ctx.log.warn("ItemOperations: attachment {reference} of {user}: {error}",
                         reference=reference, user=ctx.request.account, error=str(problem))
        return _status_first(answer, problem.status)
    except MailError as exc:
        ctx.log.warn("ItemOperations: attachment {reference} of {user}: {error}",
                     reference=reference, user=ctx.request.account, error=str(exc))
        return _status_first(answer, FetchStatus.ServerError)
    properties = answer.add(NS + "Properties")
    properties.add(BASE + "ContentType", source.content_type)
    if source.ranged:
        properties.add(NS + "Range", f"{source.start}-{max(source.start, source.end)}")
    properties.add(NS + "Total", str(source.total))
    properties.append(parts.add(source))
    return _status_first(answer, FetchStatus.Success)


# -- ItemOperations EmptyFolderContents -----------------------------------------------------

async def empty_folder(ctx: CommandContext, operation: Element) -> Element | None:
    """The answer to EmptyFolderContents of a mail folder, None for others."""
    collection_id = (operation.findtext(AIRSYNC + "CollectionId") or "").strip()
    mail = mail_backend(ctx)
    target = await mail_folder(ctx, collection_id) if mail is not None else None
    if target is None:
        return None
    options = operation.find(NS + "Options")
    delete_subfolders = options is not None and \
        options.find(NS + "DeleteSubFolders") is not None
    user, password = _creds(ctx)
    code = FetchStatus.Success
    try:
        count = await mail.empty(user, password, target.mailbox, delete_subfolders)
        ctx.log.info("ItemOperations: emptied {mailbox} of {user}: {count} messages",
                     mailbox=target.mailbox, user=user, count=count)
        await record_mail_writes(ctx, target.folder.server_id, clear=True)
    except NoSuchMailbox:
        code = FetchStatus.NotFound
    except MailError as exc:
        ctx.log.warn("ItemOperations: emptying {mailbox} of {user} failed: {error}",
                     mailbox=target.mailbox, user=user, error=str(exc))
        code = FetchStatus.ServerError
    answer = Element(NS + "EmptyFolderContents")
    answer.add(NS + "Status", str(int(code)))
    answer.add(AIRSYNC + "CollectionId", collection_id)
    return answer


# -- ItemOperations Move (conversation) ----------------------------------------------------

async def move_conversation(ctx: CommandContext, operation: Element) -> Element | None:
    """The answer to a conversation Move whose destination is a mail folder,
    None when the destination is not one (the caller answers)."""
    conversation = operation.find(NS + "ConversationId")
    destination = (operation.findtext(NS + "DstFldId") or "").strip()
    mail = mail_backend(ctx)
    target = await mail_folder(ctx, destination) if mail is not None else None
    if target is None or conversation is None or conversation.text is None:
        return None
    wanted = conversation.text if isinstance(conversation.text, bytes) else \
        _conversation_bytes(conversation.text)
    answer = Element(NS + "Move")
    code = FetchStatus.Success
    try:
        moved = await _move_conversation(ctx, mail, wanted, target)
        if not moved:
            code = FetchStatus.NotFound
    except MailError as exc:
        ctx.log.warn("ItemOperations: moving a conversation for {user} failed: {error}",
                     user=ctx.request.account, error=str(exc))
        code = FetchStatus.ServerError
    answer.add(NS + "Status", str(int(code)))
    answer.add(NS + "ConversationId", conversation.text)
    return answer


def _conversation_bytes(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text.encode("latin-1", "replace")


async def _move_conversation(ctx: CommandContext, mail: Any, wanted: bytes,
                             target: MailTarget) -> int:
    store: Any = ctx.store
    user, password = _creds(ctx)
    folders: Iterable[Folder] = await store.list_folders(ctx.request.account)
    moved = 0
    for folder in folders:
        if not folder.backend_id.startswith(MAIL_PREFIX) or \
                folder.server_id == target.folder.server_id or \
                folder.folder_type in _NOT_CONVERSATION_TYPES:
            continue
        mailbox = folder.backend_id[len(MAIL_PREFIX):]
        try:
            changes = await mail.changes(user, password, mailbox, None)
        except NoSuchMailbox:
            continue
        uids = list(changes.state.snapshot.uids())
        if not uids:
            continue
        found = await mail.fetch_messages(user, password, mailbox, uids, [_THREAD_FIELDS])
        members = []
        for message in found:
            raw = next(iter(message.sections.values()), b"")
            headers = parse_headers(raw)
            if conversation_id(headers, headers.text("subject") or "") == wanted:
                members.append(message.uid)
        if not members:
            continue
        mapping = await mail.move(user, password, mailbox, members, target.mailbox)
        moved += len(mapping)
        await _record_move(ctx, mail, folder.server_id, target, mapping)
    return moved


# -- MoveItems ---------------------------------------------------------------------------

async def move_item(ctx: CommandContext, source: str, source_folder: str,
                    destination_folder: str) -> tuple[MoveStatus, str | None] | None:
    """One MoveItems Move whose source folder is a mail folder; None when
    it is not (the groupware branch answers)."""
    mail = mail_backend(ctx)
    src = await mail_folder(ctx, source_folder) if mail is not None else None
    if src is None:
        return None
    parts = split_server_id(source)
    if parts is None or parts[0] != source_folder or not parts[1].isdigit():
        return MoveStatus.InvalidSource, None
    if destination_folder == source_folder:
        return MoveStatus.SameFolder, None
    dst = await mail_folder(ctx, destination_folder)
    if dst is None:
        return MoveStatus.InvalidDestination, None
    uid = int(parts[1])
    user, password = _creds(ctx)
    try:
        mapping = await mail.move(user, password, src.mailbox, [uid], dst.mailbox)
    except NoSuchMailbox:
        try:
            await mail.folder_state(user, password, dst.mailbox)
        except NoSuchMailbox:
            return MoveStatus.InvalidDestination, None
        except MailError:
            return MoveStatus.Failure, None
        return MoveStatus.InvalidSource, None
    except MailError as exc:
        ctx.log.warn("MoveItems: moving {source} for {user} failed: {error}",
                     source=source, user=user, error=str(exc))
        return MoveStatus.Failure, None
    new_uid = mapping.get(uid)
    if new_uid is None:
        return MoveStatus.InvalidSource, None
    await _record_move(ctx, mail, src.folder.server_id, dst, mapping)
    return MoveStatus.Success, item_server_id(dst.folder.server_id, str(new_uid))


async def _record_move(ctx: CommandContext, mail: Any, source_folder: str,
                       dst: MailTarget, mapping: Mapping[int, int]) -> None:
    """The device moved these itself: the source state forgets the old UIDs,
    the target's learns the new ones (with the flags the source knew)."""
    if not mapping:
        return
    try:
        flags = await record_mail_writes(ctx, source_folder, removed=list(mapping))
        added = {new: flags.get(old) for old, new in mapping.items()}
        unknown = [uid for uid, value in added.items() if value is None]
        if unknown:
            user, password = _creds(ctx)
            for message in await mail.fetch_messages(user, password, dst.mailbox, unknown,
                                                     ["FLAGS"]):
                added[message.uid] = frozenset(message.flags or ())
        await record_mail_writes(ctx, dst.folder.server_id,
                                 added={uid: f for uid, f in added.items() if f is not None})
    except Exception:
        # The move happened; at worst the device sees it once more.
        ctx.log.failure("Recording the move into {folder} for {device_id} failed",
                        folder=dst.folder.server_id, device_id=ctx.request.device_id)


async def record_mail_writes(ctx: CommandContext, folder_server_id: str, *,
                             added: Mapping[int, frozenset[str]] | None = None,
                             removed: Sequence[int] = (), clear: bool = False
                             ) -> dict[int, frozenset[str]]:
    """Mark, in this device's Sync state of a mail folder, messages the device
    itself added there (``added``: new UID -> flags) or took away
    (``removed``; ``clear``: all of them), so that its next Sync echoes
    neither.  Returns the flags the state knew for ``removed``.  Nothing
    happens when the device has no mail state for the folder yet."""
    store: Any = ctx.store
    req = ctx.request
    for _ in range(_CONFLICT_ATTEMPTS):
        stored = await store.get_sync_state(req.device_id, req.account, folder_server_id)
        if stored is None:
            return {}
        state = MailSyncState.from_text(stored.state)
        if state is None or state.mail is None:
            return {}
        snapshot = state.mail.snapshot
        gone = set(snapshot.uids()) if clear else set(removed)
        known = {uid: flags for uid in gone
                 if (flags := snapshot.flags_of(uid)) is not None}
        new_snapshot = MailboxSnapshot() if clear else \
            snapshot.updated(flags=dict(added or {}), removed=gone)
        if clear and added:
            new_snapshot = new_snapshot.updated(flags=dict(added))
        new_state = state.evolve(
            mail=MailState(state.mail.point, new_snapshot),
            adds=tuple(u for u in state.adds if u not in gone),
            changes=frozenset(u for u in state.changes if u not in gone),
            deletes=tuple(u for u in state.deletes if u not in gone),
        )
        try:
            await store.advance_sync_state(req.device_id, req.account, folder_server_id,
                                           stored.sync_key, stored.sync_key,
                                           new_state.to_text())
        except SyncStateConflict:
            continue
        return known
    ctx.log.warn("Could not mark device writes in mail folder {folder} for {device_id}",
                 folder=folder_server_id, device_id=req.device_id)
    return {}


def content_digest(data: bytes) -> str:
    """A short digest of octets (tests and logs compare attachments by it)."""
    return hashlib.sha256(data).hexdigest()[:16]


__all__ = [
    "AttachmentProblem", "AttachmentSource", "FetchStatus", "MULTIPART_TYPE", "MailTarget",
    "MoveStatus", "ResponseParts", "TransferDecoder", "base64_length", "collect",
    "empty_folder", "fetch", "mail_backend", "mail_folder", "move_conversation", "move_item",
    "parse_byte_range", "prepare_attachment", "record_mail_writes", "stream_attachment",
    "streamed_response",
]
