"""The command registry: ``Cmd`` value -> :class:`~easyncd.protocol.commands.base.Command`.

Only commands that really work are registered; OPTIONS advertises exactly
these (:func:`implemented_commands`), and the dispatcher answers any other
EAS command with "command not supported".
"""
from __future__ import annotations

from typing import Iterable

from easyncd.protocol.commands.base import Command
from easyncd.protocol.commands.find import FindCommand
from easyncd.protocol.commands.folderops import (
    FolderCreateCommand,
    FolderDeleteCommand,
    FolderUpdateCommand,
)
from easyncd.protocol.commands.foldersync import FolderSyncCommand
from easyncd.protocol.commands.getattachment import GetAttachmentCommand
from easyncd.protocol.commands.getitemestimate import GetItemEstimateCommand
from easyncd.protocol.commands.itemoperations import ItemOperationsCommand
from easyncd.protocol.commands.meetingresponse import MeetingResponseCommand
from easyncd.protocol.commands.moveitems import MoveItemsCommand
from easyncd.protocol.commands.ping import PingCommand
from easyncd.protocol.commands.provision import ProvisionCommand
from easyncd.protocol.commands.resolverecipients import ResolveRecipientsCommand
from easyncd.protocol.commands.search import SearchCommand
from easyncd.protocol.commands.sendmail import (
    SendMailCommand,
    SmartForwardCommand,
    SmartReplyCommand,
)
from easyncd.protocol.commands.settings import SettingsCommand
from easyncd.protocol.commands.sync import SyncCommand
from easyncd.protocol.commands.validatecert import ValidateCertCommand
from easyncd.protocol.versions import COMMAND_VERSIONS

#: Cmd -> command class.
COMMANDS: dict[str, type[Command]] = {
    cls.name: cls
    for cls in (
        ProvisionCommand, FolderSyncCommand, SettingsCommand, FolderCreateCommand,
        FolderUpdateCommand, FolderDeleteCommand, SyncCommand, GetItemEstimateCommand,
        PingCommand, MoveItemsCommand, ItemOperationsCommand, SendMailCommand,
        SmartReplyCommand, SmartForwardCommand, SearchCommand, FindCommand,
        MeetingResponseCommand, GetAttachmentCommand, ResolveRecipientsCommand,
        ValidateCertCommand,
    )
}


def implemented_commands(services: Iterable[str] | None = None) -> list[str]:
    """The registered commands, in MS-ASCMD table order (for
    ``MS-ASProtocolCommands``); with ``services`` (the names the daemon
    runs), only those whose required services are there."""
    available = None if services is None else frozenset(services)
    return [name for name in COMMAND_VERSIONS if name in COMMANDS
            and (available is None or available.issuperset(COMMANDS[name].requires))]


__all__ = ["COMMANDS", "Command", "implemented_commands"]
