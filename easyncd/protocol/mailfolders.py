"""The user's IMAP mailboxes as folders of the EAS hierarchy.

:func:`reconcile_mail_folders` brings the state store's folders table in line
with ``mail.list_folders(user, password)``; FolderSync calls it next to the
groupware reconciliation.  The FolderCreate / FolderUpdate / FolderDelete
handlers for mail folders (:func:`create_mail_folder`,
:func:`update_mail_folder`, :func:`delete_mail_folder`) change the IMAP
mailboxes first and the folders table after.

Rules of the mapping:

* one folder per mailbox, backend id ``imap:<full mailbox name>`` (also its
  push topic); the FolderHierarchy Type is the backend's ``eas_type`` (2 Inbox,
  3 Drafts, 4 Deleted Items, 5 Sent Items, 6 Outbox, 12 any other mail folder);
* the parent is the folder of the parent mailbox (``"0"`` at the top);
  parents are written before their children;
* a ``\\Noselect`` mailbox (a placeholder in the name space, holding no
  messages) is shown only when it has a shown child, so that the child has a
  parent; one without children is left out.  Syncing it gives an empty folder
  (the mail Sync treats a mailbox it cannot select as empty / gone);
* ``INBOX`` is shown as ``Inbox``;
* a name another (groupware) folder holds under the same parent becomes
  ``"Name (Email)"`` (then ``"Name (Email 2)"`` ...);
* a mailbox renamed, moved or deleted by another client shows up as a Delete
  (the folder and its sub-folders) and an Add under the new name: IMAP has no
  stable mailbox id to follow a rename by.  A type change (a mailbox becomes
  the Trash) is a Delete and an Add too (the store cannot change a type);
* one LIST and one read of the folders table; only differences are written,
  so a second call writes nothing.

Renames from the device keep the folder's server id: the store's
``update_folder`` is given the new backend id when it accepts one (keyword
``backend_id``); otherwise the renamed folder is replaced (Delete + Add in the
next FolderSync).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from twisted.logger import Logger

from easyncd.backends.interfaces import (
    FOLDER_DELETED,
    FOLDER_DRAFTS,
    FOLDER_INBOX,
    FOLDER_OUTBOX,
    FOLDER_SENT,
    FOLDER_USER_MAIL,
    MailboxExists,
    MailError,
    MailFolder,
    NoSuchMailbox,
)
from easyncd.store.interfaces import Folder, FolderExists, NoSuchFolder

__all__ = [
    "MAIL_PREFIX",
    "MAIL_SPECIAL_TYPES",
    "MAIL_FOLDER_TYPES",
    "MailFolderResult",
    "create_mail_folder",
    "delete_mail_folder",
    "is_mail_folder",
    "mail_backend_id",
    "mailbox_of",
    "reconcile_mail_folders",
    "update_mail_folder",
]

#: Backend id (and push topic) prefix of mail folders.
MAIL_PREFIX = "imap:"
#: Folder types of mail folders the device may not rename or delete.
MAIL_SPECIAL_TYPES = frozenset({FOLDER_INBOX, FOLDER_DRAFTS, FOLDER_DELETED, FOLDER_SENT,
                                FOLDER_OUTBOX})
#: FolderCreate Types that create a mail folder (12; 1, the generic
#: user-created folder, is taken as mail too).
MAIL_FOLDER_TYPES = frozenset({FOLDER_USER_MAIL, 1})
#: The label added to a mail folder's name when another folder holds it.
_LABEL = "Email"
_TOP = "0"

# FolderCreate / FolderUpdate / FolderDelete Status values (MS-ASCMD
# 2.2.3.177.3, .177.4, .177.6); the same numbers as FolderOpStatus.
STATUS_SUCCESS = 1
STATUS_EXISTS = 2
STATUS_SPECIAL = 3
STATUS_NO_SUCH_FOLDER = 4
STATUS_NO_SUCH_PARENT = 5
STATUS_SERVER_ERROR = 6
STATUS_BAD_REQUEST = 10

_log = Logger()


def mail_backend_id(mailbox: str) -> str:
    """The backend id (and push topic) of a mailbox's folder."""
    return MAIL_PREFIX + mailbox


def mailbox_of(folder: Folder | str) -> str | None:
    """The mailbox name of a mail folder (or of its backend id), None for
    other folders."""
    backend_id = folder if isinstance(folder, str) else folder.backend_id
    if not backend_id.startswith(MAIL_PREFIX):
        return None
    return backend_id[len(MAIL_PREFIX):]


def is_mail_folder(folder: Folder) -> bool:
    """Whether ``folder`` shows a mailbox."""
    return folder.backend_id.startswith(MAIL_PREFIX)


def shown_name(mailbox: MailFolder) -> str:
    """The display name a mailbox is shown with (before collisions)."""
    if mailbox.name == "INBOX":
        return "Inbox"
    return mailbox.display_name


def shown_mailboxes(mailboxes: Sequence[MailFolder]) -> list[MailFolder]:
    """The mailboxes that become folders, parents before children: every
    selectable one, and a ``\\Noselect`` one only when a shown mailbox lies
    below it."""
    by_name = {m.name: m for m in mailboxes}
    keep: set[str] = set()
    for mailbox in mailboxes:
        if not mailbox.selectable:
            continue
        current: MailFolder | None = mailbox
        while current is not None and current.name not in keep:
            keep.add(current.name)
            current = by_name.get(current.parent) if current.parent is not None else None

    def depth(mailbox: MailFolder) -> int:
        level, current, seen = 0, mailbox, {mailbox.name}
        while current.parent is not None and current.parent in by_name \
                and current.parent not in seen:
            level += 1
            seen.add(current.parent)
            current = by_name[current.parent]
        return level

    shown = [m for m in mailboxes if m.name in keep]
    # Stable: INBOX first, then the backend's order, parents before children.
    return sorted(shown, key=depth)


async def reconcile_mail_folders(
    store: Any, mail: Any, user: str, password: str, log: Logger | None = None
) -> int:
    """Make the folders table show exactly the user's mailboxes (see the
    module doc).  Returns the number of folder writes.  Errors of the mail
    backend (:class:`MailError`) propagate; the folders table is then left
    as it was."""
    log = log or _log
    mailboxes: list[MailFolder] = list(await mail.list_folders(user, password))
    wanted = shown_mailboxes(mailboxes)
    wanted_by_id = {mail_backend_id(m.name): m for m in wanted}
    folders: list[Folder] = list(await store.list_folders(user))
    writes = 0

    # Deletes: gone mailboxes, changed types, duplicates.  Deleting a folder
    # deletes its sub-folders, so read the table again after any delete.
    seen: set[str] = set()
    doomed: list[Folder] = []
    for folder in folders:
        if not is_mail_folder(folder):
            continue
        mailbox = wanted_by_id.get(folder.backend_id)
        if mailbox is None or folder.backend_id in seen or folder.folder_type != mailbox.eas_type:
            doomed.append(folder)
        else:
            seen.add(folder.backend_id)
    if doomed:
        gone: set[str] = set()
        for folder in doomed:
            if folder.server_id in gone:
                continue
            gone.update(_subtree(folders, folder.server_id))
            try:
                await store.delete_folder(user, folder.server_id)
                writes += 1
            except NoSuchFolder:
                pass
        folders = list(await store.list_folders(user))

    ours = {f.backend_id: f for f in folders if is_mail_folder(f)}
    # Names held by other folders, per parent.
    others: dict[str, set[str]] = {}
    for folder in folders:
        if not is_mail_folder(folder):
            others.setdefault(folder.parent_id, set()).add(folder.display_name)

    for mailbox in wanted:
        backend_id = mail_backend_id(mailbox.name)
        if mailbox.parent is None:
            parent_id = _TOP
        else:
            parent_folder = ours.get(mail_backend_id(mailbox.parent))
            parent_id = parent_folder.server_id if parent_folder is not None else _TOP
        name = _free_name(shown_name(mailbox), others.get(parent_id, set()))
        existing = ours.get(backend_id)
        if existing is not None:
            if existing.parent_id == parent_id and existing.display_name == name:
                continue
            try:
                ours[backend_id] = await store.update_folder(user, existing.server_id, name,
                                                             parent_id)
                writes += 1
            except (FolderExists, NoSuchFolder) as exc:
                log.warn("Mail folder {server_id} of {user} not moved to {name}: {error}",
                         server_id=existing.server_id, user=user, name=name, error=str(exc))
            continue
        try:
            ours[backend_id] = await store.add_folder(user, parent_id, name, mailbox.eas_type,
                                                      backend_id)
            writes += 1
        except (FolderExists, NoSuchFolder):
            # Most likely a concurrent request added it just now.
            current = {f.backend_id: f for f in await store.list_folders(user)}
            if backend_id in current:
                ours[backend_id] = current[backend_id]
            else:
                log.warn("Mail folder {mailbox} of {user} not added: name taken",
                         mailbox=mailbox.name, user=user)
    return writes


def _subtree(folders: Iterable[Folder], server_id: str) -> set[str]:
    """``server_id`` and the server ids below it."""
    children: dict[str, list[str]] = {}
    for folder in folders:
        children.setdefault(folder.parent_id, []).append(folder.server_id)
    result: set[str] = set()
    pending = [server_id]
    while pending:
        current = pending.pop()
        if current in result:
            continue
        result.add(current)
        pending.extend(children.get(current, ()))
    return result


def _free_name(name: str, taken: set[str]) -> str:
    candidate, number = name, 1
    while candidate in taken:
        candidate = f"{name} ({_LABEL})" if number == 1 else f"{name} ({_LABEL} {number})"
        number += 1
    return candidate


# -- the device's folder commands ----------------------------------------------------


@dataclass(frozen=True)
class MailFolderResult:
    """What a mail folder command did: the FolderCreate/Update/Delete
    ``status``, the folder (created or updated), and the hierarchy revision
    of the device's own change (None when other writes were mixed in, so the
    device may see some of its change again)."""

    status: int
    folder: Folder | None = None
    own_revision: int | None = None


async def _revision(store: Any, user: str) -> int:
    return int(await store.folder_revision(user))


def _own(before: int, after: int) -> int | None:
    return after if after == before + 1 else None


async def create_mail_folder(
    ctx: Any, mail: Any, parent: Folder | None, display_name: str
) -> MailFolderResult:
    """FolderCreate of a mail folder under ``parent`` (None: the top):
    IMAP CREATE (with the hierarchy delimiter), then the folder.  ``parent``
    must be a mail folder.  Statuses: 2 a mailbox of that name exists,
    5 the parent mailbox is gone, 10 a name with the delimiter in it,
    6 the IMAP server failed."""
    user = ctx.request.account
    password = ctx.password or ""
    store: Any = ctx.store
    parent_mailbox = mailbox_of(parent) if parent is not None else None
    if parent is not None and parent_mailbox is None:
        return MailFolderResult(STATUS_SPECIAL)
    try:
        mailboxes = list(await mail.list_folders(user, password))
        delimiter = next((m.delimiter for m in mailboxes if m.delimiter), None)
        if delimiter and delimiter in display_name:
            return MailFolderResult(STATUS_BAD_REQUEST)
        if parent_mailbox is not None and not any(m.name == parent_mailbox for m in mailboxes):
            return MailFolderResult(STATUS_NO_SUCH_PARENT)
        created: MailFolder = await mail.create_folder(user, password, parent_mailbox,
                                                       display_name)
    except MailboxExists:
        return MailFolderResult(STATUS_EXISTS)
    except NoSuchMailbox:
        return MailFolderResult(STATUS_NO_SUCH_PARENT)
    except MailError as exc:
        ctx.log.warn("FolderCreate: IMAP CREATE for {user} failed: {error}", user=user,
                     error=str(exc))
        return MailFolderResult(STATUS_SERVER_ERROR)
    parent_id = parent.server_id if parent is not None else _TOP
    backend_id = mail_backend_id(created.name)
    before = await _revision(store, user)
    try:
        folder = await store.add_folder(user, parent_id, created.display_name, created.eas_type,
                                        backend_id)
    except FolderExists:
        # A concurrent FolderSync added it already, or another folder has the name.
        found = next((f for f in await store.list_folders(user) if f.backend_id == backend_id),
                     None)
        if found is None:
            return MailFolderResult(STATUS_EXISTS)
        return MailFolderResult(STATUS_SUCCESS, found, None)
    except NoSuchFolder:
        return MailFolderResult(STATUS_NO_SUCH_PARENT)
    return MailFolderResult(STATUS_SUCCESS, folder, _own(before, await _revision(store, user)))


async def update_mail_folder(
    ctx: Any, mail: Any, folder: Folder, new_parent: Folder | None, display_name: str
) -> MailFolderResult:
    """FolderUpdate of a mail folder: IMAP RENAME to ``display_name`` under
    ``new_parent`` (None: the top; must be a mail folder, not the folder
    itself nor one below it).  Special folders (Inbox, Drafts, Deleted
    Items, Sent Items, Outbox) give Status 2 (the spec's code for them)."""
    user = ctx.request.account
    password = ctx.password or ""
    store: Any = ctx.store
    mailbox = mailbox_of(folder)
    if mailbox is None or folder.folder_type in MAIL_SPECIAL_TYPES:
        return MailFolderResult(STATUS_EXISTS)
    new_parent_mailbox: str | None = None
    if new_parent is not None:
        new_parent_mailbox = mailbox_of(new_parent)
        if new_parent_mailbox is None:
            return MailFolderResult(STATUS_NO_SUCH_PARENT)
        folders = list(await store.list_folders(user))
        if new_parent.server_id in _subtree(folders, folder.server_id):
            return MailFolderResult(STATUS_NO_SUCH_PARENT)
    new_parent_id = new_parent.server_id if new_parent is not None else _TOP
    if new_parent_id == folder.parent_id and display_name == folder.display_name:
        return MailFolderResult(STATUS_SUCCESS, folder, None)
    try:
        mailboxes = list(await mail.list_folders(user, password))
        delimiter = next((m.delimiter for m in mailboxes if m.delimiter), None)
        if delimiter and delimiter in display_name:
            return MailFolderResult(STATUS_BAD_REQUEST)
        if not any(m.name == mailbox for m in mailboxes):
            return MailFolderResult(STATUS_NO_SUCH_FOLDER)
        if new_parent_mailbox is not None and not any(m.name == new_parent_mailbox
                                                      for m in mailboxes):
            return MailFolderResult(STATUS_NO_SUCH_PARENT)
        renamed: MailFolder = await mail.rename_folder(user, password, mailbox,
                                                       new_parent_mailbox, display_name)
    except MailboxExists:
        return MailFolderResult(STATUS_EXISTS)
    except NoSuchMailbox:
        return MailFolderResult(STATUS_NO_SUCH_FOLDER)
    except MailError as exc:
        ctx.log.warn("FolderUpdate: IMAP RENAME for {user} failed: {error}", user=user,
                     error=str(exc))
        return MailFolderResult(STATUS_SERVER_ERROR)
    return await _rebind(ctx, mail, folder, renamed, new_parent_id, mailbox)


async def _rebind(ctx: Any, mail: Any, folder: Folder, renamed: MailFolder,
                  new_parent_id: str, old_mailbox: str) -> MailFolderResult:
    """The folders table after a RENAME of ``old_mailbox`` to ``renamed``."""
    user = ctx.request.account
    store: Any = ctx.store
    before = await _revision(store, user)
    new_backend = mail_backend_id(renamed.name)
    try:
        updated = await store.update_folder(user, folder.server_id, renamed.display_name,
                                            new_parent_id, backend_id=new_backend)
        own = _own(before, await _revision(store, user))
        # The sub-folders' mailboxes were renamed with it: their ids stay too.
        old_prefix = mail_backend_id(old_mailbox)
        below = old_prefix + (renamed.delimiter or "/")
        for child in await store.list_folders(user):
            if child.server_id != folder.server_id and child.backend_id.startswith(below):
                await store.update_folder(
                    user, child.server_id, child.display_name, child.parent_id,
                    backend_id=new_backend + child.backend_id[len(old_prefix):])
    except FolderExists:
        return MailFolderResult(STATUS_EXISTS)
    except NoSuchFolder:
        return MailFolderResult(STATUS_NO_SUCH_FOLDER)
    return MailFolderResult(STATUS_SUCCESS, updated, own)


async def delete_mail_folder(ctx: Any, mail: Any, folder: Folder) -> MailFolderResult:
    """FolderDelete of a mail folder: IMAP DELETE (its sub-mailboxes
    first), then the folder and its sub-folders.  Special folders give
    Status 3.  A mailbox already gone only loses its folder."""
    user = ctx.request.account
    store: Any = ctx.store
    mailbox = mailbox_of(folder)
    if mailbox is None or folder.folder_type in MAIL_SPECIAL_TYPES:
        return MailFolderResult(STATUS_SPECIAL)
    try:
        await mail.delete_folder(user, ctx.password or "", mailbox)
    except NoSuchMailbox:
        pass  # gone on the server already: the folder goes too
    except MailError as exc:
        ctx.log.warn("FolderDelete: IMAP DELETE for {user} failed: {error}", user=user,
                     error=str(exc))
        return MailFolderResult(STATUS_SERVER_ERROR)
    before = await _revision(store, user)
    try:
        await store.delete_folder(user, folder.server_id)
    except NoSuchFolder:
        return MailFolderResult(STATUS_NO_SUCH_FOLDER)
    return MailFolderResult(STATUS_SUCCESS, None, _own(before, await _revision(store, user)))
