"""The HTTP layer in memory: the real site, resource tree and HTTP parser fed
raw bytes through a StringTransport, with the memory store and a fake clock."""
from __future__ import annotations

import base64
import os
import tempfile

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from easyncd.backends.interfaces import AuthBackendUnavailable, IAuthenticator
from easyncd.http.activesync import Services
from easyncd.http.auth import Authenticator
from easyncd.http.autodiscover import parse_request
from easyncd.http.root import build_root
from easyncd.http.site import EASSite
from easyncd.http.trace import ProtocolTracer
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element, decode, encode
from tests.protocol.helpers import make_clock, make_config


@implementer(IAuthenticator)
class DictChecker:
    """Accepts the passwords of a dict; can be switched to 'unavailable'."""

    def __init__(self, passwords: dict[str, str]) -> None:
        self.passwords = passwords
        self.down = False

    def authenticate(self, username: str, password: str) -> Deferred[bool]:
        if self.down:
            return fail(AuthBackendUnavailable("backend down"))
        return succeed(self.passwords.get(username) == password)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class HTTPTests(SynchronousTestCase):
    """Requests through the real resource tree."""

    def setUp(self) -> None:
        self.clock = make_clock()
        self.tmp = tempfile.mkdtemp()
        self.config = make_config([f"server.data_dir={self.tmp}", "server.max_request_size=1K",
                                   "auth.failure_delay=0"])
        self.store = MemoryStateStore()
        self.checker = DictChecker({"alice": "secret"})
        self.services = Services(
            config=self.config, store=self.store,
            authenticator=Authenticator(self.config, self.clock, checkers=[self.checker]),
            clock=self.clock,
            tracer=ProtocolTracer(os.path.join(self.tmp, "traces"), users=["alice"]),
        )
        self.site = EASSite(build_root(self.services), self.config.server.max_request_size)

    def request(self, method: str, path: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[bytes, bytes]:
        """Send one raw request; the raw head and body of the answer."""
        channel = self.site.buildProtocol(None)
        transport = StringTransport()
        channel.makeConnection(transport)
        lines = [f"{method} {path} HTTP/1.1", "Host: eas.example.org",
                 f"Content-Length: {len(body)}"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        channel.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        self.clock.advance(1)
        raw = transport.value()
        head, _, rest = raw.partition(b"\r\n\r\n")
        channel.connectionLost(None)
        return head, rest

    def eas(self, command: str, body: Element | bytes | None, *, version: str = "16.1",
            policy_key: int | None = None, auth: str = basic("alice", "secret"),
            content_type: str = "application/vnd.ms-sync.wbxml",
            query: str | None = None) -> tuple[bytes, bytes]:
        headers = {"Authorization": auth, "MS-ASProtocolVersion": version,
                   "Content-Type": content_type}
        if policy_key is not None:
            headers["X-MS-PolicyKey"] = str(policy_key)
        data = encode(body) if isinstance(body, Element) else (body or b"")
        path = "/Microsoft-Server-ActiveSync?" + (
            query or f"Cmd={command}&User=alice&DeviceId=dev1&DeviceType=Phone")
        return self.request("POST", path, data, headers)

    def test_options_spells_eas_headers_exactly(self) -> None:
        head, _ = self.request("OPTIONS", "/Microsoft-Server-ActiveSync",
                               headers={"Authorization": basic("alice", "secret")})
        self.assertIn(b"HTTP/1.1 200", head)
        self.assertIn(b"\r\nMS-ASProtocolVersions: 2.5,12.0,12.1,14.0,14.1,16.0,16.1", head)
        self.assertIn(b"\r\nMS-ASProtocolCommands: ", head)
        self.assertIn(b"\r\nMS-Server-ActiveSync: 16.1", head)
        self.assertNotIn(b"Ms-Asprotocolversions", head)
        # No mail service here: the commands that need it are not offered.
        commands = head.split(b"MS-ASProtocolCommands: ")[1].split(b"\r\n")[0].split(b",")
        self.assertIn(b"Sync", commands)
        for needs_mail in (b"SendMail", b"SmartReply", b"SmartForward", b"GetAttachment"):
            self.assertNotIn(needs_mail, commands)

    def test_highest_version_is_configurable(self) -> None:
        self.services.config = make_config([f"server.data_dir={self.tmp}",
                                            "server.highest_version=14.1"])
        head, _ = self.request("OPTIONS", "/MICROSOFT-SERVER-ACTIVESYNC",
                               headers={"Authorization": basic("alice", "secret")})
        self.assertIn(b"MS-ASProtocolVersions: 2.5,12.0,12.1,14.0,14.1\r\n", head)

    def test_unauthenticated_gets_basic_challenge(self) -> None:
        for auth in (None, basic("alice", "nope"), "Bearer abc", "Basic !!!"):
            headers = {"Authorization": auth} if auth else {}
            head, _ = self.request("OPTIONS", "/Microsoft-Server-ActiveSync", headers=headers)
            self.assertIn(b"HTTP/1.1 401", head, auth)
            self.assertIn(b'\r\nWWW-Authenticate: Basic realm="easyncd", charset="UTF-8"', head)

    def test_backend_down_is_503(self) -> None:
        self.checker.down = True
        head, _ = self.request("OPTIONS", "/Microsoft-Server-ActiveSync",
                               headers={"Authorization": basic("alice", "secret")})
        self.assertIn(b"HTTP/1.1 503", head)

    def test_oversized_body_is_413_and_not_buffered(self) -> None:
        head, _ = self.eas("FolderSync", b"\x03\x01\x6a\x00" + b"x" * 5000)
        self.assertIn(b"HTTP/1.1 413", head)
        self.assertEqual(self.store.devices if hasattr(self.store, "devices") else {}, {})

    def test_bad_query_and_content_type(self) -> None:
        head, _ = self.eas("FolderSync", b"", query="Cmd=FolderSync&User=alice")
        self.assertIn(b"HTTP/1.1 400", head)
        head, _ = self.eas("FolderSync", b"<html/>", content_type="text/html")
        self.assertIn(b"HTTP/1.1 415", head)
        head, _ = self.eas("FolderSync", b"", query="%%%")
        self.assertIn(b"HTTP/1.1 400", head)

    def test_449_has_its_reason_phrase_before_14(self) -> None:
        request = Element("FolderHierarchy:FolderSync")
        request.add("FolderHierarchy:SyncKey", "0")
        head, _ = self.eas("FolderSync", request, version="12.1")
        self.assertTrue(head.startswith(b"HTTP/1.1 449 Retry With"), head)

    def test_provision_then_foldersync_and_trace(self) -> None:
        request = Element("Provision:Provision")
        info = request.add("Settings:DeviceInformation").add("Settings:Set")
        info.add("Settings:Model", "Unit")
        request.add("Provision:Policies").add("Provision:Policy").add(
            "Provision:PolicyType", "MS-EAS-Provisioning-WBXML")
        head, body = self.eas("Provision", request)
        self.assertIn(b"HTTP/1.1 200", head)
        self.assertIn(b"Content-Type: application/vnd.ms-sync.wbxml", head)
        answer = decode(body)
        temporary = answer.findtext("Provision:Policies/Provision:Policy/Provision:PolicyKey")
        ack = Element("Provision:Provision")
        policy = ack.add("Provision:Policies").add("Provision:Policy")
        policy.add("Provision:PolicyType", "MS-EAS-Provisioning-WBXML")
        policy.add("Provision:PolicyKey", temporary)
        policy.add("Provision:Status", "1")
        _, body = self.eas("Provision", ack, policy_key=int(temporary or 0))
        final = int(decode(body).findtext("Provision:Policies/Provision:Policy/"
                                          "Provision:PolicyKey") or 0)
        sync = Element("FolderHierarchy:FolderSync")
        sync.add("FolderHierarchy:SyncKey", "0")
        head, body = self.eas("FolderSync", sync, policy_key=final)
        self.assertEqual(decode(body).findtext("FolderHierarchy:Status"), "1")
        with open(os.path.join(self.tmp, "traces", "dev1.log"), encoding="utf-8") as handle:
            trace = handle.read()
        self.assertIn("FolderHierarchy", trace)
        self.assertIn("Authorization: (removed)", trace)
        self.assertNotIn(basic("alice", "secret").split()[1], trace)

    def test_unknown_paths_and_get(self) -> None:
        head, _ = self.request("GET", "/nothing-here")
        self.assertIn(b"HTTP/1.1 404", head)
        head, _ = self.request("GET", "/Microsoft-Server-ActiveSync",
                               headers={"Authorization": basic("alice", "secret")})
        self.assertIn(b"HTTP/1.1 405", head)

    def test_autodiscover_refuses_doctype(self) -> None:
        with self.assertRaises(ValueError):
            parse_request(b'<!DOCTYPE x [<!ENTITY a "b">]><Autodiscover/>')
        email, schema = parse_request(
            b'<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/'
            b'requestschema/2006"><Request><EMailAddress>a@b.c</EMailAddress>'
            b'<AcceptableResponseSchema>s</AcceptableResponseSchema></Request></Autodiscover>')
        self.assertEqual((email, schema), ("a@b.c", "s"))
