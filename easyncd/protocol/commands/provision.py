"""``Cmd=Provision`` (MS-ASPROV): policy download and acknowledgement, remote wipe.

Phase 1 (initial request, ``Policy`` with only ``PolicyType``): the server
answers with a temporary policy key and the policy document.  Phase 2
(acknowledgement, ``Policy`` with ``PolicyKey`` and ``Status``): if the key is
the temporary one, the server answers with the final key that the device
then sends with every request.  A pending (or already acknowledged) wipe
turns any Provision into a ``RemoteWipe`` (or, in 16.1 for an account-only
wipe, ``AccountOnlyRemoteWipe``) directive; the device's acknowledgement
marks the wipe done.
"""
from __future__ import annotations

import secrets
from typing import Any

from easyncd.protocol.commands.base import Command
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.policy import policy_data, policy_type_for
from easyncd.protocol.status import (
    HTTP_FORBIDDEN,
    ClientPolicyStatus,
    CommonStatus,
    PolicyStatus,
    ProvisionStatus,
    RemoteWipeStatus,
)
from easyncd.protocol.versions import at_least, status_in_body
from easyncd.store.interfaces import WIPE_ACCOUNT, WIPE_NONE, DeviceAccount
from easyncd.wbxml import Element

NS = "Provision:"
SETTINGS_NS = "Settings:"

#: The Settings:DeviceInformation/Set fields kept by the store.
DEVICE_INFO_FIELDS = (
    "Model", "IMEI", "FriendlyName", "OS", "OSLanguage", "PhoneNumber",
    "MobileOperator", "UserAgent", "EnableOutboundSMS",
)

#: From this version the initial request MUST carry DeviceInformation (MS-ASPROV 2.2.2.53).
DEVICE_INFO_REQUIRED_FROM = "14.1"
#: AccountOnlyRemoteWipe exists from this version on (MS-ASPROV 2.2.2.1).
ACCOUNT_WIPE_FROM = "16.1"


def new_policy_key() -> int:
    """A random 32-bit unsigned policy key, never 0."""
    return secrets.randbelow(0xFFFFFFFF) + 1


def wipe_active(account: DeviceAccount | None) -> bool:
    """Whether ``account`` must be told to wipe (pending, or wiped and back)."""
    return account is not None and account.wipe_state != WIPE_NONE


def account_wipe_unsupported(account: DeviceAccount | None, version: str) -> bool:
    """An account-only wipe is due but ``version`` cannot express it: such a
    device is refused (HTTP 403) rather than wiped completely."""
    return (
        wipe_active(account)
        and account is not None
        and account.wipe_kind == WIPE_ACCOUNT
        and not at_least(version, ACCOUNT_WIPE_FROM)
    )


def _answer(status: int, *children: Element) -> CommandResponse:
    root = Element(NS + "Provision")
    root.add(NS + "Status", str(status))
    root.children.extend(children)
    return CommandResponse(body=root, status=str(status))


class ProvisionCommand(Command):
    """``Cmd=Provision``."""

    name = "Provision"
    needs_provisioning = False
    needs_body = True

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        """Answer one Provision request (either phase, or a wipe acknowledgement)."""
        version = ctx.request.protocol_version
        if body is None or body.tag != NS + "Provision":
            return _answer(ProvisionStatus.ProtocolError)
        account = ctx.account
        if account_wipe_unsupported(account, version):
            return CommandResponse(http_status=HTTP_FORBIDDEN, status=str(HTTP_FORBIDDEN))
        for tag in ("RemoteWipe", "AccountOnlyRemoteWipe"):
            acknowledgement = body.find(NS + tag)
            if acknowledgement is not None:
                return await self._wipe_acknowledged(ctx, acknowledgement)
        if wipe_active(account):
            return self._wipe_directive(ctx, account)
        policy = body.find(NS + "Policies/" + NS + "Policy")
        if policy is None:
            return _answer(ProvisionStatus.ProtocolError)
        policy_type = policy.findtext(NS + "PolicyType") or ""
        if policy_type != policy_type_for(version):
            return _answer(ProvisionStatus.Success, self._policies(
                policy_type, PolicyStatus.UnknownPolicyType))
        if policy.find(NS + "PolicyKey") is None and policy.find(NS + "Status") is None:
            return await self._initial(ctx, body, policy_type)
        return await self._acknowledge(ctx, policy, policy_type)

    # -- phase 1 -------------------------------------------------------------------------

    async def _initial(self, ctx: CommandContext, body: Element, policy_type: str) -> CommandResponse:
        req = ctx.request
        version = req.protocol_version
        store: Any = ctx.store
        now = _now(ctx)
        children: list[Element] = []
        if at_least(version, DEVICE_INFO_REQUIRED_FROM):
            info = body.find(SETTINGS_NS + "DeviceInformation")
            if info is None:
                return _answer(CommonStatus.DeviceInformationRequired)
        account = await store.register_account(
            req.device_id, req.account, req.device_type, req.user_agent, now)
        ctx.account = account
        if at_least(version, DEVICE_INFO_REQUIRED_FROM):
            await store.set_device_info(req.device_id, _device_info(body))
            reply_info = Element(SETTINGS_NS + "DeviceInformation")
            reply_info.add(SETTINGS_NS + "Status", "1")
            children.append(reply_info)
        temporary = new_policy_key()
        await store.begin_provision(req.device_id, req.account, temporary)
        ctx.log.info(
            "Provision phase 1 for {user} on {device_id} ({version})",
            user=req.account, device_id=req.device_id, version=version,
        )
        policy = Element(NS + "Policy")
        policy.add(NS + "PolicyType", policy_type)
        if ctx.config.policy.mode == "none":
            policy.add(NS + "Status", str(PolicyStatus.NoPolicy.value))
            policy.add(NS + "PolicyKey", str(temporary))
        else:
            policy.add(NS + "Status", str(PolicyStatus.Success.value))
            policy.add(NS + "PolicyKey", str(temporary))
            policy.append(policy_data(ctx.config.policy, version))
        root = Element(NS + "Provision", children=children)
        root.add(NS + "Status", str(ProvisionStatus.Success.value))
        root.add(NS + "Policies").append(policy)
        return CommandResponse(body=root, status=str(ProvisionStatus.Success.value))

    # -- phase 2 -------------------------------------------------------------------------

    async def _acknowledge(
        self, ctx: CommandContext, policy: Element, policy_type: str
    ) -> CommandResponse:
        req = ctx.request
        store: Any = ctx.store
        key = _parse_key(policy.findtext(NS + "PolicyKey"))
        if key is None:
            key = req.policy_key or _parse_key(req.parameters.get("PolicyKey"))
        client_status = (policy.findtext(NS + "Status") or "").strip()
        config = ctx.config.policy
        if (
            client_status != str(ClientPolicyStatus.Applied.value)
            and config.mode == "force"
            and not config.allow_non_provisionable_devices
        ):
            ctx.log.info(
                "{device_id} of {user} did not apply the policy (status {status})",
                device_id=req.device_id, user=req.account, status=client_status,
            )
            if status_in_body(req.protocol_version):
                return _answer(CommonStatus.DeviceNotFullyProvisionable)
            return CommandResponse(http_status=HTTP_FORBIDDEN, status=str(HTTP_FORBIDDEN))
        final = new_policy_key()
        matched = False
        if key is not None:
            matched = await store.confirm_provision(
                req.device_id, req.account, key, final, _now(ctx))
        if not matched:
            return _answer(ProvisionStatus.Success, self._policies(
                policy_type, PolicyStatus.WrongPolicyKey))
        ctx.account = await store.get_account(req.device_id, req.account)
        ctx.log.info(
            "{device_id} of {user} provisioned", device_id=req.device_id, user=req.account)
        return _answer(ProvisionStatus.Success, self._policies(
            policy_type, PolicyStatus.Success, final))

    @staticmethod
    def _policies(policy_type: str, status: int, key: int | None = None) -> Element:
        policies = Element(NS + "Policies")
        policy = policies.add(NS + "Policy")
        policy.add(NS + "PolicyType", policy_type)
        policy.add(NS + "Status", str(status))
        if key is not None:
            policy.add(NS + "PolicyKey", str(key))
        return policies

    # -- remote wipe -------------------------------------------------------------------------

    @staticmethod
    def _directive_tag(account: DeviceAccount | None, version: str) -> str:
        if (
            account is not None
            and account.wipe_kind == WIPE_ACCOUNT
            and at_least(version, ACCOUNT_WIPE_FROM)
        ):
            return NS + "AccountOnlyRemoteWipe"
        return NS + "RemoteWipe"

    def _wipe_directive(self, ctx: CommandContext, account: DeviceAccount | None) -> CommandResponse:
        req = ctx.request
        ctx.log.warn(
            "Sending a remote wipe to {device_id} of {user}",
            device_id=req.device_id, user=req.account,
        )
        return _answer(
            ProvisionStatus.Success,
            Element(self._directive_tag(account, req.protocol_version)),
        )

    async def _wipe_acknowledged(self, ctx: CommandContext, element: Element) -> CommandResponse:
        req = ctx.request
        account = ctx.account
        if not wipe_active(account):
            return _answer(ProvisionStatus.ProtocolError)
        status = (element.findtext(NS + "Status") or "").strip()
        if status != str(RemoteWipeStatus.Success.value):
            ctx.log.warn(
                "{device_id} of {user} reports a failed wipe (status {status})",
                device_id=req.device_id, user=req.account, status=status,
            )
            return _answer(
                ProvisionStatus.ProtocolError,
                Element(self._directive_tag(account, req.protocol_version)),
            )
        store: Any = ctx.store
        await store.acknowledge_wipe(req.device_id, req.account, _now(ctx))
        ctx.account = await store.get_account(req.device_id, req.account)
        ctx.log.warn(
            "{device_id} of {user} acknowledged the remote wipe",
            device_id=req.device_id, user=req.account,
        )
        return _answer(ProvisionStatus.Success)


def _now(ctx: CommandContext) -> float:
    clock: Any = ctx.clock  # zope interface: mypy cannot see its methods
    return float(clock.seconds())


def _parse_key(text: str | None) -> int | None:
    if text is None:
        return None
    stripped = text.strip()
    if not stripped.isdigit():
        return None
    key = int(stripped)
    return key if 0 < key <= 0xFFFFFFFF else None


def _device_info(body: Element) -> dict[str, str]:
    info: dict[str, str] = {}
    for field in DEVICE_INFO_FIELDS:
        value = body.findtext(
            SETTINGS_NS + "DeviceInformation/" + SETTINGS_NS + "Set/" + SETTINGS_NS + field)
        if value is not None:
            info[field] = value
    return info
