"""One collection's Sync: check the key, apply the device's commands, choose
the server's changes for this window, save the new key.

A Change or Delete with ``AirSyncBase:InstanceId`` (16.x) rewrites one
occurrence of a recurring event through the Calendar codec's
``change_instance`` / ``delete_instance``; the server sends exceptions inside
the master item (as :meth:`CalendarCodec.to_eas` writes them), never as
separate instances, and answers failures with ServerId, InstanceId, Status.

Nothing is written unless there is something to tell the device (a new key
with commands or responses); a request that finds nothing can wait on the
push hub and run again without leaving state behind -- except, under the
same key, the time of the daily FilterType window check and changed Options.

FilterType windows (MS-ASCMD 2.2.3.68.2): items that leave the window by
time alone (a calendar event now older than the window) get a SoftDelete
(a Delete in 2.5): at most once a day per collection state the items the
device holds (``held``) are read and ``in_filter`` is asked again.  A
FilterType changed under a non-zero key (the client should have sent key 0)
is followed: what the new window lets in is added, what it leaves out is
SoftDeleted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from easyncd.backends.interfaces import (
    HistoryTrimmed,
    InvalidItem,
    Item,
    NoSuchCollection,
    NoSuchItem,
)
from easyncd.protocol.codecs.base import CodecContext, CodecError, DecodedItem, ItemCodec
from easyncd.protocol.collections import ResolvedCollection, resolve_collection
from easyncd.protocol.context import CommandContext
from easyncd.protocol.serverids import item_id_in, item_server_id
from easyncd.protocol.sync.changes import merge_changes
from easyncd.protocol.sync.constants import AIRSYNC, AIRSYNCBASE, FILTERING_TYPES, SyncStatus
from easyncd.protocol.sync.request import (
    ClientAdd,
    ClientChange,
    ClientDelete,
    ClientFetch,
    CollectionRequest,
    SyncOptions,
)
from easyncd.protocol.sync.state import (
    DELETED,
    OP_ADD,
    OP_CHANGE,
    OP_DELETE,
    OP_SOFT_DELETE,
    CollectionState,
    Op,
    Pending,
)
from easyncd.protocol.versions import at_least
from easyncd.store.interfaces import SyncState, SyncStateConflict
from easyncd.wbxml import Element


@dataclass(frozen=True)
class SyncEnv:
    """What every collection of one request shares."""

    ctx: CommandContext
    backend: Any
    codecs: Mapping[str, ItemCodec]
    now: float

    @property
    def user(self) -> str:
        """The account whose data this is."""
        return self.ctx.request.account

    @property
    def device_id(self) -> str:
        """The device."""
        return self.ctx.request.device_id

    @property
    def version(self) -> str:
        """The protocol version of the request."""
        return self.ctx.request.protocol_version

    @property
    def store(self) -> Any:
        """The state store (a zope interface: mypy cannot see its methods)."""
        return self.ctx.store

    def codec_context(self, options: SyncOptions, supported: frozenset[str] | None) -> CodecContext:
        """The CodecContext for a collection with these options."""
        user = self.user
        return CodecContext(
            protocol_version=self.version,
            body_preferences=options.body_preferences,
            truncation=options.truncation,
            supported=supported,
            now=self.now,
            user_address=user if "@" in user else None,
        )


@dataclass(frozen=True)
class OutgoingCommand:
    """One server command for the device: op, ServerId, ApplicationData."""

    op: str
    server_id: str
    application_data: Element | None = None


@dataclass
class CollectionResult:
    """What one collection answers."""

    collection_id: str
    status: int
    sync_key: str
    eas_class: str | None = None
    commands: list[OutgoingCommand] = field(default_factory=list)
    responses: list[Element] = field(default_factory=list)
    more_available: bool = False
    #: Whether the device must hear of it (otherwise the request may wait).
    reportable: bool = True
    topic: str | None = None
    #: For a result with nothing to report: the backend revision the device
    #: is up to date with (what a push wait passes as ``known``), if known.
    revision: int | None = None


@dataclass
class _Applied:
    """The effect of the device's commands on one collection."""

    responses: list[Element] = field(default_factory=list)
    own: dict[str, int] = field(default_factory=dict)
    adds: dict[str, str] = field(default_factory=dict)
    held_added: set[str] = field(default_factory=set)
    held_removed: set[str] = field(default_factory=set)
    wrote: bool = False


def _tracks_held(options: SyncOptions) -> bool:
    return options.filter_type in FILTERING_TYPES


#: Held items are checked against a moving window at most this often (and
#: at least once per UTC day).
AGING_INTERVAL = 86400.0
#: Items read per backend call while checking the window.
_AGING_CHUNK = 200


def aging_due(last: float | None, now: float) -> bool:
    """Whether held items are to be checked against the window again: never
    checked, a new UTC day, 24 h passed, or the clock went back."""
    if last is None or now < last:
        return True
    return (now - last >= AGING_INTERVAL
            or int(now // AGING_INTERVAL) != int(last // AGING_INTERVAL))


def _failed(status: int, key: str, creq: CollectionRequest) -> CollectionResult:
    return CollectionResult(creq.collection_id, status, key, creq.eas_class)


class CollectionSync:
    """The sync of one collection in one request."""

    def __init__(self, env: SyncEnv, creq: CollectionRequest) -> None:
        self.env = env
        self.creq = creq
        self.resolved: ResolvedCollection | None = None
        self.codec: ItemCodec | None = None

    # -- entry points ---------------------------------------------------------------

    async def run(self, budget: int) -> CollectionResult:
        """Sync the collection sending at most ``budget`` server changes."""
        env, creq = self.env, self.creq
        sent_key = creq.sync_key
        resolved = await resolve_collection(env.ctx, creq.collection_id)
        codec = env.codecs.get(resolved.kind) if resolved is not None else None
        if resolved is None or codec is None:
            env.ctx.log.info("Sync: unknown collection {collection} for {user}",
                             collection=creq.collection_id, user=env.user)
            return _failed(SyncStatus.HierarchyChanged, str(sent_key or 0), creq)
        self.resolved, self.codec = resolved, codec
        if sent_key is None:
            return _failed(SyncStatus.InvalidSyncKey, "0", creq)
        try:
            if sent_key == 0:
                result = await self._start_over()
            else:
                result = await self._continue(sent_key, budget)
        except NoSuchCollection:
            return _failed(SyncStatus.HierarchyChanged, str(sent_key), creq)
        except HistoryTrimmed:
            env.ctx.log.info("Sync: history trimmed past key {key} of {collection}",
                             key=sent_key, collection=creq.collection_id)
            return _failed(SyncStatus.InvalidSyncKey, "0", creq)
        except SyncStateConflict:
            env.ctx.log.warn("Sync: concurrent sync of {collection} by {device_id}",
                             collection=creq.collection_id, device_id=env.device_id)
            return _failed(SyncStatus.Retry, str(sent_key), creq)
        result.topic = resolved.topic
        return result

    async def estimate(self) -> tuple[int, int]:
        """GetItemEstimate: (status, estimate) for the current key, no writes.
        Status 2 unknown collection, 3 not primed, 4 wrong key."""
        env, creq = self.env, self.creq
        resolved = await resolve_collection(env.ctx, creq.collection_id)
        codec = env.codecs.get(resolved.kind) if resolved is not None else None
        if resolved is None or codec is None:
            return 2, 0
        self.resolved, self.codec = resolved, codec
        key = creq.sync_key
        if key is None:
            return 4, 0
        if key == 0:
            return 3, 0
        stored: SyncState | None = await env.store.get_sync_state(
            env.device_id, env.user, resolved.folder.server_id)
        if stored is None:
            return 3, 0
        state = CollectionState.from_text(stored.state)
        if stored.sync_key != key or state is None:
            return 4, 0
        options = creq.options or state.options
        try:
            changes = await env.backend.changes_since(env.user, resolved.collection_id, state.rev)
        except HistoryTrimmed:
            return 4, 0
        except NoSuchCollection:
            return 2, 0
        ops = merge_changes(state.pending, changes)
        held = set(state.held) if state.held is not None else None
        emitted, _ = await self._emit(ops, len(ops), state.own, held, options,
                                      state.supported, render=False)
        count = len(emitted)
        if options.max_items is not None:
            count = min(count, options.max_items)
        return 1, count

    # -- key 0 ----------------------------------------------------------------------

    async def _start_over(self) -> CollectionResult:
        env, creq, resolved = self.env, self.creq, self.resolved
        assert resolved is not None
        rev, ids = await env.backend.list_items(env.user, resolved.collection_id)
        options = creq.options or SyncOptions()
        state = CollectionState(
            rev=int(rev),
            pending=Pending.from_ops((OP_ADD, str(i)) for i in ids),
            held=frozenset() if _tracks_held(options) else None,
            supported=creq.supported,
            options=options,
            checked=env.now if _tracks_held(options) else None,
        )
        await env.store.advance_sync_state(env.device_id, env.user, resolved.folder.server_id,
                                           None, 1, state.to_text())
        return CollectionResult(creq.collection_id, SyncStatus.Success, "1", creq.eas_class,
                                more_available=False)

    # -- key K ----------------------------------------------------------------------

    async def _continue(self, key: int, budget: int) -> CollectionResult:
        env, creq, resolved = self.env, self.creq, self.resolved
        assert resolved is not None
        server_id = resolved.folder.server_id
        stored: SyncState | None = await env.store.get_sync_state(env.device_id, env.user, server_id)
        if stored is None:
            return _failed(SyncStatus.InvalidSyncKey, "0", creq)
        current = CollectionState.from_text(stored.state)
        if current is None:
            return _failed(SyncStatus.InvalidSyncKey, "0", creq)
        if key == stored.sync_key:
            return await self._incremental(stored.sync_key, current, budget)
        if stored.previous_key is not None and key == stored.previous_key:
            return await self._retry(stored.sync_key, current)
        env.ctx.log.info("Sync: unknown key {key} for {collection} from {device_id}",
                         key=key, collection=creq.collection_id, device_id=env.device_id)
        return _failed(SyncStatus.InvalidSyncKey, "0", creq)

    async def _incremental(self, key: int, state: CollectionState, budget: int) -> CollectionResult:
        env, creq, resolved = self.env, self.creq, self.resolved
        assert resolved is not None
        options = creq.options or state.options
        applied = await self._apply(state, options, dedupe={}, retry=False)
        own = dict(state.own)
        own.update(applied.own)
        held = self._held(state, applied)
        commands: list[OutgoingCommand] = []
        sent: list[Op] = []
        remaining: Pending = state.pending
        new_rev = state.rev
        checked = state.checked
        windowed = False
        if creq.wants_changes():
            changes = await env.backend.changes_since(env.user, resolved.collection_id, state.rev)
            ops = merge_changes(state.pending, changes)
            new_rev = int(changes.until)
            extra, held, checked = await self._window_ops(state, options, held, ops)
            windowed = (checked != state.checked
                        or options.filter_type != state.options.filter_type)
            if extra:
                ops = Pending.from_ops([*extra, *ops])
            emitted, consumed = await self._emit(ops, budget, own, held, options, state.supported)
            remaining = ops[consumed:]
            commands = [c for c, _ in emitted]
            sent = [op for _, op in emitted]
            # Everything the device wrote is at or below ``until`` now.
            if own:
                own = {i: r for i, r in own.items() if remaining.has_id(i)}
        more = bool(remaining) and creq.wants_changes()
        if not (commands or applied.wrote or applied.responses):
            # Nothing to tell: every change up to new_rev was looked at and
            # none is for the device (its own, or held back by the filter).
            if windowed or options != state.options:
                # ... but the window was checked or the Options changed: keep
                # that under the same key (the device sent this key, so it
                # has the answer that made it).
                await env.store.advance_sync_state(
                    env.device_id, env.user, resolved.folder.server_id, key, key,
                    state.evolve(options=options, checked=checked,
                                 held=frozenset(held) if held is not None else None
                                 ).to_text())
            return CollectionResult(creq.collection_id, SyncStatus.Success, str(key),
                                    creq.eas_class, more_available=more, reportable=more,
                                    revision=new_rev if creq.wants_changes() else None)
        new_state = CollectionState(
            rev=new_rev,
            pending=remaining,
            sent=tuple(sent),
            adds=applied.adds,
            own=own,
            held=frozenset(held) if held is not None else None,
            supported=state.supported,
            options=options,
            checked=checked,
        )
        if commands or applied.wrote:
            await env.store.advance_sync_state(env.device_id, env.user, resolved.folder.server_id,
                                               key, key + 1, new_state.to_text())
            key += 1
        return CollectionResult(creq.collection_id, SyncStatus.Success, str(key), creq.eas_class,
                                commands=commands, responses=applied.responses,
                                more_available=more)

    async def _retry(self, key: int, state: CollectionState) -> CollectionResult:
        """The device sent the previous key: our last answer was lost.  Send
        what that answer sent again; its adds are not created twice."""
        env, creq, resolved = self.env, self.creq, self.resolved
        assert resolved is not None
        options = creq.options or state.options
        applied = await self._apply(state, options, dedupe=state.adds, retry=True)
        commands = await self._resend(state.sent, options, state.supported)
        if applied.wrote:
            own = dict(state.own)
            own.update(applied.own)
            adds = dict(state.adds)
            adds.update(applied.adds)
            held = self._held(state, applied)
            new_state = state.evolve(own=own, adds=adds,
                                     held=frozenset(held) if held is not None else None)
            await env.store.advance_sync_state(env.device_id, env.user, resolved.folder.server_id,
                                               key, key + 1, new_state.to_text())
            key += 1
        return CollectionResult(creq.collection_id, SyncStatus.Success, str(key), creq.eas_class,
                                commands=commands, responses=applied.responses,
                                more_available=bool(state.pending))

    @staticmethod
    def _held(state: CollectionState, applied: _Applied) -> set[str] | None:
        if state.held is None:
            return None
        return (set(state.held) | applied.held_added) - applied.held_removed

    # -- the device's commands --------------------------------------------------------

    async def _apply(self, state: CollectionState, options: SyncOptions,
                     dedupe: Mapping[str, str], retry: bool) -> _Applied:
        env, creq, resolved, codec = self.env, self.creq, self.resolved, self.codec
        assert resolved is not None and codec is not None
        applied = _Applied()
        cctx = env.codec_context(options, state.supported)
        folder_id = resolved.folder.server_id
        cid = resolved.collection_id
        pending_changes = state.pending.ids(OP_CHANGE)
        for command in creq.commands:
            if isinstance(command, ClientAdd):
                await self._add(command, dedupe, cctx, applied)
                continue
            item_id = item_id_in(folder_id, command.server_id)
            item: Item | None = None
            whole_delete = isinstance(command, ClientDelete) and command.instance_id is None
            if item_id is not None and not whole_delete:
                found = await env.backend.get_items(env.user, cid, [item_id])
                item = found[0] if found else None
            if isinstance(command, ClientFetch):
                applied.responses.append(self._fetch_response(command.server_id, item, cctx))
            elif isinstance(command, ClientChange) or not whole_delete:
                # A Change, or (16.x) a Delete of one occurrence: both rewrite the item.
                name = "Change" if isinstance(command, ClientChange) else "Delete"
                instance = command.instance_id
                if item is None or item_id is None:
                    applied.responses.append(_item_response(
                        name, command.server_id, SyncStatus.ObjectNotFound, instance))
                    continue
                mine = state.own.get(item_id) == item.revision
                if retry and mine:
                    continue  # applied by the request being retried
                changed_on_server = (item.revision > state.rev or item_id in pending_changes) \
                    and not mine
                if changed_on_server and options.conflict != 0:
                    applied.responses.append(_item_response(
                        name, command.server_id, SyncStatus.Conflict, instance))
                    continue
                status = await self._change(item, command, cctx, applied)
                if status != SyncStatus.Success:
                    applied.responses.append(_item_response(name, command.server_id, status,
                                                            instance))
            elif isinstance(command, ClientDelete):
                if item_id is None:
                    applied.responses.append(_item_response(
                        "Delete", command.server_id, SyncStatus.ObjectNotFound))
                    continue
                try:
                    await env.backend.delete_item(env.user, cid, item_id)
                except NoSuchItem:
                    if not (retry or state.own.get(item_id) == DELETED):
                        applied.responses.append(_item_response(
                            "Delete", command.server_id, SyncStatus.ObjectNotFound))
                    continue
                applied.own[item_id] = DELETED
                applied.held_removed.add(item_id)
                applied.wrote = True
        return applied

    async def _add(self, command: ClientAdd, dedupe: Mapping[str, str], cctx: CodecContext,
                   applied: _Applied) -> None:
        env, resolved, codec = self.env, self.resolved, self.codec
        assert resolved is not None and codec is not None
        folder_id = resolved.folder.server_id
        known = dedupe.get(command.client_id)
        if known is not None:
            applied.responses.append(_add_response(
                command.client_id, item_server_id(folder_id, known), SyncStatus.Success))
            return
        if command.application_data is None:
            applied.responses.append(_add_response(command.client_id, None,
                                                   SyncStatus.ConversionError))
            return
        try:
            decoded = codec.from_eas(command.application_data, None, cctx)
            item: Item = await env.backend.add_item(env.user, resolved.collection_id, decoded.data)
        except (CodecError, InvalidItem) as exc:
            env.ctx.log.info("Sync: device add {client_id} refused: {error}",
                             client_id=command.client_id, error=str(exc))
            applied.responses.append(_add_response(command.client_id, None,
                                                   SyncStatus.ConversionError))
            return
        applied.own[item.item_id] = item.revision
        applied.adds[command.client_id] = item.item_id
        applied.held_added.add(item.item_id)
        applied.wrote = True
        applied.responses.append(_add_response(
            command.client_id, item_server_id(folder_id, item.item_id), SyncStatus.Success))

    async def _change(self, item: Item, command: ClientChange | ClientDelete,
                      cctx: CodecContext, applied: _Applied) -> int:
        """Apply a Change -- of the whole item, or (16.x, ``InstanceId``) of
        one occurrence -- or the Delete of one occurrence."""
        env, resolved, codec = self.env, self.resolved, self.codec
        assert resolved is not None and codec is not None
        try:
            decoded = _decode_change(codec, command, item.data, cctx)
            if decoded is None:
                return SyncStatus.ConversionError
            updated: Item = await env.backend.update_item(
                env.user, resolved.collection_id, item.item_id, decoded.data)
        except (CodecError, InvalidItem) as exc:
            env.ctx.log.info("Sync: device change of {item} refused: {error}",
                             item=item.item_id, error=str(exc))
            return SyncStatus.ConversionError
        except NoSuchItem:
            return SyncStatus.ObjectNotFound
        applied.own[updated.item_id] = updated.revision
        applied.held_added.add(updated.item_id)
        applied.wrote = True
        return SyncStatus.Success

    def _fetch_response(self, server_id: str, item: Item | None, cctx: CodecContext) -> Element:
        codec = self.codec
        assert codec is not None
        if item is None:
            return _item_response("Fetch", server_id, SyncStatus.ObjectNotFound)
        try:
            data = codec.to_eas(item.data, cctx)
        except CodecError:
            return _item_response("Fetch", server_id, SyncStatus.ConversionError)
        element = _item_response("Fetch", server_id, SyncStatus.Success)
        element.append(data)
        return element

    # -- the FilterType window ---------------------------------------------------------

    async def _window_ops(self, state: CollectionState, options: SyncOptions,
                          held: set[str] | None, ops: Pending,
                          ) -> tuple[list[Op], set[str] | None, float | None]:
        """Ops the window calls for beyond the backend's changes: SoftDeletes of
        held items now outside it (daily), and after a FilterType change the
        adds it lets in.  Returns (ops to send first, held, check time)."""
        env, resolved = self.env, self.resolved
        assert resolved is not None
        now = env.now
        if options.filter_type != state.options.filter_type:
            env.ctx.log.info("Sync: FilterType of {collection} changed {old} -> {new}"
                             " without a new SyncKey", collection=self.creq.collection_id,
                             old=state.options.filter_type, new=options.filter_type)
            _, listed = await env.backend.list_items(env.user, resolved.collection_id)
            ids = [str(i) for i in listed]
            pending = {item_id for _, item_id in ops}
            if held is None:
                # Without a window the device has everything sent.
                not_sent = ops.ids(OP_ADD)
                held = {i for i in ids if i not in not_sent}
            adds: list[Op] = [(OP_ADD, i) for i in ids if i not in held and i not in pending]
            if not _tracks_held(options):
                return adds, None, None
            out = await self._out_of_filter([i for i in held if i not in pending], options)
            return [(OP_SOFT_DELETE, i) for i in sorted(out)] + adds, held, now
        if held is None or not _tracks_held(options) or not aging_due(state.checked, now):
            return [], held, state.checked
        out = await self._out_of_filter([i for i in held if not ops.has_id(i)], options)
        return [(OP_SOFT_DELETE, i) for i in sorted(out)], held, now

    async def _out_of_filter(self, item_ids: Sequence[str], options: SyncOptions) -> set[str]:
        """Those of ``item_ids`` the FilterType now leaves out."""
        env, resolved, codec = self.env, self.resolved, self.codec
        assert resolved is not None and codec is not None
        out: set[str] = set()
        ordered = sorted(item_ids)
        for start in range(0, len(ordered), _AGING_CHUNK):
            found = await env.backend.get_items(env.user, resolved.collection_id,
                                                ordered[start:start + _AGING_CHUNK])
            for item in found:
                if not codec.in_filter(item.data, options.filter_type, env.now):
                    out.add(item.item_id)
        return out

    # -- the server's changes ---------------------------------------------------------

    async def _emit(self, ops: Sequence[Op], budget: int, own: Mapping[str, int],
                    held: set[str] | None, options: SyncOptions,
                    supported: frozenset[str] | None, render: bool = True,
                    ) -> tuple[list[tuple[OutgoingCommand, Op]], int]:
        """Turn ``ops`` into commands until ``budget`` are made; ``held`` is
        updated in place.  Returns the commands (with the op each stands for)
        and how many ops were consumed."""
        env, resolved, codec = self.env, self.resolved, self.codec
        assert resolved is not None and codec is not None
        folder_id = resolved.folder.server_id
        cctx = env.codec_context(options, supported)
        soft = OP_SOFT_DELETE if at_least(env.version, "12.0") else OP_DELETE
        out: list[tuple[OutgoingCommand, Op]] = []
        position = 0
        while position < len(ops) and len(out) < budget:
            chunk = ops[position:position + (budget - len(out))]
            wanted = [i for op, i in chunk if op != OP_DELETE]
            items: dict[str, Item] = {}
            if wanted:
                found = await env.backend.get_items(env.user, resolved.collection_id, wanted)
                items = {item.item_id: item for item in found}
            for op, item_id in chunk:
                position += 1
                server_id = item_server_id(folder_id, item_id)
                if op == OP_DELETE:
                    if own.get(item_id) == DELETED:
                        continue
                    if held is not None:
                        if item_id not in held:
                            continue
                        held.discard(item_id)
                    out.append((OutgoingCommand(OP_DELETE, server_id), (OP_DELETE, item_id)))
                    continue
                if op == OP_SOFT_DELETE:
                    # Left the window: unless it came back into it meanwhile.
                    if held is not None:
                        if item_id not in held:
                            continue
                        gone = items.get(item_id)
                        if gone is None or not codec.in_filter(gone.data, options.filter_type,
                                                               env.now):
                            held.discard(item_id)
                            out.append((OutgoingCommand(soft, server_id), (soft, item_id)))
                            continue
                    op = OP_CHANGE
                item = items.get(item_id)
                mine = own.get(item_id)
                if item is None or mine == item.revision:
                    continue
                # The device has an item it wrote itself (a move into this
                # folder, say) even when the history calls it an add.
                kind = OP_CHANGE if op == OP_ADD and mine is not None and mine != DELETED else op
                if held is not None:
                    if not codec.in_filter(item.data, options.filter_type, env.now):
                        if item_id in held:
                            held.discard(item_id)
                            out.append((OutgoingCommand(soft, server_id), (soft, item_id)))
                        continue
                    kind = OP_CHANGE if item_id in held else OP_ADD
                    held.add(item_id)
                data: Element | None = None
                if render:
                    try:
                        data = codec.to_eas(item.data, cctx)
                    except CodecError as exc:
                        env.ctx.log.warn("Sync: cannot convert item {item}: {error}",
                                         item=item_id, error=str(exc))
                        continue
                out.append((OutgoingCommand(kind, server_id, data), (kind, item_id)))
        return out, position

    async def _resend(self, sent: Sequence[Op], options: SyncOptions,
                      supported: frozenset[str] | None) -> list[OutgoingCommand]:
        """The commands of a lost answer again, with the items' current data."""
        env, resolved, codec = self.env, self.resolved, self.codec
        assert resolved is not None and codec is not None
        folder_id = resolved.folder.server_id
        cctx = env.codec_context(options, supported)
        wanted = [i for op, i in sent if op in (OP_ADD, OP_CHANGE)]
        items: dict[str, Item] = {}
        if wanted:
            found = await env.backend.get_items(env.user, resolved.collection_id, wanted)
            items = {item.item_id: item for item in found}
        commands: list[OutgoingCommand] = []
        for op, item_id in sent:
            server_id = item_server_id(folder_id, item_id)
            if op in (OP_ADD, OP_CHANGE):
                item = items.get(item_id)
                if item is None:
                    continue
                try:
                    data = codec.to_eas(item.data, cctx)
                except CodecError:
                    continue
                commands.append(OutgoingCommand(op, server_id, data))
            else:
                commands.append(OutgoingCommand(op, server_id))
        return commands


def _decode_change(codec: ItemCodec, command: ClientChange | ClientDelete, existing: str,
                   cctx: CodecContext) -> DecodedItem | None:
    """The item's new data after ``command``; None if it cannot apply (no
    ApplicationData, or an InstanceId on a class without occurrences).
    Raises CodecError."""
    instance = command.instance_id
    if isinstance(command, ClientDelete):
        delete_instance = getattr(codec, "delete_instance", None)
        if instance is None or delete_instance is None:
            return None
        decoded: DecodedItem = delete_instance(instance, existing, cctx)
        return decoded
    if command.application_data is None:
        return None
    if instance is None:
        return codec.from_eas(command.application_data, existing, cctx)
    change_instance = getattr(codec, "change_instance", None)
    if change_instance is None:
        return None
    decoded = change_instance(command.application_data, instance, existing, cctx)
    return decoded


def _item_response(name: str, server_id: str, status: int,
                   instance_id: str | None = None) -> Element:
    """Responses/(Change|Delete|Fetch): ServerId, InstanceId (16.x, when the
    command carried one), Status."""
    element = Element(AIRSYNC + name)
    element.add(AIRSYNC + "ServerId", server_id)
    if instance_id is not None:
        element.add(AIRSYNCBASE + "InstanceId", instance_id)
    element.add(AIRSYNC + "Status", str(int(status)))
    return element


def _add_response(client_id: str, server_id: str | None, status: int) -> Element:
    element = Element(AIRSYNC + "Add")
    element.add(AIRSYNC + "ClientId", client_id)
    if server_id is not None:
        element.add(AIRSYNC + "ServerId", server_id)
    element.add(AIRSYNC + "Status", str(int(status)))
    return element
