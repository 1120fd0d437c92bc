"""What the SQLite and PostgreSQL stores have in common: every IStateStore
method is one labelled transaction running a program of
:mod:`easyncd.store.programs`.  Each engine says how a program runs."""
from __future__ import annotations

from abc import ABC, abstractmethod

from typing import Mapping, Sequence, TypeVar

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from easyncd.store import programs
from easyncd.store.interfaces import (
    Device,
    DeviceAccount,
    Folder,
    FolderChanges,
    StoreError,
    SyncState,
)
from easyncd.store.migrations import SCHEMA_DIR, load_plan
from easyncd.store.programs import Program

T = TypeVar("T")


class SQLStateStore(ABC):
    """Base of the SQL engines.  Subclasses set ``engine`` and implement
    :meth:`run_program` and :meth:`close`."""

    engine = ""
    log = Logger()

    def __init__(self, schema_dir: str = SCHEMA_DIR) -> None:
        self._schema_dir = schema_dir

    @abstractmethod
    def run_program(self, label: str, program: Program[T], write: bool = True) -> "Deferred[T]":
        """Run ``program`` as one transaction named ``label``."""

    def _wrap_error(self, label: str, error: BaseException) -> BaseException:
        """The exception a failed transaction ends with: the store's own
        errors as they are, anything else inside a labelled StoreError."""
        if isinstance(error, (StoreError, ValueError, TypeError)):
            return error
        self.log.error(
            "store transaction {label} failed: {error}", label=label, error=repr(error)
        )
        wrapped = StoreError(f"{label}: {type(error).__name__}: {error}")
        wrapped.__cause__ = error
        return wrapped

    # schema -------------------------------------------------------------------

    def migrate(self) -> "Deferred[None]":
        """Create or upgrade the schema."""
        plan = load_plan(self.engine, self._schema_dir)
        d = self.run_program("migrate", programs.migrate(self.engine, plan))

        def done(versions: tuple[int, int]) -> None:
            before, after = versions
            if before != after:
                self.log.info(
                    "state store schema {before} -> {after} ({engine})",
                    before=before, after=after, engine=self.engine,
                )

        return d.addCallback(done)

    @abstractmethod
    def close(self) -> "Deferred[None]":
        """Close all connections."""

    def schema_version(self) -> "Deferred[int]":
        """The schema version of the database."""
        return self.run_program("schema_version", programs.schema_version(), write=False)

    # devices and accounts -------------------------------------------------------

    def get_device(self, device_id: str) -> "Deferred[Device | None]":
        """A device with its accounts, or None."""
        return self.run_program("get_device", programs.get_device(device_id), write=False)

    def get_account(self, device_id: str, user: str) -> "Deferred[DeviceAccount | None]":
        """One account of a device, or None."""
        return self.run_program("get_account", programs.get_account(device_id, user), write=False)

    def register_account(
        self, device_id: str, user: str, device_type: str, user_agent: str | None, now: float
    ) -> "Deferred[DeviceAccount]":
        """Create or refresh a device and an account."""
        return self.run_program(
            "register_account",
            programs.register_account(device_id, user, device_type, user_agent, now),
        )

    def record_request(
        self, device_id: str, user: str, command: str, protocol_version: str, now: float
    ) -> "Deferred[None]":
        """Note a served request on an existing account."""
        return self.run_program(
            "record_request",
            programs.record_request(device_id, user, command, protocol_version, now),
        )

    def list_devices(self, user: str | None = None) -> "Deferred[list[Device]]":
        """Devices by device id, optionally only those of ``user``."""
        return self.run_program("list_devices", programs.list_devices(user), write=False)

    def remove_device(self, device_id: str) -> "Deferred[None]":
        """Remove a device, its accounts and sync states."""
        return self.run_program("remove_device", programs.remove_device(device_id))

    def remove_account(self, device_id: str, user: str) -> "Deferred[None]":
        """Remove one account of a device and its sync states."""
        return self.run_program("remove_account", programs.remove_account(device_id, user))

    def set_device_info(self, device_id: str, info: Mapping[str, str]) -> "Deferred[None]":
        """Replace the DeviceInformation of a device."""
        return self.run_program("set_device_info", programs.set_device_info(device_id, dict(info)))

    def set_device_trace(self, device_id: str, enabled: bool) -> "Deferred[None]":
        """Switch the protocol trace of a device."""
        return self.run_program("set_device_trace", programs.set_device_trace(device_id, enabled))

    # provisioning -----------------------------------------------------------------

    def begin_provision(self, device_id: str, user: str, temporary_key: int) -> "Deferred[None]":
        """Remember the temporary policy key."""
        return self.run_program(
            "begin_provision", programs.begin_provision(device_id, user, temporary_key)
        )

    def confirm_provision(
        self, device_id: str, user: str, temporary_key: int, final_key: int, now: float
    ) -> "Deferred[bool]":
        """Make ``final_key`` the policy key if ``temporary_key`` matches."""
        return self.run_program(
            "confirm_provision",
            programs.confirm_provision(device_id, user, temporary_key, final_key, now),
        )

    def clear_policy_key(self, device_id: str, user: str | None = None) -> "Deferred[None]":
        """Forget the policy keys of a device or of one account."""
        return self.run_program("clear_policy_key", programs.clear_policy_key(device_id, user))

    # remote wipe --------------------------------------------------------------------

    def request_wipe(
        self, device_id: str, kind: str, user: str | None, now: float
    ) -> "Deferred[None]":
        """Ask for a wipe of a device or an account."""
        return self.run_program("request_wipe", programs.request_wipe(device_id, kind, user, now))

    def cancel_wipe(self, device_id: str) -> "Deferred[bool]":
        """Cancel the pending wipes of a device."""
        return self.run_program("cancel_wipe", programs.cancel_wipe(device_id))

    def acknowledge_wipe(self, device_id: str, user: str, now: float) -> "Deferred[None]":
        """The device confirmed a wipe."""
        return self.run_program("acknowledge_wipe", programs.acknowledge_wipe(device_id, user, now))

    # folders --------------------------------------------------------------------------

    def list_folders(self, user: str) -> "Deferred[list[Folder]]":
        """The live folders of a user."""
        return self.run_program("list_folders", programs.list_folders(user), write=False)

    def get_folder(self, user: str, server_id: str) -> "Deferred[Folder]":
        """One live folder."""
        return self.run_program("get_folder", programs.get_folder(user, server_id), write=False)

    def add_folder(
        self, user: str, parent_id: str, display_name: str, folder_type: int, backend_id: str
    ) -> "Deferred[Folder]":
        """Add a folder."""
        return self.run_program(
            "add_folder",
            programs.add_folder(user, parent_id, display_name, folder_type, backend_id),
        )

    def update_folder(
        self, user: str, server_id: str, display_name: str | None, parent_id: str | None,
        backend_id: str | None = None,
    ) -> "Deferred[Folder]":
        """Rename and/or move a folder (``backend_id``: its backend's new name)."""
        return self.run_program(
            "update_folder",
            programs.update_folder(user, server_id, display_name, parent_id, backend_id),
        )

    def delete_folder(self, user: str, server_id: str) -> "Deferred[None]":
        """Delete a folder and its sub-folders."""
        return self.run_program("delete_folder", programs.delete_folder(user, server_id))

    def folder_revision(self, user: str) -> "Deferred[int]":
        """The user's hierarchy revision."""
        return self.run_program("folder_revision", programs.folder_revision(user), write=False)

    def folder_changes(self, user: str, since: int, until: int) -> "Deferred[FolderChanges]":
        """The net folder changes in (since, until]."""
        return self.run_program(
            "folder_changes", programs.folder_changes(user, since, until), write=False
        )

    # sync states ------------------------------------------------------------------------

    def get_sync_state(
        self, device_id: str, user: str, collection_id: str
    ) -> "Deferred[SyncState | None]":
        """The sync state of a collection."""
        return self.run_program(
            "get_sync_state", programs.get_sync_state(device_id, user, collection_id),
            write=False,
        )

    def advance_sync_state(
        self, device_id: str, user: str, collection_id: str, from_key: int | None,
        new_key: int, state: str,
    ) -> "Deferred[None]":
        """Compare-and-set a sync key."""
        return self.run_program(
            "advance_sync_state",
            programs.advance_sync_state(device_id, user, collection_id, from_key, new_key, state),
        )

    def reset_sync_states(self, device_id: str, user: str) -> "Deferred[None]":
        """Drop every sync state of an account."""
        return self.run_program("reset_sync_states", programs.reset_sync_states(device_id, user))


    # mail follow-up flags ------------------------------------------------------------

    def get_mail_flags(
        self, user: str, mailbox: str, uidvalidity: int, uids: Sequence[int]
    ) -> "Deferred[dict[int, dict[str, str]]]":
        """The stored follow-up flags of some messages."""
        return self.run_program(
            "get_mail_flags", programs.get_mail_flags(user, mailbox, uidvalidity, list(uids)),
            write=False,
        )

    def set_mail_flags(
        self, user: str, mailbox: str, uidvalidity: int,
        flags: Mapping[int, Mapping[str, str] | None],
    ) -> "Deferred[None]":
        """Store or forget the follow-up flags of some messages."""
        plain = {int(uid): (None if data is None else dict(data)) for uid, data in flags.items()}
        return self.run_program(
            "set_mail_flags", programs.set_mail_flags(user, mailbox, uidvalidity, plain)
        )

    def drop_mail_flags(
        self, user: str, mailbox: str, keep_uidvalidity: int | None = None
    ) -> "Deferred[int]":
        """Forget the follow-up flags of a mailbox (or of its old UIDVALIDITYs)."""
        return self.run_program(
            "drop_mail_flags", programs.drop_mail_flags(user, mailbox, keep_uidvalidity)
        )
