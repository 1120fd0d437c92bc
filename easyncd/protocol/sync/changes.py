"""Pure helpers over change lists: merge what is still pending with what the
backend reports since.  (Item ServerIds: :mod:`easyncd.protocol.serverids`.)"""
from __future__ import annotations

from typing import Sequence

from easyncd.backends.interfaces import ItemChanges
from easyncd.protocol.sync.state import OP_ADD, OP_CHANGE, OP_DELETE, Op, Pending


def merge_changes(pending: Sequence[Op], changes: ItemChanges) -> Pending:
    """``pending`` followed by ``changes``, one op per item:

    * an add stays an add when the item changes again;
    * an add followed by a delete disappears (the device never saw it);
    * anything else followed by a delete becomes a delete.

    With no changes, ``pending`` itself (no per-item work while a long
    initial Sync pages through an unchanged collection).
    """
    if not (changes.added or changes.changed or changes.deleted):
        return Pending.from_ops(pending)
    ops: dict[str, str] = {}
    for op, item_id in pending:
        ops[item_id] = op
    for item_id in changes.added:
        ops[item_id] = OP_ADD
    for item_id in changes.changed:
        previous = ops.get(item_id)
        if previous is None or previous == OP_DELETE:
            ops[item_id] = OP_CHANGE
    for item_id in changes.deleted:
        if ops.get(item_id) == OP_ADD:
            del ops[item_id]
        else:
            ops[item_id] = OP_DELETE
    return Pending.from_ops((op, item_id) for item_id, op in ops.items())

