"""Search and Find over mail through the real daemon, against a real Dovecot.

A few messages are appended to alice's INBOX, to ``Archive`` and to its
sub-folder ``Archive.2023`` (Maildir's ``.`` delimiter) with chosen
INTERNALDATEs; the device (this test) runs FolderSync, then Search (Store
Mailbox) by free text (words in the subject and in the body), folder (with
and without DeepTraversal), date range and Range pages, and Find at 16.1
(refused at 14.1).  The free text is searched by Dovecot (``UID SEARCH
TEXT``), not by easyncd.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from twisted.trial.unittest import TestCase

from easyncd.backends.imap.connect import connect_imap
from easyncd.testing.daemon import SharedMailDaemon, mail_options, shared, folder_sync, wbxml_of
from easyncd.testing.dovecot import DovecotServer
from easyncd.wbxml import Element

USERS = {"alice": "alice-pw"}


def message(subject: str, body: str, when: datetime, *, cc: str | None = None) -> bytes:
    """A small text/plain message."""
    headers = [
        "From: Bob Sender <bob@example.test>", "To: Alice <alice@example.test>",
        f"Subject: {subject}", f"Message-ID: <{uuid.uuid4().hex}@example.test>",
        "Date: " + when.strftime("%a, %d %b %Y %H:%M:%S +0000"), "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    if cc:
        headers.append(f"Cc: {cc}")
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode("utf-8")


def day(month: int, number: int) -> datetime:
    return datetime(2023, month, number, 9, 30, tzinfo=timezone.utc)


#: (mailbox, subject, body, INTERNALDATE).  "kiwi" is in two subjects and two
#: bodies; "mango" in five bodies (paging); "Holiday" in neither.
MESSAGES = [
    ("INBOX", "Budget review kiwi", "Numbers for the quarter.", day(11, 10)),
    ("INBOX", "Lunch", "Shall we get kiwi juice on Friday?", day(11, 12)),
    ("INBOX", "Holiday", "Nothing to see here.", day(11, 14)),
    ("Archive", "Old report", "The kiwi figures of last year.", day(10, 1)),
    ("Archive.2023", "Kiwi subfolder", "Filed away.", day(9, 1)),
] + [("INBOX", f"Fruit {n}", f"mango number {n}", day(11, n)) for n in range(1, 6)]


class _Environment(SharedMailDaemon):
    """Dovecot + the daemon, shared by this module's tests."""

    def __init__(self) -> None:
        self.dovecot = DovecotServer(USERS)
        self.filled = False
        super().__init__(self.dovecot, lambda: mail_options(self.dovecot, **{"policy.mode": "none"}),
                         prefix="easyncd-search-")


def environment() -> _Environment:
    return shared(__name__, _Environment)


def search(*conditions: Element, range_text: str | None = None, deep: bool = False) -> Element:
    root = Element("Search:Search")
    store = root.add("Search:Store")
    store.add("Search:Name", "Mailbox")
    query = store.add("Search:Query").add("Search:And")
    query.add("AirSync:Class", "Email")
    query.children.extend(conditions)
    options = store.add("Search:Options")
    if range_text is not None:
        options.add("Search:Range", range_text)
    if deep:
        options.add("Search:DeepTraversal")
    options.add("Search:RebuildResults")
    pref = options.add("AirSyncBase:BodyPreference")
    pref.add("AirSyncBase:Type", "1")
    pref.add("AirSyncBase:TruncationSize", "500")
    return root


def free_text(words: str) -> Element:
    return Element("Search:FreeText", words)


def in_folder(server_id: str) -> Element:
    return Element("AirSync:CollectionId", server_id)


def received(tag: str, when: datetime) -> Element:
    element = Element("Search:" + tag)
    element.add("Email:DateReceived")
    element.add("Search:Value", when.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    return element


class MailSearchIntegrationTests(TestCase):
    """Search and Find against Dovecot."""

    timeout = 120

    async def setUp(self) -> None:  # type: ignore[override]
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.env = environment()
        self.daemon = self.env.daemon
        self.device = "dev" + uuid.uuid4().hex[:10]
        if not self.env.filled:
            await self.fill()
            self.env.filled = True
        self.ids = self.folders()

    async def fill(self) -> None:
        d = self.env.dovecot
        client = await connect_imap(self.reactor, d.host, d.imap_port, "none", None,
                                    "alice", USERS["alice"], timeout=10, enable=())
        try:
            await client.create_mailbox("Archive")
            await client.create_mailbox("Archive.2023")
            for mailbox, subject, body, when in MESSAGES:
                await client.append_message(mailbox, message(subject, body, when),
                                            ["\\Seen"], date=when)
        finally:
            await client.logout_quietly()

    def post(self, command: str, body: Element, version: str = "16.1") -> Element:
        response = self.daemon.post(command, body, user="alice", password=USERS["alice"],
                                    device_id=self.device, version=version)
        self.assertEqual(response.status_code, 200, response.text)
        return wbxml_of(response)

    def folders(self) -> dict[str, str]:
        """FolderSync: "INBOX", "Archive", "Archive.2023" -> ServerId."""
        answer = self.post("FolderSync", folder_sync())
        adds = answer.findall("FolderHierarchy:Changes/FolderHierarchy:Add")
        by_id = {a.findtext("FolderHierarchy:ServerId") or "": a for a in adds}
        ids: dict[str, str] = {}
        for sid, add in by_id.items():
            name = add.findtext("FolderHierarchy:DisplayName") or ""
            parent = add.findtext("FolderHierarchy:ParentId") or "0"
            if add.findtext("FolderHierarchy:Type") == "2":
                ids["INBOX"] = sid
            elif name == "Archive" and parent == "0":
                ids["Archive"] = sid
            elif name == "2023" and parent in by_id:
                ids["Archive.2023"] = sid
        self.assertEqual(set(ids), {"INBOX", "Archive", "Archive.2023"}, answer.to_xml())
        self.assertEqual(by_id[ids["Archive.2023"]].findtext("FolderHierarchy:ParentId"),
                         ids["Archive"])
        return ids

    def store(self, request: Element, version: str = "16.1") -> Element:
        answer = self.post("Search", request, version)
        self.assertEqual(answer.findtext("Search:Status"), "1", answer.to_xml())
        store = answer.find("Search:Response/Search:Store")
        assert store is not None, answer.to_xml()
        self.assertEqual(store.findtext("Search:Status"), "1", answer.to_xml())
        return store

    @staticmethod
    def hits(store: Element) -> list[tuple[str, str, str]]:
        """(CollectionId, Subject, DateReceived) per result."""
        return [(r.findtext("AirSync:CollectionId") or "",
                 r.findtext("Search:Properties/Email:Subject") or "",
                 r.findtext("Search:Properties/Email:DateReceived") or "")
                for r in store.findall("Search:Result") if r.children]

    # -- Search -------------------------------------------------------------------------

    def test_free_text_in_subjects_and_bodies(self) -> None:
        store = self.store(search(free_text("kiwi")))
        self.assertEqual([subject for _c, subject, _d in self.hits(store)],
                         ["Lunch", "Budget review kiwi", "Old report", "Kiwi subfolder"])
        self.assertEqual(store.findtext("Search:Total"), "4")
        self.assertEqual(store.findtext("Search:Range"), "0-3")
        first = store.find("Search:Result")
        assert first is not None
        long_id = first.findtext("Search:LongId") or ""
        self.assertTrue(long_id.startswith(self.ids["INBOX"] + ":"), long_id)
        body = first.find("Search:Properties/AirSyncBase:Body")
        assert body is not None
        self.assertIn("kiwi juice", body.findtext("AirSyncBase:Data") or "")
        self.assertEqual(first.findtext("Search:Properties/Email:Read"), "1")
        # Two words: both must occur.
        both = self.store(search(free_text("kiwi juice")))
        self.assertEqual([s for _c, s, _d in self.hits(both)], ["Lunch"])

    def test_nothing_found(self) -> None:
        store = self.store(search(free_text("papaya")))
        self.assertEqual(store.findtext("Search:Total"), "0")
        self.assertEqual([r.children for r in store.findall("Search:Result")], [[]])

    def test_folder_restriction(self) -> None:
        inbox = self.store(search(in_folder(self.ids["INBOX"]), free_text("kiwi")))
        self.assertEqual({c for c, _s, _d in self.hits(inbox)}, {self.ids["INBOX"]})
        self.assertEqual(len(self.hits(inbox)), 2)
        shallow = self.store(search(in_folder(self.ids["Archive"]), free_text("kiwi")))
        self.assertEqual([s for _c, s, _d in self.hits(shallow)], ["Old report"])
        deep = self.store(search(in_folder(self.ids["Archive"]), free_text("kiwi"), deep=True))
        self.assertEqual([(c, s) for c, s, _d in self.hits(deep)],
                         [(self.ids["Archive"], "Old report"),
                          (self.ids["Archive.2023"], "Kiwi subfolder")])
        unknown = self.post("Search", search(in_folder("99999"), free_text("kiwi")))
        self.assertEqual(unknown.findtext("Search:Response/Search:Store/Search:Status"), "11")

    def test_date_range(self) -> None:
        recent = self.store(search(free_text("kiwi"), received("GreaterThan", day(11, 11))))
        self.assertEqual([s for _c, s, _d in self.hits(recent)], ["Lunch"])
        window = self.store(search(free_text("kiwi"), received("GreaterThan", day(9, 15)),
                                   received("LessThan", day(11, 11))))
        self.assertEqual([(s, d) for _c, s, d in self.hits(window)],
                         [("Budget review kiwi", "2023-11-10T09:30:00.000Z"),
                          ("Old report", "2023-10-01T09:30:00.000Z")])

    def test_paging(self) -> None:
        seen: list[str] = []
        for range_text, expected in (("0-1", "0-1"), ("2-3", "2-3"), ("4-5", "4-4")):
            store = self.store(search(free_text("mango"), range_text=range_text))
            self.assertEqual(store.findtext("Search:Total"), "5")
            self.assertEqual(store.findtext("Search:Range"), expected)
            seen += [s for _c, s, _d in self.hits(store)]
        self.assertEqual(seen, [f"Fruit {n}" for n in range(5, 0, -1)])
        beyond = self.store(search(free_text("mango"), range_text="10-19"))
        self.assertEqual(beyond.findtext("Search:Total"), "5")
        self.assertIsNone(beyond.find("Search:Range"))

    def test_search_at_12_1(self) -> None:
        store = self.store(search(free_text("kiwi"), in_folder(self.ids["INBOX"])), "12.1")
        self.assertEqual(len(self.hits(store)), 2)

    # -- Find ---------------------------------------------------------------------------

    def find_request(self, words: str, range_text: str = "0-99") -> Element:
        root = Element("Find:Find")
        root.add("Find:SearchId", str(uuid.uuid4()))
        criterion = root.add("Find:ExecuteSearch").add("Find:MailBoxSearchCriterion")
        query = criterion.add("Find:Query")
        query.add("AirSync:Class", "Email")
        query.add("Find:FreeText", words)
        options = criterion.add("Find:Options")
        options.add("Find:Range", range_text)
        options.add("Find:DeepTraversal")
        return root

    def test_find_at_16_1(self) -> None:
        answer = self.post("Find", self.find_request("kiwi"))
        self.assertEqual(answer.findtext("Find:Status"), "1", answer.to_xml())
        response = answer.find("Find:Response")
        assert response is not None
        self.assertEqual(response.findtext("ItemOperations:Store"), "Mailbox")
        self.assertEqual(response.findtext("Find:Status"), "1")
        self.assertEqual(response.findtext("Find:Total"), "4")
        results = response.findall("Find:Result")
        self.assertEqual([r.findtext("Find:Properties/Email:Subject") for r in results],
                         ["Lunch", "Budget review kiwi", "Old report", "Kiwi subfolder"])
        lunch = results[0]
        self.assertTrue((lunch.findtext("AirSync:ServerId") or "").startswith(
            self.ids["INBOX"] + ":"))
        self.assertEqual(lunch.findtext("AirSync:CollectionId"), self.ids["INBOX"])
        self.assertIn("kiwi juice", lunch.findtext("Find:Properties/Find:Preview") or "")
        self.assertEqual(lunch.findtext("Find:Properties/Find:HasAttachments"), "0")
        self.assertIn("bob@example.test", lunch.findtext("Find:Properties/Email:From") or "")
        paged = self.post("Find", self.find_request("mango", "0-2")).find("Find:Response")
        assert paged is not None
        self.assertEqual(paged.findtext("Find:Range"), "0-2")
        self.assertEqual(paged.findtext("Find:Total"), "5")
        refused = self.post("Find", self.find_request("mango", "3-5")).find("Find:Response")
        assert refused is not None
        self.assertEqual(refused.findtext("Find:Status"), "4")

    def test_find_refused_at_14_1(self) -> None:
        answer = self.post("Find", self.find_request("kiwi"), "14.1")
        self.assertEqual(answer.tag, "Find:Find")
        self.assertEqual(answer.findtext("Find:Status"), "138")
