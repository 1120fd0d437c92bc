"""FolderSync (MS-ASCMD 2.2.1.5): the folder hierarchy and its sync key.

The hierarchy's sync state (collection :data:`~easyncd.store.interfaces.HIERARCHY`)
holds, under each key, a :class:`HierarchyPoint`: the folder revision that key
stands for, plus the later revisions the device made itself through
FolderCreate / FolderUpdate / FolderDelete (it knows them already, so they are
never sent back).  Keys are decimal numbers on the wire; ``0`` starts over.

Before the answer to key 0 or to the current key is computed, the folders table is brought in line with the
user's synced groupware collections
(:func:`easyncd.protocol.folders.reconcile_groupware_folders`), so a
collection created, renamed, deleted or (un)synced on the server shows up as
an Add, Update or Delete.

* key 0: every sync state of the account is dropped (the collections too),
  every folder is sent as an Add and key 1 is saved;
* the current key K (revision R): the changes since R are sent under K+1;
  with no change the answer keeps K and nothing is written;
* the previous key P: the client lost our last answer, so it gets the same
  answer again (the changes between P's and K's revisions, under K);
* anything else: Status 9, nothing written.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from easyncd.backends.interfaces import MailError
from easyncd.protocol.commands.base import Command
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.folders import (
    parents_first,
    reconcile_groupware_folders,
    visible_folders,
)
from easyncd.protocol.mailfolders import reconcile_mail_folders
from easyncd.protocol.status import FolderSyncStatus
from easyncd.protocol.synckeys import parse_sync_key
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

@dataclass(frozen=True)
class HierarchyAnswer:
    """What a FolderSync answers with: the key and the changes to send."""

    sync_key: int
    changes: FolderChanges


@dataclass(frozen=True)
class HierarchyPoint:
    """What a hierarchy sync key stands for: the folder ``revision`` the
    device has seen, and the later revisions in ``skipped`` that are the
    device's own folder commands (it knows their outcome already).

    Saved as text: ``"R"`` or ``"R+s1,s2"``.
    """

    revision: int
    skipped: tuple[int, ...] = ()

    def encode(self) -> str:
        """The text saved in the sync state."""
        if not self.skipped:
            return str(self.revision)
        return f"{self.revision}+{','.join(str(r) for r in self.skipped)}"

    @classmethod
    def decode(cls, text: str | None) -> "HierarchyPoint | None":
        """The point saved as ``text``, or None if it is not one."""
        if text is None:
            return None
        head, sep, tail = text.partition("+")
        if sep and not tail:
            return None
        try:
            revision = int(head)
            skipped = tuple(int(part) for part in tail.split(",")) if tail else ()
        except ValueError:
            return None
        return cls(revision, skipped).normalized()

    def normalized(self) -> "HierarchyPoint":
        """The same point with the skipped revisions right after ``revision``
        folded into it (so that a device that is up to date keeps a plain
        revision)."""
        revision = self.revision
        rest = sorted(r for r in set(self.skipped) if r > revision)
        while rest and rest[0] == revision + 1:
            revision = rest.pop(0)
        return HierarchyPoint(revision, tuple(rest))

    def with_own_change(self, revision: int) -> "HierarchyPoint":
        """This point plus a revision the device made itself."""
        return HierarchyPoint(self.revision, self.skipped + (revision,)).normalized()


async def hierarchy_changes(
    store: Any, user: str, since: HierarchyPoint, until: int,
    skipped: Iterable[int] = (),
) -> FolderChanges:
    """The net folder changes in (``since.revision``, ``until``] leaving out
    the revisions the device made itself (``since.skipped`` and ``skipped``).

    The range is cut around the skipped revisions and the pieces merged in
    order: a folder the device created itself is then only reported for what
    happened to it afterwards (an Update or a Delete), never as an Add.
    """
    skip = sorted({r for r in (*since.skipped, *skipped) if since.revision < r <= until})
    if not skip:
        return await store.folder_changes(user, since.revision, until)  # type: ignore[no-any-return]
    pieces: list[tuple[int, int]] = []
    start = since.revision
    for revision in skip:
        if revision - 1 > start:
            pieces.append((start, revision - 1))
        start = revision
    if until > start:
        pieces.append((start, until))
    state: dict[str, tuple[str, Folder]] = {}
    deleted: list[str] = []
    for low, high in pieces:
        piece: FolderChanges = await store.folder_changes(user, low, high)
        for folder in piece.added:
            state[folder.server_id] = ("add", folder)
        for folder in piece.changed:
            kind = state.get(folder.server_id, ("change", folder))[0]
            state[folder.server_id] = (kind, folder)
        for server_id in piece.deleted:
            previous = state.pop(server_id, None)
            if previous is None or previous[0] != "add":
                deleted.append(server_id)
    if not state:
        return FolderChanges(deleted=tuple(deleted))
    # A folder deleted by a skipped revision is gone: nothing more to say about it.
    live = {f.server_id for f in await store.list_folders(user)}
    added = tuple(f for kind, f in state.values() if kind == "add" and f.server_id in live)
    changed = tuple(f for kind, f in state.values() if kind == "change" and f.server_id in live)
    return FolderChanges(added=added, changed=changed, deleted=tuple(deleted))


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


async def reconcile(ctx: CommandContext) -> None:
    """Bring the folders table in line with the user's synced groupware
    collections and (with a mail backend) mailboxes
    (:func:`easyncd.protocol.mailfolders.reconcile_mail_folders`).  An IMAP
    server that fails leaves the mail folders as they were."""
    groupware = ctx.services.get("groupware")
    if groupware is not None:
        await reconcile_groupware_folders(ctx.store, groupware, ctx.request.account, ctx.log)
    mail = ctx.services.get("mail")
    if mail is not None:
        try:
            await reconcile_mail_folders(ctx.store, mail, ctx.request.account,
                                         ctx.password or "", ctx.log)
        except MailError as exc:
            ctx.log.warn("FolderSync: mail folders of {user} not refreshed: {error}",
                         user=ctx.request.account, error=str(exc))


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
        await reconcile(ctx)
        revision = await store.folder_revision(user)
        # Every live folder at ``revision``, consistent with it even if a
        # change lands meanwhile (listing and revision are not one read).
        changes = await store.folder_changes(user, 0, revision)
        await store.advance_sync_state(
            req.device_id, user, HIERARCHY, None, 1, HierarchyPoint(revision).encode()
        )
        return HierarchyAnswer(1, FolderChanges(added=changes.added))

    async def _continue(self, ctx: CommandContext, key: int) -> HierarchyAnswer | None:
        store: Any = ctx.store  # a zope interface: mypy cannot see its methods
        req = ctx.request
        user = req.account
        state = await store.get_sync_state(req.device_id, user, HIERARCHY)
        if state is None:
            return None
        point = HierarchyPoint.decode(state.state)
        if point is None:
            return None
        if key == state.sync_key:
            await reconcile(ctx)
            current = await store.folder_revision(user)
            if current <= point.revision:
                return HierarchyAnswer(key, FolderChanges())
            changes = await hierarchy_changes(store, user, point, current)
            if not len(changes):
                # Net nothing (a folder added and deleted again, or only the
                # device's own changes); keep the key.
                return HierarchyAnswer(key, FolderChanges())
            await store.advance_sync_state(
                req.device_id, user, HIERARCHY, key, key + 1, HierarchyPoint(current).encode()
            )
            return HierarchyAnswer(key + 1, changes)
        if state.previous_key is not None and key == state.previous_key:
            previous = HierarchyPoint.decode(state.previous_state)
            if previous is None:
                return None
            changes = await hierarchy_changes(
                store, user, previous, point.revision, point.skipped
            )
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


def _status_only(status: str) -> CommandResponse:
    root = Element(NS + "FolderSync")
    root.add(NS + "Status", status)
    return CommandResponse(body=root, status=status)
