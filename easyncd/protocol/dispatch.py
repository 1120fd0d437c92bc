"""Route one EAS request to its command, after the checks every command shares.

In order: the protocol version, whether the command exists (in this version,
and in easyncd), the account's remote wipe, the provisioning gate, the body.
Before protocol 14.0 refusals are HTTP codes (400, 403, 449, 501); from 14.0
they are the command's own top element with a common Status (MS-ASCMD 2.2.2).

The HTTP layer calls ``Deferred.fromCoroutine(dispatch(ctx, body))`` and
encodes ``response.body``.
"""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError

from easyncd.protocol.commands import COMMANDS
from easyncd.protocol.commands.provision import account_wipe_unsupported, wipe_active
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.status import (
    HTTP_BEFORE_14,
    HTTP_FORBIDDEN,
    HTTP_NOT_IMPLEMENTED,
    HTTP_SERVER_ERROR,
    HTTP_UNAVAILABLE,
    CommonStatus,
)
from easyncd.protocol.versions import (
    COMMAND_VERSIONS,
    TOP_ELEMENTS,
    UnsupportedVersion,
    at_least,
    command_in_version,
    negotiate,
    status_in_body,
)
from easyncd.store.interfaces import DeviceAccount, StoreUnavailable
from easyncd.wbxml import Element, WBXMLError, decode

#: Commands a device with a pending wipe may still use: Provision (to get the
#: directive) and Ping (which only waits).
WIPE_EXEMPT = frozenset({"Provision", "Ping"})


def refusal(command: str, version: str, status: CommonStatus) -> CommandResponse:
    """The answer for a common ``status``: from 14.0 the command's top element
    with that Status, before 14.0 (or for commands without a WBXML answer)
    the HTTP code that stands for it."""
    top = TOP_ELEMENTS.get(command)
    if status_in_body(version) and top is not None:
        root = Element(top[0])
        root.add(top[1], str(status.value))
        return CommandResponse(body=root, status=str(status.value))
    http = HTTP_BEFORE_14.get(status, HTTP_NOT_IMPLEMENTED)
    return CommandResponse(http_status=http, status=str(http))


def provisioning_problem(
    ctx: CommandContext, account: DeviceAccount | None
) -> CommonStatus | None:
    """Why the request may not be served without (re)provisioning, or None.

    * ``none`` mode: never a problem.
    * a device that never provisioned (no key on record) is served in
      ``loose`` mode, and in ``force`` mode with
      ``allow_non_provisionable_devices``; otherwise it must provision
      (DeviceNotProvisioned, or InvalidPolicyKey if it sends some key).
    * a device with a key on record must send it: none sent ->
      DeviceNotProvisioned, another one -> InvalidPolicyKey; a key older than
      ``refresh_interval`` -> PolicyRefresh.
    """
    policy = ctx.config.policy
    if policy.mode == "none":
        return None
    sent = ctx.request.policy_key
    recorded = account.policy_key if account is not None else None
    if recorded is None:
        if policy.mode == "loose" or policy.allow_non_provisionable_devices:
            return None
        return CommonStatus.DeviceNotProvisioned if sent is None else CommonStatus.InvalidPolicyKey
    if sent is None:
        return CommonStatus.DeviceNotProvisioned
    if sent != recorded:
        return CommonStatus.InvalidPolicyKey
    interval = int(policy.refresh_interval)
    provisioned_at = account.provisioned_at if account is not None else None
    if interval > 0 and provisioned_at is not None \
            and _now(ctx) - provisioned_at >= interval:
        return CommonStatus.PolicyRefresh
    return None


async def dispatch(ctx: CommandContext, body: bytes) -> CommandResponse:
    """Check and run one request; never raises (except on cancellation).

    Unexpected errors are logged and answered with HTTP 500 (503 when the
    store is unreachable).
    """
    req = ctx.request
    try:
        return await _dispatch(ctx, body)
    except CancelledError:
        raise
    except StoreUnavailable:
        ctx.log.failure(
            "State store unavailable during {command} for {user} on {device_id}",
            command=req.command, user=req.account, device_id=req.device_id,
        )
        return CommandResponse(http_status=HTTP_UNAVAILABLE, status=str(HTTP_UNAVAILABLE))
    except Exception:
        ctx.log.failure(
            "Unexpected error in {command} for {user} on {device_id}",
            command=req.command, user=req.account, device_id=req.device_id,
        )
        return CommandResponse(http_status=HTTP_SERVER_ERROR, status=str(HTTP_SERVER_ERROR))


async def _dispatch(ctx: CommandContext, body: bytes) -> CommandResponse:
    req = ctx.request
    try:
        version = negotiate(req.protocol_version, ctx.config.server.highest_version)
    except UnsupportedVersion as exc:
        return CommandResponse(http_status=exc.http_status, headers=exc.headers,
                               status=str(exc.http_status))
    command = req.command
    if command not in COMMAND_VERSIONS:
        return CommandResponse(http_status=HTTP_NOT_IMPLEMENTED, status=str(HTTP_NOT_IMPLEMENTED))
    if not command_in_version(command, version):
        return refusal(command, version, CommonStatus.VersionNotSupported)
    cls = COMMANDS.get(command)
    if cls is None:
        return refusal(command, version, CommonStatus.CommandNotSupported)

    store: Any = ctx.store
    if not ctx.account_loaded:
        ctx.account = await store.get_account(req.device_id, req.account)
        ctx.account_loaded = True
    account: DeviceAccount | None = ctx.account

    if account_wipe_unsupported(account, version):
        ctx.log.warn(
            "Refusing {device_id} of {user}: account-only wipe pending, protocol {version}",
            device_id=req.device_id, user=req.account, version=version,
        )
        return CommandResponse(http_status=HTTP_FORBIDDEN, status=str(HTTP_FORBIDDEN))
    if wipe_active(account) and command not in WIPE_EXEMPT:
        return refusal(command, version, CommonStatus.RemoteWipeRequested)
    if cls.needs_provisioning:
        problem = provisioning_problem(ctx, account)
        if problem is not None:
            ctx.log.info(
                "{command} from {device_id} of {user} refused: {problem}",
                command=command, device_id=req.device_id, user=req.account,
                problem=problem.name,
            )
            return refusal(command, version, problem)

    # Commands whose body is not WBXML before some version (2.5/12.x SendMail,
    # SmartReply, SmartForward carry raw MIME) get it undecoded in run_raw.
    raw_before = cls.raw_body_before
    raw_body = bool(body) and raw_before is not None and not at_least(version, raw_before)
    element: Element | None = None
    if body and not raw_body:
        try:
            element = decode(body)
        except WBXMLError as exc:
            ctx.log.info(
                "Invalid WBXML in {command} from {device_id}: {error}",
                command=command, device_id=req.device_id, error=str(exc),
            )
            return refusal(command, version, CommonStatus.InvalidWBXML)
    elif not body and cls.needs_body:
        return refusal(command, version, CommonStatus.InvalidContent)

    if raw_body:
        response = await cls().run_raw(ctx, body)
    else:
        response = await cls().run(ctx, element)
    if response.status is None:
        response.status = _status_of(command, response)
    if response.http_status == 200:
        await store.record_request(req.device_id, req.account, command, version,
                                   _now(ctx))
    return response


def _now(ctx: CommandContext) -> float:
    clock: Any = ctx.clock  # zope interface: mypy cannot see its methods
    return float(clock.seconds())


def _status_of(command: str, response: CommandResponse) -> str:
    top = TOP_ELEMENTS.get(command)
    if response.body is not None and top is not None:
        status = response.body.findtext(top[1])
        if status:
            return status
    return str(response.http_status)
