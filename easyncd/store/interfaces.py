"""The contract of easyncd's own state store, with its error types beside it.

Every method returns a Deferred and runs as one labelled transaction: what a
method writes commits together or not at all.  Times are POSIX seconds
(float); the caller passes them in so that tests can use a fake clock.

Sync keys are decimal numbers on the wire (``0`` means "start over");
the store keeps them as integers.  Each sync state (the folder hierarchy of
one device account, or one collection of it) remembers its current key and
the one before, so a client that repeats the previous key gets the same
answer again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from zope.interface import Attribute, Interface

#: The collection id under which the folder hierarchy's sync state is kept.
HIERARCHY = ""

#: Wipe states of a device account.
WIPE_NONE = "none"
WIPE_PENDING = "pending"
WIPE_WIPED = "wiped"

#: Wipe kinds: the whole device, or (EAS 16.1) only this account's data.
WIPE_DEVICE = "device"
WIPE_ACCOUNT = "account"


# -- errors --------------------------------------------------------------------


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or opened."""


class SchemaTooNew(StoreError):
    """The database was written by a newer easyncd than this one."""


class NoSuchDevice(StoreError):
    """No device (or no account of that user on it) with that id."""


class NoSuchFolder(StoreError):
    """No live folder with that server id for that user."""


class FolderExists(StoreError):
    """A live folder with that name already exists under that parent."""


class SyncStateConflict(StoreError):
    """The sync key to advance from is no longer the current one (a concurrent
    request advanced it, or it never existed)."""


# -- values --------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceAccount:
    """One user's account on one device: its own policy key, wipe state, activity."""

    device_id: str
    user: str
    policy_key: int | None = None
    pending_policy_key: int | None = None
    provisioned_at: float | None = None
    wipe_state: str = WIPE_NONE
    wipe_kind: str | None = None
    wipe_requested_at: float | None = None
    wipe_acknowledged_at: float | None = None
    first_seen: float | None = None
    last_seen: float | None = None
    last_command: str | None = None
    protocol_version: str | None = None


@dataclass(frozen=True)
class Device:
    """A device, identified by the DeviceId it sends, and its accounts."""

    device_id: str
    device_type: str
    user_agent: str | None = None
    first_seen: float | None = None
    last_seen: float | None = None
    #: Settings/DeviceInformation as sent: Model, IMEI, FriendlyName, OS,
    #: OSLanguage, PhoneNumber, MobileOperator, UserAgent, EnableOutboundSMS.
    info: Mapping[str, str] = field(default_factory=dict)
    trace: bool = False
    accounts: tuple[DeviceAccount, ...] = ()


@dataclass(frozen=True)
class Folder:
    """A folder of a user's hierarchy, as FolderSync shows it.

    ``server_id`` is stable and short; ``parent_id`` is ``"0"`` at the top;
    ``folder_type`` is the FolderHierarchy Type (MS-ASCMD 2.2.3.186.3);
    ``backend_id`` says which backend collection this is (for example
    ``"groupware:contacts:default"``, later ``"imap:INBOX"``).
    """

    user: str
    server_id: str
    parent_id: str
    display_name: str
    folder_type: int
    backend_id: str


@dataclass(frozen=True)
class FolderChanges:
    """What happened to a user's folders between two revisions."""

    added: tuple[Folder, ...] = ()
    changed: tuple[Folder, ...] = ()
    deleted: tuple[str, ...] = ()  # server ids

    def __len__(self) -> int:
        return len(self.added) + len(self.changed) + len(self.deleted)


@dataclass(frozen=True)
class SyncState:
    """The state saved under a sync key, and the one before it (for retries).

    ``state`` is opaque text owned by the caller (for the hierarchy: the folder
    revision the key stands for).
    """

    sync_key: int
    state: str
    previous_key: int | None = None
    previous_state: str | None = None


# -- interfaces -----------------------------------------------------------------


class IStateStore(Interface):
    """easyncd's own state: devices, accounts, policy and wipe state, folders,
    sync keys.  Implementations: SQLite (default) and PostgreSQL."""

    engine = Attribute("'sqlite' or 'postgresql'")

    def migrate():  # type: ignore[misc]
        """Create the schema in an empty database or bring an older one up to date.

        Must be called (and its Deferred fired) before any other method.
        Raises SchemaTooNew or StoreUnavailable.
        """

    def close():  # type: ignore[misc]
        """Close all connections.  Deferred[None]."""

    def schema_version():  # type: ignore[misc]
        """Deferred[int]: the schema version of the database."""

    # devices and accounts ------------------------------------------------------

    def get_device(device_id):  # type: ignore[misc,no-untyped-def]
        """Deferred[Device | None], with its accounts."""

    def get_account(device_id, user):  # type: ignore[misc,no-untyped-def]
        """Deferred[DeviceAccount | None]."""

    def register_account(device_id, user, device_type, user_agent, now):  # type: ignore[misc,no-untyped-def]
        """Create the device and the account if missing; refresh device_type,
        user_agent and last_seen.  Deferred[DeviceAccount]."""

    def record_request(device_id, user, command, protocol_version, now):  # type: ignore[misc,no-untyped-def]
        """Note a served request on an existing account (last_seen, last
        command, protocol version).  Does nothing if the account does not exist.
        Deferred[None]."""

    def list_devices(user=None):  # type: ignore[misc,no-untyped-def]
        """Deferred[list[Device]] ordered by device id; with ``user``, only the
        devices on which that user has an account."""

    def remove_device(device_id):  # type: ignore[misc,no-untyped-def]
        """Remove a device, its accounts and all their sync states.
        Deferred[None]; NoSuchDevice if unknown."""

    def remove_account(device_id, user):  # type: ignore[misc,no-untyped-def]
        """Remove one account of a device and its sync states (the device stays).
        Deferred[None]; NoSuchDevice if unknown."""

    def set_device_info(device_id, info):  # type: ignore[misc,no-untyped-def]
        """Replace the DeviceInformation of a device.  Deferred[None];
        NoSuchDevice if unknown."""

    def set_device_trace(device_id, enabled):  # type: ignore[misc,no-untyped-def]
        """Switch the protocol trace of a device on or off.  Deferred[None];
        NoSuchDevice if unknown."""

    # provisioning ---------------------------------------------------------------

    def begin_provision(device_id, user, temporary_key):  # type: ignore[misc,no-untyped-def]
        """Remember the temporary policy key handed out by the first Provision
        phase.  Deferred[None]; NoSuchDevice if the account is unknown."""

    def confirm_provision(device_id, user, temporary_key, final_key, now):  # type: ignore[misc,no-untyped-def]
        """If ``temporary_key`` is the pending one, make ``final_key`` the
        account's policy key.  Deferred[bool]: whether it matched."""

    def clear_policy_key(device_id, user=None):  # type: ignore[misc,no-untyped-def]
        """Forget the policy keys of a device (or of one account), so that it
        must provision again.  Deferred[None]."""

    # remote wipe ------------------------------------------------------------------

    def request_wipe(device_id, kind, user, now):  # type: ignore[misc,no-untyped-def]
        """Ask for a wipe.  ``kind`` WIPE_DEVICE marks every account of the
        device pending; WIPE_ACCOUNT marks the account of ``user`` (or, with
        ``user`` None, every account).  Deferred[None]; NoSuchDevice."""

    def cancel_wipe(device_id):  # type: ignore[misc,no-untyped-def]
        """Cancel pending wipes of a device.  Deferred[bool]: whether one was
        pending.  NoSuchDevice if unknown."""

    def acknowledge_wipe(device_id, user, now):  # type: ignore[misc,no-untyped-def]
        """The device confirmed the wipe of that account: pending -> wiped (for
        WIPE_DEVICE, on every account of the device).  Deferred[None]."""

    # folders ----------------------------------------------------------------------

    def list_folders(user):  # type: ignore[misc,no-untyped-def]
        """Deferred[list[Folder]]: the live folders, ordered by server id."""

    def get_folder(user, server_id):  # type: ignore[misc,no-untyped-def]
        """Deferred[Folder]; NoSuchFolder."""

    def add_folder(user, parent_id, display_name, folder_type, backend_id):  # type: ignore[misc,no-untyped-def]
        """Deferred[Folder] with a new stable server id; FolderExists if a live
        sibling has that name; NoSuchFolder if parent_id is neither "0" nor live."""

    def update_folder(user, server_id, display_name, parent_id, backend_id=None):  # type: ignore[misc,no-untyped-def]
        """Rename and/or move a folder (None keeps a value); ``backend_id`` follows
        a backend rename (an IMAP mailbox's new name) so the server id stays.
        Deferred[Folder]; NoSuchFolder, FolderExists."""

    def delete_folder(user, server_id):  # type: ignore[misc,no-untyped-def]
        """Delete a folder and its sub-folders.  Deferred[None]; NoSuchFolder."""

    def folder_revision(user):  # type: ignore[misc,no-untyped-def]
        """Deferred[int]: the user's current hierarchy revision (0 when empty);
        every add, update or delete raises it by one."""

    def folder_changes(user, since, until):  # type: ignore[misc,no-untyped-def]
        """Deferred[FolderChanges]: the net changes between two revisions
        (``since`` < r <= ``until``).  A folder added and deleted inside the
        range does not appear; one added and changed is an add."""

    # sync states --------------------------------------------------------------------

    def get_sync_state(device_id, user, collection_id):  # type: ignore[misc,no-untyped-def]
        """Deferred[SyncState | None]; ``collection_id`` HIERARCHY is the
        folder hierarchy."""

    def advance_sync_state(device_id, user, collection_id, from_key, new_key, state):  # type: ignore[misc,no-untyped-def]
        """Save ``state`` under ``new_key``.  With ``from_key`` None this starts
        over (any earlier state of the collection is dropped); otherwise
        ``from_key`` must be the current key, which becomes the previous one.
        Deferred[None]; SyncStateConflict."""

    def reset_sync_states(device_id, user):  # type: ignore[misc,no-untyped-def]
        """Drop every sync state of the account (FolderSync with key 0).
        Deferred[None]."""

    # mail follow-up flags -------------------------------------------------------------

    def get_mail_flags(user, mailbox, uidvalidity, uids):  # type: ignore[misc,no-untyped-def]
        """Deferred[dict[int, dict[str, str]]]: the follow-up flags (the EAS
        Flag's child elements, ``"Email:Status"`` / ``"Tasks:DueDate"`` ... ->
        text) stored for those UIDs of ``mailbox`` at ``uidvalidity``; UIDs
        without one are left out."""

    def set_mail_flags(user, mailbox, uidvalidity, flags):  # type: ignore[misc,no-untyped-def]
        """Store ``{uid: data}`` (a mapping as above) or forget ``{uid: None}``,
        in one transaction.  Flags are the user's, shared by all devices.
        Deferred[None]."""

    def drop_mail_flags(user, mailbox, keep_uidvalidity=None):  # type: ignore[misc,no-untyped-def]
        """Forget the follow-up flags of a mailbox: all of them, or those of
        every UIDVALIDITY but ``keep_uidvalidity``.  Deferred[int]: how many."""
