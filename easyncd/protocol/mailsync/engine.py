"""One mail folder's Sync: check the key, apply the device's commands, find
what changed in the mailbox, send one page, save the new key.

Cost model (the 700 messages/s and 10 ms targets): a Sync with nothing new is
the stored state's decode (cached, :mod:`.snapshot`) plus one ``changes()``
(NOOP + STATUS on the warm session that has the folder selected, else one
SELECT with QRESYNC) and writes nothing; a page is two FETCH round trips for
its messages (see :mod:`.fetch`), never a listing of the folder (only the
first Sync after key 0 lists it, through ``changes(None)``; without CONDSTORE
the listing that finds changes waits until the pending adds are sent).  New
mail goes out newest first (highest UID first); deletes and flag changes
before new mail.

A retry with the previous key gets the same commands again (re-fetched, with
the messages' current content) and the stored Responses; the device's
commands are not run a second time.  A UIDVALIDITY change answers Status 3
for this folder only (and forgets the folder's stored follow-up flags).
Messages older than the FilterType window are not sent; those the device
holds are SoftDeleted as they age out (checked once a day, :mod:`.aging`),
and a FilterType changed under a non-zero key adds / SoftDeletes what the new
window lets in / leaves out.  Follow-up flags (dates, reminder...) the
device sets are kept in the state store (``mail_flags``) and sent back with
the message (:mod:`easyncd.protocol.codecs.emailflag`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Iterable, Mapping, Sequence

from easyncd.backends.interfaces import (
    MailAuthFailed,
    MailBackendUnavailable,
    MailboxSnapshot,
    MailError,
    MailState,
    NoSuchMailbox,
)
from easyncd.protocol.codecs.base import CodecContext
from easyncd.protocol.codecs.emailflag import STATUS_COMPLETE, flag_element, merge_completed
from easyncd.protocol.mailsync.aging import aged_out, aging_due, refilter
from easyncd.protocol.context import CommandContext
from easyncd.protocol.mailsync.apply import Applied, CommandApplier, category_of, uid_of
from easyncd.protocol.mailsync.fetch import PageFetcher
from easyncd.protocol.mailsync.state import (
    OP_ADD,
    OP_CHANGE,
    OP_DELETE,
    OP_SOFT_DELETE,
    MailSyncState,
    StoredResponse,
)
from easyncd.protocol.serverids import item_server_id
from easyncd.protocol.sync.constants import AIRSYNC, SyncStatus
from easyncd.protocol.sync.engine import CollectionResult, OutgoingCommand
from easyncd.protocol.sync.request import CollectionRequest, SyncOptions
from easyncd.protocol.versions import at_least
from easyncd.store.interfaces import Folder, NoSuchFolder, SyncState, SyncStateConflict
from easyncd.wbxml import Element

MAIL_PREFIX = "imap:"
EMAIL_CLASS = "Email"

#: Email FilterType -> days back (1 day .. 1 month; 6/7 accepted as calendar's).
FILTER_DAYS = {1: 1, 2: 3, 3: 7, 4: 14, 5: 31, 6: 92, 7: 183}


def window_start(filter_type: int, now: float) -> datetime | None:
    """The oldest INTERNALDATE a FilterType lets through (None: all)."""
    days = FILTER_DAYS.get(filter_type)
    if days is None:
        return None
    return datetime.fromtimestamp(now, timezone.utc) - timedelta(days=days)


async def mail_folder(ctx: CommandContext, collection_id: str) -> Folder | None:
    """The folder behind a CollectionId when it is a mail folder, else None."""
    store: Any = ctx.store
    try:
        folder: Folder = await store.get_folder(ctx.request.account, collection_id)
    except NoSuchFolder:
        return None
    if not folder.backend_id.startswith(MAIL_PREFIX):
        return None
    return folder


def change_data(flags: frozenset[str], version: str,
                follow_up: Mapping[str, str] | None = None) -> Element:
    """ApplicationData of a server Change: Read, Flag (with the follow-up
    data kept for the message, if any), Categories."""
    low = {f.lower() for f in flags}
    app = Element(AIRSYNC + "ApplicationData")
    app.add("Email:Read", "1" if "\\seen" in low else "0")
    if at_least(version, "12.0"):
        app.append(flag_element("\\flagged" in low, follow_up))
    if at_least(version, "14.0"):
        categories = app.add("Email:Categories")
        for name in sorted({c for c in (category_of(f) for f in flags) if c}):
            categories.add("Email:Category", name)
    return app


def response_element(response: StoredResponse, data: Element | None = None) -> Element:
    """One Responses child."""
    element = Element(AIRSYNC + response.kind)
    if response.kind == "Add":
        element.add(AIRSYNC + "ClientId", response.ref)
        if response.server_id is not None:
            element.add(AIRSYNC + "ServerId", response.server_id)
    else:
        element.add(AIRSYNC + "ServerId", response.ref)
    element.add(AIRSYNC + "Status", str(int(response.status)))
    if data is not None:
        element.append(data)
    return element


@dataclass(frozen=True)
class MailEnv:
    """What the mail collections of one request share."""

    ctx: CommandContext
    backend: Any
    now: float

    @property
    def user(self) -> str:
        """The account."""
        return self.ctx.request.account

    @property
    def password(self) -> str | None:
        """The request's password (never logged)."""
        return self.ctx.password

    @property
    def version(self) -> str:
        """The protocol version."""
        return self.ctx.request.protocol_version

    @property
    def store(self) -> Any:
        """The state store."""
        return self.ctx.store


class MailResult(CollectionResult):
    """A CollectionResult that also knows the mailbox and where it stood (to
    catch mail that arrives before a Wait's watch is in place)."""

    mailbox: str | None = None
    point: Any = None


def _result(creq: CollectionRequest, status: int, key: str, **kwargs: Any) -> MailResult:
    return MailResult(creq.collection_id, status, key, creq.eas_class, **kwargs)


class MailCollectionSync:
    """The sync of one mail folder in one request."""

    def __init__(self, env: MailEnv, creq: CollectionRequest, folder: Folder) -> None:
        self.env = env
        self.creq = creq
        self.folder = folder
        self.mailbox = folder.backend_id[len(MAIL_PREFIX):]
        #: The UIDVALIDITY the follow-up flags are read under (None: unknown).
        self._uidvalidity: int | None = None

    # -- entry points ---------------------------------------------------------------

    async def run(self, budget: int) -> MailResult:
        """Sync the folder sending at most ``budget`` server commands."""
        env, creq = self.env, self.creq
        key = creq.sync_key
        if key is None:
            return _result(creq, SyncStatus.InvalidSyncKey, "0")
        try:
            if key == 0:
                result = await self._start_over()
            else:
                result = await self._continue(key, budget)
        except NoSuchMailbox:
            result = _result(creq, SyncStatus.HierarchyChanged, str(key))
        except SyncStateConflict:
            env.ctx.log.warn("Sync: concurrent sync of {collection} by {device_id}",
                             collection=creq.collection_id, device_id=env.ctx.request.device_id)
            result = _result(creq, SyncStatus.Retry, str(key))
        except MailBackendUnavailable as exc:
            env.ctx.log.warn("Sync: IMAP unavailable for {user}: {error}",
                             user=env.user, error=str(exc))
            result = _result(creq, SyncStatus.Retry, str(key))
        except (MailAuthFailed, MailError) as exc:
            env.ctx.log.warn("Sync: IMAP error on {mailbox} for {user}: {error}",
                             mailbox=self.mailbox, user=env.user, error=str(exc))
            result = _result(creq, SyncStatus.ServerError, str(key))
        result.topic = self.folder.backend_id
        result.mailbox = self.mailbox
        return result

    async def estimate(self) -> tuple[int, int]:
        """GetItemEstimate: (status, count) of what a Sync with the current key
        would send, without writing anything (2 unknown, 3 not primed, 4 wrong key)."""
        env, creq = self.env, self.creq
        key = creq.sync_key
        if key is None:
            return 4, 0
        if key == 0:
            return 3, 0
        stored: SyncState | None = await env.store.get_sync_state(
            env.ctx.request.device_id, env.user, self.folder.server_id)
        if stored is None:
            return 3, 0
        state = MailSyncState.from_text(stored.state)
        if state is None or stored.sync_key != key:
            return 4, 0
        options = creq.options or state.options
        try:
            changes = await env.backend.changes(env.user, env.password, self.mailbox, state.mail,
                                                window_start(options.filter_type, env.now))
        except NoSuchMailbox:
            return 2, 0
        if changes.reset and state.mail is not None:
            return 4, 0
        adds, chg, dels = _merge(state, changes)
        count = len(adds) + len(chg) + len(dels)
        if options.max_items is not None:
            count = min(count, options.max_items)
        return 1, count

    # -- key 0 ----------------------------------------------------------------------

    async def _start_over(self) -> MailResult:
        env, creq = self.env, self.creq
        state = MailSyncState(options=creq.options or SyncOptions(), supported=creq.supported,
                              aged=env.now)
        await env.store.advance_sync_state(env.ctx.request.device_id, env.user,
                                           self.folder.server_id, None, 1, state.to_text())
        return _result(creq, SyncStatus.Success, "1")

    # -- key K ----------------------------------------------------------------------

    async def _continue(self, key: int, budget: int) -> MailResult:
        env, creq = self.env, self.creq
        stored: SyncState | None = await env.store.get_sync_state(
            env.ctx.request.device_id, env.user, self.folder.server_id)
        state = MailSyncState.from_text(stored.state) if stored is not None else None
        if stored is None or state is None:
            return _result(creq, SyncStatus.InvalidSyncKey, "0")
        if key == stored.sync_key:
            return await self._incremental(key, state, budget)
        if stored.previous_key is not None and key == stored.previous_key:
            return await self._retry(stored.sync_key, state)
        env.ctx.log.info("Sync: unknown key {key} for {collection} from {device_id}",
                         key=key, collection=creq.collection_id,
                         device_id=env.ctx.request.device_id)
        return _result(creq, SyncStatus.InvalidSyncKey, "0")

    def _fetcher(self, options: SyncOptions, supported: frozenset[str] | None) -> PageFetcher:
        env = self.env
        user = env.user
        cctx = CodecContext(protocol_version=env.version,
                            body_preferences=options.body_preferences,
                            truncation=options.truncation, supported=supported, now=env.now,
                            user_address=user if "@" in user else None)
        return PageFetcher(env.backend, user, env.password, self.mailbox,
                           self.folder.server_id, cctx, options, self._follow_up_loader())

    def _follow_up_loader(self) -> Any:
        """Reads the stored follow-up flags of a page (12.0+: 2.5 has no Flag)."""
        uidvalidity = self._uidvalidity
        if uidvalidity is None or not at_least(self.env.version, "12.0"):
            return None
        env, mailbox = self.env, self.mailbox

        def load(uids: Sequence[int]) -> Any:
            return env.store.get_mail_flags(env.user, mailbox, uidvalidity, list(uids))

        return load

    async def _follow_ups(self, uids: Sequence[int]) -> Mapping[int, Mapping[str, str]]:
        loader = self._follow_up_loader()
        if loader is None or not uids:
            return {}
        found: Mapping[int, Mapping[str, str]] = await loader(uids)
        return found

    async def _keep_follow_ups(self, applied: Applied, mail: MailState | None) -> None:
        """Store the follow-up flags the device set or cleared; forget those of
        the messages it deleted."""
        if mail is None or not (applied.follow_ups or applied.removed):
            return
        env = self.env
        uidvalidity = mail.point.uidvalidity
        completed = [uid for uid, flag in applied.follow_ups.items()
                     if flag.status == STATUS_COMPLETE]
        previous: Mapping[int, Mapping[str, str]] = {}
        if completed:
            previous = await env.store.get_mail_flags(env.user, self.mailbox, uidvalidity,
                                                      completed)
        updates: dict[int, Mapping[str, str] | None] = {uid: None for uid in applied.removed}
        for uid, flag in applied.follow_ups.items():
            data = flag.data
            if data is not None and flag.status == STATUS_COMPLETE:
                data = merge_completed(data, previous.get(uid))
            updates[uid] = data
        await env.store.set_mail_flags(env.user, self.mailbox, uidvalidity, updates)

    def _draft_sender(self) -> Callable[[int], Awaitable[None]] | None:
        """How a 16.x draft is sent (``Email2:Send``): like SendMail, with a copy
        in Sent; None without an SMTP service."""
        ctx = self.env.ctx
        if "smtp" not in ctx.services:
            return None
        mailbox = self.mailbox

        async def send(uid: int) -> None:
            # commands.sendmail sits above the Sync engine: imported when used.
            from easyncd.protocol.commands.sendmail import send_stored_message

            await send_stored_message(ctx, mailbox, uid)

        return send

    async def _incremental(self, key: int, state: MailSyncState, budget: int) -> MailResult:
        env, creq = self.env, self.creq
        options = creq.options or state.options
        mail = state.mail
        self._uidvalidity = mail.point.uidvalidity if mail is not None else None
        applied = Applied()
        if creq.commands:
            applied = await CommandApplier(
                env.backend, env.user, env.password, self.mailbox, self.folder.server_id,
                self.folder.folder_type, env.version,
                mail.snapshot if mail is not None else None,
                creq.deletes_as_moves is not False,
                env.user if "@" in env.user else None, env.now,
                send_draft=self._draft_sender(),
            ).apply(creq.commands)
            if mail is not None:
                mail = MailState(mail.point, mail.snapshot.updated(
                    {**applied.flags, **applied.created}, applied.removed))
            await self._keep_follow_ups(applied, mail)
        adds = [u for u in state.adds if u not in applied.removed]
        chg = set(state.changes) - applied.removed
        dels = list(state.deletes)
        soft = list(state.soft)
        aged = state.aged
        point = mail.point if mail is not None else None
        if creq.wants_changes():
            start = window_start(options.filter_type, env.now)
            listed = False
            if mail is not None and options.filter_type != state.options.filter_type:
                # The device changed its FilterType without starting over.
                refiltered = await refilter(env.backend, env.user, env.password, self.mailbox,
                                            mail, adds, chg, start)
                if refiltered is None:
                    return await self._uidvalidity_changed(creq)
                mail = refiltered.mail
                adds, chg = refiltered.adds, refiltered.changes
                soft += [u for u in refiltered.soft if u not in soft]
                aged, listed = env.now, True
            elif mail is not None and start is not None and aging_due(aged, env.now):
                pending = set(adds)
                old = await aged_out(env.backend, env.user, env.password, self.mailbox,
                                     (u for u in mail.snapshot.uids() if u not in pending),
                                     start)
                if old:
                    mail = MailState(mail.point, mail.snapshot.updated(removed=old))
                    chg -= old
                    soft += sorted(old - set(soft), reverse=True)
                aged = env.now
            if not listed and not _listing_can_wait(mail, adds):
                changes = await env.backend.changes(env.user, env.password, self.mailbox, mail,
                                                    start)
                if changes.reset and mail is not None:
                    return await self._uidvalidity_changed(creq, changes.state.point.uidvalidity)
                adds, chg, dels = _merge(state.evolve(adds=tuple(adds), changes=frozenset(chg)),
                                         changes)
                mail = changes.state
            point = mail.point if mail is not None else None
            self._uidvalidity = point.uidvalidity if point is not None else None
        commands: list[OutgoingCommand] = []
        sent: list[tuple[str, int]] = []
        folder_id = self.folder.server_id
        for uid in dels[:budget]:
            commands.append(OutgoingCommand(OP_DELETE, item_server_id(folder_id, str(uid))))
            sent.append((OP_DELETE, uid))
        dels = dels[budget:]
        room = budget - len(commands)
        if room > 0 and soft:
            soft_op = OP_SOFT_DELETE if at_least(env.version, "12.0") else OP_DELETE
            for uid in soft[:room]:
                commands.append(OutgoingCommand(soft_op, item_server_id(folder_id, str(uid))))
                sent.append((soft_op, uid))
            soft = soft[room:]
        room = budget - len(commands)
        if room > 0 and chg and mail is not None:
            ordered = sorted(chg, reverse=True)
            follow_ups = await self._follow_ups(ordered[:room])
            for uid in ordered[:room]:
                flags = mail.snapshot.flags_of(uid)
                if flags is None:
                    continue
                commands.append(OutgoingCommand(OP_CHANGE, item_server_id(folder_id, str(uid)),
                                                change_data(flags, env.version,
                                                            follow_ups.get(uid))))
                sent.append((OP_CHANGE, uid))
            chg = set(ordered[room:])
        room = budget - len(commands)
        if room > 0 and adds and creq.wants_changes():
            page_uids = adds[:room]
            page = await self._fetcher(options, state.supported).fetch(page_uids)
            adds = adds[room:]
            flag_updates: dict[int, frozenset[str]] = {}
            gone: set[int] = set(page.missing)
            for uid in page_uids:
                seen = page.flags.get(uid)
                if mail is not None and seen is not None and mail.snapshot.flags_of(uid) != seen:
                    flag_updates[uid] = seen
                data = page.rendered.get(uid)
                if data is None:
                    continue
                commands.append(OutgoingCommand(OP_ADD, item_server_id(folder_id, str(uid)),
                                                data))
                sent.append((OP_ADD, uid))
            if mail is not None and (flag_updates or gone):
                mail = MailState(mail.point, mail.snapshot.updated(flag_updates, gone))
        fetch_responses = await self._fetch_responses(applied.fetches, options, state.supported)
        more = bool(adds or chg or dels or soft) and creq.wants_changes()
        if not (commands or creq.commands):
            if mail is not None and (state.mail is None or mail.point != state.mail.point
                                     or aged != state.aged or options != state.options):
                # Nothing for the device, but the mailbox moved on (mail outside
                # the window, a message gone before it was sent...), this is the
                # first point of a folder that was empty, the window was
                # checked or the Options changed: keep that under the same key
                # so Ping does not see news forever (and the daily check is
                # not repeated).  The device sent this key, so it has the
                # answer that made it: the previous key is not needed for a
                # retry any more.
                await env.store.advance_sync_state(
                    env.ctx.request.device_id, env.user, folder_id, key, key,
                    state.evolve(mail=mail, adds=tuple(adds), changes=frozenset(chg),
                                 deletes=tuple(dels), soft=tuple(soft), aged=aged,
                                 options=options).to_text())
            result = _result(creq, SyncStatus.Success, str(key), more_available=more,
                             reportable=more)
            result.point = point
            return result
        new_state = MailSyncState(
            mail=mail, adds=tuple(adds), changes=frozenset(chg), deletes=tuple(dels),
            soft=tuple(soft), aged=aged,
            sent=tuple(sent), responses=tuple(applied.responses) + tuple(
                StoredResponse("Fetch", sid, status) for sid, status, _ in fetch_responses),
            options=options, supported=state.supported,
        )
        await env.store.advance_sync_state(env.ctx.request.device_id, env.user, folder_id,
                                           key, key + 1, new_state.to_text())
        result = _result(creq, SyncStatus.Success, str(key + 1), commands=commands,
                         responses=self._responses(applied.responses, fetch_responses),
                         more_available=more)
        result.point = point
        return result

    async def _uidvalidity_changed(self, creq: CollectionRequest,
                                   uidvalidity: int | None = None) -> MailResult:
        """The folder's UIDs mean nothing any more: the device starts over, the
        follow-up flags kept for the old UIDs go."""
        env = self.env
        env.ctx.log.info("Sync: UIDVALIDITY of {mailbox} changed for {user}",
                         mailbox=self.mailbox, user=env.user)
        await env.store.drop_mail_flags(env.user, self.mailbox, uidvalidity)
        return _result(creq, SyncStatus.InvalidSyncKey, "0")

    async def _retry(self, key: int, state: MailSyncState) -> MailResult:
        """The device sent the previous key: the answer was lost; send it again."""
        options = self.creq.options or state.options
        folder_id = self.folder.server_id
        self._uidvalidity = state.mail.point.uidvalidity if state.mail is not None else None
        wanted = [uid for op, uid in state.sent if op == OP_ADD]
        page = await self._fetcher(options, state.supported).fetch(wanted) if wanted else None
        follow_ups = await self._follow_ups([uid for op, uid in state.sent if op == OP_CHANGE])
        commands: list[OutgoingCommand] = []
        for op, uid in state.sent:
            server_id = item_server_id(folder_id, str(uid))
            if op in (OP_DELETE, OP_SOFT_DELETE):
                commands.append(OutgoingCommand(op, server_id))
            elif op == OP_CHANGE:
                flags = state.mail.snapshot.flags_of(uid) if state.mail is not None else None
                if flags is not None:
                    commands.append(OutgoingCommand(OP_CHANGE, server_id,
                                                    change_data(flags, self.env.version,
                                                                follow_ups.get(uid))))
            elif page is not None and uid in page.rendered:
                commands.append(OutgoingCommand(OP_ADD, server_id, page.rendered[uid]))
        fetches = [r.ref for r in state.responses if r.kind == "Fetch"]
        fetch_responses = await self._fetch_responses(fetches, options, state.supported)
        others = [r for r in state.responses if r.kind != "Fetch"]
        result = _result(self.creq, SyncStatus.Success, str(key), commands=commands,
                         responses=self._responses(others, fetch_responses),
                         more_available=state.has_pending)
        result.point = state.mail.point if state.mail is not None else None
        return result

    # -- Fetch and Responses -------------------------------------------------------------

    async def _fetch_responses(self, server_ids: Sequence[str], options: SyncOptions,
                               supported: frozenset[str] | None
                               ) -> list[tuple[str, int, Element | None]]:
        if not server_ids:
            return []
        uids = {sid: uid_of(self.folder.server_id, sid) for sid in server_ids}
        valid = [u for u in uids.values() if u is not None]
        page = await self._fetcher(options, supported).fetch(valid) if valid else None
        out: list[tuple[str, int, Element | None]] = []
        for sid, uid in uids.items():
            data = page.rendered.get(uid) if page is not None and uid is not None else None
            if data is None:
                out.append((sid, int(SyncStatus.ObjectNotFound), None))
            else:
                out.append((sid, int(SyncStatus.Success), data))
        return out

    @staticmethod
    def _responses(stored: Iterable[StoredResponse],
                   fetches: Sequence[tuple[str, int, Element | None]]) -> list[Element]:
        elements: list[Element] = []
        for response in stored:
            if response.kind in ("Change", "Delete") and response.status == SyncStatus.Success:
                continue
            elements.append(response_element(response))
        for sid, status, data in fetches:
            elements.append(response_element(StoredResponse("Fetch", sid, status), data))
        return elements


def _listing_can_wait(mail: MailState | None, adds: Sequence[int]) -> bool:
    """Whether to page on through pending adds without looking for changes.

    Without CONDSTORE (no HIGHESTMODSEQ in the point) a change check lists the
    whole folder (``UID FETCH 1:* (FLAGS)``): per page of an initial Sync that
    would cost the folder size each time.  While adds are pending the check
    waits until they are sent; the snapshot kept is compared then, so nothing
    that changes meanwhile is lost (messages gone before their page are
    dropped by the page fetch)."""
    return bool(adds) and mail is not None and mail.point.highestmodseq is None


def _merge(state: MailSyncState, changes: Any) -> tuple[list[int], set[int], list[int]]:
    """Pending adds (descending), changes and deletes after ``changes``."""
    removed = set(changes.removed)
    pending = set(state.adds)
    if changes.added:
        adds = sorted((pending | set(changes.added)) - removed, reverse=True)
    elif removed & pending:
        adds = [u for u in state.adds if u not in removed]
    else:
        adds = list(state.adds)
    pending_now = pending | set(changes.added)
    chg = (set(state.changes) | set(changes.changed)) - removed - pending_now
    dels = list(state.deletes) + [u for u in sorted(removed)
                                  if u not in pending and u not in state.deletes]
    return adds, chg, dels


def snapshot_known(snapshot: MailboxSnapshot, pending: Iterable[int]) -> set[int]:
    """The UIDs the device has (tests and diagnostics)."""
    return set(snapshot.uids()) - set(pending)


__all__ = ["EMAIL_CLASS", "MAIL_PREFIX", "MailCollectionSync", "MailEnv", "MailResult",
           "change_data", "mail_folder", "window_start"]
