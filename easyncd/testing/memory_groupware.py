"""An in-memory IGroupwareBackend for protocol unit tests.

It has the semantics of the SQL backend (and passes the same conformance
tests): Deferreds fire at once, a failing write leaves nothing half-written,
the push hub is told after every successful write.
"""
from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Sequence, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from easyncd.backends.groupware.items import (
    ADD,
    CHANGE,
    DEFAULT_NAMES,
    DELETE,
    KIND_ORDER,
    check_item,
    check_kind,
    collection_topic,
    net_changes,
    parse_id,
)
from easyncd.backends.interfaces import (
    Collection,
    CollectionExists,
    DefaultCollection,
    HistoryTrimmed,
    IGroupwareBackend,
    Item,
    ItemChanges,
    NoSuchCollection,
    NoSuchItem,
)
from easyncd.store.interfaces import StoreError

T = TypeVar("T")


@dataclass
class _Collection:
    collection: Collection
    revision: int = 0
    min_revision: int = 0
    last_item_id: int = 0
    deleted: bool = False
    items: dict[int, Item] = field(default_factory=dict)
    #: (revision, item id, action, written_at), by revision.
    history: list[tuple[int, int, str, float]] = field(default_factory=list)

    def snapshot(self) -> "_Collection":
        return _Collection(self.collection, self.revision, self.min_revision,
                           self.last_item_id, self.deleted, dict(self.items),
                           list(self.history))


@implementer(IGroupwareBackend)
class MemoryGroupwareBackend:
    """IGroupwareBackend in memory.

    ``fail_history_writes``: when set (tests of atomicity), every write fails
    with a StoreError at the point where it writes history, after it changed
    items, and must leave nothing behind.
    """

    def __init__(self, clock: Any = None, hub: Any = None) -> None:
        self._clock = clock
        self._hub = hub
        self._users: set[str] = set()
        self._last_collection_id = 0
        self._collections: dict[int, _Collection] = {}
        self.fail_history_writes = False

    # plumbing ---------------------------------------------------------------------

    def _now(self) -> float:
        return float(self._clock.seconds()) if self._clock is not None else time.time()

    def _live(self, user: str, collection_id: object) -> _Collection:
        number = parse_id(collection_id)
        found = self._collections.get(number) if number is not None else None
        if found is None or found.deleted or found.collection.user != user:
            raise NoSuchCollection(f"collection {collection_id} of user {user}")
        return found

    def _call(self, function: Callable[[], T]) -> "Deferred[T]":
        try:
            return succeed(function())
        except Exception:
            return fail()

    def _write(
        self, user: str, numbers: Iterable[int], function: Callable[[], T],
        topics: Callable[[T], Iterable[str]],
    ) -> "Deferred[T]":
        """Run a write on snapshots of the touched collections; restore them if
        it fails; notify the hub after it succeeded."""
        saved = {n: self._collections[n].snapshot() for n in numbers if n in self._collections}
        users, last_id = set(self._users), self._last_collection_id
        try:
            result = function()
        except Exception:
            self._collections.update(saved)
            self._users, self._last_collection_id = users, last_id
            return fail()
        if self._hub is not None:
            notified = list(topics(result))
            if notified:
                self._hub.notify(user, notified)
        return succeed(result)

    def _history(self, entry: _Collection, item: int, action: str, now: float) -> int:
        if self.fail_history_writes:
            raise StoreError("history write refused (fail_history_writes)")
        entry.revision += 1
        entry.history.append((entry.revision, item, action, now))
        return entry.revision

    def _ensure_user(self, user: str) -> None:
        if user in self._users:
            return
        self._users.add(user)
        for kind in KIND_ORDER:
            self._insert(user, kind, DEFAULT_NAMES[kind], True)

    def _insert(self, user: str, kind: str, name: str, is_default: bool) -> Collection:
        self._last_collection_id += 1
        number = self._last_collection_id
        collection = Collection(user, str(number), kind, name, is_default, True)
        self._collections[number] = _Collection(collection)
        return collection

    def _name_taken(self, user: str, kind: str, name: str, except_id: str | None = None) -> None:
        for entry in self._collections.values():
            c = entry.collection
            if (not entry.deleted and c.user == user and c.kind == kind
                    and c.display_name == name and c.collection_id != except_id):
                raise CollectionExists(f"{kind} collection {name!r} of user {user}")

    @staticmethod
    def _item_number(entry: _Collection, item_id: object) -> int:
        number = parse_id(item_id)
        if number is None or number not in entry.items:
            raise NoSuchItem(f"item {item_id} in collection {entry.collection.collection_id}")
        return number

    # collections ---------------------------------------------------------------------

    def list_collections(
        self, user: str, kind: str | None = None, include_unsynced: bool = True
    ) -> "Deferred[list[Collection]]":
        """The user's live collections, creating the defaults on first sight."""
        def run() -> list[Collection]:
            if kind is not None:
                check_kind(kind)
            self._ensure_user(user)
            found = [e.collection for e in self._collections.values()
                     if not e.deleted and e.collection.user == user
                     and (kind is None or e.collection.kind == kind)
                     and (include_unsynced or e.collection.synced)]
            return sorted(found, key=lambda c: (c.kind, int(c.collection_id)))

        return self._call(run)

    def get_collection(self, user: str, collection_id: str) -> "Deferred[Collection]":
        """One live collection."""
        return self._call(lambda: self._live(user, collection_id).collection)

    def create_collection(
        self, user: str, kind: str, display_name: str
    ) -> "Deferred[Collection]":
        """A new collection."""
        def run() -> Collection:
            check_kind(kind)
            self._ensure_user(user)
            self._name_taken(user, kind, display_name)
            return self._insert(user, kind, display_name, False)

        return self._write(user, (), run, lambda c: [collection_topic(c.collection_id)])

    def rename_collection(
        self, user: str, collection_id: str, display_name: str
    ) -> "Deferred[Collection]":
        """Rename a collection."""
        def run() -> Collection:
            entry = self._live(user, collection_id)
            self._name_taken(user, entry.collection.kind, display_name,
                             entry.collection.collection_id)
            entry.collection = replace(entry.collection, display_name=display_name)
            return entry.collection

        return self._write(user, self._numbers(collection_id), run,
                           lambda _: [collection_topic(collection_id)])

    def delete_collection(self, user: str, collection_id: str) -> "Deferred[None]":
        """Delete a collection with its items and history."""
        def run() -> None:
            entry = self._live(user, collection_id)
            if entry.collection.is_default:
                raise DefaultCollection(
                    f"collection {collection_id} of user {user} is a default collection")
            entry.deleted = True
            entry.items = {}
            entry.history = []

        return self._write(user, self._numbers(collection_id), run,
                           lambda _: [collection_topic(collection_id)])

    def set_synced(
        self, user: str, collection_id: str, synced: bool
    ) -> "Deferred[Collection]":
        """Show or hide a collection on devices."""
        def run() -> Collection:
            entry = self._live(user, collection_id)
            if entry.collection.is_default and not synced:
                raise DefaultCollection(
                    f"the default {entry.collection.kind} collection of {user} always syncs")
            entry.collection = replace(entry.collection, synced=bool(synced))
            return entry.collection

        return self._write(user, self._numbers(collection_id), run,
                           lambda _: [collection_topic(collection_id)])

    def current_revision(self, user: str, collection_id: str) -> "Deferred[int]":
        """The collection's revision."""
        return self._call(lambda: self._live(user, collection_id).revision)

    def watch_revisions(
        self, user: str, collection_ids: Iterable[str]
    ) -> "Deferred[dict[str, int]]":
        """Revisions of the live collections among ``collection_ids``."""
        found: dict[str, int] = {}
        for collection_id in collection_ids:
            try:
                found[str(collection_id)] = self._live(user, collection_id).revision
            except NoSuchCollection:
                pass
        return succeed(found)

    # items ------------------------------------------------------------------------------

    def list_items(self, user: str, collection_id: str) -> "Deferred[tuple[int, list[str]]]":
        """The revision and every live item id."""
        def run() -> tuple[int, list[str]]:
            entry = self._live(user, collection_id)
            return entry.revision, [str(n) for n in sorted(entry.items)]

        return self._call(run)

    def get_items(
        self, user: str, collection_id: str, item_ids: Iterable[str]
    ) -> "Deferred[list[Item]]":
        """The items that exist, in the order asked."""
        def run() -> list[Item]:
            entry = self._live(user, collection_id)
            found = []
            for item_id in item_ids:
                number = parse_id(item_id)
                if number is not None and number in entry.items:
                    found.append(entry.items[number])
            return found

        return self._call(run)

    def changes_since(
        self, user: str, collection_id: str, since: int, until: int | None = None
    ) -> "Deferred[ItemChanges]":
        """Net changes after ``since`` from the history."""
        def run() -> ItemChanges:
            if since < 0 or (until is not None and until < since):
                raise ValueError(f"bad revision range ({since}, {until}]")
            entry = self._live(user, collection_id)
            end = entry.revision if until is None else min(until, entry.revision)
            if since < entry.min_revision or since > entry.revision:
                raise HistoryTrimmed(
                    f"revision {since} of collection {collection_id} is not in the kept"
                    f" history ({entry.min_revision}..{entry.revision})")
            if end <= since:
                return ItemChanges(since=since, until=max(end, since))
            start = bisect.bisect_right(entry.history, since, key=lambda row: row[0])
            stop = bisect.bisect_right(entry.history, end, key=lambda row: row[0])
            rows = ((r, str(i), a) for r, i, a, _ in entry.history[start:stop])
            return net_changes(rows, since, end)

        return self._call(run)

    def add_item(self, user: str, collection_id: str, data: str) -> "Deferred[Item]":
        """Store a new item."""
        return self.add_items(user, collection_id, [data]).addCallback(lambda items: items[0])

    def add_items(
        self, user: str, collection_id: str, datas: Sequence[str]
    ) -> "Deferred[list[Item]]":
        """Store many new items (all or none), like the SQL backend's."""
        def run() -> list[Item]:
            entry = self._live(user, collection_id)
            uids = [check_item(entry.collection.kind, data) for data in datas]
            now = self._now()
            added = []
            for uid, data in zip(uids, datas):
                entry.last_item_id += 1
                number = entry.last_item_id
                item = Item(collection_id, str(number), data, entry.revision + 1, uid)
                entry.items[number] = item
                self._history(entry, number, ADD, now)
                added.append(item)
            return added

        return self._write(user, self._numbers(collection_id), run,
                           lambda items: [collection_topic(collection_id)] if items else [])

    def update_item(
        self, user: str, collection_id: str, item_id: str, data: str
    ) -> "Deferred[Item]":
        """Replace an item's data."""
        def run() -> Item:
            entry = self._live(user, collection_id)
            number = self._item_number(entry, item_id)
            uid = check_item(entry.collection.kind, data)
            item = Item(collection_id, str(number), data, entry.revision + 1, uid)
            entry.items[number] = item
            self._history(entry, number, CHANGE, self._now())
            return item

        return self._write(user, self._numbers(collection_id), run,
                           lambda _: [collection_topic(collection_id)])

    def delete_item(self, user: str, collection_id: str, item_id: str) -> "Deferred[None]":
        """Delete an item."""
        def run() -> None:
            entry = self._live(user, collection_id)
            number = self._item_number(entry, item_id)
            del entry.items[number]
            self._history(entry, number, DELETE, self._now())

        return self._write(user, self._numbers(collection_id), run,
                           lambda _: [collection_topic(collection_id)])

    def move_item(
        self, user: str, collection_id: str, item_id: str, to_collection_id: str
    ) -> "Deferred[Item]":
        """Move an item to another collection of the same kind."""
        def run() -> Item:
            source = self._live(user, collection_id)
            target = self._live(user, to_collection_id)
            if source.collection.kind != target.collection.kind:
                raise ValueError(f"cannot move a {source.collection.kind} item into a"
                                 f" {target.collection.kind} collection")
            number = self._item_number(source, item_id)
            moving = source.items[number]
            if source is target:
                return moving
            now = self._now()
            del source.items[number]
            self._history(source, number, DELETE, now)
            target.last_item_id += 1
            new = Item(to_collection_id, str(target.last_item_id), moving.data,
                       target.revision + 1, moving.uid)
            target.items[target.last_item_id] = new
            self._history(target, target.last_item_id, ADD, now)
            return new

        return self._write(
            user, self._numbers(collection_id, to_collection_id), run,
            lambda _: sorted({collection_topic(collection_id),
                              collection_topic(to_collection_id)}))

    def empty_collection(self, user: str, collection_id: str) -> "Deferred[int]":
        """Delete every item; how many."""
        def run() -> int:
            entry = self._live(user, collection_id)
            now = self._now()
            count = len(entry.items)
            for number in sorted(entry.items):
                del entry.items[number]
                self._history(entry, number, DELETE, now)
            return count

        return self._write(user, self._numbers(collection_id), run,
                           lambda count: [collection_topic(collection_id)] if count else [])

    def trim_history(self, older_than: float) -> "Deferred[int]":
        """Forget history written before ``older_than``."""
        removed = 0
        for entry in self._collections.values():
            old = [row[0] for row in entry.history if row[3] < older_than]
            if not old:
                continue
            point = max(old)
            kept = [row for row in entry.history if row[0] > point]
            removed += len(entry.history) - len(kept)
            entry.history = kept
            entry.min_revision = max(entry.min_revision, point)
        return succeed(removed)

    @staticmethod
    def _numbers(*collection_ids: object) -> list[int]:
        return [n for n in (parse_id(c) for c in collection_ids) if n is not None]
