"""The Sync request model: parsed from the WBXML tree, version-gated, and
turned into JSON for the request cache (empty request, partial Sync)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Union

from easyncd.protocol.codecs.base import BodyPreference
from easyncd.protocol.sync.constants import (
    AIRSYNC,
    AIRSYNCBASE,
    CONFLICT_SERVER_WINS,
    DEFAULT_WINDOW_SIZE,
    MAX_WINDOW_SIZE,
    TRUNCATION_SIZES,
)
from easyncd.protocol.synckeys import parse_sync_key
from easyncd.protocol.versions import at_least
from easyncd.wbxml import Element


class SyncProtocolError(ValueError):
    """The request does not have the shape MS-ASCMD gives it (Status 4)."""


@dataclass(frozen=True)
class SyncOptions:
    """A collection's Options, as far as groupware needs them."""

    filter_type: int = 0
    body_preferences: tuple[BodyPreference, ...] = ()
    #: 2.5 Truncation, in bytes (None: whole bodies).
    truncation: int | None = None
    conflict: int = CONFLICT_SERVER_WINS
    mime_support: int = 0
    max_items: int | None = None
    #: Email only: 2.5 MIMETruncation code (0-8; None: whole MIME) and the
    #: 14.1+ BodyPartPreference list.
    mime_truncation: int | None = None
    body_part_preferences: tuple[BodyPreference, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (for the sync state)."""
        return {
            "filter": self.filter_type,
            "body": [[p.body_type, p.truncation_size, p.all_or_none, p.preview]
                     for p in self.body_preferences],
            "trunc": self.truncation,
            "conflict": self.conflict,
            "mime": self.mime_support,
            "max_items": self.max_items,
            "mime_trunc": self.mime_truncation,
            "body_part": [[p.body_type, p.truncation_size, p.all_or_none, p.preview]
                          for p in self.body_part_preferences],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SyncOptions:
        """The inverse of :meth:`to_json`."""
        return cls(
            filter_type=int(data.get("filter", 0)),
            body_preferences=tuple(
                BodyPreference(int(b[0]), b[1], bool(b[2]), b[3]) for b in data.get("body", ())
            ),
            truncation=data.get("trunc"),
            conflict=int(data.get("conflict", CONFLICT_SERVER_WINS)),
            mime_support=int(data.get("mime", 0)),
            max_items=data.get("max_items"),
            mime_truncation=data.get("mime_trunc"),
            body_part_preferences=tuple(
                BodyPreference(int(b[0]), b[1], bool(b[2]), b[3])
                for b in data.get("body_part", ())
            ),
        )


@dataclass(frozen=True)
class ClientAdd:
    """Commands/Add: a new item from the device."""

    client_id: str
    application_data: Element | None


@dataclass(frozen=True)
class ClientChange:
    """Commands/Change of an item the device has; with ``instance_id``
    (16.0+ ``AirSyncBase:InstanceId``, a Compact DateTime) a change of that
    one occurrence of a recurring event."""

    server_id: str
    application_data: Element | None
    instance_id: str | None = None


@dataclass(frozen=True)
class ClientDelete:
    """Commands/Delete; with ``instance_id`` (16.0+) the deletion of that one
    occurrence of a recurring event."""

    server_id: str
    instance_id: str | None = None


@dataclass(frozen=True)
class ClientFetch:
    """Commands/Fetch: send this item's ApplicationData in Responses."""

    server_id: str


ClientCommand = Union[ClientAdd, ClientChange, ClientDelete, ClientFetch]


@dataclass(frozen=True)
class CollectionRequest:
    """One Collection of a Sync request.

    ``sync_key`` is None when the key is not a decimal number (Status 3).
    ``options`` / ``window_size`` / ``get_changes`` are None when the device
    left them out (the saved or default ones apply).
    """

    collection_id: str
    sync_key: int | None
    eas_class: str | None = None
    get_changes: bool | None = None
    window_size: int | None = None
    options: SyncOptions | None = None
    supported: frozenset[str] | None = None
    commands: tuple[ClientCommand, ...] = ()
    #: DeletesAsMoves (email): None when not sent (the default, true, applies).
    deletes_as_moves: bool | None = None

    def effective_window(self) -> int:
        """The WindowSize to use for this collection."""
        if self.window_size is None or self.window_size <= 0:
            return DEFAULT_WINDOW_SIZE
        return min(self.window_size, MAX_WINDOW_SIZE)

    def wants_changes(self) -> bool:
        """GetChanges: absent means yes, except with SyncKey 0."""
        if self.sync_key == 0:
            return False
        return True if self.get_changes is None else self.get_changes

    def to_cache(self) -> dict[str, Any]:
        """What the request cache keeps of it (no key, no commands)."""
        return {
            "id": self.collection_id,
            "class": self.eas_class,
            "get_changes": self.get_changes,
            "window": self.window_size,
            "options": self.options.to_json() if self.options is not None else None,
        }

    @classmethod
    def from_cache(cls, data: dict[str, Any], sync_key: int | None) -> CollectionRequest:
        """A collection of the cached request, with the key to use now."""
        options = data.get("options")
        return cls(
            collection_id=str(data["id"]),
            sync_key=sync_key,
            eas_class=data.get("class"),
            get_changes=data.get("get_changes"),
            window_size=data.get("window"),
            options=SyncOptions.from_json(options) if options is not None else None,
        )


@dataclass(frozen=True)
class SyncRequest:
    """A whole Sync request.  ``wait_seconds`` is Wait (minutes) or
    HeartbeatInterval (seconds) in seconds, whichever was sent."""

    collections: tuple[CollectionRequest, ...] = ()
    wait: int | None = None
    heartbeat_interval: int | None = None
    window_size: int | None = None
    partial: bool = False
    has_collections: bool = False

    @property
    def wait_seconds(self) -> int | None:
        """How long to hold the request when nothing is to be sent."""
        if self.heartbeat_interval is not None:
            return self.heartbeat_interval
        if self.wait is not None:
            return self.wait * 60
        return None

    def global_window(self) -> int | None:
        """The request-wide WindowSize (12.1+), or None."""
        if self.window_size is None or self.window_size <= 0:
            return None
        return min(self.window_size, MAX_WINDOW_SIZE)

    def to_cache(self) -> dict[str, Any]:
        """The JSON kept for the empty-request shorthand and partial Sync."""
        return {
            "collections": [c.to_cache() for c in self.collections],
            "wait": self.wait,
            "heartbeat": self.heartbeat_interval,
            "window": self.window_size,
        }

    def with_collections(self, collections: tuple[CollectionRequest, ...]) -> SyncRequest:
        """A copy with other collections."""
        return replace(self, collections=collections)


# -- parsing ------------------------------------------------------------------------


def _int(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        raise SyncProtocolError(f"{what} is not a number: {text!r}") from None


def _flag(element: Element | None) -> bool | None:
    """An element that is a boolean: empty (true) or 0/1."""
    if element is None:
        return None
    text = element.text
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if text is None or text.strip() in ("", "1"):
        return True
    if text.strip() == "0":
        return False
    raise SyncProtocolError(f"{element.tag} is not a boolean: {text!r}")


def parse_options(options: list[Element], version: str, eas_class: str | None) -> SyncOptions | None:
    """The Options that apply to a groupware collection (the first without a
    Class, or with the collection's Class).  None if none were sent."""
    chosen: Element | None = None
    for element in options:
        cls = element.findtext(AIRSYNC + "Class")
        if cls is None or eas_class is None or cls == eas_class:
            chosen = element
            break
    if chosen is None:
        if not options:
            return None
        chosen = options[0]
    filter_type = _int(chosen.findtext(AIRSYNC + "FilterType"), "FilterType") or 0
    if not 0 <= filter_type <= 8:
        raise SyncProtocolError(f"FilterType {filter_type} out of range")
    conflict = _int(chosen.findtext(AIRSYNC + "Conflict"), "Conflict")
    if conflict is None:
        conflict = CONFLICT_SERVER_WINS
    if conflict not in (0, 1):
        raise SyncProtocolError(f"Conflict {conflict} out of range")
    truncation: int | None = None
    code = _int(chosen.findtext(AIRSYNC + "Truncation"), "Truncation")
    if code is not None:
        truncation = TRUNCATION_SIZES.get(code)
    preferences: list[BodyPreference] = []
    part_preferences: list[BodyPreference] = []
    if at_least(version, "12.0"):
        for tag, found in (("BodyPreference", preferences),
                           ("BodyPartPreference", part_preferences)):
            if tag == "BodyPartPreference" and not at_least(version, "14.1"):
                continue
            for pref in chosen.findall(AIRSYNCBASE + tag):
                body_type = _int(pref.findtext(AIRSYNCBASE + "Type"), f"{tag} Type")
                if body_type is None:
                    raise SyncProtocolError(f"{tag} without Type")
                found.append(BodyPreference(
                    body_type=body_type,
                    truncation_size=_int(pref.findtext(AIRSYNCBASE + "TruncationSize"),
                                         "TruncationSize"),
                    all_or_none=bool(_flag(pref.find(AIRSYNCBASE + "AllOrNone"))),
                    preview=_int(pref.findtext(AIRSYNCBASE + "Preview"), "Preview"),
                ))
    return SyncOptions(
        filter_type=filter_type,
        body_preferences=tuple(preferences),
        truncation=truncation,
        conflict=conflict,
        mime_support=_int(chosen.findtext(AIRSYNC + "MIMESupport"), "MIMESupport") or 0,
        max_items=_int(chosen.findtext(AIRSYNC + "MaxItems"), "MaxItems"),
        mime_truncation=_int(chosen.findtext(AIRSYNC + "MIMETruncation"), "MIMETruncation"),
        body_part_preferences=tuple(part_preferences),
    )


def _server_id(element: Element) -> str:
    server_id = element.findtext(AIRSYNC + "ServerId")
    if not server_id:
        raise SyncProtocolError(f"{element.tag} without ServerId")
    return server_id


def _instance_id(element: Element, version: str) -> str | None:
    """AirSyncBase:InstanceId of a Change or Delete (16.0+; ignored before)."""
    if not at_least(version, "16.0"):
        return None
    instance = element.find(AIRSYNCBASE + "InstanceId")
    if instance is None:
        return None
    text = instance.text
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not text or not text.strip():
        raise SyncProtocolError(f"{element.tag} with an empty InstanceId")
    return text.strip()


def parse_commands(commands: Element | None, version: str = "16.1") -> tuple[ClientCommand, ...]:
    """Commands/(Add|Change|Delete|Fetch), in document order."""
    if commands is None:
        return ()
    result: list[ClientCommand] = []
    for element in commands.children:
        name = element.tag
        if name == AIRSYNC + "Add":
            client_id = element.findtext(AIRSYNC + "ClientId")
            if not client_id:
                raise SyncProtocolError("Add without ClientId")
            result.append(ClientAdd(client_id, element.find(AIRSYNC + "ApplicationData")))
        elif name == AIRSYNC + "Change":
            result.append(ClientChange(_server_id(element),
                                       element.find(AIRSYNC + "ApplicationData"),
                                       _instance_id(element, version)))
        elif name == AIRSYNC + "Delete":
            result.append(ClientDelete(_server_id(element), _instance_id(element, version)))
        elif name == AIRSYNC + "Fetch":
            result.append(ClientFetch(_server_id(element)))
        else:
            raise SyncProtocolError(f"unexpected {name} in Commands")
    return tuple(result)


def parse_collection(element: Element, version: str) -> CollectionRequest:
    """One Sync request Collection."""
    collection_id = element.findtext(AIRSYNC + "CollectionId")
    key_text = element.findtext(AIRSYNC + "SyncKey")
    if not collection_id or key_text is None:
        raise SyncProtocolError("Collection without CollectionId or SyncKey")
    eas_class = element.findtext(AIRSYNC + "Class")
    supported_element = element.find(AIRSYNC + "Supported")
    supported = (frozenset(child.tag for child in supported_element.children)
                 if supported_element is not None else None)
    window = _int(element.findtext(AIRSYNC + "WindowSize"), "WindowSize")
    return CollectionRequest(
        collection_id=collection_id,
        sync_key=parse_sync_key(key_text),
        eas_class=eas_class if not at_least(version, "14.0") else None,
        get_changes=_flag(element.find(AIRSYNC + "GetChanges")),
        window_size=window,
        options=parse_options(element.findall(AIRSYNC + "Options"), version, eas_class),
        supported=supported,
        commands=parse_commands(element.find(AIRSYNC + "Commands"), version),
        deletes_as_moves=_flag(element.find(AIRSYNC + "DeletesAsMoves")),
    )


def parse_sync(body: Element, version: str) -> SyncRequest:
    """A Sync request body; raises :class:`SyncProtocolError` (Status 4)."""
    if body.tag != AIRSYNC + "Sync":
        raise SyncProtocolError(f"top element {body.tag}")
    collections_element = body.find(AIRSYNC + "Collections")
    collections = tuple(
        parse_collection(c, version)
        for c in (collections_element.findall(AIRSYNC + "Collection")
                  if collections_element is not None else [])
    )
    wait = heartbeat = window = None
    partial = False
    if at_least(version, "12.1"):
        wait = _int(body.findtext(AIRSYNC + "Wait"), "Wait")
        window = _int(body.findtext(AIRSYNC + "WindowSize"), "WindowSize")
        partial = bool(_flag(body.find(AIRSYNC + "Partial")))
    if at_least(version, "14.0"):
        heartbeat = _int(body.findtext(AIRSYNC + "HeartbeatInterval"), "HeartbeatInterval")
    if wait is not None and heartbeat is not None:
        raise SyncProtocolError("both Wait and HeartbeatInterval")
    if collections_element is not None and not collections:
        raise SyncProtocolError("Collections without Collection")
    seen: set[str] = set()
    for collection in collections:
        if collection.collection_id in seen:
            raise SyncProtocolError(f"collection {collection.collection_id} twice")
        seen.add(collection.collection_id)
    return SyncRequest(
        collections=collections,
        wait=wait,
        heartbeat_interval=heartbeat,
        window_size=window,
        partial=partial,
        has_collections=bool(collections),
    )


def request_from_cache(data: dict[str, Any], keys: dict[str, int | None]) -> SyncRequest:
    """The cached request, each collection with its current key from ``keys``."""
    return SyncRequest(
        collections=tuple(
            CollectionRequest.from_cache(c, keys.get(str(c["id"])))
            for c in data.get("collections", ())
        ),
        wait=data.get("wait"),
        heartbeat_interval=data.get("heartbeat"),
        window_size=data.get("window"),
        has_collections=True,
    )


__all__ = [
    "ClientAdd", "ClientChange", "ClientCommand", "ClientDelete", "ClientFetch",
    "CollectionRequest", "SyncOptions", "SyncProtocolError", "SyncRequest",
    "parse_collection", "parse_commands", "parse_options", "parse_sync",
    "request_from_cache",
]
