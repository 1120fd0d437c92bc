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


# -- mail: IMAP folders, change detection, message operations -----------------------
#
# Everything below is the contract between the EAS email commands (Sync, Ping,
# ItemOperations, MoveItems, Search, SendMail...) and the mail backend
# (easyncd.backends.imap.backend.IMAPMailBackend).  Mailboxes are named by their
# full IMAP name (decoded to str, hierarchy delimiter included).

import datetime as _datetime  # noqa: E402  (kept inside the mail section)
import struct as _struct  # noqa: E402
import zlib as _zlib  # noqa: E402
from dataclasses import field as _field  # noqa: E402
from typing import Iterable as _Iterable, Iterator as _Iterator, Mapping as _Mapping  # noqa: E402

#: EAS FolderSync Type values of mail folders (MS-ASCMD 2.2.3.186.3).  EAS has no
#: junk type: a Junk folder is a user mail folder (12) shown under its own name.
FOLDER_INBOX = 2
FOLDER_DRAFTS = 3
FOLDER_DELETED = 4
FOLDER_SENT = 5
FOLDER_OUTBOX = 6
FOLDER_USER_MAIL = 12


class MailError(Exception):
    """Base of the mail backend's deliberate errors (the IMAP server said NO/BAD)."""


class MailBackendUnavailable(MailError):
    """The IMAP server could not be reached or used now (network, TLS, "try later")."""


class MailAuthFailed(MailError):
    """The IMAP server refused the user's credentials."""


class NoSuchMailbox(MailError):
    """The mailbox does not exist (IMAP ``[NONEXISTENT]`` / ``[TRYCREATE]``)."""


class MailboxExists(MailError):
    """A mailbox of that name exists already (IMAP ``[ALREADYEXISTS]``)."""


@dataclass(frozen=True)
class MailFolder:
    """One IMAP mailbox as an EAS folder.

    ``parent`` is the parent mailbox's full name (None at the top level),
    ``display_name`` the last part of the name, ``eas_type`` one of the
    ``FOLDER_*`` values, ``special_use`` the IMAP attribute that decided it
    (``\\Inbox``, ``\\Drafts``, ``\\Sent``, ``\\Trash``, ``\\Junk``...) or
    None.  ``selectable`` is False for ``\\Noselect`` placeholders (shown so
    their children have a parent; they hold no messages).
    """

    name: str
    parent: str | None
    delimiter: str | None
    eas_type: int
    display_name: str
    special_use: str | None = None
    selectable: bool = True


@dataclass(frozen=True)
class FolderPoint:
    """Where a mailbox stands: UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ (None without
    CONDSTORE) and the message count.  Two equal points with a HIGHESTMODSEQ mean
    nothing changed; without one only a full flag compare can tell."""

    uidvalidity: int
    uidnext: int
    highestmodseq: int | None = None
    messages: int = 0


class MailboxSnapshot:
    """The visible messages of a mailbox a device knows, as ``uid -> flags``, kept compact.

    Stored run-length encoded: runs of consecutive UIDs that share one flag set
    (``(first, last, flag set index)``) plus the table of distinct flag sets.
    A typical mailbox (mostly read, few gaps) of 10,000 messages takes a few
    hundred bytes; the worst case (every neighbour different) about 4 bytes per
    message after :meth:`to_bytes`.  Immutable; the change detection returns a
    new one.
    """

    __slots__ = ("flagsets", "runs", "_count")

    def __init__(self, flagsets: tuple[frozenset[str], ...] = (),
                 runs: tuple[tuple[int, int, int], ...] = ()) -> None:
        self.flagsets = flagsets
        self.runs = runs
        self._count = sum(last - first + 1 for first, last, _ in runs)

    @classmethod
    def from_flags(cls, flags: _Mapping[int, _Iterable[str]]) -> "MailboxSnapshot":
        """Build from ``{uid: flags}``."""
        table: dict[frozenset[str], int] = {}
        runs: list[tuple[int, int, int]] = []
        for uid in sorted(flags):
            key = frozenset(flags[uid])
            index = table.setdefault(key, len(table))
            if runs and runs[-1][1] == uid - 1 and runs[-1][2] == index:
                runs[-1] = (runs[-1][0], uid, index)
            else:
                runs.append((uid, uid, index))
        ordered = tuple(sorted(table, key=table.__getitem__))
        return cls(ordered, tuple(runs))

    def as_dict(self) -> dict[int, frozenset[str]]:
        """The expanded ``{uid: flags}`` (transient: O(messages) memory)."""
        out: dict[int, frozenset[str]] = {}
        for first, last, index in self.runs:
            flags = self.flagsets[index]
            for uid in range(first, last + 1):
                out[uid] = flags
        return out

    def uids(self) -> _Iterator[int]:
        """The UIDs in ascending order."""
        for first, last, _ in self.runs:
            yield from range(first, last + 1)

    def flags_of(self, uid: int) -> frozenset[str] | None:
        """The flags of ``uid``, None when it is not in the snapshot."""
        import bisect

        position = bisect.bisect_right(self.runs, (uid, float("inf"), 0)) - 1
        if position >= 0:
            first, last, index = self.runs[position]
            if first <= uid <= last:
                return self.flagsets[index]
        return None

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, int) and self.flags_of(uid) is not None

    def __len__(self) -> int:
        return self._count

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MailboxSnapshot) and self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return f"MailboxSnapshot({len(self)} messages, {len(self.runs)} runs)"

    def updated(self, flags: _Mapping[int, _Iterable[str]] = {},
                removed: _Iterable[int] = ()) -> "MailboxSnapshot":
        """A copy with ``flags`` set (added or changed) and ``removed`` taken out."""
        if not flags and not removed:
            return self
        current = self.as_dict()
        for uid in removed:
            current.pop(uid, None)
        for uid, value in flags.items():
            current[uid] = frozenset(value)
        return MailboxSnapshot.from_flags(current)

    _MAGIC = b"MS1"

    def to_bytes(self) -> bytes:
        """A compact serialisation (zlib of varint deltas) for the state store."""
        out = bytearray()

        def varint(value: int) -> None:
            while True:
                byte = value & 0x7F
                value >>= 7
                if value:
                    out.append(byte | 0x80)
                else:
                    out.append(byte)
                    return

        table = "\n".join(" ".join(sorted(flags)) for flags in self.flagsets).encode("utf-8")
        varint(len(table))
        out += table
        varint(len(self.flagsets))
        varint(len(self.runs))
        previous = 0
        for first, last, index in self.runs:
            varint(first - previous)
            varint(last - first)
            varint(index)
            previous = last
        return self._MAGIC + _zlib.compress(bytes(out), 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> "MailboxSnapshot":
        """The inverse of :meth:`to_bytes`; ValueError for foreign data."""
        if not data.startswith(cls._MAGIC):
            raise ValueError("not a mailbox snapshot")
        raw = _zlib.decompress(data[len(cls._MAGIC):])
        position = 0

        def varint() -> int:
            nonlocal position
            shift = value = 0
            while True:
                byte = raw[position]
                position += 1
                value |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    return value
                shift += 7

        size = varint()
        table = raw[position:position + size].decode("utf-8")
        position += size
        count = varint()
        lines = table.split("\n") if count else []
        flagsets = tuple(frozenset(line.split()) for line in lines)
        runs: list[tuple[int, int, int]] = []
        previous = 0
        for _ in range(varint()):
            first = previous + varint()
            last = first + varint()
            runs.append((first, last, varint()))
            previous = last
        return cls(flagsets, tuple(runs))


@dataclass(frozen=True)
class MailState:
    """What the caller keeps per mailbox between two change checks: the point and
    the snapshot.  ``to_bytes``/``from_bytes`` give a compact form for the store."""

    point: FolderPoint
    snapshot: MailboxSnapshot

    def to_bytes(self) -> bytes:
        """Serialise (point + snapshot)."""
        modseq = -1 if self.point.highestmodseq is None else self.point.highestmodseq
        head = _struct.pack(">QQqQ", self.point.uidvalidity, self.point.uidnext, modseq,
                            self.point.messages)
        return head + self.snapshot.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> "MailState":
        """The inverse of :meth:`to_bytes`."""
        uidvalidity, uidnext, modseq, messages = _struct.unpack(">QQqQ", data[:32])
        point = FolderPoint(uidvalidity, uidnext, None if modseq < 0 else modseq, messages)
        return cls(point, MailboxSnapshot.from_bytes(data[32:]))


@dataclass(frozen=True)
class MailChanges:
    """What changed in a mailbox since a :class:`MailState`.

    ``added``: visible UIDs the caller does not know yet (ascending; within the
    date window when one was given); ``changed``: known UIDs whose flags
    changed, with their new flags; ``removed``: known UIDs now expunged or
    ``\\Deleted``.  ``reset``: the UIDVALIDITY changed (or there was no
    state): every known UID is in ``removed`` and every visible one in
    ``added``; the caller resyncs this folder from scratch.  ``state`` is the
    new state to keep: it contains every UID of ``added`` (a caller that pages
    through them keeps the rest pending itself; they are not reported again).
    """

    state: MailState
    added: tuple[int, ...] = ()
    changed: _Mapping[int, frozenset[str]] = _field(default_factory=dict)
    removed: tuple[int, ...] = ()
    reset: bool = False

    @property
    def empty(self) -> bool:
        """Nothing to tell the device."""
        return not (self.added or self.changed or self.removed or self.reset)


@dataclass(frozen=True)
class MailQuery:
    """A mailbox search: words that must all occur (IMAP ``TEXT``), a received
    date range (``since`` inclusive, ``before`` exclusive), the mailboxes
    (None: every selectable mail folder)."""

    text: str | None = None
    since: _datetime.datetime | None = None
    before: _datetime.datetime | None = None
    mailboxes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SearchHit:
    """One search result; hits come newest first."""

    mailbox: str
    uid: int
    internaldate: _datetime.datetime | None


class IMailWatch(Interface):
    """A registration made by :meth:`IMailBackend.watch`."""

    def stop():  # type: ignore[misc]
        """Stop calling back (the user's IDLE session is closed after a while
        when nobody watches any more)."""


class IMailBackend(Interface):
    """A user's mailboxes: folders, change detection and message operations.

    Every method takes the EAS ``user`` and ``password`` (used for the IMAP
    login unless a master user is configured) and returns a Deferred.  Errors:
    :class:`MailAuthFailed`, :class:`MailBackendUnavailable`,
    :class:`NoSuchMailbox`, :class:`MailboxExists`, :class:`MailError`.
    """

    def list_folders(user, password):  # type: ignore[misc,no-untyped-def]
        """Deferred[list[MailFolder]]: every mailbox (INBOX first, then by name)."""

    def special_folder(user, password, eas_type):  # type: ignore[misc,no-untyped-def]
        """Deferred[str | None]: the mailbox of a special type (FOLDER_DRAFTS,
        FOLDER_DELETED, FOLDER_SENT...), None when there is none."""

    def create_folder(user, password, parent, display_name):  # type: ignore[misc,no-untyped-def]
        """Deferred[MailFolder]: CREATE ``display_name`` under ``parent`` (None:
        top level).  MailboxExists."""

    def rename_folder(user, password, name, new_parent, new_display_name):  # type: ignore[misc,no-untyped-def]
        """Deferred[MailFolder]: RENAME (also moves it under ``new_parent``)."""

    def delete_folder(user, password, name):  # type: ignore[misc,no-untyped-def]
        """Deferred[None]: DELETE (its children first).  NoSuchMailbox."""

    def folder_state(user, password, mailbox):  # type: ignore[misc,no-untyped-def]
        """Deferred[FolderPoint] from STATUS (cheap, no SELECT)."""

    def changes(user, password, mailbox, since, window_start=None):  # type: ignore[misc,no-untyped-def]
        """Deferred[MailChanges] since the MailState ``since`` (None: first
        sync).  ``window_start`` (a datetime) hides messages received before it
        (FilterType).  With QRESYNC the cost depends on the changes, not on the
        mailbox size; without it, one ``UID FETCH 1:* (FLAGS)``."""

    def fetch_messages(user, password, mailbox, uids, items):  # type: ignore[misc,no-untyped-def]
        """Deferred[list[FetchedMessage]] for the UIDs that exist, in the order
        asked; ``items`` are IMAP fetch items (``BODY.PEEK[...]``, partial
        ranges allowed).  Fetched in batches, never a whole folder at once."""

    def fetch_part(user, password, mailbox, uid, part, offset=0, length=None):  # type: ignore[misc,no-untyped-def]
        """Deferred[bytes]: the raw (transfer-encoded) octets of one body part
        (``""`` for the whole message), from ``offset``, at most ``length``."""

    def stream_part(user, password, mailbox, uid, part, write, chunk_size=1048576):  # type: ignore[misc,no-untyped-def]
        """Deferred[int]: feed the part to ``write(bytes)`` (which may return a
        Deferred to slow down) in chunks; fires with the octet count."""

    def set_flags(user, password, mailbox, uids, add=(), remove=()):  # type: ignore[misc,no-untyped-def]
        """Deferred[dict[int, frozenset[str]]]: the flags after the change, per
        UID that still exists."""

    def move(user, password, mailbox, uids, to_mailbox):  # type: ignore[misc,no-untyped-def]
        """Deferred[dict[int, int]]: ``{old uid: new uid}`` for the moved messages."""

    def delete(user, password, mailbox, uids, to_trash):  # type: ignore[misc,no-untyped-def]
        """Deferred[dict[int, int]]: move to Trash when ``to_trash`` and a Trash
        exists (and it is not the Trash itself) — the map of new UIDs —, else
        expunge — an empty map."""

    def append(user, password, mailbox, message, flags=(), date=None):  # type: ignore[misc,no-untyped-def]
        """Deferred[int]: APPEND ``message`` (bytes); fires with its UID."""

    def empty(user, password, mailbox, delete_subfolders=False):  # type: ignore[misc,no-untyped-def]
        """Deferred[int]: expunge every message (and the subfolders if asked);
        fires with how many messages went."""

    def search(user, password, query, limit=None):  # type: ignore[misc,no-untyped-def]
        """Deferred[list[SearchHit]], newest first (at most ``limit``)."""

    def watch(user, password, mailboxes, on_change):  # type: ignore[misc,no-untyped-def]
        """Deferred[IMailWatch], fired once the watching is in place: from then
        on ``on_change(mailbox)`` is called when something changes in one of
        ``mailboxes`` (IDLE on the user's dedicated session; other mailboxes
        polled; pure polling without IDLE)."""
