"""The built-in groupware backend on the state store's SQL engines (SQLite and
PostgreSQL): every method is one labelled transaction of
:mod:`easyncd.backends.groupware.programs` run by ``store.run_program``.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from easyncd.backends.groupware import programs
from easyncd.backends.groupware.items import (
    check_item,
    check_kind,
    collection_topic,
    parse_id,
)
from easyncd.backends.interfaces import (
    Collection,
    GroupwareError,
    IGroupwareBackend,
    InvalidItem,
    Item,
    ItemChanges,
    NoSuchCollection,
)
from easyncd.store.programs import Program

T = TypeVar("T")


def _kind_check(datas: Sequence[str]) -> programs.KindCheck:
    """A check of every data against the collection kind found in the
    transaction (the kind is only known there)."""

    def check(kind: str) -> programs.Refusal | None:
        for data in datas:
            try:
                check_item(kind, data)
            except InvalidItem as error:
                return programs.Refusal(error)
        return None

    return check


def _precheck(data: object) -> str | None:
    """Reject what no kind accepts before opening a transaction; the UID."""
    if isinstance(data, str) and "BEGIN:VCARD" in data.upper():
        return check_item("contacts", data)
    return check_item("calendar", data)


@implementer(IGroupwareBackend)
class SQLGroupwareBackend:
    """IGroupwareBackend on the state store's database (schema version 2).

    ``store`` is an SQL state store (it has ``run_program``), ``clock`` gives
    the time of history rows, ``hub`` (an IPushHub) is told about every
    committed change.
    """

    log = Logger()

    def __init__(self, store: Any, clock: IReactorTime, hub: Any = None) -> None:
        self._store = store
        self._clock = clock
        self._hub = hub

    # plumbing --------------------------------------------------------------------

    def _run(
        self,
        label: str,
        program: Program[Any],
        write: bool = True,
        notify: Callable[[Any], Iterable[str]] | None = None,
        user: str = "",
    ) -> "Deferred[Any]":
        """Run a program; raise its Refusal; tell the hub after the commit."""
        d: Deferred[Any] = self._store.run_program(f"groupware.{label}", program, write=write)

        def done(result: Any) -> Any:
            error = programs.refusal_error(result)
            if error is not None:
                raise error
            if notify is not None and self._hub is not None:
                topics = list(notify(result))
                if topics:
                    try:
                        self._hub.notify(user, topics)
                    except Exception:
                        self.log.failure("push hub notify failed for {user}", user=user)
            return result

        return d.addCallback(done)

    def _collection_number(self, user: str, collection_id: str) -> int:
        number = parse_id(collection_id)
        if number is None:
            raise NoSuchCollection(f"collection {collection_id} of user {user}")
        return number

    def _now(self) -> float:
        return float(self._clock.seconds())

    # collections ---------------------------------------------------------------------

    def list_collections(
        self, user: str, kind: str | None = None, include_unsynced: bool = True
    ) -> "Deferred[list[Collection]]":
        """The user's live collections, creating the defaults on first sight."""
        try:
            if kind is not None:
                check_kind(kind)
        except ValueError:
            return fail()
        d = self._run("list_collections", programs.list_known(user, kind, include_unsynced),
                      write=False)

        def created(found: list[Collection] | None) -> Any:
            if found is not None:
                return found
            return self._run("list_collections",
                             programs.list_creating(user, kind, include_unsynced))

        return d.addCallback(created)

    def get_collection(self, user: str, collection_id: str) -> "Deferred[Collection]":
        """One live collection."""
        try:
            number = self._collection_number(user, collection_id)
        except GroupwareError:
            return fail()
        return self._run("get_collection", programs.get_collection(user, number), write=False)

    def create_collection(
        self, user: str, kind: str, display_name: str
    ) -> "Deferred[Collection]":
        """A new collection of ``kind``."""
        try:
            check_kind(kind)
        except ValueError:
            return fail()
        return self._run(
            "create_collection", programs.create_collection(user, kind, display_name),
            notify=lambda c: [collection_topic(c.collection_id)], user=user)

    def rename_collection(
        self, user: str, collection_id: str, display_name: str
    ) -> "Deferred[Collection]":
        """Rename a collection."""
        try:
            number = self._collection_number(user, collection_id)
        except GroupwareError:
            return fail()
        return self._run(
            "rename_collection", programs.rename_collection(user, number, display_name),
            notify=lambda c: [collection_topic(collection_id)], user=user)

    def delete_collection(self, user: str, collection_id: str) -> "Deferred[None]":
        """Delete a collection with its items and history."""
        try:
            number = self._collection_number(user, collection_id)
        except GroupwareError:
            return fail()
        return self._run(
            "delete_collection", programs.delete_collection(user, number),
            notify=lambda _: [collection_topic(collection_id)], user=user)

    def set_synced(
        self, user: str, collection_id: str, synced: bool
    ) -> "Deferred[Collection]":
        """Show or hide a collection on devices."""
        try:
            number = self._collection_number(user, collection_id)
        except GroupwareError:
            return fail()
        return self._run(
            "set_synced", programs.set_synced(user, number, bool(synced)),
            notify=lambda _: [collection_topic(collection_id)], user=user)

    def current_revision(self, user: str, collection_id: str) -> "Deferred[int]":
        """The collection's revision."""
        try:
            number = self._collection_number(user, collection_id)
        except GroupwareError:
            return fail()
        return self._run("current_revision", programs.current_revision(user, number),
                         write=False)

    def watch_revisions(
        self, user: str, collection_ids: Iterable[str]
    ) -> "Deferred[dict[str, int]]":
        """Revisions of the live collections among ``collection_ids``: one read."""
        numbers = sorted({n for n in (parse_id(c) for c in collection_ids) if n is not None})
        if not numbers:
            return succeed({})
        return self._run("watch_revisions", programs.watch_revisions(user, numbers),
                         write=False)

    # items ------------------------------------------------------------------------------

    def list_items(self, user: str, collection_id: str) -> "Deferred[tuple[int, list[str]]]":
        """The revision and every live item id."""
        try:
            number = self._collection_number(user, collection_id)
        except GroupwareError:
            return fail()
        return self._run("list_items", programs.list_items(user, number), write=False)

    def get_items(
        self, user: str, collection_id: str, item_ids: Iterable[str]
    ) -> "Deferred[list[Item]]":
        """The items that exist, in the order asked."""
        try:
            number = self._collection_number(user, collection_id)
        except GroupwareError:
            return fail()
        asked = [(str(i), parse_id(i)) for i in item_ids]
        return self._run("get_items", programs.get_items(user, number, asked), write=False)

    def changes_since(
        self, user: str, collection_id: str, since: int, until: int | None = None
    ) -> "Deferred[ItemChanges]":
        """Net changes after ``since`` from the history table."""
        try:
            number = self._collection_number(user, collection_id)
            if since < 0 or (until is not None and until < since):
                raise ValueError(f"bad revision range ({since}, {until}]")
        except (GroupwareError, ValueError):
            return fail()
        return self._run("changes_since",
                         programs.changes_since(user, number, int(since), until),
                         write=False)

    def add_item(self, user: str, collection_id: str, data: str) -> "Deferred[Item]":
        """Store a new item."""
        d = self.add_items(user, collection_id, [data])
        return d.addCallback(lambda items: items[0])

    def add_items(
        self, user: str, collection_id: str, datas: Sequence[str]
    ) -> "Deferred[list[Item]]":
        """Store many new items in one transaction (all or none), at
        consecutive revisions.  Not part of IGroupwareBackend: for imports."""
        try:
            number = self._collection_number(user, collection_id)
            entries = [(_precheck(data), data) for data in datas]
        except GroupwareError:
            return fail()
        if not entries:
            return self.get_collection(user, collection_id).addCallback(lambda _: [])
        return self._run(
            "add_item",
            programs.add_items(user, number, _kind_check(datas), entries, self._now()),
            notify=lambda _: [collection_topic(collection_id)], user=user)

    def update_item(
        self, user: str, collection_id: str, item_id: str, data: str
    ) -> "Deferred[Item]":
        """Replace an item's data."""
        try:
            number = self._collection_number(user, collection_id)
            uid = _precheck(data)
        except GroupwareError:
            return fail()
        return self._run(
            "update_item",
            programs.update_item(user, number, _kind_check([data]), parse_id(item_id),
                                 str(item_id), uid, data, self._now()),
            notify=lambda _: [collection_topic(collection_id)], user=user)

    def delete_item(self, user: str, collection_id: str, item_id: str) -> "Deferred[None]":
        """Delete an item."""
        try:
            number = self._collection_number(user, collection_id)
        except GroupwareError:
            return fail()
        return self._run(
            "delete_item",
            programs.delete_item(user, number, parse_id(item_id), str(item_id), self._now()),
            notify=lambda _: [collection_topic(collection_id)], user=user)

    def move_item(
        self, user: str, collection_id: str, item_id: str, to_collection_id: str
    ) -> "Deferred[Item]":
        """Move an item to another collection of the same kind."""
        try:
            source = self._collection_number(user, collection_id)
            target = self._collection_number(user, to_collection_id)
        except GroupwareError:
            return fail()
        return self._run(
            "move_item",
            programs.move_item(user, source, parse_id(item_id), str(item_id), target,
                               self._now()),
            notify=lambda _: sorted({collection_topic(collection_id),
                                     collection_topic(to_collection_id)}),
            user=user)

    def empty_collection(self, user: str, collection_id: str) -> "Deferred[int]":
        """Delete every item of a collection; how many."""
        try:
            number = self._collection_number(user, collection_id)
        except GroupwareError:
            return fail()
        return self._run(
            "empty_collection", programs.empty_collection(user, number, self._now()),
            notify=lambda count: [collection_topic(collection_id)] if count else [],
            user=user)

    def trim_history(self, older_than: float) -> "Deferred[int]":
        """Forget history written before ``older_than``."""
        return self._run("trim_history", programs.trim_history(float(older_than)))
