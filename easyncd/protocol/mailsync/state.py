"""What is saved under each mail folder's SyncKey (JSON text in the state store).

* ``mail``     -- :class:`~easyncd.backends.interfaces.MailState` bytes (base64,
  :func:`~easyncd.protocol.mailsync.snapshot.encode_mail`):
  the folder point and the snapshot of what the device knows *or has pending*
  (``changes()`` puts every UID it reports as added in its new state);
* ``adds``     -- UIDs reported as added but not sent yet (MoreAvailable
  remainder), as descending ``[high, low]`` runs (a 10,000-message initial
  sync takes a few bytes);
* ``chg`` / ``dels`` -- UIDs whose flag change / removal is still to send;
* ``soft`` -- UIDs to SoftDelete still (they fell out of the FilterType
  window: by age, or because the device narrowed the window); they are no
  longer in the snapshot;
* ``aged`` -- when (POSIX time) the held messages were last checked against
  the moving FilterType window (see :mod:`.aging`);
* ``sent``     -- the commands the answer that produced this key carried, as
  ``[op, uid]`` (a retry with the previous key gets them again);
* ``resp``     -- the Responses of that answer (a retry gets the same ones and
  the device's commands are not run twice);
* ``options`` / ``supported`` -- the collection's last Options and the
  Supported list of the initial sync.

``mail`` is None between key 0 and the first real Sync: that Sync lists the
folder (``changes(None)``).
"""
from __future__ import annotations

import base64
import binascii
import json
import struct
import zlib
from dataclasses import dataclass, replace
from typing import Any, Iterable

from easyncd.backends.interfaces import MailState
from easyncd.protocol.mailsync.snapshot import decode_mail, encode_mail
from easyncd.protocol.sync.request import SyncOptions

VERSION = "mail1"

OP_ADD = "add"
OP_CHANGE = "change"
OP_DELETE = "delete"
OP_SOFT_DELETE = "softdelete"

#: One answer's command, or one stored response: (kind, uid / id, status, server id).
SentOp = tuple[str, int]


def compress_uids(uids: Iterable[int]) -> list[list[int]]:
    """UIDs as descending ``[high, low]`` runs of consecutive numbers."""
    runs: list[list[int]] = []
    for uid in sorted(set(uids), reverse=True):
        if runs and runs[-1][1] == uid + 1:
            runs[-1][1] = uid
        else:
            runs.append([uid, uid])
    return runs


def expand_uids(runs: Iterable[Iterable[int]]) -> list[int]:
    """The inverse of :func:`compress_uids` (descending)."""
    out: list[int] = []
    for high, low in runs:
        out.extend(range(int(high), int(low) - 1, -1))
    return out


@dataclass(frozen=True)
class StoredResponse:
    """One element of Responses: ``kind`` Add/Change/Delete/Fetch; ``ref`` the
    ServerId (or ClientId for Add); ``server_id`` the new ServerId of an Add."""

    kind: str
    ref: str
    status: int
    server_id: str | None = None

    def to_json(self) -> list[Any]:
        """A JSON-able list."""
        return [self.kind, self.ref, self.status, self.server_id]

    @classmethod
    def from_json(cls, data: list[Any]) -> StoredResponse:
        """The inverse of :meth:`to_json`."""
        return cls(str(data[0]), str(data[1]), int(data[2]),
                   None if data[3] is None else str(data[3]))


@dataclass(frozen=True)
class MailSyncState:
    """The decoded state of one mail folder's sync key."""

    mail: MailState | None = None
    adds: tuple[int, ...] = ()
    changes: frozenset[int] = frozenset()
    deletes: tuple[int, ...] = ()
    soft: tuple[int, ...] = ()
    aged: float | None = None
    sent: tuple[SentOp, ...] = ()
    responses: tuple[StoredResponse, ...] = ()
    options: SyncOptions = SyncOptions()
    supported: frozenset[str] | None = None

    @property
    def has_pending(self) -> bool:
        """Whether something is still to be sent (MoreAvailable)."""
        return bool(self.adds or self.changes or self.deletes or self.soft)

    def to_text(self) -> str:
        """The JSON text to store."""
        data: dict[str, Any] = {"v": VERSION}
        if self.mail is not None:
            data["mail"] = base64.b64encode(encode_mail(self.mail)).decode("ascii")
        if self.adds:
            data["adds"] = compress_uids(self.adds)
        if self.changes:
            data["chg"] = sorted(self.changes)
        if self.deletes:
            data["dels"] = list(self.deletes)
        if self.soft:
            data["soft"] = compress_uids(self.soft)
        if self.aged is not None:
            data["aged"] = self.aged
        if self.sent:
            data["sent"] = [list(op) for op in self.sent]
        if self.responses:
            data["resp"] = [r.to_json() for r in self.responses]
        if self.supported is not None:
            data["supported"] = sorted(self.supported)
        data["options"] = self.options.to_json()
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_text(cls, text: str | None) -> MailSyncState | None:
        """Decode a stored state; None if it is not a mail state or damaged."""
        if not text:
            return None
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") != VERSION:
                return None
            mail = data.get("mail")
            supported = data.get("supported")
            return cls(
                mail=decode_mail(base64.b64decode(mail)) if mail else None,
                adds=tuple(expand_uids(data.get("adds", ()))),
                changes=frozenset(int(u) for u in data.get("chg", ())),
                deletes=tuple(int(u) for u in data.get("dels", ())),
                soft=tuple(expand_uids(data.get("soft", ()))),
                aged=float(data["aged"]) if data.get("aged") is not None else None,
                sent=tuple((str(op), int(uid)) for op, uid in data.get("sent", ())),
                responses=tuple(StoredResponse.from_json(r) for r in data.get("resp", ())),
                options=SyncOptions.from_json(data.get("options") or {}),
                supported=frozenset(supported) if supported is not None else None,
            )
        except (ValueError, KeyError, TypeError, IndexError, binascii.Error, struct.error,
                zlib.error):
            return None

    def evolve(self, **changes: Any) -> MailSyncState:
        """A copy with some fields replaced."""
        return replace(self, **changes)


__all__ = ["MailSyncState", "OP_ADD", "OP_CHANGE", "OP_DELETE", "OP_SOFT_DELETE",
           "StoredResponse",
           "compress_uids", "expand_uids"]
