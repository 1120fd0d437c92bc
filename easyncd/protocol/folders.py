"""The folder hierarchy as EAS shows it: folder types, which folder types a
protocol version may see, and the groupware collections as folders.

Folder type numbers are the FolderHierarchy ``Type`` values of MS-ASCMD
2.2.3.186.3.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from twisted.logger import Logger

from easyncd.backends.interfaces import (
    EAS_CLASS,
    KIND_CALENDAR,
    KIND_CONTACTS,
    KIND_NOTES,
    KIND_TASKS,
    Collection,
)
from easyncd.protocol.collections import GROUPWARE_PREFIX, groupware_backend_id
from easyncd.protocol.versions import at_least
from easyncd.store.interfaces import Folder, FolderExists, NoSuchFolder

# FolderHierarchy Type values (MS-ASCMD 2.2.3.186.3).
TYPE_USER_GENERIC = 1
TYPE_INBOX = 2
TYPE_DRAFTS = 3
TYPE_DELETED_ITEMS = 4
TYPE_SENT_ITEMS = 5
TYPE_OUTBOX = 6
TYPE_TASKS = 7
TYPE_CALENDAR = 8
TYPE_CONTACTS = 9
TYPE_NOTES = 10
TYPE_JOURNAL = 11
TYPE_USER_MAIL = 12
TYPE_USER_CALENDAR = 13
TYPE_USER_CONTACTS = 14
TYPE_USER_TASKS = 15
TYPE_USER_JOURNAL = 16
TYPE_USER_NOTES = 17
TYPE_UNKNOWN = 18
TYPE_RECIPIENT_CACHE = 19

#: The folder type of a kind's default collection.
DEFAULT_TYPE_OF_KIND: dict[str, int] = {
    KIND_CONTACTS: TYPE_CONTACTS,
    KIND_CALENDAR: TYPE_CALENDAR,
    KIND_TASKS: TYPE_TASKS,
    KIND_NOTES: TYPE_NOTES,
}

#: The folder type of a kind's other (user-created) collections.
USER_TYPE_OF_KIND: dict[str, int] = {
    KIND_CONTACTS: TYPE_USER_CONTACTS,
    KIND_CALENDAR: TYPE_USER_CALENDAR,
    KIND_TASKS: TYPE_USER_TASKS,
    KIND_NOTES: TYPE_USER_NOTES,
}

#: FolderCreate Type -> the kind of collection it creates.
KIND_OF_USER_TYPE: dict[int, str] = {t: kind for kind, t in USER_TYPE_OF_KIND.items()}

#: Folder types the client may not rename or delete (MS-ASCMD calls them
#: special folders): the default folders of every class and the recipient
#: information cache.
SPECIAL_TYPES = frozenset({
    TYPE_INBOX, TYPE_DRAFTS, TYPE_DELETED_ITEMS, TYPE_SENT_ITEMS, TYPE_OUTBOX,
    TYPE_TASKS, TYPE_CALENDAR, TYPE_CONTACTS, TYPE_NOTES, TYPE_JOURNAL,
    TYPE_RECIPIENT_CACHE,
})

#: The top of the hierarchy (ParentId of top-level folders).
TOP = "0"

_log = Logger()


def folder_type_of(collection: Collection) -> int:
    """The FolderHierarchy Type a groupware collection is shown with."""
    table = DEFAULT_TYPE_OF_KIND if collection.is_default else USER_TYPE_OF_KIND
    return table[collection.kind]


#: Folder types that exist only from a protocol version on.  The Notes class
#: (MS-ASNOTE) came with 14.0; older clients must not see Notes folders.
_MIN_VERSION_OF_TYPE: dict[int, str] = {
    TYPE_NOTES: "14.0",
    TYPE_USER_NOTES: "14.0",
}


def type_visible(folder_type: int, protocol_version: str) -> bool:
    """Whether a folder of ``folder_type`` may be sent to a client speaking
    ``protocol_version``."""
    minimum = _MIN_VERSION_OF_TYPE.get(folder_type)
    return minimum is None or at_least(protocol_version, minimum)


def visible_folders(
    folders: Iterable[Folder], protocol_version: str, hierarchy: Iterable[Folder] = ()
) -> list[Folder]:
    """The folders a client of ``protocol_version`` may see, in the given
    order; a folder under a hidden folder is hidden too.  ``hierarchy`` (the
    user's live folders) lets the ancestors of ``folders`` be found when
    they are not in ``folders`` themselves."""
    folders = list(folders)
    by_id = {f.server_id: f for f in hierarchy}
    by_id.update((f.server_id, f) for f in folders)
    hidden = {
        sid for sid, f in by_id.items() if not type_visible(f.folder_type, protocol_version)
    }
    result = []
    for folder in folders:
        if _hidden_by_ancestry(folder, hidden, by_id):
            continue
        result.append(folder)
    return result


def _hidden_by_ancestry(folder: Folder, hidden: set[str], by_id: dict[str, Folder]) -> bool:
    seen: set[str] = set()
    current: Folder | None = folder
    while current is not None and current.server_id not in seen:
        if current.server_id in hidden:
            return True
        seen.add(current.server_id)
        current = by_id.get(current.parent_id)
    return False


def parents_first(folders: Sequence[Folder]) -> list[Folder]:
    """Order ``folders`` so that a folder comes after its parent when both are
    in the list (the client must know a parent before it adds a child);
    otherwise the order (by server id) is kept."""
    pending = sorted(folders, key=_server_id_key)
    ids = {f.server_id for f in pending}
    placed: set[str] = set()
    result: list[Folder] = []
    while pending:
        rest = []
        for folder in pending:
            if folder.parent_id in ids and folder.parent_id not in placed:
                rest.append(folder)
            else:
                result.append(folder)
                placed.add(folder.server_id)
        if len(rest) == len(pending):  # a cycle: should not happen, keep them all
            result.extend(rest)
            break
        pending = rest
    return result


def _server_id_key(folder: Folder) -> tuple[int, int, str]:
    sid = folder.server_id
    return (0, int(sid), "") if sid.isdigit() else (1, 0, sid)


# -- groupware collections as folders --------------------------------------------------


async def reconcile_groupware_folders(
    store: Any, groupware: Any, user: str, log: Logger | None = None
) -> int:
    """Make the folders table show exactly the user's synced groupware
    collections: a top-level folder per collection (backend id
    ``groupware:<collection id>``), the default collection of a kind with the
    default folder type, the others with the user-created type.  A renamed
    collection renames its folder, a removed or unsynced one deletes it.

    One list of collections and one of folders; writes only what differs,
    so calling it again changes nothing.  Two display names may not meet
    under one parent, so a collection whose name another folder has is shown
    as ``"Name (Class)"`` (then ``"Name (Class 2)"`` ...); a folder keeps the
    name it has when it may.  Returns the number of folder writes.
    """
    log = log or _log
    collections: list[Collection] = list(
        await groupware.list_collections(user, include_unsynced=False)
    )
    folders: list[Folder] = list(await store.list_folders(user))
    wanted = {groupware_backend_id(c.collection_id): c for c in collections}
    ours: dict[str, Folder] = {}
    writes = 0
    for folder in folders:
        if not folder.backend_id.startswith(GROUPWARE_PREFIX):
            continue
        collection = wanted.get(folder.backend_id)
        if (collection is None or folder.backend_id in ours
                or folder.folder_type != folder_type_of(collection)):
            # Gone, unsynced, a duplicate, or its type changed (it became or
            # stopped being the default): delete (and add again below).
            writes += await _quietly(store.delete_folder(user, folder.server_id))
            continue
        ours[folder.backend_id] = folder

    names = _display_names(collections, ours, folders)
    # Renames: a wanted name may be held by another folder that is renamed
    # away in the same pass, so retry while something moves.
    pending = [
        (ours[backend_id], name) for backend_id, name in names.items()
        if backend_id in ours and ours[backend_id].display_name != name
    ]
    while pending:
        stuck = []
        for folder, name in pending:
            try:
                await store.update_folder(user, folder.server_id, name, folder.parent_id)
                writes += 1
            except FolderExists:
                stuck.append((folder, name))
            except NoSuchFolder:
                pass
        if len(stuck) == len(pending):
            # A cycle (names swapped): move one folder out of the way first.
            folder, name = stuck[0]
            aside = f"{folder.display_name} ({folder.server_id})"
            try:
                await store.update_folder(user, folder.server_id, aside, folder.parent_id)
                writes += 1
            except (FolderExists, NoSuchFolder):
                for folder, name in stuck:
                    log.warn("Cannot rename folder {server_id} of {user} to {name}: name taken",
                             server_id=folder.server_id, user=user, name=name)
                break
        pending = stuck
    for collection in collections:
        backend_id = groupware_backend_id(collection.collection_id)
        if backend_id in ours:
            continue
        try:
            await store.add_folder(user, TOP, names[backend_id], folder_type_of(collection),
                                   backend_id)
            writes += 1
        except FolderExists:
            # Most likely a concurrent request added it just now.
            log.info("Folder for collection {collection_id} of {user} not added: name taken",
                     collection_id=collection.collection_id, user=user)
    return writes


def _display_names(
    collections: Sequence[Collection], ours: dict[str, Folder], folders: Sequence[Folder]
) -> dict[str, str]:
    """backend id -> the display name its folder should have."""
    taken = {
        f.display_name for f in folders
        if f.parent_id == TOP and not f.backend_id.startswith(GROUPWARE_PREFIX)
    }

    def priority(item: tuple[int, Collection]) -> tuple[int, int, int]:
        index, collection = item
        folder = ours.get(groupware_backend_id(collection.collection_id))
        keeps = folder is not None and folder.display_name == collection.display_name
        return (0 if keeps else 1, 0 if collection.is_default else 1, index)

    names: dict[str, str] = {}
    for _, collection in sorted(enumerate(collections), key=priority):
        base = collection.display_name
        label = EAS_CLASS.get(collection.kind, collection.kind)
        candidate = base
        number = 1
        while candidate in taken:
            candidate = f"{base} ({label})" if number == 1 else f"{base} ({label} {number})"
            number += 1
        taken.add(candidate)
        names[groupware_backend_id(collection.collection_id)] = candidate
    return names


async def _quietly(deferred: Any) -> int:
    """Await a folder write that may lose a race with another request."""
    try:
        await deferred
    except NoSuchFolder:
        return 0
    return 1
