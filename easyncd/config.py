"""The configuration: one typed schema, read from an INI file.

Every option lives in :data:`SCHEMA` with its default, its type and its help
text.  ``etc/easyncd.conf`` is generated from the same table (see
:func:`render_default_config`) and a test checks that it stays equal to it.
Unknown sections or options and bad values raise :class:`ConfigError`, whose
message names the file, the section, the option and what is wrong.
"""
from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

DEFAULT_CONFIG_PATH = "/etc/easyncd/easyncd.conf"

#: The EAS protocol versions easyncd speaks, oldest first.
PROTOCOL_VERSIONS = ("2.5", "12.0", "12.1", "14.0", "14.1", "16.0", "16.1")


class ConfigError(Exception):
    """A configuration problem, with a message fit for one line of output."""

    def __init__(
        self,
        problem: str,
        *,
        path: str | None = None,
        section: str | None = None,
        option: str | None = None,
    ) -> None:
        self.problem = problem
        self.path = path
        self.section = section
        self.option = option
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.path:
            where.append(self.path)
        if self.section and self.option:
            where.append(f"[{self.section}] {self.option}")
        elif self.section:
            where.append(f"[{self.section}]")
        prefix = ": ".join(where)
        return f"{prefix}: {self.problem}" if prefix else self.problem


# -- value types ---------------------------------------------------------------


def parse_bool(value: str) -> bool:
    """Parse an INI boolean (yes/no, true/false, on/off, 1/0)."""
    lowered = value.strip().lower()
    if lowered in ("1", "yes", "true", "on"):
        return True
    if lowered in ("0", "no", "false", "off"):
        return False
    raise ValueError(f"expected yes or no, got {value!r}")


def parse_int(value: str) -> int:
    """Parse a non-negative integer."""
    try:
        number = int(value.strip(), 10)
    except ValueError:
        raise ValueError(f"expected a whole number, got {value!r}") from None
    if number < 0:
        raise ValueError(f"expected a number of 0 or more, got {number}")
    return number


def parse_int_or_unlimited(value: str) -> int:
    """Parse an integer of -1 (no limit) or more."""
    text = value.strip()
    if text == "-1":
        return -1
    return parse_int(text)


def parse_list(value: str) -> list[str]:
    """Parse a comma- or newline-separated list; empty items are dropped."""
    items = []
    for line in value.replace("\n", ",").split(","):
        item = line.strip()
        if item:
            items.append(item)
    return items


def parse_str(value: str) -> str:
    """A string, stripped of surrounding white space."""
    return value.strip()


def parse_size(value: str) -> int:
    """A size in bytes, with an optional K, M or G suffix (powers of 1024)."""
    text = value.strip().upper().removesuffix("B")
    factor = 1
    for suffix, mult in (("K", 1024), ("M", 1024**2), ("G", 1024**3)):
        if text.endswith(suffix):
            factor = mult
            text = text[:-1]
            break
    try:
        number = int(text.strip())
    except ValueError:
        raise ValueError(f"expected a size such as 512K or 16M, got {value!r}") from None
    if number < 0:
        raise ValueError(f"expected a size of 0 or more, got {value!r}")
    return number * factor


def choice(*choices: str) -> Callable[[str], str]:
    """A parser that accepts exactly one of ``choices`` (case-insensitive)."""

    def parse(value: str) -> str:
        lowered = value.strip().lower()
        if lowered not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return lowered

    parse.__doc__ = f"one of {', '.join(choices)}"
    return parse


def parse_version(value: str) -> str:
    """An EAS protocol version that easyncd supports."""
    text = value.strip()
    if text not in PROTOCOL_VERSIONS:
        raise ValueError(f"expected one of {', '.join(PROTOCOL_VERSIONS)}, got {value!r}")
    return text


def parse_version_list(value: str) -> list[str]:
    """A list of EAS protocol versions."""
    return [parse_version(item) for item in parse_list(value)]


def parse_database_url(value: str) -> str:
    """A state database URL: empty, ``sqlite:///path`` or ``postgresql://...``."""
    text = value.strip()
    if text and not (text.startswith("sqlite:") or text.startswith("postgresql://")
                     or text.startswith("postgres://")):
        raise ValueError(
            f"expected sqlite:///path/file.db or postgresql://user@host/db, got {value!r}"
        )
    return text


@dataclass(frozen=True)
class Option:
    """One option of the schema."""

    default: str
    parse: Callable[[str], Any]
    help: str


def _opt(default: str, parse: Callable[[str], Any], help: str) -> Option:
    return Option(default, parse, help)


_POLICY_HELP = "EASProvisionDoc"

#: section -> option -> Option.  Defaults are strings, parsed like file values.
SCHEMA: dict[str, dict[str, Option]] = {
    "server": {
        "listen": _opt(
            "tcp:8080:interface=127.0.0.1", parse_list,
            "Where to listen: a comma-separated list of Twisted endpoint strings.\n"
            "TLS: ssl:443:privateKey=/etc/easyncd/key.pem:certKey=/etc/easyncd/cert.pem",
        ),
        "data_dir": _opt(
            "", parse_str,
            "Directory for the SQLite database and other state. Empty: $STATE_DIRECTORY\n"
            "(systemd), else /var/lib/easyncd when running as root, else\n"
            "~/.local/share/easyncd. Set it explicitly when easyncd-admin runs as\n"
            "another user than the daemon (sudo -u easyncd easyncd-admin ...).",
        ),
        "highest_version": _opt(
            "16.1", parse_version,
            "The highest EAS protocol version offered to devices (2.5 .. 16.1).",
        ),
        "max_request_size": _opt(
            "32M", parse_size,
            "Largest request body accepted; larger ones get HTTP 413.",
        ),
        "public_url": _opt(
            "", parse_str,
            "The URL devices use to reach this server (https://mail.example.com), used by\n"
            "autodiscover. Empty: derived from the request's Host header.",
        ),
        "trusted_proxies": _opt(
            "", parse_list,
            "Addresses of reverse proxies whose X-Forwarded-For header is believed.",
        ),
    },
    "store": {
        "database": _opt(
            "", parse_database_url,
            "State database URL: sqlite:///path/file.db or postgresql://user@host/db.\n"
            "Empty: sqlite:///<data_dir>/easyncd.db",
        ),
        "pool_size": _opt("4", parse_int, "PostgreSQL connections kept open."),
    },
    "auth": {
        "checkers": _opt(
            "users_file", parse_list,
            "How passwords are checked, tried in order: users_file (a local file of\n"
            "salted scrypt hashes, managed by easyncd-admin user ...) and/or imap (an\n"
            "IMAP LOGIN against [auth] imap_host: the same password as mail).",
        ),
        "users_file": _opt(
            "", parse_str,
            "The local users file. Empty: <data_dir>/users",
        ),
        "imap_host": _opt("127.0.0.1", parse_str, "IMAP server for the imap checker."),
        "imap_port": _opt("143", parse_int, "Its port (993 for implicit TLS)."),
        "imap_tls": _opt(
            "starttls", choice("none", "starttls", "implicit"),
            "none, starttls or implicit. With starttls or implicit the server's\n"
            "certificate is verified.",
        ),
        "imap_ca_file": _opt(
            "", parse_str,
            "PEM file of the CA that signed the IMAP server's certificate. Empty: the\n"
            "system's trust store.",
        ),
        "username_map": _opt(
            "strip_domain", choice("as_is", "strip_domain", "local_part", "email"),
            "How the user name a device sends becomes the account name:\n"
            "  as_is        unchanged\n"
            "  strip_domain DOMAIN\\user -> user; user@domain unchanged\n"
            "  local_part   DOMAIN\\user and user@domain -> user\n"
            "  email        DOMAIN\\user and user -> user@<default_domain>",
        ),
        "default_domain": _opt("", parse_str, "Domain used by username_map = email."),
        "lowercase": _opt("yes", parse_bool, "Lower-case account names."),
        "cache_ttl": _opt(
            "300", parse_int,
            "Seconds a verified password is remembered (as a keyed hash), so a device's\n"
            "next requests cost no password hash or IMAP login. 0 disables the cache.",
        ),
        "failure_delay": _opt(
            "1", parse_int,
            "Seconds a failed login is delayed; doubles with each further failure from\n"
            "the same address and user, up to max_failure_delay.",
        ),
        "max_failure_delay": _opt("30", parse_int, "Upper bound of failure_delay."),
    },
    "policy": {
        "mode": _opt(
            "force", choice("force", "loose", "none"),
            "force: devices must provision and accept the policy below.\n"
            "loose: devices that provision get the policy; those that do not are served.\n"
            "none: provisioning is answered with an empty policy.",
        ),
        "refresh_interval": _opt(
            "0", parse_int,
            "Seconds after which a device is asked to provision again (0: never).",
        ),
        "allow_non_provisionable_devices": _opt(
            "no", parse_bool, _POLICY_HELP + ": AllowNonProvisionableDevices."
        ),
        "device_password_enabled": _opt("no", parse_bool, _POLICY_HELP + ": DevicePasswordEnabled."),
        "alphanumeric_device_password_required": _opt(
            "no", parse_bool, _POLICY_HELP + ": AlphanumericDevicePasswordRequired."
        ),
        "password_recovery_enabled": _opt("no", parse_bool, _POLICY_HELP + ": PasswordRecoveryEnabled."),
        "require_storage_card_encryption": _opt(
            "no", parse_bool, _POLICY_HELP + ": RequireStorageCardEncryption."
        ),
        "attachments_enabled": _opt("yes", parse_bool, _POLICY_HELP + ": AttachmentsEnabled."),
        "min_device_password_length": _opt(
            "4", parse_int, _POLICY_HELP + ": MinDevicePasswordLength (with a password)."
        ),
        "max_inactivity_time_device_lock": _opt(
            "0", parse_int, _POLICY_HELP + ": MaxInactivityTimeDeviceLock, seconds (0: unset)."
        ),
        "max_device_password_failed_attempts": _opt(
            "0", parse_int, _POLICY_HELP + ": MaxDevicePasswordFailedAttempts (0: unset)."
        ),
        "max_attachment_size": _opt("0", parse_int, _POLICY_HELP + ": MaxAttachmentSize, bytes (0: unset)."),
        "allow_simple_device_password": _opt(
            "yes", parse_bool, _POLICY_HELP + ": AllowSimpleDevicePassword."
        ),
        "device_password_expiration": _opt(
            "0", parse_int, _POLICY_HELP + ": DevicePasswordExpiration, days (0: unset)."
        ),
        "device_password_history": _opt("0", parse_int, _POLICY_HELP + ": DevicePasswordHistory."),
        "allow_storage_card": _opt("yes", parse_bool, _POLICY_HELP + ": AllowStorageCard."),
        "allow_camera": _opt("yes", parse_bool, _POLICY_HELP + ": AllowCamera."),
        "require_device_encryption": _opt("no", parse_bool, _POLICY_HELP + ": RequireDeviceEncryption."),
        "allow_unsigned_applications": _opt(
            "yes", parse_bool, _POLICY_HELP + ": AllowUnsignedApplications."
        ),
        "allow_unsigned_installation_packages": _opt(
            "yes", parse_bool, _POLICY_HELP + ": AllowUnsignedInstallationPackages."
        ),
        "min_device_password_complex_characters": _opt(
            "1", parse_int, _POLICY_HELP + ": MinDevicePasswordComplexCharacters (1-4)."
        ),
        "allow_wifi": _opt("yes", parse_bool, _POLICY_HELP + ": AllowWiFi."),
        "allow_text_messaging": _opt("yes", parse_bool, _POLICY_HELP + ": AllowTextMessaging."),
        "allow_pop_imap_email": _opt("yes", parse_bool, _POLICY_HELP + ": AllowPOPIMAPEmail."),
        "allow_bluetooth": _opt(
            "2", choice("0", "1", "2"),
            _POLICY_HELP + ": AllowBluetooth (0 no, 1 hands-free only, 2 yes).",
        ),
        "allow_irda": _opt("yes", parse_bool, _POLICY_HELP + ": AllowIrDA."),
        "require_manual_sync_when_roaming": _opt(
            "no", parse_bool, _POLICY_HELP + ": RequireManualSyncWhenRoaming."
        ),
        "allow_desktop_sync": _opt("yes", parse_bool, _POLICY_HELP + ": AllowDesktopSync."),
        "max_calendar_age_filter": _opt(
            "0", choice("0", "4", "5", "6", "7"),
            _POLICY_HELP + ": MaxCalendarAgeFilter (0 all, 4 two weeks, 5 a month, "
            "6 three months, 7 six months).",
        ),
        "allow_html_email": _opt("yes", parse_bool, _POLICY_HELP + ": AllowHTMLEmail."),
        "max_email_age_filter": _opt(
            "0", choice("0", "1", "2", "3", "4", "5"),
            _POLICY_HELP + ": MaxEmailAgeFilter (0 all, 1 a day, 2 three days, 3 a week, "
            "4 two weeks, 5 a month).",
        ),
        "max_email_body_truncation_size": _opt(
            "-1", parse_int_or_unlimited,
            _POLICY_HELP + ": MaxEmailBodyTruncationSize, KB (-1: no limit).",
        ),
        "max_email_html_body_truncation_size": _opt(
            "-1", parse_int_or_unlimited,
            _POLICY_HELP + ": MaxEmailHTMLBodyTruncationSize, KB (-1: no limit).",
        ),
        "require_signed_smime_messages": _opt(
            "no", parse_bool, _POLICY_HELP + ": RequireSignedSMIMEMessages."
        ),
        "require_encrypted_smime_messages": _opt(
            "no", parse_bool, _POLICY_HELP + ": RequireEncryptedSMIMEMessages."
        ),
        "require_signed_smime_algorithm": _opt(
            "0", choice("0", "1"), _POLICY_HELP + ": RequireSignedSMIMEAlgorithm (0 SHA1, 1 MD5)."
        ),
        "require_encryption_smime_algorithm": _opt(
            "0", choice("0", "1", "2", "3", "4"),
            _POLICY_HELP + ": RequireEncryptionSMIMEAlgorithm (0 TripleDES, 1 DES, 2 RC2 128, "
            "3 RC2 64, 4 RC2 40).",
        ),
        "allow_smime_encryption_algorithm_negotiation": _opt(
            "2", choice("0", "1", "2"),
            _POLICY_HELP + ": AllowSMIMEEncryptionAlgorithmNegotiation (0 no, 1 strongest, 2 any).",
        ),
        "allow_smime_soft_certs": _opt("yes", parse_bool, _POLICY_HELP + ": AllowSMIMESoftCerts."),
        "allow_browser": _opt("yes", parse_bool, _POLICY_HELP + ": AllowBrowser."),
        "allow_consumer_email": _opt("yes", parse_bool, _POLICY_HELP + ": AllowConsumerEmail."),
        "allow_remote_desktop": _opt("yes", parse_bool, _POLICY_HELP + ": AllowRemoteDesktop."),
        "allow_internet_sharing": _opt("yes", parse_bool, _POLICY_HELP + ": AllowInternetSharing."),
        "unapproved_in_rom_application_list": _opt(
            "", parse_list, _POLICY_HELP + ": UnapprovedInROMApplicationList (application names)."
        ),
        "approved_application_list": _opt(
            "", parse_list, _POLICY_HELP + ": ApprovedApplicationList (SHA-1 hashes)."
        ),
    },
    "imap": {
        "enabled": _opt(
            "no", parse_bool,
            "Serve the users' mail from the IMAP server below (Inbox, folders, Sync of\n"
            "email, push, SendMail...). Off: devices see contacts, calendars, tasks and\n"
            "notes only.",
        ),
        "host": _opt("127.0.0.1", parse_str, "IMAP server holding the users' mail."),
        "port": _opt("143", parse_int, "Its port (993 for implicit TLS)."),
        "tls": _opt(
            "starttls", choice("none", "starttls", "implicit"),
            "none, starttls or implicit. With starttls or implicit the certificate is\n"
            "verified.",
        ),
        "ca_file": _opt("", parse_str, "PEM CA for the IMAP server. Empty: the system's trust store."),
        "master_user": _opt(
            "", parse_str,
            "A Dovecot master user: log in as every user with this user's password\n"
            "instead of the device's password.",
        ),
        "master_password": _opt("", parse_str, "Its password (keep this file private)."),
        "master_separator": _opt(
            "", parse_str,
            "\"*\" logs in as \"user*master\"; empty uses AUTHENTICATE PLAIN with the user as\n"
            "authorization identity.",
        ),
        "connect_timeout": _opt("30", parse_int, "Seconds allowed for connecting and logging in."),
        "max_connections_per_user": _opt(
            "2", parse_int,
            "Warm sessions per user for requests (the IDLE session comes on top;\n"
            "Dovecot allows 10 per user and address by default).",
        ),
        "max_connections": _opt("200", parse_int, "Warm sessions in total."),
        "idle_timeout": _opt("300", parse_int, "Seconds an unused warm session stays open."),
        "backoff_initial": _opt("1", parse_int, "Seconds before reconnecting after a failure."),
        "backoff_max": _opt("30", parse_int, "Longest wait between reconnection attempts."),
        "operation_timeout": _opt("120", parse_int, "Seconds allowed for one IMAP operation."),
        "drafts": _opt("", parse_str, "Drafts mailbox. Empty: SPECIAL-USE, then common names."),
        "sent": _opt("", parse_str, "Sent mailbox. Empty: SPECIAL-USE, then common names."),
        "trash": _opt("", parse_str, "Trash mailbox. Empty: SPECIAL-USE, then common names."),
        "junk": _opt("", parse_str, "Junk mailbox. Empty: SPECIAL-USE, then common names."),
        "outbox": _opt("", parse_str, "Outbox mailbox, if the server has one. Empty: none/auto."),
        "fetch_batch": _opt("100", parse_int, "UIDs per UID FETCH."),
        "poll_interval": _opt(
            "30", parse_int,
            "Seconds between STATUS checks of watched mailboxes on servers without NOTIFY\n"
            "(other than the mailbox the IDLE session watches).",
        ),
        "watch_linger": _opt(
            "60", parse_int, "Seconds the IDLE session stays open after the last Ping ends."
        ),
        "folder_cache": _opt("60", parse_int, "Seconds a mailbox list is reused."),
    },
    "smtp": {
        "host": _opt("127.0.0.1", parse_str,
                     "SMTP server for outgoing mail (SendMail, SmartReply, SmartForward)."),
        "port": _opt("587", parse_int, "Its port (465 for implicit TLS, 25 for plain relaying)."),
        "tls": _opt(
            "starttls", choice("none", "starttls", "implicit"),
            "none, starttls or implicit. With starttls the server must offer STARTTLS; with\n"
            "starttls or implicit its certificate is verified.",
        ),
        "ca_file": _opt(
            "", parse_str,
            "PEM file of the CA that signed the SMTP server's certificate. Empty: the\n"
            "system's trust store.",
        ),
        "auth": _opt(
            "user", choice("none", "user", "master"),
            "none (no AUTH), user (AUTH with the device user's own name and password) or\n"
            "master (AUTH PLAIN as master_user on the user's behalf, e.g. a Dovecot\n"
            "master user).",
        ),
        "master_user": _opt("", parse_str, "Master user name for auth = master."),
        "master_password": _opt("", parse_str, "Its password (keep this file private)."),
        "helo_name": _opt("", parse_str, "Name sent in EHLO. Empty: localhost."),
        "timeout": _opt("300", parse_int, "Seconds allowed for sending one message."),
    },
    "smime": {
        "trust_file": _opt(
            "", parse_str,
            "PEM file of the CAs trusted when devices ask to validate S/MIME certificates\n"
            "(ValidateCert). Empty: the system's trust store.",
        ),
    },
    "groupware": {
        "history_days": _opt(
            "90", parse_int,
            "Days of contacts/calendar/tasks/notes change history kept (trimmed daily).\n"
            "A device that has not synced for longer starts its sync over. 0 keeps all.",
        ),
    },
    "log": {
        "access_log": _opt(
            "yes", parse_bool,
            "One line per request: user, device, command, version, status, time.",
        ),
        "trace_dir": _opt(
            "", parse_str,
            "Directory for per-device protocol traces. Empty: <data_dir>/traces",
        ),
        "trace_devices": _opt(
            "", parse_list,
            "Device ids whose requests and responses are written, decoded to XML, to\n"
            "<trace_dir>/<device id>.log (passwords and Authorization headers removed).\n"
            "easyncd-admin device trace ID on|off does the same without a restart.",
        ),
        "trace_users": _opt("", parse_list, "Users whose devices are all traced."),
    },
}

_SECTION_HELP = {
    "server": "The HTTP listener and protocol limits.",
    "store": "Where easyncd keeps its own state (devices, sync keys, folders).",
    "auth": "Authentication of device users (HTTP Basic on every request).",
    "policy": "Provisioning (MS-ASPROV): the security policy sent to devices.",
    "imap": "The users' mailboxes.",
    "smtp": "Outgoing mail.",
    "smime": "S/MIME certificate validation for devices.",
    "groupware": "The built-in store of contacts, calendars, tasks and notes.",
    "log": "Logging and per-device protocol traces.",
}


class Section(Mapping[str, Any]):
    """The parsed options of one section, readable as attributes or by key."""

    def __init__(self, name: str, values: dict[str, Any]) -> None:
        self._name = name
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"[{self._name}] has no option {key!r}") from None


class Config:
    """A parsed configuration.  ``config.server.listen``, ``config["auth"]["checkers"]``."""

    def __init__(self, values: dict[str, dict[str, Any]], path: str | None) -> None:
        self.path = path
        self._sections = {name: Section(name, opts) for name, opts in values.items()}

    def __getitem__(self, section: str) -> Section:
        return self._sections[section]

    def __getattr__(self, section: str) -> Section:
        try:
            return self._sections[section]
        except KeyError:
            raise AttributeError(f"no section [{section}]") from None

    # derived values ----------------------------------------------------------

    @property
    def data_dir(self) -> str:
        """The data directory, with the empty default resolved."""
        configured: str = self.server.data_dir
        if configured:
            return configured
        state = os.environ.get("STATE_DIRECTORY")
        if state:
            return state.split(":")[0]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            return "/var/lib/easyncd"
        return os.path.join(os.path.expanduser("~"), ".local", "share", "easyncd")

    @property
    def database_url(self) -> str:
        """The state database URL, with the empty default resolved."""
        configured: str = self.store.database
        if configured:
            return configured
        return "sqlite:///" + os.path.join(self.data_dir, "easyncd.db")

    @property
    def users_file(self) -> str:
        """The local users file path, with the empty default resolved."""
        configured: str = self.auth.users_file
        return configured or os.path.join(self.data_dir, "users")

    @property
    def trace_dir(self) -> str:
        """The protocol trace directory, with the empty default resolved."""
        configured: str = self.log.trace_dir
        return configured or os.path.join(self.data_dir, "traces")


def _parse_value(section: str, option: str, raw: str, path: str | None) -> Any:
    spec = SCHEMA[section][option]
    try:
        return spec.parse(raw)
    except ValueError as exc:
        raise ConfigError(str(exc), path=path, section=section, option=option) from None


def parse_override(text: str) -> tuple[str, str, str]:
    """Split ``section.option=value`` (from ``-o``) into its three parts."""
    key, sep, value = text.partition("=")
    section, dot, option = key.strip().partition(".")
    if not sep or not dot or not section or not option:
        raise ConfigError(f"expected section.option=value, got {text!r}", path="-o")
    return section, option, value


def load_config(
    path: str | None = None,
    overrides: Iterable[str] = (),
    *,
    use_default_path: bool = True,
) -> Config:
    """Read the configuration.

    With no ``path``, ``/etc/easyncd/easyncd.conf`` is read if it exists (unless
    ``use_default_path`` is false), else the built-in defaults are used.
    ``overrides`` are ``section.option=value`` strings applied last.
    """
    raw: dict[str, dict[str, str]] = {
        section: {name: opt.default for name, opt in options.items()}
        for section, options in SCHEMA.items()
    }
    origin: dict[tuple[str, str], str | None] = {}
    if path is None and use_default_path and os.path.exists(DEFAULT_CONFIG_PATH):
        path = DEFAULT_CONFIG_PATH
    if path is not None:
        parser = configparser.ConfigParser(interpolation=None, default_section="\x00none")
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            with open(path, encoding="utf-8") as handle:
                parser.read_file(handle, source=path)
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", path=path) from None
        except configparser.Error as exc:
            message = " ".join(str(exc).split())
            raise ConfigError(f"not a valid INI file: {message}", path=path) from None
        for section in parser.sections():
            if section not in SCHEMA:
                raise ConfigError(
                    f"unknown section (known: {', '.join(SCHEMA)})", path=path, section=section
                )
            for option, value in parser.items(section):
                if option not in SCHEMA[section]:
                    raise ConfigError("unknown option", path=path, section=section, option=option)
                raw[section][option] = value
                origin[(section, option)] = path
    for text in overrides:
        section, option, value = parse_override(text)
        if section not in SCHEMA:
            raise ConfigError("unknown section", path="-o", section=section)
        if option not in SCHEMA[section]:
            raise ConfigError("unknown option", path="-o", section=section, option=option)
        raw[section][option] = value
        origin[(section, option)] = "-o"
    values: dict[str, dict[str, Any]] = {}
    for section, options in raw.items():
        values[section] = {
            option: _parse_value(section, option, value, origin.get((section, option), path))
            for option, value in options.items()
        }
    config = Config(values, path)
    _check(config)
    return config


def _check(config: Config) -> None:
    """Cross-option checks."""
    auth = config.auth
    for checker in auth.checkers:
        if checker not in ("users_file", "imap"):
            raise ConfigError(
                f"unknown checker {checker!r} (known: users_file, imap)",
                path=config.path, section="auth", option="checkers",
            )
    if not auth.checkers:
        raise ConfigError("at least one checker is needed", path=config.path,
                          section="auth", option="checkers")
    if auth.username_map == "email" and not auth.default_domain:
        raise ConfigError("username_map = email needs default_domain", path=config.path,
                          section="auth", option="default_domain")
    if not config.server.listen:
        raise ConfigError("at least one endpoint is needed", path=config.path,
                          section="server", option="listen")


def render_default_config() -> str:
    """The text of ``etc/easyncd.conf``: every option, commented, at its default."""
    lines = [
        "# easyncd configuration.",
        "#",
        "# Every option is shown with its default value, commented out. Uncomment and",
        "# change what you need. Check the file with: easyncd-admin -f FILE config check",
        "",
    ]
    for section, options in SCHEMA.items():
        lines.append(f"[{section}]")
        lines.append(f"# {_SECTION_HELP[section]}")
        lines.append("")
        for name, opt in options.items():
            for help_line in opt.help.splitlines():
                lines.append(f"# {help_line}".rstrip())
            lines.append(f"#{name} = {opt.default}".rstrip())
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def default_values() -> Mapping[str, Mapping[str, Any]]:
    """The parsed defaults (used by tests and ``config check``)."""
    return {
        section: {name: opt.parse(opt.default) for name, opt in options.items()}
        for section, options in SCHEMA.items()
    }
