"""Ping (MS-ASCMD 2.2.1.13): wait until one of some folders changes.

The device names folders (``Ping/Folders/Folder/Id``) and a heartbeat
(``Ping/HeartbeatInterval``, seconds).  The answer is Status 2 with the folders
that changed as soon as one does, or Status 1 when the heartbeat expires.

Parameters.  A request may leave out the folders, the heartbeat or both (an
empty body): the missing ones are those of the account's last Ping, cached in
the state store as the sync state of the reserved collection
:data:`PING_STATE` (JSON ``{"heartbeat": int, "folders": [[id, class], ...]}``,
replaced with ``advance_sync_state(from_key=None)`` only when it changes, so
repeated empty Pings write nothing).  Nothing cached -> Status 3.  A FolderSync
with key 0 drops every sync state of the account, this cache included.

Limits: the heartbeat must lie in [:data:`MIN_HEARTBEAT`, :data:`MAX_HEARTBEAT`]
(60 s, Exchange's minimum, to 3540 s, the spec's maximum) or the answer is
Status 5 with the violated limit; at most :data:`MAX_FOLDERS` folders or
Status 6 with MaxFolders.

Topics.  Every folder's ``backend_id`` is its push topic, whatever the backend
(``groupware:<collection id>`` now, ``imap:<mailbox>`` later); only a folder
the user does not have gives Status 7 (hierarchy sync required), as does a
groupware folder whose collection is gone from the backend.

Pending changes.  Before waiting, :func:`check_pending` compares each
groupware collection's current revision (``watch_revisions``) with the one the
device's Sync state stands for (:func:`device_behind`); if any is
behind, the answer is Status 2 at once.  Otherwise the device is up to date
with the revisions just read, and the hub wait is given them as ``known``:
the hub's polling then wakes the request for any change committed after that
read -- by this process or another (``easyncd-admin``, another node) -- within
one poll interval, however the change and the wait interleave.  A first hub
waiter, registered *before* the check and swapped for the one with ``known``
after it, catches this process's notifications meanwhile at once.

Waiting holds no store transaction (each store call is its own); cancelling
the command's Deferred (the client went away) cancels the hub's wait, which
removes the waiter.  The HTTP layer needs nothing special: it already returns
``NOT_DONE_YET`` and cancels on disconnect, and Twisted's HTTPChannel
switches its idle timeout off while a request is being handled.  (A reverse
proxy in front must allow reads longer than :data:`MAX_HEARTBEAT`.)
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Iterable, Sequence

from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure

from easyncd.protocol.collections import GROUPWARE_PREFIX
from easyncd.protocol.commands.base import Command
from easyncd.protocol.commands.foldersync import ensure_account
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.mailfolders import MAIL_PREFIX, mailbox_of
from easyncd.protocol.mailpush import mail_pending_topics, watch_mail
from easyncd.protocol.sync.state import CollectionState
from easyncd.store.interfaces import Folder
from easyncd.wbxml import Element

NS = "Ping:"

#: The reserved collection id under which the last Ping's parameters are kept.
PING_STATE = "_ping"
#: The sync key of the cached parameters (there is only ever one).
_PING_STATE_KEY = 1

#: Shortest heartbeat accepted, in seconds (the spec lets the server choose;
#: Exchange uses 60).
MIN_HEARTBEAT = 60
#: Longest heartbeat accepted, in seconds (MS-ASCMD: 3540, 59 minutes).
MAX_HEARTBEAT = 3540
#: Most folders one Ping may watch (Status 6 beyond, with this as MaxFolders).
#: A constant for now; a config option when Ping for mail needs it.
MAX_FOLDERS = 300



class PingStatus(IntEnum):
    """MS-ASCMD 2.2.3.177.10, Ping Status (the same in every protocol version)."""

    Expired = 1
    Changes = 2
    MissingParameters = 3
    SyntaxError = 4
    InvalidHeartbeat = 5
    TooManyFolders = 6
    HierarchySyncRequired = 7
    ServerError = 8


class PingSyntaxError(ValueError):
    """The request body is not a well-formed Ping (Status 4)."""


class StaleFolders(Exception):
    """Folders whose backend collection no longer exists (Status 7)."""

    def __init__(self, server_ids: Iterable[str]) -> None:
        self.server_ids = tuple(server_ids)
        super().__init__(", ".join(self.server_ids))


@dataclass(frozen=True)
class PingFolder:
    """One folder of a Ping request: its server id and the Class sent."""

    server_id: str
    folder_class: str | None = None


@dataclass(frozen=True)
class PingParameters:
    """What a Ping request carries; None where the element was left out."""

    heartbeat: int | None = None
    folders: tuple[PingFolder, ...] | None = None


@dataclass(frozen=True)
class WatchedFolder:
    """A folder to watch: its server id, push topic and, for groupware
    folders, the backend collection id (None for other backends)."""

    server_id: str
    topic: str
    collection_id: str | None = None


# -- parsing and the parameter cache ----------------------------------------------


def parse_ping(body: Element | None) -> PingParameters:
    """The parameters of a Ping body (None: an empty Ping).

    Raises :class:`PingSyntaxError` for another root element, a
    HeartbeatInterval that is not a decimal number or a Folder without Id.
    A Folders element without any Folder counts as left out.  Repeated
    folder ids are kept once.
    """
    if body is None:
        return PingParameters()
    if body.tag != NS + "Ping":
        raise PingSyntaxError(f"root element {body.tag}")
    heartbeat: int | None = None
    text = body.findtext(NS + "HeartbeatInterval")
    if text is not None:
        text = text.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 9:
            raise PingSyntaxError("HeartbeatInterval is not a number")
        heartbeat = int(text)
    folders: tuple[PingFolder, ...] | None = None
    found = body.findall(NS + "Folders/" + NS + "Folder")
    if found:
        seen: dict[str, PingFolder] = {}
        for element in found:
            server_id = (element.findtext(NS + "Id") or "").strip()
            if not server_id:
                raise PingSyntaxError("Folder without Id")
            if server_id not in seen:
                seen[server_id] = PingFolder(server_id, element.findtext(NS + "Class"))
        folders = tuple(seen.values())
    return PingParameters(heartbeat, folders)


def encode_parameters(parameters: PingParameters) -> str:
    """The cache text of (complete) Ping parameters."""
    folders = [[f.server_id, f.folder_class] for f in parameters.folders or ()]
    return json.dumps({"heartbeat": parameters.heartbeat, "folders": folders},
                      separators=(",", ":"))


def decode_parameters(text: str | None) -> PingParameters:
    """Cached parameters from their text; unreadable parts are left out."""
    if not text:
        return PingParameters()
    try:
        data = json.loads(text)
    except ValueError:
        return PingParameters()
    if not isinstance(data, dict):
        return PingParameters()
    heartbeat = data.get("heartbeat")
    if not isinstance(heartbeat, int) or isinstance(heartbeat, bool):
        heartbeat = None
    folders: tuple[PingFolder, ...] | None = None
    raw = data.get("folders")
    if isinstance(raw, list) and raw:
        try:
            folders = tuple(PingFolder(str(sid), None if cls is None else str(cls))
                            for sid, cls in raw)
        except (TypeError, ValueError):
            folders = None
    return PingParameters(heartbeat, folders)


async def load_cached_parameters(ctx: CommandContext) -> PingParameters:
    """The parameters of the account's last accepted Ping (parts may be None)."""
    store: Any = ctx.store
    req = ctx.request
    state = await store.get_sync_state(req.device_id, req.account, PING_STATE)
    return decode_parameters(state.state if state is not None else None)


async def save_parameters(ctx: CommandContext, parameters: PingParameters) -> None:
    """Replace the cached parameters of the account."""
    await ensure_account(ctx)
    store: Any = ctx.store
    req = ctx.request
    await store.advance_sync_state(req.device_id, req.account, PING_STATE, None,
                                   _PING_STATE_KEY, encode_parameters(parameters))


# -- folders, topics, pending changes -----------------------------------------------


def watched_folder(folder: Folder) -> WatchedFolder:
    """How a folder is watched: its backend_id is its topic (any backend)."""
    collection_id = None
    if folder.backend_id.startswith(GROUPWARE_PREFIX):
        collection_id = folder.backend_id[len(GROUPWARE_PREFIX):]
    return WatchedFolder(folder.server_id, folder.backend_id, collection_id)


async def watched_folders(
    ctx: CommandContext, folders: Sequence[PingFolder]
) -> tuple[list[WatchedFolder], list[str]]:
    """The folders to watch, in request order, and the server ids the user
    does not have.  One store read (the user's folder list), not one per
    folder."""
    store: Any = ctx.store
    live: list[Folder] = await store.list_folders(ctx.request.account)
    by_id = {f.server_id: f for f in live}
    watched: list[WatchedFolder] = []
    unknown: list[str] = []
    for folder in folders:
        found = by_id.get(folder.server_id)
        if found is None:
            unknown.append(folder.server_id)
        else:
            watched.append(watched_folder(found))
    return watched, unknown


def device_behind(state_text: str | None, current: int) -> bool:
    """Whether a collection whose backend revision is ``current`` has changes
    the device has not got, by its Sync state (:class:`CollectionState`):

    * changes left over from a MoreAvailable window (``pending``): yes;
    * ``current`` above the state's ``rev``: yes, unless every revision in
      between is one the device made itself (``own``; its deletes carry no
      revision, so after one the device may be woken once for nothing);
    * no state or an unreadable one (the device never synced it): no.
    """
    state = CollectionState.from_text(state_text)
    if state is None:
        return False
    if state.pending:
        return True
    gap = current - state.rev
    if gap <= 0:
        return False
    if gap > len(state.own):
        return True
    own = {rev for rev in state.own.values() if rev > state.rev}
    return not all(rev in own for rev in range(state.rev + 1, current + 1))


@dataclass(frozen=True)
class PendingCheck:
    """What :func:`check_pending` found: the topics with changes the device
    has not synced, and for the other groupware topics the backend revision
    the device is up to date with (the hub wait's ``known``)."""

    pending: frozenset[str]
    known: dict[str, int]


async def check_pending(ctx: CommandContext, folders: Sequence[WatchedFolder]) -> PendingCheck:
    """Which topics of ``folders`` have changes the device has not synced yet:
    the groupware ones (:func:`check_groupware_pending`), then, if none, the
    mail ones (``imap:`` topics, :func:`easyncd.protocol.mailpush.mail_pending_topics`:
    the mailbox's STATUS against the point of the device's mail Sync state).
    Raises :class:`StaleFolders` for folders whose collection or mailbox is gone.
    """
    check = await check_groupware_pending(ctx, folders)
    if check.pending:
        return check
    gone: list[str] = []
    mail = await mail_pending_topics(ctx, [(f.server_id, f.topic) for f in folders], gone)
    if gone:
        raise StaleFolders(gone)
    if not mail:
        return check
    return PendingCheck(frozenset(mail), check.known)


async def check_groupware_pending(ctx: CommandContext,
                                  folders: Sequence[WatchedFolder]) -> PendingCheck:
    """Which groupware topics of ``folders`` have changes the device has not synced yet.

    For a groupware folder: the backend's current revision
    (``watch_revisions``, one read for all) against the device's Sync state
    of that folder (sync state ``collection_id`` = the folder's server id),
    as :func:`device_behind` judges.  A folder that is not behind (also one
    never synced: its first Sync sends everything anyway) is up to date with
    the revision read, which goes into ``known``.  Other backends' folders
    are never pending here (the mail issue adds its own check).  Raises
    :class:`StaleFolders` for groupware folders whose collection the backend
    no longer has.
    """
    groupware_folders = [f for f in folders if f.collection_id is not None]
    groupware: Any = ctx.services.get("groupware")
    if not groupware_folders or groupware is None:
        return PendingCheck(frozenset(), {})
    req = ctx.request
    ids = sorted({f.collection_id for f in groupware_folders if f.collection_id is not None})
    current: dict[str, int] = await groupware.watch_revisions(req.account, ids)
    stale = [f.server_id for f in groupware_folders if f.collection_id not in current]
    if stale:
        raise StaleFolders(stale)
    store: Any = ctx.store
    pending: set[str] = set()
    known: dict[str, int] = {}
    for folder in groupware_folders:
        if folder.topic in pending:
            continue
        revision = int(current[folder.collection_id or ""])
        state = await store.get_sync_state(req.device_id, req.account, folder.server_id)
        if device_behind(state.state if state is not None else None, revision):
            pending.add(folder.topic)
            known.pop(folder.topic, None)
        else:
            known[folder.topic] = revision
    return PendingCheck(frozenset(pending), known)


async def pending_topics(ctx: CommandContext, folders: Sequence[WatchedFolder]) -> set[str]:
    """The topics of ``folders`` with changes the device has not synced yet
    (:func:`check_pending` without the revisions)."""
    return set((await check_pending(ctx, folders)).pending)


# -- the command ----------------------------------------------------------------------


class PingCommand(Command):
    """``Cmd=Ping``."""

    name = "Ping"
    needs_body = False

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        """Answer one Ping: at once for errors and pending changes, else when
        a watched folder changes or the heartbeat expires."""
        req = ctx.request
        try:
            asked = parse_ping(body)
        except PingSyntaxError as exc:
            ctx.log.info("Ping: bad request from {device_id} of {user}: {error}",
                         device_id=req.device_id, user=req.account, error=str(exc))
            return _answer(PingStatus.SyntaxError)
        if asked.heartbeat is not None and asked.heartbeat < MIN_HEARTBEAT:
            return _answer(PingStatus.InvalidHeartbeat, heartbeat=MIN_HEARTBEAT)
        if asked.heartbeat is not None and asked.heartbeat > MAX_HEARTBEAT:
            return _answer(PingStatus.InvalidHeartbeat, heartbeat=MAX_HEARTBEAT)
        if asked.folders is not None and len(asked.folders) > MAX_FOLDERS:
            return _answer(PingStatus.TooManyFolders, max_folders=MAX_FOLDERS)

        cached = await load_cached_parameters(ctx)
        parameters = PingParameters(
            asked.heartbeat if asked.heartbeat is not None else cached.heartbeat,
            asked.folders if asked.folders is not None else cached.folders,
        )
        if parameters.heartbeat is None or parameters.folders is None:
            return _answer(PingStatus.MissingParameters)
        if parameters != cached:
            await save_parameters(ctx, parameters)
        heartbeat = parameters.heartbeat

        watched, unknown = await watched_folders(ctx, parameters.folders)
        if unknown:
            ctx.log.info("Ping: unknown folders {folders} from {device_id} of {user}",
                         folders=unknown, device_id=req.device_id, user=req.account)
            return _answer(PingStatus.HierarchySyncRequired)

        push: Any = ctx.services.get("push")
        if push is None:
            ctx.log.error("Ping: no push hub configured")
            return _answer(PingStatus.ServerError)
        topics = frozenset(f.topic for f in watched)
        clock: Any = ctx.clock
        started = clock.seconds()
        # Register first, then look for pending changes: a notification of
        # this process committed in between still wakes us at once.
        early: Deferred[frozenset[str]] = push.wait(req.account, topics, heartbeat)
        fired: list[frozenset[str]] = []

        def record(changed: frozenset[str]) -> frozenset[str]:
            fired.append(changed)
            return changed

        early.addCallback(record)
        try:
            # Mail: the user's IMAP watch (IDLE) notifies the hub from now on.
            mailboxes = [mailbox_of(f.topic) or "" for f in watched
                         if f.topic.startswith(MAIL_PREFIX)]
            if mailboxes:
                await watch_mail(ctx, mailboxes, hold=heartbeat)
            check = await check_pending(ctx, watched)
        except StaleFolders as exc:
            _discard(early)
            ctx.log.info("Ping: collections gone for folders {folders} of {user}",
                         folders=list(exc.server_ids), user=req.account)
            return _answer(PingStatus.HierarchySyncRequired)
        except BaseException:
            _discard(early)
            raise
        if check.pending:
            _discard(early)
            return _answer(PingStatus.Changes, changed=_changed_ids(watched, check.pending))
        if fired:
            changed_topics = fired[0]
        else:
            # Swap for a waiter that knows what the device has: the hub's
            # polling then reports any change after the check, whenever it
            # landed (this process's or another's).
            _discard(early)
            remaining = max(0.0, heartbeat - (clock.seconds() - started))
            ctx.log.debug("Ping: {device_id} of {user} waits {heartbeat}s on {count} folders",
                          device_id=req.device_id, user=req.account, heartbeat=heartbeat,
                          count=len(watched))
            changed_topics = await push.wait(req.account, topics, remaining,
                                             known=check.known)
        changed = _changed_ids(watched, changed_topics)
        if not changed:
            return _answer(PingStatus.Expired)
        return _answer(PingStatus.Changes, changed=changed)


def _changed_ids(watched: Sequence[WatchedFolder], topics: Iterable[str]) -> list[str]:
    wanted = frozenset(topics)
    return [f.server_id for f in watched if f.topic in wanted]


def _discard(waiting: Deferred[Any]) -> None:
    """Give up a hub wait we no longer need (removes its waiter)."""

    def ignore_cancel(failure: Failure) -> None:
        failure.trap(CancelledError)

    waiting.addErrback(ignore_cancel)
    waiting.cancel()


def _answer(
    status: PingStatus,
    *,
    changed: Sequence[str] = (),
    heartbeat: int | None = None,
    max_folders: int | None = None,
) -> CommandResponse:
    root = Element(NS + "Ping")
    root.add(NS + "Status", str(int(status)))
    if changed:
        folders = root.add(NS + "Folders")
        for server_id in changed:
            folders.add(NS + "Folder", server_id)
    if heartbeat is not None:
        root.add(NS + "HeartbeatInterval", str(heartbeat))
    if max_folders is not None:
        root.add(NS + "MaxFolders", str(max_folders))
    return CommandResponse(body=root, status=str(int(status)))
