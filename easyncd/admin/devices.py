"""``easyncd-admin device ...``: actions on the state store, and their output.

Actions are coroutines that take an
:class:`~easyncd.store.interfaces.IStateStore` and raise
:class:`~easyncd.admin.errors.AdminError` for what the operator can fix;
formatting functions are pure.  Neither touches the reactor.
"""
from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Iterable

from easyncd.admin.errors import AdminError
from easyncd.store.interfaces import (
    WIPE_ACCOUNT,
    WIPE_DEVICE,
    WIPE_NONE,
    Device,
    DeviceAccount,
    IStateStore,
    NoSuchDevice,
)

#: The first EAS version with the account-only remote wipe (MS-ASPROV 2.2.2.1).
ACCOUNT_ONLY_WIPE_VERSION = "16.1"


# -- actions ---------------------------------------------------------------------


async def list_devices(store: IStateStore, user: str | None = None) -> list[Device]:
    """The devices (of one user, with ``user``), ordered by device id."""
    return list(await store.list_devices(user=user))


async def get_device(store: IStateStore, device_id: str) -> Device:
    """The device, or AdminError ``no such device: ID``."""
    device = await store.get_device(device_id)
    if device is None:
        raise AdminError(f"no such device: {device_id}")
    return device


async def wipe_device(
    store: IStateStore,
    device_id: str,
    *,
    now: float,
    account_only: bool = False,
    user: str | None = None,
) -> list[str]:
    """Ask for a remote wipe, carried out at the device's next request.

    Without ``account_only`` the whole device is wiped (every account is
    marked).  With it only the data of ``user``'s account (of every account,
    without ``user``) is removed; that needs EAS 16.1 on the device.
    Returns warnings, one line each.
    """
    device = await get_device(store, device_id)
    if user is not None and not account_only:
        raise AdminError("--user needs --account-only: a device wipe erases every account")
    targets = _accounts(device, user)
    warnings = []
    if account_only:
        for account in targets:
            if not _at_least(account.protocol_version, ACCOUNT_ONLY_WIPE_VERSION):
                spoken = account.protocol_version or "no known version"
                warnings.append(
                    f"warning: account {account.user} on {device_id} last used EAS {spoken};"
                    f" an account-only wipe needs {ACCOUNT_ONLY_WIPE_VERSION}, so the device"
                    " will be refused (HTTP 403) rather than wiped"
                )
    kind = WIPE_ACCOUNT if account_only else WIPE_DEVICE
    try:
        await store.request_wipe(device_id, kind, user, now)
    except NoSuchDevice:
        raise AdminError(f"no such device: {device_id}") from None
    return warnings


async def cancel_wipe(store: IStateStore, device_id: str) -> bool:
    """Cancel a pending wipe; whether one was pending."""
    try:
        return bool(await store.cancel_wipe(device_id))
    except NoSuchDevice:
        raise AdminError(f"no such device: {device_id}") from None


async def remove_device(store: IStateStore, device_id: str) -> None:
    """Forget a device, its accounts and sync states (it will start over)."""
    try:
        await store.remove_device(device_id)
    except NoSuchDevice:
        raise AdminError(f"no such device: {device_id}") from None


async def set_trace(store: IStateStore, device_id: str, enabled: bool) -> None:
    """Switch the protocol trace of a device on or off."""
    try:
        await store.set_device_trace(device_id, enabled)
    except NoSuchDevice:
        raise AdminError(f"no such device: {device_id}") from None


async def resync_device(store: IStateStore, device_id: str, user: str | None = None) -> list[str]:
    """Make a device (or one account of it) provision again and drop its sync
    states, so its next FolderSync and Sync start over.  Returns the users."""
    device = await get_device(store, device_id)
    targets = _accounts(device, user)
    await store.clear_policy_key(device_id, user)
    for account in targets:
        await store.reset_sync_states(device_id, account.user)
    return [account.user for account in targets]


def _accounts(device: Device, user: str | None) -> list[DeviceAccount]:
    if user is None:
        return list(device.accounts)
    found = [account for account in device.accounts if account.user == user]
    if not found:
        raise AdminError(f"no account of {user} on device {device.device_id}")
    return found


def _version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return ()


def _at_least(version: str | None, wanted: str) -> bool:
    return version is not None and _version_tuple(version) >= _version_tuple(wanted)


# -- formatting -------------------------------------------------------------------


def format_time(timestamp: float | None, tz: datetime.tzinfo | None = None) -> str:
    """``2024-05-01 12:34`` in ``tz`` (default: local time), ``-`` for None."""
    if timestamp is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(timestamp, tz=tz or datetime.timezone.utc)
    if tz is None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def policy_state(account: DeviceAccount) -> str:
    """``provisioned``, ``pending`` (between the two Provision phases) or ``none``."""
    if account.policy_key is not None:
        return "provisioned"
    if account.pending_policy_key is not None:
        return "pending"
    return "none"


def wipe_state(account: DeviceAccount) -> str:
    """``none``, or the state with its kind: ``pending (device)``, ``wiped (account)``."""
    if account.wipe_state == WIPE_NONE:
        return "none"
    return f"{account.wipe_state} ({account.wipe_kind or WIPE_DEVICE})"


def _summary(values: Iterable[str]) -> str:
    unique = list(dict.fromkeys(values))
    return ",".join(unique) if unique else "-"


def format_device_table(devices: Iterable[Device], tz: datetime.tzinfo | None = None) -> str:
    """A table, one line per device; the empty string when there is none."""
    header = ("DEVICE ID", "TYPE", "USERS", "LAST SEEN", "POLICY", "WIPE")
    rows = [header]
    for device in devices:
        rows.append((
            device.device_id,
            device.device_type,
            _summary(account.user for account in device.accounts),
            format_time(device.last_seen, tz),
            _summary(policy_state(account) for account in device.accounts),
            _summary(wipe_state(account) for account in device.accounts),
        ))
    if len(rows) == 1:
        return ""
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def format_device_details(device: Device, tz: datetime.tzinfo | None = None) -> str:
    """Everything known about a device, as ``key: value`` lines."""
    lines = [
        f"device id:    {device.device_id}",
        f"type:         {device.device_type}",
        f"user agent:   {device.user_agent or '-'}",
        f"first seen:   {format_time(device.first_seen, tz)}",
        f"last seen:    {format_time(device.last_seen, tz)}",
        f"trace:        {'on' if device.trace else 'off'}",
    ]
    if device.info:
        lines.append("device information:")
        for key in sorted(device.info):
            lines.append(f"  {key}: {device.info[key]}")
    else:
        lines.append("device information: -")
    for account in device.accounts:
        lines.extend([
            f"account {account.user}:",
            f"  protocol version: {account.protocol_version or '-'}",
            f"  last command:     {account.last_command or '-'}",
            f"  first seen:       {format_time(account.first_seen, tz)}",
            f"  last seen:        {format_time(account.last_seen, tz)}",
            f"  policy:           {policy_state(account)}",
            f"  policy key:       {_key(account.policy_key)}",
            f"  provisioned at:   {format_time(account.provisioned_at, tz)}",
            f"  wipe:             {wipe_state(account)}",
            f"  wipe requested:   {format_time(account.wipe_requested_at, tz)}",
            f"  wipe confirmed:   {format_time(account.wipe_acknowledged_at, tz)}",
        ])
    if not device.accounts:
        lines.append("accounts: -")
    return "\n".join(lines) + "\n"


def _key(value: int | None) -> str:
    return "-" if value is None else str(value)


def device_to_json(device: Device) -> dict[str, Any]:
    """A JSON-ready dict of a device and its accounts (times as POSIX seconds)."""
    data = dataclasses.asdict(device)
    data["info"] = dict(device.info)
    data["accounts"] = [dataclasses.asdict(account) for account in device.accounts]
    return data
