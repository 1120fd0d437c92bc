"""ValidateCert (MS-ASCMD 2.2.1.22): is an S/MIME certificate trustworthy?

The device sends one or more certificates (``Certificates/Certificate``,
base64 DER as the spec says; opaque DER, base64 bytes and PEM are accepted
too), optional intermediate certificates (``CertificateChain/Certificate``)
and ``CheckCRL``.  Each certificate is verified with OpenSSL (pyOpenSSL's
``X509Store`` / ``X509StoreContext``) against the trust anchors - the
system's trust store by default (``ssl.get_default_verify_paths()``, so
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` are honoured) - at the request's clock
time, then checked for e-mail use (extended key usage / key usage).

Revocation: easyncd fetches nothing from the network.  With ``CheckCRL`` = 1
a certificate that is otherwise valid is therefore *not* reported valid: it
gets Status 14 ("the server that provides this information cannot be
contacted") when its chain names a CRL distribution point or an OCSP
responder, and 16 ("revocation status cannot be determined") when it names
none.  With ``CheckCRL`` absent or 0 the revocation status is ignored, as
the element asks.

Answer: top ``Status`` 1 when the request could be read (whatever the
certificates' own results), 2 for a malformed request, 17 when the server
cannot verify at all (trust store unreadable); then one ``Certificate``
with its ``Status`` per requested certificate, in request order.
"""
from __future__ import annotations

import base64
import binascii
import datetime
import os
import re
import ssl
from enum import IntEnum
from typing import Any, Iterable, Sequence

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID
from OpenSSL import crypto

from easyncd.protocol.commands.base import Command
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.wbxml import Element

NS = "ValidateCert:"


class CertStatus(IntEnum):
    """Status (ValidateCert), MS-ASCMD 2.2.3.177.18."""

    Success = 1
    ProtocolError = 2
    SignatureInvalid = 3
    UntrustedSource = 4
    ChainNotCorrect = 5
    NotForEmail = 6
    ExpiredOrNotYetValid = 7
    ChainTimesInconsistent = 8
    UsedIncorrectly = 9
    InformationMissing = 10
    ChainUsedIncorrectly = 11
    AddressMismatch = 12
    Revoked = 13
    RevocationServerUnreachable = 14
    ChainRevoked = 15
    RevocationUnknown = 16
    ServerError = 17


# OpenSSL 3 X509_V_ERR_* codes (x509_vfy.h) and what ValidateCert calls them.
_UNTRUSTED = frozenset({2, 18, 19, 20, 21, 27, 28})      # no issuer, self-signed, not trusted
_SIGNATURE = frozenset({4, 7, 8, 66, 67, 68, 76, 77, 78})  # bad / too weak / mismatched signature
_TIME = frozenset({9, 10})                                # not yet valid, expired
_BAD_FIELDS = frozenset({6, 13, 14, 15, 16, 24, 34, 41, 42, 45, 83, 84,
                         *range(56, 62), *range(85, 95)})  # malformed or unusable fields
_MISUSED_CA = frozenset({25, 32, 37, 38, 47, 48, 79, 80, 81, 82})  # CA rules broken
_PURPOSE = frozenset({26, 39})                            # not for this use
_REVOKED = 23
_CHAIN_BROKEN = frozenset({22, 29, 30, 31, 55})           # too long, mismatched links, loop
_NO_REVOCATION = frozenset({3, 5, 11, 12, 33, 35, 36, 44, 54, 73, 74, 75})  # CRL / OCSP trouble
_ADDRESS = 63
_INTERNAL = frozenset({1, 17, 50, 69, 70})                # the verifier's own trouble


def status_for_openssl_error(code: int, depth: int) -> CertStatus:
    """The ValidateCert status for an OpenSSL verification error at ``depth``
    (0: the certificate itself, 1+: a certificate of its chain)."""
    leaf = depth == 0
    if code in _UNTRUSTED:
        return CertStatus.UntrustedSource
    if code in _SIGNATURE:
        return CertStatus.SignatureInvalid
    if code in _TIME:
        return CertStatus.ExpiredOrNotYetValid if leaf else CertStatus.ChainTimesInconsistent
    if code in _BAD_FIELDS:
        return CertStatus.InformationMissing
    if code in _MISUSED_CA:
        return CertStatus.UsedIncorrectly if leaf else CertStatus.ChainUsedIncorrectly
    if code in _PURPOSE:
        return CertStatus.NotForEmail if leaf else CertStatus.ChainUsedIncorrectly
    if code == _REVOKED:
        return CertStatus.Revoked if leaf else CertStatus.ChainRevoked
    if code in _CHAIN_BROKEN:
        return CertStatus.ChainNotCorrect
    if code in _NO_REVOCATION:
        return CertStatus.RevocationUnknown
    if code == _ADDRESS:
        return CertStatus.AddressMismatch
    if code in _INTERNAL:
        return CertStatus.ServerError
    return CertStatus.InformationMissing if leaf else CertStatus.ChainNotCorrect


# -- trust anchors --------------------------------------------------------------------


_PEM_BLOCK = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.+?-----END CERTIFICATE-----", re.DOTALL)


class TrustStoreError(Exception):
    """The trust anchors cannot be read (ValidateCert Status 17)."""


class TrustAnchors:
    """The certificates ValidateCert trusts: a PEM bundle (read once, kept
    parsed), a hashed directory (looked up lazily by OpenSSL) and extra
    anchors.

    :meth:`store` builds a fresh OpenSSL store per verification time: an
    ``X509Store``'s time cannot be moved once set.
    """

    def __init__(self, cafile: str | None = None, capath: str | None = None,
                 extra: Iterable[x509.Certificate] = ()) -> None:
        self.cafile = cafile
        self.capath = capath
        self.extra = tuple(extra)
        self._anchors: list[crypto.X509] | None = None

    @classmethod
    def system(cls) -> "TrustAnchors":
        """The system trust store, as ``ssl.get_default_verify_paths()`` finds it."""
        paths = ssl.get_default_verify_paths()
        return _system_anchors(paths.cafile, paths.capath)

    def _load(self) -> list[crypto.X509]:
        if self._anchors is None:
            anchors = [crypto.X509.from_cryptography(c) for c in self.extra]
            if self.cafile:
                try:
                    with open(self.cafile, "rb") as handle:
                        bundle = handle.read()
                except OSError as exc:
                    raise TrustStoreError(f"{self.cafile}: {exc}") from None
                # One by one through OpenSSL itself: a system root that a
                # stricter parser would refuse must not take the others along.
                for block in _PEM_BLOCK.findall(bundle):
                    try:
                        anchors.append(crypto.load_certificate(crypto.FILETYPE_PEM, block))
                    except crypto.Error:
                        continue
            self._anchors = anchors
        return self._anchors

    def store(self, when: datetime.datetime) -> crypto.X509Store:
        """An OpenSSL store verifying as of ``when``; TrustStoreError if the
        trust files cannot be read."""
        store = crypto.X509Store()
        try:
            if self.capath and os.path.isdir(self.capath):
                store.load_locations(None, self.capath)
            for anchor in self._load():
                store.add_cert(anchor)
        except crypto.Error as exc:
            raise TrustStoreError(str(exc)) from None
        store.set_time(when)
        return store


_SYSTEM_CACHE: dict[tuple[str | None, str | None], TrustAnchors] = {}


def _system_anchors(cafile: str | None, capath: str | None) -> TrustAnchors:
    key = (cafile, capath)
    anchors = _SYSTEM_CACHE.get(key)
    if anchors is None:
        anchors = _SYSTEM_CACHE[key] = TrustAnchors(cafile, capath)
    return anchors


# -- certificates -----------------------------------------------------------------------


def load_certificate(value: str | bytes | None) -> x509.Certificate:
    """A certificate from an element's content: DER (opaque), base64 DER (the
    spec's form, as text or opaque bytes) or PEM.  ValueError if it is none."""
    if value is None:
        raise ValueError("empty certificate")
    if isinstance(value, bytes):
        if value[:1] == b"\x30":
            return x509.load_der_x509_certificate(value)
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("neither DER nor base64") from None
    else:
        text = value
    if "-----BEGIN" in text:
        return x509.load_pem_x509_certificate(text.encode("ascii", "replace"))
    compact = "".join(text.split())
    try:
        der = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    return x509.load_der_x509_certificate(der)


def _email_use_problem(cert: x509.Certificate) -> bool:
    """Whether the certificate's own extensions forbid S/MIME use."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        pass
    else:
        if ExtendedKeyUsageOID.EMAIL_PROTECTION not in eku \
                and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku:
            return True
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    key_agreement = usage.key_agreement
    return not (usage.digital_signature or usage.content_commitment
                or usage.key_encipherment or key_agreement)


def _names_revocation_source(cert: x509.Certificate) -> bool:
    """Whether the certificate points to a CRL or an OCSP responder."""
    try:
        cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
        return True
    except x509.ExtensionNotFound:
        pass
    try:
        access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return False
    return any(d.access_method == AuthorityInformationAccessOID.OCSP for d in access)


def validate_certificate(cert: x509.Certificate, chain: Sequence[x509.Certificate],
                         store: crypto.X509Store, *, check_crl: bool) -> CertStatus:
    """The ValidateCert status of one certificate (see the module text),
    verified against ``store`` (:meth:`TrustAnchors.store`) with the
    untrusted intermediates ``chain``."""
    context = crypto.X509StoreContext(
        store, crypto.X509.from_cryptography(cert),
        [crypto.X509.from_cryptography(c) for c in chain],
    )
    try:
        verified = context.get_verified_chain()
    except crypto.X509StoreContextError as exc:
        code, depth = int(exc.errors[0]), int(exc.errors[1])
        return status_for_openssl_error(code, depth)
    if _email_use_problem(cert):
        return CertStatus.NotForEmail
    if check_crl:
        # Every certificate but the trust anchor could be revoked.
        issued = [c.to_cryptography() for c in verified[:-1]] or [cert]
        if any(_names_revocation_source(c) for c in issued):
            return CertStatus.RevocationServerUnreachable
        return CertStatus.RevocationUnknown
    return CertStatus.Success


# -- the command ----------------------------------------------------------------------------


class _Malformed(Exception):
    """The request does not follow ValidateCert's grammar."""


def _parse(body: Element | None) -> tuple[list[str | bytes | None], list[str | bytes | None], bool]:
    """(certificates, chain, check_crl) of a request; _Malformed otherwise."""
    if body is None or body.tag != NS + "ValidateCert":
        raise _Malformed("not a ValidateCert request")
    certificates: list[str | bytes | None] | None = None
    chain: list[str | bytes | None] = []
    check_crl = False
    seen: set[str] = set()
    for child in body.children:
        if child.tag in seen:
            raise _Malformed(f"{child.tag} twice")
        seen.add(child.tag)
        if child.tag in (NS + "Certificates", NS + "CertificateChain"):
            values: list[str | bytes | None] = []
            for entry in child.children:
                if entry.tag != NS + "Certificate" or entry.children:
                    raise _Malformed(f"{entry.tag} in {child.tag}")
                values.append(entry.text)
            if child.tag == NS + "Certificates":
                certificates = values
            else:
                chain = values
        elif child.tag == NS + "CheckCRL":
            text = child.text.decode("ascii", "replace") if isinstance(child.text, bytes) \
                else (child.text or "")
            if text.strip() not in ("0", "1"):
                raise _Malformed(f"CheckCRL {text!r}")
            check_crl = text.strip() == "1"
        else:
            raise _Malformed(f"unexpected {child.tag}")
    if not certificates:
        raise _Malformed("no certificate to validate")
    return certificates, chain, check_crl


def _top(status: CertStatus) -> CommandResponse:
    root = Element(NS + "ValidateCert")
    root.add(NS + "Status", str(int(status)))
    return CommandResponse(body=root, status=str(int(status)))


class ValidateCertCommand(Command):
    """``Cmd=ValidateCert`` (every protocol version)."""

    name = "ValidateCert"

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        """Validate each certificate of the request."""
        try:
            certificates, chain_values, check_crl = _parse(body)
        except _Malformed as exc:
            ctx.log.info("ValidateCert from {device_id}: protocol error ({reason})",
                         device_id=ctx.request.device_id, reason=str(exc))
            return _top(CertStatus.ProtocolError)
        chain: list[x509.Certificate] = []
        for value in chain_values:
            try:
                chain.append(load_certificate(value))
            except ValueError:
                continue  # an unreadable intermediate helps no chain: leave it out
        anchors: TrustAnchors = ctx.services.get("certificate_trust") or TrustAnchors.system()
        clock: Any = ctx.clock
        when = datetime.datetime.fromtimestamp(float(clock.seconds()), datetime.timezone.utc)
        try:
            store = anchors.store(when)
        except TrustStoreError:
            ctx.log.failure("ValidateCert: the trust anchors cannot be loaded")
            return _top(CertStatus.ServerError)
        results: list[CertStatus] = []
        for value in certificates:
            try:
                cert = load_certificate(value)
            except ValueError:
                results.append(CertStatus.InformationMissing)
                continue
            results.append(validate_certificate(cert, chain, store, check_crl=check_crl))
        root = Element(NS + "ValidateCert")
        root.add(NS + "Status", str(int(CertStatus.Success)))
        for result in results:
            root.add(NS + "Certificate").add(NS + "Status", str(int(result)))
        ctx.log.info("ValidateCert from {device_id}: {results}",
                     device_id=ctx.request.device_id,
                     results=",".join(str(int(r)) for r in results))
        return CommandResponse(body=root, status=str(int(CertStatus.Success)))


__all__ = [
    "CertStatus", "TrustAnchors", "TrustStoreError", "ValidateCertCommand", "load_certificate",
    "status_for_openssl_error", "validate_certificate",
]
