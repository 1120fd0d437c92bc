"""ResolveRecipients and ValidateCert through the real daemon, at 16.1 and 14.1.

Alice's contact is added by her device (Sync), Bob's meeting by the real
``easyncd-admin collection import``; Bob and Carol are local users of the
users file.  ValidateCert checks chains made here against a trust store
handed to the daemon with ``[smime] trust_file``.
"""
from __future__ import annotations

import base64
import datetime
import json
import os
import tempfile
from typing import Any

from cryptography.hazmat.primitives import serialization
from twisted.trial.unittest import TestCase

from easyncd.testing.daemon import Daemon
from easyncd.wbxml import Element
from tests.integration.groupware_client import Device, app_data
from tests.integration.test_daemon import assert_stopped_cleanly
from tests.protocol.test_validatecert import issue

RR = "ResolveRecipients:"
VC = "ValidateCert:"
PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
VERSIONS = ("16.1", "14.1")

MEETINGS = "\r\n".join([
    "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//easyncd tests//EN",
    "BEGIN:VEVENT", "UID:planning-1", "DTSTAMP:20300101T000000Z",
    "DTSTART:20300506T090000Z", "DTEND:20300506T100000Z", "SUMMARY:Planning",
    "END:VEVENT",
    "BEGIN:VEVENT", "UID:dentist-1", "DTSTAMP:20300101T000000Z",
    "DTSTART:20300506T100000Z", "DTEND:20300506T103000Z", "SUMMARY:Dentist",
    "X-MICROSOFT-CDO-BUSYSTATUS:OOF",
    "END:VEVENT", "END:VCALENDAR"]) + "\r\n"


class ResolveRecipientsDaemonTest(TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name
        self.daemon = Daemon(tmp.name, options={"auth.default_domain": "example.com"})
        for user in ("alice", "bob", "carol"):
            self.daemon.add_user(user, "secret")
        self.daemon.start()
        self.addCleanup(assert_stopped_cleanly, self, self.daemon)

    def import_meetings(self) -> None:
        """Bob's two meetings, through the admin CLI."""
        listed = json.loads(self.daemon.admin("collection", "list", "bob", "--json").stdout)
        calendar = [str(c["id"]) for c in listed if c["kind"] == "calendar" and c["default"]]
        self.assertEqual(len(calendar), 1, listed)
        path = os.path.join(self.tmp, "bob.ics")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(MEETINGS)
        self.daemon.admin("collection", "import", "bob", calendar[0], path)

    def add_contact(self) -> None:
        """Alice's phone adds Zoe (with a photo) to her Contacts."""
        phone = Device(self.daemon, "alicephone", version="16.1")
        phone.provision()
        phone.folder_sync()
        contacts = phone.folder("Contacts")
        phone.sync_all(contacts)
        phone.add(contacts, app_data(
            "Contacts", ("FileAs", "Zimmer, Zoe"), ("FirstName", "Zoe"),
            ("LastName", "Zimmer"), ("Email1Address", '"Zoe Zimmer" <zoe@elsewhere.org>'),
            ("Picture", base64.b64encode(PHOTO).decode("ascii"))), "zoe-1")

    def resolve(self, device: Device, *to: str, options: list[Element]) -> list[Element]:
        request = Element(RR + "ResolveRecipients")
        for value in to:
            request.add(RR + "To", value)
        request.append(Element(RR + "Options", None, options))
        answer = device.post("ResolveRecipients", request)
        self.assertEqual(answer.findtext(RR + "Status"), "1", answer.to_xml())
        return answer.findall(RR + "Response")

    def test_local_user_and_contact(self) -> None:
        self.import_meetings()
        self.add_contact()
        for version in VERSIONS:
            device = Device(self.daemon, f"resolver{version.replace('.', '')}", version=version)
            device.provision()
            options = [
                Element(RR + "CertificateRetrieval", "2"),
                Element(RR + "Availability", None, [
                    Element(RR + "StartTime", "2030-05-06T08:00:00.000Z"),
                    Element(RR + "EndTime", "2030-05-06T11:00:00.000Z")]),
                Element(RR + "Picture", None, [Element(RR + "MaxPictures", "5")]),
            ]
            bob, by_name, zoe, nobody = self.resolve(
                device, "bob@example.com", "Bob", "Zoe", "nobody@nowhere.example",
                options=options)
            # Bob: a local user, free/busy from his calendar, no certificate.
            for response in (bob, by_name):
                self.assertEqual(response.findtext(RR + "Status"), "1", version)
                recipient = response.find(RR + "Recipient")
                assert recipient is not None
                self.assertEqual(recipient.findtext(RR + "Type"), "1")
                self.assertEqual(recipient.findtext(RR + "EmailAddress"), "bob@example.com")
                self.assertEqual(recipient.findtext(f"{RR}Availability/{RR}Status"), "1")
                self.assertEqual(recipient.findtext(f"{RR}Availability/{RR}MergedFreeBusy"),
                                 "002230", version)
                self.assertEqual(recipient.findtext(f"{RR}Certificates/{RR}Status"), "7")
                self.assertEqual(recipient.findtext(f"{RR}Picture/{RR}Status"), "173")
            # Zoe: alice's contact, with her photo; no free/busy for outsiders.
            self.assertEqual(zoe.findtext(RR + "Status"), "1", zoe.to_xml())
            recipient = zoe.find(RR + "Recipient")
            assert recipient is not None
            self.assertEqual(recipient.findtext(RR + "Type"), "2")
            self.assertEqual(recipient.findtext(RR + "EmailAddress"), "zoe@elsewhere.org")
            self.assertIn("Zoe", recipient.findtext(RR + "DisplayName") or "")
            self.assertEqual(recipient.findtext(f"{RR}Availability/{RR}Status"), "163")
            self.assertEqual(recipient.findtext(f"{RR}Picture/{RR}Status"), "1")
            data = recipient.find(f"{RR}Picture/{RR}Data")
            assert data is not None
            self.assertEqual(data.text, PHOTO)
            self.assertEqual(nobody.findtext(RR + "Status"), "4")
            self.assertEqual(nobody.findtext(RR + "RecipientCount"), "0")

    def test_other_users_do_not_see_alices_contacts(self) -> None:
        self.add_contact()
        carol = Device(self.daemon, "carolphone", user="carol", version="14.1")
        carol.provision()
        zoe, alice = self.resolve(carol, "Zoe", "alice", options=[])
        self.assertEqual(zoe.findtext(RR + "Status"), "4")
        self.assertEqual(alice.findtext(f"{RR}Recipient/{RR}EmailAddress"), "alice@example.com")
        # Picture is a 14.1 option: a 14.0 device asking for it made a protocol error.
        old = Device(self.daemon, "oldphone", user="carol", version="14.0")
        old.provision()
        request = Element(RR + "ResolveRecipients")
        request.add(RR + "To", "alice")
        request.append(Element(RR + "Options", None, [Element(RR + "Picture")]))
        self.assertEqual(old.post("ResolveRecipients", request).findtext(RR + "Status"), "5")


class ValidateCertDaemonTest(TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = issue("Integration Root", ca=True, not_before=_now() - _DAY,
                          not_after=_now() + 365 * _DAY)
        self.intermediate = issue("Integration Intermediate", self.root, ca=True,
                                  not_before=_now() - _DAY, not_after=_now() + 300 * _DAY)
        self.leaf = issue("alice@example.com", self.intermediate, not_before=_now() - _DAY,
                          not_after=_now() + 30 * _DAY)
        self.expired = issue("old@example.com", self.intermediate,
                             not_before=_now() - 60 * _DAY, not_after=_now() - _DAY)
        self.stranger = issue("stranger@example.com", not_before=_now() - _DAY,
                              not_after=_now() + 30 * _DAY)
        roots = os.path.join(tmp.name, "roots.pem")
        with open(roots, "wb") as handle:
            handle.write(self.root.cert.public_bytes(serialization.Encoding.PEM))
        self.daemon = Daemon(tmp.name, options={"smime.trust_file": roots})
        self.daemon.add_user("alice", "secret")
        self.daemon.start()
        self.addCleanup(assert_stopped_cleanly, self, self.daemon)

    def validate(self, device: Device, certificates: list[Any], chain: list[Any],
                 check_crl: str | None = None) -> list[str]:
        request = Element(VC + "ValidateCert")
        request.append(Element(VC + "CertificateChain", None,
                               [Element(VC + "Certificate", c.b64) for c in chain]))
        request.append(Element(VC + "Certificates", None,
                               [Element(VC + "Certificate", c.b64) for c in certificates]))
        if check_crl is not None:
            request.add(VC + "CheckCRL", check_crl)
        answer = device.post("ValidateCert", request)
        self.assertEqual(answer.findtext(VC + "Status"), "1", answer.to_xml())
        return [c.findtext(VC + "Status") or "" for c in answer.findall(VC + "Certificate")]

    def test_generated_chain(self) -> None:
        for version in VERSIONS:
            device = Device(self.daemon, f"certs{version.replace('.', '')}", version=version)
            device.provision()
            self.assertEqual(
                self.validate(device, [self.leaf, self.expired, self.stranger],
                              [self.intermediate]),
                ["1", "7", "4"], version)
            # Without the intermediate the chain cannot be built.
            self.assertEqual(self.validate(device, [self.leaf], []), ["4"])
            # Revocation cannot be checked offline: never reported valid.
            self.assertEqual(self.validate(device, [self.leaf], [self.intermediate], "1"),
                             ["16"])


_DAY = datetime.timedelta(days=1)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
