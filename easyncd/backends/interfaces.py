"""Contracts between the protocol layer and the backends, with their errors.

A backend that checks passwords provides :class:`IAuthenticator`.  Its answer
has three outcomes: ``True`` (the password is right), ``False`` (it is wrong
or the user is unknown) and a failure with :class:`AuthBackendUnavailable`
(the backend could not be asked: connection refused, TLS verification failed,
timeout).  The HTTP layer answers 401 for the second and 503 for the third.
"""
from __future__ import annotations

from dataclasses import dataclass

from zope.interface import Interface


class AuthBackendUnavailable(Exception):
    """A password backend could not give an answer (not: the password is wrong).

    The message never contains the password.
    """


class IAuthenticator(Interface):
    """Something that can check a user name and password."""

    def authenticate(username, password):  # type: ignore[misc,no-untyped-def]
        """Deferred[bool]: check ``password`` for the account ``username``.

        Fires with ``True`` or ``False``; fails with
        :class:`AuthBackendUnavailable` when no answer could be had.
        """


# -- groupware: contacts, calendars, tasks, notes ----------------------------------

#: Collection kinds, and the AirSync Class of their items.
KIND_CONTACTS = "contacts"
KIND_CALENDAR = "calendar"
KIND_TASKS = "tasks"
KIND_NOTES = "notes"
KINDS = (KIND_CONTACTS, KIND_CALENDAR, KIND_TASKS, KIND_NOTES)
EAS_CLASS = {KIND_CONTACTS: "Contacts", KIND_CALENDAR: "Calendar", KIND_TASKS: "Tasks",
             KIND_NOTES: "Notes"}


class GroupwareError(Exception):
    """Base of the groupware backend's deliberate errors."""


class NoSuchCollection(GroupwareError):
    """No live collection with that id for that user."""


class NoSuchItem(GroupwareError):
    """No live item with that id in that collection."""


class CollectionExists(GroupwareError):
    """A live collection of that kind already has that name."""


class DefaultCollection(GroupwareError):
    """The default collection of a kind cannot be deleted (or hidden)."""


class HistoryTrimmed(GroupwareError):
    """The revision asked about is older than the oldest kept history: the
    client must start over (Sync Status 3)."""


class InvalidItem(GroupwareError):
    """The item data cannot be stored (not a valid vCard / iCalendar object)."""


@dataclass(frozen=True)
class Collection:
    """An address book, calendar, task list or note folder of a user.

    ``collection_id`` is stable and never reused.  ``synced`` says whether the
    user's devices see it (the default collection of a kind always syncs).
    """

    user: str
    collection_id: str
    kind: str
    display_name: str
    is_default: bool = False
    synced: bool = True


@dataclass(frozen=True)
class Item:
    """One stored item: ``data`` is a vCard 3.0 (contacts) or an iCalendar
    object (VEVENT for calendar, VTODO for tasks, VJOURNAL for notes) with its
    exceptions, as text.  ``revision`` is the collection revision of its last
    change."""

    collection_id: str
    item_id: str
    data: str
    revision: int
    uid: str | None = None


@dataclass(frozen=True)
class ItemChanges:
    """The net changes of a collection between two revisions (``since`` <
    r <= ``until``): ids only, ordered by revision.  An item added and deleted
    inside the range does not appear; added then changed is an add."""

    since: int
    until: int
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()


class IGroupwareBackend(Interface):
    """Users' contacts, calendars, tasks and notes, with history-based diffs.

    Every method returns a Deferred.  Revisions are per collection, start at 0
    (empty, nothing ever happened) and go up by one per item change.  Writes
    that belong together (an item and its history row) commit together.
    """

    def list_collections(user, kind=None, include_unsynced=True):  # type: ignore[misc,no-untyped-def]
        """Deferred[list[Collection]]: the user's live collections (of one kind),
        ordered by kind then id.  Creates the default collection of every kind
        the first time a user is seen."""

    def get_collection(user, collection_id):  # type: ignore[misc,no-untyped-def]
        """Deferred[Collection]; NoSuchCollection."""

    def create_collection(user, kind, display_name):  # type: ignore[misc,no-untyped-def]
        """Deferred[Collection]; CollectionExists; ValueError for an unknown kind."""

    def rename_collection(user, collection_id, display_name):  # type: ignore[misc,no-untyped-def]
        """Deferred[Collection]; NoSuchCollection, CollectionExists."""

    def delete_collection(user, collection_id):  # type: ignore[misc,no-untyped-def]
        """Delete a collection and its items.  Deferred[None];
        NoSuchCollection, DefaultCollection."""

    def set_synced(user, collection_id, synced):  # type: ignore[misc,no-untyped-def]
        """Choose whether devices see a collection.  Deferred[Collection];
        DefaultCollection when hiding a default one."""

    def current_revision(user, collection_id):  # type: ignore[misc,no-untyped-def]
        """Deferred[int]; NoSuchCollection."""

    def list_items(user, collection_id):  # type: ignore[misc,no-untyped-def]
        """Deferred[tuple[int, list[str]]]: the current revision and the ids of
        every live item (for an initial sync), in one read."""

    def get_items(user, collection_id, item_ids):  # type: ignore[misc,no-untyped-def]
        """Deferred[list[Item]] for the ids that exist (missing ones are left out),
        in the order asked."""

    def changes_since(user, collection_id, since, until=None):  # type: ignore[misc,no-untyped-def]
        """Deferred[ItemChanges] from history (never a full compare); ``until``
        None means the current revision.  HistoryTrimmed if ``since`` is older
        than the kept history; NoSuchCollection."""

    def add_item(user, collection_id, data):  # type: ignore[misc,no-untyped-def]
        """Store a new item.  Deferred[Item]; InvalidItem, NoSuchCollection."""

    def update_item(user, collection_id, item_id, data):  # type: ignore[misc,no-untyped-def]
        """Replace an item's data.  Deferred[Item]; NoSuchItem, InvalidItem."""

    def delete_item(user, collection_id, item_id):  # type: ignore[misc,no-untyped-def]
        """Deferred[None]; NoSuchItem."""

    def move_item(user, collection_id, item_id, to_collection_id):  # type: ignore[misc,no-untyped-def]
        """Move an item to another collection of the same kind (a delete in one,
        an add in the other).  Deferred[Item] (the item in its new place);
        NoSuchItem, NoSuchCollection, ValueError for a different kind."""

    def empty_collection(user, collection_id):  # type: ignore[misc,no-untyped-def]
        """Delete every item of a collection.  Deferred[int]: how many."""

    def trim_history(older_than):  # type: ignore[misc,no-untyped-def]
        """Forget history rows written before the POSIX time ``older_than`` in
        every collection; asking about a revision older than what is kept then
        raises HistoryTrimmed.  Deferred[int]: rows removed."""

    def watch_revisions(user, collection_ids):  # type: ignore[misc,no-untyped-def]
        """Deferred[dict[str, int]]: the current revision of each collection id
        (missing ones are left out) in one cheap read, for the push hub."""
