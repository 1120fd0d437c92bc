"""The store's transactions, written once for both SQL engines.

A program is a generator that yields :class:`Query` (answered with the list of
rows) or :class:`Execute` (answered with the row count) and returns the
method's result.  It never touches a cursor: the SQLite engine drives it with a
synchronous cursor in its database thread, the PostgreSQL engine with
txpostgres' asynchronous cursor.  What is shared is the SQL text
(:mod:`easyncd.store.sql`) and the decisions between statements; each engine
keeps its own cursor handling.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Generator, Iterable, Sequence, TypeVar

from easyncd.store import sql
from easyncd.store.interfaces import (
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
    NoSuchDevice,
    NoSuchFolder,
    SchemaTooNew,
    SyncState,
    SyncStateConflict,
)
from easyncd.store.migrations import SchemaPlan

T = TypeVar("T")


@dataclass(frozen=True)
class Query:
    """A statement whose rows the program wants."""

    statement: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Execute:
    """A statement whose affected row count the program wants."""

    statement: str
    params: tuple[Any, ...] = ()


Step = Query | Execute
Program = Generator[Step, Any, T]
Row = Sequence[Any]

TOP = "0"


# -- row mapping -----------------------------------------------------------------


def account_from_row(row: Row) -> DeviceAccount:
    """A DeviceAccount from a row of ``sql.ACCOUNT_COLUMNS``."""
    return DeviceAccount(
        device_id=row[0],
        user=row[1],
        policy_key=row[2],
        pending_policy_key=row[3],
        provisioned_at=row[4],
        wipe_state=row[5],
        wipe_kind=row[6],
        wipe_requested_at=row[7],
        wipe_acknowledged_at=row[8],
        first_seen=row[9],
        last_seen=row[10],
        last_command=row[11],
        protocol_version=row[12],
    )


def device_from_row(row: Row, accounts: Iterable[DeviceAccount]) -> Device:
    """A Device from a row of ``sql.DEVICE_COLUMNS`` and its accounts."""
    return Device(
        device_id=row[0],
        device_type=row[1],
        user_agent=row[2],
        first_seen=row[3],
        last_seen=row[4],
        info=json.loads(row[5] or "{}"),
        trace=bool(row[6]),
        accounts=tuple(accounts),
    )


def folder_from_row(row: Row) -> Folder:
    """A Folder from a row of ``sql.FOLDER_COLUMNS``."""
    return Folder(
        user=row[0],
        server_id=row[1],
        parent_id=row[2],
        display_name=row[3],
        folder_type=int(row[4]),
        backend_id=row[5],
    )


def _by_server_id(folders: Iterable[Folder]) -> list[Folder]:
    return sorted(folders, key=lambda folder: int(folder.server_id))


# -- schema ------------------------------------------------------------------------


def migrate(dialect: str, plan: SchemaPlan) -> Program[tuple[int, int]]:
    """Create or upgrade the schema; returns (version before, version after)."""
    lock = sql.MIGRATION_LOCK.get(dialect)
    if lock is not None:
        yield Query(lock, (sql.MIGRATION_LOCK_KEY,))
    exists = yield Query(sql.TABLE_EXISTS[dialect], ("schema_version",))
    current = 0
    if exists:
        rows = yield Query(sql.SELECT_SCHEMA_VERSION)
        current = int(rows[0][0]) if rows else 0
    if current > plan.version:
        raise SchemaTooNew(
            f"the database has schema version {current}; this easyncd knows"
            f" up to {plan.version}"
        )
    if current == plan.version:
        return current, current
    for step in plan.steps_from(current):
        for statement in step.statements:
            yield Execute(statement)
    if current == 0:
        yield Execute(sql.INSERT_SCHEMA_VERSION, (plan.version,))
    else:
        yield Execute(sql.UPDATE_SCHEMA_VERSION, (plan.version,))
    return current, plan.version


def schema_version() -> Program[int]:
    """The schema version of the database."""
    rows = yield Query(sql.SELECT_SCHEMA_VERSION)
    return int(rows[0][0]) if rows else 0


# -- devices and accounts ----------------------------------------------------------


def get_device(device_id: str) -> Program[Device | None]:
    """A device with its accounts, or None."""
    rows = yield Query(sql.SELECT_DEVICE, (device_id,))
    if not rows:
        return None
    accounts = yield Query(sql.SELECT_DEVICE_ACCOUNTS, (device_id,))
    return device_from_row(rows[0], (account_from_row(a) for a in accounts))


def get_account(device_id: str, user: str) -> Program[DeviceAccount | None]:
    """One account of a device, or None."""
    rows = yield Query(sql.SELECT_ACCOUNT, (device_id, user))
    return account_from_row(rows[0]) if rows else None


def register_account(
    device_id: str, user: str, device_type: str, user_agent: str | None, now: float
) -> Program[DeviceAccount]:
    """Create or refresh a device and an account of it."""
    yield Execute(sql.UPSERT_DEVICE, (device_id, device_type, user_agent, now, now))
    yield Execute(sql.INSERT_ACCOUNT, (device_id, user, now, now))
    rows = yield Query(sql.SELECT_ACCOUNT, (device_id, user))
    return account_from_row(rows[0])


def record_request(
    device_id: str, user: str, command: str, protocol_version: str, now: float
) -> Program[None]:
    """Note a served request on an existing account."""
    count = yield Execute(
        sql.RECORD_ACCOUNT_REQUEST, (now, command, protocol_version, device_id, user)
    )
    if count:
        yield Execute(sql.TOUCH_DEVICE, (now, device_id))
    return None


def list_devices(user: str | None) -> Program[list[Device]]:
    """Devices (of one user, or all) with their accounts, by device id."""
    if user is None:
        devices = yield Query(sql.SELECT_ALL_DEVICES)
        accounts = yield Query(sql.SELECT_ALL_ACCOUNTS)
    else:
        devices = yield Query(sql.SELECT_USER_DEVICES, (user,))
        accounts = yield Query(sql.SELECT_USER_DEVICE_ACCOUNTS, (user,))
    by_device: dict[str, list[DeviceAccount]] = {}
    for row in accounts:
        account = account_from_row(row)
        by_device.setdefault(account.device_id, []).append(account)
    return [device_from_row(row, by_device.get(row[0], ())) for row in devices]


def remove_device(device_id: str) -> Program[None]:
    """Remove a device; its accounts and sync states go by cascade."""
    count = yield Execute(sql.DELETE_DEVICE, (device_id,))
    if not count:
        raise NoSuchDevice(device_id)
    return None


def remove_account(device_id: str, user: str) -> Program[None]:
    """Remove one account of a device; its sync states go by cascade."""
    count = yield Execute(sql.DELETE_ACCOUNT, (device_id, user))
    if not count:
        raise NoSuchDevice(f"{device_id} (user {user})")
    return None


def set_device_info(device_id: str, info: dict[str, str]) -> Program[None]:
    """Replace the DeviceInformation of a device."""
    text = json.dumps(dict(info), sort_keys=True)
    count = yield Execute(sql.UPDATE_DEVICE_INFO, (text, device_id))
    if not count:
        raise NoSuchDevice(device_id)
    return None


def set_device_trace(device_id: str, enabled: bool) -> Program[None]:
    """Switch the protocol trace of a device."""
    count = yield Execute(sql.UPDATE_DEVICE_TRACE, (bool(enabled), device_id))
    if not count:
        raise NoSuchDevice(device_id)
    return None


# -- provisioning --------------------------------------------------------------------


def begin_provision(device_id: str, user: str, temporary_key: int) -> Program[None]:
    """Remember the temporary policy key."""
    count = yield Execute(sql.SET_PENDING_POLICY_KEY, (temporary_key, device_id, user))
    if not count:
        raise NoSuchDevice(f"{device_id} (user {user})")
    return None


def confirm_provision(
    device_id: str, user: str, temporary_key: int, final_key: int, now: float
) -> Program[bool]:
    """Make ``final_key`` the policy key if ``temporary_key`` is the pending one."""
    count = yield Execute(
        sql.CONFIRM_POLICY_KEY, (final_key, now, device_id, user, temporary_key)
    )
    return bool(count)


def clear_policy_key(device_id: str, user: str | None) -> Program[None]:
    """Forget the policy keys of a device or one account."""
    if user is None:
        yield Execute(sql.CLEAR_DEVICE_POLICY_KEYS, (device_id,))
    else:
        yield Execute(sql.CLEAR_ACCOUNT_POLICY_KEY, (device_id, user))
    return None


# -- remote wipe ---------------------------------------------------------------------


def request_wipe(device_id: str, kind: str, user: str | None, now: float) -> Program[None]:
    """Mark accounts of a device as pending a wipe."""
    if kind not in (WIPE_DEVICE, WIPE_ACCOUNT):
        raise ValueError(f"unknown wipe kind {kind!r}")
    rows = yield Query(sql.SELECT_DEVICE, (device_id,))
    if not rows:
        raise NoSuchDevice(device_id)
    if kind == WIPE_ACCOUNT and user is not None:
        count = yield Execute(
            sql.WIPE_ONE_ACCOUNT, (WIPE_PENDING, kind, now, device_id, user)
        )
        if not count:
            raise NoSuchDevice(f"{device_id} (user {user})")
    else:
        yield Execute(sql.WIPE_DEVICE_ACCOUNTS, (WIPE_PENDING, kind, now, device_id))
    return None


def cancel_wipe(device_id: str) -> Program[bool]:
    """Cancel the pending wipes of a device; whether one was pending."""
    rows = yield Query(sql.SELECT_DEVICE, (device_id,))
    if not rows:
        raise NoSuchDevice(device_id)
    count = yield Execute(sql.CANCEL_WIPES, (WIPE_NONE, device_id, WIPE_PENDING))
    return bool(count)


def acknowledge_wipe(device_id: str, user: str, now: float) -> Program[None]:
    """pending -> wiped for the account (every account for a device wipe)."""
    rows = yield Query(sql.SELECT_ACCOUNT, (device_id, user))
    if not rows:
        return None
    account = account_from_row(rows[0])
    if account.wipe_state != WIPE_PENDING:
        return None
    if account.wipe_kind == WIPE_DEVICE:
        yield Execute(
            sql.ACKNOWLEDGE_DEVICE_WIPE, (WIPE_WIPED, now, device_id, WIPE_PENDING, WIPE_DEVICE)
        )
    else:
        yield Execute(
            sql.ACKNOWLEDGE_ACCOUNT_WIPE, (WIPE_WIPED, now, device_id, user, WIPE_PENDING)
        )
    return None


# -- folders -------------------------------------------------------------------------


def _bump_revision(user: str) -> Program[int]:
    """Raise the user's revision by one (creating the counter) and lock it."""
    yield Execute(sql.CREATE_COUNTER, (user,))
    rows = yield Query(sql.BUMP_REVISION, (user,))
    return int(rows[0][0])


def _check_parent(user: str, parent_id: str) -> Program[None]:
    if parent_id != TOP:
        rows = yield Query(sql.SELECT_LIVE_FOLDER, (user, parent_id))
        if not rows:
            raise NoSuchFolder(f"parent folder {parent_id} of user {user}")
    return None


def _check_name_free(
    user: str, parent_id: str, display_name: str, except_id: str | None = None
) -> Program[None]:
    rows = yield Query(sql.SELECT_LIVE_SIBLING, (user, parent_id, display_name))
    if any(row[0] != except_id for row in rows):
        raise FolderExists(f"{display_name!r} under {parent_id} for user {user}")
    return None


def _insert_folder(
    user: str, parent_id: str, display_name: str, folder_type: int, backend_id: str
) -> Program[Folder]:
    revision = yield from _bump_revision(user)
    yield from _check_parent(user, parent_id)
    yield from _check_name_free(user, parent_id, display_name)
    rows = yield Query(sql.NEXT_SERVER_ID, (user,))
    server_id = str(rows[0][0])
    yield Execute(
        sql.INSERT_FOLDER,
        (user, server_id, parent_id, display_name, folder_type, backend_id, revision, revision),
    )
    return Folder(user, server_id, parent_id, display_name, folder_type, backend_id)


def list_folders(user: str) -> Program[list[Folder]]:
    """The live folders of a user, by server id."""
    rows = yield Query(sql.SELECT_LIVE_FOLDERS, (user,))
    return _by_server_id(folder_from_row(row) for row in rows)


def get_folder(user: str, server_id: str) -> Program[Folder]:
    """One live folder."""
    rows = yield Query(sql.SELECT_LIVE_FOLDER, (user, server_id))
    if not rows:
        raise NoSuchFolder(f"folder {server_id} of user {user}")
    return folder_from_row(rows[0])


def add_folder(
    user: str, parent_id: str, display_name: str, folder_type: int, backend_id: str
) -> Program[Folder]:
    """Add a folder under a live parent (or at the top)."""
    return (yield from _insert_folder(user, parent_id, display_name, folder_type, backend_id))


def update_folder(
    user: str, server_id: str, display_name: str | None, parent_id: str | None,
    backend_id: str | None = None,
) -> Program[Folder]:
    """Rename and/or move a folder (None keeps the current value)."""
    revision = yield from _bump_revision(user)
    rows = yield Query(sql.SELECT_LIVE_FOLDER, (user, server_id))
    if not rows:
        raise NoSuchFolder(f"folder {server_id} of user {user}")
    folder = folder_from_row(rows[0])
    new_name = folder.display_name if display_name is None else display_name
    new_parent = folder.parent_id if parent_id is None else parent_id
    if new_parent != folder.parent_id:
        yield from _check_parent(user, new_parent)
        ancestor = new_parent
        while ancestor != TOP:
            if ancestor == server_id:
                raise NoSuchFolder(
                    f"folder {server_id} of user {user} cannot move under itself"
                )
            parent_rows = yield Query(sql.SELECT_LIVE_FOLDER, (user, ancestor))
            ancestor = parent_rows[0][2]
    yield from _check_name_free(user, new_parent, new_name, except_id=server_id)
    new_backend = folder.backend_id if backend_id is None else backend_id
    yield Execute(sql.UPDATE_FOLDER, (new_name, new_parent, new_backend, revision, user,
                                      server_id))
    return Folder(user, server_id, new_parent, new_name, folder.folder_type, new_backend)


def delete_folder(user: str, server_id: str) -> Program[None]:
    """Delete a folder and all its sub-folders at one new revision."""
    revision = yield from _bump_revision(user)
    rows = yield Query(sql.SELECT_LIVE_FOLDER, (user, server_id))
    if not rows:
        raise NoSuchFolder(f"folder {server_id} of user {user}")
    pending = [server_id]
    while pending:
        current = pending.pop()
        children = yield Query(sql.SELECT_LIVE_CHILDREN, (user, current))
        pending.extend(row[0] for row in children)
        yield Execute(sql.MARK_FOLDER_DELETED, (revision, user, current))
    return None


def folder_revision(user: str) -> Program[int]:
    """The user's current hierarchy revision (0 if none)."""
    rows = yield Query(sql.SELECT_COUNTER, (user,))
    return int(rows[0][0]) if rows else 0


def classify_folder_changes(
    rows: Iterable[tuple[Folder, int, int, int | None]], since: int, until: int
) -> FolderChanges:
    """Sort folders (with created, changed, deleted revisions) into the net
    changes of (since, until]."""
    added: list[Folder] = []
    changed: list[Folder] = []
    deleted: list[Folder] = []
    for folder, created, changed_rev, deleted_rev in rows:
        existed_before = created <= since and (deleted_rev is None or deleted_rev > since)
        exists_after = created <= until and (deleted_rev is None or deleted_rev > until)
        if not existed_before and exists_after:
            added.append(folder)
        elif existed_before and not exists_after:
            deleted.append(folder)
        elif existed_before and exists_after and since < changed_rev <= until:
            changed.append(folder)
    return FolderChanges(
        added=tuple(_by_server_id(added)),
        changed=tuple(_by_server_id(changed)),
        deleted=tuple(f.server_id for f in _by_server_id(deleted)),
    )


def folder_changes(user: str, since: int, until: int) -> Program[FolderChanges]:
    """The net folder changes of a user in (since, until]."""
    rows = yield Query(
        sql.SELECT_FOLDERS_TOUCHED, (user, since, until, since, until, since, until)
    )
    return classify_folder_changes(
        ((folder_from_row(row), int(row[6]), int(row[7]),
          None if row[8] is None else int(row[8])) for row in rows),
        since,
        until,
    )


# -- sync states -----------------------------------------------------------------------


def get_sync_state(device_id: str, user: str, collection_id: str) -> Program[SyncState | None]:
    """The sync state of a collection, or None."""
    rows = yield Query(sql.SELECT_SYNC_STATE, (device_id, user, collection_id))
    if not rows:
        return None
    key, state, previous_key, previous_state = rows[0]
    return SyncState(
        sync_key=int(key),
        state=state,
        previous_key=None if previous_key is None else int(previous_key),
        previous_state=previous_state,
    )


def advance_sync_state(
    device_id: str, user: str, collection_id: str, from_key: int | None, new_key: int,
    state: str,
) -> Program[None]:
    """Compare-and-set the sync key of a collection."""
    if from_key is None:
        exists = yield Query(sql.ACCOUNT_EXISTS, (device_id, user))
        if not exists:
            raise NoSuchDevice(f"{device_id} (user {user})")
        yield Execute(sql.REPLACE_SYNC_STATE, (device_id, user, collection_id, new_key, state))
        return None
    count = yield Execute(
        sql.ADVANCE_SYNC_STATE, (new_key, state, device_id, user, collection_id, from_key)
    )
    if not count:
        raise SyncStateConflict(
            f"sync key {from_key} of {collection_id or 'the hierarchy'} is not current"
            f" ({device_id}, user {user})"
        )
    return None


def reset_sync_states(device_id: str, user: str) -> Program[None]:
    """Drop every sync state of an account."""
    yield Execute(sql.DELETE_SYNC_STATES, (device_id, user))
    return None


# -- mail follow-up flags ------------------------------------------------------------


def _flag_data(text: str) -> dict[str, str]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items()}


def get_mail_flags(
    user: str, mailbox: str, uidvalidity: int, uids: Sequence[int]
) -> Program[dict[int, dict[str, str]]]:
    """The stored follow-up flags of ``uids`` (those that have one)."""
    wanted = {int(uid) for uid in uids}
    if not wanted:
        return {}
    rows = yield Query(
        sql.SELECT_MAIL_FLAGS, (user, mailbox, int(uidvalidity), min(wanted), max(wanted))
    )
    return {int(row[0]): _flag_data(row[1]) for row in rows if int(row[0]) in wanted}


def set_mail_flags(
    user: str, mailbox: str, uidvalidity: int, flags: dict[int, dict[str, str] | None]
) -> Program[None]:
    """Store (or, for None, forget) the follow-up flags of some messages."""
    for uid in sorted(flags):
        data = flags[uid]
        if data is None:
            yield Execute(sql.DELETE_MAIL_FLAG, (user, mailbox, int(uidvalidity), int(uid)))
        else:
            text = json.dumps(dict(data), sort_keys=True, separators=(",", ":"))
            yield Execute(
                sql.UPSERT_MAIL_FLAG, (user, mailbox, int(uidvalidity), int(uid), text)
            )
    return None


def drop_mail_flags(user: str, mailbox: str, keep_uidvalidity: int | None) -> Program[int]:
    """Forget the follow-up flags of a mailbox (all, or those of another
    UIDVALIDITY than ``keep_uidvalidity``); how many rows went."""
    if keep_uidvalidity is None:
        count = yield Execute(sql.DELETE_MAILBOX_FLAGS, (user, mailbox))
    else:
        count = yield Execute(
            sql.DELETE_MAILBOX_FLAGS_EXCEPT, (user, mailbox, int(keep_uidvalidity))
        )
    return int(count or 0)
