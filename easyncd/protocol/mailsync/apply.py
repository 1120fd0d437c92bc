"""The device's commands on a mail folder (MS-ASCMD Sync Commands, MS-ASEMAIL).

* Change: ``Email:Read`` -> ``\\Seen``; ``Email:Flag`` -> ``\\Flagged``
  (Status 2 sets it, 0/1 or an empty Flag clear it; a Status other than 0-2
  gets Status 6).  The flag's dates, type, reminder... go to
  :attr:`Applied.follow_ups` for the engine to keep in the state store
  (:mod:`easyncd.protocol.codecs.emailflag`: IMAP has nowhere to put them);
  ``Email:Categories`` -> IMAP keywords (exactly the listed ones; characters
  IMAP atoms cannot hold become ``_``).  In Drafts (16.x) a Change with draft
  content replaces the draft (APPEND + expunge of the old one; the next Sync
  tells the device Delete + Add).
* Delete: to Trash when DeletesAsMoves (the default) and there is a Trash,
  else expunged.
* Add (16.x, Drafts only): a new draft, APPENDed with ``\\Draft \\Seen``.
* Fetch: the item is sent in Responses.

Per MS-ASCMD only failed changes / deletes get a Response; adds and fetches
always do.  What the device did is recorded for the snapshot so the next
Sync does not echo it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Sequence

from twisted.logger import Logger

from easyncd.backends.interfaces import FOLDER_DRAFTS, MailboxSnapshot, MailError
from easyncd.protocol.codecs.email import MessageView
from easyncd.protocol.codecs.emailflag import DeviceFlag, InvalidFlag, parse_flag
from easyncd.protocol.mailsync.drafts import DRAFT_FLAGS, build_draft, has_draft_fields
from easyncd.protocol.mailsync.state import StoredResponse
from easyncd.protocol.serverids import item_id_in, item_server_id
from easyncd.protocol.sync.constants import SyncStatus
from easyncd.protocol.sync.request import (
    ClientAdd,
    ClientChange,
    ClientCommand,
    ClientDelete,
    ClientFetch,
)
from easyncd.protocol.versions import at_least
from easyncd.wbxml import Element

log = Logger()

SEEN = "\\Seen"
FLAGGED = "\\Flagged"
_ATOM_SPECIALS = re.compile(r'[\x00-\x20\x7f(){%*"\\\]]')


def keyword_for(category: str) -> str:
    """The IMAP keyword for an EAS category."""
    keyword = _ATOM_SPECIALS.sub("_", category.strip())
    return keyword or "_"


def category_of(flag: str) -> str | None:
    """The EAS category an IMAP flag stands for (None: not a category)."""
    names = MessageView(0, frozenset({flag}), None, None, b"", None).keywords
    return names[0] if names else None


def uid_of(folder_server_id: str, server_id: str) -> int | None:
    """The UID of an item ServerId of this folder, or None."""
    item = item_id_in(folder_server_id, server_id)
    if item is None or not item.isdigit():
        return None
    uid = int(item)
    return uid if uid > 0 else None


def _text(element: Element | None) -> str | None:
    if element is None:
        return None
    value = element.text
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return (value or "").strip()


def flag_changes(app: Element, current: frozenset[str] | None,
                 version: str) -> tuple[set[str], set[str]]:
    """(flags to add, flags to remove) for a Change's ApplicationData."""
    add: set[str] = set()
    remove: set[str] = set()
    read = _text(app.find("Email:Read"))
    if read is not None:
        (add if read == "1" else remove).add(SEEN)
    flag = app.find("Email:Flag")
    if flag is not None:
        try:
            flagged = parse_flag(flag).flagged
        except InvalidFlag:
            flagged = False
        (add if flagged else remove).add(FLAGGED)
    categories = app.find("Email:Categories")
    if categories is not None and at_least(version, "12.0"):
        wanted = {_text(c) or "" for c in categories.findall("Email:Category")}
        wanted.discard("")
        have: dict[str, str] = {}
        for existing in current or ():
            name = category_of(existing)
            if name is not None:
                have[name] = existing
        for name, existing in have.items():
            if name not in wanted:
                remove.add(existing)
        for name in wanted:
            if name not in have:
                add.add(keyword_for(name))
    return add, remove


@dataclass
class Applied:
    """The effect of the device's commands on one mail folder."""

    responses: list[StoredResponse] = field(default_factory=list)
    #: Snapshot updates: new flags, UIDs gone, UIDs the device created itself.
    flags: dict[int, frozenset[str]] = field(default_factory=dict)
    removed: set[int] = field(default_factory=set)
    created: dict[int, frozenset[str]] = field(default_factory=dict)
    #: ServerIds to send in Responses/Fetch.
    fetches: list[str] = field(default_factory=list)
    #: The follow-up flags the device set (or cleared) on UIDs, to keep.
    follow_ups: dict[int, DeviceFlag] = field(default_factory=dict)
    wrote: bool = False


class CommandApplier:
    """Runs one collection's commands against the mail backend."""

    def __init__(self, backend: Any, user: str, password: str | None, mailbox: str,
                 folder_server_id: str, folder_type: int, version: str,
                 snapshot: MailboxSnapshot | None, deletes_as_moves: bool,
                 sender: str | None, now: float,
                 send_draft: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.backend = backend
        #: Sends the stored draft with this UID (16.x ``Email2:Send``) and
        #: deletes it; raises when it was not sent.
        self.send_draft = send_draft
        self.user = user
        self.password = password
        self.mailbox = mailbox
        self.folder_server_id = folder_server_id
        self.folder_type = folder_type
        self.version = version
        self.snapshot = snapshot
        self.deletes_as_moves = deletes_as_moves
        self.sender = sender
        self.now = now

    @property
    def _drafts_allowed(self) -> bool:
        return self.folder_type == FOLDER_DRAFTS and at_least(self.version, "16.0")

    async def apply(self, commands: Sequence[ClientCommand]) -> Applied:
        """Run the commands in order (deletes batched at the end)."""
        applied = Applied()
        deletes: list[int] = []
        for command in commands:
            if isinstance(command, ClientFetch):
                applied.fetches.append(command.server_id)
            elif isinstance(command, ClientAdd):
                await self._add(command, applied)
            elif isinstance(command, ClientChange):
                await self._change(command, applied)
            elif isinstance(command, ClientDelete):
                uid = uid_of(self.folder_server_id, command.server_id)
                if uid is None:
                    applied.responses.append(StoredResponse(
                        "Delete", command.server_id, SyncStatus.ObjectNotFound))
                else:
                    deletes.append(uid)
        if deletes:
            await self.backend.delete(self.user, self.password, self.mailbox, deletes,
                                      self.deletes_as_moves)
            applied.removed.update(deletes)
            for uid in deletes:
                applied.flags.pop(uid, None)
                applied.follow_ups.pop(uid, None)
            applied.wrote = True
        return applied

    def _current(self, uid: int) -> frozenset[str] | None:
        return self.snapshot.flags_of(uid) if self.snapshot is not None else None

    async def _change(self, command: ClientChange, applied: Applied) -> None:
        uid = uid_of(self.folder_server_id, command.server_id)
        app = command.application_data
        if uid is None:
            applied.responses.append(StoredResponse("Change", command.server_id,
                                                    SyncStatus.ObjectNotFound))
            return
        if app is None:
            return
        if self._drafts_allowed and has_draft_fields(app):
            await self._replace_draft(uid, command, applied)
            return
        flag_element = app.find("Email:Flag")
        device_flag: DeviceFlag | None = None
        if flag_element is not None:
            try:
                device_flag = parse_flag(flag_element)
            except InvalidFlag as exc:
                log.info("Sync: flag of {server_id} refused: {error}",
                         server_id=command.server_id, error=str(exc))
                applied.responses.append(StoredResponse("Change", command.server_id,
                                                        SyncStatus.ConversionError))
                return
        current = applied.flags.get(uid) or self._current(uid)
        add, remove = flag_changes(app, current, self.version)
        if device_flag is not None:
            applied.follow_ups[uid] = device_flag
        if not add and not remove:
            return
        result = await self.backend.set_flags(self.user, self.password, self.mailbox, [uid],
                                              add=sorted(add), remove=sorted(remove))
        applied.wrote = True
        if uid not in result:
            applied.follow_ups.pop(uid, None)
            applied.responses.append(StoredResponse("Change", command.server_id,
                                                    SyncStatus.ObjectNotFound))
            return
        applied.flags[uid] = frozenset(result[uid])

    async def _replace_draft(self, uid: int, command: ClientChange, applied: Applied) -> None:
        assert command.application_data is not None
        try:
            old = await self.backend.fetch_part(self.user, self.password, self.mailbox, uid, "")
        except MailError:
            applied.responses.append(StoredResponse("Change", command.server_id,
                                                    SyncStatus.ObjectNotFound))
            return
        try:
            message = build_draft(command.application_data, self.sender, self._now(), old)
        except Exception as exc:  # noqa: BLE001 - the device's data, per item
            log.info("Sync: cannot build draft: {error}", error=repr(exc))
            applied.responses.append(StoredResponse("Change", command.server_id,
                                                    SyncStatus.ConversionError))
            return
        new_uid = await self.backend.append(self.user, self.password, self.mailbox, message,
                                            flags=DRAFT_FLAGS)
        await self.backend.delete(self.user, self.password, self.mailbox, [uid], False)
        applied.wrote = True
        if self._wants_send(command.application_data):
            await self._send(int(new_uid), "Change", command.server_id, applied)

    async def _add(self, command: ClientAdd, applied: Applied) -> None:
        if not self._drafts_allowed or command.application_data is None:
            applied.responses.append(StoredResponse("Add", command.client_id,
                                                    SyncStatus.ProtocolError))
            return
        try:
            message = build_draft(command.application_data, self.sender, self._now())
        except Exception as exc:  # noqa: BLE001
            log.info("Sync: cannot build draft: {error}", error=repr(exc))
            applied.responses.append(StoredResponse("Add", command.client_id,
                                                    SyncStatus.ConversionError))
            return
        uid = await self.backend.append(self.user, self.password, self.mailbox, message,
                                        flags=DRAFT_FLAGS)
        applied.wrote = True
        if self._wants_send(command.application_data):
            # Sent at once: the device is told the ServerId, then the Delete of
            # the draft in the next answer (it is not in the snapshot).
            applied.responses.append(StoredResponse(
                "Add", command.client_id, SyncStatus.Success,
                item_server_id(self.folder_server_id, str(uid))))
            await self._send(int(uid), "Add", command.client_id, applied)
            return
        applied.created[int(uid)] = frozenset(DRAFT_FLAGS)
        applied.responses.append(StoredResponse(
            "Add", command.client_id, SyncStatus.Success,
            item_server_id(self.folder_server_id, str(uid))))

    def _wants_send(self, app: Element) -> bool:
        """16.x ``Email2:Send``: the device wants the draft sent now."""
        return app.find("Email2:Send") is not None and self.send_draft is not None

    async def _send(self, uid: int, kind: str, item_id: str, applied: Applied) -> None:
        assert self.send_draft is not None
        try:
            await self.send_draft(uid)
        except Exception as exc:  # noqa: BLE001 - reported per item; the draft stays
            log.info("Sync: draft {uid} not sent: {error}", uid=uid, error=repr(exc))
            applied.responses = [r for r in applied.responses
                                 if not (r.kind == kind and r.ref == item_id)]
            applied.responses.append(StoredResponse(kind, item_id, SyncStatus.ServerError))

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.now, timezone.utc)


__all__ = ["Applied", "CommandApplier", "category_of", "flag_changes", "keyword_for", "uid_of"]
