"""Helpers for the Sync / GetItemEstimate tests: a stub item codec (stored
text is ``NAME:value`` lines inside BEGIN/END, so the backend takes it), a
harness wiring MemoryStateStore + MemoryGroupwareBackend + PushHub + Clock,
request builders and a response reader."""
from __future__ import annotations

import calendar
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from twisted.internet.defer import Deferred

from easyncd.backends.interfaces import KIND_CALENDAR, KIND_CONTACTS, KIND_NOTES, KIND_TASKS
from easyncd.protocol.codecs.base import CodecContext, CodecError, DecodedItem
from easyncd.protocol.collections import groupware_backend_id
from easyncd.protocol.commands.getitemestimate import GetItemEstimateCommand
from easyncd.protocol.commands.sync import SyncCommand
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.push.hub import PushHub
from easyncd.testing.memory_groupware import MemoryGroupwareBackend
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element, decode, encode
from tests.protocol.helpers import make_clock, make_context, result_of

AS = "AirSync:"

#: FilterType -> days back (calendar).
_FILTER_DAYS = {1: 1, 2: 3, 3: 7, 4: 14, 5: 31, 6: 92, 7: 183}


def eas_time(posix: float) -> str:
    """A compact EAS date-time."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(posix))


def _posix(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y%m%dT%H%M%SZ")))


class StubCodec:
    """An ItemCodec over ``NAME:value`` lines, with real ghosting rules: a
    property the device supports but leaves out of a Change is cleared, one
    it does not support is kept.  A value ``!bad`` is a conversion error."""

    def __init__(self, eas_class: str, namespace: str, begin: str, fields: Sequence[str]) -> None:
        self.eas_class = eas_class
        self.namespace = namespace
        self.begin = begin
        self.fields = tuple(fields)

    def parse(self, data: str) -> dict[str, str]:
        """The properties of stored text."""
        result: dict[str, str] = {}
        for line in data.splitlines():
            name, _, value = line.partition(":")
            if name in ("BEGIN", "END") or not name:
                continue
            result[name] = value
        return result

    def format(self, props: Mapping[str, str]) -> str:
        """Stored text for properties."""
        lines = [f"BEGIN:{self.begin}"] + [f"{k}:{v}" for k, v in sorted(props.items())]
        return "\n".join(lines + [f"END:{self.begin}"]) + "\n"

    def to_eas(self, data: str, ctx: CodecContext) -> Element:
        """ApplicationData with one element per property."""
        app = Element(AS + "ApplicationData")
        for name, value in sorted(self.parse(data).items()):
            app.add(self.namespace + name, value)
        return app

    def from_eas(self, application_data: Element, existing: str | None,
                 ctx: CodecContext) -> DecodedItem:
        """New or merged stored text."""
        sent: dict[str, str] = {}
        for child in application_data.children:
            value = child.text if isinstance(child.text, str) else ""
            if value == "!bad":
                raise CodecError(f"cannot convert {child.tag}")
            sent[child.name] = value
        props = self.parse(existing) if existing is not None else {}
        for name in self.fields:
            supported = ctx.supported is None or (self.namespace + name) in ctx.supported
            if name in sent:
                props[name] = sent[name]
            elif supported:
                props.pop(name, None)
        return DecodedItem(self.format(props))

    def in_filter(self, data: str, filter_type: int, now: float) -> bool:
        """Calendar: ends within the window; tasks (8): incomplete."""
        props = self.parse(data)
        if filter_type == 8:
            return props.get("Complete", "0") != "1"
        days = _FILTER_DAYS.get(filter_type)
        if days is None or "EndTime" not in props:
            return True
        return _posix(props["EndTime"]) >= now - days * 86400


STUB_CODECS: dict[str, Any] = {
    KIND_CONTACTS: StubCodec("Contacts", "Contacts:", "VCARD",
                             ("FileAs", "FirstName", "LastName", "Birthday", "CompanyName")),
    KIND_CALENDAR: StubCodec("Calendar", "Calendar:", "VCALENDAR",
                             ("Subject", "StartTime", "EndTime", "Location")),
    KIND_TASKS: StubCodec("Tasks", "Tasks:", "VCALENDAR", ("Subject", "Complete")),
    KIND_NOTES: StubCodec("Notes", "Notes:", "VCALENDAR", ("Subject",)),
}

#: Folder type of each kind's default folder.
FOLDER_TYPES = {KIND_CONTACTS: 9, KIND_CALENDAR: 8, KIND_TASKS: 7, KIND_NOTES: 10}


# -- requests -------------------------------------------------------------------------


def add_command(client_id: str, ns: str, **props: str) -> Element:
    """Commands/Add."""
    element = Element(AS + "Add")
    element.add(AS + "ClientId", client_id)
    app = element.add(AS + "ApplicationData")
    for name, value in props.items():
        app.add(ns + name, value)
    return element


def change_command(server_id: str, ns: str, **props: str) -> Element:
    """Commands/Change."""
    element = Element(AS + "Change")
    element.add(AS + "ServerId", server_id)
    app = element.add(AS + "ApplicationData")
    for name, value in props.items():
        app.add(ns + name, value)
    return element


def delete_command(server_id: str) -> Element:
    """Commands/Delete."""
    element = Element(AS + "Delete")
    element.add(AS + "ServerId", server_id)
    return element


def fetch_command(server_id: str) -> Element:
    """Commands/Fetch."""
    element = Element(AS + "Fetch")
    element.add(AS + "ServerId", server_id)
    return element


def collection(collection_id: str, key: str, *, window: int | None = None,
               get_changes: str | None = None, filter_type: int | None = None,
               conflict: int | None = None, supported: Iterable[str] | None = None,
               commands: Sequence[Element] = (), eas_class: str | None = None) -> Element:
    """A request Collection, children in the strict order of MS-ASCMD."""
    element = Element(AS + "Collection")
    if eas_class is not None:
        element.add(AS + "Class", eas_class)
    element.add(AS + "SyncKey", key)
    element.add(AS + "CollectionId", collection_id)
    if supported is not None:
        block = element.add(AS + "Supported")
        for tag in supported:
            block.add(tag)
    if get_changes is not None:
        element.add(AS + "GetChanges", get_changes)
    if window is not None:
        element.add(AS + "WindowSize", str(window))
    if filter_type is not None or conflict is not None:
        options = element.add(AS + "Options")
        if filter_type is not None:
            options.add(AS + "FilterType", str(filter_type))
        if conflict is not None:
            options.add(AS + "Conflict", str(conflict))
    if commands:
        block = element.add(AS + "Commands")
        for command in commands:
            block.append(command)
    return element


def sync_request(*collections: Element, wait: int | None = None, heartbeat: int | None = None,
                 window: int | None = None, partial: bool = False) -> Element:
    """A Sync request."""
    root = Element(AS + "Sync")
    if collections:
        block = root.add(AS + "Collections")
        for element in collections:
            block.append(element)
    if wait is not None:
        root.add(AS + "Wait", str(wait))
    if heartbeat is not None:
        root.add(AS + "HeartbeatInterval", str(heartbeat))
    if window is not None:
        root.add(AS + "WindowSize", str(window))
    if partial:
        root.add(AS + "Partial")
    return root


# -- responses ------------------------------------------------------------------------


@dataclass
class CollectionAnswer:
    """One response Collection, read back."""

    collection_id: str
    status: str
    key: str
    eas_class: str | None
    commands: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    responses: list[Element] = field(default_factory=list)
    more: bool = False
    order: list[str] = field(default_factory=list)

    def ops(self, op: str) -> list[str]:
        """ServerIds of the commands of one kind (``Add``, ``Change``...)."""
        return [sid for kind, sid, _ in self.commands if kind == op]

    def response(self, name: str) -> list[dict[str, str]]:
        """The Responses of one kind, as dicts of child texts."""
        return [{c.name: c.text if isinstance(c.text, str) else "" for c in r.children}
                for r in self.responses if r.name == name]


def read_sync(response: CommandResponse) -> dict[str, CollectionAnswer]:
    """The collections of a Sync response, after a WBXML round trip."""
    assert response.body is not None, "empty response"
    body = decode(encode(response.body))
    answers: dict[str, CollectionAnswer] = {}
    for element in body.findall(AS + "Collections/" + AS + "Collection"):
        answer = CollectionAnswer(
            collection_id=element.findtext(AS + "CollectionId") or "",
            status=element.findtext(AS + "Status") or "",
            key=element.findtext(AS + "SyncKey") or "",
            eas_class=element.findtext(AS + "Class"),
            more=element.find(AS + "MoreAvailable") is not None,
            order=[c.name for c in element.children],
        )
        commands = element.find(AS + "Commands")
        for command in commands.children if commands is not None else []:
            app = command.find(AS + "ApplicationData")
            props = {c.name: c.text if isinstance(c.text, str) else ""
                     for c in (app.children if app is not None else [])}
            answer.commands.append((command.name, command.findtext(AS + "ServerId") or "", props))
        responses = element.find(AS + "Responses")
        answer.responses = list(responses.children) if responses is not None else []
        answers[answer.collection_id] = answer
    return answers


# -- the harness ------------------------------------------------------------------------


class GroupwareHarness:
    """A store, a groupware backend, a push hub and a clock for one user,
    with a folder for each default collection."""

    def __init__(self, user: str = "alice") -> None:
        self.user = user
        self.clock = make_clock()
        self.store: Any = MemoryStateStore()
        self.hub = PushHub(self.clock)
        self.backend = MemoryGroupwareBackend(clock=self.clock, hub=self.hub)
        self.collections: dict[str, str] = {}
        self.folders: dict[str, str] = {}
        for coll in result_of(self.backend.list_collections(user)):
            if not coll.is_default:
                continue
            folder = result_of(self.store.add_folder(
                user, "0", coll.display_name, FOLDER_TYPES[coll.kind],
                groupware_backend_id(coll.collection_id)))
            self.collections[coll.kind] = coll.collection_id
            self.folders[coll.kind] = folder.server_id

    def ctx(self, command: str = "Sync", version: str = "16.1") -> CommandContext:
        """A context for one request."""
        return make_context(self.store, command, version, self.user, clock=self.clock,
                            services={"groupware": self.backend, "push": self.hub})

    def start(self, body: Element | None, version: str = "16.1") -> "Deferred[CommandResponse]":
        """Start a Sync without requiring it to finish."""
        return Deferred.fromCoroutine(
            SyncCommand(codecs=STUB_CODECS).run(self.ctx("Sync", version), body))

    def sync(self, body: Element | None, version: str = "16.1") -> CommandResponse:
        """Run a Sync that must finish at once."""
        return result_of(self.start(body, version))

    def estimate(self, body: Element, version: str = "16.1") -> CommandResponse:
        """Run a GetItemEstimate."""
        return result_of(GetItemEstimateCommand(codecs=STUB_CODECS).run(
            self.ctx("GetItemEstimate", version), body))

    def add(self, kind: str, **props: str) -> str:
        """Add an item on the server; its item id."""
        codec: StubCodec = STUB_CODECS[kind]
        item = result_of(self.backend.add_item(self.user, self.collections[kind],
                                               codec.format(props)))
        return str(item.item_id)

    def change(self, kind: str, item_id: str, **props: str) -> None:
        """Replace an item on the server."""
        codec: StubCodec = STUB_CODECS[kind]
        result_of(self.backend.update_item(self.user, self.collections[kind], item_id,
                                           codec.format(props)))

    def delete(self, kind: str, item_id: str) -> None:
        """Delete an item on the server."""
        result_of(self.backend.delete_item(self.user, self.collections[kind], item_id))

    def items(self, kind: str) -> dict[str, dict[str, str]]:
        """Every item of a kind's collection: id -> properties."""
        codec: StubCodec = STUB_CODECS[kind]
        _, ids = result_of(self.backend.list_items(self.user, self.collections[kind]))
        found = result_of(self.backend.get_items(self.user, self.collections[kind], ids))
        return {str(i.item_id): codec.parse(i.data) for i in found}

    def server_id(self, kind: str, item_id: str) -> str:
        """The ServerId the device sees for an item."""
        return f"{self.folders[kind]}:{item_id}"

    def initial(self, kind: str, version: str = "16.1", **kwargs: Any) -> str:
        """Sync key 0 for a kind's folder; the new key."""
        folder = self.folders[kind]
        answer = read_sync(self.sync(sync_request(collection(folder, "0", **kwargs)), version))
        assert answer[folder].status == "1", answer[folder]
        return answer[folder].key
