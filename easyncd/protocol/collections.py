"""From a folder server id (what the device sends as CollectionId) to the
backend collection behind it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from easyncd.backends.interfaces import KIND_CALENDAR, KIND_CONTACTS, KIND_NOTES, KIND_TASKS
from easyncd.protocol.context import CommandContext
from easyncd.store.interfaces import Folder, NoSuchFolder

GROUPWARE_PREFIX = "groupware:"

#: FolderHierarchy Type -> groupware kind (defaults and user-created folders).
KIND_OF_TYPE = {9: KIND_CONTACTS, 14: KIND_CONTACTS, 8: KIND_CALENDAR, 13: KIND_CALENDAR,
                7: KIND_TASKS, 15: KIND_TASKS, 10: KIND_NOTES, 17: KIND_NOTES}


def groupware_backend_id(collection_id: str) -> str:
    """The folders table's backend_id (and push topic) of a groupware collection."""
    return GROUPWARE_PREFIX + collection_id


@dataclass(frozen=True)
class ResolvedCollection:
    """A device's CollectionId resolved: the folder, the backend, the ids."""

    folder: Folder
    kind: str
    collection_id: str

    @property
    def topic(self) -> str:
        """The push topic of this collection."""
        return self.folder.backend_id


async def resolve_collection(ctx: CommandContext, server_id: str) -> ResolvedCollection | None:
    """The groupware collection behind a folder server id, or None when the
    folder does not exist or is not a groupware collection."""
    store: Any = ctx.store
    try:
        folder: Folder = await store.get_folder(ctx.request.account, server_id)
    except NoSuchFolder:
        return None
    if not folder.backend_id.startswith(GROUPWARE_PREFIX):
        return None
    kind = KIND_OF_TYPE.get(folder.folder_type)
    if kind is None:
        return None
    return ResolvedCollection(folder, kind, folder.backend_id[len(GROUPWARE_PREFIX):])
