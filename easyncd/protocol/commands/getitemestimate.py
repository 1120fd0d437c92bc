"""GetItemEstimate (MS-ASCMD 2.2.1.9): how many items a Sync with the given
key would send, computed by the Sync engine without writing anything.

Request shapes: 2.5 and 12.x ``Class? CollectionId airsync:FilterType
airsync:SyncKey``; 14.0+ ``airsync:SyncKey CollectionId
airsync:ConversationMode? airsync:Options*`` (FilterType, MaxItems inside).
Status: 1 success, 2 unknown collection, 3 sync state not primed (key 0 or
no Sync yet), 4 wrong sync key.
"""
from __future__ import annotations

from typing import Any, Mapping

from easyncd.protocol.codecs.base import ItemCodec
from easyncd.protocol.commands.base import Command
from easyncd.protocol.synckeys import parse_sync_key
from easyncd.protocol.commands.sync import default_codecs
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.mailsync import estimate_mail_collection
from easyncd.protocol.status import HTTP_BAD_REQUEST, CommonStatus
from easyncd.protocol.sync.constants import AIRSYNC
from easyncd.protocol.sync.engine import CollectionSync, SyncEnv
from easyncd.protocol.sync.request import (
    CollectionRequest,
    SyncOptions,
    SyncProtocolError,
    parse_options,
)
from easyncd.protocol.versions import at_least, status_in_body
from easyncd.wbxml import Element

NS = "GetItemEstimate:"

STATUS_SUCCESS = 1
STATUS_INVALID_COLLECTION = 2
STATUS_NOT_PRIMED = 3
STATUS_INVALID_KEY = 4


def parse_estimate_collection(element: Element, version: str) -> tuple[CollectionRequest, str | None]:
    """One requested collection (any version's shape) and its Class, if sent."""
    collection_id = element.findtext(NS + "CollectionId")
    key_text = element.findtext(AIRSYNC + "SyncKey")
    if not collection_id or key_text is None:
        raise SyncProtocolError("Collection without CollectionId or SyncKey")
    eas_class = element.findtext(NS + "Class")
    options: SyncOptions | None
    if at_least(version, "14.0"):
        options = parse_options(element.findall(AIRSYNC + "Options"), version, None)
    else:
        filter_text = element.findtext(AIRSYNC + "FilterType")
        try:
            filter_type = int(filter_text) if filter_text else 0
        except ValueError:
            raise SyncProtocolError(f"FilterType {filter_text!r}") from None
        options = SyncOptions(filter_type=filter_type) if filter_text else None
    return CollectionRequest(collection_id, parse_sync_key(key_text), options=options), eas_class


class GetItemEstimateCommand(Command):
    """``Cmd=GetItemEstimate``."""

    name = "GetItemEstimate"

    def __init__(self, codecs: Mapping[str, ItemCodec] | None = None) -> None:
        self._codecs = codecs

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        """Answer one GetItemEstimate request."""
        version = ctx.request.protocol_version
        backend = ctx.services.get("groupware")
        try:
            requested = self._parse(body, version)
        except SyncProtocolError as exc:
            ctx.log.info("GetItemEstimate: bad request from {device_id}: {error}",
                         device_id=ctx.request.device_id, error=str(exc))
            return _bad_request(version)
        codecs = self._codecs if self._codecs is not None else default_codecs()
        clock: Any = ctx.clock
        env = SyncEnv(ctx=ctx, backend=backend, codecs=codecs, now=float(clock.seconds()))
        root = Element(NS + "GetItemEstimate")
        for creq, eas_class in requested:
            mail = await estimate_mail_collection(ctx, creq, env.now)
            if mail is not None:
                status, estimate = mail
            elif backend is None:
                status, estimate = STATUS_INVALID_COLLECTION, 0
            else:
                status, estimate = await CollectionSync(env, creq).estimate()
            response = root.add(NS + "Response")
            response.add(NS + "Status", str(status))
            collection = response.add(NS + "Collection")
            if eas_class and not at_least(version, "14.0"):
                collection.add(NS + "Class", eas_class)
            collection.add(NS + "CollectionId", creq.collection_id)
            if status == STATUS_SUCCESS:
                collection.add(NS + "Estimate", str(estimate))
        first = root.findtext(NS + "Response/" + NS + "Status") or str(STATUS_SUCCESS)
        return CommandResponse(body=root, status=first)

    @staticmethod
    def _parse(body: Element | None, version: str) -> list[tuple[CollectionRequest, str | None]]:
        if body is None or body.tag != NS + "GetItemEstimate":
            raise SyncProtocolError("not a GetItemEstimate request")
        collections = body.findall(NS + "Collections/" + NS + "Collection")
        if not collections:
            raise SyncProtocolError("no Collection")
        return [parse_estimate_collection(c, version) for c in collections]


def _bad_request(version: str) -> CommandResponse:
    if status_in_body(version):
        root = Element(NS + "GetItemEstimate")
        root.add(NS + "Status", str(int(CommonStatus.InvalidXML)))
        return CommandResponse(body=root, status=str(int(CommonStatus.InvalidXML)))
    return CommandResponse(http_status=HTTP_BAD_REQUEST, status=str(HTTP_BAD_REQUEST))
