"""ItemOperations (MS-ASCMD 2.2.1.10, protocol 12.0 and later).

What applies to groupware collections:

* ``Fetch`` of an item by ``CollectionId`` + ``ServerId`` (Store
  ``Mailbox``): the item's properties through the class codec, honouring
  ``Options/BodyPreference`` and (when sent) ``Options/Schema``;
* ``EmptyFolderContents``: every item of the collection is deleted (the
  collections have no sub-folders, so ``DeleteSubFolders`` changes nothing).

What does not, answered with its Status instead of failing the request:
attachment fetches (``FileReference``: 15, there are no attachments here),
search results (``LongId``: 6, nothing found), document libraries (9, store
not supported) and the 14.0+ conversation ``Move`` (6 when the destination
is unknown, 156 when it is not a mail folder: conversations are mail).
"""
from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any

from easyncd.backends.interfaces import EAS_CLASS, NoSuchCollection
from easyncd.protocol import mailitems
from easyncd.protocol.codecs.base import BodyPreference, CodecContext, CodecError, ItemCodec
from easyncd.protocol.collections import (
    GROUPWARE_PREFIX,
    ResolvedCollection,
    resolve_collection,
)
from easyncd.protocol.commands.base import Command
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.serverids import split_server_id
from easyncd.protocol.sync.marks import record_device_writes
from easyncd.protocol.versions import at_least
from easyncd.store.interfaces import NoSuchFolder
from easyncd.wbxml import Element, encode

NS = "ItemOperations:"
AIRSYNC = "AirSync:"
BASE = "AirSyncBase:"

#: The first version with ItemOperations Move (conversations).
MOVE_FROM = "14.0"

#: The Content-Type of a multipart answer (MS-ASCMD 2.2.1.10.1).
MULTIPART_TYPE = "application/vnd.ms-sync.multipart"


class ItemOperationsStatus(IntEnum):
    """ItemOperations Status (MS-ASCMD 2.2.3.177.8), the codes used here."""

    Success = 1
    ProtocolError = 2
    ServerError = 3
    #: The object was not found (or access is denied).
    NotFound = 6
    StoreNotSupported = 9
    ConversionFailed = 14
    InvalidAttachment = 15
    #: ItemOperations Move: the action is not supported for that destination.
    ActionNotSupported = 156


def codec_for(kind: str) -> ItemCodec:
    """The item codec of a groupware kind (imported on first use)."""
    from easyncd.protocol.codecs import CODECS

    return CODECS[kind]


def parse_body_preferences(options: Element | None) -> tuple[BodyPreference, ...]:
    """The AirSyncBase:BodyPreference elements of an Options element."""
    if options is None:
        return ()
    found = []
    for element in options.findall(BASE + "BodyPreference"):
        body_type = _int(element.findtext(BASE + "Type"))
        if body_type is None:
            continue
        found.append(BodyPreference(
            body_type=body_type,
            truncation_size=_int(element.findtext(BASE + "TruncationSize")),
            all_or_none=element.findtext(BASE + "AllOrNone") == "1",
            preview=_int(element.findtext(BASE + "Preview")),
        ))
    return tuple(found)


def _int(text: str | None) -> int | None:
    if text is None or not text.strip().isdigit():
        return None
    return int(text.strip())


class ItemOperationsCommand(Command):
    """``Cmd=ItemOperations``."""

    name = "ItemOperations"

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        """Carry out each operation in order, each with its own Status."""
        operations = body.children if body is not None else []
        if body is None or body.tag != NS + "ItemOperations" or not operations:
            return _top_only(ItemOperationsStatus.ProtocolError)
        version = ctx.request.protocol_version
        root = Element(NS + "ItemOperations")
        root.add(NS + "Status", str(int(ItemOperationsStatus.Success)))
        response = root.add(NS + "Response")
        # Mail attachments are streamed after the WBXML (mail: see mailitems).
        parts = mailitems.ResponseParts(multipart=ctx.request.accept_multipart)
        for operation in operations:
            if operation.tag == NS + "Fetch":
                response.append(await self._fetch(ctx, operation, parts))
            elif operation.tag == NS + "EmptyFolderContents":
                response.append(await self._empty(ctx, operation))
            elif operation.tag == NS + "Move" and at_least(version, MOVE_FROM):
                response.append(await self._move(ctx, operation))
            else:
                return _top_only(ItemOperationsStatus.ProtocolError)
        status = str(int(ItemOperationsStatus.Success))
        if parts.sources:
            return mailitems.streamed_response(ctx, root, parts, status)
        if ctx.request.accept_multipart:
            # Groupware fetches carry no binary parts: the WBXML is the only part.
            return CommandResponse(body=root, raw_body=multipart([encode(root)]),
                                   headers={"Content-Type": MULTIPART_TYPE}, status=status)
        return CommandResponse(body=root, status=status)

    # -- Fetch ------------------------------------------------------------------------

    async def _fetch(self, ctx: CommandContext, fetch: Element,
                     streams: mailitems.ResponseParts) -> Element:
        store_name = (fetch.findtext(NS + "Store") or "").strip()
        collection_id = fetch.findtext(AIRSYNC + "CollectionId")
        server_id = fetch.findtext(AIRSYNC + "ServerId")
        answer = Element(NS + "Fetch")

        def status(code: ItemOperationsStatus) -> Element:
            answer.children.insert(0, Element(NS + "Status", str(int(code))))
            return answer

        if store_name.lower() != "mailbox":
            if fetch.find("DocumentLibrary:LinkId") is not None:
                answer.add("DocumentLibrary:LinkId", fetch.findtext("DocumentLibrary:LinkId"))
            return status(ItemOperationsStatus.StoreNotSupported)
        mail_answer = await mailitems.fetch(ctx, fetch, streams)
        if mail_answer is not None:
            return mail_answer
        if fetch.find(BASE + "FileReference") is not None:
            answer.add(BASE + "FileReference", fetch.findtext(BASE + "FileReference"))
            return status(ItemOperationsStatus.InvalidAttachment)
        if fetch.find("Search:LongId") is not None:
            answer.add("Search:LongId", fetch.findtext("Search:LongId"))
            return status(ItemOperationsStatus.NotFound)
        if not server_id:
            return status(ItemOperationsStatus.ProtocolError)
        parts = split_server_id(server_id)
        if collection_id is None and parts is not None:
            collection_id = parts[0]
        if collection_id is not None:
            answer.add(AIRSYNC + "CollectionId", collection_id)
        answer.add(AIRSYNC + "ServerId", server_id)
        if collection_id is None or parts is None or parts[0] != collection_id:
            return status(ItemOperationsStatus.NotFound)
        resolved = await resolve_collection(ctx, collection_id)
        groupware: Any = ctx.services.get("groupware")
        if resolved is None or groupware is None:
            return status(ItemOperationsStatus.NotFound)
        try:
            items = await groupware.get_items(ctx.request.account, resolved.collection_id,
                                              [parts[1]])
        except NoSuchCollection:
            return status(ItemOperationsStatus.NotFound)
        if not items:
            return status(ItemOperationsStatus.NotFound)
        options = fetch.find(NS + "Options")
        try:
            properties = self._properties(ctx, resolved, items[0].data, options)
        except CodecError as error:
            ctx.log.warn("ItemOperations: item {server_id} of {user} cannot be converted:"
                         " {error}", server_id=server_id, user=ctx.request.account,
                         error=str(error))
            return status(ItemOperationsStatus.ConversionFailed)
        answer.add(AIRSYNC + "Class", EAS_CLASS[resolved.kind])
        answer.append(properties)
        return status(ItemOperationsStatus.Success)

    def _properties(self, ctx: CommandContext, resolved: ResolvedCollection, data: str,
                    options: Element | None) -> Element:
        clock: Any = ctx.clock
        codec_ctx = CodecContext(
            protocol_version=ctx.request.protocol_version,
            body_preferences=parse_body_preferences(options),
            now=float(clock.seconds()),
        )
        application_data = codec_for(resolved.kind).to_eas(data, codec_ctx)
        children = list(application_data.children)
        schema = options.find(NS + "Schema") if options is not None else None
        if schema is not None and schema.children:
            wanted = {child.tag for child in schema.children}
            children = [c for c in children if c.tag in wanted]
        return Element(NS + "Properties", children=children)

    # -- EmptyFolderContents -------------------------------------------------------------

    async def _empty(self, ctx: CommandContext, operation: Element) -> Element:
        mail_answer = await mailitems.empty_folder(ctx, operation)
        if mail_answer is not None:
            return mail_answer
        collection_id = operation.findtext(AIRSYNC + "CollectionId") or ""
        answer = Element(NS + "EmptyFolderContents")
        code = ItemOperationsStatus.Success
        resolved = await resolve_collection(ctx, collection_id) if collection_id else None
        groupware: Any = ctx.services.get("groupware")
        if not collection_id:
            code = ItemOperationsStatus.ProtocolError
        elif resolved is None or groupware is None:
            code = ItemOperationsStatus.NotFound
        else:
            try:
                # The device emptied its copy: the deletes are marked in its
                # Sync state so that its next Sync does not send them back.
                _, item_ids = await groupware.list_items(ctx.request.account,
                                                         resolved.collection_id)
                count = await groupware.empty_collection(ctx.request.account,
                                                         resolved.collection_id)
                ctx.log.info("ItemOperations: emptied {collection_id} of {user}: {count} items",
                             collection_id=collection_id, user=ctx.request.account,
                             count=count)
                await self._mark_emptied(ctx, resolved.folder.server_id, item_ids)
            except NoSuchCollection:
                code = ItemOperationsStatus.NotFound
            except Exception:
                ctx.log.failure("ItemOperations: emptying {collection_id} of {user} failed",
                                collection_id=collection_id, user=ctx.request.account)
                code = ItemOperationsStatus.ServerError
        answer.add(NS + "Status", str(int(code)))
        if collection_id:
            answer.add(AIRSYNC + "CollectionId", collection_id)
        return answer

    @staticmethod
    async def _mark_emptied(ctx: CommandContext, folder_server_id: str,
                            item_ids: list[str]) -> None:
        try:
            await record_device_writes(ctx, folder_server_id, deleted=[str(i) for i in item_ids])
        except Exception:
            # Emptied all the same; at worst the device gets the deletes.
            ctx.log.failure("ItemOperations: marking {folder} emptied for {device_id} failed",
                            folder=folder_server_id, device_id=ctx.request.device_id)

    # -- Move (conversations) -------------------------------------------------------------

    async def _move(self, ctx: CommandContext, operation: Element) -> Element:
        conversation = operation.find(NS + "ConversationId")
        destination = operation.findtext(NS + "DstFldId")
        answer = Element(NS + "Move")
        mail_answer = await mailitems.move_conversation(ctx, operation)
        if mail_answer is not None:
            return mail_answer
        if conversation is None or not conversation.text or not destination:
            code = ItemOperationsStatus.ProtocolError
        else:
            store: Any = ctx.store
            try:
                folder = await store.get_folder(ctx.request.account, destination)
            except NoSuchFolder:
                folder = None
            if folder is not None and folder.backend_id.startswith(GROUPWARE_PREFIX):
                # Conversations are mail; they cannot go to a groupware folder.
                code = ItemOperationsStatus.ActionNotSupported
            else:
                # No such folder, or no such conversation (no mail backend yet).
                code = ItemOperationsStatus.NotFound
        answer.add(NS + "Status", str(int(code)))
        if conversation is not None:
            answer.add(NS + "ConversationId", conversation.text)
        return answer


def multipart(parts: list[bytes]) -> bytes:
    """A MultiPartResponse (MS-ASCMD 2.2.1.10.1.1): the part count, each
    part's offset and length (32-bit little-endian integers), the parts."""
    header = 4 + 8 * len(parts)
    meta = [struct.pack("<i", len(parts))]
    offset = header
    for part in parts:
        meta.append(struct.pack("<ii", offset, len(part)))
        offset += len(part)
    return b"".join(meta) + b"".join(parts)


def _top_only(code: ItemOperationsStatus) -> CommandResponse:
    root = Element(NS + "ItemOperations")
    root.add(NS + "Status", str(int(code)))
    return CommandResponse(body=root, status=str(int(code)))
