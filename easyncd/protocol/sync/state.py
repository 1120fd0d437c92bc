"""What is saved under each collection's SyncKey (JSON in the state store).

* ``rev``       -- the backend revision the key stands for: every change up to
  it has been sent or is in ``pending``;
* ``pending``   -- changes still to send (the MoreAvailable remainder), as
  ``[op, item_id]`` with op ``add``, ``change`` or ``delete``;
* ``sent``      -- what the answer that produced this key sent (a retry with
  the previous key gets it again);
* ``adds``      -- ClientId -> item id of the adds of the request that produced
  this key (a retry does not create them twice);
* ``own``       -- item id -> revision the device itself produced (-1: it
  deleted the item), not to be echoed back; dropped once ``rev`` covers them.
  Sync writes them for the device's commands, :mod:`.marks` for its
  MoveItems and EmptyFolderContents;
* ``held``      -- with a FilterType that depends on the item, the ids the
  device has (None otherwise: the device has everything sent);
* ``supported`` -- the Supported list of the initial sync (ghosting);
* ``options``   -- the collection's last Options.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from easyncd.protocol.sync.request import SyncOptions

OP_ADD = "add"
OP_CHANGE = "change"
OP_DELETE = "delete"
OP_SOFT_DELETE = "softdelete"

#: ``own`` value of an item the device deleted.
DELETED = -1

Op = tuple[str, str]


@dataclass(frozen=True)
class CollectionState:
    """The decoded state of one collection's sync key."""

    rev: int
    pending: tuple[Op, ...] = ()
    sent: tuple[Op, ...] = ()
    adds: dict[str, str] = field(default_factory=dict)
    own: dict[str, int] = field(default_factory=dict)
    held: frozenset[str] | None = None
    supported: frozenset[str] | None = None
    options: SyncOptions = SyncOptions()

    def to_text(self) -> str:
        """The JSON text to store."""
        data: dict[str, Any] = {"v": 1, "rev": self.rev}
        if self.pending:
            data["pending"] = [list(op) for op in self.pending]
        if self.sent:
            data["sent"] = [list(op) for op in self.sent]
        if self.adds:
            data["adds"] = self.adds
        if self.own:
            data["own"] = self.own
        if self.held is not None:
            data["held"] = sorted(self.held)
        if self.supported is not None:
            data["supported"] = sorted(self.supported)
        data["options"] = self.options.to_json()
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_text(cls, text: str | None) -> CollectionState | None:
        """Decode a stored state; None if it is not ours or damaged."""
        if not text:
            return None
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") != 1:
                return None
            held = data.get("held")
            supported = data.get("supported")
            return cls(
                rev=int(data["rev"]),
                pending=tuple((str(op), str(i)) for op, i in data.get("pending", ())),
                sent=tuple((str(op), str(i)) for op, i in data.get("sent", ())),
                adds={str(k): str(v) for k, v in data.get("adds", {}).items()},
                own={str(k): int(v) for k, v in data.get("own", {}).items()},
                held=frozenset(held) if held is not None else None,
                supported=frozenset(supported) if supported is not None else None,
                options=SyncOptions.from_json(data.get("options") or {}),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def evolve(self, **changes: Any) -> CollectionState:
        """A copy with some fields replaced."""
        return replace(self, **changes)
