"""Mail folders in the hierarchy: reconciliation with the mailbox list, and
FolderSync / FolderCreate / FolderUpdate / FolderDelete on mail folders,
against a fake mail backend (:class:`FakeMailBackend`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.interfaces import (
    FOLDER_DELETED,
    FOLDER_DRAFTS,
    FOLDER_INBOX,
    FOLDER_SENT,
    FOLDER_USER_MAIL,
    FolderPoint,
    MailBackendUnavailable,
    MailboxExists,
    MailFolder,
    NoSuchMailbox,
)
from easyncd.protocol.commands.folderops import (
    FolderCreateCommand,
    FolderDeleteCommand,
    FolderUpdateCommand,
)
from easyncd.protocol.commands.foldersync import FolderSyncCommand
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.mailfolders import (
    mail_backend_id,
    mailbox_of,
    reconcile_mail_folders,
    shown_mailboxes,
)
from easyncd.store.interfaces import Folder
from easyncd.testing.memory_groupware import MemoryGroupwareBackend
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element
from tests.protocol.helpers import make_clock, make_context, result_of

NS = "FolderHierarchy:"

SPECIAL = {"INBOX": FOLDER_INBOX, "Drafts": FOLDER_DRAFTS, "Trash": FOLDER_DELETED,
           "Sent": FOLDER_SENT}


@dataclass(eq=False)
class FakeRegistration:
    """A watch registration of :class:`FakeMailBackend`."""

    mailboxes: frozenset[str]
    on_change: Callable[[str], None]
    stopped: bool = False

    def stop(self) -> None:
        self.stopped = True


@dataclass(eq=False)
class FakeMailBackend:
    """An IMailBackend keeping mailboxes in memory ("/" delimiter; INBOX,
    Drafts, Trash and Sent are special by name).  ``noselect`` names are
    placeholders.  Every call is recorded in ``calls``; ``broken`` makes
    every call fail with MailBackendUnavailable."""

    mailboxes: set[str] = field(default_factory=lambda: {"INBOX", "Drafts", "Trash", "Sent"})
    noselect: set[str] = field(default_factory=set)
    points: dict[str, FolderPoint] = field(default_factory=dict)
    registrations: list[FakeRegistration] = field(default_factory=list)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    broken: bool = False
    passwords: list[str] = field(default_factory=list)

    def _check(self, *call: Any) -> None:
        self.calls.append(call)
        if self.broken:
            raise MailBackendUnavailable("down")

    def folder(self, name: str) -> MailFolder:
        parent, _, last = name.rpartition("/")
        return MailFolder(name=name, parent=parent or None, delimiter="/",
                          eas_type=SPECIAL.get(name, FOLDER_USER_MAIL), display_name=last,
                          selectable=name not in self.noselect)

    def list_folders(self, user: str, password: str) -> "Deferred[list[MailFolder]]":
        try:
            self._check("list_folders", user)
        except Exception as exc:
            return fail(exc)
        self.passwords.append(password)
        names = sorted(self.mailboxes | self.noselect, key=lambda n: (n != "INBOX", n.lower()))
        return succeed([self.folder(n) for n in names])

    def create_folder(self, user: str, password: str, parent: str | None,
                      display_name: str) -> "Deferred[MailFolder]":
        try:
            self._check("create_folder", parent, display_name)
        except Exception as exc:
            return fail(exc)
        name = display_name if parent is None else f"{parent}/{display_name}"
        if parent is not None and parent not in self.mailboxes | self.noselect:
            return fail(NoSuchMailbox(parent))
        if name in self.mailboxes:
            return fail(MailboxExists(name))
        self.mailboxes.add(name)
        return succeed(self.folder(name))

    def rename_folder(self, user: str, password: str, name: str, new_parent: str | None,
                      new_display_name: str) -> "Deferred[MailFolder]":
        self.calls.append(("rename_folder", name, new_parent, new_display_name))
        if name not in self.mailboxes:
            return fail(NoSuchMailbox(name))
        new = new_display_name if new_parent is None else f"{new_parent}/{new_display_name}"
        if new in self.mailboxes:
            return fail(MailboxExists(new))
        for old in sorted(self.mailboxes):
            if old == name or old.startswith(name + "/"):
                self.mailboxes.remove(old)
                self.mailboxes.add(new + old[len(name):])
        return succeed(self.folder(new))

    def delete_folder(self, user: str, password: str, name: str) -> "Deferred[None]":
        self.calls.append(("delete_folder", name))
        if name not in self.mailboxes:
            return fail(NoSuchMailbox(name))
        self.mailboxes = {m for m in self.mailboxes if m != name and not m.startswith(name + "/")}
        return succeed(None)

    def folder_state(self, user: str, password: str, mailbox: str) -> "Deferred[FolderPoint]":
        try:
            self._check("folder_state", mailbox)
        except Exception as exc:
            return fail(exc)
        return succeed(self.points.get(mailbox, FolderPoint(1, 1, 1, 0)))

    def watch(self, user: str, password: str, mailboxes: Iterable[str],
              on_change: Callable[[str], None]) -> "Deferred[FakeRegistration]":
        try:
            self._check("watch", user, tuple(mailboxes))
        except Exception as exc:
            return fail(exc)
        registration = FakeRegistration(frozenset(mailboxes), on_change)
        self.registrations.append(registration)
        return succeed(registration)

    def change(self, mailbox: str) -> None:
        """Something changed in ``mailbox``: call the live registrations."""
        for registration in list(self.registrations):
            if not registration.stopped and mailbox in registration.mailboxes:
                registration.on_change(mailbox)


def shown(store: Any, user: str = "alice") -> dict[str, tuple[str, str, int]]:
    """backend id -> (parent backend id or "0", display name, type) of the live folders."""
    folders: list[Folder] = result_of(store.list_folders(user))
    by_id = {f.server_id: f for f in folders}
    return {
        f.backend_id: (by_id[f.parent_id].backend_id if f.parent_id in by_id else f.parent_id,
                       f.display_name, f.folder_type)
        for f in folders
    }


class ReconcileTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.store: Any = MemoryStateStore()
        self.mail = FakeMailBackend()

    def reconcile(self) -> int:
        return result_of(reconcile_mail_folders(self.store, self.mail, "alice", "pw"))

    def test_types_parents_and_names(self) -> None:
        self.mail.mailboxes |= {"Work", "Work/Projects", "INBOX/Sub"}
        self.assertEqual(self.reconcile(), 7)
        self.assertEqual(shown(self.store), {
            "imap:INBOX": ("0", "Inbox", 2),
            "imap:Drafts": ("0", "Drafts", 3),
            "imap:Trash": ("0", "Trash", 4),
            "imap:Sent": ("0", "Sent", 5),
            "imap:Work": ("0", "Work", 12),
            "imap:Work/Projects": ("imap:Work", "Projects", 12),
            "imap:INBOX/Sub": ("imap:INBOX", "Sub", 12),
        })
        self.assertEqual(self.mail.passwords, ["pw"])

    def test_idempotent_and_cheap(self) -> None:
        self.mail.mailboxes |= {"Work", "Work/Projects"}
        self.reconcile()
        revision = result_of(self.store.folder_revision("alice"))
        self.assertEqual(self.reconcile(), 0)
        self.assertEqual(result_of(self.store.folder_revision("alice")), revision)
        self.assertEqual([c[0] for c in self.mail.calls], ["list_folders", "list_folders"])

    def test_noselect_parent_shown_only_with_children(self) -> None:
        self.mail.noselect |= {"Archive", "Empty"}
        self.mail.mailboxes |= {"Archive/2023"}
        self.reconcile()
        got = shown(self.store)
        self.assertEqual(got["imap:Archive"], ("0", "Archive", 12))
        self.assertEqual(got["imap:Archive/2023"], ("imap:Archive", "2023", 12))
        self.assertNotIn("imap:Empty", got)

    def test_deleted_mailbox_deletes_folder_and_children(self) -> None:
        self.mail.mailboxes |= {"Work", "Work/Projects", "Other"}
        self.reconcile()
        self.mail.mailboxes -= {"Work", "Work/Projects"}
        self.reconcile()
        self.assertNotIn("imap:Work", shown(self.store))
        self.assertNotIn("imap:Work/Projects", shown(self.store))
        self.assertIn("imap:Other", shown(self.store))

    def test_server_rename_is_delete_and_add(self) -> None:
        self.mail.mailboxes |= {"Work", "Work/Projects"}
        self.reconcile()
        before = {f.backend_id: f.server_id for f in result_of(self.store.list_folders("alice"))}
        result_of(self.mail.rename_folder("alice", "pw", "Work", None, "Job"))
        self.reconcile()
        got = shown(self.store)
        self.assertEqual(got["imap:Job/Projects"], ("imap:Job", "Projects", 12))
        self.assertNotIn("imap:Work", got)
        after = {f.backend_id: f.server_id for f in result_of(self.store.list_folders("alice"))}
        self.assertNotIn(before["imap:Work"], after.values())
        self.assertEqual(after["imap:INBOX"], before["imap:INBOX"])

    def test_type_change_replaces_folder(self) -> None:
        self.mail.mailboxes |= {"Bin"}
        self.reconcile()
        SPECIAL["Bin"] = FOLDER_DELETED
        self.addCleanup(SPECIAL.pop, "Bin")
        self.reconcile()
        self.assertEqual(shown(self.store)["imap:Bin"], ("0", "Bin", 4))
        self.assertEqual(len([f for f in result_of(self.store.list_folders("alice"))
                              if f.backend_id == "imap:Bin"]), 1)

    def test_name_taken_by_groupware_folder(self) -> None:
        result_of(self.store.add_folder("alice", "0", "Calendar", 8, "groupware:cal"))
        self.mail.mailboxes |= {"Calendar"}
        self.reconcile()
        self.assertEqual(shown(self.store)["imap:Calendar"], ("0", "Calendar (Email)", 12))
        self.assertEqual(self.reconcile(), 0)

    def test_other_folders_untouched(self) -> None:
        result_of(self.store.add_folder("alice", "0", "Contacts", 9, "groupware:c"))
        self.reconcile()
        self.mail.mailboxes = {"INBOX"}
        self.reconcile()
        self.assertEqual(set(shown(self.store)), {"groupware:c", "imap:INBOX"})

    def test_backend_error_propagates_and_changes_nothing(self) -> None:
        self.reconcile()
        self.mail.broken = True
        self.assertRaises(MailBackendUnavailable, self.reconcile)
        self.assertEqual(len(shown(self.store)), 4)

    def test_helpers(self) -> None:
        self.assertEqual(mail_backend_id("A/B"), "imap:A/B")
        self.assertEqual(mailbox_of("imap:A/B"), "A/B")
        self.assertIsNone(mailbox_of("groupware:x"))
        mail = FakeMailBackend(mailboxes={"INBOX", "A/B/C"}, noselect={"A", "A/B", "Z"})
        listed: list[MailFolder] = result_of(mail.list_folders("u", "p"))
        names = [m.name for m in shown_mailboxes(listed)]
        self.assertEqual(names, ["INBOX", "A", "A/B", "A/B/C"])


def request(tag: str, **values: str) -> Element:
    root = Element(NS + tag)
    for name, value in values.items():
        root.add(NS + name, value)
    return root


def text(response: CommandResponse, tag: str) -> str | None:
    assert response.body is not None
    return response.body.findtext(NS + tag)


class MailFolderCommandTests(SynchronousTestCase):
    """FolderSync / FolderCreate / FolderUpdate / FolderDelete with a mail backend."""

    def setUp(self) -> None:
        self.store: Any = MemoryStateStore()
        self.clock = make_clock()
        self.mail = FakeMailBackend()
        self.mail.mailboxes |= {"Work", "Work/Projects"}
        self.groupware: Any = MemoryGroupwareBackend(clock=self.clock)
        self.services: dict[str, Any] = {"mail": self.mail, "groupware": self.groupware}
        self.key = text(self.sync("0"), "SyncKey") or ""

    def ctx(self, command: str) -> CommandContext:
        ctx = make_context(self.store, command, clock=self.clock, services=self.services)
        ctx.password = "pw"
        return ctx

    def run_command(self, command: Any, body: Element) -> CommandResponse:
        return result_of(command.run(self.ctx(command.name), body))

    def sync(self, key: str) -> CommandResponse:
        return self.run_command(FolderSyncCommand(), request("FolderSync", SyncKey=key))

    def ids(self) -> dict[str, str]:
        return {f.backend_id: f.server_id for f in result_of(self.store.list_folders("alice"))}

    def changes(self, response: CommandResponse) -> list[tuple[str, ...]]:
        assert response.body is not None
        out: list[tuple[str, ...]] = []
        block = response.body.find(NS + "Changes")
        for element in block.children if block is not None else []:
            if element.tag == NS + "Count":
                continue
            out.append((element.tag[len(NS):],
                        *(str(child.text or "") for child in element.children)))
        return out

    def test_initial_foldersync_shows_mail_and_groupware(self) -> None:
        response = self.sync("0")
        adds = {c[3]: c for c in self.changes(response) if c[0] == "Add"}
        self.assertEqual(adds["Inbox"][4], "2")
        self.assertEqual(adds["Drafts"][4], "3")
        self.assertEqual(adds["Trash"][4], "4")
        self.assertEqual(adds["Sent"][4], "5")
        self.assertEqual(adds["Work"][4], "12")
        self.assertEqual(adds["Projects"][2], adds["Work"][1])  # parent id
        self.assertIn("Contacts", adds)
        names = [c[3] for c in self.changes(response)]
        self.assertLess(names.index("Work"), names.index("Projects"))

    def test_server_side_mailbox_shows_up_in_next_foldersync(self) -> None:
        self.mail.mailboxes.add("Work/New")
        response = self.sync(self.key)
        self.assertEqual(text(response, "SyncKey"), str(int(self.key) + 1))
        [change] = self.changes(response)
        self.assertEqual(change[0], "Add")
        self.assertEqual(change[2:], (self.ids()["imap:Work"], "New", "12"))

    def test_mail_backend_down_keeps_foldersync_working(self) -> None:
        self.mail.broken = True
        response = self.sync(self.key)
        self.assertEqual(text(response, "Status"), "1")
        self.assertEqual(text(response, "SyncKey"), self.key)

    def test_create_at_top_and_below(self) -> None:
        response = self.run_command(FolderCreateCommand(), request(
            "FolderCreate", SyncKey=self.key, ParentId="0", DisplayName="Receipts", Type="12"))
        self.assertEqual(text(response, "Status"), "1")
        key = text(response, "SyncKey") or ""
        server_id = text(response, "ServerId")
        self.assertIn("Receipts", self.mail.mailboxes)
        self.assertEqual(self.ids()["imap:Receipts"], server_id)
        response = self.run_command(FolderCreateCommand(), request(
            "FolderCreate", SyncKey=key, ParentId=server_id or "", DisplayName="2024",
            Type="12"))
        self.assertEqual(text(response, "Status"), "1")
        self.assertIn("Receipts/2024", self.mail.mailboxes)
        # The device's own creations are not sent back.
        sync = self.sync(text(response, "SyncKey") or "")
        self.assertEqual(self.changes(sync), [])

    def test_create_under_inbox(self) -> None:
        response = self.run_command(FolderCreateCommand(), request(
            "FolderCreate", SyncKey=self.key, ParentId=self.ids()["imap:INBOX"],
            DisplayName="Sub", Type="12"))
        self.assertEqual(text(response, "Status"), "1")
        self.assertIn("INBOX/Sub", self.mail.mailboxes)

    def test_create_existing_is_status_2(self) -> None:
        response = self.run_command(FolderCreateCommand(), request(
            "FolderCreate", SyncKey=self.key, ParentId="0", DisplayName="Work", Type="12"))
        self.assertEqual(text(response, "Status"), "2")

    def test_create_mail_under_groupware_folder_is_refused(self) -> None:
        contacts = next(f for f in result_of(self.store.list_folders("alice"))
                        if f.folder_type == 9)
        response = self.run_command(FolderCreateCommand(), request(
            "FolderCreate", SyncKey=self.key, ParentId=contacts.server_id, DisplayName="X",
            Type="12"))
        self.assertEqual(text(response, "Status"), "3")
        self.assertNotIn("X", self.mail.mailboxes)

    def test_create_with_delimiter_is_bad_request(self) -> None:
        response = self.run_command(FolderCreateCommand(), request(
            "FolderCreate", SyncKey=self.key, ParentId="0", DisplayName="a/b", Type="12"))
        self.assertEqual(text(response, "Status"), "10")

    def test_create_when_imap_fails_is_server_error(self) -> None:
        self.mail.broken = True
        response = self.run_command(FolderCreateCommand(), request(
            "FolderCreate", SyncKey=self.key, ParentId="0", DisplayName="New", Type="12"))
        self.assertEqual(text(response, "Status"), "6")

    def test_groupware_create_still_works(self) -> None:
        response = self.run_command(FolderCreateCommand(), request(
            "FolderCreate", SyncKey=self.key, ParentId="0", DisplayName="Team", Type="13"))
        self.assertEqual(text(response, "Status"), "1")

    def test_rename_and_move(self) -> None:
        ids = self.ids()
        response = self.run_command(FolderUpdateCommand(), request(
            "FolderUpdate", SyncKey=self.key, ServerId=ids["imap:Work"], ParentId="0",
            DisplayName="Job"))
        self.assertEqual(text(response, "Status"), "1")
        self.assertEqual(self.mail.mailboxes, {"INBOX", "Drafts", "Trash", "Sent", "Job",
                                               "Job/Projects"})
        key = text(response, "SyncKey") or ""
        # Move Projects under INBOX.
        ids = self.ids()
        projects = ids.get("imap:Job/Projects") or ids["imap:Work/Projects"]
        response = self.run_command(FolderUpdateCommand(), request(
            "FolderUpdate", SyncKey=key, ServerId=projects, ParentId=ids["imap:INBOX"],
            DisplayName="Projects"))
        self.assertEqual(text(response, "Status"), "1")
        self.assertIn("INBOX/Projects", self.mail.mailboxes)
        got = shown(self.store)
        self.assertEqual(got["imap:Job"], ("0", "Job", 12))
        self.assertEqual(got["imap:INBOX/Projects"], ("imap:INBOX", "Projects", 12))
        self.assertNotIn("imap:Work", got)

    def test_special_folders_cannot_be_renamed_or_deleted(self) -> None:
        ids = self.ids()
        for mailbox in ("INBOX", "Drafts", "Trash", "Sent"):
            response = self.run_command(FolderUpdateCommand(), request(
                "FolderUpdate", SyncKey=self.key, ServerId=ids["imap:" + mailbox], ParentId="0",
                DisplayName="Other"))
            self.assertEqual(text(response, "Status"), "2", mailbox)
            response = self.run_command(FolderDeleteCommand(), request(
                "FolderDelete", SyncKey=self.key, ServerId=ids["imap:" + mailbox]))
            self.assertEqual(text(response, "Status"), "3", mailbox)
        self.assertEqual([c for c in self.mail.calls if c[0] != "list_folders"], [])

    def test_rename_onto_existing_is_status_2(self) -> None:
        self.mail.mailboxes.add("Other")
        self.sync(self.key)
        response = self.run_command(FolderUpdateCommand(), request(
            "FolderUpdate", SyncKey=str(int(self.key) + 1), ServerId=self.ids()["imap:Work"],
            ParentId="0", DisplayName="Other"))
        self.assertEqual(text(response, "Status"), "2")

    def test_move_under_itself_is_refused(self) -> None:
        ids = self.ids()
        response = self.run_command(FolderUpdateCommand(), request(
            "FolderUpdate", SyncKey=self.key, ServerId=ids["imap:Work"],
            ParentId=ids["imap:Work/Projects"], DisplayName="Work"))
        self.assertEqual(text(response, "Status"), "5")
        self.assertIn("Work", self.mail.mailboxes)

    def test_delete(self) -> None:
        ids = self.ids()
        response = self.run_command(FolderDeleteCommand(), request(
            "FolderDelete", SyncKey=self.key, ServerId=ids["imap:Work"]))
        self.assertEqual(text(response, "Status"), "1")
        self.assertNotIn("Work", self.mail.mailboxes)
        self.assertNotIn("Work/Projects", self.mail.mailboxes)
        self.assertNotIn("imap:Work/Projects", self.ids())
        sync = self.sync(text(response, "SyncKey") or "")
        self.assertEqual(self.changes(sync), [])

    def test_delete_of_mailbox_gone_on_server(self) -> None:
        ids = self.ids()
        self.mail.mailboxes -= {"Work", "Work/Projects"}
        response = self.run_command(FolderDeleteCommand(), request(
            "FolderDelete", SyncKey=self.key, ServerId=ids["imap:Work"]))
        self.assertEqual(text(response, "Status"), "1")

    def test_mail_only_without_groupware(self) -> None:
        self.services.pop("groupware")
        response = self.run_command(FolderCreateCommand(), request(
            "FolderCreate", SyncKey=self.key, ParentId="0", DisplayName="Solo", Type="12"))
        self.assertEqual(text(response, "Status"), "1")
        response = self.run_command(FolderCreateCommand(), request(
            "FolderCreate", SyncKey=text(response, "SyncKey") or "", ParentId="0",
            DisplayName="Cal", Type="13"))
        self.assertEqual(text(response, "Status"), "6")

    def test_rename_keeps_server_ids(self) -> None:
        ids = self.ids()
        response = self.run_command(FolderUpdateCommand(), request(
            "FolderUpdate", SyncKey=self.key, ServerId=ids["imap:Work"], ParentId="0",
            DisplayName="Job"))
        self.assertEqual(text(response, "Status"), "1")
        after = self.ids()
        self.assertEqual(after["imap:Job"], ids["imap:Work"])
        self.assertEqual(after["imap:Job/Projects"], ids["imap:Work/Projects"])
        answer = self.sync(text(response, "SyncKey") or "")
        # At most a no-op Update of the sub-folder (its backend id changed).
        self.assertEqual([c for c in self.changes(answer) if c[0] != "Update"], [])
        self.assertEqual(self.changes(self.sync(text(answer, "SyncKey") or "")), [])
