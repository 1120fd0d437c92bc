"""The mail Sync state's snapshot: FastSnapshot edits and the stored form."""
from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from easyncd.backends.interfaces import FolderPoint, MailboxSnapshot, MailState
from easyncd.protocol.mailsync import snapshot as snapshot_module
from easyncd.protocol.mailsync.snapshot import BLOCK, FastSnapshot, decode_mail, encode_mail
from easyncd.protocol.mailsync.state import MailSyncState

FLAGSETS = [frozenset(), frozenset({"\\Seen"}), frozenset({"\\Seen", "\\Flagged"}),
            frozenset({"\\Answered", "\\Seen"}), frozenset({"$label1"})]
POINT = FolderPoint(17, 5000, 123456, 40)

uids = st.integers(min_value=1, max_value=3 * BLOCK)
flag_maps = st.dictionaries(uids, st.sampled_from(FLAGSETS), max_size=60)
edits = st.lists(st.tuples(st.dictionaries(uids, st.sampled_from(FLAGSETS), max_size=5),
                           st.lists(uids, max_size=4)), max_size=12)


def fresh(state: MailState) -> bytes:
    """The encoding of the same content without any cached blocks."""
    snap = state.snapshot
    return encode_mail(MailState(state.point, FastSnapshot(tuple(snap.flagsets), tuple(snap.runs))))


class FastSnapshotTests(TestCase):
    @settings(max_examples=150, deadline=None)
    @given(flag_maps, edits)
    def test_updated_matches_the_base_class(self, start: dict[int, frozenset[str]],
                                            changes: list[tuple[dict[int, frozenset[str]],
                                                                list[int]]]) -> None:
        base = MailboxSnapshot.from_flags(start)
        fast = FastSnapshot.of(base)
        encode_mail(MailState(POINT, fast))  # fills the block cache
        for flags, removed in changes:
            base = base.updated(flags, removed)
            fast = fast.updated(flags, removed)
            self.assertEqual(fast.as_dict(), base.as_dict())
            self.assertEqual(len(fast), len(base))
            for uid in list(flags) + removed:
                self.assertEqual(fast.flags_of(uid), base.flags_of(uid))
            state = MailState(POINT, fast)
            data = encode_mail(state)
            # Blocks reused from the cache give exactly the bytes of a new encoding.
            self.assertEqual(data, fresh(state))
            again = decode_mail(data)
            self.assertEqual(again.point, POINT)
            self.assertEqual(again.snapshot.as_dict(), base.as_dict())
            self.assertEqual(len(again.snapshot), len(base))
            if len(flags) % 2:
                fast = FastSnapshot.of(again.snapshot)  # continue from a decoded one too
        self.assertEqual(len(fast.runs), len(MailboxSnapshot.from_flags(fast.as_dict()).runs))

    def test_no_change_is_the_same_object(self) -> None:
        fast = FastSnapshot.of(MailboxSnapshot.from_flags({1: {"\\Seen"}}))
        self.assertIs(fast.updated(), fast)
        self.assertIs(FastSnapshot.of(fast), fast)

    def test_many_flag_sets(self) -> None:
        many = {uid: {f"k{uid % 300}"} for uid in range(1, 1200)}
        base = MailboxSnapshot.from_flags(many)
        fast = decode_mail(encode_mail(MailState(POINT, base))).snapshot
        self.assertEqual(fast.as_dict(), base.as_dict())
        edited = fast.updated({5: {"brand-new"}, 2000: {"k1"}}, [7])
        expected = base.updated({5: {"brand-new"}, 2000: {"k1"}}, [7])
        self.assertEqual(edited.as_dict(), expected.as_dict())
        self.assertLessEqual(len(edited.flagsets), 301)  # unused sets dropped
        self.assertEqual(decode_mail(encode_mail(MailState(POINT, edited))).snapshot.as_dict(),
                         expected.as_dict())


class StoredFormTests(TestCase):
    def test_round_trip_and_size(self) -> None:
        flags = {uid: FLAGSETS[(uid * 7) % 3] for uid in range(1, 10001) if uid % 13}
        state = MailState(POINT, MailboxSnapshot.from_flags(flags))
        data = encode_mail(state)
        self.assertLess(len(data), 20000)
        again = decode_mail(data)
        self.assertEqual(again.point, POINT)
        self.assertEqual(again.snapshot.as_dict(), state.snapshot.as_dict())
        for modseq in (None, 0):
            point = FolderPoint(1, 2, modseq, 0)
            self.assertEqual(decode_mail(encode_mail(MailState(point, FastSnapshot()))).point, point)

    def test_reads_the_base_format(self) -> None:
        state = MailState(POINT, MailboxSnapshot.from_flags({1: {"\\Seen"}, 2: (), 9: {"x"}}))
        again = decode_mail(state.to_bytes())
        self.assertIsInstance(again.snapshot, FastSnapshot)
        self.assertEqual(again.snapshot.as_dict(), state.snapshot.as_dict())
        self.assertEqual(again.point, POINT)
        # A state text saved with the base format still reads.
        text = json.dumps({"v": "mail1", "mail": base64.b64encode(state.to_bytes()).decode(),
                           "options": {}})
        decoded = MailSyncState.from_text(text)
        assert decoded is not None and decoded.mail is not None
        self.assertEqual(decoded.mail.snapshot.as_dict(), state.snapshot.as_dict())

    def test_damaged(self) -> None:
        data = encode_mail(MailState(POINT, MailboxSnapshot.from_flags({1: (), 5: {"\\Seen"}})))
        snapshot_module._recent.entries.clear()  # noqa: SLF001 - decode for real
        snapshot_module._recent.runs = 0  # noqa: SLF001
        for bad in (data[:-3], data + b"x", data[:40] + b"\xff" * 8 + data[48:]):
            text = json.dumps({"v": "mail1", "mail": base64.b64encode(bad).decode(),
                               "options": {}})
            self.assertIsNone(MailSyncState.from_text(text))

    def test_recent_is_bounded(self) -> None:
        recent = snapshot_module._Recent(budget=10)  # noqa: SLF001
        small = [FastSnapshot.of(MailboxSnapshot.from_flags({u: () for u in range(1, 8, 2)}))
                 for _ in range(4)]
        for number, snap in enumerate(small):
            recent.put(b"k%d" % number, snap)
        self.assertLessEqual(recent.runs, 10)
        self.assertIsNone(recent.get(b"k0"))
        self.assertIs(recent.get(b"k3"), small[3])
        recent.put(b"huge", FastSnapshot.of(MailboxSnapshot.from_flags(
            {u: () for u in range(1, 40, 2)})))
        self.assertIsNone(recent.get(b"huge"))
