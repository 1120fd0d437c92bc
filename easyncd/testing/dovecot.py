"""A throwaway Dovecot for integration tests.

:class:`DovecotServer` writes a ``dovecot.conf`` into a fresh temporary
directory (runtime, state, logs, mail and a passwd-file all live there),
generates a CA and a server certificate for ``localhost``/``127.0.0.1`` with
``cryptography``, starts ``dovecot -F -c CONF`` on free ports of 127.0.0.1
(IMAP with STARTTLS, and IMAPS) and waits until both answer.  ``stop()`` ends
it and removes the directory.  Blocking calls: use them in ``setUp`` /
cleanups, not inside reactor callbacks.

Usage::

    server = DovecotServer({"alice": "secret"})
    server.start()
    self.addCleanup(server.stop)
    server.imap_port, server.imaps_port, server.ca_file
"""
from __future__ import annotations

import datetime
import grp
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Mapping

DOVECOT = shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin:" + os.environ.get("PATH", "")) \
    or "/usr/sbin/dovecot"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def make_certificates(directory: str, hostname: str = "localhost") -> dict[str, str]:
    """Write a throwaway CA and a server certificate signed by it (PEM files).

    Returns the paths: ``ca`` (CA certificate), ``cert`` and ``key`` (the
    server's, valid for ``hostname``, ``localhost`` and ``127.0.0.1``).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "easyncd test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(hostname)]
    if hostname != "localhost":
        names.append(x509.DNSName("localhost"))
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    paths = {name: os.path.join(directory, f"{name}.pem") for name in ("ca", "cert", "key")}
    with open(paths["ca"], "wb") as handle:
        handle.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["cert"], "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["key"], "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    os.chmod(paths["key"], 0o600)
    return paths


def _ids() -> dict[str, str | int]:
    """Who Dovecot's processes and the mail files run as."""
    if os.geteuid() == 0:
        internal = "dovecot" if _user_exists("dovecot") else "nobody"
        login = "dovenull" if _user_exists("dovenull") else "nobody"
        mail = pwd.getpwnam("nobody")
        return {"internal": internal, "login": login, "uid": mail.pw_uid, "gid": mail.pw_gid}
    me = pwd.getpwuid(os.geteuid()).pw_name
    return {"internal": me, "login": me, "uid": os.geteuid(), "gid": os.getegid()}


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class DovecotError(Exception):
    """Dovecot did not start; the message carries the end of its log."""


class DovecotServer:
    """A private Dovecot (IMAP + IMAPS on 127.0.0.1) with the given ``users`` (name -> password)."""

    host = "127.0.0.1"

    def __init__(self, users: Mapping[str, str], *, extra_config: str = "") -> None:
        self.users = dict(users)
        self.extra_config = extra_config
        self.directory = ""
        self.imap_port = 0
        self.imaps_port = 0
        self.ca_file = ""
        self.cert_file = ""
        self.key_file = ""
        self.config_file = ""
        self.log_file = ""
        self._process: subprocess.Popen[bytes] | None = None

    def mail_dir(self, user: str) -> str:
        """The user's home (its mail is in ``Maildir`` below it)."""
        return os.path.join(self.directory, "home", user)

    def _write_config(self) -> None:
        ids = _ids()
        d = self.directory
        for sub in ("run", "state", "home"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        os.chown(os.path.join(d, "home"), int(ids["uid"]), int(ids["gid"]))
        paths = make_certificates(d)
        self.ca_file, self.cert_file, self.key_file = paths["ca"], paths["cert"], paths["key"]
        passwd = os.path.join(d, "passwd")
        with open(passwd, "w", encoding="utf-8") as handle:
            for name, password in self.users.items():
                handle.write(f"{name}:{{PLAIN}}{password}::::::\n")
        if os.geteuid() == 0:
            # The auth process reads the passwd-file as the internal user.
            internal = pwd.getpwnam(str(ids["internal"]))
            os.chown(passwd, internal.pw_uid, internal.pw_gid)
        os.chmod(passwd, 0o600)
        self.log_file = os.path.join(d, "dovecot.log")
        self.imap_port, self.imaps_port = free_port(), free_port()
        while self.imaps_port == self.imap_port:
            self.imaps_port = free_port()
        group = grp.getgrgid(int(ids["gid"])).gr_name
        config = f"""\
# Written by easyncd.testing.dovecot for a test run.
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
instance_name = easyncd-test-{os.path.basename(d)}
log_path = {self.log_file}
info_log_path = {self.log_file}
debug_log_path = {self.log_file}
default_internal_user = {ids["internal"]}
default_login_user = {ids["login"]}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
mail_uid = {ids["uid"]}
mail_gid = {group}
ssl = yes
ssl_cert = <{self.cert_file}
ssl_key = <{self.key_file}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid={ids["uid"]} gid={ids["gid"]} home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
{self.extra_config}
"""
        self.config_file = os.path.join(d, "dovecot.conf")
        with open(self.config_file, "w", encoding="utf-8") as handle:
            handle.write(config)

    def start(self, timeout: float = 20.0) -> None:
        """Start Dovecot and wait until both ports greet; :class:`DovecotError` if not."""
        self.directory = tempfile.mkdtemp(prefix="easyncd-dovecot-")
        os.chmod(self.directory, 0o755)
        self._write_config()
        self._process = subprocess.Popen(
            [DOVECOT, "-F", "-c", self.config_file],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        waiting = [self.imap_port, self.imaps_port]
        while waiting:
            if self._process.poll() is not None:
                output = self._process.stdout.read().decode("utf-8", "replace") if self._process.stdout else ""
                self._process = None
                log = self.log_tail()
                self._cleanup()
                raise DovecotError(f"dovecot exited: {output.strip()}\n{log}")
            if time.monotonic() > deadline:
                log = self.log_tail()
                self.stop()
                raise DovecotError(f"dovecot did not listen within {timeout}s\n{log}")
            try:
                with socket.create_connection((self.host, waiting[0]), timeout=1):
                    waiting.pop(0)
            except OSError:
                time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        """The end of Dovecot's log, for error messages."""
        try:
            with open(self.log_file, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop Dovecot (if running) and remove its directory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and process.stdout is not None:
            process.stdout.close()
        self._cleanup()

    def _cleanup(self) -> None:
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = ""
