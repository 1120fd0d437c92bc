"""The groupware backend's transactions, as state-store programs (generators
yielding :class:`~easyncd.store.programs.Query` / ``Execute``).

A program never raises a :class:`GroupwareError`: it returns a
:class:`Refusal` instead, and only before it has written anything (the one
write it may have done is the no-op update that locks a row).  The backend
raises the error after the transaction ended.  This keeps the store's
"unexpected error" handling (and its log line) for real failures.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

from easyncd.backends.groupware import statements as sql
from easyncd.backends.groupware.items import (
    ADD,
    CHANGE,
    DEFAULT_NAMES,
    DELETE,
    KIND_ORDER,
    net_changes,
)
from easyncd.backends.interfaces import (
    Collection,
    CollectionExists,
    DefaultCollection,
    GroupwareError,
    HistoryTrimmed,
    Item,
    ItemChanges,
    NoSuchCollection,
    NoSuchItem,
)
from easyncd.store.programs import Execute, Program, Query, Row

T = TypeVar("T")

#: Ids per IN (...) list and rows per multi-row INSERT.
CHUNK = 200


@dataclass(frozen=True)
class Refusal:
    """A deliberate error, raised by the backend once the transaction ended."""

    error: Exception


#: Checks item data against a collection kind: a Refusal, or None when it fits.
KindCheck = Callable[[str], "Refusal | None"]


@dataclass(frozen=True)
class _CollectionRow:
    collection: Collection
    number: int
    revision: int
    min_revision: int
    last_item_id: int


def _collection_row(row: Row) -> _CollectionRow:
    collection = Collection(
        user=row[1],
        collection_id=str(row[0]),
        kind=row[2],
        display_name=row[3],
        is_default=bool(row[4]),
        synced=bool(row[5]),
    )
    return _CollectionRow(collection, int(row[0]), int(row[6]), int(row[7]), int(row[8]))


def _item(collection: int, row: Row) -> Item:
    return Item(
        collection_id=str(collection),
        item_id=str(row[0]),
        data=row[2],
        revision=int(row[3]),
        uid=row[1],
    )


def _no_collection(user: str, collection: int | str | None) -> Refusal:
    return Refusal(NoSuchCollection(f"collection {collection} of user {user}"))


def _no_item(collection: int, item: int | str | None) -> Refusal:
    return Refusal(NoSuchItem(f"item {item} in collection {collection}"))


def _lock(user: str, collection: int) -> Program[_CollectionRow | None]:
    rows = yield Query(sql.LOCK_COLLECTION, (collection, user))
    return _collection_row(rows[0]) if rows else None


# -- users and collections -----------------------------------------------------------


def _ensure_user(user: str) -> Program[None]:
    """Insert the user and their default collections the first time."""
    created = yield Execute(sql.INSERT_USER, (user,))
    if created:
        for kind in KIND_ORDER:
            yield from _insert_collection(user, kind, DEFAULT_NAMES[kind], True)
    return None


def _insert_collection(
    user: str, kind: str, display_name: str, is_default: bool
) -> Program[Collection]:
    rows = yield Query(sql.NEXT_COLLECTION_ID)
    number = int(rows[0][0])
    yield Execute(sql.INSERT_COLLECTION, (number, user, kind, display_name, is_default, True))
    return Collection(user, str(number), kind, display_name, is_default, True)


def _list(user: str, kind: str | None, include_unsynced: bool) -> Program[list[Collection]]:
    if kind is None:
        rows = yield Query(sql.SELECT_LIVE_COLLECTIONS, (user,))
    else:
        rows = yield Query(sql.SELECT_LIVE_COLLECTIONS_OF_KIND, (user, kind))
    collections = [_collection_row(row).collection for row in rows]
    if not include_unsynced:
        collections = [c for c in collections if c.synced]
    return collections


def list_known(
    user: str, kind: str | None, include_unsynced: bool
) -> Program[list[Collection] | None]:
    """The user's collections, or None if the user was never seen (read only)."""
    known = yield Query(sql.SELECT_USER, (user,))
    if not known:
        return None
    return (yield from _list(user, kind, include_unsynced))


def list_creating(
    user: str, kind: str | None, include_unsynced: bool
) -> Program[list[Collection]]:
    """Create the user's defaults if needed, then list."""
    yield from _ensure_user(user)
    return (yield from _list(user, kind, include_unsynced))


def get_collection(user: str, collection: int) -> Program[Collection | Refusal]:
    """One live collection."""
    rows = yield Query(sql.SELECT_LIVE_COLLECTION, (collection, user))
    if not rows:
        return _no_collection(user, collection)
    return _collection_row(rows[0]).collection


def _name_taken(
    user: str, kind: str, display_name: str, except_id: int | None = None
) -> Program[Refusal | None]:
    rows = yield Query(sql.SELECT_NAME_TAKEN, (user, kind, display_name))
    if any(int(row[0]) != except_id for row in rows):
        return Refusal(CollectionExists(f"{kind} collection {display_name!r} of user {user}"))
    return None


def create_collection(user: str, kind: str, display_name: str) -> Program[Collection | Refusal]:
    """A new, synced, non-default collection."""
    yield from _ensure_user(user)
    yield Execute(sql.LOCK_USER, (user,))
    refusal = yield from _name_taken(user, kind, display_name)
    if refusal is not None:
        return refusal
    return (yield from _insert_collection(user, kind, display_name, False))


def rename_collection(
    user: str, collection: int, display_name: str
) -> Program[Collection | Refusal]:
    """Rename a live collection."""
    yield Execute(sql.LOCK_USER, (user,))
    current = yield from _lock(user, collection)
    if current is None:
        return _no_collection(user, collection)
    refusal = yield from _name_taken(user, current.collection.kind, display_name, collection)
    if refusal is not None:
        return refusal
    yield Execute(sql.RENAME_COLLECTION, (display_name, collection))
    c = current.collection
    return Collection(c.user, c.collection_id, c.kind, display_name, c.is_default, c.synced)


def delete_collection(user: str, collection: int) -> Program[None | Refusal]:
    """Delete a non-default collection, its items and its history."""
    current = yield from _lock(user, collection)
    if current is None:
        return _no_collection(user, collection)
    if current.collection.is_default:
        return Refusal(DefaultCollection(
            f"collection {collection} of user {user} is the default {current.collection.kind}"
            " collection"))
    yield Execute(sql.DELETE_COLLECTION_ITEMS, (collection,))
    yield Execute(sql.DELETE_COLLECTION_HISTORY, (collection,))
    yield Execute(sql.MARK_COLLECTION_DELETED, (True, collection))
    return None


def set_synced(user: str, collection: int, synced: bool) -> Program[Collection | Refusal]:
    """Show or hide a collection on devices."""
    current = yield from _lock(user, collection)
    if current is None:
        return _no_collection(user, collection)
    c = current.collection
    if c.is_default and not synced:
        return Refusal(DefaultCollection(
            f"the default {c.kind} collection of user {user} always syncs"))
    if c.synced != synced:
        yield Execute(sql.SET_SYNCED, (synced, collection))
    return Collection(c.user, c.collection_id, c.kind, c.display_name, c.is_default, synced)


def current_revision(user: str, collection: int) -> Program[int | Refusal]:
    """The revision of a live collection."""
    rows = yield Query(sql.SELECT_REVISION, (collection, user))
    if not rows:
        return _no_collection(user, collection)
    return int(rows[0][0])


def watch_revisions(user: str, collections: Sequence[int]) -> Program[dict[str, int]]:
    """The revisions of those live collections of the user that exist."""
    found: dict[str, int] = {}
    for start in range(0, len(collections), CHUNK):
        chunk = tuple(collections[start:start + CHUNK])
        rows = yield Query(sql.select_revisions(len(chunk)), (user, *chunk))
        found.update((str(row[0]), int(row[1])) for row in rows)
    return found


# -- items ------------------------------------------------------------------------------------


def list_items(user: str, collection: int) -> Program[tuple[int, list[str]] | Refusal]:
    """The revision and the live item ids, in one read."""
    rows = yield Query(sql.SELECT_REVISION, (collection, user))
    if not rows:
        return _no_collection(user, collection)
    ids = yield Query(sql.SELECT_ITEM_IDS, (collection,))
    return int(rows[0][0]), [str(row[0]) for row in ids]


def get_items(
    user: str, collection: int, items: Sequence[tuple[str, int | None]]
) -> Program[list[Item] | Refusal]:
    """The items that exist, in the order asked (``items``: (asked id, number))."""
    rows = yield Query(sql.SELECT_REVISION, (collection, user))
    if not rows:
        return _no_collection(user, collection)
    numbers = sorted({number for _, number in items if number is not None})
    found: dict[str, Item] = {}
    for start in range(0, len(numbers), CHUNK):
        chunk = tuple(numbers[start:start + CHUNK])
        item_rows = yield Query(sql.select_items(len(chunk)), (collection, *chunk))
        for row in item_rows:
            item = _item(collection, row)
            found[item.item_id] = item
    return [found[asked] for asked, number in items if number is not None and asked in found]


def changes_since(
    user: str, collection: int, since: int, until: int | None
) -> Program[ItemChanges | Refusal]:
    """Net changes of (since, until] from the history rows of that range."""
    rows = yield Query(sql.SELECT_REVISION, (collection, user))
    if not rows:
        return _no_collection(user, collection)
    revision, min_revision = int(rows[0][0]), int(rows[0][1])
    end = revision if until is None else min(until, revision)
    if since < min_revision or since > revision:
        return Refusal(HistoryTrimmed(
            f"revision {since} of collection {collection} is not in the kept history"
            f" ({min_revision}..{revision})"))
    if end <= since:
        return ItemChanges(since=since, until=max(end, since))
    history = yield Query(sql.SELECT_HISTORY, (collection, since, end))
    return net_changes(
        ((int(row[0]), str(row[1]), row[2]) for row in history), since, end
    )


def add_items(
    user: str, collection: int, kind_check: KindCheck, entries: Sequence[tuple[str | None, str]],
    now: float,
) -> Program[list[Item] | Refusal]:
    """Add items (``entries``: (uid, data)) at consecutive revisions.
    ``kind_check(kind)`` returns a Refusal when the data does not fit."""
    current = yield from _lock(user, collection)
    if current is None:
        return _no_collection(user, collection)
    refusal = kind_check(current.collection.kind)
    if refusal is not None:
        return refusal
    revision, last_id = current.revision, current.last_item_id
    added: list[Item] = []
    for start in range(0, len(entries), CHUNK):
        chunk = entries[start:start + CHUNK]
        item_params: list[Any] = []
        history_params: list[Any] = []
        for uid, data in chunk:
            revision += 1
            last_id += 1
            item_params.extend((collection, last_id, uid, data, revision))
            history_params.extend((collection, revision, last_id, ADD, now))
            added.append(Item(str(collection), str(last_id), data, revision, uid))
        yield Execute(sql.insert_items(len(chunk)), tuple(item_params))
        yield Execute(sql.insert_history_rows(len(chunk)), tuple(history_params))
    yield Execute(sql.SET_COUNTERS, (revision, last_id, collection))
    return added


def update_item(
    user: str, collection: int, kind_check: KindCheck, item: int | None, asked: str, uid: str | None,
    data: str, now: float,
) -> Program[Item | Refusal]:
    """Replace the data of a live item."""
    current = yield from _lock(user, collection)
    if current is None:
        return _no_collection(user, collection)
    if item is None:
        return _no_item(collection, asked)
    exists = yield Query(sql.SELECT_ITEM, (collection, item))
    if not exists:
        return _no_item(collection, item)
    refusal = kind_check(current.collection.kind)
    if refusal is not None:
        return refusal
    revision = current.revision + 1
    yield Execute(sql.UPDATE_ITEM, (uid, data, revision, collection, item))
    yield Execute(sql.INSERT_HISTORY, (collection, revision, item, CHANGE, now))
    yield Execute(sql.SET_COUNTERS, (revision, current.last_item_id, collection))
    return Item(str(collection), str(item), data, revision, uid)


def delete_item(
    user: str, collection: int, item: int | None, asked: str, now: float
) -> Program[None | Refusal]:
    """Delete a live item."""
    current = yield from _lock(user, collection)
    if current is None:
        return _no_collection(user, collection)
    if item is None:
        return _no_item(collection, asked)
    exists = yield Query(sql.SELECT_ITEM, (collection, item))
    if not exists:
        return _no_item(collection, item)
    revision = current.revision + 1
    yield Execute(sql.DELETE_ITEM, (collection, item))
    yield Execute(sql.INSERT_HISTORY, (collection, revision, item, DELETE, now))
    yield Execute(sql.SET_COUNTERS, (revision, current.last_item_id, collection))
    return None


def move_item(
    user: str, source: int, item: int | None, asked: str, target: int, now: float
) -> Program[Item | Refusal]:
    """A delete in ``source``, an add (with a new id) in ``target``."""
    locked: dict[int, _CollectionRow] = {}
    for number in sorted({source, target}):  # one lock order: no deadlocks
        row = yield from _lock(user, number)
        if row is None:
            return _no_collection(user, number)
        locked[number] = row
    src, dst = locked[source], locked[target]
    if src.collection.kind != dst.collection.kind:
        return Refusal(ValueError(
            f"cannot move a {src.collection.kind} item into a {dst.collection.kind}"
            " collection"))
    if item is None:
        return _no_item(source, asked)
    rows = yield Query(sql.SELECT_ITEM, (source, item))
    if not rows:
        return _no_item(source, item)
    moving = _item(source, rows[0])
    if source == target:
        return moving
    yield Execute(sql.DELETE_ITEM, (source, item))
    yield Execute(sql.INSERT_HISTORY, (source, src.revision + 1, item, DELETE, now))
    yield Execute(sql.SET_COUNTERS, (src.revision + 1, src.last_item_id, source))
    new_id, revision = dst.last_item_id + 1, dst.revision + 1
    yield Execute(sql.INSERT_ITEM, (target, new_id, moving.uid, moving.data, revision))
    yield Execute(sql.INSERT_HISTORY, (target, revision, new_id, ADD, now))
    yield Execute(sql.SET_COUNTERS, (revision, new_id, target))
    return Item(str(target), str(new_id), moving.data, revision, moving.uid)


def empty_collection(user: str, collection: int, now: float) -> Program[int | Refusal]:
    """Delete every item, one history row (and revision) each."""
    current = yield from _lock(user, collection)
    if current is None:
        return _no_collection(user, collection)
    rows = yield Query(sql.COUNT_ITEMS, (collection,))
    count = int(rows[0][0])
    if count:
        yield Execute(sql.INSERT_DELETES_FOR_ALL_ITEMS, (current.revision, now, collection))
        yield Execute(sql.DELETE_COLLECTION_ITEMS, (collection,))
        yield Execute(
            sql.SET_COUNTERS, (current.revision + count, current.last_item_id, collection))
    return count


def trim_history(older_than: float) -> Program[int]:
    """Forget history written before ``older_than``; raise min_revision."""
    points = yield Query(sql.SELECT_TRIM_POINTS, (older_than,))
    removed = 0
    for collection, revision in points:
        removed += yield Execute(sql.DELETE_HISTORY_UP_TO, (collection, revision))
        yield Execute(sql.RAISE_MIN_REVISION, (revision, collection, revision))
    return removed


def refusal_error(value: object) -> GroupwareError | ValueError | None:
    """The error inside a Refusal, or None."""
    if isinstance(value, Refusal):
        return value.error  # type: ignore[return-value]
    return None
