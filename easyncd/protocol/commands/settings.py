"""Settings (MS-ASCMD 2.2.1.18): device information, the user's addresses,
and the properties easyncd does not offer yet.

One request may hold several properties; they are carried out in order and
answered in the same order, each with its own Status, under a top Status.
A request with an element that is not a Settings property gets top Status 2
and nothing is carried out.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from easyncd.protocol.commands.base import Command
from easyncd.protocol.commands.foldersync import ensure_account
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.status import SettingsStatus
from easyncd.protocol.versions import at_least
from easyncd.wbxml import Element

NS = "Settings:"
RM_NS = "RightsManagement:"

# Settings Status values (MS-ASCMD 2.2.3.177.15), as the text we send.
STATUS_SUCCESS = str(int(SettingsStatus.Success))
STATUS_PROTOCOL_ERROR = str(int(SettingsStatus.ProtocolError))
STATUS_ACCESS_DENIED = str(int(SettingsStatus.AccessDenied))
STATUS_INVALID_ARGUMENTS = str(int(SettingsStatus.InvalidArguments))
STATUS_DENIED_BY_POLICY = str(int(SettingsStatus.DeniedByPolicy))

#: What easyncd answers for properties it does not keep.  Oof needs the mail
#: backend's vacation support (a later issue): "access denied" says the server
#: will not do it, without pretending it did.  DevicePassword: the server does
#: not store recovery passwords; 7 is the spec's "recovery is not enabled".
UNSUPPORTED_STATUS = {
    "Oof": STATUS_ACCESS_DENIED,
    "DevicePassword": STATUS_DENIED_BY_POLICY,
}

#: The DeviceInformation/Set children we keep (MS-ASCMD 2.2.3.167).
DEVICE_INFO_FIELDS = (
    "Model", "IMEI", "FriendlyName", "OS", "OSLanguage", "PhoneNumber",
    "MobileOperator", "UserAgent", "EnableOutboundSMS",
)

#: DeviceInformation values are at most 1024 characters (Settings.xsd).
_MAX_INFO_LENGTH = 1024



def user_addresses(ctx: CommandContext) -> list[str]:
    """The user's email addresses: the account name if it is one, else
    ``account@[auth] default_domain`` if a domain is set, else none."""
    account = ctx.request.account
    if "@" in account:
        return [account]
    domain = ctx.config.auth.default_domain
    if domain:
        return [f"{account}@{domain}"]
    return []


class SettingsCommand(Command):
    """``Cmd=Settings`` (12.0 and later)."""

    name = "Settings"

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        """Carry out each property of the request in order."""
        if body is None or body.tag != NS + "Settings":
            return _top_only(STATUS_PROTOCOL_ERROR)
        handlers: list[tuple[Element, Callable[[CommandContext, Element], Awaitable[Element]]]]
        handlers = []
        for child in body.children:
            name = child.tag[len(NS):] if child.tag.startswith(NS) else None
            handler = _HANDLERS.get(name or "")
            if handler is None:
                ctx.log.info("Settings: unknown property {tag} from {device_id}",
                             tag=child.tag, device_id=ctx.request.device_id)
                return _top_only(STATUS_PROTOCOL_ERROR)
            handlers.append((child, handler))
        root = Element(NS + "Settings")
        root.add(NS + "Status", STATUS_SUCCESS)
        for child, handler in handlers:
            root.append(await handler(ctx, child))
        return CommandResponse(body=root, status=STATUS_SUCCESS)


# -- the properties -----------------------------------------------------------------


async def _device_information(ctx: CommandContext, request: Element) -> Element:
    answer = Element(NS + "DeviceInformation")
    setter = _only_child(request, "Set")
    if setter is None:
        answer.add(NS + "Status", STATUS_PROTOCOL_ERROR)
        return answer
    info: dict[str, str] = {}
    for field in setter.children:
        name = field.tag[len(NS):] if field.tag.startswith(NS) else ""
        if name not in DEVICE_INFO_FIELDS or field.children or name in info:
            answer.add(NS + "Status", STATUS_PROTOCOL_ERROR)
            return answer
        value = _text(field)
        if len(value) > _MAX_INFO_LENGTH:
            answer.add(NS + "Status", STATUS_INVALID_ARGUMENTS)
            return answer
        info[name] = value
    await ensure_account(ctx)
    store: Any = ctx.store  # a zope interface: mypy cannot see its methods
    await store.set_device_info(ctx.request.device_id, info)
    ctx.log.info("Settings: device information of {device_id} saved ({fields})",
                 device_id=ctx.request.device_id, fields=",".join(sorted(info)))
    answer.add(NS + "Status", STATUS_SUCCESS)
    return answer


async def _user_information(ctx: CommandContext, request: Element) -> Element:
    answer = Element(NS + "UserInformation")
    getter = _only_child(request, "Get")
    if getter is None or getter.children:
        answer.add(NS + "Status", STATUS_PROTOCOL_ERROR)
        return answer
    answer.add(NS + "Status", STATUS_SUCCESS)
    addresses = user_addresses(ctx)
    get = answer.add(NS + "Get")
    if not at_least(ctx.request.protocol_version, "14.1"):
        # 12.0 - 14.0: Get/EmailAddresses/SMTPAddress+.
        if addresses:
            emails = get.add(NS + "EmailAddresses")
            for address in addresses:
                emails.add(NS + "SMTPAddress", address)
        return answer
    # 14.1 and later: Get/Accounts/Account (the primary account has no AccountId).
    account = get.add(NS + "Accounts").add(NS + "Account")
    account.add(NS + "AccountName", addresses[0] if addresses else ctx.request.account)
    account.add(NS + "UserDisplayName", ctx.request.account)
    if addresses:
        emails = account.add(NS + "EmailAddresses")
        for address in addresses:
            emails.add(NS + "SMTPAddress", address)
        emails.add(NS + "PrimarySmtpAddress", addresses[0])
    return answer


async def _rights_management(ctx: CommandContext, request: Element) -> Element:
    answer = Element(NS + "RightsManagementInformation")
    getter = _only_child(request, "Get")
    if getter is None or getter.children or not at_least(ctx.request.protocol_version, "14.1"):
        answer.add(NS + "Status", STATUS_PROTOCOL_ERROR)
        return answer
    # easyncd has no rights-management templates: an empty list (MS-ASRM).
    answer.add(NS + "Status", STATUS_SUCCESS)
    answer.add(NS + "Get").add(RM_NS + "RightsManagementTemplates")
    return answer


async def _oof(ctx: CommandContext, request: Element) -> Element:
    answer = Element(NS + "Oof")
    if _only_child(request, "Get") is None and _only_child(request, "Set") is None:
        answer.add(NS + "Status", STATUS_PROTOCOL_ERROR)
    else:
        answer.add(NS + "Status", UNSUPPORTED_STATUS["Oof"])
    return answer


async def _device_password(ctx: CommandContext, request: Element) -> Element:
    answer = Element(NS + "DevicePassword")
    setter = _only_child(request, "Set")
    if setter is None or setter.find(NS + "Password") is None:
        answer.add(NS + "Status", STATUS_PROTOCOL_ERROR)
    else:
        answer.add(NS + "Status", UNSUPPORTED_STATUS["DevicePassword"])
    return answer


_HANDLERS: dict[str, Callable[[CommandContext, Element], Awaitable[Element]]] = {
    "Oof": _oof,
    "DevicePassword": _device_password,
    "DeviceInformation": _device_information,
    "UserInformation": _user_information,
    "RightsManagementInformation": _rights_management,
}


# -- helpers ----------------------------------------------------------------------------


def _only_child(element: Element, name: str) -> Element | None:
    """The single child ``Settings:<name>`` if it is the only child, else None."""
    if len(element.children) != 1 or element.children[0].tag != NS + name:
        return None
    return element.children[0]


def _text(element: Element) -> str:
    value = element.text
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _top_only(status: str) -> CommandResponse:
    root = Element(NS + "Settings")
    root.add(NS + "Status", status)
    return CommandResponse(body=root, status=status)
