"""GetAttachment (MS-ASCMD 2.2.1.7, protocol 2.5 to 12.1).

The query's ``AttachmentName`` is the attachment's FileReference (what Sync
put in ``Email:AttName`` / ``AirSyncBase:FileReference``).  The answer is the
attachment's decoded octets with its Content-Type, streamed from the IMAP
server (:func:`easyncd.protocol.mailitems.stream_attachment`), never held
whole.  An unknown or deleted attachment is HTTP 500 (what MS-ASCMD says the
server returns for an attachment deleted on the server), a missing name 400,
an unreachable mail server 503.  From 14.0 the dispatcher answers "not in
this version" before this command runs.
"""
from __future__ import annotations

from twisted.internet.defer import Deferred

from easyncd.backends.interfaces import MailBackendUnavailable, MailError
from easyncd.protocol.commands.base import Command
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.mailitems import (
    AttachmentProblem,
    FetchStatus,
    WriteFn,
    prepare_attachment,
    stream_attachment,
)
from easyncd.protocol.status import HTTP_BAD_REQUEST, HTTP_SERVER_ERROR, HTTP_UNAVAILABLE
from easyncd.wbxml import Element


class GetAttachmentCommand(Command):
    """``Cmd=GetAttachment&AttachmentName=<file reference>``."""

    name = "GetAttachment"
    needs_body = False
    requires = ("mail",)

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        """Stream the attachment, or answer with the HTTP code of the problem."""
        reference = (ctx.request.parameters.get("AttachmentName") or "").strip()
        if not reference:
            return CommandResponse(http_status=HTTP_BAD_REQUEST, status=str(HTTP_BAD_REQUEST))
        try:
            source = await prepare_attachment(ctx, reference)
        except AttachmentProblem as problem:
            code = HTTP_UNAVAILABLE if problem.status == FetchStatus.ServerError \
                else HTTP_SERVER_ERROR
            ctx.log.info("GetAttachment {reference} for {user}: {error}",
                         reference=reference, user=ctx.request.account, error=str(problem))
            return CommandResponse(http_status=code, status=str(code))
        except MailBackendUnavailable as exc:
            ctx.log.warn("GetAttachment for {user}: mail server unavailable: {error}",
                         user=ctx.request.account, error=str(exc))
            return CommandResponse(http_status=HTTP_UNAVAILABLE, status=str(HTTP_UNAVAILABLE))
        except MailError as exc:
            ctx.log.warn("GetAttachment {reference} for {user} failed: {error}",
                         reference=reference, user=ctx.request.account, error=str(exc))
            return CommandResponse(http_status=HTTP_SERVER_ERROR, status=str(HTTP_SERVER_ERROR))

        def stream(write: WriteFn) -> Deferred[int]:
            return Deferred.fromCoroutine(stream_attachment(ctx, source, write))

        return CommandResponse(headers={"Content-Type": source.content_type},
                               stream=stream, stream_length=source.length, status="200")


__all__ = ["GetAttachmentCommand"]
