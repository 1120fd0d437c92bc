"""The dispatcher's gates: version, command table, wipe, provisioning, body."""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from easyncd.protocol import dispatch as dispatch_module
from easyncd.protocol.commands import COMMANDS, implemented_commands
from easyncd.protocol.commands.base import Command
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.dispatch import dispatch
from easyncd.protocol.versions import COMMAND_VERSIONS
from easyncd.store.interfaces import WIPE_DEVICE
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element, encode

from tests.protocol.helpers import (
    START_TIME,
    dispatch_sync,
    make_clock,
    make_context,
    provision_device,
    result_of,
)

FH = "FolderHierarchy:"


def folder_sync(key: str = "0") -> bytes:
    return encode(Element(FH + "FolderSync", children=[Element(FH + "SyncKey", key)]))


class DispatchTestCase(SynchronousTestCase):
    """A memory store and a clock."""

    def setUp(self) -> None:
        self.store = MemoryStateStore()
        result_of(self.store.migrate())
        self.clock = make_clock()

    def run_command(self, command: str = "FolderSync", version: str = "16.1",
                    body: bytes | None = None, policy_key: int | None = None,
                    overrides: tuple[str, ...] = ()) -> CommandResponse:
        ctx = make_context(self.store, command, version, policy_key=policy_key,
                           config_overrides=overrides, clock=self.clock)
        return dispatch_sync(ctx, folder_sync() if body is None else body)

    def top_status(self, response: CommandResponse, tag: str = FH + "Status") -> str | None:
        self.assertEqual(response.http_status, 200)
        assert response.body is not None
        return response.body.findtext(tag)


class VersionAndCommandTests(DispatchTestCase):
    """Versions and the command table."""

    def test_unsupported_version(self) -> None:
        response = self.run_command(version="16.1", overrides=("server.highest_version=14.1",))
        self.assertEqual(response.http_status, 400)
        self.assertEqual(response.headers["MS-ASProtocolVersions"], "2.5,12.0,12.1,14.0,14.1")

    def test_unknown_command(self) -> None:
        for version in ("12.1", "16.1"):
            response = self.run_command("Bogus", version)
            self.assertEqual(response.http_status, 501)

    def test_unimplemented_command(self) -> None:
        self.patch(dispatch_module, "COMMANDS",
                   {name: cls for name, cls in COMMANDS.items() if name != "ValidateCert"})
        response = self.run_command("ValidateCert", "14.1", body=b"")
        self.assertEqual(self.top_status(response, "ValidateCert:Status"), "137")
        self.assertEqual(response.body.tag, "ValidateCert:ValidateCert")  # type: ignore[union-attr]
        self.assertEqual(self.run_command("ValidateCert", "12.1").http_status, 501)

    def test_command_not_in_version(self) -> None:
        response = self.run_command("Find", "16.0", body=b"")
        self.assertEqual(self.top_status(response, "Find:Status"), "138")
        self.assertEqual(self.run_command("Settings", "2.5").http_status, 501)
        self.assertEqual(self.run_command("GetAttachment", "14.1").http_status, 501)

    def test_implemented_commands(self) -> None:
        self.assertEqual(implemented_commands(), list(COMMAND_VERSIONS))  # every MS-ASCMD command


class ProvisioningGateTests(DispatchTestCase):
    """force / loose / none and 449 vs 142/143/144."""

    def test_force_not_provisioned(self) -> None:
        self.assertEqual(self.top_status(self.run_command()), "142")
        self.assertEqual(self.top_status(self.run_command(version="14.0")), "142")
        self.assertEqual(self.run_command(version="12.1").http_status, 449)
        self.assertEqual(self.run_command(version="2.5").http_status, 449)

    def test_force_unknown_key(self) -> None:
        self.assertEqual(self.top_status(self.run_command(policy_key=42)), "144")
        self.assertEqual(self.run_command(version="12.1", policy_key=42).http_status, 449)

    def test_force_right_and_wrong_key(self) -> None:
        key = provision_device(self.store)
        self.assertEqual(self.top_status(self.run_command(policy_key=key)), "1")
        self.assertEqual(self.top_status(self.run_command(policy_key=key + 7)), "144")
        self.assertEqual(self.top_status(self.run_command(policy_key=None)), "142")
        self.assertEqual(self.run_command(version="12.1", policy_key=key + 7).http_status, 449)
        self.assertEqual(self.run_command(version="12.1", policy_key=key).http_status, 200)

    def test_policy_refresh(self) -> None:
        key = provision_device(self.store, now=START_TIME)
        overrides = ("policy.refresh_interval=3600",)
        self.assertEqual(self.top_status(self.run_command(policy_key=key, overrides=overrides)), "1")
        self.clock.advance(3600)
        self.assertEqual(
            self.top_status(self.run_command(policy_key=key, overrides=overrides)), "143")
        self.assertEqual(
            self.run_command(version="12.1", policy_key=key, overrides=overrides).http_status, 449)

    def test_loose(self) -> None:
        overrides = ("policy.mode=loose",)
        self.assertEqual(self.top_status(self.run_command(overrides=overrides)), "1")
        key = provision_device(self.store)
        self.assertEqual(self.top_status(self.run_command(policy_key=key, overrides=overrides)), "1")
        self.assertEqual(self.top_status(self.run_command(overrides=overrides)), "142")
        self.assertEqual(
            self.top_status(self.run_command(policy_key=key + 1, overrides=overrides)), "144")

    def test_none(self) -> None:
        provision_device(self.store)
        overrides = ("policy.mode=none",)
        self.assertEqual(self.top_status(self.run_command(policy_key=99, overrides=overrides)), "1")

    def test_provision_is_never_gated(self) -> None:
        response = self.run_command("Provision", "12.1", body=encode(Element("Provision:Provision")))
        self.assertEqual(self.top_status(response, "Provision:Status"), "2")

    def test_records_request(self) -> None:
        key = provision_device(self.store)
        self.clock.advance(10)
        self.run_command(policy_key=key, version="14.1")
        account = result_of(self.store.get_account("dev1", "alice"))
        assert account is not None
        self.assertEqual(account.last_command, "FolderSync")
        self.assertEqual(account.protocol_version, "14.1")
        self.assertEqual(account.last_seen, START_TIME + 10)


class WipeGateTests(DispatchTestCase):
    """A pending wipe refuses everything but Provision and Ping."""

    def test_wipe_gate(self) -> None:
        key = provision_device(self.store)
        result_of(self.store.request_wipe("dev1", WIPE_DEVICE, None, START_TIME))
        self.assertEqual(self.top_status(self.run_command(policy_key=key)), "140")
        self.assertEqual(self.top_status(self.run_command(policy_key=key, version="14.0")), "140")
        self.assertEqual(self.run_command(policy_key=key, version="12.1").http_status, 449)
        settings = self.run_command("Settings", "16.1", body=b"", policy_key=key)
        self.assertEqual(self.top_status(settings, "Settings:Status"), "140")
        # Ping is not refused for the wipe (here: nothing cached, Status 3).
        ping = self.run_command("Ping", "16.1", body=b"", policy_key=key)
        self.assertEqual(self.top_status(ping, "Ping:Status"), "3")


class BodyTests(DispatchTestCase):
    """Bodies that are missing or not WBXML."""

    def setUp(self) -> None:
        super().setUp()
        self.key = provision_device(self.store)

    def test_garbage(self) -> None:
        for garbage in (b"\x03\x01j\x00\x00\x07V", b"hello world", folder_sync()[:-3]):
            response = self.run_command(body=garbage, policy_key=self.key)
            self.assertEqual(self.top_status(response), "102")
            self.assertEqual(
                self.run_command(body=garbage, policy_key=self.key, version="12.1").http_status,
                400)

    def test_empty_body(self) -> None:
        self.assertEqual(self.top_status(self.run_command(body=b"", policy_key=self.key)), "101")
        self.assertEqual(
            self.run_command(body=b"", policy_key=self.key, version="12.1").http_status, 400)


class Exploding(Command):
    """A command that fails unexpectedly."""

    name = "FolderSync"

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        raise RuntimeError("boom")


class Waiting(Command):
    """A command that waits until cancelled."""

    name = "FolderSync"

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        return await Deferred()  # type: ignore[no-any-return]


class ErrorTests(DispatchTestCase):
    """Unexpected errors become HTTP 500; cancellation passes through."""

    def test_exception_is_500(self) -> None:
        key = provision_device(self.store)
        self.patch(dispatch_module, "COMMANDS", {"FolderSync": Exploding})
        response = self.run_command(policy_key=key)
        self.assertEqual(response.http_status, 500)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_cancel(self) -> None:
        key = provision_device(self.store)
        self.patch(dispatch_module, "COMMANDS", {"FolderSync": Waiting})
        ctx = make_context(self.store, "FolderSync", policy_key=key, clock=self.clock)
        d: Deferred[Any] = Deferred.fromCoroutine(dispatch(ctx, folder_sync()))
        self.assertNoResult(d)
        d.cancel()
        self.failureResultOf(d)
