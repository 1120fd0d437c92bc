"""Pure helpers of the groupware backends (SQL and memory): checking item
text, finding its UID without parsing it, turning history rows into net
changes, and the default collections."""
from __future__ import annotations

import re
from typing import Iterable

from easyncd.backends.interfaces import (
    KIND_CALENDAR,
    KIND_CONTACTS,
    KIND_NOTES,
    KIND_TASKS,
    KINDS,
    InvalidItem,
    ItemChanges,
)

ADD = "add"
CHANGE = "change"
DELETE = "delete"

#: The display names of the default collections, created once per user.
DEFAULT_NAMES = {KIND_CONTACTS: "Contacts", KIND_CALENDAR: "Calendar", KIND_TASKS: "Tasks",
                 KIND_NOTES: "Notes"}

#: Kinds in the order collections are listed (then by id).
KIND_ORDER = tuple(sorted(KINDS))

_BEGIN = {KIND_CONTACTS: "BEGIN:VCARD"}
_UID = re.compile(r"^UID(?:;[^:\r\n]*)?:(?P<value>[^\r\n]*)(?P<folded>(?:\r?\n[ \t][^\r\n]*)*)",
                  re.IGNORECASE | re.MULTILINE)


def check_kind(kind: str) -> None:
    """ValueError unless ``kind`` is one of KINDS."""
    if kind not in KINDS:
        raise ValueError(f"unknown collection kind {kind!r}")


def check_item(kind: str, data: object) -> str | None:
    """Check that ``data`` can be stored in a collection of ``kind`` and
    return its UID (or None).  InvalidItem when it is not a vCard (contacts)
    or an iCalendar object (the other kinds).  A text scan, no parsing."""
    if not isinstance(data, str) or not data.strip():
        raise InvalidItem("an item must be non-empty text")
    begin = _BEGIN.get(kind, "BEGIN:VCALENDAR")
    if begin not in data.upper():
        raise InvalidItem(f"a {kind} item must contain {begin}")
    return extract_uid(data)


def extract_uid(data: str) -> str | None:
    """The value of the first UID property (unfolded), or None."""
    match = _UID.search(data)
    if match is None:
        return None
    value = match.group("value")
    folded = match.group("folded")
    if folded:
        value += "".join(line[1:] for line in folded.replace("\r\n", "\n").split("\n")[1:])
    value = value.strip()
    return value or None


def parse_id(value: object) -> int | None:
    """A collection or item id as a number, or None when it cannot be one of
    ours (then the caller answers NoSuchCollection / NoSuchItem)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value > 0 else None
    if not isinstance(value, str) or not value.isdigit() or len(value) > 18:
        return None
    number = int(value)
    return number if number > 0 and str(number) == value else None


def net_changes(
    rows: Iterable[tuple[int, str, str]], since: int, until: int
) -> ItemChanges:
    """The net changes of (since, until] from history rows
    ``(revision, item_id, action)`` in revision order: an item first added in
    the range is an add (or nothing, if it was deleted again); an item that
    existed before is a change or a delete, by its last action.  Each id is
    placed at the revision of its last action."""
    first: dict[str, str] = {}
    last: dict[str, tuple[int, str]] = {}
    for revision, item_id, action in rows:
        first.setdefault(item_id, action)
        last[item_id] = (revision, action)
    added: list[tuple[int, str]] = []
    changed: list[tuple[int, str]] = []
    deleted: list[tuple[int, str]] = []
    for item_id, (revision, action) in last.items():
        is_new = first[item_id] == ADD
        if action == DELETE:
            if not is_new:
                deleted.append((revision, item_id))
        elif is_new:
            added.append((revision, item_id))
        else:
            changed.append((revision, item_id))
    return ItemChanges(
        since=since,
        until=until,
        added=tuple(item_id for _, item_id in sorted(added)),
        changed=tuple(item_id for _, item_id in sorted(changed)),
        deleted=tuple(item_id for _, item_id in sorted(deleted)),
    )


def collection_topic(collection_id: str) -> str:
    """The push topic of a collection (the folders' backend_id)."""
    return f"groupware:{collection_id}"
