"""A small EAS device for the groupware integration tests.

pyactivesync only speaks 16.1 and only knows contacts; this client drives
Calendar, Tasks and Notes (and Ping / retried Syncs) at any protocol version,
on top of the daemon harness's ``Daemon.post`` and our WBXML codec.  The
TimeZone blob is packed and unpacked here independently of the server's codec,
so that a test compares the server against a second implementation.
"""
from __future__ import annotations

import base64
import struct
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import requests

from easyncd.testing.daemon import WBXML, Daemon, provision, wbxml_of
from easyncd.wbxml import Element, encode

__all__ = [
    "Device", "SyncAnswer", "TimeZoneRule", "app_data", "compact", "parse_compact",
    "tz_blob", "parse_tz_blob", "local_time",
]

#: The folder types of MS-ASCMD 2.2.3.186.3 that hold groupware.
FOLDER_CLASSES = {7: "Tasks", 8: "Calendar", 9: "Contacts", 10: "Notes",
                  14: "Calendar", 15: "Contacts", 16: "Tasks", 18: "Notes"}


# -- Compact DateTime ---------------------------------------------------------------

def compact(value: datetime) -> str:
    """``YYYYMMDDTHHMMSSZ`` of an aware datetime (MS-ASDTYPE 2.7.2)."""
    return value.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def parse_compact(text: str) -> datetime:
    """An aware UTC datetime from a Compact DateTime or an ISO dateTime."""
    text = text.strip()
    for pattern in ("%Y%m%dT%H%M%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    raise ValueError(f"not an EAS date-time: {text!r}")


# -- TimeZone blob (MS-ASDTYPE 2.6.4) ----------------------------------------------------

@dataclass(frozen=True)
class TimeZoneRule:
    """A Windows TIME_ZONE_INFORMATION with yearly rules.

    ``standard`` / ``daylight``: (month, day of week 0=Sunday, week 1-5, hour),
    or None for a zone without daylight saving time.
    """

    bias: int
    standard: tuple[int, int, int, int] | None = None
    daylight: tuple[int, int, int, int] | None = None
    daylight_bias: int = -60
    standard_name: str = ""
    daylight_name: str = ""


def _systemtime(rule: tuple[int, int, int, int] | None) -> bytes:
    if rule is None:
        return b"\x00" * 16
    month, day_of_week, week, hour = rule
    return struct.pack("<8H", 0, month, day_of_week, week, hour, 0, 0, 0)


def tz_blob(rule: TimeZoneRule) -> str:
    """The base64 TimeZone blob of ``rule``."""
    def name(text: str) -> bytes:
        return text.encode("utf-16-le")[:64].ljust(64, b"\x00")

    raw = struct.pack("<i", rule.bias)
    raw += name(rule.standard_name) + _systemtime(rule.standard) + struct.pack("<i", 0)
    raw += name(rule.daylight_name) + _systemtime(rule.daylight)
    raw += struct.pack("<i", rule.daylight_bias if rule.daylight else 0)
    assert len(raw) == 172
    return base64.b64encode(raw).decode("ascii")


def parse_tz_blob(blob: str) -> TimeZoneRule:
    """The rules of a base64 TimeZone blob."""
    raw = base64.b64decode(blob)
    assert len(raw) == 172, len(raw)
    bias, = struct.unpack_from("<i", raw, 0)
    standard = struct.unpack_from("<8H", raw, 68)
    daylight = struct.unpack_from("<8H", raw, 152)
    daylight_bias, = struct.unpack_from("<i", raw, 168)

    def rule(values: tuple[int, ...]) -> tuple[int, int, int, int] | None:
        if values[1] == 0:
            return None
        return (values[1], values[2], values[3], values[4])

    return TimeZoneRule(
        bias=bias, standard=rule(standard), daylight=rule(daylight),
        daylight_bias=daylight_bias,
        standard_name=raw[4:68].decode("utf-16-le").rstrip("\x00"),
        daylight_name=raw[88:152].decode("utf-16-le").rstrip("\x00"))


def _transition(year: int, rule: tuple[int, int, int, int]) -> datetime:
    """The local wall time of a yearly rule's change in ``year``."""
    month, day_of_week, week, hour = rule
    first = datetime(year, month, 1)
    # Python: Monday=0; Windows: Sunday=0.
    offset = (day_of_week - (first.weekday() + 1) % 7) % 7
    day = first + timedelta(days=offset + 7 * (week - 1))
    while day.month != month:
        day -= timedelta(days=7)
    return day + timedelta(hours=hour)


def local_time(utc: datetime, rule: TimeZoneRule) -> datetime:
    """A UTC instant as naive local wall time under ``rule`` (either hemisphere)."""
    standard = utc.astimezone(timezone.utc).replace(tzinfo=None) - timedelta(minutes=rule.bias)
    if rule.daylight is None or rule.standard is None:
        return standard
    start = _transition(standard.year, rule.daylight)
    end = _transition(standard.year, rule.standard) + timedelta(minutes=rule.daylight_bias)
    if start < end:
        in_daylight = start <= standard < end
    else:  # southern hemisphere: daylight saving time spans the new year
        in_daylight = standard >= start or standard < end
    if in_daylight:
        return standard - timedelta(minutes=rule.daylight_bias)
    return standard


#: Central European time and US Eastern time, as Windows writes them.
BERLIN = TimeZoneRule(bias=-60, standard=(10, 0, 5, 3), daylight=(3, 0, 5, 2),
                      standard_name="W. Europe Standard Time",
                      daylight_name="W. Europe Daylight Time")
AUCKLAND = TimeZoneRule(bias=-720, standard=(4, 0, 1, 3), daylight=(9, 0, 5, 2),
                        standard_name="New Zealand Standard Time",
                        daylight_name="New Zealand Daylight Time")
NEW_YORK = TimeZoneRule(bias=300, standard=(11, 0, 1, 2), daylight=(3, 0, 2, 2),
                        standard_name="Eastern Standard Time",
                        daylight_name="Eastern Daylight Time")


# -- ApplicationData ------------------------------------------------------------------------

def app_data(namespace: str, *fields: tuple[str, Any]) -> Element:
    """``AirSync:ApplicationData`` from (tag, value) pairs.

    A tag without a namespace gets ``namespace``; a value may be a string,
    an Element (appended, its tag ignored in favour of the pair's tag), or a
    list of (tag, value) pairs (a container element).
    """
    root = Element("AirSync:ApplicationData")
    for tag, value in fields:
        root.append(_element(namespace, tag, value))
    return root


def _element(namespace: str, tag: str, value: Any) -> Element:
    full = tag if ":" in tag else f"{namespace}:{tag}"
    if isinstance(value, Element):
        return Element(full, value.text, value.children)
    if isinstance(value, list):
        container = Element(full)
        for child_tag, child_value in value:
            container.append(_element(namespace, child_tag, child_value))
        return container
    return Element(full, value)


def _data(command: Element) -> Element:
    found = command.find("AirSync:ApplicationData")
    return found if found is not None else Element("AirSync:ApplicationData")


# -- The device -------------------------------------------------------------------------------

@dataclass
class SyncAnswer:
    """One collection of a Sync response."""

    element: Element | None
    status: str | None = None
    sync_key: str | None = None
    adds: dict[str, Element] = field(default_factory=dict)
    changes: dict[str, Element] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    responses: list[Element] = field(default_factory=list)
    more_available: bool = False

    @classmethod
    def of(cls, collection: Element | None) -> SyncAnswer:
        """Read one ``AirSync:Collection`` of a response."""
        answer = cls(collection)
        if collection is None:
            return answer
        answer.status = collection.findtext("AirSync:Status")
        answer.sync_key = collection.findtext("AirSync:SyncKey")
        answer.more_available = collection.find("AirSync:MoreAvailable") is not None
        for command in collection.findall("AirSync:Commands/AirSync:Add"):
            answer.adds[command.findtext("AirSync:ServerId") or ""] = _data(command)
        for command in collection.findall("AirSync:Commands/AirSync:Change"):
            answer.changes[command.findtext("AirSync:ServerId") or ""] = _data(command)
        for tag in ("AirSync:Delete", "AirSync:SoftDelete"):
            for command in collection.findall(f"AirSync:Commands/{tag}"):
                answer.deletes.append(command.findtext("AirSync:ServerId") or "")
        response = collection.find("AirSync:Responses")
        if response is not None:
            answer.responses = list(response.children)
        return answer

    def added_server_id(self, client_id: str) -> str:
        """The ServerId the server gave to the Add with ``client_id``."""
        for entry in self.responses:
            if entry.tag == "AirSync:Add" and entry.findtext("AirSync:ClientId") == client_id:
                status = entry.findtext("AirSync:Status")
                assert status == "1", f"Add {client_id} got Status {status}"
                server_id = entry.findtext("AirSync:ServerId")
                assert server_id, entry.to_xml()
                return server_id
        raise AssertionError(f"no Add response for {client_id}: "
                             + (self.element.to_xml() if self.element else "no collection"))


class Device:
    """One provisioned device of one user, remembering its SyncKeys."""

    def __init__(self, daemon: Daemon, device_id: str, *, user: str = "alice",
                 password: str = "secret", version: str = "16.1",
                 device_type: str = "TestPhone") -> None:
        self.daemon = daemon
        self.version = version
        self.kwargs: dict[str, Any] = {"user": user, "password": password,
                                       "device_id": device_id, "device_type": device_type,
                                       "version": version}
        self.policy_key: int | None = None
        self.folder_key = "0"
        #: ServerId -> (DisplayName, Type) as the device knows its hierarchy.
        self.folders: dict[str, tuple[str, int]] = {}
        #: CollectionId -> SyncKey.
        self.keys: dict[str, str] = {}
        #: CollectionId -> the previous SyncKey (to replay a lost answer).
        self.previous_keys: dict[str, str] = {}

    # -- plumbing --------------------------------------------------------------------

    def post(self, command: str, body: Element | None, **extra: Any) -> Element:
        """POST a command; the decoded answer (HTTP 200 required)."""
        response = self.daemon.post(command, body, policy_key=self.policy_key,
                                    **{**self.kwargs, **extra})
        assert response.status_code == 200, (command, response.status_code, response.text)
        return wbxml_of(response)

    def provision(self) -> None:
        """Both Provision phases; keeps the policy key."""
        self.policy_key = provision(self.daemon, **self.kwargs)

    def folder_sync(self) -> tuple[dict[str, tuple[str, int]], list[str]]:
        """An incremental FolderSync: (adds and updates, deleted ServerIds)."""
        request = Element("FolderHierarchy:FolderSync")
        request.add("FolderHierarchy:SyncKey", self.folder_key)
        answer = self.post("FolderSync", request)
        assert answer.findtext("FolderHierarchy:Status") == "1", answer.to_xml()
        self.folder_key = answer.findtext("FolderHierarchy:SyncKey") or self.folder_key
        changed: dict[str, tuple[str, int]] = {}
        for tag in ("Add", "Update"):
            for entry in answer.findall(f"FolderHierarchy:Changes/FolderHierarchy:{tag}"):
                server_id = entry.findtext("FolderHierarchy:ServerId") or ""
                changed[server_id] = (entry.findtext("FolderHierarchy:DisplayName") or "",
                                      int(entry.findtext("FolderHierarchy:Type") or 0))
        deleted = [entry.findtext("FolderHierarchy:ServerId") or "" for entry in
                   answer.findall("FolderHierarchy:Changes/FolderHierarchy:Delete")]
        self.folders.update(changed)
        for server_id in deleted:
            self.folders.pop(server_id, None)
        return changed, deleted

    def folder(self, name: str) -> str:
        """The ServerId of the folder called ``name``."""
        for server_id, (display, _) in self.folders.items():
            if display == name:
                return server_id
        raise AssertionError(f"no folder {name!r} in {self.folders}")

    # -- Sync ------------------------------------------------------------------------------

    def sync_request(self, collection_id: str, *, key: str | None = None,
                     commands: list[Element] | None = None, get_changes: bool = True,
                     window_size: int = 100, options: list[Element] | None = None,
                     ) -> Element:
        """A Sync request for one collection."""
        request = Element("AirSync:Sync")
        collection = request.add("AirSync:Collections").add("AirSync:Collection")
        if self.version == "2.5":
            name, kind = self.folders[collection_id]
            collection.add("AirSync:Class", FOLDER_CLASSES[kind])
        collection.add("AirSync:SyncKey", key if key is not None
                       else self.keys.get(collection_id, "0"))
        collection.add("AirSync:CollectionId", collection_id)
        sent_key = key if key is not None else self.keys.get(collection_id, "0")
        if sent_key != "0":
            collection.add("AirSync:GetChanges", "1" if get_changes else "0")
        collection.add("AirSync:WindowSize", str(window_size))
        if options:
            opts = collection.add("AirSync:Options")
            for option in options:
                opts.append(option)
        if commands:
            container = collection.add("AirSync:Commands")
            for command in commands:
                container.append(command)
        return request

    def sync(self, collection_id: str, commands: list[Element] | None = None, *,
             key: str | None = None, get_changes: bool = True, window_size: int = 100,
             options: list[Element] | None = None) -> SyncAnswer:
        """One Sync round trip; remembers the new SyncKey (Status 1 required)."""
        sent_key = key if key is not None else self.keys.get(collection_id, "0")
        request = self.sync_request(collection_id, key=sent_key, commands=commands,
                                    get_changes=get_changes, window_size=window_size,
                                    options=options)
        response = self.daemon.post("Sync", request, policy_key=self.policy_key,
                                    **self.kwargs)
        assert response.status_code == 200, (response.status_code, response.text)
        if not response.content:
            # MS-ASCMD 2.2.3.166: an empty answer means nothing changed.
            assert not commands, "empty answer to a Sync with commands"
            return SyncAnswer(None, status="1", sync_key=sent_key)
        root = wbxml_of(response)
        collection = root.find("AirSync:Collections/AirSync:Collection")
        answer = SyncAnswer.of(collection)
        assert answer.status == "1", root.to_xml()
        assert answer.sync_key, root.to_xml()
        self.previous_keys[collection_id] = sent_key
        self.keys[collection_id] = answer.sync_key
        return answer

    def sync_all(self, collection_id: str, *, window_size: int = 100,
                 options: list[Element] | None = None) -> SyncAnswer:
        """Sync until MoreAvailable stops; the merged answer.  Starts the
        collection (SyncKey 0) first when the device has no key for it."""
        if self.keys.get(collection_id, "0") == "0":
            first = self.sync(collection_id, window_size=window_size, options=options)
            assert not first.adds and not first.changes, "items answered to SyncKey 0"
        merged = SyncAnswer(None)
        while True:
            answer = self.sync(collection_id, window_size=window_size, options=options)
            merged.element = answer.element
            merged.status, merged.sync_key = answer.status, answer.sync_key
            merged.adds.update(answer.adds)
            merged.changes.update(answer.changes)
            merged.deletes.extend(answer.deletes)
            if not answer.more_available:
                return merged

    def add(self, collection_id: str, data: Element, client_id: str) -> str:
        """Add one item from the device; its ServerId."""
        command = Element("AirSync:Add")
        command.add("AirSync:ClientId", client_id)
        command.append(data)
        answer = self.sync(collection_id, [command], get_changes=False)
        return answer.added_server_id(client_id)

    def change(self, collection_id: str, server_id: str, data: Element) -> SyncAnswer:
        """Change one item from the device."""
        command = Element("AirSync:Change")
        command.add("AirSync:ServerId", server_id)
        command.append(data)
        answer = self.sync(collection_id, [command], get_changes=False)
        for entry in answer.responses:
            if entry.findtext("AirSync:ServerId") == server_id:
                assert entry.findtext("AirSync:Status") == "1", entry.to_xml()
        return answer

    def delete(self, collection_id: str, server_id: str) -> SyncAnswer:
        """Delete one item from the device."""
        command = Element("AirSync:Delete")
        command.add("AirSync:ServerId", server_id)
        answer = self.sync(collection_id, [command], get_changes=False)
        for entry in answer.responses:
            if entry.findtext("AirSync:ServerId") == server_id:
                assert entry.findtext("AirSync:Status") == "1", entry.to_xml()
        return answer

    # -- Ping ------------------------------------------------------------------------------

    def ping(self, folders: list[tuple[str, str]], heartbeat: int = 60,
             timeout: float | None = None) -> tuple[str, list[str], float]:
        """One Ping: (Status, changed folder ids, seconds it took).  ``timeout``
        (default: heartbeat + 30 s) bounds the client's wait."""
        request = Element("Ping:Ping")
        request.add("Ping:HeartbeatInterval", str(heartbeat))
        container = request.add("Ping:Folders")
        for folder_id, folder_class in folders:
            entry = container.add("Ping:Folder")
            entry.add("Ping:Id", folder_id)
            entry.add("Ping:Class", folder_class)
        query = urllib.parse.urlencode({
            "Cmd": "Ping", "User": self.kwargs["user"], "DeviceId": self.kwargs["device_id"],
            "DeviceType": self.kwargs["device_type"]})
        started = time.monotonic()
        response = requests.post(
            f"{self.daemon.base}/Microsoft-Server-ActiveSync?{query}", data=encode(request),
            headers={"MS-ASProtocolVersion": self.version, "Content-Type": WBXML,
                     "X-MS-PolicyKey": str(self.policy_key)},
            auth=(self.kwargs["user"], self.kwargs["password"]),
            timeout=timeout if timeout is not None else heartbeat + 30)
        elapsed = time.monotonic() - started
        assert response.status_code == 200, response.text
        answer = wbxml_of(response)
        changed = [element.text for element in answer.findall("Ping:Folders/Ping:Folder")
                   if isinstance(element.text, str)]
        return answer.findtext("Ping:Status") or "", changed, elapsed
