"""A real SMTP server for integration tests: Postfix delivering into a test Dovecot.

:class:`MailServers` starts a :class:`~easyncd.testing.dovecot.DovecotServer`
with an LMTP listener and an auth listener on loopback ports, then a private
Postfix instance (``master -c DIR``) with a throw-away configuration
directory, queue and log under a fresh temporary directory.  Postfix listens on
127.0.0.1 only:

* ``smtp_port``: plain SMTP, STARTTLS offered (not required), no AUTH; accepts
  mail for the test domain only (``rcpt`` of an unknown local user gets 550,
  of ``busy_address`` 450).
* ``submission_port``: STARTTLS required, AUTH PLAIN/LOGIN required (checked by
  Dovecot's auth through ``smtpd_sasl_type = dovecot``).
* ``smtps_port``: implicit TLS, AUTH required.

Mail for ``user@domain`` is handed by LMTP to Dovecot and lands in the INBOX
of the Dovecot user ``user`` (LMTP strips the domain).  Mail for any other
domain is refused at RCPT without AUTH, and bounced (not relayed) with it:
nothing ever leaves the machine.  The TLS certificate is Dovecot's test one
(``ca_file``).  Nothing in ``/etc/postfix`` is read or written except the
package's own ``postfix-files`` (``meta_directory``).

Needs the Debian packages ``postfix`` (installed with "No configuration") and
``dovecot-lmtpd``.  Blocking calls: use them in ``setUp`` / cleanups.

Usage::

    servers = MailServers({"alice": "pw", "bob": "pw"})
    servers.start()
    self.addCleanup(servers.stop)
    servers.smtp_port, servers.submission_port, servers.ca_file
    servers.dovecot.imap_port
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any, Mapping

from easyncd.testing.dovecot import DovecotServer, free_port

POSTFIX = shutil.which("postfix", path="/usr/sbin:/usr/local/sbin:" + os.environ.get("PATH", "")) \
    or "/usr/sbin/postfix"
POSTFIX_DAEMONS = "/usr/lib/postfix/sbin"
#: The Postfix user and set-gid group the Debian package creates.
POSTFIX_USER = "postfix"
POSTFIX_GROUP = "postdrop"


class MailServerError(Exception):
    """Postfix (or its Dovecot) did not start; the message carries the end of its log."""


def dovecot_delivery_config(lmtp_port: int, auth_port: int) -> str:
    """Dovecot settings adding LMTP (domain stripped) and an auth listener for Postfix SASL."""
    return f"""
protocols = imap lmtp
protocol lmtp {{
  auth_username_format = %Ln
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
service auth {{
  inet_listener auth-postfix {{
    address = 127.0.0.1
    port = {auth_port}
  }}
}}
"""


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


class MailServers:
    """Dovecot (IMAP, LMTP, auth) plus Postfix (SMTP) on 127.0.0.1 for the given users."""

    host = "127.0.0.1"

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        domain: str = "example.test",
        dovecot_extra_config: str = "",
        message_size_limit: int = 10 * 1024 * 1024,
    ) -> None:
        self.users = dict(users)
        self.domain = domain
        self.message_size_limit = message_size_limit
        self.lmtp_port, self.auth_port = _free_ports(2)
        self.dovecot = DovecotServer(
            self.users,
            extra_config=dovecot_delivery_config(self.lmtp_port, self.auth_port)
            + dovecot_extra_config,
        )
        self.directory = ""
        self.smtp_port = 0
        self.submission_port = 0
        self.smtps_port = 0
        self.log_file = ""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> str:
        """The CA that signed both servers' certificate (PEM)."""
        return self.dovecot.ca_file

    @property
    def busy_address(self) -> str:
        """A recipient the server always refuses temporarily (450)."""
        return f"busy@{self.domain}"

    def address(self, user: str) -> str:
        """``user@domain``."""
        return f"{user}@{self.domain}"

    def start(self, timeout: float = 30.0) -> None:
        """Start Dovecot, then Postfix; wait until every SMTP port greets."""
        self.dovecot.start()
        try:
            self._start_postfix(timeout)
        except BaseException:
            self.stop()
            raise

    def _write_config(self) -> str:
        d = self.directory
        etc = os.path.join(d, "etc")
        queue = os.path.join(d, "queue")
        data = os.path.join(d, "data")
        for path in (etc, queue, data):
            os.makedirs(path, exist_ok=True)
        shutil.chown(data, POSTFIX_USER)
        self.log_file = os.path.join(d, "postfix.log")
        self.smtp_port, self.submission_port, self.smtps_port = _free_ports(3)
        mailboxes = os.path.join(etc, "mailboxes")
        with open(mailboxes, "w", encoding="utf-8") as handle:
            for user in self.users:
                handle.write(f"{self.address(user)} {user}\n")
        access = os.path.join(etc, "recipient-access")
        with open(access, "w", encoding="utf-8") as handle:
            handle.write(f"{self.busy_address} 450 4.2.1 mailbox busy, try again later\n")
        main_cf = f"""\
# Written by easyncd.testing.smtpserver for a test run.
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
command_directory = /usr/sbin
daemon_directory = {POSTFIX_DAEMONS}
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = {POSTFIX_USER}
setgid_group = {POSTFIX_GROUP}
maillog_file = {self.log_file}
maillog_file_prefixes = {d}
myhostname = mail.{self.domain}
mydomain = {self.domain}
myorigin = $mydomain
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
alias_maps =
alias_database =
local_recipient_maps =
relayhost =
virtual_mailbox_domains = {self.domain}
virtual_mailbox_maps = texthash:{mailboxes}
virtual_transport = lmtp:inet:127.0.0.1:{self.lmtp_port}
default_transport = error:mail to other domains is not delivered by the test server
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access texthash:{access}, reject_unlisted_recipient
message_size_limit = {self.message_size_limit}
smtpd_tls_cert_file = {self.dovecot.cert_file}
smtpd_tls_key_file = {self.dovecot.key_file}
smtpd_tls_security_level = may
smtpd_tls_auth_only = no
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{self.auth_port}
smtpd_sasl_auth_enable = no
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 100
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""
        auth = ("-o smtpd_sasl_auth_enable=yes "
                "-o smtpd_client_restrictions=permit_sasl_authenticated,reject")
        master_cf = f"""\
127.0.0.1:{self.smtp_port} inet n - n - - smtpd
127.0.0.1:{self.submission_port} inet n - n - - smtpd -o smtpd_tls_security_level=encrypt {auth}
127.0.0.1:{self.smtps_port} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes {auth}
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""
        with open(os.path.join(etc, "main.cf"), "w", encoding="utf-8") as handle:
            handle.write(main_cf)
        with open(os.path.join(etc, "master.cf"), "w", encoding="utf-8") as handle:
            handle.write(master_cf)
        return etc

    def _start_postfix(self, timeout: float) -> None:
        self.directory = tempfile.mkdtemp(prefix="easyncd-postfix-")
        os.chmod(self.directory, 0o755)
        etc = self._write_config()
        # "postfix check" creates the queue directories with their owners.
        check = subprocess.run(
            [POSTFIX, "-c", etc, "check"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
        )
        if check.returncode != 0:
            raise MailServerError(
                "postfix check failed: " + (check.stdout + check.stderr).decode("utf-8", "replace")
            )
        self._process = subprocess.Popen(
            [os.path.join(POSTFIX_DAEMONS, "master"), "-c", etc, "-d"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        waiting = [self.smtp_port, self.submission_port, self.smtps_port]
        while waiting:
            if self._process.poll() is not None:
                output = self._process.stdout.read().decode("utf-8", "replace") \
                    if self._process.stdout else ""
                self._process = None
                raise MailServerError(f"postfix master exited: {output.strip()}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise MailServerError(f"postfix did not listen within {timeout}s\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, waiting[0]), timeout=1):
                    waiting.pop(0)
            except OSError:
                time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        """The end of Postfix's log, for error messages."""
        try:
            with open(self.log_file, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop Postfix and Dovecot and remove their directories."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process is not None and process.stdout is not None:
            process.stdout.close()
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = ""
        self.dovecot.stop()


async def read_inbox(reactor: Any, host: str, port: int, user: str, password: str) -> list[bytes]:
    """Every message in ``user``'s INBOX, read by IMAP (plain LOGIN, no TLS)."""
    from easyncd.backends.imap.connect import connect_imap

    client = await connect_imap(reactor, host, port, "none", None, user, password, timeout=10,
                                enable=())
    try:
        selected = await client.select_mailbox("INBOX", readonly=True)
        if not selected.exists:
            return []
        fetched, _ = await client.uid_fetch("1:*", ["BODY.PEEK[]"])
        return [message.sections[""] for message in sorted(fetched, key=lambda m: m.uid)]
    finally:
        await client.logout_quietly()


async def wait_for_inbox(reactor: Any, host: str, port: int, user: str, password: str,
                         count: int, timeout: float = 15.0) -> list[bytes]:
    """``read_inbox`` until it holds at least ``count`` messages (delivery is queued)."""
    from twisted.internet.task import deferLater

    deadline = reactor.seconds() + timeout
    while True:
        messages = await read_inbox(reactor, host, port, user, password)
        if len(messages) >= count or reactor.seconds() > deadline:
            return messages
        await deferLater(reactor, 0.1)
