"""The Sync state saved under each key: the compact ``pending`` and ``held``
encodings, states saved in the older list format, and a Sync that pages on
from such a state."""
from __future__ import annotations

import json
import random

from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.interfaces import KIND_CALENDAR, KIND_CONTACTS, ItemChanges
from easyncd.protocol.sync.changes import merge_changes
from easyncd.protocol.sync.state import (
    OP_ADD,
    OP_CHANGE,
    OP_DELETE,
    CollectionState,
    Op,
    Pending,
)
from tests.protocol.groupware_helpers import (
    GroupwareHarness,
    collection,
    eas_time,
    read_sync,
    sync_request,
)
from tests.protocol.helpers import START_TIME, result_of


def reference_merge(pending: list[Op], changes: ItemChanges) -> list[Op]:
    """merge_changes as it was written over plain lists (the semantics)."""
    ops: dict[str, str] = {}
    for op, item_id in pending:
        ops[item_id] = op
    for item_id in changes.added:
        ops[item_id] = OP_ADD
    for item_id in changes.changed:
        if ops.get(item_id) in (None, OP_DELETE):
            ops[item_id] = OP_CHANGE
    for item_id in changes.deleted:
        if ops.get(item_id) == OP_ADD:
            del ops[item_id]
        else:
            ops[item_id] = OP_DELETE
    return [(op, item_id) for item_id, op in ops.items()]


def old_format(text: str) -> str:
    """A state text as the previous version wrote it: lists."""
    data = json.loads(text)
    state = CollectionState.from_text(text)
    assert state is not None
    if "pending" in data:
        data["pending"] = [list(op) for op in state.pending]
    if "held" in data:
        assert state.held is not None
        data["held"] = sorted(state.held)
    return json.dumps(data)


class PendingTests(SynchronousTestCase):
    def test_behaves_like_the_list(self) -> None:
        rng = random.Random(7)
        ops: list[Op] = [(OP_ADD, str(n)) for n in range(1, 3000) if n % 97]
        ops += [(OP_CHANGE, "12"), (OP_DELETE, "x-1"), (OP_ADD, "007"), (OP_ADD, "0"),
                (OP_DELETE, "5000"), (OP_DELETE, "5001"), (OP_CHANGE, "5002")]
        pending = Pending.from_ops(ops)
        self.assertEqual(len(ops), len(pending))
        self.assertEqual(ops, list(pending))
        self.assertEqual(pending, ops)
        self.assertEqual(pending, tuple(ops))
        for index in range(-len(ops), len(ops)):
            self.assertEqual(ops[index], pending[index])
        self.assertRaises(IndexError, pending.__getitem__, len(ops))
        for _ in range(500):
            start, stop = rng.randint(-5, len(ops) + 5), rng.randint(-5, len(ops) + 5)
            self.assertEqual(ops[start:stop], list(pending[start:stop]), (start, stop))
            self.assertEqual(len(ops[start:stop]), len(pending[start:stop]))
        self.assertEqual(ops[::3], list(pending[::3]))
        self.assertEqual({"12", "5002"}, pending.ids(OP_CHANGE))
        for item_id in ("1", "96", "98", "2999", "007", "x-1", "0", "5001"):
            self.assertTrue(pending.has_id(item_id), item_id)
        for item_id in ("97", "3000", "194", "x", "", "-1"):
            self.assertFalse(pending.has_id(item_id), item_id)
        self.assertFalse(Pending())
        self.assertEqual(0, len(pending[10:10]))

    def test_compact_text(self) -> None:
        ops: list[Op] = [(OP_ADD, str(n)) for n in range(1, 10001) if n != 501]
        ops += [(OP_CHANGE, "7"), (OP_CHANGE, "8"), (OP_DELETE, "20000"), (OP_ADD, "3")]
        pending = Pending.from_ops(ops)
        self.assertEqual("a1-500,502-10000,c7-8,d20000,a3", pending.to_json())
        self.assertEqual(ops, list(Pending.from_json(pending.to_json())))
        self.assertEqual("", Pending().to_json())
        self.assertEqual([], list(Pending.from_json("")))

    def test_other_ids_fall_back_to_the_list(self) -> None:
        ops: list[Op] = [(OP_ADD, "1"), (OP_ADD, "2"), (OP_CHANGE, "abc"), (OP_ADD, "01")]
        pending = Pending.from_ops(ops)
        self.assertEqual([list(op) for op in ops], pending.to_json())
        self.assertEqual(ops, list(Pending.from_json(pending.to_json())))

    def test_bad_text(self) -> None:
        for bad in ("1-5", "a5-1", "ax", "a1,,2", "a-1", {"a": 1}, 5):
            self.assertRaises((ValueError, TypeError), Pending.from_json, bad)

    def test_merge_keeps_the_order_and_semantics(self) -> None:
        rng = random.Random(11)
        for _ in range(300):
            ids = rng.sample(range(1, 60), rng.randint(0, 40))
            pending: list[Op] = [(rng.choice([OP_ADD, OP_CHANGE, OP_DELETE]), str(i))
                                 for i in ids]
            changes = ItemChanges(
                0, 1,
                added=tuple(str(i) for i in rng.sample(range(50, 80), rng.randint(0, 5))),
                changed=tuple(str(i) for i in rng.sample(range(1, 80), rng.randint(0, 5))),
                deleted=tuple(str(i) for i in rng.sample(range(1, 80), rng.randint(0, 5))))
            merged = merge_changes(Pending.from_ops(pending), changes)
            self.assertEqual(reference_merge(pending, changes), list(merged))
        same = Pending.from_ops([(OP_ADD, "1"), (OP_ADD, "2")])
        self.assertIs(same, merge_changes(same, ItemChanges(3, 3)))


class StateTextTests(SynchronousTestCase):
    def test_ten_thousand_pending_adds_are_a_few_bytes(self) -> None:
        state = CollectionState(rev=10000,
                                pending=Pending.from_ops((OP_ADD, str(n)) for n in range(1, 10001)),
                                held=frozenset(str(n) for n in range(1, 10001)))
        text = state.to_text()
        self.assertLess(len(text), 400, text)
        self.assertIn('"pending":"a1-10000"', text)
        self.assertIn('"held":"1-10000"', text)
        self.assertEqual(state, CollectionState.from_text(text))

    def test_states_in_the_old_format_are_read(self) -> None:
        state = CollectionState(
            rev=9, pending=Pending.from_ops(
                [(OP_ADD, "4"), (OP_ADD, "5"), (OP_CHANGE, "2"), (OP_DELETE, "x")]),
            sent=((OP_ADD, "1"),), adds={"c1": "1"}, own={"1": 3},
            held=frozenset({"1", "2", "3", "10"}), supported=frozenset({"Contacts:FileAs"}))
        old = old_format(state.to_text())
        self.assertIn('"pending": [["add", "4"], ["add", "5"], ["change", "2"], ["delete", "x"]]',
                      old)
        self.assertIn('"held": ["1", "10", "2", "3"]', old)
        self.assertEqual(state, CollectionState.from_text(old))

    def test_held_with_other_ids_is_a_list(self) -> None:
        state = CollectionState(rev=1, held=frozenset({"b", "a", "3"}))
        self.assertIn('"held":["3","a","b"]', state.to_text())
        self.assertEqual(state, CollectionState.from_text(state.to_text()))
        empty = CollectionState.from_text(CollectionState(rev=1, held=frozenset()).to_text())
        self.assertEqual(frozenset(), empty.held if empty is not None else None)

    def test_damaged_pending_is_no_state(self) -> None:
        for pending in ('"zz"', '"a3-1"', "7", '[["add"]]'):
            text = '{"v":1,"rev":1,"pending":%s}' % pending
            self.assertIsNone(CollectionState.from_text(text), pending)


class PagingFromOldStateTests(SynchronousTestCase):
    """A device in the middle of an initial Sync when the server is
    upgraded pages on from the state saved in the old format."""

    def page_through(self, kind: str, count: int, convert_at: int,
                     filter_type: int | None = None) -> None:
        h = GroupwareHarness()
        folder = h.folders[kind]
        ids = [h.add(kind, **({"FileAs": f"c{n}"} if kind == KIND_CONTACTS
                              else {"Subject": f"e{n}", "EndTime": eas_time(START_TIME)}))
               for n in range(count)]
        h.delete(kind, ids[5])
        key = h.initial(kind, filter_type=filter_type)
        seen: list[str] = []
        pages = 0
        while True:
            stored = result_of(h.store.get_sync_state("dev1", "alice", folder))
            if pages == convert_at:
                result_of(h.store.advance_sync_state(
                    "dev1", "alice", folder, stored.sync_key, stored.sync_key,
                    old_format(stored.state)))
            else:
                self.assertNotIn('"pending":[[', stored.state)
            answer = read_sync(h.sync(sync_request(
                collection(folder, key, window=10, filter_type=filter_type))))[folder]
            pages += 1
            key = answer.key
            seen.extend(answer.ops("Add"))
            if not answer.more:
                break
        expected = [h.server_id(kind, i) for i in ids if i != ids[5]]
        self.assertEqual(expected, seen)  # in id order, each once
        if filter_type is None:
            return
        # The held ids came through the old format: a server delete of a
        # held item is sent, one of an item never sent would not be.
        stored = result_of(h.store.get_sync_state("dev1", "alice", folder))
        self.assertIn('"held":"1-5,7-', stored.state)
        h.delete(kind, ids[0])
        answer = read_sync(h.sync(sync_request(
            collection(folder, key, filter_type=filter_type))))[folder]
        self.assertEqual([h.server_id(kind, ids[0])], answer.ops("Delete"))

    def test_contacts(self) -> None:
        self.page_through(KIND_CONTACTS, 35, convert_at=2)

    def test_calendar_with_held_ids(self) -> None:
        self.page_through(KIND_CALENDAR, 35, convert_at=1, filter_type=4)
