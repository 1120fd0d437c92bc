"""The security policy sent by Provision, built from ``[policy]`` (MS-ASPROV).

From 12.0 the policy is a ``Provision:EASProvisionDoc`` element
(``MS-EAS-Provisioning-WBXML``); 12.0 knows only the password and attachment
settings, 12.1 and later know all of them (MS-ASPROV 2.2.2, each element's
version table).  Protocol 2.5 gets a ``wap-provisioningdoc`` XML string
(``MS-WAP-Provisioning-XML``, MS-ASPROV 2.2.2.24.2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping
from xml.sax.saxutils import quoteattr

from easyncd.protocol.versions import at_least
from easyncd.wbxml import Element

POLICY_TYPE_WBXML = "MS-EAS-Provisioning-WBXML"
POLICY_TYPE_WAP = "MS-WAP-Provisioning-XML"


def policy_type_for(version: str) -> str:
    """The PolicyType a device of ``version`` must ask for (MS-ASPROV 2.2.2.43)."""
    return POLICY_TYPE_WAP if version == "2.5" else POLICY_TYPE_WBXML


def _bool(value: Any) -> str:
    return "1" if value else "0"


def _int(value: Any) -> str:
    return str(int(value))


def _int_or_empty(value: Any) -> str:
    """``unsignedIntOrEmpty``: 0 in the config means "not set" (empty element)."""
    return str(int(value)) if int(value) > 0 else ""


def _text(value: Any) -> str:
    return str(value)


@dataclass(frozen=True)
class PolicySetting:
    """One EASProvisionDoc element: its name, config option, encoder, first version."""

    element: str
    option: str
    encode: Callable[[Any], str]
    since: str = "12.1"


#: EASProvisionDoc children in schema order, with their [policy] option.
#: The two application lists are handled separately (they have children).
SETTINGS: tuple[PolicySetting, ...] = (
    PolicySetting("DevicePasswordEnabled", "device_password_enabled", _bool, "12.0"),
    PolicySetting("AlphanumericDevicePasswordRequired",
                  "alphanumeric_device_password_required", _bool, "12.0"),
    PolicySetting("PasswordRecoveryEnabled", "password_recovery_enabled", _bool, "12.0"),
    PolicySetting("RequireStorageCardEncryption", "require_storage_card_encryption", _bool),
    PolicySetting("AttachmentsEnabled", "attachments_enabled", _bool, "12.0"),
    PolicySetting("MinDevicePasswordLength", "min_device_password_length", _int_or_empty, "12.0"),
    PolicySetting("MaxInactivityTimeDeviceLock", "max_inactivity_time_device_lock",
                  _int_or_empty, "12.0"),
    PolicySetting("MaxDevicePasswordFailedAttempts", "max_device_password_failed_attempts",
                  _int_or_empty, "12.0"),
    PolicySetting("MaxAttachmentSize", "max_attachment_size", _int_or_empty, "12.0"),
    PolicySetting("AllowSimpleDevicePassword", "allow_simple_device_password", _bool, "12.0"),
    PolicySetting("DevicePasswordExpiration", "device_password_expiration", _int_or_empty, "12.0"),
    PolicySetting("DevicePasswordHistory", "device_password_history", _int, "12.0"),
    PolicySetting("AllowStorageCard", "allow_storage_card", _bool),
    PolicySetting("AllowCamera", "allow_camera", _bool),
    PolicySetting("RequireDeviceEncryption", "require_device_encryption", _bool),
    PolicySetting("AllowUnsignedApplications", "allow_unsigned_applications", _bool),
    PolicySetting("AllowUnsignedInstallationPackages", "allow_unsigned_installation_packages",
                  _bool),
    PolicySetting("MinDevicePasswordComplexCharacters",
                  "min_device_password_complex_characters", _int),
    PolicySetting("AllowWiFi", "allow_wifi", _bool),
    PolicySetting("AllowTextMessaging", "allow_text_messaging", _bool),
    PolicySetting("AllowPOPIMAPEmail", "allow_pop_imap_email", _bool),
    PolicySetting("AllowBluetooth", "allow_bluetooth", _text),
    PolicySetting("AllowIrDA", "allow_irda", _bool),
    PolicySetting("RequireManualSyncWhenRoaming", "require_manual_sync_when_roaming", _bool),
    PolicySetting("AllowDesktopSync", "allow_desktop_sync", _bool),
    PolicySetting("MaxCalendarAgeFilter", "max_calendar_age_filter", _text),
    PolicySetting("AllowHTMLEmail", "allow_html_email", _bool),
    PolicySetting("MaxEmailAgeFilter", "max_email_age_filter", _text),
    PolicySetting("MaxEmailBodyTruncationSize", "max_email_body_truncation_size", _int),
    PolicySetting("MaxEmailHTMLBodyTruncationSize", "max_email_html_body_truncation_size", _int),
    PolicySetting("RequireSignedSMIMEMessages", "require_signed_smime_messages", _bool),
    PolicySetting("RequireEncryptedSMIMEMessages", "require_encrypted_smime_messages", _bool),
    PolicySetting("RequireSignedSMIMEAlgorithm", "require_signed_smime_algorithm", _text),
    PolicySetting("RequireEncryptionSMIMEAlgorithm", "require_encryption_smime_algorithm", _text),
    PolicySetting("AllowSMIMEEncryptionAlgorithmNegotiation",
                  "allow_smime_encryption_algorithm_negotiation", _text),
    PolicySetting("AllowSMIMESoftCerts", "allow_smime_soft_certs", _bool),
    PolicySetting("AllowBrowser", "allow_browser", _bool),
    PolicySetting("AllowConsumerEmail", "allow_consumer_email", _bool),
    PolicySetting("AllowRemoteDesktop", "allow_remote_desktop", _bool),
    PolicySetting("AllowInternetSharing", "allow_internet_sharing", _bool),
)

#: The list elements (12.1+): element, config option, child element.
LIST_SETTINGS: tuple[tuple[str, str, str], ...] = (
    ("UnapprovedInROMApplicationList", "unapproved_in_rom_application_list", "ApplicationName"),
    ("ApprovedApplicationList", "approved_application_list", "Hash"),
)
LIST_SINCE = "12.1"


def elements_for_version(version: str) -> list[str]:
    """The EASProvisionDoc children sent to a device of ``version`` (12.0+)."""
    names = [s.element for s in SETTINGS if at_least(version, s.since)]
    if at_least(version, LIST_SINCE):
        names.extend(name for name, _, _ in LIST_SETTINGS)
    return names


def eas_provision_doc(policy: Mapping[str, Any], version: str) -> Element:
    """The ``Provision:EASProvisionDoc`` element for ``version`` (12.0 or later)."""
    doc = Element("Provision:EASProvisionDoc")
    for setting in SETTINGS:
        if at_least(version, setting.since):
            doc.add(f"Provision:{setting.element}", setting.encode(policy[setting.option]))
    if at_least(version, LIST_SINCE):
        for element, option, child in LIST_SETTINGS:
            values = list(policy[option])
            container = doc.add(f"Provision:{element}")
            for value in values:
                container.add(f"Provision:{child}", value)
    return doc


# -- MS-WAP-Provisioning-XML (2.5) -----------------------------------------------

#: Registry branches of the 2.5 document (MS-ASPROV 2.2.2.24.2).
_LASSD = r"HKLM\Comm\Security\Policy\LASSD"
_INACTIVITY = _LASSD + r"\AE\{50C13377-C66D-400C-889E-C316FC4AB374}"
_PASSWORD = _LASSD + r"\LAP\lap_pw"


def _parm(name: str, value: object) -> str:
    return f"<parm name={quoteattr(name)} value={quoteattr(str(value))}/>"


def wap_provisioning_doc(policy: Mapping[str, Any]) -> str:
    """The ``wap-provisioningdoc`` string for protocol 2.5.

    SecurityPolicy 4131 is 0 when a password is required, 1 when not; the
    registry values carry the inactivity lock (minutes), the wipe threshold
    (-1: none), the minimum length and complexity (0: alphanumeric, 2: PIN).
    """
    password = bool(policy["device_password_enabled"])
    parts = ["<wap-provisioningdoc>", '<characteristic type="SecurityPolicy">',
             _parm("4131", 0 if password else 1), "</characteristic>"]
    if password:
        inactivity = int(policy["max_inactivity_time_device_lock"])
        failures = int(policy["max_device_password_failed_attempts"])
        parts += [
            '<characteristic type="Registry">',
            f"<characteristic type={quoteattr(_INACTIVITY)}>",
            _parm("AEFrequencyType", 1 if inactivity else 0),
            _parm("AEFrequencyValue", max(1, (inactivity + 59) // 60) if inactivity else 0),
            "</characteristic>",
            f"<characteristic type={quoteattr(_LASSD)}>",
            _parm("DeviceWipeThreshold", failures if failures else -1),
            "</characteristic>",
            f"<characteristic type={quoteattr(_LASSD)}>",
            _parm("CodewordFrequency", max(1, failures // 2) if failures else 0),
            "</characteristic>",
            f"<characteristic type={quoteattr(_PASSWORD)}>",
            _parm("MinimumPasswordLength", int(policy["min_device_password_length"])),
            _parm("PasswordComplexity",
                  0 if policy["alphanumeric_device_password_required"] else 2),
            "</characteristic>",
            "</characteristic>",
        ]
    parts.append("</wap-provisioningdoc>")
    return "".join(parts)


def policy_data(policy: Mapping[str, Any], version: str) -> Element:
    """The ``Provision:Data`` element of an initial Provision answer."""
    if version == "2.5":
        return Element("Provision:Data", wap_provisioning_doc(policy))
    return Element("Provision:Data", children=[eas_provision_doc(policy, version)])
