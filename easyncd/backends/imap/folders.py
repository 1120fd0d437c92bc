"""IMAP mailboxes as EAS folders: types from SPECIAL-USE, configured names or common names.

Order of decision for each special type (Drafts, Sent, Trash, Junk, Outbox):

1. a configured name (``[imap] drafts = ...``) when such a mailbox exists;
2. the RFC 6154 SPECIAL-USE attribute (``\\Drafts``, ``\\Sent``, ``\\Trash``, ``\\Junk``);
3. a well-known name (``Sent``, ``Sent Items``, ``Deleted Items``, ``Spam`` ...),
   compared case-insensitively on the whole name.

Each EAS special type goes to one mailbox (the first found); other candidates
are user folders (12).  ``INBOX`` is always type 2.  Junk has no EAS type: it
is a user mail folder under its own name, but :func:`map_folders` still tells
which mailbox is the junk one (``special_use`` ``\\Junk``).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from easyncd.backends.imap.client import MailboxInfo
from easyncd.backends.interfaces import (
    FOLDER_DELETED,
    FOLDER_DRAFTS,
    FOLDER_INBOX,
    FOLDER_OUTBOX,
    FOLDER_SENT,
    FOLDER_USER_MAIL,
    MailFolder,
)

__all__ = ["map_folders", "COMMON_NAMES", "ROLES"]

#: role -> (special-use attribute, EAS type)
ROLES: dict[str, tuple[str | None, int]] = {
    "drafts": ("\\Drafts", FOLDER_DRAFTS),
    "sent": ("\\Sent", FOLDER_SENT),
    "trash": ("\\Trash", FOLDER_DELETED),
    "junk": ("\\Junk", FOLDER_USER_MAIL),
    "outbox": (None, FOLDER_OUTBOX),
}
#: Well-known names when the server offers no SPECIAL-USE.
COMMON_NAMES: dict[str, tuple[str, ...]] = {
    "drafts": ("Drafts", "Draft", "INBOX.Drafts", "INBOX/Drafts"),
    "sent": ("Sent", "Sent Items", "Sent Messages", "Sent Mail", "INBOX.Sent", "INBOX/Sent"),
    "trash": ("Trash", "Deleted Items", "Deleted Messages", "INBOX.Trash", "INBOX/Trash"),
    "junk": ("Junk", "Spam", "Junk E-mail", "Junk Email", "INBOX.Junk", "INBOX/Junk", "INBOX.Spam"),
    "outbox": (),
}


def _display_name(info: MailboxInfo) -> str:
    if info.delimiter and info.delimiter in info.name:
        return info.name.rsplit(info.delimiter, 1)[1]
    return info.name


def assign_roles(infos: Sequence[MailboxInfo], configured: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{role: mailbox name}`` for the roles found (drafts, sent, trash, junk, outbox)."""
    configured = configured or {}
    names = {info.name: info for info in infos if "\\NonExistent" not in info.flags}
    by_lower = {name.lower(): name for name in names}
    roles: dict[str, str] = {}
    taken: set[str] = {"INBOX"}
    for role, (attribute, _) in ROLES.items():
        choice = None
        wanted = configured.get(role)
        if wanted and wanted in names:
            choice = wanted
        if choice is None and attribute is not None:
            choice = next((i.name for i in infos if i.special_use == attribute and i.name not in taken), None)
        if choice is None:
            choice = next((by_lower[n.lower()] for n in COMMON_NAMES[role]
                           if n.lower() in by_lower and by_lower[n.lower()] not in taken), None)
        if choice is not None and choice not in taken:
            roles[role] = choice
            taken.add(choice)
    return roles


def map_folders(infos: Sequence[MailboxInfo], configured: Mapping[str, str] | None = None) -> list[MailFolder]:
    """The EAS view of a ``LIST`` answer: INBOX first, then by name."""
    roles = assign_roles(infos, configured)
    role_of = {name: role for role, name in roles.items()}
    known = {info.name for info in infos}
    folders: list[MailFolder] = []
    for info in infos:
        if "\\NonExistent" in info.flags:
            continue
        name = "INBOX" if info.name.upper() == "INBOX" else info.name
        role = role_of.get(info.name)
        special: str | None
        if name == "INBOX":
            eas_type, special = FOLDER_INBOX, "\\Inbox"
        elif role is not None:
            eas_type = ROLES[role][1]
            special = ROLES[role][0] or info.special_use
        else:
            eas_type, special = FOLDER_USER_MAIL, info.special_use
        parent = info.parent
        if parent is not None and parent.upper() == "INBOX":
            parent = "INBOX"
        if parent is not None and parent not in known and parent != "INBOX":
            parent = None  # a parent LIST did not show: hang it at the top
        folders.append(MailFolder(name=name, parent=parent, delimiter=info.delimiter, eas_type=eas_type,
                                  display_name=_display_name(info), special_use=special,
                                  selectable=info.selectable))
    folders.sort(key=lambda f: (f.name != "INBOX", f.name.lower()))
    return folders
