"""The real daemon under twistd, driven over real sockets."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile

import requests
from twisted.trial.unittest import TestCase

from easyncd.protocol.versions import COMMAND_VERSIONS
from easyncd.wbxml import Element, encode
from easyncd.testing.daemon import (
    TWISTD, WBXML, Daemon, folder_sync, provision, wbxml_of,
)


def raw_request(port: int, text: str) -> bytes:
    """Send raw HTTP and return the raw response (to see header spelling)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(text.encode("ascii"))
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def assert_stopped_cleanly(test: TestCase, daemon: Daemon) -> None:
    """SIGTERM: a clean shutdown, then twistd re-raises the signal so that the
    parent sees it (exit status -SIGTERM), as systemd expects."""
    code = daemon.stop()
    log = daemon.log()
    test.assertEqual(code, -signal.SIGTERM, f"daemon exit status {code}:\n{log}")
    test.assertIn("easyncd stopped", log)
    test.assertIn("Server Shut Down.", log)
    test.assertNotIn("Traceback", log)


class DaemonTests(TestCase):
    """A daemon on SQLite for each test."""

    daemon: Daemon

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.daemon = Daemon(tmp.name)
        self.daemon.add_user("alice", "secret")
        self.daemon.add_user("bob", "hunter2")
        self.daemon.start()
        self.addCleanup(self._stop)

    def _stop(self) -> None:
        assert_stopped_cleanly(self, self.daemon)

    # -- OPTIONS and authentication ---------------------------------------------

    def test_options_headers_are_spelled_as_the_spec(self) -> None:
        """OPTIONS advertises versions and commands with the spec's header case."""
        answer = raw_request(self.daemon.port,
                             "OPTIONS /Microsoft-Server-ActiveSync HTTP/1.1\r\n"
                             "Host: x\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\n"
                             "Connection: close\r\n\r\n")
        head = answer.split(b"\r\n\r\n")[0].decode("latin-1")
        self.assertIn("HTTP/1.1 200", head)
        self.assertIn("\r\nMS-ASProtocolVersions: 2.5,12.0,12.1,14.0,14.1,16.0,16.1\r\n", head)
        self.assertIn("\r\nMS-Server-ActiveSync: ", head)
        commands_line = [line for line in head.split("\r\n")
                         if line.startswith("MS-ASProtocolCommands: ")]
        self.assertEqual(len(commands_line), 1, head)
        commands = commands_line[0].split(": ", 1)[1].split(",")
        for command in ("Provision", "FolderSync", "Settings"):
            self.assertIn(command, commands)
        # Every MS-ASCMD command but those that need mail ([imap] is off here).
        mail_only = {"SendMail", "SmartForward", "SmartReply", "GetAttachment"}
        self.assertEqual(commands, [c for c in COMMAND_VERSIONS if c not in mail_only])

    def test_path_is_case_insensitive(self) -> None:
        """Devices spell the path in several ways."""
        response = requests.options(f"{self.daemon.base}/microsoft-server-activesync",
                                    auth=("alice", "secret"), timeout=10)
        self.assertEqual(response.status_code, 200)
        self.assertIn("16.1", response.headers["MS-ASProtocolVersions"])

    def test_bad_credentials_get_401_with_basic_challenge(self) -> None:
        """A wrong password and an unknown user both get 401 Basic, no state."""
        before = self.daemon.devices()
        for user, password in (("alice", "wrong"), ("nobody", "secret")):
            response = self.daemon.post("FolderSync", folder_sync(), user=user,
                                        password=password, device_id="intruder")
            self.assertEqual(response.status_code, 401)
            self.assertTrue(response.headers["WWW-Authenticate"].startswith("Basic"))
        response = requests.post(f"{self.daemon.base}/Microsoft-Server-ActiveSync?Cmd=FolderSync"
                                 "&User=alice&DeviceId=x&DeviceType=y", timeout=10)
        self.assertEqual(response.status_code, 401)
        self.assertEqual(self.daemon.devices(), before)

    # -- the EAS flow ---------------------------------------------------------------

    def test_provision_foldersync_settings_16_1(self) -> None:
        """A 16.1 device provisions, lists its folders and sends its information."""
        key = provision(self.daemon, device_id="flow161")
        hierarchy = wbxml_of(self.daemon.post("FolderSync", folder_sync(), device_id="flow161",
                                              policy_key=key))
        self.assertEqual(hierarchy.findtext("FolderHierarchy:Status"), "1")
        added = {add.findtext("FolderHierarchy:DisplayName"): add.findtext("FolderHierarchy:Type")
                 for add in hierarchy.findall("FolderHierarchy:Changes/FolderHierarchy:Add")}
        self.assertEqual(added, {"Contacts": "9", "Calendar": "8", "Tasks": "7", "Notes": "10"})
        sync_key = hierarchy.findtext("FolderHierarchy:SyncKey")
        again = wbxml_of(self.daemon.post("FolderSync", folder_sync(sync_key or ""),
                                          device_id="flow161", policy_key=key))
        self.assertEqual(again.findtext("FolderHierarchy:Status"), "1")
        self.assertEqual(again.findtext("FolderHierarchy:Changes/FolderHierarchy:Count"), "0")
        unknown = wbxml_of(self.daemon.post("FolderSync", folder_sync("987654"),
                                            device_id="flow161", policy_key=key))
        self.assertEqual(unknown.findtext("FolderHierarchy:Status"), "9")

        settings = Element("Settings:Settings")
        info = settings.add("Settings:DeviceInformation").add("Settings:Set")
        info.add("Settings:Model", "Pixel 9")
        info.add("Settings:FriendlyName", "Alice's phone")
        settings.add("Settings:UserInformation").add("Settings:Get")
        answer = wbxml_of(self.daemon.post("Settings", settings, device_id="flow161",
                                           policy_key=key))
        self.assertEqual(answer.findtext("Settings:Status"), "1")
        shown = self.daemon.admin("device", "show", "flow161").stdout
        self.assertIn("Pixel 9", shown)
        self.assertIn("alice", shown)

    def test_base64_query_form(self) -> None:
        """The base64-encoded query carries version, device and policy key."""
        key = provision(self.daemon, device_id="b64dev")
        response = self.daemon.post("FolderSync", folder_sync(), device_id="b64dev",
                                    policy_key=key, base64_form=True)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(wbxml_of(response).findtext("FolderHierarchy:Status"), "1")

    def test_provision_12_1_and_2_5(self) -> None:
        """Older versions: 12.1 WBXML policy (no Notes folder), 2.5 WAP XML."""
        key = provision(self.daemon, version="12.1", device_id="old121")
        hierarchy = wbxml_of(self.daemon.post("FolderSync", folder_sync(), device_id="old121",
                                              version="12.1", policy_key=key))
        names = {add.findtext("FolderHierarchy:DisplayName")
                 for add in hierarchy.findall("FolderHierarchy:Changes/FolderHierarchy:Add")}
        self.assertEqual(names, {"Contacts", "Calendar", "Tasks"})

        request = Element("Provision:Provision")
        policy = request.add("Provision:Policies").add("Provision:Policy")
        policy.add("Provision:PolicyType", "MS-WAP-Provisioning-XML")
        first = wbxml_of(self.daemon.post("Provision", request, version="2.5",
                                          device_id="old25"))
        self.assertEqual(first.findtext("Provision:Status"), "1")
        data = first.findtext("Provision:Policies/Provision:Policy/Provision:Data") or ""
        self.assertIn("wap-provisioningdoc", data)

    def test_policy_gate_before_and_after_14(self) -> None:
        """No or a wrong policy key: 449 before 14.0, Status 142/144 from 14.0."""
        before = self.daemon.devices()
        old = self.daemon.post("FolderSync", folder_sync(), device_id="unknown12",
                               version="12.1")
        self.assertEqual(old.status_code, 449)
        new = wbxml_of(self.daemon.post("FolderSync", folder_sync(), device_id="unknown16"))
        self.assertEqual(new.findtext("FolderHierarchy:Status"), "142")
        self.assertEqual(self.daemon.devices(), before)
        key = provision(self.daemon, device_id="wrongkey")
        wrong = wbxml_of(self.daemon.post("FolderSync", folder_sync(), device_id="wrongkey",
                                          policy_key=key + 1 if key < 2**32 - 1 else 1))
        self.assertEqual(wrong.findtext("FolderHierarchy:Status"), "144")

    def test_bad_input_leaves_state_alone(self) -> None:
        """Garbage, truncated WBXML, wrong types, missing parameters, huge bodies."""
        key = provision(self.daemon, device_id="badinput")
        before = self.daemon.devices()
        good = encode(folder_sync())
        cases = [
            ("garbage", b"\x00\x01garbage\xff" * 3, WBXML, {}),
            ("truncated", good[:-3], WBXML, {}),
            ("content type", good, "text/html", {}),
        ]
        for label, body, content_type, _ in cases:
            response = self.daemon.post("FolderSync", body, device_id="badinput", policy_key=key,
                                        content_type=content_type)
            if label == "content type":
                self.assertEqual(response.status_code, 415, label)
            else:
                self.assertIn(response.status_code, (200, 400), label)
                if response.status_code == 200:
                    self.assertEqual(wbxml_of(response).findtext("FolderHierarchy:Status"),
                                     "102", label)
        for query in ("Cmd=FolderSync&User=alice&DeviceType=x",       # no DeviceId
                      "User=alice&DeviceId=a&DeviceType=x",           # no Cmd
                      "Cmd=FolderSync&User=alice&DeviceId=a"):        # no DeviceType
            response = requests.post(f"{self.daemon.base}/Microsoft-Server-ActiveSync?{query}",
                                     data=good, auth=("alice", "secret"),
                                     headers={"MS-ASProtocolVersion": "16.1",
                                              "Content-Type": WBXML}, timeout=10)
            self.assertEqual(response.status_code, 400, query)
        huge = self.daemon.post("FolderSync", b"\x03\x01\x6a\x00" + b"x" * 70000,
                                device_id="badinput", policy_key=key)
        self.assertEqual(huge.status_code, 413)
        unsupported = self.daemon.post("FolderSync", good, device_id="badinput", policy_key=key,
                                       version="9.9")
        self.assertEqual(unsupported.status_code, 400)
        find = Element("Find:Find")
        not_in_version = wbxml_of(self.daemon.post("Find", find, device_id="badinput",
                                                   policy_key=key, version="16.0"))
        self.assertEqual(not_in_version.findtext("Find:Status"), "138")  # Find is 16.1 only
        old_client = self.daemon.post("Find", find, device_id="badinput", version="12.1")
        self.assertEqual(old_client.status_code, 501)
        self.assertEqual(self.daemon.devices(), before)
        # and the device still works afterwards
        ok = wbxml_of(self.daemon.post("FolderSync", folder_sync(), device_id="badinput",
                                       policy_key=key))
        self.assertEqual(ok.findtext("FolderHierarchy:Status"), "1")

    def test_remote_wipe_and_account_only_wipe(self) -> None:
        """CLI wipe -> device told to provision -> RemoteWipe -> ack -> wiped, and again."""
        key = provision(self.daemon, device_id="wipeme")
        self.daemon.admin("device", "wipe", "wipeme")
        self.assertIn("pending", self.daemon.admin("device", "show", "wipeme").stdout)
        refused = wbxml_of(self.daemon.post("FolderSync", folder_sync(), device_id="wipeme",
                                            policy_key=key))
        self.assertEqual(refused.findtext("FolderHierarchy:Status"), "140")
        request = Element("Provision:Provision")
        policy = request.add("Provision:Policies").add("Provision:Policy")
        policy.add("Provision:PolicyType", "MS-EAS-Provisioning-WBXML")
        answer = wbxml_of(self.daemon.post("Provision", request, device_id="wipeme"))
        self.assertIsNotNone(answer.find("Provision:RemoteWipe"), answer.to_xml())
        ack = Element("Provision:Provision")
        ack.add("Provision:RemoteWipe").add("Provision:Status", "1")
        done = wbxml_of(self.daemon.post("Provision", ack, device_id="wipeme"))
        self.assertEqual(done.findtext("Provision:Status"), "1")
        self.assertIn("wiped", self.daemon.admin("device", "show", "wipeme").stdout)
        again = wbxml_of(self.daemon.post("Provision", request, device_id="wipeme"))
        self.assertIsNotNone(again.find("Provision:RemoteWipe"))
        self.daemon.admin("device", "remove", "wipeme")
        self.assertNotIn("wipeme", self.daemon.admin("device", "list").stdout)

        key = provision(self.daemon, device_id="acctwipe")
        self.daemon.admin("device", "wipe", "acctwipe", "--account-only")
        answer = wbxml_of(self.daemon.post("Provision", request, device_id="acctwipe"))
        self.assertIsNotNone(answer.find("Provision:AccountOnlyRemoteWipe"), answer.to_xml())
        self.daemon.admin("device", "cancel-wipe", "acctwipe")
        key = provision(self.daemon, device_id="acctwipe")
        ok = wbxml_of(self.daemon.post("FolderSync", folder_sync(), device_id="acctwipe",
                                       policy_key=key))
        self.assertEqual(ok.findtext("FolderHierarchy:Status"), "1")

    def test_two_users_on_one_device(self) -> None:
        """Each user of a device has an own policy key and hierarchy state."""
        alice_key = provision(self.daemon, device_id="shared")
        bob_key = provision(self.daemon, device_id="shared", user="bob", password="hunter2")
        self.assertNotEqual(alice_key, bob_key)
        bob = wbxml_of(self.daemon.post("FolderSync", folder_sync(), device_id="shared",
                                        user="bob", password="hunter2", policy_key=bob_key))
        self.assertEqual(bob.findtext("FolderHierarchy:Status"), "1")
        mixed = wbxml_of(self.daemon.post("FolderSync", folder_sync(), device_id="shared",
                                          policy_key=bob_key))
        self.assertEqual(mixed.findtext("FolderHierarchy:Status"), "144")
        listing = self.daemon.admin("device", "list", "--user", "bob").stdout
        self.assertIn("shared", listing)

    def test_access_log_and_protocol_trace(self) -> None:
        """One access-log line per request; traces hold XML but no secrets."""
        self.daemon.admin("user", "list")
        key = provision(self.daemon, device_id="traced")
        self.daemon.admin("device", "trace", "traced", "on")
        self.daemon.post("FolderSync", folder_sync(), device_id="traced", policy_key=key)
        trace_path = os.path.join(self.daemon.data_dir, "traces", "traced.log")
        with open(trace_path, encoding="utf-8") as handle:
            trace = handle.read()
        self.assertIn("FolderSync", trace)
        self.assertIn("SyncKey", trace)
        self.assertNotIn("YWxpY2U6c2VjcmV0", trace)  # alice:secret
        self.assertNotIn("secret", trace)
        log = self.daemon.log()
        lines = [line for line in log.splitlines() if "device=traced" in line]
        self.assertTrue(any("FolderSync" in line and "user=alice" in line and "version=16.1"
                            in line and "http=200" in line for line in lines), lines)
        self.assertNotIn("secret", log)

    def test_autodiscover(self) -> None:
        """Autodiscover answers with the EAS URL."""
        body = ('<?xml version="1.0" encoding="utf-8"?>'
                '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/'
                'mobilesync/requestschema/2006"><Request><EMailAddress>alice@example.org'
                '</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/'
                'exchange/autodiscover/mobilesync/responseschema/2006</AcceptableResponseSchema>'
                '</Request></Autodiscover>')
        response = requests.post(f"{self.daemon.base}/Autodiscover/Autodiscover.xml",
                                 data=body, auth=("alice", "secret"),
                                 headers={"Content-Type": "text/xml"}, timeout=10)
        self.assertEqual(response.status_code, 200)
        self.assertIn(f"{self.daemon.base}/Microsoft-Server-ActiveSync", response.text)
        self.assertIn("MobileSync", response.text)


class PyActiveSyncTests(TestCase):
    """An independent client from PyPI (pyactivesync, EAS 16.1) against the
    daemon, on SQLite and on PostgreSQL."""

    def _provision_and_list(self, database: str | None) -> None:
        from pyactivesync import Client, FolderType

        with tempfile.TemporaryDirectory() as tmp:
            daemon = Daemon(tmp, database=database)
            daemon.add_user("carol", "pa55word")
            daemon.start()
            try:
                with Client(server=f"127.0.0.1:{daemon.port}", username="carol",
                            password="pa55word", device_id="PYAS0001") as client:
                    client._transport.base_url = f"{daemon.base}/Microsoft-Server-ActiveSync"
                    key = client.provision()
                    self.assertTrue(key.isdigit())
                    folders = client.list_folders()
                    by_type = {folder.type: folder.name for folder in folders}
                    self.assertEqual(by_type[FolderType(9)], "Contacts")
                    self.assertEqual(by_type[FolderType(8)], "Calendar")
                    self.assertEqual(len(folders), 4)
                    self.assertEqual(client.list_folders(), folders)  # stable ids
                shown = daemon.admin("device", "show", "PYAS0001").stdout
                self.assertIn("pyactivesync", shown)
            finally:
                assert_stopped_cleanly(self, daemon)

    def test_sqlite(self) -> None:
        """Provision and FolderSync through pyactivesync on SQLite."""
        self._provision_and_list(None)

    def test_postgresql(self) -> None:
        """The same on PostgreSQL, in a database of its own."""
        from easyncd.testing.postgres import temporary_database

        with temporary_database() as url:
            self._provision_and_list(url)


class StartupTests(TestCase):
    """How the daemon starts and refuses to start."""

    def test_bad_config_is_one_line(self) -> None:
        """An unknown option stops twistd with one line naming file, section, option."""
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bad.conf")
            with open(path, "w") as handle:
                handle.write("[server]\nlisten = tcp:0\nlisen = oops\n")
            result = subprocess.run([TWISTD, "-n", "--pidfile=", "easyncd", "-f", path],
                                    capture_output=True, text=True, timeout=60, cwd=tmp)
            self.assertEqual(result.returncode, 1)
            self.assertNotIn("Traceback", result.stderr + result.stdout)
            lines = result.stderr.strip().splitlines()
            self.assertEqual(lines, [f"easyncd: {path}: [server] lisen: unknown option"])
            with open(path, "w") as handle:
                handle.write("[policy]\nallow_camera = maybe\n")
            result = subprocess.run([TWISTD, "-n", "--pidfile=", "easyncd", "-f", path],
                                    capture_output=True, text=True, timeout=60, cwd=tmp)
            self.assertEqual(result.returncode, 1)
            self.assertIn("[policy] allow_camera: expected yes or no", result.stderr)

    def test_port_in_use_exits_1(self) -> None:
        """A listener that cannot open stops the daemon with status 1."""
        with tempfile.TemporaryDirectory() as tmp, socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            daemon = Daemon(tmp)
            daemon.port = taken.getsockname()[1]
            with open(daemon.config_path, "w") as handle:
                handle.write(f"[server]\nlisten = tcp:{daemon.port}:interface=127.0.0.1\n"
                             f"data_dir = {daemon.data_dir}\n")
            result = subprocess.run([TWISTD, "-n", "--pidfile=", "easyncd", "-f",
                                     daemon.config_path],
                                    capture_output=True, text=True, timeout=60, cwd=tmp)
            self.assertEqual(result.returncode, 1, result.stdout)
            self.assertIn("could not start", result.stdout)
            self.assertIn("cannot listen", result.stdout)

    def test_sigterm_stops_cleanly_and_schema_exists(self) -> None:
        """Start on an empty data dir (schema created), SIGTERM -> exit 0."""
        with tempfile.TemporaryDirectory() as tmp:
            daemon = Daemon(tmp)
            daemon.start()
            self.assertTrue(os.path.exists(os.path.join(daemon.data_dir, "easyncd.db")))
            assert_stopped_cleanly(self, daemon)
            check = daemon.admin("config", "check")
            self.assertIn("OK", check.stdout)


class NotifyTests(TestCase):
    """systemd's Type=notify: READY=1 once serving, STOPPING=1 on SIGTERM."""

    def test_ready_and_stopping_are_sent(self) -> None:
        with tempfile.TemporaryDirectory() as tmp, \
                socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
            address = os.path.join(tmp, "notify")
            listener.bind(address)
            listener.settimeout(30)
            daemon = Daemon(tmp)
            os.environ["NOTIFY_SOCKET"] = address
            try:
                daemon.start()
            finally:
                del os.environ["NOTIFY_SOCKET"]
            self.assertIn(b"READY=1", listener.recv(4096))
            assert_stopped_cleanly(self, daemon)
            self.assertIn(b"STOPPING=1", listener.recv(4096))


class ImapAuthenticationTests(TestCase):
    """``[auth] checkers = imap``: the daemon checks passwords with an IMAP LOGIN
    (STARTTLS, certificate verified) against a real Dovecot, and a repeated valid
    credential costs no further login."""

    def test_imap_login_and_cache(self) -> None:
        from easyncd.testing.dovecot import DovecotServer

        server = DovecotServer({"dave": "imap-pass"})
        server.start()
        self.addCleanup(server.stop)
        with tempfile.TemporaryDirectory() as tmp:
            daemon = Daemon(tmp, options={
                "auth.checkers": "imap",
                "auth.imap_host": "localhost",
                "auth.imap_port": str(server.imap_port),
                "auth.imap_tls": "starttls",
                "auth.imap_ca_file": server.ca_file,
            })
            daemon.start()
            try:
                key = provision(daemon, device_id="imapdev", user="dave", password="imap-pass")
                for _ in range(3):
                    answer = wbxml_of(daemon.post("FolderSync", folder_sync(), user="dave",
                                                  password="imap-pass", device_id="imapdev",
                                                  policy_key=key))
                    self.assertEqual(answer.findtext("FolderHierarchy:Status"), "1")
                with open(server.log_file, encoding="utf-8", errors="replace") as handle:
                    logins = [line for line in handle if "Login: user=<dave>" in line]
                self.assertEqual(len(logins), 1, logins)
                refused = daemon.post("FolderSync", folder_sync(), user="dave",
                                      password="wrong", device_id="imapdev", policy_key=key)
                self.assertEqual(refused.status_code, 401)
            finally:
                assert_stopped_cleanly(self, daemon)


class TLSTests(TestCase):
    """``listen = ssl:...``: TLS through pyopenssl, checked by a client that
    verifies the certificate against its CA."""

    def test_https_listener(self) -> None:
        from easyncd.testing.dovecot import make_certificates

        with tempfile.TemporaryDirectory() as tmp:
            certificates = make_certificates(os.path.join(tmp))
            daemon = Daemon(tmp, tls=certificates)
            daemon.add_user("alice", "secret")
            daemon.start()
            try:
                response = requests.options(f"{daemon.base}/Microsoft-Server-ActiveSync",
                                            auth=("alice", "secret"),
                                            verify=certificates["ca"], timeout=10)
                self.assertEqual(response.status_code, 200)
                self.assertIn("16.1", response.headers["MS-ASProtocolVersions"])
                with self.assertRaises(requests.exceptions.SSLError):
                    requests.options(f"{daemon.base}/Microsoft-Server-ActiveSync", timeout=10,
                                     verify=True)
            finally:
                assert_stopped_cleanly(self, daemon)
