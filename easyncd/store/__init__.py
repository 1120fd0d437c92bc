"""easyncd's own state store: devices, accounts, policy and wipe state,
folders and sync keys, on SQLite (default) or PostgreSQL.

Use :func:`open_store` with the configured URL, then ``migrate()`` before
anything else.
"""
from __future__ import annotations

from typing import Any, cast

from easyncd.store.interfaces import (
    HIERARCHY,
    WIPE_ACCOUNT,
    WIPE_DEVICE,
    WIPE_NONE,
    WIPE_PENDING,
    WIPE_WIPED,
    Device,
    DeviceAccount,
    Folder,
    FolderChanges,
    FolderExists,
    IStateStore,
    NoSuchDevice,
    NoSuchFolder,
    SchemaTooNew,
    StoreError,
    StoreUnavailable,
    SyncState,
    SyncStateConflict,
)

__all__ = [
    "HIERARCHY", "WIPE_ACCOUNT", "WIPE_DEVICE", "WIPE_NONE", "WIPE_PENDING", "WIPE_WIPED",
    "Device", "DeviceAccount", "Folder", "FolderChanges", "FolderExists", "IStateStore",
    "NoSuchDevice", "NoSuchFolder", "SchemaTooNew", "StoreError", "StoreUnavailable",
    "SyncState", "SyncStateConflict", "open_store", "sqlite_path",
]

_SQLITE_PREFIX = "sqlite:///"


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///`` URL (``sqlite:///abs/path.db`` and
    ``sqlite:////abs/path.db`` both mean ``/abs/path.db``), or ``:memory:``."""
    if not url.startswith(_SQLITE_PREFIX):
        raise ValueError(f"expected sqlite:///path/file.db, got {url!r}")
    rest = url[len(_SQLITE_PREFIX):].split("?", 1)[0]
    if rest == ":memory:":
        return rest
    if not rest:
        raise ValueError(f"no file in {url!r}")
    return rest if rest.startswith("/") else "/" + rest


def open_store(url: str, reactor: Any, pool_size: int = 4) -> IStateStore:
    """The store behind ``url``: ``sqlite:///abs/path.db`` (the parent directory
    is created), ``sqlite:///:memory:`` or ``postgresql://user@host:port/db``.

    Nothing is connected yet for PostgreSQL; call ``migrate()`` next.
    Raises ValueError for an unknown URL, StoreUnavailable when the SQLite
    directory cannot be created.
    """
    if url.startswith("sqlite:"):
        from easyncd.store.sqlite import SQLiteStateStore

        return cast(IStateStore, SQLiteStateStore(sqlite_path(url), reactor))
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        from easyncd.store.postgres import PostgresStateStore

        return cast(IStateStore, PostgresStateStore(url, reactor, pool_size=pool_size))
    raise ValueError(f"unknown state database URL {url!r}")
