"""SyncKeys as devices send them (FolderSync, Sync, GetItemEstimate, the
folder commands): decimal numbers, ``0`` meaning "start over".

Some real clients parse keys as numbers, so ours are decimal integers
whatever the state behind them; anything else a device sends is simply not
one of our keys.  This module imports nothing from the commands, so the
Sync machinery and every command can share it.
"""
from __future__ import annotations

#: The longest sync key we accept (ours are decimal integers well below this).
MAX_KEY_DIGITS = 18


def parse_sync_key(text: str | None) -> int | None:
    """A sync key as sent: a decimal number without sign or leading zeros
    (``"0"`` itself is fine).  None if it is anything else."""
    if text is None:
        return None
    text = text.strip()
    if not text or len(text) > MAX_KEY_DIGITS or not text.isascii() or not text.isdigit():
        return None
    if len(text) > 1 and text[0] == "0":
        return None
    return int(text)


__all__ = ["MAX_KEY_DIGITS", "parse_sync_key"]
