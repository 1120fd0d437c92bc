"""Sync (and GetItemEstimate) of mail folders (MS-ASCMD 2.2.1.21, MS-ASEMAIL).

A collection whose folder's backend id starts with ``imap:`` is synced here;
everything else stays on the groupware engine (:mod:`easyncd.protocol.sync`).
The request model, response rendering and key handling are the groupware
Sync's; what differs is the state (:mod:`.state`), the page pipeline
(:mod:`.fetch`), the device's commands (:mod:`.apply`, :mod:`.drafts`) and
the engine (:mod:`.engine`).

Entry points for the commands:

* :func:`sync_mail_collection` -- one Collection of a Sync, or None when it
  is not a mail folder;
* :func:`estimate_mail_collection` -- GetItemEstimate, or None likewise;
* :func:`prepare_mail_wait` -- before a Sync's Wait / HeartbeatInterval:
  makes the IMAP watch (:func:`easyncd.protocol.mailpush.watch_mail`) and tells
  whether mail arrived since the folders were looked at.

Importing the package installs the state reader Ping uses
(:func:`easyncd.protocol.mailpush.set_point_reader`).
"""
from __future__ import annotations

from typing import Sequence

from easyncd.backends.interfaces import FolderPoint, MailError
from easyncd.protocol import mailpush
from easyncd.protocol.context import CommandContext
from easyncd.protocol.mailsync.engine import (
    MailCollectionSync,
    MailEnv,
    MailResult,
    mail_folder,
)
from easyncd.protocol.mailsync.state import MailSyncState
from easyncd.protocol.sync.constants import SyncStatus
from easyncd.protocol.sync.engine import CollectionResult
from easyncd.protocol.sync.request import CollectionRequest

__all__ = ["estimate_mail_collection", "prepare_mail_wait", "read_point",
           "sync_mail_collection"]


async def sync_mail_collection(ctx: CommandContext, creq: CollectionRequest, budget: int,
                               now: float) -> CollectionResult | None:
    """Sync one collection if it is a mail folder (else None), sending at
    most ``budget`` server commands."""
    folder = await mail_folder(ctx, creq.collection_id)
    if folder is None:
        return None
    backend = ctx.services.get("mail")
    if backend is None:
        ctx.log.error("Sync: mail folder {collection} but no mail backend",
                      collection=creq.collection_id)
        return MailResult(creq.collection_id, SyncStatus.ServerError, str(creq.sync_key or 0),
                          creq.eas_class)
    env = MailEnv(ctx=ctx, backend=backend, now=now)
    return await MailCollectionSync(env, creq, folder).run(budget)


async def estimate_mail_collection(ctx: CommandContext, creq: CollectionRequest,
                                   now: float) -> tuple[int, int] | None:
    """GetItemEstimate (status, estimate) of a mail folder; None when the
    collection is not one."""
    folder = await mail_folder(ctx, creq.collection_id)
    if folder is None:
        return None
    backend = ctx.services.get("mail")
    if backend is None:
        return 2, 0
    env = MailEnv(ctx=ctx, backend=backend, now=now)
    try:
        return await MailCollectionSync(env, creq, folder).estimate()
    except MailError as exc:
        ctx.log.warn("GetItemEstimate: IMAP error for {user}: {error}",
                     user=ctx.request.account, error=str(exc))
        return 2, 0


async def prepare_mail_wait(ctx: CommandContext, results: Sequence[CollectionResult],
                            hold: float, recheck: bool = True) -> bool:
    """Before a Sync waits: watch the mail folders among ``results`` (IDLE,
    notifying the hub's ``imap:<mailbox>`` topics) and, with ``recheck``,
    tell whether one of them changed since it was synced (mail that arrived
    before the watch was in place): True means do not wait, sync again."""
    mail = [r for r in results if isinstance(r, MailResult) and r.mailbox]
    if not mail:
        return False
    await mailpush.watch_mail(ctx, [r.mailbox for r in mail if r.mailbox], hold=hold)
    backend = ctx.services.get("mail")
    if not recheck or backend is None:
        return False
    for result in mail:
        point: FolderPoint | None = result.point
        if point is None or result.mailbox is None:
            continue
        try:
            current = await backend.folder_state(ctx.request.account, ctx.password,
                                                 result.mailbox)
        except MailError:
            continue
        if mailpush.point_behind(point, current):
            return True
    return False


def read_point(text: str | None) -> tuple[FolderPoint | None, bool]:
    """The point a mail Sync state stands for and whether it has unsent changes."""
    state = MailSyncState.from_text(text)
    if state is None or state.mail is None:
        return None, False
    return state.mail.point, state.has_pending


mailpush.set_point_reader(read_point)
