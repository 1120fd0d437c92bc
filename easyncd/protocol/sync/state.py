"""What is saved under each collection's SyncKey (JSON in the state store).

* ``rev``       -- the backend revision the key stands for: every change up to
  it has been sent or is in ``pending``;
* ``pending``   -- changes still to send (the MoreAvailable remainder), in
  the order they go out, as a :class:`Pending` (op ``add``, ``change`` or
  ``delete`` per item).  Stored compactly (see :class:`Pending`): item ids
  are decimal numbers counting up per collection, so the 10,000 adds of an
  initial Sync are ``"a1-10000"``, not a 150 KB list decoded and encoded
  on every request.  States saved as an ``[[op, item_id], ...]`` list are
  still read;
* ``sent``      -- what the answer that produced this key sent (a retry with
  the previous key gets it again);
* ``adds``      -- ClientId -> item id of the adds of the request that produced
  this key (a retry does not create them twice);
* ``own``       -- item id -> revision the device itself produced (-1: it
  deleted the item), not to be echoed back; dropped once ``rev`` covers them.
  Sync writes them for the device's commands, :mod:`.marks` for its
  MoveItems and EmptyFolderContents;
* ``held``      -- with a FilterType that depends on the item, the ids the
  device has (None otherwise: the device has everything sent); stored as
  ranges (``"1-500,502"``) when every id is a decimal number, else (and
  in older states) as a list;
* ``checked``   -- with ``held``: when (POSIX time) the held items were last
  checked against the FilterType window, which moves with the clock (items
  that age out get a SoftDelete; at most once a day);
* ``supported`` -- the Supported list of the initial sync (ghosting);
* ``options``   -- the collection's last Options.
"""
from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator, Sequence, overload

from easyncd.protocol.sync.request import SyncOptions

OP_ADD = "add"
OP_CHANGE = "change"
OP_DELETE = "delete"
OP_SOFT_DELETE = "softdelete"

#: ``own`` value of an item the device deleted.
DELETED = -1

Op = tuple[str, str]

#: The letter of an op in the compact ``pending`` text.
_LETTER = {OP_ADD: "a", OP_CHANGE: "c", OP_DELETE: "d", OP_SOFT_DELETE: "s"}
_OP_OF_LETTER = {letter: op for op, letter in _LETTER.items()}
#: Longest decimal id kept as a number (well inside int and JSON limits).
_MAX_DIGITS = 18


def _number(item_id: str) -> int | None:
    """``item_id`` as an int when it is a canonical decimal (no sign, no
    leading zero), else None (it is then stored as text)."""
    if (item_id.isdigit() and item_id.isascii() and len(item_id) <= _MAX_DIGITS
            and (item_id[0] != "0" or item_id == "0")):
        return int(item_id)
    return None


#: A run of ops: (op, first number, count, None) for the ids first ..
#: first + count - 1 in that order, or (op, 0, 1, item_id) for one id that
#: is not a canonical decimal.
_Run = tuple[str, int, int, str | None]


class Pending(Sequence[Op]):
    """An immutable sequence of (op, item_id), kept as runs of consecutive
    numeric ids with the same op: slicing and ``len`` cost the number of
    runs, not of items."""

    __slots__ = ("_runs", "_ends")

    def __init__(self, runs: Iterable[_Run] = ()) -> None:
        self._runs: list[_Run] = list(runs)
        ends: list[int] = []
        total = 0
        for run in self._runs:
            total += run[2]
            ends.append(total)
        self._ends = ends

    @classmethod
    def from_ops(cls, ops: Iterable[Op]) -> Pending:
        """The ops, in order, as runs."""
        if isinstance(ops, Pending):
            return ops
        runs: list[_Run] = []
        last: _Run | None = None
        for op, item_id in ops:
            number = _number(item_id)
            if (number is not None and last is not None and last[3] is None
                    and last[0] == op and last[1] + last[2] == number):
                last = (op, last[1], last[2] + 1, None)
                runs[-1] = last
                continue
            last = (op, number, 1, None) if number is not None else (op, 0, 1, item_id)
            runs.append(last)
        return cls(runs)

    # -- Sequence ----------------------------------------------------------------

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __iter__(self) -> Iterator[Op]:
        for op, first, count, text in self._runs:
            if text is not None:
                yield op, text
            else:
                for number in range(first, first + count):
                    yield op, str(number)

    @overload
    def __getitem__(self, index: int) -> Op: ...

    @overload
    def __getitem__(self, index: slice) -> Pending: ...

    def __getitem__(self, index: int | slice) -> Op | Pending:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return Pending.from_ops(list(self)[index])
            return self._slice(start, stop)
        size = len(self)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("Pending index out of range")
        position = bisect.bisect_right(self._ends, index)
        op, first, count, text = self._runs[position]
        if text is not None:
            return op, text
        before = self._ends[position] - count
        return op, str(first + index - before)

    def _slice(self, start: int, stop: int) -> Pending:
        if start >= stop:
            return Pending()
        if start == 0 and stop == len(self):
            return self
        first_run = bisect.bisect_right(self._ends, start)
        last_run = bisect.bisect_right(self._ends, stop - 1)
        runs = self._runs[first_run:last_run + 1]
        op, first, count, text = runs[0]
        skip = start - (self._ends[first_run] - count)
        if skip:
            runs[0] = (op, first + skip, count - skip, text)
        op, first, count, text = runs[-1]
        cut = self._ends[last_run] - stop
        if cut:
            runs[-1] = (op, first, count - cut, text)
        return Pending(runs)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Pending) and self._runs == other._runs:
            return True
        if isinstance(other, (Pending, tuple, list)):
            return len(self) == len(other) and all(
                tuple(a) == tuple(b) for a, b in zip(self, other))
        return NotImplemented

    def __hash__(self) -> int:  # immutable; equal sequences have equal lengths
        return hash(len(self))

    def __repr__(self) -> str:
        shown = ", ".join(f"{op} {first}+{count}" if text is None else f"{op} {text!r}"
                          for op, first, count, text in self._runs[:5])
        more = ", ..." if len(self._runs) > 5 else ""
        return f"<Pending {len(self)} ops: {shown}{more}>"

    # -- queries -----------------------------------------------------------------

    def ids(self, op: str) -> set[str]:
        """The ids pending with ``op``."""
        out: set[str] = set()
        for run_op, first, count, text in self._runs:
            if run_op == op:
                if text is not None:
                    out.add(text)
                else:
                    out.update(str(n) for n in range(first, first + count))
        return out

    def has_id(self, item_id: str) -> bool:
        """Whether ``item_id`` is in the sequence (with any op)."""
        number = _number(item_id)
        for _, first, count, text in self._runs:
            if text is not None:
                if text == item_id:
                    return True
            elif number is not None and first <= number < first + count:
                return True
        return False

    # -- storage -----------------------------------------------------------------

    def to_json(self) -> str | list[list[str]]:
        """``"a1-500,502,c7,d9"`` (an op letter where the op changes, then
        numbers and inclusive ranges); the ``[[op, id], ...]`` list when an
        id is not a canonical decimal or an op has no letter."""
        tokens: list[str] = []
        current = ""
        for op, first, count, text in self._runs:
            letter = _LETTER.get(op)
            if text is not None or letter is None:
                return [[op, item_id] for op, item_id in self]
            token = str(first) if count == 1 else f"{first}-{first + count - 1}"
            if letter != current:
                token = letter + token
                current = letter
            tokens.append(token)
        return ",".join(tokens)

    @classmethod
    def from_json(cls, data: Any) -> Pending:
        """Read :meth:`to_json`'s text or the list of the older format;
        ValueError or TypeError when it is neither."""
        if isinstance(data, list):
            return cls.from_ops((str(op), str(item_id)) for op, item_id in data)
        if not isinstance(data, str):
            raise TypeError("pending must be text or a list")
        runs: list[_Run] = []
        op = ""
        for token in data.split(",") if data else ():
            if token[:1] in _OP_OF_LETTER:
                op, token = _OP_OF_LETTER[token[0]], token[1:]
            if not op:
                raise ValueError("pending: no op")
            first_text, dash, last_text = token.partition("-")
            first = int(first_text)
            last = int(last_text) if dash else first
            if first < 0 or last < first:
                raise ValueError(f"pending: bad range {token!r}")
            runs.append((op, first, last - first + 1, None))
        return cls(runs)


def _ids_to_json(ids: frozenset[str]) -> str | list[str]:
    """A set of ids as ``"1-500,502"``, or a sorted list when one is not
    a canonical decimal."""
    numbers = []
    for item_id in ids:
        number = _number(item_id)
        if number is None:
            return sorted(ids)
        numbers.append(number)
    numbers.sort()
    tokens: list[str] = []
    index = 0
    while index < len(numbers):
        end = index
        while end + 1 < len(numbers) and numbers[end + 1] == numbers[end] + 1:
            end += 1
        tokens.append(str(numbers[index]) if end == index
                      else f"{numbers[index]}-{numbers[end]}")
        index = end + 1
    return ",".join(tokens)


def _ids_from_json(data: Any) -> frozenset[str]:
    if isinstance(data, list):
        return frozenset(str(item_id) for item_id in data)
    if not isinstance(data, str):
        raise TypeError("ids must be text or a list")
    out: set[str] = set()
    for token in data.split(",") if data else ():
        first_text, dash, last_text = token.partition("-")
        first = int(first_text)
        last = int(last_text) if dash else first
        if first < 0 or last < first:
            raise ValueError(f"bad range {token!r}")
        out.update(str(n) for n in range(first, last + 1))
    return frozenset(out)


@dataclass(frozen=True)
class CollectionState:
    """The decoded state of one collection's sync key."""

    rev: int
    #: Any sequence of ops may be given; it is kept as a :class:`Pending`.
    pending: Pending = Pending()
    sent: tuple[Op, ...] = ()
    adds: dict[str, str] = field(default_factory=dict)
    own: dict[str, int] = field(default_factory=dict)
    held: frozenset[str] | None = None
    supported: frozenset[str] | None = None
    options: SyncOptions = SyncOptions()
    checked: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.pending, Pending):
            object.__setattr__(self, "pending", Pending.from_ops(self.pending))

    def to_text(self) -> str:
        """The JSON text to store."""
        data: dict[str, Any] = {"v": 1, "rev": self.rev}
        if self.pending:
            data["pending"] = self.pending.to_json()
        if self.sent:
            data["sent"] = [list(op) for op in self.sent]
        if self.adds:
            data["adds"] = self.adds
        if self.own:
            data["own"] = self.own
        if self.held is not None:
            data["held"] = _ids_to_json(self.held)
        if self.supported is not None:
            data["supported"] = sorted(self.supported)
        if self.checked is not None:
            data["checked"] = self.checked
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
                pending=Pending.from_json(data.get("pending", [])),
                sent=tuple((str(op), str(i)) for op, i in data.get("sent", ())),
                adds={str(k): str(v) for k, v in data.get("adds", {}).items()},
                own={str(k): int(v) for k, v in data.get("own", {}).items()},
                held=_ids_from_json(held) if held is not None else None,
                supported=frozenset(supported) if supported is not None else None,
                options=SyncOptions.from_json(data.get("options") or {}),
                checked=float(data["checked"]) if data.get("checked") is not None else None,
            )
        except (ValueError, KeyError, TypeError):
            return None

    def evolve(self, **changes: Any) -> CollectionState:
        """A copy with some fields replaced."""
        return replace(self, **changes)
