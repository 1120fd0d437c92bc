"""``easyncd-admin user ...``: the local users file, and the devices of a user.

The functions take a :class:`~easyncd.backends.users_file.UsersFile` (or a
store) and raise :class:`~easyncd.admin.errors.AdminError` with a one-line
message for what the operator can fix, so the command line only prints.
"""
from __future__ import annotations

import getpass
from typing import Callable, TextIO

from easyncd.admin.errors import AdminError
from easyncd.backends.users_file import NoSuchUser, UserExists, UsersFile, UsersFileError
from easyncd.store.interfaces import IStateStore


def read_new_password(
    stdin: TextIO,
    *,
    ask: Callable[[str], str] = getpass.getpass,
    interactive: bool | None = None,
) -> str:
    """Read a new password: prompted twice on a terminal, else one line of ``stdin``.

    ``ask`` is the prompt function (``getpass.getpass``); ``interactive``
    defaults to whether ``stdin`` is a terminal.  Raises AdminError for an
    empty password or two entries that differ.
    """
    if interactive is None:
        interactive = stdin.isatty()
    if interactive:
        password = ask("New password: ")
        if password != ask("Repeat password: "):
            raise AdminError("the passwords do not match")
    else:
        line = stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password.removesuffix("\r")
    if not password:
        raise AdminError("empty password")
    return password


def list_users(users: UsersFile) -> list[str]:
    """The user names of the file, sorted."""
    try:
        return sorted(users.users())
    except UsersFileError as exc:
        raise AdminError(str(exc)) from None


def add_user(users: UsersFile, name: str, password: str) -> None:
    """Add a user; AdminError ``user exists: NAME`` if it is there already."""
    try:
        users.add(name, password)
    except UserExists:
        raise AdminError(f"user exists: {name}") from None
    except UsersFileError as exc:
        raise AdminError(str(exc)) from None


def set_password(users: UsersFile, name: str, password: str) -> None:
    """Change a user's password; AdminError ``no such user: NAME``."""
    try:
        users.set_password(name, password)
    except NoSuchUser:
        raise AdminError(f"no such user: {name}") from None
    except UsersFileError as exc:
        raise AdminError(str(exc)) from None


def remove_user(users: UsersFile, name: str) -> None:
    """Remove a user from the file; AdminError ``no such user: NAME``."""
    try:
        users.remove(name)
    except NoSuchUser:
        raise AdminError(f"no such user: {name}") from None
    except UsersFileError as exc:
        raise AdminError(str(exc)) from None


async def remove_user_devices(store: IStateStore, user: str) -> list[str]:
    """Remove the accounts of ``user`` from every device; a device left with no
    account is removed as a whole.  Returns the device ids touched, sorted."""
    touched = []
    for device in await store.list_devices(user=user):
        others = [account for account in device.accounts if account.user != user]
        if others:
            await store.remove_account(device.device_id, user)
        else:
            await store.remove_device(device.device_id)
        touched.append(device.device_id)
    return sorted(touched)

