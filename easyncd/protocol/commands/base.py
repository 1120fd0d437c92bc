"""The base of every EAS command."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.wbxml import Element


class Command(ABC):
    """One EAS command (MS-ASCMD).  Subclasses set :attr:`name` and implement
    :meth:`run`; the dispatcher (``easyncd.protocol.dispatch``) has already
    checked the version, the policy key and pending wipes, and decoded the body.
    """

    #: The ``Cmd`` value of the query, e.g. ``"FolderSync"``.
    name: ClassVar[str] = ""
    #: Whether the command is refused without a valid policy key (Provision: no).
    needs_provisioning: ClassVar[bool] = True
    #: Whether a request body is required (WBXML).
    needs_body: ClassVar[bool] = True
    #: Versions older than this send a body that is not WBXML (2.5/12.x
    #: SendMail & co. send raw MIME): the dispatcher hands it to :meth:`run_raw`.
    raw_body_before: ClassVar[str | None] = None
    #: Services (``ctx.services`` keys) without which the command cannot work;
    #: OPTIONS does not advertise it when one is missing.
    requires: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        """Carry the command out and build its answer."""

    async def run_raw(self, ctx: CommandContext, body: bytes) -> CommandResponse:
        """Carry out a request whose body is not WBXML (see :attr:`raw_body_before`)."""
        raise TypeError(f"{self.name} takes no raw body")
