"""The policy document built from [policy] (easyncd.protocol.policy)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from twisted.trial.unittest import SynchronousTestCase

from easyncd.protocol.policy import (
    SETTINGS,
    eas_provision_doc,
    elements_for_version,
    policy_data,
    policy_type_for,
    wap_provisioning_doc,
)
from easyncd.wbxml import decode, encode

from tests.protocol.helpers import make_config

P = "Provision:"


class EASProvisionDocTests(SynchronousTestCase):
    """MS-EAS-Provisioning-WBXML, per version."""

    def test_every_option_has_an_element(self) -> None:
        policy = make_config().policy
        used = {s.option for s in SETTINGS}
        used |= {"unapproved_in_rom_application_list", "approved_application_list",
                 "mode", "refresh_interval", "allow_non_provisionable_devices"}
        self.assertEqual(set(policy), used)

    def test_full_set_from_12_1(self) -> None:
        full = elements_for_version("16.1")
        self.assertEqual(len(full), len(SETTINGS) + 2)
        for version in ("12.1", "14.0", "14.1", "16.0"):
            self.assertEqual(elements_for_version(version), full)
        self.assertEqual(len(elements_for_version("12.0")), 11)

    def test_values(self) -> None:
        policy = make_config([
            "policy.device_password_enabled=yes", "policy.min_device_password_length=6",
            "policy.max_attachment_size=0", "policy.allow_bluetooth=1",
            "policy.approved_application_list=abc,def",
            "policy.max_email_body_truncation_size=-1",
        ]).policy
        doc = eas_provision_doc(policy, "16.1")
        self.assertEqual(doc.findtext(P + "DevicePasswordEnabled"), "1")
        self.assertEqual(doc.findtext(P + "MinDevicePasswordLength"), "6")
        self.assertEqual(doc.findtext(P + "MaxAttachmentSize"), "")
        self.assertEqual(doc.findtext(P + "AllowBluetooth"), "1")
        self.assertEqual(doc.findtext(P + "AllowCamera"), "1")
        self.assertEqual(doc.findtext(P + "MaxEmailBodyTruncationSize"), "-1")
        self.assertEqual([e.text for e in doc.findall(
            P + "ApprovedApplicationList/" + P + "Hash")], ["abc", "def"])
        self.assertEqual(doc.findall(
            P + "UnapprovedInROMApplicationList/" + P + "ApplicationName"), [])

    def test_wbxml_round_trip(self) -> None:
        data = policy_data(make_config().policy, "14.1")
        self.assertEqual(decode(encode(data)), data)

    def test_policy_type(self) -> None:
        self.assertEqual(policy_type_for("2.5"), "MS-WAP-Provisioning-XML")
        self.assertEqual(policy_type_for("12.0"), "MS-EAS-Provisioning-WBXML")


class WAPProvisioningTests(SynchronousTestCase):
    """MS-WAP-Provisioning-XML for 2.5."""

    def test_no_password(self) -> None:
        root = ET.fromstring(wap_provisioning_doc(make_config().policy))
        self.assertEqual(root.tag, "wap-provisioningdoc")
        parm = root.find("characteristic[@type='SecurityPolicy']/parm[@name='4131']")
        assert parm is not None
        self.assertEqual(parm.get("value"), "1")
        self.assertIsNone(root.find("characteristic[@type='Registry']"))

    def test_password(self) -> None:
        policy = make_config([
            "policy.device_password_enabled=yes", "policy.max_inactivity_time_device_lock=300",
            "policy.max_device_password_failed_attempts=8",
            "policy.alphanumeric_device_password_required=yes",
        ]).policy
        root = ET.fromstring(wap_provisioning_doc(policy))
        values = {p.get("name"): p.get("value") for p in root.iter("parm")}
        self.assertEqual(values["4131"], "0")
        self.assertEqual(values["AEFrequencyType"], "1")
        self.assertEqual(values["AEFrequencyValue"], "5")
        self.assertEqual(values["DeviceWipeThreshold"], "8")
        self.assertEqual(values["MinimumPasswordLength"], "4")
        self.assertEqual(values["PasswordComplexity"], "0")
        data = policy_data(policy, "2.5")
        self.assertIsInstance(data.text, str)
