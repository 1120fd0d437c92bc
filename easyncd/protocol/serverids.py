"""Item ServerIds of groupware folders: ``"<folder server id>:<item id>"``.

Folder server ids are decimal numbers (never a ``:``); item ids are the
backend's and may hold anything, ``:`` included.  Sync, MoveItems and
ItemOperations all build and read item ServerIds through these functions.
"""
from __future__ import annotations


def item_server_id(folder_server_id: str, item_id: str) -> str:
    """The ServerId of an item in a folder."""
    return f"{folder_server_id}:{item_id}"


def split_server_id(server_id: str) -> tuple[str, str] | None:
    """``"<folder>:<item>"`` -> (folder server id, item id), or None when
    it is not an item ServerId (no ``:``, or an empty half)."""
    folder, sep, item = server_id.partition(":")
    if not sep or not folder or not item:
        return None
    return folder, item


def item_id_in(folder_server_id: str, server_id: str) -> str | None:
    """The item id of ``server_id`` if it names an item of that folder."""
    parts = split_server_id(server_id)
    if parts is None or parts[0] != folder_server_id:
        return None
    return parts[1]


def long_id(folder_server_id: str, item_id: str) -> str:
    """The Search LongId of an item (MS-ASCMD 2.2.3.97): ``"<folder server
    id>:<item id>"``, the item's ServerId (mail: the IMAP UID).  At most 256
    characters; ItemOperations and SmartReply/SmartForward read it back with
    :func:`split_long_id`."""
    return item_server_id(folder_server_id, item_id)


def split_long_id(value: str) -> tuple[str, str] | None:
    """(folder server id, item id) of a LongId, None when it is not one."""
    if len(value) > 256:
        return None
    return split_server_id(value)


__all__ = ["item_id_in", "item_server_id", "long_id", "split_long_id", "split_server_id"]
