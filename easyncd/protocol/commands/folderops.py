"""FolderCreate, FolderUpdate and FolderDelete (MS-ASCMD 2.2.1.3, 2.2.1.6, 2.2.1.4).

The device changes the hierarchy itself.  Mail folders (backend id
``imap:<mailbox>``) are handled by :mod:`easyncd.protocol.mailfolders`:
Type 12 (or 1) at the top or under a mail folder is an IMAP CREATE, a rename
or move an IMAP RENAME, a delete an IMAP DELETE; Inbox, Drafts, Deleted
Items, Sent Items and Outbox cannot be renamed (2) or deleted (3).
Groupware collections are flat:
folders are created at the top (``ParentId`` 0) only, as a calendar (13),
contacts (14), tasks (15) or notes (17) collection.  The change goes to the
groupware backend and to the folders table.

These commands share the hierarchy sync key with FolderSync: the request's
key must be the current one (otherwise Status 9), and the answer carries the
next key.  The state saved under it is the old
:class:`~easyncd.protocol.commands.foldersync.HierarchyPoint` plus the
revision of this change, so the next FolderSync does not send the device its
own change back, while changes made by others meanwhile still reach it.

A request that repeats the previous key (the device lost our answer and
sends the command again) gets success with the current key if the
hierarchy already is what it asks for; otherwise Status 9.
"""
from __future__ import annotations

from abc import abstractmethod

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from easyncd.backends.interfaces import (
    CollectionExists,
    DefaultCollection,
    NoSuchCollection,
)
from easyncd.protocol.collections import GROUPWARE_PREFIX, groupware_backend_id
from easyncd.protocol.commands.base import Command
from easyncd.protocol.commands.foldersync import (
    HierarchyPoint,
    parse_sync_key,
)
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.folders import KIND_OF_USER_TYPE, SPECIAL_TYPES, TOP
from easyncd.protocol.mailfolders import (
    MAIL_FOLDER_TYPES,
    MailFolderResult,
    create_mail_folder,
    delete_mail_folder,
    is_mail_folder,
    update_mail_folder,
)
from easyncd.store.interfaces import (
    HIERARCHY,
    Folder,
    FolderExists,
    NoSuchFolder,
    SyncState,
    SyncStateConflict,
)
from easyncd.wbxml import Element

NS = "FolderHierarchy:"


class FolderOpStatus(IntEnum):
    """Status of FolderCreate / FolderUpdate / FolderDelete (MS-ASCMD
    2.2.3.177.3, .177.6, .177.4).  Not every code exists for every command:
    Create has no 4, Delete has no 2 and no 5."""

    Success = 1
    #: Create/Update: a folder of that name exists; Update: a special folder.
    Exists = 2
    #: Create: the parent is a special folder; Delete/Update: the folder is one.
    SpecialFolder = 3
    #: Update/Delete: the folder does not exist.
    NoSuchFolder = 4
    #: Create/Update: the parent folder does not exist.
    NoSuchParent = 5
    ServerError = 6
    InvalidSyncKey = 9
    BadRequest = 10
    UnknownError = 11


@dataclass(frozen=True)
class _KeyCheck:
    """The hierarchy state a folder command runs against."""

    state: SyncState
    point: HierarchyPoint
    #: The request repeated the previous key (a retry).
    retry: bool


class _FolderCommand(Command):
    """What the three folder commands share: the key, the answer, the backend."""

    #: The request's and response's top element, without namespace.
    top = ""

    def answer(self, status: FolderOpStatus, sync_key: int | None = None,
               server_id: str | None = None) -> CommandResponse:
        """The response: Status, then SyncKey and ServerId when given."""
        root = Element(NS + self.top)
        root.add(NS + "Status", str(int(status)))
        if sync_key is not None:
            root.add(NS + "SyncKey", str(sync_key))
        if server_id is not None:
            root.add(NS + "ServerId", server_id)
        return CommandResponse(body=root, status=str(int(status)))

    async def check_key(self, ctx: CommandContext, text: str | None) -> _KeyCheck | None:
        """The state behind the request's key, or None (Status 9)."""
        key = parse_sync_key(text)
        if key is None or key == 0:
            return None
        store: Any = ctx.store
        state: SyncState | None = await store.get_sync_state(
            ctx.request.device_id, ctx.request.account, HIERARCHY
        )
        if state is None:
            return None
        point = HierarchyPoint.decode(state.state)
        if point is None:
            return None
        if key == state.sync_key:
            return _KeyCheck(state, point, retry=False)
        if key == state.previous_key:
            return _KeyCheck(state, point, retry=True)
        return None

    async def advance(self, ctx: CommandContext, check: _KeyCheck,
                      own_revision: int | None) -> int | None:
        """Save the next key (with the device's own change left out of its
        FolderSync); the new key, or None if another request moved the key
        meanwhile."""
        store: Any = ctx.store
        point = check.point
        if own_revision is not None:
            point = point.with_own_change(own_revision)
        new_key = check.state.sync_key + 1
        try:
            await store.advance_sync_state(
                ctx.request.device_id, ctx.request.account, HIERARCHY,
                check.state.sync_key, new_key, point.encode(),
            )
        except SyncStateConflict:
            ctx.log.warn(
                "{command}: concurrent hierarchy change for {device_id}/{user}",
                command=self.name, device_id=ctx.request.device_id, user=ctx.request.account,
            )
            return None
        return new_key

    async def revision(self, ctx: CommandContext) -> int:
        """The user's hierarchy revision now."""
        store: Any = ctx.store
        return int(await store.folder_revision(ctx.request.account))

    def own_revision(self, ctx: CommandContext, before: int, after: int) -> int | None:
        """The revision of this command's change, if no other change slipped
        in between (then the device may see its own change again)."""
        if after == before + 1:
            return after
        ctx.log.info(
            "{command}: hierarchy of {user} moved by {delta} revisions meanwhile",
            command=self.name, user=ctx.request.account, delta=after - before,
        )
        return None

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        """Check the request shape and the key, then :meth:`perform`."""
        if body is None or body.tag != NS + self.top:
            return self.answer(FolderOpStatus.BadRequest)
        key_text = body.findtext(NS + "SyncKey")
        if key_text is None:
            return self.answer(FolderOpStatus.BadRequest)
        check = await self.check_key(ctx, key_text)
        if check is None:
            ctx.log.info(
                "{command}: unknown sync key from {device_id} for {user}",
                command=self.name, device_id=ctx.request.device_id, user=ctx.request.account,
            )
            return self.answer(FolderOpStatus.InvalidSyncKey)
        groupware = ctx.services.get("groupware")
        if groupware is None and ctx.services.get("mail") is None:
            ctx.log.error("{command}: no groupware backend configured", command=self.name)
            return self.answer(FolderOpStatus.ServerError)
        return await self.perform(ctx, body, check, groupware)

    async def mail_answer(self, ctx: CommandContext, check: _KeyCheck,
                          result: MailFolderResult) -> CommandResponse:
        """The answer to a mail folder command (see easyncd.protocol.mailfolders)."""
        if result.status != FolderOpStatus.Success:
            return self.answer(FolderOpStatus(result.status))
        new_key = await self.advance(ctx, check, result.own_revision)
        if new_key is None:
            return self.answer(FolderOpStatus.ServerError)
        server_id = result.folder.server_id if self.top == "FolderCreate" and result.folder else None
        return self.answer(FolderOpStatus.Success, new_key, server_id)

    def no_groupware(self, ctx: CommandContext) -> CommandResponse:
        """Status 6 for a groupware folder command without a groupware backend."""
        ctx.log.error("{command}: no groupware backend configured", command=self.name)
        return self.answer(FolderOpStatus.ServerError)

    @abstractmethod
    async def perform(self, ctx: CommandContext, body: Element, check: _KeyCheck,
                      groupware: Any) -> CommandResponse:
        """Carry the command out (the key is valid)."""

    async def folders(self, ctx: CommandContext) -> list[Folder]:
        """The user's live folders."""
        store: Any = ctx.store
        return list(await store.list_folders(ctx.request.account))


def _collection_id(folder: Folder) -> str | None:
    if not folder.backend_id.startswith(GROUPWARE_PREFIX):
        return None
    return folder.backend_id[len(GROUPWARE_PREFIX):]


def _find(folders: list[Folder], server_id: str | None) -> Folder | None:
    return next((f for f in folders if f.server_id == server_id), None)


def _sibling(folders: list[Folder], parent_id: str, name: str,
             except_id: str | None = None) -> Folder | None:
    return next((f for f in folders if f.parent_id == parent_id and f.display_name == name
                 and f.server_id != except_id), None)


class FolderCreateCommand(_FolderCommand):
    """``Cmd=FolderCreate``: a new calendar, address book, task list or note folder."""

    name = "FolderCreate"
    top = "FolderCreate"

    async def perform(self, ctx: CommandContext, body: Element, check: _KeyCheck,
                      groupware: Any) -> CommandResponse:
        """Create the collection and its folder."""
        parent_id = body.findtext(NS + "ParentId")
        display_name = (body.findtext(NS + "DisplayName") or "").strip()
        type_text = body.findtext(NS + "Type") or ""
        if parent_id is None or not display_name or not type_text.isdigit():
            return self.answer(FolderOpStatus.BadRequest)
        folder_type = int(type_text)
        user = ctx.request.account
        store: Any = ctx.store
        folders = await self.folders(ctx)
        if check.retry:
            done = _sibling(folders, parent_id, display_name)
            if done is not None and done.folder_type == folder_type:
                return self.answer(FolderOpStatus.Success, check.state.sync_key, done.server_id)
            return self.answer(FolderOpStatus.InvalidSyncKey)
        mail = ctx.services.get("mail")
        if parent_id != TOP:
            parent = _find(folders, parent_id)
            if parent is None:
                return self.answer(FolderOpStatus.NoSuchParent)
            if mail is not None and is_mail_folder(parent) and folder_type in MAIL_FOLDER_TYPES:
                return await self.mail_answer(
                    ctx, check, await create_mail_folder(ctx, mail, parent, display_name))
            # Groupware collections are flat: no folder takes sub-folders.
            return self.answer(FolderOpStatus.SpecialFolder)
        if mail is not None and folder_type in MAIL_FOLDER_TYPES:
            return await self.mail_answer(
                ctx, check, await create_mail_folder(ctx, mail, None, display_name))
        if groupware is None:
            return self.no_groupware(ctx)
        kind = KIND_OF_USER_TYPE.get(folder_type)
        if kind is None:
            ctx.log.info("FolderCreate: unsupported folder type {type} from {device_id}",
                         type=folder_type, device_id=ctx.request.device_id)
            return self.answer(FolderOpStatus.BadRequest)
        if _sibling(folders, TOP, display_name) is not None:
            return self.answer(FolderOpStatus.Exists)
        try:
            collection = await groupware.create_collection(user, kind, display_name)
        except CollectionExists:
            return self.answer(FolderOpStatus.Exists)
        backend_id = groupware_backend_id(collection.collection_id)
        before = await self.revision(ctx)
        own: int | None
        try:
            folder = await store.add_folder(user, TOP, display_name, folder_type, backend_id)
            own = self.own_revision(ctx, before, await self.revision(ctx))
        except FolderExists:
            # A concurrent FolderSync showed the new collection already.
            found = next((f for f in await self.folders(ctx) if f.backend_id == backend_id),
                         None)
            if found is None:
                await groupware.delete_collection(user, collection.collection_id)
                return self.answer(FolderOpStatus.Exists)
            folder, own = found, None
        new_key = await self.advance(ctx, check, own)
        if new_key is None:
            return self.answer(FolderOpStatus.ServerError)
        ctx.log.info("FolderCreate: {user} created {kind} {server_id} from {device_id}",
                     user=user, kind=kind, server_id=folder.server_id,
                     device_id=ctx.request.device_id)
        return self.answer(FolderOpStatus.Success, new_key, folder.server_id)


class FolderUpdateCommand(_FolderCommand):
    """``Cmd=FolderUpdate``: rename a folder (moving is not possible: flat)."""

    name = "FolderUpdate"
    top = "FolderUpdate"

    async def perform(self, ctx: CommandContext, body: Element, check: _KeyCheck,
                      groupware: Any) -> CommandResponse:
        """Rename the collection and its folder."""
        server_id = body.findtext(NS + "ServerId")
        parent_id = body.findtext(NS + "ParentId")
        display_name = (body.findtext(NS + "DisplayName") or "").strip()
        if not server_id or parent_id is None or not display_name:
            return self.answer(FolderOpStatus.BadRequest)
        user = ctx.request.account
        store: Any = ctx.store
        folders = await self.folders(ctx)
        folder = _find(folders, server_id)
        if check.retry:
            if folder is not None and folder.display_name == display_name \
                    and folder.parent_id == parent_id:
                return self.answer(FolderOpStatus.Success, check.state.sync_key)
            return self.answer(FolderOpStatus.InvalidSyncKey)
        if folder is None:
            return self.answer(FolderOpStatus.NoSuchFolder)
        mail = ctx.services.get("mail")
        if mail is not None and is_mail_folder(folder):
            new_parent = None
            if parent_id != TOP:
                new_parent = _find(folders, parent_id)
                if new_parent is None:
                    return self.answer(FolderOpStatus.NoSuchParent)
            return await self.mail_answer(
                ctx, check, await update_mail_folder(ctx, mail, folder, new_parent, display_name))
        collection_id = _collection_id(folder)
        if folder.folder_type in SPECIAL_TYPES or collection_id is None:
            return self.answer(FolderOpStatus.Exists)  # "a special folder" shares code 2
        if groupware is None:
            return self.no_groupware(ctx)
        if parent_id != folder.parent_id:
            if parent_id != TOP and _find(folders, parent_id) is None:
                return self.answer(FolderOpStatus.NoSuchParent)
            # Groupware collections are flat; nothing may move under another folder.
            return self.answer(FolderOpStatus.NoSuchParent)
        if _sibling(folders, folder.parent_id, display_name, except_id=server_id) is not None:
            return self.answer(FolderOpStatus.Exists)
        own: int | None = None
        if display_name != folder.display_name:
            try:
                await groupware.rename_collection(user, collection_id, display_name)
            except CollectionExists:
                return self.answer(FolderOpStatus.Exists)
            except NoSuchCollection:
                return self.answer(FolderOpStatus.NoSuchFolder)
            before = await self.revision(ctx)
            try:
                await store.update_folder(user, server_id, display_name, folder.parent_id)
            except FolderExists:
                await groupware.rename_collection(user, collection_id, folder.display_name)
                return self.answer(FolderOpStatus.Exists)
            except NoSuchFolder:
                return self.answer(FolderOpStatus.NoSuchFolder)
            own = self.own_revision(ctx, before, await self.revision(ctx))
        new_key = await self.advance(ctx, check, own)
        if new_key is None:
            return self.answer(FolderOpStatus.ServerError)
        return self.answer(FolderOpStatus.Success, new_key)


class FolderDeleteCommand(_FolderCommand):
    """``Cmd=FolderDelete``: delete a collection and everything in it."""

    name = "FolderDelete"
    top = "FolderDelete"

    async def perform(self, ctx: CommandContext, body: Element, check: _KeyCheck,
                      groupware: Any) -> CommandResponse:
        """Delete the collection and its folder."""
        server_id = body.findtext(NS + "ServerId")
        if not server_id:
            return self.answer(FolderOpStatus.BadRequest)
        user = ctx.request.account
        store: Any = ctx.store
        folders = await self.folders(ctx)
        folder = _find(folders, server_id)
        if check.retry:
            if folder is None:
                return self.answer(FolderOpStatus.Success, check.state.sync_key)
            return self.answer(FolderOpStatus.InvalidSyncKey)
        if folder is None:
            return self.answer(FolderOpStatus.NoSuchFolder)
        mail = ctx.services.get("mail")
        if mail is not None and is_mail_folder(folder):
            return await self.mail_answer(ctx, check, await delete_mail_folder(ctx, mail, folder))
        collection_id = _collection_id(folder)
        if folder.folder_type in SPECIAL_TYPES or collection_id is None:
            return self.answer(FolderOpStatus.SpecialFolder)
        if groupware is None:
            return self.no_groupware(ctx)
        try:
            await groupware.delete_collection(user, collection_id)
        except DefaultCollection:
            return self.answer(FolderOpStatus.SpecialFolder)
        except NoSuchCollection:
            pass  # already gone on the server: the folder goes too
        before = await self.revision(ctx)
        try:
            await store.delete_folder(user, server_id)
        except NoSuchFolder:
            return self.answer(FolderOpStatus.NoSuchFolder)
        own = self.own_revision(ctx, before, await self.revision(ctx))
        new_key = await self.advance(ctx, check, own)
        if new_key is None:
            return self.answer(FolderOpStatus.ServerError)
        ctx.log.info("FolderDelete: {user} deleted {server_id} from {device_id}",
                     user=user, server_id=server_id, device_id=ctx.request.device_id)
        return self.answer(FolderOpStatus.Success, new_key)
