"""Writes a device made outside Sync, marked in its Sync states so that the
next Sync does not send them back (the "own changes" of :mod:`.state`).

MoveItems moves an item (a delete in the source collection's history, an add
in the destination's) and EmptyFolderContents deletes every item: the device
has already done the same locally, so the Delete/Add the history reports must
not be echoed to *that* device; other devices get them as usual.

The marks are written into the collection's current state under the same
key (the device still holds that key): the store's compare-and-set moves
``previous_key`` to the current key, so a retry with the key before it
(the answer to it was lost *and* the device moved items meanwhile) starts
that collection over (Status 3) instead of replaying an answer that no
longer matches.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from easyncd.protocol.context import CommandContext
from easyncd.protocol.sync.state import DELETED, CollectionState
from easyncd.store.interfaces import SyncStateConflict

#: Compare-and-set attempts against a concurrent Sync of the same collection.
_ATTEMPTS = 3


async def record_device_writes(
    ctx: CommandContext,
    folder_server_id: str,
    written: Mapping[str, int] | None = None,
    deleted: Iterable[str] = (),
) -> bool:
    """Mark, in the requesting device's Sync state of a folder, the items it
    wrote (``written``: item id -> the revision it now has) and deleted.
    False when the device has no usable state there (it will sync from key
    0 and get the current contents anyway) or the state kept changing."""
    store: Any = ctx.store
    req = ctx.request
    gone = list(deleted)
    for _ in range(_ATTEMPTS):
        stored = await store.get_sync_state(req.device_id, req.account, folder_server_id)
        if stored is None:
            return False
        state = CollectionState.from_text(stored.state)
        if state is None:
            return False
        own = dict(state.own)
        if written:
            own.update(written)
        own.update((item_id, DELETED) for item_id in gone)
        held = state.held
        if held is not None:
            held = (held | frozenset(written or ())) - frozenset(gone)
        new_state = state.evolve(own=own, held=held)
        try:
            await store.advance_sync_state(req.device_id, req.account, folder_server_id,
                                           stored.sync_key, stored.sync_key,
                                           new_state.to_text())
        except SyncStateConflict:
            continue  # a Sync of the folder advanced the key meanwhile: mark the new state
        return True
    ctx.log.warn("Could not mark device writes in {folder} for {device_id}",
                 folder=folder_server_id, device_id=req.device_id)
    return False


__all__ = ["record_device_writes"]
