"""Start the real daemon (``twistd -n easyncd``) on a free loopback port.

The tests talk HTTP to it over real sockets and manage it with the real
``easyncd-admin`` command, as an admin would.
"""
from __future__ import annotations

import atexit
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
from typing import Any, Callable, Mapping, TypeVar

import requests

from easyncd.wbxml import Element, decode, encode

BIN = os.path.dirname(sys.executable)
TWISTD = os.path.join(BIN, "twistd")
WBXML = "application/vnd.ms-sync.wbxml"
T = TypeVar("T")

#: Command codes of the base64 query form (MS-ASHTTP 2.2.1.1.1.1.2).
COMMAND_CODES = {"Sync": 0, "SendMail": 1, "SmartForward": 2, "SmartReply": 3,
                 "GetAttachment": 4, "FolderSync": 9, "FolderCreate": 10,
                 "FolderDelete": 11, "FolderUpdate": 12, "MoveItems": 13,
                 "GetItemEstimate": 14, "MeetingResponse": 15, "Search": 16,
                 "Settings": 17, "Ping": 18, "ItemOperations": 19, "Provision": 20,
                 "ResolveRecipients": 21, "ValidateCert": 22, "Find": 23}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base64_query(command: str, device_id: str, device_type: str, version: str,
                 policy_key: int | None = None, locale: int = 0x0409) -> str:
    """The base64-encoded query value of MS-ASHTTP 2.2.1.1.1.1, written here
    independently of easyncd's parser."""
    major, minor = version.split(".")
    raw = bytes([int(major) * 10 + int(minor), COMMAND_CODES[command]])
    raw += struct.pack("<H", locale)
    raw += bytes([len(device_id)]) + device_id.encode("ascii")
    if policy_key is None:
        raw += b"\x00"
    else:
        raw += b"\x04" + struct.pack("<I", policy_key)
    raw += bytes([len(device_type)]) + device_type.encode("ascii")
    return base64.b64encode(raw).decode("ascii")


class Daemon:
    """One easyncd daemon process with its own config, data and users."""

    def __init__(self, directory: str, *, database: str | None = None,
                 options: dict[str, str] | None = None, tls: dict[str, str] | None = None
                 ) -> None:
        """``tls``: {"cert": PEM path, "key": PEM path} to listen with TLS."""
        self.directory = directory
        self.port = free_port()
        self.config_path = os.path.join(directory, "easyncd.conf")
        self.log_path = os.path.join(directory, "daemon.log")
        self.data_dir = os.path.join(directory, "data")
        self.scheme = "https" if tls else "http"
        if tls:
            listen = (f"ssl:{self.port}:interface=127.0.0.1:privateKey={tls['key']}"
                      f":certKey={tls['cert']}")
        else:
            listen = f"tcp:{self.port}:interface=127.0.0.1"
        lines = ["[server]", f"listen = {listen}",
                 f"data_dir = {self.data_dir}", "max_request_size = 64K"]
        if database:
            lines += ["[store]", f"database = {database}"]
        sections: dict[str, list[str]] = {}
        for key, value in (options or {}).items():
            section, _, option = key.partition(".")
            sections.setdefault(section, []).append(f"{option} = {value}")
        for section, entries in sections.items():
            if section in ("server", "store"):
                raise ValueError("pass server/store options through the constructor")
            lines += [f"[{section}]", *entries]
        with open(self.config_path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    # -- admin -----------------------------------------------------------------

    def admin(self, *args: str, stdin: str | None = None, check: bool = True
              ) -> subprocess.CompletedProcess[str]:
        """Run ``easyncd-admin -f <config> ARGS``."""
        result = subprocess.run(
            [sys.executable, "-m", "easyncd.admin.cli", "-f", self.config_path, *args],
            input=stdin, capture_output=True, text=True, timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"easyncd-admin {' '.join(args)} failed: "
                                 f"{result.returncode} {result.stdout} {result.stderr}")
        return result

    def add_user(self, name: str, password: str) -> None:
        """Create a user in the local users file, through the CLI."""
        self.admin("user", "add", name, stdin=password + "\n")

    def devices(self) -> Any:
        """``easyncd-admin device list --json``, parsed."""
        return json.loads(self.admin("device", "list", "--json").stdout)

    # -- process -----------------------------------------------------------------

    def start(self, timeout: float = 30) -> None:
        """Start twistd and wait until the port answers."""
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [TWISTD, "-n", "--pidfile=", "easyncd", "-f", self.config_path],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.directory,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited with {self.process.returncode}:\n"
                                     + self.log())
            if "easyncd ready" in self.log():
                return
            time.sleep(0.1)
        self.stop()
        raise AssertionError("daemon did not start:\n" + self.log())

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, and the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("daemon ignored SIGTERM:\n" + self.log())
        return self.process.returncode

    def log(self) -> str:
        """Everything the daemon logged so far."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except FileNotFoundError:
            return ""

    # -- HTTP ----------------------------------------------------------------------

    @property
    def base(self) -> str:
        """http://127.0.0.1:PORT (https://localhost:PORT with TLS)"""
        if self.scheme == "https":
            return f"https://localhost:{self.port}"
        return f"http://127.0.0.1:{self.port}"

    def post(self, command: str, body: Element | bytes | None, *, user: str = "alice",
             password: str = "secret", device_id: str = "dev1", device_type: str = "TestPhone",
             version: str = "16.1", policy_key: int | None = None, base64_form: bool = False,
             content_type: str | None = WBXML, extra_query: dict[str, str] | None = None,
             ) -> requests.Response:
        """POST one EAS command."""
        headers = {}
        if base64_form:
            query = base64_query(command, device_id, device_type, version, policy_key)
        else:
            params = {"Cmd": command, "User": user, "DeviceId": device_id,
                      "DeviceType": device_type, **(extra_query or {})}
            query = urllib.parse.urlencode(params)
            headers["MS-ASProtocolVersion"] = version
            if policy_key is not None:
                headers["X-MS-PolicyKey"] = str(policy_key)
        if content_type:
            headers["Content-Type"] = content_type
        data = encode(body) if isinstance(body, Element) else (body or b"")
        return requests.post(f"{self.base}/Microsoft-Server-ActiveSync?{query}", data=data,
                             headers=headers, auth=(user, password), timeout=30)


def wbxml_of(response: requests.Response) -> Element:
    """The decoded WBXML body of a response."""
    assert response.headers.get("Content-Type") == WBXML, response.headers
    return decode(response.content)


def provision(daemon: Daemon, version: str = "16.1", **kwargs: Any) -> int:
    """The two-phase Provision (12.0+), with our own codec; the final policy key."""
    request = Element("Provision:Provision")
    if version in ("14.1", "16.0", "16.1"):
        info = request.add("Settings:DeviceInformation").add("Settings:Set")
        info.add("Settings:Model", "Test model")
        info.add("Settings:OS", "TestOS 1")
    policy = request.add("Provision:Policies").add("Provision:Policy")
    policy.add("Provision:PolicyType", "MS-EAS-Provisioning-WBXML")
    first = wbxml_of(daemon.post("Provision", request, version=version, **kwargs))
    assert first.findtext("Provision:Status") == "1", first.to_xml()
    temporary = first.findtext("Provision:Policies/Provision:Policy/Provision:PolicyKey")
    assert temporary
    ack = Element("Provision:Provision")
    policy = ack.add("Provision:Policies").add("Provision:Policy")
    policy.add("Provision:PolicyType", "MS-EAS-Provisioning-WBXML")
    policy.add("Provision:PolicyKey", temporary)
    policy.add("Provision:Status", "1")
    second = wbxml_of(daemon.post("Provision", ack, version=version,
                                  policy_key=int(temporary), **kwargs))
    assert second.findtext("Provision:Status") == "1", second.to_xml()
    final = second.findtext("Provision:Policies/Provision:Policy/Provision:PolicyKey")
    assert final and final != temporary
    return int(final)


def folder_sync(key: str = "0") -> Element:
    """A FolderSync request."""
    request = Element("FolderHierarchy:FolderSync")
    request.add("FolderHierarchy:SyncKey", key)
    return request


def mail_options(dovecot: Any, *, smtp_port: int | None = None, domain: str | None = None,
                 **extra: str) -> dict[str, str]:
    """Daemon options serving mail from a test Dovecot (``DovecotServer``):
    IMAP with STARTTLS against its CA, passwords checked by IMAP LOGIN, and,
    with ``smtp_port``, sending through that submission port as the user.
    ``extra`` adds or overrides options: ``mail_options(d, **{"policy.mode": "none"})``."""
    imap = {"host": "localhost", "port": str(dovecot.imap_port), "tls": "starttls",
            "ca_file": dovecot.ca_file}
    options = {f"imap.{key}": value for key, value in imap.items()}
    options.update({f"auth.imap_{key}": value for key, value in imap.items()})
    options.update({"imap.enabled": "yes", "auth.checkers": "imap"})
    if domain:
        options["auth.default_domain"] = domain
    if smtp_port is not None:
        options.update({"smtp.host": "localhost", "smtp.port": str(smtp_port),
                        "smtp.tls": "starttls", "smtp.ca_file": dovecot.ca_file,
                        "smtp.auth": "user"})
    options.update(extra)
    return options


class SharedMailDaemon:
    """A mail server (a ``DovecotServer`` or ``MailServers``) and a daemon
    serving it, started once and shared by the tests of a module (trial has
    no setUpClass): see :func:`shared`."""

    def __init__(self, server: Any, options: Callable[[], Mapping[str, str]], *, prefix: str,
                 own_database: bool = False) -> None:
        """``options`` is called once the server runs (its ports are known then)."""
        server.start()
        self.server = server
        self.directory = tempfile.mkdtemp(prefix=prefix)
        #: An explicit SQLite URL, for tests that open the state store themselves.
        self.database = f"sqlite:///{self.directory}/state.db" if own_database else None
        try:
            self.daemon = Daemon(self.directory, database=self.database, options=dict(options()))
        except BaseException:
            server.stop()
            raise
        try:
            self.daemon.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the daemon, then the mail server; remove the directory."""
        try:
            if self.daemon.process is not None:
                self.daemon.stop()
        finally:
            self.server.stop()
            shutil.rmtree(self.directory, ignore_errors=True)


_SHARED: dict[Any, Any] = {}


def shared(key: Any, make: Callable[[], T]) -> T:
    """The environment made by ``make`` for ``key``, made once per test run
    and stopped at exit (``make`` returns something with ``stop()``)."""
    if key not in _SHARED:
        environment = make()
        atexit.register(environment.stop)  # type: ignore[attr-defined]
        _SHARED[key] = environment
    return _SHARED[key]  # type: ignore[no-any-return]
