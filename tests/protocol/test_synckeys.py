"""SyncKeys as devices send them."""
from __future__ import annotations

from twisted.trial.unittest import TestCase

from easyncd.protocol.synckeys import MAX_KEY_DIGITS, parse_sync_key


class ParseSyncKeyTests(TestCase):
    """:func:`parse_sync_key`: decimal numbers only."""

    def test_numbers(self) -> None:
        self.assertEqual(parse_sync_key("0"), 0)
        self.assertEqual(parse_sync_key("42"), 42)
        self.assertEqual(parse_sync_key(" 7 "), 7)
        self.assertEqual(parse_sync_key("9" * MAX_KEY_DIGITS), int("9" * MAX_KEY_DIGITS))

    def test_not_ours(self) -> None:
        for bad in (None, "", " ", "-1", "+1", "01", "1.0", "abc", "{uuid}", "\u0661",
                    "9" * (MAX_KEY_DIGITS + 1)):
            self.assertIsNone(parse_sync_key(bad), bad)

    def test_no_import_cycle(self) -> None:
        """The Sync machinery reads keys without importing the commands package."""
        import subprocess
        import sys

        code = ("import sys; import easyncd.protocol.sync.request; "
                "print('easyncd.protocol.commands' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        self.assertEqual(out.stdout.strip(), "False")
