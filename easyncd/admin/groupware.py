"""``easyncd-admin collection ...`` and ``item ...``: a user's contacts,
calendars, tasks and notes.

Actions are coroutines that take a groupware backend (an
:class:`~easyncd.backends.interfaces.IGroupwareBackend` that also has
``add_items(user, collection_id, datas)``, as the SQL backend and the memory
fake do) and raise :class:`~easyncd.admin.errors.AdminError` for what the
operator can fix; formatting and file functions are pure.  Neither touches
the reactor.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, TextIO, TypeVar

from easyncd.admin.errors import AdminError
from easyncd.backends.groupware.vobj import (
    SplitError,
    SplitItem,
    item_summary,
    join_icalendar,
    join_vcards,
    parse_ics,
    parse_vcard,
    parse_vjournal,
    parse_vtodo,
    split_file,
    with_uid,
)
from easyncd.backends.interfaces import (
    KIND_CALENDAR,
    KIND_CONTACTS,
    KIND_NOTES,
    KIND_TASKS,
    Collection,
    CollectionExists,
    DefaultCollection,
    GroupwareError,
    InvalidItem,
    Item,
    NoSuchCollection,
    NoSuchItem,
)

T = TypeVar("T")

#: The component a collection of each kind holds.
COMPONENT = {KIND_CONTACTS: "VCARD", KIND_CALENDAR: "VEVENT", KIND_TASKS: "VTODO",
             KIND_NOTES: "VJOURNAL"}
_KIND_OF_COMPONENT = {component: kind for kind, component in COMPONENT.items()}
#: What an item of each kind is called in messages.
_NOUN = {KIND_CONTACTS: "contacts (vCards)", KIND_CALENDAR: "calendar events (VEVENT)",
         KIND_TASKS: "tasks (VTODO)", KIND_NOTES: "notes (VJOURNAL)"}
#: The parser that checks an item of each kind (the one the codecs use).
_PARSERS: dict[str, Callable[[str], Any]] = {
    KIND_CONTACTS: parse_vcard, KIND_CALENDAR: parse_ics, KIND_TASKS: parse_vtodo,
    KIND_NOTES: parse_vjournal,
}


async def _guard(awaitable: Awaitable[T], user: str, collection_id: str | None = None) -> T:
    """Await a backend call, turning its deliberate errors into AdminError."""
    try:
        return await awaitable
    except NoSuchCollection:
        raise AdminError(f"no such collection: {collection_id} (user {user})") from None
    except DefaultCollection as exc:
        raise AdminError(f"collection {collection_id} is the default one of its kind"
                         f" ({_one_line(exc)})") from None
    except CollectionExists as exc:
        raise AdminError(f"a collection with that name exists ({_one_line(exc)})") from None
    except NoSuchItem as exc:
        raise AdminError(f"no such item ({_one_line(exc)})") from None
    except (InvalidItem, GroupwareError) as exc:
        raise AdminError(_one_line(exc)) from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# -- collections ----------------------------------------------------------------------


async def list_collections(backend: Any, user: str) -> list[Collection]:
    """The user's collections, synced or not (the defaults are created on
    first use)."""
    return list(await _guard(backend.list_collections(user, None, True), user))


async def get_collection(backend: Any, user: str, collection_id: str) -> Collection:
    """One collection, or AdminError ``no such collection``."""
    collection: Collection = await _guard(
        backend.get_collection(user, collection_id), user, collection_id)
    return collection


async def create_collection(backend: Any, user: str, kind: str, name: str) -> Collection:
    """A new collection of ``kind`` named ``name``."""
    if not name.strip():
        raise AdminError("a collection name cannot be empty")
    if kind not in COMPONENT:
        raise AdminError(f"unknown kind {kind!r} (one of {', '.join(COMPONENT)})")
    collection: Collection = await _guard(backend.create_collection(user, kind, name), user)
    return collection


async def rename_collection(
    backend: Any, user: str, collection_id: str, name: str
) -> Collection:
    """Rename a collection."""
    if not name.strip():
        raise AdminError("a collection name cannot be empty")
    collection: Collection = await _guard(
        backend.rename_collection(user, collection_id, name), user, collection_id)
    return collection


async def delete_collection(backend: Any, user: str, collection_id: str) -> Collection:
    """Delete a collection with its items; returns what it was.  The default
    collection of a kind cannot be deleted."""
    collection = await get_collection(backend, user, collection_id)
    if collection.is_default:
        raise AdminError(f"collection {collection_id} is the default {collection.kind}"
                         " collection: it cannot be deleted")
    await _guard(backend.delete_collection(user, collection_id), user, collection_id)
    return collection


async def set_synced(backend: Any, user: str, collection_id: str, synced: bool) -> Collection:
    """Choose whether the user's devices see a collection (the default
    collection of a kind always syncs)."""
    collection = await get_collection(backend, user, collection_id)
    if collection.is_default and not synced:
        raise AdminError(f"collection {collection_id} is the default {collection.kind}"
                         " collection: it always syncs")
    updated: Collection = await _guard(
        backend.set_synced(user, collection_id, synced), user, collection_id)
    return updated


def collection_to_json(collection: Collection) -> dict[str, Any]:
    """The JSON object of ``collection list --json``."""
    return {"id": collection.collection_id, "kind": collection.kind,
            "name": collection.display_name, "default": collection.is_default,
            "synced": collection.synced}


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    if not rows:
        return ""
    everything = [header, *rows]
    widths = [max(len(row[column]) for row in everything) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in everything]
    return "\n".join(lines) + "\n"


def format_collection_table(collections: Iterable[Collection]) -> str:
    """One line per collection (id, kind, name, default, synced); empty when none."""
    return _table(("ID", "KIND", "NAME", "DEFAULT", "SYNCED"), [
        (c.collection_id, c.kind, c.display_name, "yes" if c.is_default else "no",
         "yes" if c.synced else "no")
        for c in collections
    ])


# -- items ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemSummary:
    """One line of ``item list``."""

    item_id: str
    uid: str | None
    summary: str


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    added: int
    updated: int

    @property
    def total(self) -> int:
        """Items imported."""
        return self.added + self.updated


async def all_items(backend: Any, user: str, collection_id: str) -> list[Item]:
    """Every live item of a collection, by id."""
    _revision, ids = await _guard(backend.list_items(user, collection_id), user, collection_id)
    if not ids:
        return []
    items: list[Item] = await _guard(
        backend.get_items(user, collection_id, ids), user, collection_id)
    return items


def items_for_import(
    kind: str, text: str, source: str = "the file",
    new_uid: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> list[SplitItem]:
    """The items of a ``.vcf`` / ``.ics`` text for a collection of ``kind``:
    each checked with the kind's parser, a UID given to those without one,
    and of several items with one UID only the last kept.  AdminError (naming
    ``source``) when the file is unreadable or holds items of another kind."""
    try:
        items = split_file(text)
    except SplitError as exc:
        raise AdminError(f"{source}: not a vCard or iCalendar file: {_one_line(exc)}") from None
    wanted = COMPONENT[kind]
    others = sorted({item.component for item in items if item.component != wanted})
    if others:
        found = ", ".join(
            _NOUN.get(_KIND_OF_COMPONENT.get(c, ""), c) for c in others)
        raise AdminError(f"{source} holds {found}, but the collection holds {_NOUN[kind]}:"
                         " nothing imported")
    parse = _PARSERS[kind]
    kept: dict[str, SplitItem] = {}
    for number, item in enumerate(items, start=1):
        if item.uid is None:
            item = with_uid(item, new_uid())
        try:
            parse(item.text)
        except ValueError as exc:
            raise AdminError(f"{source}: item {number} (UID {item.uid}) cannot be read:"
                             f" {_one_line(exc)}; nothing imported") from None
        assert item.uid is not None
        kept.pop(item.uid, None)
        kept[item.uid] = item
    return list(kept.values())


async def import_items(
    backend: Any, user: str, collection_id: str, text: str, source: str = "the file",
    new_uid: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> ImportResult:
    """Import the items of a ``.vcf`` / ``.ics`` text: an item whose UID is
    already in the collection replaces that item, the others are added in one
    transaction.  Nothing is written when the file cannot be read or holds
    the wrong kind of items."""
    collection = await get_collection(backend, user, collection_id)
    items = items_for_import(collection.kind, text, source, new_uid)
    existing = {item.uid: item.item_id
                for item in await all_items(backend, user, collection_id)
                if item.uid is not None}
    new = [item.text for item in items if item.uid not in existing]
    replacing = [(existing[item.uid], item.text) for item in items
                 if item.uid is not None and item.uid in existing]
    if new:
        await _guard(backend.add_items(user, collection_id, new), user, collection_id)
    for item_id, data in replacing:
        await _guard(backend.update_item(user, collection_id, item_id, data),
                     user, collection_id)
    return ImportResult(added=len(new), updated=len(replacing))


async def export_items(backend: Any, user: str, collection_id: str) -> tuple[str, int]:
    """All items of a collection as one ``.vcf`` (contacts) or ``.ics`` text,
    and how many there are."""
    collection = await get_collection(backend, user, collection_id)
    items = await all_items(backend, user, collection_id)
    datas = [item.data for item in items]
    try:
        if collection.kind == KIND_CONTACTS:
            return join_vcards(datas), len(items)
        return join_icalendar(datas), len(items)
    except SplitError as exc:
        raise AdminError(f"collection {collection_id}: a stored item cannot be exported:"
                         f" {_one_line(exc)}") from None


async def list_items(backend: Any, user: str, collection_id: str) -> list[ItemSummary]:
    """Id, UID and a one-line summary of every item of a collection."""
    return [ItemSummary(item.item_id, item.uid, item_summary(item.data))
            for item in await all_items(backend, user, collection_id)]


async def delete_item(backend: Any, user: str, collection_id: str, reference: str) -> Item:
    """Delete the item whose id (or else UID) is ``reference``; returns it."""
    items = await all_items(backend, user, collection_id)
    found = [item for item in items if item.item_id == reference]
    if not found:
        found = [item for item in items if item.uid == reference]
    if not found:
        raise AdminError(f"no item with id or UID {reference} in collection {collection_id}"
                         f" (user {user})")
    for item in found:
        await _guard(backend.delete_item(user, collection_id, item.item_id),
                     user, collection_id)
    return found[0]


def item_to_json(item: ItemSummary) -> dict[str, Any]:
    """The JSON object of ``item list --json``."""
    return {"id": item.item_id, "uid": item.uid, "summary": item.summary}


def format_item_table(items: Iterable[ItemSummary]) -> str:
    """One line per item (id, uid, summary); empty when none."""
    return _table(("ID", "UID", "SUMMARY"),
                  [(i.item_id, i.uid or "-", i.summary) for i in items])


# -- files ------------------------------------------------------------------------------


def decode_file(data: bytes) -> str:
    """The text of an imported file: UTF-8 (with or without BOM), else
    Windows-1252 (older Outlook exports), else Latin-1."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def read_import_file(path: str, stdin: TextIO) -> str:
    """The text of FILE, or of stdin for ``-``.  AdminError when unreadable."""
    if path == "-":
        buffer = getattr(stdin, "buffer", None)
        return decode_file(buffer.read()) if buffer is not None else stdin.read()
    try:
        with open(path, "rb") as handle:
            return decode_file(handle.read())
    except OSError as exc:
        raise AdminError(f"cannot read {path}: {exc.strerror or exc}") from None


def write_export_file(path: str, text: str) -> None:
    """Write an export (UTF-8, the text's CRLF line ends kept)."""
    try:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    except OSError as exc:
        raise AdminError(f"cannot write {path}: {exc.strerror or exc}") from None
