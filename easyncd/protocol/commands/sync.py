"""Sync (MS-ASCMD 2.2.1.21) for Contacts, Calendar, Tasks and Notes.

The request is parsed into :mod:`easyncd.protocol.sync.request`, completed
from the device account's cached request when it is empty or partial
(12.1+), and each collection is synced by
:class:`easyncd.protocol.sync.engine.CollectionSync` under the global
WindowSize.  When nothing is to be sent and the device asked for Wait or
HeartbeatInterval, the request waits on the push hub -- holding no store
transaction -- and then syncs again; after the wait with nothing new it gets
the empty response (HTTP 200, no body).  The wait is given, per collection,
the backend revision the sync just found the device up to date with
(``known``), so a change committed right after that look -- by another
device, the CLI or another node -- still wakes it at the hub's next poll.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from easyncd.protocol.codecs.base import ItemCodec
from easyncd.protocol.commands.base import Command
from easyncd.protocol.commands.foldersync import ensure_account
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.mailsync import prepare_mail_wait, sync_mail_collection
from easyncd.protocol.sync.constants import (
    DEFAULT_WINDOW_SIZE,
    MAX_COLLECTIONS,
    MAX_HEARTBEAT_SECONDS,
    MAX_WAIT_MINUTES,
    MAX_WINDOW_SIZE,
    MIN_HEARTBEAT_SECONDS,
    MIN_WAIT_MINUTES,
    REQUEST_CACHE_ID,
    SyncStatus,
)
from easyncd.protocol.sync.engine import CollectionResult, CollectionSync, SyncEnv
from easyncd.protocol.sync.render import status_only, sync_response
from easyncd.protocol.sync.request import (
    CollectionRequest,
    SyncProtocolError,
    SyncRequest,
    parse_sync,
    request_from_cache,
)
from easyncd.protocol.versions import at_least
from easyncd.wbxml import Element


class IncompleteRequest(Exception):
    """An empty or partial request with no cached request (Status 13)."""


def default_codecs() -> Mapping[str, ItemCodec]:
    """The item codecs by groupware kind."""
    from easyncd.protocol.codecs import CODECS

    return CODECS


async def read_request_cache(ctx: CommandContext) -> dict[str, Any] | None:
    """The device account's last full Sync request, as cached, or None."""
    store: Any = ctx.store
    req = ctx.request
    stored = await store.get_sync_state(req.device_id, req.account, REQUEST_CACHE_ID)
    if stored is None:
        return None
    try:
        data = json.loads(stored.state)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


async def current_keys(ctx: CommandContext, collection_ids: list[str]) -> dict[str, int | None]:
    """Each collection's current sync key (None where there is no state)."""
    store: Any = ctx.store
    req = ctx.request
    keys: dict[str, int | None] = {}
    for collection_id in collection_ids:
        stored = await store.get_sync_state(req.device_id, req.account, collection_id)
        keys[collection_id] = stored.sync_key if stored is not None else None
    return keys


class SyncCommand(Command):
    """``Cmd=Sync``."""

    name = "Sync"
    #: An empty body is the 12.1+ shorthand for the cached request.
    needs_body = False

    def __init__(self, codecs: Mapping[str, ItemCodec] | None = None) -> None:
        self._codecs = codecs

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        """Answer one Sync request."""
        version = ctx.request.protocol_version
        backend = ctx.services.get("groupware")
        if backend is None:
            ctx.log.error("Sync: no groupware backend configured")
            return _status(SyncStatus.ServerError)
        await ensure_account(ctx)
        try:
            request = await self._complete_request(ctx, body)
        except SyncProtocolError as exc:
            ctx.log.info("Sync: bad request from {device_id}: {error}",
                         device_id=ctx.request.device_id, error=str(exc))
            return _status(SyncStatus.ProtocolError)
        except IncompleteRequest:
            return _status(SyncStatus.IncompleteRequest)
        limit = _wait_limit(request)
        if limit is not None:
            return CommandResponse(body=status_only(SyncStatus.InvalidWaitOrHeartbeat, limit),
                                   status=str(int(SyncStatus.InvalidWaitOrHeartbeat)))
        if len(request.collections) > MAX_COLLECTIONS:
            return _status(SyncStatus.TooManyCollections)

        codecs = self._codecs if self._codecs is not None else default_codecs()
        clock: Any = ctx.clock
        wait = request.wait_seconds
        hub = ctx.services.get("push")
        deadline = clock.seconds() + wait if wait else None
        mail_rechecked = False
        while True:
            env = SyncEnv(ctx=ctx, backend=backend, codecs=codecs, now=float(clock.seconds()))
            results = await self._sync_all(env, request)
            if any(r.reportable for r in results):
                break
            if deadline is None or hub is None:
                break
            remaining = deadline - clock.seconds()
            topics = sorted({r.topic for r in results if r.topic})
            if remaining <= 0 or not topics:
                return CommandResponse(status=str(int(SyncStatus.Success)))
            # What the device has: a change committed after this sync looked
            # (even before the wait below registers) is above it and wakes
            # the wait at the hub's next poll.
            known = _known_revisions(results)
            # Mail folders: IMAP watch first; mail that came before it: no wait.
            early = await prepare_mail_wait(ctx, results, remaining, recheck=not mail_rechecked)
            mail_rechecked = True
            changed = frozenset(topics) if early else await hub.wait(
                ctx.request.account, topics, remaining, known=known)
            if not changed:
                return CommandResponse(status=str(int(SyncStatus.Success)))
            # Nothing of the device's commands had an effect: do not run them twice.
            request = request.with_collections(tuple(
                CollectionRequest(c.collection_id, c.sync_key, c.eas_class, c.get_changes,
                                  c.window_size, c.options, c.supported)
                for c in request.collections))
        if at_least(version, "12.1"):
            # 12.1+: only the collections with something to say; none at all
            # is the empty response.
            results = [r for r in results if r.reportable]
            if not results:
                return CommandResponse(status=str(int(SyncStatus.Success)))
        return CommandResponse(body=sync_response(results, version),
                               status=str(int(SyncStatus.Success)))

    async def _sync_all(self, env: SyncEnv, request: SyncRequest) -> list[CollectionResult]:
        overall = request.global_window()
        results: list[CollectionResult] = []
        for creq in request.collections:
            window = creq.window_size if creq.window_size and creq.window_size > 0 \
                else (overall or DEFAULT_WINDOW_SIZE)
            window = min(window, MAX_WINDOW_SIZE)
            if overall is not None:
                window = min(window, overall)
            result = await sync_mail_collection(env.ctx, creq, window, env.now)
            if result is None:
                result = await CollectionSync(env, creq).run(window)
            if overall is not None:
                overall = max(0, overall - len(result.commands))
            results.append(result)
        return results

    async def _complete_request(self, ctx: CommandContext, body: Element | None) -> SyncRequest:
        """The request to run: as sent, or completed from the cache."""
        version = ctx.request.protocol_version
        if body is None:
            if not at_least(version, "12.1"):
                raise SyncProtocolError("empty Sync request before 12.1")
            cached = await read_request_cache(ctx)
            if not cached or not cached.get("collections"):
                raise IncompleteRequest()
            ids = [str(c["id"]) for c in cached["collections"]]
            return request_from_cache(cached, await current_keys(ctx, ids))
        request = parse_sync(body, version)
        if not at_least(version, "12.1"):
            return request
        cached = await read_request_cache(ctx)
        if request.partial or not request.collections:
            if not cached or not cached.get("collections"):
                raise IncompleteRequest()
            listed = {c.collection_id for c in request.collections}
            others = [c for c in cached["collections"] if str(c["id"]) not in listed]
            keys = await current_keys(ctx, [str(c["id"]) for c in others])
            timing_sent = request.wait is not None or request.heartbeat_interval is not None
            request = SyncRequest(
                collections=request.collections + tuple(
                    CollectionRequest.from_cache(c, keys.get(str(c["id"]))) for c in others),
                wait=request.wait if timing_sent else cached.get("wait"),
                heartbeat_interval=(request.heartbeat_interval if timing_sent
                                    else cached.get("heartbeat")),
                window_size=(request.window_size if request.window_size is not None
                             else cached.get("window")),
                partial=True,
                has_collections=True,
            )
        wanted = request.to_cache()
        if wanted != cached:
            store: Any = ctx.store
            req = ctx.request
            await store.advance_sync_state(req.device_id, req.account, REQUEST_CACHE_ID,
                                           None, 1, json.dumps(wanted, separators=(",", ":")))
        return request


def _known_revisions(results: list[CollectionResult]) -> dict[str, int]:
    """topic -> the lowest revision the device is up to date with, over the
    results of one pass that had nothing to report."""
    known: dict[str, int] = {}
    for result in results:
        if result.topic and result.revision is not None:
            previous = known.get(result.topic)
            known[result.topic] = (result.revision if previous is None
                                   else min(previous, result.revision))
    return known


def _wait_limit(request: SyncRequest) -> int | None:
    """The Limit to answer with Status 14, or None if Wait/HeartbeatInterval is fine."""
    if request.wait is not None:
        if request.wait < MIN_WAIT_MINUTES:
            return MIN_WAIT_MINUTES
        if request.wait > MAX_WAIT_MINUTES:
            return MAX_WAIT_MINUTES
    if request.heartbeat_interval is not None:
        if request.heartbeat_interval < MIN_HEARTBEAT_SECONDS:
            return MIN_HEARTBEAT_SECONDS
        if request.heartbeat_interval > MAX_HEARTBEAT_SECONDS:
            return MAX_HEARTBEAT_SECONDS
    return None


def _status(status: int) -> CommandResponse:
    return CommandResponse(body=status_only(status), status=str(int(status)))
