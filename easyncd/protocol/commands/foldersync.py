"""FolderSync (MS-ASCMD 2.2.1.5): the folder hierarchy and its sync key.

The hierarchy's sync state (collection :data:`~easyncd.store.interfaces.HIERARCHY`)
holds, under each key, the folder revision that key stands for.  Keys are
decimal numbers on the wire; ``0`` starts over.

* key 0: every sync state of the account is dropped (the collections too),
  the default folders are made if the user never had any, every folder is
  sent as an Add and key 1 is saved;
* the current key K (revision R): the changes since R are sent under K+1;
  with no change the answer keeps K and nothing is written;
* the previous key P: the client lost our last answer, so it gets the same
  answer again (the changes between P's and K's revisions, under K);
* anything else: Status 9, nothing written.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from easyncd.protocol.commands.base import Command
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.folders import DEFAULT_FOLDERS, parents_first, visible_folders
from easyncd.protocol.status import FolderSyncStatus
from easyncd.store.interfaces import (
    HIERARCHY,
    Folder,
    FolderChanges,
    SyncStateConflict,
)
from easyncd.wbxml import Element

NS = "FolderHierarchy:"

# FolderSync Status values (MS-ASCMD 2.2.3.177.5), as the text we send.
STATUS_SUCCESS = str(int(FolderSyncStatus.Success))
STATUS_SERVER_ERROR = str(int(FolderSyncStatus.ServerError))
STATUS_INVALID_SYNC_KEY = str(int(FolderSyncStatus.InvalidSyncKey))
STATUS_BAD_REQUEST = str(int(FolderSyncStatus.IncorrectRequestFormat))

#: The longest sync key we accept (ours are decimal integers well below this).
_MAX_KEY_DIGITS = 18


def parse_sync_key(text: str | None) -> int | None:
    """A sync key as sent: a decimal number without sign or leading zeros
    (``"0"`` itself is fine).  None if it is anything else."""
    if text is None:
        return None
    text = text.strip()
    if not text or len(text) > _MAX_KEY_DIGITS or not text.isascii() or not text.isdigit():
        return None
    if len(text) > 1 and text[0] == "0":
        return None
    return int(text)


@dataclass(frozen=True)
class HierarchyAnswer:
    """What a FolderSync answers with: the key and the changes to send."""

    sync_key: int
    changes: FolderChanges


async def ensure_account(ctx: CommandContext) -> None:
    """Register the device account if the dispatcher found none (devices that
    never provisioned, with provisioning off), so that state has an owner."""
    if ctx.account is not None:
        return
    req = ctx.request
    # zope interfaces: mypy cannot see their methods.
    store: Any = ctx.store
    clock: Any = ctx.clock
    ctx.account = await store.register_account(
        req.device_id, req.account, req.device_type, req.user_agent, clock.seconds()
    )


class FolderSyncCommand(Command):
    """``Cmd=FolderSync``."""

    name = "FolderSync"

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        """Answer one FolderSync request."""
        if body is None or body.tag != NS + "FolderSync":
            return _status_only(STATUS_BAD_REQUEST)
        key_text = body.findtext(NS + "SyncKey")
        if key_text is None:
            return _status_only(STATUS_BAD_REQUEST)
        key = parse_sync_key(key_text)
        if key is None:
            ctx.log.info(
                "FolderSync: unusable sync key from {device_id} for {user}",
                device_id=ctx.request.device_id, user=ctx.request.account,
            )
            return _status_only(STATUS_INVALID_SYNC_KEY)
        if key == 0:
            await ensure_account(ctx)
            answer = await self._start_over(ctx)
        else:
            try:
                found = await self._continue(ctx, key)
            except SyncStateConflict:
                ctx.log.warn(
                    "FolderSync: concurrent hierarchy change for {device_id}/{user}",
                    device_id=ctx.request.device_id, user=ctx.request.account,
                )
                return _status_only(STATUS_SERVER_ERROR)
            if found is None:
                ctx.log.info(
                    "FolderSync: unknown sync key {key} from {device_id} for {user}",
                    key=key, device_id=ctx.request.device_id, user=ctx.request.account,
                )
                return _status_only(STATUS_INVALID_SYNC_KEY)
            answer = found
        return await self._render(ctx, answer)

    async def _start_over(self, ctx: CommandContext) -> HierarchyAnswer:
        store: Any = ctx.store  # a zope interface: mypy cannot see its methods
        req = ctx.request
        user = req.account
        await store.reset_sync_states(req.device_id, user)
        await store.ensure_default_folders(user, DEFAULT_FOLDERS)
        revision = await store.folder_revision(user)
        # Every live folder at ``revision``, consistent with it even if a
        # change lands meanwhile (listing and revision are not one read).
        changes = await store.folder_changes(user, 0, revision)
        await store.advance_sync_state(req.device_id, user, HIERARCHY, None, 1, str(revision))
        return HierarchyAnswer(1, FolderChanges(added=changes.added))

    async def _continue(self, ctx: CommandContext, key: int) -> HierarchyAnswer | None:
        store: Any = ctx.store  # a zope interface: mypy cannot see its methods
        req = ctx.request
        user = req.account
        state = await store.get_sync_state(req.device_id, user, HIERARCHY)
        if state is None:
            return None
        state_rev = _revision(state.state)
        if state_rev is None:
            return None
        if key == state.sync_key:
            current = await store.folder_revision(user)
            if current <= state_rev:
                return HierarchyAnswer(key, FolderChanges())
            changes = await store.folder_changes(user, state_rev, current)
            if not len(changes):
                # Net nothing (a folder added and deleted again); keep the key.
                return HierarchyAnswer(key, FolderChanges())
            await store.advance_sync_state(
                req.device_id, user, HIERARCHY, key, key + 1, str(current)
            )
            return HierarchyAnswer(key + 1, changes)
        if state.previous_key is not None and key == state.previous_key:
            previous_rev = _revision(state.previous_state)
            if previous_rev is None:
                return None
            changes = await store.folder_changes(user, previous_rev, state_rev)
            return HierarchyAnswer(state.sync_key, changes)
        return None

    async def _render(self, ctx: CommandContext, answer: HierarchyAnswer) -> CommandResponse:
        version = ctx.request.protocol_version
        changes = answer.changes
        hierarchy: list[Folder] = []
        if changes.added or changes.changed:
            store: Any = ctx.store
            hierarchy = list(await store.list_folders(ctx.request.account))
        added = parents_first(visible_folders(changes.added, version, hierarchy))
        changed = parents_first(visible_folders(changes.changed, version, hierarchy))
        deleted = sorted(changes.deleted, key=lambda sid: (len(sid), sid))

        root = Element(NS + "FolderSync")
        root.add(NS + "Status", STATUS_SUCCESS)
        root.add(NS + "SyncKey", str(answer.sync_key))
        block = root.add(NS + "Changes")
        block.add(NS + "Count", str(len(added) + len(changed) + len(deleted)))
        # Deletes first (they free names), then Adds (new parents), then Updates
        # (which may move folders under the new parents).
        for server_id in deleted:
            block.add(NS + "Delete").add(NS + "ServerId", server_id)
        for folder in added:
            _folder_element(block.add(NS + "Add"), folder)
        for folder in changed:
            _folder_element(block.add(NS + "Update"), folder)
        return CommandResponse(body=root, status=STATUS_SUCCESS)


def _folder_element(parent: Element, folder: Folder) -> None:
    parent.add(NS + "ServerId", folder.server_id)
    parent.add(NS + "ParentId", folder.parent_id)
    parent.add(NS + "DisplayName", folder.display_name)
    parent.add(NS + "Type", str(folder.folder_type))


def _revision(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _status_only(status: str) -> CommandResponse:
    root = Element(NS + "FolderSync")
    root.add(NS + "Status", status)
    return CommandResponse(body=root, status=status)
