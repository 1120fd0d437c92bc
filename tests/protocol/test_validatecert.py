"""ValidateCert: chains built from certificates made here, trust anchors,
time, e-mail use, revocation without network, input forms, bad requests."""
from __future__ import annotations

import base64
import datetime
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from twisted.trial.unittest import SynchronousTestCase

from easyncd.protocol import dispatch as dispatch_module
from easyncd.protocol.commands import COMMANDS
from easyncd.protocol.commands.validatecert import (
    CertStatus,
    TrustAnchors,
    ValidateCertCommand,
    load_certificate,
    status_for_openssl_error,
)
from easyncd.protocol.context import CommandResponse
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element, decode, encode
from tests.protocol.helpers import START_TIME, dispatch_sync, make_clock, make_context, result_of

NS = "ValidateCert:"
NOW = datetime.datetime.fromtimestamp(START_TIME, datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def b64(self) -> str:
        return base64.b64encode(self.der).decode("ascii")


def issue(common_name: str, issuer: Issued | None = None, *, ca: bool = False,
          not_before: datetime.datetime = NOW - DAY, not_after: datetime.datetime = NOW + 30 * DAY,
          eku: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.EMAIL_PROTECTION,),
          crl: bool = False, ocsp: bool = False, signer: Issued | None = None) -> Issued:
    """A certificate; ``signer`` signs it instead of ``issuer`` (a forged signature)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    elif eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if crl:
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier("http://crl.invalid/ca.crl")], None, None, None)]),
            critical=False)
    if ocsp:
        builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP,
            x509.UniformResourceIdentifier("http://ocsp.invalid/"))]), critical=False)
    authority = signer or issuer
    signing_key = authority.key if authority is not None else key
    return Issued(builder.sign(signing_key, hashes.SHA256()), key)


class CertificateWorld:
    """A root CA, an intermediate, and leaves of every kind."""

    def __init__(self) -> None:
        self.root = issue("Test Root", ca=True, not_after=NOW + 3650 * DAY)
        self.intermediate = issue("Test Intermediate", self.root, ca=True,
                                  not_after=NOW + 365 * DAY)
        self.leaf = issue("alice@example.com", self.intermediate)
        self.direct = issue("bob@example.com", self.root)
        self.expired = issue("old", self.root, not_before=NOW - 60 * DAY, not_after=NOW - DAY)
        self.future = issue("future", self.root, not_before=NOW + DAY, not_after=NOW + 60 * DAY)
        self.self_signed = issue("me myself")
        self.server = issue("www", self.root, eku=(ExtendedKeyUsageOID.SERVER_AUTH,))
        self.any_use = issue("any", self.root, eku=None)
        self.with_crl = issue("crl", self.root, crl=True)
        self.with_ocsp = issue("ocsp", self.root, ocsp=True)
        self.forged = issue("forged", self.root, signer=self.intermediate)
        self.expired_intermediate = issue("Old Intermediate", self.root, ca=True,
                                          not_before=NOW - 90 * DAY, not_after=NOW - DAY)
        self.under_expired = issue("carol@example.com", self.expired_intermediate)
        self.not_a_ca = issue("plain", self.root)
        self.under_plain = issue("dave@example.com", self.not_a_ca)


_WORLD: CertificateWorld | None = None


def world() -> CertificateWorld:
    global _WORLD
    if _WORLD is None:
        _WORLD = CertificateWorld()
    return _WORLD


def validate_request(certificates: Iterable[str | bytes], chain: Iterable[str | bytes] = (),
                     check_crl: str | None = None) -> Element:
    root = Element(NS + "ValidateCert")
    chain = list(chain)
    if chain:
        root.append(Element(NS + "CertificateChain", None,
                            [Element(NS + "Certificate", c) for c in chain]))
    root.append(Element(NS + "Certificates", None,
                        [Element(NS + "Certificate", c) for c in certificates]))
    if check_crl is not None:
        root.add(NS + "CheckCRL", check_crl)
    return root


class ValidateCertTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.w = world()
        self.store: Any = MemoryStateStore()
        self.clock = make_clock()
        self.anchors = TrustAnchors(extra=[self.w.root.cert])

    def run_validate(self, body: Element | None, anchors: TrustAnchors | None = None,
                     version: str = "16.1") -> CommandResponse:
        ctx = make_context(self.store, "ValidateCert", version, clock=self.clock,
                           services={"certificate_trust": anchors or self.anchors})
        response = result_of(ValidateCertCommand().run(ctx, body))
        assert response.body is not None
        self.assertEqual(decode(encode(response.body)), response.body)
        return response

    def statuses(self, certificates: Iterable[str | bytes], chain: Iterable[str | bytes] = (),
                 check_crl: str | None = None, anchors: TrustAnchors | None = None) -> list[int]:
        response = self.run_validate(validate_request(certificates, chain, check_crl), anchors)
        assert response.body is not None
        self.assertEqual(response.body.findtext(NS + "Status"), "1")
        self.assertEqual(response.status, "1")
        return [int(c.findtext(NS + "Status") or 0)
                for c in response.body.findall(NS + "Certificate")]

    def test_valid_chain(self) -> None:
        w = self.w
        self.assertEqual(self.statuses([w.leaf.b64], [w.intermediate.b64]), [1])
        self.assertEqual(self.statuses([w.direct.b64]), [1])
        self.assertEqual(self.statuses([w.any_use.b64]), [1])

    def test_missing_intermediate_is_untrusted(self) -> None:
        self.assertEqual(self.statuses([self.w.leaf.b64]), [CertStatus.UntrustedSource])

    def test_untrusted_roots(self) -> None:
        w = self.w
        self.assertEqual(self.statuses([w.self_signed.b64]), [4])
        # The system store does not know the test root.
        self.assertEqual(self.statuses([w.leaf.b64], [w.intermediate.b64],
                                       anchors=TrustAnchors.system()), [4])
        # Sending the root in the chain does not make it trusted.
        self.assertEqual(self.statuses([w.direct.b64], [w.root.b64],
                                       anchors=TrustAnchors.system()), [4])

    def test_time(self) -> None:
        w = self.w
        self.assertEqual(self.statuses([w.expired.b64, w.future.b64]), [7, 7])
        self.assertEqual(self.statuses([w.under_expired.b64], [w.expired_intermediate.b64]), [8])
        # The request's clock decides: 31 days on, the leaf has expired too.
        self.clock.advance(31 * 86400)
        self.assertEqual(self.statuses([w.direct.b64]), [7])
        self.assertEqual(self.statuses([w.future.b64]), [1])

    def test_signature_and_misuse(self) -> None:
        w = self.w
        self.assertEqual(self.statuses([w.forged.b64]), [CertStatus.SignatureInvalid])
        self.assertEqual(self.statuses([w.server.b64]), [CertStatus.NotForEmail])
        self.assertEqual(self.statuses([w.under_plain.b64], [w.not_a_ca.b64]),
                         [CertStatus.ChainUsedIncorrectly])

    def test_check_crl_never_pretends(self) -> None:
        w = self.w
        self.assertEqual(self.statuses([w.with_crl.b64, w.with_ocsp.b64, w.direct.b64],
                                       check_crl="1"), [14, 14, 16])
        self.assertEqual(self.statuses([w.with_crl.b64, w.direct.b64], check_crl="0"), [1, 1])
        # An invalid certificate keeps its own status.
        self.assertEqual(self.statuses([w.expired.b64], check_crl="1"), [7])

    def test_input_forms_and_order(self) -> None:
        w = self.w
        pem = w.direct.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        wrapped = "\n".join(w.direct.b64[i:i + 64] for i in range(0, len(w.direct.b64), 64))
        self.assertEqual(
            self.statuses([w.direct.der, w.direct.b64.encode("ascii"), pem, wrapped,
                           w.expired.b64, "not base64!", b"\x30\x03\x02\x01\x01", ""]),
            [1, 1, 1, 1, 7, 10, 10, 10])
        # An unreadable chain entry is left out, the rest still helps.
        self.assertEqual(self.statuses([w.leaf.b64], ["garbage", w.intermediate.der]), [1])

    def test_system_trust_store_honours_ssl_cert_file(self) -> None:
        directory = tempfile.mkdtemp()
        path = os.path.join(directory, "roots.pem")
        with open(path, "wb") as handle:
            handle.write(self.w.root.cert.public_bytes(serialization.Encoding.PEM))
        self.addCleanup(os.rmdir, directory)
        self.addCleanup(os.remove, path)
        self.patch(os, "environ", {**os.environ, "SSL_CERT_FILE": path})
        anchors = TrustAnchors.system()
        self.assertEqual(anchors.cafile, path)
        self.assertEqual(self.statuses([self.w.leaf.b64], [self.w.intermediate.b64],
                                       anchors=anchors), [1])

    def test_protocol_errors(self) -> None:
        w = self.w
        for body in (None, Element("Settings:Settings"), Element(NS + "ValidateCert"),
                     validate_request([]),
                     validate_request([w.direct.b64], check_crl="2"),
                     Element(NS + "ValidateCert", None, [
                         Element(NS + "Certificates", None, [Element(NS + "Status", "1")])]),
                     Element(NS + "ValidateCert", None, [
                         Element(NS + "Certificates", None, [Element(NS + "Certificate", "x")]),
                         Element(NS + "Certificates", None, [Element(NS + "Certificate", "x")])]),
                     Element(NS + "ValidateCert", None, [Element(NS + "Bogus")])):
            response = self.run_validate(body)
            assert response.body is not None
            self.assertEqual(response.body.findtext(NS + "Status"), "2")
            self.assertEqual(response.body.findall(NS + "Certificate"), [])

    def test_unreadable_trust_store_is_a_server_error(self) -> None:
        broken = TrustAnchors(cafile="/nonexistent/roots.pem")
        response = self.run_validate(validate_request([self.w.direct.b64]), anchors=broken)
        assert response.body is not None
        self.assertEqual(response.body.findtext(NS + "Status"), "17")
        self.flushLoggedErrors()

    def test_through_the_dispatcher_every_version(self) -> None:
        self.patch(dispatch_module, "COMMANDS", {**COMMANDS, "ValidateCert": ValidateCertCommand})
        body = encode(validate_request([self.w.leaf.b64, self.w.expired.der],
                                       [self.w.intermediate.b64]))
        for version in ("2.5", "12.0", "12.1", "14.0", "14.1", "16.0", "16.1"):
            ctx = make_context(self.store, "ValidateCert", version, clock=self.clock,
                               config_overrides=("policy.mode=none",),
                               services={"certificate_trust": self.anchors})
            response = dispatch_sync(ctx, body)
            self.assertEqual(response.http_status, 200, version)
            assert response.body is not None
            self.assertEqual([c.findtext(NS + "Status")
                              for c in response.body.findall(NS + "Certificate")], ["1", "7"])


class HelperTests(SynchronousTestCase):
    def test_openssl_error_table(self) -> None:
        self.assertEqual(status_for_openssl_error(20, 0), CertStatus.UntrustedSource)
        self.assertEqual(status_for_openssl_error(10, 0), CertStatus.ExpiredOrNotYetValid)
        self.assertEqual(status_for_openssl_error(10, 1), CertStatus.ChainTimesInconsistent)
        self.assertEqual(status_for_openssl_error(23, 0), CertStatus.Revoked)
        self.assertEqual(status_for_openssl_error(23, 2), CertStatus.ChainRevoked)
        self.assertEqual(status_for_openssl_error(26, 0), CertStatus.NotForEmail)
        self.assertEqual(status_for_openssl_error(3, 0), CertStatus.RevocationUnknown)
        self.assertEqual(status_for_openssl_error(9999, 0), CertStatus.InformationMissing)
        self.assertEqual(status_for_openssl_error(9999, 1), CertStatus.ChainNotCorrect)

    def test_load_certificate_rejects(self) -> None:
        for value in (None, "", b"\xff\xfe", "!!!", b"\x30\x00"):
            with self.assertRaises(ValueError):
                load_certificate(value)
