"""The Sync response, in the schema's element order:
Collection = Class? SyncKey CollectionId Status Commands? Responses? MoreAvailable?
"""
from __future__ import annotations

from typing import Sequence

from easyncd.protocol.sync.constants import AIRSYNC, SyncStatus
from easyncd.protocol.sync.engine import CollectionResult, OutgoingCommand
from easyncd.protocol.sync.state import OP_ADD, OP_CHANGE, OP_DELETE, OP_SOFT_DELETE
from easyncd.protocol.versions import at_least
from easyncd.wbxml import Element

_COMMAND_TAGS = {
    OP_ADD: AIRSYNC + "Add",
    OP_CHANGE: AIRSYNC + "Change",
    OP_DELETE: AIRSYNC + "Delete",
    OP_SOFT_DELETE: AIRSYNC + "SoftDelete",
}


def status_only(status: int, limit: int | None = None) -> Element:
    """``<Sync><Status/></Sync>`` (request-level errors), with Limit for 14."""
    root = Element(AIRSYNC + "Sync")
    root.add(AIRSYNC + "Status", str(int(status)))
    if limit is not None:
        root.add(AIRSYNC + "Limit", str(limit))
    return root


def command_element(command: OutgoingCommand) -> Element:
    """One server command."""
    element = Element(_COMMAND_TAGS[command.op])
    element.add(AIRSYNC + "ServerId", command.server_id)
    if command.application_data is not None and command.op in (OP_ADD, OP_CHANGE):
        element.append(command.application_data)
    return element


def collection_element(result: CollectionResult, version: str) -> Element:
    """One Collection of the response."""
    element = Element(AIRSYNC + "Collection")
    if result.eas_class and not at_least(version, "14.0"):
        element.add(AIRSYNC + "Class", result.eas_class)
    element.add(AIRSYNC + "SyncKey", result.sync_key)
    element.add(AIRSYNC + "CollectionId", result.collection_id)
    element.add(AIRSYNC + "Status", str(int(result.status)))
    if result.status != SyncStatus.Success:
        return element
    if result.commands:
        commands = element.add(AIRSYNC + "Commands")
        for command in result.commands:
            commands.append(command_element(command))
    if result.responses:
        responses = element.add(AIRSYNC + "Responses")
        for response in result.responses:
            responses.append(response)
    if result.more_available:
        element.add(AIRSYNC + "MoreAvailable")
    return element


def sync_response(results: Sequence[CollectionResult], version: str) -> Element:
    """The whole Sync response."""
    root = Element(AIRSYNC + "Sync")
    collections = root.add(AIRSYNC + "Collections")
    for result in results:
        collections.append(collection_element(result, version))
    return root
