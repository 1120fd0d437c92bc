"""The Provision command (MS-ASPROV), through the dispatcher."""
from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from easyncd.protocol.commands.provision import new_policy_key
from easyncd.protocol.context import CommandResponse
from easyncd.store.interfaces import WIPE_ACCOUNT, WIPE_DEVICE, WIPE_PENDING, WIPE_WIPED
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element, encode

from tests.protocol.helpers import (
    START_TIME,
    dispatch_sync,
    make_clock,
    make_context,
    provision_ack,
    provision_initial,
    provision_device,
    result_of,
    wipe_ack,
)

P = "Provision:"


class ProvisionTestCase(SynchronousTestCase):
    """Shared set-up: a memory store and a clock."""

    def setUp(self) -> None:
        self.store = MemoryStateStore()
        result_of(self.store.migrate())
        self.clock = make_clock()

    def send(self, body: Element | bytes, version: str = "16.1", *, command: str = "Provision",
             policy_key: int | None = None, overrides: tuple[str, ...] = (),
             parameters: dict[str, str] | None = None) -> CommandResponse:
        ctx = make_context(self.store, command, version, policy_key=policy_key,
                           config_overrides=overrides, clock=self.clock, parameters=parameters)
        raw = body if isinstance(body, bytes) else encode(body)
        return dispatch_sync(ctx, raw)

    def account(self):  # type: ignore[no-untyped-def]
        return result_of(self.store.get_account("dev1", "alice"))

    def handshake(self, version: str, overrides: tuple[str, ...] = ()) -> tuple[Element, int]:
        """Run both phases; returns the first answer and the final key."""
        first = self.send(provision_initial(version), version, overrides=overrides)
        self.assertEqual(first.http_status, 200)
        assert first.body is not None
        self.assertEqual(first.body.findtext(P + "Status"), "1")
        policy = first.body.find(P + "Policies/" + P + "Policy")
        assert policy is not None
        temporary = int(policy.findtext(P + "PolicyKey") or "0")
        self.assertGreater(temporary, 0)
        self.assertEqual(self.account().pending_policy_key, temporary)
        second = self.send(provision_ack(temporary, version), version, overrides=overrides)
        assert second.body is not None
        self.assertEqual(second.body.findtext(P + "Status"), "1")
        self.assertEqual(
            second.body.findtext(P + "Policies/" + P + "Policy/" + P + "Status"), "1")
        self.assertIsNone(second.body.find(P + "Policies/" + P + "Policy/" + P + "Data"))
        final = int(second.body.findtext(P + "Policies/" + P + "Policy/" + P + "PolicyKey") or "0")
        self.assertGreater(final, 0)
        account = self.account()
        self.assertEqual(account.policy_key, final)
        self.assertEqual(account.provisioned_at, START_TIME)
        return first.body, final


class HandshakeTests(ProvisionTestCase):
    """The two phases for each protocol generation."""

    def test_16_1(self) -> None:
        first, final = self.handshake("16.1")
        # DeviceInformation answered before Status, and stored.
        self.assertEqual(first.children[0].tag, "Settings:DeviceInformation")
        self.assertEqual(first.findtext("Settings:DeviceInformation/Settings:Status"), "1")
        device = result_of(self.store.get_device("dev1"))
        assert device is not None
        self.assertEqual(device.info["Model"], "TestModel")
        self.assertEqual(device.info["FriendlyName"], "Alice's phone")
        policy = first.find(P + "Policies/" + P + "Policy")
        assert policy is not None
        self.assertEqual(policy.findtext(P + "PolicyType"), "MS-EAS-Provisioning-WBXML")
        doc = policy.find(P + "Data/" + P + "EASProvisionDoc")
        assert doc is not None
        self.assertIsNotNone(doc.find(P + "AllowCamera"))
        self.assertIsNotNone(doc.find(P + "ApprovedApplicationList"))
        # The final key now opens the gate.
        ok = self.send(Element("FolderHierarchy:FolderSync", children=[
            Element("FolderHierarchy:SyncKey", "0")]), command="FolderSync", policy_key=final)
        assert ok.body is not None
        self.assertEqual(ok.body.findtext("FolderHierarchy:Status"), "1")

    def test_14_1_requires_device_information(self) -> None:
        response = self.send(provision_initial("14.1", device_info=False), "14.1")
        assert response.body is not None
        self.assertEqual(response.body.findtext(P + "Status"), "165")
        self.assertEqual(response.status, "165")
        self.assertIsNone(self.account())
        self.handshake("14.1")

    def test_14_0_no_device_information(self) -> None:
        first, _ = self.handshake("14.0")
        self.assertIsNone(first.find("Settings:DeviceInformation"))

    def test_12_1(self) -> None:
        first, _ = self.handshake("12.1")
        doc = first.find(P + "Policies/" + P + "Policy/" + P + "Data/" + P + "EASProvisionDoc")
        assert doc is not None
        self.assertIsNotNone(doc.find(P + "RequireDeviceEncryption"))
        self.assertIsNone(first.find("Settings:DeviceInformation"))

    def test_12_0_only_knows_its_elements(self) -> None:
        first, _ = self.handshake("12.0")
        doc = first.find(P + "Policies/" + P + "Policy/" + P + "Data/" + P + "EASProvisionDoc")
        assert doc is not None
        names = {child.name for child in doc.children}
        self.assertIn("DevicePasswordEnabled", names)
        self.assertIn("MaxAttachmentSize", names)
        self.assertNotIn("AllowCamera", names)
        self.assertNotIn("RequireStorageCardEncryption", names)
        self.assertNotIn("ApprovedApplicationList", names)

    def test_2_5_wap_provisioning(self) -> None:
        first, _ = self.handshake("2.5", overrides=("policy.device_password_enabled=yes",))
        policy = first.find(P + "Policies/" + P + "Policy")
        assert policy is not None
        self.assertEqual(policy.findtext(P + "PolicyType"), "MS-WAP-Provisioning-XML")
        data = policy.findtext(P + "Data") or ""
        self.assertTrue(data.startswith("<wap-provisioningdoc>"))
        self.assertIn('<parm name="4131" value="0"/>', data)

    def test_ack_key_from_query_parameter(self) -> None:
        """pyactivesync also passes the temporary key as PolicyKey parameter."""
        first = self.send(provision_initial())
        assert first.body is not None
        temporary = first.body.findtext(P + "Policies/" + P + "Policy/" + P + "PolicyKey")
        ack = Element(P + "Provision")
        policy = ack.add(P + "Policies").add(P + "Policy")
        policy.add(P + "PolicyType", "MS-EAS-Provisioning-WBXML")
        policy.add(P + "Status", "1")
        second = self.send(ack, parameters={"PolicyKey": str(temporary)})
        assert second.body is not None
        self.assertEqual(
            second.body.findtext(P + "Policies/" + P + "Policy/" + P + "Status"), "1")
        self.assertIsNotNone(self.account().policy_key)

    def test_wrong_ack_key(self) -> None:
        self.send(provision_initial())
        second = self.send(provision_ack(12345))
        assert second.body is not None
        self.assertEqual(second.body.findtext(P + "Status"), "1")
        self.assertEqual(
            second.body.findtext(P + "Policies/" + P + "Policy/" + P + "Status"), "5")
        self.assertIsNone(self.account().policy_key)

    def test_unknown_policy_type(self) -> None:
        body = provision_initial("12.1")
        policy_type = body.find(P + "Policies/" + P + "Policy/" + P + "PolicyType")
        assert policy_type is not None
        policy_type.text = "MS-WAP-Provisioning-XML"
        response = self.send(body, "12.1")
        assert response.body is not None
        self.assertEqual(
            response.body.findtext(P + "Policies/" + P + "Policy/" + P + "Status"), "3")

    def test_malformed(self) -> None:
        for body in (Element(P + "Provision"), Element(P + "Policies")):
            response = self.send(body)
            assert response.body is not None
            self.assertEqual(response.body.findtext(P + "Status"), "2")

    def test_partial_ack_refused_in_force_mode(self) -> None:
        first = self.send(provision_initial())
        assert first.body is not None
        temporary = first.body.findtext(P + "Policies/" + P + "Policy/" + P + "PolicyKey")
        second = self.send(provision_ack(str(temporary), status="2"))
        assert second.body is not None
        self.assertEqual(second.body.findtext(P + "Status"), "139")
        self.assertIsNone(self.account().policy_key)
        old = self.send(provision_ack(str(temporary), "12.1", status="2"), "12.1")
        self.assertEqual(old.http_status, 403)

    def test_partial_ack_allowed(self) -> None:
        overrides = ("policy.allow_non_provisionable_devices=yes",)
        first = self.send(provision_initial(), overrides=overrides)
        assert first.body is not None
        temporary = first.body.findtext(P + "Policies/" + P + "Policy/" + P + "PolicyKey")
        second = self.send(provision_ack(str(temporary), status="2"), overrides=overrides)
        assert second.body is not None
        self.assertEqual(
            second.body.findtext(P + "Policies/" + P + "Policy/" + P + "Status"), "1")

    def test_mode_none_no_policy(self) -> None:
        overrides = ("policy.mode=none",)
        first = self.send(provision_initial(), overrides=overrides)
        assert first.body is not None
        policy = first.body.find(P + "Policies/" + P + "Policy")
        assert policy is not None
        self.assertEqual(policy.findtext(P + "Status"), "2")
        self.assertIsNone(policy.find(P + "Data"))
        temporary = policy.findtext(P + "PolicyKey")
        second = self.send(provision_ack(str(temporary)), overrides=overrides)
        assert second.body is not None
        self.assertIsNotNone(
            second.body.findtext(P + "Policies/" + P + "Policy/" + P + "PolicyKey"))

    def test_keys_are_32_bit_nonzero(self) -> None:
        for _ in range(200):
            key = new_policy_key()
            self.assertTrue(0 < key <= 0xFFFFFFFF)


class WipeTests(ProvisionTestCase):
    """Remote wipe and account-only remote wipe."""

    def setUp(self) -> None:
        super().setUp()
        self.key = provision_device(self.store)

    def test_device_wipe_flow(self) -> None:
        result_of(self.store.request_wipe("dev1", WIPE_DEVICE, None, START_TIME))
        # Any other command: Status 140 (14.0+).
        refused = self.send(Element("FolderHierarchy:FolderSync", children=[
            Element("FolderHierarchy:SyncKey", "0")]), command="FolderSync", policy_key=self.key)
        assert refused.body is not None
        self.assertEqual(refused.body.findtext("FolderHierarchy:Status"), "140")
        # The (empty) Provision gets the directive.
        directive = self.send(Element(P + "Provision"))
        assert directive.body is not None
        self.assertEqual(directive.body.findtext(P + "Status"), "1")
        self.assertIsNotNone(directive.body.find(P + "RemoteWipe"))
        self.assertIsNone(directive.body.find(P + "Policies"))
        # An initial policy request gets it too.
        again = self.send(provision_initial())
        assert again.body is not None
        self.assertIsNotNone(again.body.find(P + "RemoteWipe"))
        # Acknowledged.
        done = self.send(wipe_ack())
        assert done.body is not None
        self.assertEqual(done.body.findtext(P + "Status"), "1")
        self.assertIsNone(done.body.find(P + "RemoteWipe"))
        self.assertEqual(self.account().wipe_state, WIPE_WIPED)

    def test_wiped_device_comes_back(self) -> None:
        result_of(self.store.request_wipe("dev1", WIPE_DEVICE, None, START_TIME))
        result_of(self.store.acknowledge_wipe("dev1", "alice", START_TIME))
        response = self.send(provision_initial())
        assert response.body is not None
        self.assertIsNotNone(response.body.find(P + "RemoteWipe"))
        refused = self.send(b"", "12.1", command="FolderSync", policy_key=self.key)
        self.assertEqual(refused.http_status, 449)

    def test_failed_wipe_repeats_directive(self) -> None:
        result_of(self.store.request_wipe("dev1", WIPE_DEVICE, None, START_TIME))
        response = self.send(wipe_ack(status="2"))
        assert response.body is not None
        self.assertEqual(response.body.findtext(P + "Status"), "2")
        self.assertIsNotNone(response.body.find(P + "RemoteWipe"))
        self.assertEqual(self.account().wipe_state, WIPE_PENDING)

    def test_ack_without_wipe(self) -> None:
        response = self.send(wipe_ack())
        assert response.body is not None
        self.assertEqual(response.body.findtext(P + "Status"), "2")

    def test_account_only_wipe_16_1(self) -> None:
        result_of(self.store.request_wipe("dev1", WIPE_ACCOUNT, "alice", START_TIME))
        directive = self.send(Element(P + "Provision"))
        assert directive.body is not None
        self.assertIsNotNone(directive.body.find(P + "AccountOnlyRemoteWipe"))
        self.assertIsNone(directive.body.find(P + "RemoteWipe"))
        done = self.send(wipe_ack(P + "AccountOnlyRemoteWipe"))
        assert done.body is not None
        self.assertEqual(done.body.findtext(P + "Status"), "1")
        self.assertEqual(self.account().wipe_state, WIPE_WIPED)

    def test_account_only_wipe_refused_before_16_1(self) -> None:
        """An account-only wipe is never escalated to a full wipe."""
        result_of(self.store.request_wipe("dev1", WIPE_ACCOUNT, "alice", START_TIME))
        for version in ("14.1", "16.0", "12.1"):
            response = self.send(Element(P + "Provision"), version)
            self.assertEqual(response.http_status, 403)
            self.assertIsNone(response.body)
        self.assertEqual(self.account().wipe_state, WIPE_PENDING)
