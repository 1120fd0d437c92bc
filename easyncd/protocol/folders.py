"""The folder hierarchy as EAS shows it: folder types, the default folders,
and which folder types a protocol version may see.

Folder type numbers are the FolderHierarchy ``Type`` values of MS-ASCMD
2.2.3.186.3.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from easyncd.protocol.versions import at_least
from easyncd.store.interfaces import Folder

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

#: The built-in folders every user gets on the first FolderSync, as
#: (display_name, folder_type, backend_id), the shape
#: ``IStateStore.ensure_default_folders`` takes.
DEFAULT_FOLDERS: tuple[tuple[str, int, str], ...] = (
    ("Contacts", TYPE_CONTACTS, "groupware:contacts:default"),
    ("Calendar", TYPE_CALENDAR, "groupware:calendar:default"),
    ("Tasks", TYPE_TASKS, "groupware:tasks:default"),
    ("Notes", TYPE_NOTES, "groupware:notes:default"),
)

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
