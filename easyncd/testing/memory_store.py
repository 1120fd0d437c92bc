"""An in-memory IStateStore for protocol unit tests.

It passes the same conformance tests as the SQL engines.  Every write works on
a copy of the data that replaces the original only when the method succeeds,
so a failing method leaves nothing half-written.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

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
    IStateStore,
    NoSuchDevice,
    NoSuchFolder,
    SchemaTooNew,
    StoreError,
    StoreUnavailable,
    SyncState,
    SyncStateConflict,
)

T = TypeVar("T")

#: The schema version the memory store claims (that of the SQL schema).
MEMORY_SCHEMA_VERSION = 1

TOP = "0"


@dataclass
class _FolderRow:
    folder: Folder
    created_rev: int
    changed_rev: int
    deleted_rev: int | None = None


@dataclass
class _Data:
    schema_version: int = 0
    devices: dict[str, Device] = field(default_factory=dict)
    accounts: dict[tuple[str, str], DeviceAccount] = field(default_factory=dict)
    counters: dict[str, list[int]] = field(default_factory=dict)  # [revision, last id]
    folders: dict[tuple[str, str], _FolderRow] = field(default_factory=dict)
    sync_states: dict[tuple[str, str, str], SyncState] = field(default_factory=dict)
    #: (user, mailbox, uidvalidity, uid) -> follow-up flag data.
    mail_flags: dict[tuple[str, str, int, int], dict[str, str]] = field(default_factory=dict)


def _by_server_id(folders: Sequence[Folder]) -> list[Folder]:
    return sorted(folders, key=lambda folder: int(folder.server_id))


@implementer(IStateStore)
class MemoryStateStore:
    """IStateStore in memory; Deferreds fire at once."""

    engine = "memory"

    def __init__(self, schema_version: int = MEMORY_SCHEMA_VERSION) -> None:
        self._data = _Data()
        self._target_version = schema_version
        self.closed = False

    # plumbing ----------------------------------------------------------------------

    def _read(self, label: str, function: Callable[[_Data], T]) -> "Deferred[T]":
        if self.closed:
            return fail(StoreUnavailable(f"{label}: the store is closed"))
        try:
            return succeed(function(self._data))
        except Exception as error:
            return fail(error)

    def _write(self, label: str, function: Callable[[_Data], T]) -> "Deferred[T]":
        if self.closed:
            return fail(StoreUnavailable(f"{label}: the store is closed"))
        draft = copy.deepcopy(self._data)
        try:
            result = function(draft)
        except Exception as error:
            if not isinstance(error, (StoreError, ValueError, TypeError)):
                wrapped = StoreError(f"{label}: {type(error).__name__}: {error}")
                wrapped.__cause__ = error
                error = wrapped
            return fail(error)
        self._data = draft
        return succeed(result)

    def _insert_account(self, data: _Data, account: DeviceAccount) -> None:
        """Store a new account (a hook where tests can make a write fail)."""
        data.accounts[(account.device_id, account.user)] = account

    # schema --------------------------------------------------------------------------

    def migrate(self) -> "Deferred[None]":
        """Bring the (empty) memory database to the current version."""

        def run(data: _Data) -> None:
            if data.schema_version > self._target_version:
                raise SchemaTooNew(
                    f"the database has schema version {data.schema_version}; this"
                    f" easyncd knows up to {self._target_version}"
                )
            data.schema_version = self._target_version

        return self._write("migrate", run)

    def close(self) -> "Deferred[None]":
        """Refuse further calls."""
        self.closed = True
        return succeed(None)

    def schema_version(self) -> "Deferred[int]":
        """The schema version of the memory database."""
        return self._read("schema_version", lambda data: data.schema_version)

    # devices and accounts ---------------------------------------------------------------

    @staticmethod
    def _device(data: _Data, device_id: str) -> Device:
        accounts = tuple(
            data.accounts[key] for key in sorted(data.accounts) if key[0] == device_id
        )
        return replace(data.devices[device_id], accounts=accounts)

    def get_device(self, device_id: str) -> "Deferred[Device | None]":
        """A device with its accounts, or None."""
        return self._read(
            "get_device",
            lambda data: self._device(data, device_id) if device_id in data.devices else None,
        )

    def get_account(self, device_id: str, user: str) -> "Deferred[DeviceAccount | None]":
        """One account of a device, or None."""
        return self._read("get_account", lambda data: data.accounts.get((device_id, user)))

    def register_account(
        self, device_id: str, user: str, device_type: str, user_agent: str | None, now: float
    ) -> "Deferred[DeviceAccount]":
        """Create or refresh a device and an account."""

        def run(data: _Data) -> DeviceAccount:
            device = data.devices.get(device_id)
            if device is None:
                device = Device(device_id, device_type, user_agent, first_seen=now, last_seen=now)
            else:
                device = replace(
                    device, device_type=device_type,
                    user_agent=device.user_agent if user_agent is None else user_agent,
                    last_seen=now,
                )
            data.devices[device_id] = device
            account = data.accounts.get((device_id, user))
            if account is None:
                account = DeviceAccount(device_id, user, first_seen=now, last_seen=now)
                self._insert_account(data, account)
            else:
                account = replace(account, last_seen=now)
                data.accounts[(device_id, user)] = account
            return account

        return self._write("register_account", run)

    def record_request(
        self, device_id: str, user: str, command: str, protocol_version: str, now: float
    ) -> "Deferred[None]":
        """Note a served request on an existing account."""

        def run(data: _Data) -> None:
            account = data.accounts.get((device_id, user))
            if account is None:
                return
            data.accounts[(device_id, user)] = replace(
                account, last_seen=now, last_command=command, protocol_version=protocol_version
            )
            data.devices[device_id] = replace(data.devices[device_id], last_seen=now)

        return self._write("record_request", run)

    def list_devices(self, user: str | None = None) -> "Deferred[list[Device]]":
        """Devices by device id, optionally only those of ``user``."""

        def run(data: _Data) -> list[Device]:
            ids = sorted(data.devices)
            if user is not None:
                ids = [i for i in ids if (i, user) in data.accounts]
            return [self._device(data, i) for i in ids]

        return self._read("list_devices", run)

    def remove_device(self, device_id: str) -> "Deferred[None]":
        """Remove a device, its accounts and sync states."""

        def run(data: _Data) -> None:
            if device_id not in data.devices:
                raise NoSuchDevice(device_id)
            del data.devices[device_id]
            for key in [k for k in data.accounts if k[0] == device_id]:
                del data.accounts[key]
            for skey in [k for k in data.sync_states if k[0] == device_id]:
                del data.sync_states[skey]

        return self._write("remove_device", run)

    def remove_account(self, device_id: str, user: str) -> "Deferred[None]":
        """Remove one account and its sync states."""

        def run(data: _Data) -> None:
            if (device_id, user) not in data.accounts:
                raise NoSuchDevice(f"{device_id} (user {user})")
            del data.accounts[(device_id, user)]
            for skey in [k for k in data.sync_states if k[:2] == (device_id, user)]:
                del data.sync_states[skey]

        return self._write("remove_account", run)

    def _update_device(self, label: str, device_id: str, **changes: Any) -> "Deferred[None]":
        def run(data: _Data) -> None:
            if device_id not in data.devices:
                raise NoSuchDevice(device_id)
            data.devices[device_id] = replace(data.devices[device_id], **changes)

        return self._write(label, run)

    def set_device_info(self, device_id: str, info: Mapping[str, str]) -> "Deferred[None]":
        """Replace the DeviceInformation of a device."""
        return self._update_device("set_device_info", device_id, info=dict(info))

    def set_device_trace(self, device_id: str, enabled: bool) -> "Deferred[None]":
        """Switch the protocol trace of a device."""
        return self._update_device("set_device_trace", device_id, trace=bool(enabled))

    # provisioning -------------------------------------------------------------------------

    def begin_provision(self, device_id: str, user: str, temporary_key: int) -> "Deferred[None]":
        """Remember the temporary policy key."""

        def run(data: _Data) -> None:
            account = data.accounts.get((device_id, user))
            if account is None:
                raise NoSuchDevice(f"{device_id} (user {user})")
            data.accounts[(device_id, user)] = replace(account, pending_policy_key=temporary_key)

        return self._write("begin_provision", run)

    def confirm_provision(
        self, device_id: str, user: str, temporary_key: int, final_key: int, now: float
    ) -> "Deferred[bool]":
        """Make ``final_key`` the policy key if ``temporary_key`` matches."""

        def run(data: _Data) -> bool:
            account = data.accounts.get((device_id, user))
            if account is None or account.pending_policy_key != temporary_key:
                return False
            data.accounts[(device_id, user)] = replace(
                account, policy_key=final_key, pending_policy_key=None, provisioned_at=now
            )
            return True

        return self._write("confirm_provision", run)

    def clear_policy_key(self, device_id: str, user: str | None = None) -> "Deferred[None]":
        """Forget the policy keys of a device or of one account."""

        def run(data: _Data) -> None:
            for key, account in list(data.accounts.items()):
                if key[0] == device_id and (user is None or key[1] == user):
                    data.accounts[key] = replace(
                        account, policy_key=None, pending_policy_key=None, provisioned_at=None
                    )

        return self._write("clear_policy_key", run)

    # remote wipe -----------------------------------------------------------------------------

    def request_wipe(
        self, device_id: str, kind: str, user: str | None, now: float
    ) -> "Deferred[None]":
        """Ask for a wipe of a device or an account."""

        def run(data: _Data) -> None:
            if kind not in (WIPE_DEVICE, WIPE_ACCOUNT):
                raise ValueError(f"unknown wipe kind {kind!r}")
            if device_id not in data.devices:
                raise NoSuchDevice(device_id)
            if kind == WIPE_ACCOUNT and user is not None:
                if (device_id, user) not in data.accounts:
                    raise NoSuchDevice(f"{device_id} (user {user})")
                keys = [(device_id, user)]
            else:
                keys = [k for k in data.accounts if k[0] == device_id]
            for key in keys:
                data.accounts[key] = replace(
                    data.accounts[key], wipe_state=WIPE_PENDING, wipe_kind=kind,
                    wipe_requested_at=now, wipe_acknowledged_at=None,
                )

        return self._write("request_wipe", run)

    def cancel_wipe(self, device_id: str) -> "Deferred[bool]":
        """Cancel the pending wipes of a device."""

        def run(data: _Data) -> bool:
            if device_id not in data.devices:
                raise NoSuchDevice(device_id)
            found = False
            for key, account in list(data.accounts.items()):
                if key[0] == device_id and account.wipe_state == WIPE_PENDING:
                    found = True
                    data.accounts[key] = replace(
                        account, wipe_state=WIPE_NONE, wipe_kind=None, wipe_requested_at=None
                    )
            return found

        return self._write("cancel_wipe", run)

    def acknowledge_wipe(self, device_id: str, user: str, now: float) -> "Deferred[None]":
        """The device confirmed a wipe."""

        def run(data: _Data) -> None:
            account = data.accounts.get((device_id, user))
            if account is None or account.wipe_state != WIPE_PENDING:
                return
            if account.wipe_kind == WIPE_DEVICE:
                keys = [
                    k for k, a in data.accounts.items()
                    if k[0] == device_id and a.wipe_state == WIPE_PENDING
                    and a.wipe_kind == WIPE_DEVICE
                ]
            else:
                keys = [(device_id, user)]
            for key in keys:
                data.accounts[key] = replace(
                    data.accounts[key], wipe_state=WIPE_WIPED, wipe_acknowledged_at=now
                )

        return self._write("acknowledge_wipe", run)

    # folders -----------------------------------------------------------------------------------

    @staticmethod
    def _live(data: _Data, user: str, server_id: str) -> _FolderRow | None:
        row = data.folders.get((user, server_id))
        return row if row is not None and row.deleted_rev is None else None

    @staticmethod
    def _bump(data: _Data, user: str) -> int:
        counter = data.counters.setdefault(user, [0, 0])
        counter[0] += 1
        return counter[0]

    def _check_name_free(
        self, data: _Data, user: str, parent_id: str, name: str, except_id: str | None = None
    ) -> None:
        for (owner, server_id), row in data.folders.items():
            if (owner == user and row.deleted_rev is None and server_id != except_id
                    and row.folder.parent_id == parent_id and row.folder.display_name == name):
                raise FolderExists(f"{name!r} under {parent_id} for user {user}")

    def _add(
        self, data: _Data, user: str, parent_id: str, name: str, folder_type: int,
        backend_id: str,
    ) -> Folder:
        revision = self._bump(data, user)
        if parent_id != TOP and self._live(data, user, parent_id) is None:
            raise NoSuchFolder(f"parent folder {parent_id} of user {user}")
        self._check_name_free(data, user, parent_id, name)
        counter = data.counters[user]
        counter[1] += 1
        folder = Folder(user, str(counter[1]), parent_id, name, folder_type, backend_id)
        data.folders[(user, folder.server_id)] = _FolderRow(folder, revision, revision)
        return folder

    def list_folders(self, user: str) -> "Deferred[list[Folder]]":
        """The live folders of a user, by server id."""
        return self._read("list_folders", lambda data: _by_server_id([
            row.folder for (owner, _), row in data.folders.items()
            if owner == user and row.deleted_rev is None
        ]))

    def get_folder(self, user: str, server_id: str) -> "Deferred[Folder]":
        """One live folder."""

        def run(data: _Data) -> Folder:
            row = self._live(data, user, server_id)
            if row is None:
                raise NoSuchFolder(f"folder {server_id} of user {user}")
            return row.folder

        return self._read("get_folder", run)

    def add_folder(
        self, user: str, parent_id: str, display_name: str, folder_type: int, backend_id: str
    ) -> "Deferred[Folder]":
        """Add a folder."""
        return self._write(
            "add_folder",
            lambda data: self._add(data, user, parent_id, display_name, folder_type, backend_id),
        )

    def update_folder(
        self, user: str, server_id: str, display_name: str | None, parent_id: str | None,
        backend_id: str | None = None,
    ) -> "Deferred[Folder]":
        """Rename and/or move a folder (None keeps the current value)."""

        def run(data: _Data) -> Folder:
            revision = self._bump(data, user)
            row = self._live(data, user, server_id)
            if row is None:
                raise NoSuchFolder(f"folder {server_id} of user {user}")
            name = row.folder.display_name if display_name is None else display_name
            parent = row.folder.parent_id if parent_id is None else parent_id
            if parent != row.folder.parent_id:
                if parent != TOP and self._live(data, user, parent) is None:
                    raise NoSuchFolder(f"parent folder {parent} of user {user}")
                ancestor = parent
                while ancestor != TOP:
                    if ancestor == server_id:
                        raise NoSuchFolder(
                            f"folder {server_id} of user {user} cannot move under itself"
                        )
                    ancestor = data.folders[(user, ancestor)].folder.parent_id
            self._check_name_free(data, user, parent, name, except_id=server_id)
            row.folder = replace(row.folder, display_name=name, parent_id=parent,
                                 backend_id=row.folder.backend_id if backend_id is None
                                 else backend_id)
            row.changed_rev = revision
            return row.folder

        return self._write("update_folder", run)

    def delete_folder(self, user: str, server_id: str) -> "Deferred[None]":
        """Delete a folder and its sub-folders at one new revision."""

        def run(data: _Data) -> None:
            revision = self._bump(data, user)
            if self._live(data, user, server_id) is None:
                raise NoSuchFolder(f"folder {server_id} of user {user}")
            pending = [server_id]
            while pending:
                current = pending.pop()
                for (owner, child_id), row in data.folders.items():
                    if (owner == user and row.deleted_rev is None
                            and row.folder.parent_id == current):
                        pending.append(child_id)
                data.folders[(user, current)].deleted_rev = revision

        return self._write("delete_folder", run)

    def folder_revision(self, user: str) -> "Deferred[int]":
        """The user's hierarchy revision (0 if none)."""
        return self._read("folder_revision", lambda data: data.counters.get(user, [0, 0])[0])

    def folder_changes(self, user: str, since: int, until: int) -> "Deferred[FolderChanges]":
        """The net folder changes in (since, until]."""

        def run(data: _Data) -> FolderChanges:
            added: list[Folder] = []
            changed: list[Folder] = []
            deleted: list[Folder] = []
            for (owner, _), row in data.folders.items():
                if owner != user:
                    continue
                gone = row.deleted_rev
                before = row.created_rev <= since and (gone is None or gone > since)
                after = row.created_rev <= until and (gone is None or gone > until)
                if not before and after:
                    added.append(row.folder)
                elif before and not after:
                    deleted.append(row.folder)
                elif before and after and since < row.changed_rev <= until:
                    changed.append(row.folder)
            return FolderChanges(
                added=tuple(_by_server_id(added)),
                changed=tuple(_by_server_id(changed)),
                deleted=tuple(f.server_id for f in _by_server_id(deleted)),
            )

        return self._read("folder_changes", run)

    # sync states ----------------------------------------------------------------------------------

    def get_sync_state(
        self, device_id: str, user: str, collection_id: str
    ) -> "Deferred[SyncState | None]":
        """The sync state of a collection, or None."""
        return self._read(
            "get_sync_state",
            lambda data: data.sync_states.get((device_id, user, collection_id)),
        )

    def advance_sync_state(
        self, device_id: str, user: str, collection_id: str, from_key: int | None,
        new_key: int, state: str,
    ) -> "Deferred[None]":
        """Compare-and-set a sync key."""

        def run(data: _Data) -> None:
            key = (device_id, user, collection_id)
            if from_key is None:
                if (device_id, user) not in data.accounts:
                    raise NoSuchDevice(f"{device_id} (user {user})")
                data.sync_states[key] = SyncState(new_key, state)
                return
            current = data.sync_states.get(key)
            if current is None or current.sync_key != from_key:
                raise SyncStateConflict(
                    f"sync key {from_key} of {collection_id or 'the hierarchy'} is not"
                    f" current ({device_id}, user {user})"
                )
            data.sync_states[key] = SyncState(new_key, state, current.sync_key, current.state)

        return self._write("advance_sync_state", run)

    def reset_sync_states(self, device_id: str, user: str) -> "Deferred[None]":
        """Drop every sync state of an account."""

        def run(data: _Data) -> None:
            for key in [k for k in data.sync_states if k[:2] == (device_id, user)]:
                del data.sync_states[key]

        return self._write("reset_sync_states", run)

    # mail follow-up flags -------------------------------------------------------------------------

    def get_mail_flags(
        self, user: str, mailbox: str, uidvalidity: int, uids: Sequence[int]
    ) -> "Deferred[dict[int, dict[str, str]]]":
        """The stored follow-up flags of some messages."""
        wanted = [int(uid) for uid in uids]

        def run(data: _Data) -> dict[int, dict[str, str]]:
            out: dict[int, dict[str, str]] = {}
            for uid in wanted:
                found = data.mail_flags.get((user, mailbox, int(uidvalidity), uid))
                if found is not None:
                    out[uid] = dict(found)
            return out

        return self._read("get_mail_flags", run)

    def set_mail_flags(
        self, user: str, mailbox: str, uidvalidity: int,
        flags: Mapping[int, Mapping[str, str] | None],
    ) -> "Deferred[None]":
        """Store or forget the follow-up flags of some messages."""

        def run(data: _Data) -> None:
            for uid, value in flags.items():
                key = (user, mailbox, int(uidvalidity), int(uid))
                if value is None:
                    data.mail_flags.pop(key, None)
                else:
                    data.mail_flags[key] = {str(k): str(v) for k, v in value.items()}

        return self._write("set_mail_flags", run)

    def drop_mail_flags(
        self, user: str, mailbox: str, keep_uidvalidity: int | None = None
    ) -> "Deferred[int]":
        """Forget the follow-up flags of a mailbox (or of its old UIDVALIDITYs)."""

        def run(data: _Data) -> int:
            gone = [key for key in data.mail_flags
                    if key[0] == user and key[1] == mailbox
                    and (keep_uidvalidity is None or key[2] != keep_uidvalidity)]
            for key in gone:
                del data.mail_flags[key]
            return len(gone)

        return self._write("drop_mail_flags", run)
