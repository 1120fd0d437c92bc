"""MoveItems (MS-ASCMD 2.2.1.12): move items between collections of one class.

Each ``Move`` names the item (``SrcMsgId``, a Sync ServerId
``"<folder server id>:<item id>"``), its folder (``SrcFldId``) and the
destination folder (``DstFldId``).  The groupware backend moves the item (a
delete in one collection, an add in the other, both in its history), and
the answer gives, per move, the item's new ServerId (``DstMsgId``).

The device has moved the item locally already: the delete and the add are
marked in its Sync states of both folders so that its next Sync does not
send them back (:func:`easyncd.protocol.sync.marks.record_device_writes`).
"""
from __future__ import annotations

from enum import IntEnum
from typing import Any

from easyncd.backends.interfaces import NoSuchCollection, NoSuchItem
from easyncd.protocol import mailitems
from easyncd.protocol.collections import resolve_collection
from easyncd.protocol.commands.base import Command
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.serverids import item_server_id, split_server_id
from easyncd.protocol.status import HTTP_BAD_REQUEST, CommonStatus
from easyncd.protocol.sync.marks import record_device_writes
from easyncd.protocol.versions import status_in_body
from easyncd.wbxml import Element

NS = "Move:"


class MoveStatus(IntEnum):
    """MoveItems Status (MS-ASCMD 2.2.3.177.10)."""

    InvalidSource = 1
    InvalidDestination = 2
    Success = 3
    SameFolder = 4
    Failure = 5
    Locked = 7


class MoveItemsCommand(Command):
    """``Cmd=MoveItems``."""

    name = "MoveItems"

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        """Carry out every Move of the request, each with its own Status."""
        moves = body.findall(NS + "Move") if body is not None else []
        if body is None or body.tag != NS + "MoveItems" or not moves:
            if status_in_body(ctx.request.protocol_version):
                root = Element(NS + "MoveItems")
                code = str(int(CommonStatus.InvalidXML))
                root.add(NS + "Status", code)
                return CommandResponse(body=root, status=code)
            return CommandResponse(http_status=HTTP_BAD_REQUEST, status=str(HTTP_BAD_REQUEST))
        root = Element(NS + "MoveItems")
        statuses = []
        for move in moves:
            source = move.findtext(NS + "SrcMsgId") or ""
            status, destination = await self._move(
                ctx, source, move.findtext(NS + "SrcFldId") or "",
                move.findtext(NS + "DstFldId") or "",
            )
            response = root.add(NS + "Response")
            response.add(NS + "SrcMsgId", source)
            response.add(NS + "Status", str(int(status)))
            if destination is not None:
                response.add(NS + "DstMsgId", destination)
            statuses.append(status)
        overall = MoveStatus.Success if all(s == MoveStatus.Success for s in statuses) \
            else statuses[0]
        return CommandResponse(body=root, status=str(int(overall)))

    async def _move(self, ctx: CommandContext, source: str, source_folder: str,
                    destination_folder: str) -> tuple[MoveStatus, str | None]:
        mail = await mailitems.move_item(ctx, source, source_folder, destination_folder)
        if mail is not None:
            # A mail folder (mailitems: IMAP MOVE, the new UID, Sync states marked).
            return MoveStatus(int(mail[0])), mail[1]
        parts = split_server_id(source)
        if parts is None or parts[0] != source_folder:
            return MoveStatus.InvalidSource, None
        src = await resolve_collection(ctx, source_folder)
        if src is None:
            return MoveStatus.InvalidSource, None
        if destination_folder == source_folder:
            return MoveStatus.SameFolder, None
        dst = await resolve_collection(ctx, destination_folder)
        if dst is None or dst.kind != src.kind:
            return MoveStatus.InvalidDestination, None
        groupware: Any = ctx.services.get("groupware")
        if groupware is None:
            ctx.log.error("MoveItems: no groupware backend configured")
            return MoveStatus.Failure, None
        user = ctx.request.account
        try:
            item = await groupware.move_item(user, src.collection_id, parts[1],
                                             dst.collection_id)
        except NoSuchItem:
            return MoveStatus.InvalidSource, None
        except NoSuchCollection:
            # Between resolving and moving, a collection went away.
            return MoveStatus.Failure, None
        except ValueError:
            return MoveStatus.InvalidDestination, None
        except Exception:
            ctx.log.failure("MoveItems: moving {source} for {user} failed",
                            source=source, user=user)
            return MoveStatus.Failure, None
        try:
            await record_device_writes(ctx, src.folder.server_id, deleted=[parts[1]])
            await record_device_writes(ctx, dst.folder.server_id,
                                       written={item.item_id: item.revision})
        except Exception:
            # The move happened; at worst the device hears of it once more.
            ctx.log.failure("MoveItems: marking the move of {source} for {device_id} failed",
                            source=source, device_id=ctx.request.device_id)
        return MoveStatus.Success, item_server_id(dst.folder.server_id, item.item_id)
