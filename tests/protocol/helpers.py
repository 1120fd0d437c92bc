"""Helpers shared by the protocol tests: contexts, synchronous results, provisioning.

Everything here works with :class:`easyncd.testing.memory_store.MemoryStateStore`
(whose Deferreds fire at once) and a :class:`twisted.internet.task.Clock`.
"""
from __future__ import annotations

from typing import Any, Coroutine, Iterable, Mapping, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.python.failure import Failure

from easyncd.config import Config, load_config
from easyncd.protocol.context import CommandContext, CommandResponse, EASRequest
from easyncd.store.interfaces import DeviceAccount
from easyncd.wbxml import Element

T = TypeVar("T")

#: The time the test clocks start at (2023-11-14T22:13:20Z), so that stored
#: times look like real ones.
START_TIME = 1_700_000_000.0


def make_clock(start: float = START_TIME) -> Clock:
    """A fake clock already advanced to ``start``."""
    clock = Clock()
    clock.advance(start)
    return clock


def make_config(overrides: Iterable[str] = ()) -> Config:
    """The built-in defaults plus ``section.option=value`` overrides
    (never reads /etc/easyncd)."""
    return load_config(overrides=list(overrides), use_default_path=False)


def result_of(value: Deferred[T] | Coroutine[Any, Any, T]) -> T:
    """The result of a Deferred or coroutine that must already have fired
    (the memory store answers at once).  Raises the failure's exception if it
    failed, AssertionError if it has not fired."""
    if not isinstance(value, Deferred):
        value = Deferred.fromCoroutine(value)
    outcome: list[Any] = []
    value.addBoth(outcome.append)
    if not outcome:
        raise AssertionError(f"{value!r} has not fired")
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]  # type: ignore[no-any-return]


def make_request(
    command: str,
    version: str = "16.1",
    user: str = "alice",
    device_id: str = "dev1",
    policy_key: int | None = None,
    *,
    device_type: str = "TestDevice",
    user_agent: str | None = "easyncd-tests/1.0",
    parameters: Mapping[str, str] | None = None,
    account: str | None = None,
) -> EASRequest:
    """An :class:`EASRequest` as the HTTP layer would build it."""
    return EASRequest(
        command=command,
        user=user,
        account=account if account is not None else user,
        device_id=device_id,
        device_type=device_type,
        protocol_version=version,
        policy_key=policy_key,
        user_agent=user_agent,
        parameters=dict(parameters or {}),
    )


def make_context(
    store: Any,
    command: str,
    version: str = "16.1",
    user: str = "alice",
    device_id: str = "dev1",
    policy_key: int | None = None,
    config_overrides: Iterable[str] = (),
    *,
    clock: Clock | None = None,
    device_type: str = "TestDevice",
    user_agent: str | None = "easyncd-tests/1.0",
    parameters: Mapping[str, str] | None = None,
    services: Mapping[str, Any] | None = None,
) -> CommandContext:
    """A :class:`CommandContext` for ``command`` as ``user`` on ``device_id``.

    ``ctx.account`` is the account already in ``store`` (None if there is none
    yet); the dispatcher loads it again itself.  The clock defaults to a fresh
    :func:`make_clock`.
    """
    request = make_request(
        command, version, user, device_id, policy_key,
        device_type=device_type, user_agent=user_agent, parameters=parameters,
    )
    account = _account_now(store, device_id, user)
    return CommandContext(
        request=request,
        account=account,
        store=store,
        config=make_config(config_overrides),
        clock=clock if clock is not None else make_clock(),  # type: ignore[arg-type]
        log=Logger(namespace="tests.protocol"),
        services=dict(services or {}),
    )


def _account_now(store: Any, device_id: str, user: str) -> DeviceAccount | None:
    outcome: list[Any] = []
    store.get_account(device_id, user).addBoth(outcome.append)
    if outcome and not isinstance(outcome[0], Failure):
        return outcome[0]  # type: ignore[no-any-return]
    return None


def provision_device(
    store: Any,
    user: str = "alice",
    device_id: str = "dev1",
    *,
    now: float = START_TIME,
    key: int = 1234567890,
    device_type: str = "TestDevice",
) -> int:
    """Register and fully provision an account directly through the store
    (no Provision command involved); returns the final policy key."""
    result_of(store.register_account(device_id, user, device_type, "easyncd-tests/1.0", now))
    temporary = key + 1
    result_of(store.begin_provision(device_id, user, temporary))
    if not result_of(store.confirm_provision(device_id, user, temporary, key, now)):
        raise AssertionError("confirm_provision refused the temporary key")
    return key


def dispatch_sync(ctx: CommandContext, body: bytes = b"") -> CommandResponse:
    """Run :func:`easyncd.protocol.dispatch.dispatch` and return its response
    (the memory store makes it finish at once)."""
    from easyncd.protocol.dispatch import dispatch

    return result_of(dispatch(ctx, body))


# -- Provision request bodies ------------------------------------------------------


def provision_initial(version: str = "16.1", device_info: bool = True) -> Element:
    """An initial Provision request as a device of ``version`` sends it."""
    policy_type = "MS-WAP-Provisioning-XML" if version == "2.5" else "MS-EAS-Provisioning-WBXML"
    root = Element("Provision:Provision")
    if device_info:
        info = root.add("Settings:DeviceInformation")
        fields = info.add("Settings:Set")
        fields.add("Settings:Model", "TestModel")
        fields.add("Settings:FriendlyName", "Alice's phone")
        fields.add("Settings:OS", "TestOS 1.0")
    policy = root.add("Provision:Policies").add("Provision:Policy")
    policy.add("Provision:PolicyType", policy_type)
    return root


def provision_ack(key: int | str, version: str = "16.1", status: str = "1") -> Element:
    """A Provision acknowledgement of the temporary ``key``."""
    policy_type = "MS-WAP-Provisioning-XML" if version == "2.5" else "MS-EAS-Provisioning-WBXML"
    root = Element("Provision:Provision")
    policy = root.add("Provision:Policies").add("Provision:Policy")
    policy.add("Provision:PolicyType", policy_type)
    policy.add("Provision:PolicyKey", str(key))
    policy.add("Provision:Status", status)
    return root


def wipe_ack(tag: str = "Provision:RemoteWipe", status: str = "1") -> Element:
    """A remote wipe acknowledgement."""
    root = Element("Provision:Provision")
    root.add(tag).add("Provision:Status", status)
    return root
