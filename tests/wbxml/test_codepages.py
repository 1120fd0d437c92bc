"""The code page tables against values printed in MS-ASWBXML."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from easyncd.wbxml.codepages import (
    CODE_PAGES,
    LEGACY_TAGS,
    PAGE_BY_NAMESPACE,
    TAGS_BY_TOKEN,
    TOKEN_BY_TAG,
)

NAMESPACES = [
    "AirSync", "Contacts", "Email", "AirNotify", "Calendar", "Move",
    "GetItemEstimate", "FolderHierarchy", "MeetingResponse", "Tasks",
    "ResolveRecipients", "ValidateCert", "Contacts2", "Ping", "Provision",
    "Search", "GAL", "AirSyncBase", "Settings", "DocumentLibrary",
    "ItemOperations", "ComposeMail", "Email2", "Notes", "RightsManagement",
    "Find",
]


class CodePageTests(TestCase):
    """Page numbers, namespaces and spot checks of tokens."""

    def test_pages(self) -> None:
        self.assertEqual([page.namespace for page in CODE_PAGES], NAMESPACES)
        self.assertEqual([page.number for page in CODE_PAGES], list(range(26)))
        self.assertEqual(PAGE_BY_NAMESPACE["AirSyncBase"], 17)

    def test_tables_consistent(self) -> None:
        for page in CODE_PAGES:
            self.assertEqual(len(set(page.tags.values())), len(page.tags))
            for token, name in page.tags.items():
                self.assertTrue(0x05 <= token <= 0x3F)
                tag = f"{page.namespace}:{name}"
                self.assertEqual(TOKEN_BY_TAG[tag], (page.number, token))
                self.assertEqual(TAGS_BY_TOKEN[page.number][token], tag)
        self.assertTrue(LEGACY_TAGS <= TOKEN_BY_TAG.keys())

    def test_spec_find_page(self) -> None:
        # MS-ASWBXML 2.1.2.1.26, Code Page 25: Find.
        expected = {
            "Find": 0x05, "SearchId": 0x06, "ExecuteSearch": 0x07,
            "MailBoxSearchCriterion": 0x08, "Query": 0x09, "Status": 0x0A,
            "FreeText": 0x0B, "Options": 0x0C, "Range": 0x0D,
            "DeepTraversal": 0x0E, "Response": 0x11, "Result": 0x12,
            "Properties": 0x13, "Preview": 0x14, "HasAttachments": 0x15,
            "Total": 0x16, "DisplayCc": 0x17, "DisplayBcc": 0x18,
            "GalSearchCriterion": 0x19, "MaxPictures": 0x20, "MaxSize": 0x21,
            "Picture": 0x22,
        }
        self.assertEqual({v: k for k, v in CODE_PAGES[25].tags.items()}, expected)

    def test_spec_contacts2_and_resolverecipients(self) -> None:
        # MS-ASWBXML 2.1.2.1.13 and 2.1.2.1.11.
        self.assertEqual(
            [CODE_PAGES[12].tags[t] for t in range(0x05, 0x0F)],
            ["CustomerId", "GovernmentId", "IMAddress", "IMAddress2",
             "IMAddress3", "ManagerName", "CompanyMainPhone", "AccountName",
             "NickName", "MMS"],
        )
        self.assertEqual(
            [CODE_PAGES[10].tags[t] for t in range(0x05, 0x16)],
            ["ResolveRecipients", "Response", "Status", "Type", "Recipient",
             "DisplayName", "EmailAddress", "Certificates", "Certificate",
             "MiniCertificate", "Options", "To", "CertificateRetrieval",
             "RecipientCount", "MaxCertificates", "MaxAmbiguousRecipients",
             "CertificateCount"],
        )

    def test_spot_checks(self) -> None:
        for tag, expected in {
            "AirSync:Sync": (0, 0x05),
            "AirSync:HeartbeatInterval": (0, 0x29),
            "Email:Status": (2, 0x3B),
            "Calendar:Timezone": (4, 0x05),
            "FolderHierarchy:FolderSync": (7, 0x16),
            "Ping:HeartbeatInterval": (13, 0x08),
            "Provision:EASProvisionDoc": (14, 0x0D),
            "Provision:AttachmentsEnabled": (14, 0x13),
            "Provision:AccountOnlyRemoteWipe": (14, 0x3B),
            "GAL:Data": (16, 0x12),
            "AirSyncBase:NativeBodyType": (17, 0x16),
            "Settings:DeviceInformation": (18, 0x16),
            "ComposeMail:Mime": (21, 0x10),
            "Email2:Send": (22, 0x17),
            "RightsManagement:RemoveRightsManagementDistribution": (24, 0x18),
        }.items():
            self.assertEqual(TOKEN_BY_TAG[tag], expected, tag)
