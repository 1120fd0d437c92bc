"""Tests for easyncd.admin.groupware (actions on the memory fake and on
SQLite) and the ``collection`` / ``item`` commands of the real
easyncd-admin in a subprocess."""
from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Any, Coroutine, Generator

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from easyncd.admin import groupware
from easyncd.admin.errors import AdminError
from easyncd.backends.groupware.sql import SQLGroupwareBackend
from easyncd.backends.groupware.vobj import (
    parse_ics,
    parse_vcard,
    parse_vtodo,
    split_file,
)
from easyncd.store.sqlite import SQLiteStateStore
from easyncd.testing.memory_groupware import MemoryGroupwareBackend

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
VCF = os.path.join(FIXTURES, "vcard", "address_book_export.vcf")
ICS = os.path.join(FIXTURES, "ics", "calendar_export.ics")
CHOIR = "7d1c6f0e-2b8a-4f39-9d1e-5a4c3b2a1f00"
MARIA = "c6d7e8f9-0a1b-4c2d-9e3f-4a5b6c7d8e9f"

Gen = Generator[Any, Any, None]

if TYPE_CHECKING:
    _Base = TestCase
else:
    _Base = object


def read(path: str) -> str:
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read()


def run(coroutine: Coroutine[Any, Any, Any]) -> "Deferred[Any]":
    return Deferred.fromCoroutine(coroutine)


def uids() -> Any:
    counter = itertools.count(1)
    return lambda: f"generated-{next(counter)}"


class GroupwareActionsMixin(_Base):
    """The actions, on any backend (``make_backend`` gives one)."""

    def make_backend(self) -> "Deferred[Any]":
        raise NotImplementedError

    @inlineCallbacks
    def setUp(self) -> Gen:  # type: ignore[override]
        self.backend = yield self.make_backend()
        collections = yield run(groupware.list_collections(self.backend, "alice"))
        self.ids = {c.kind: c.collection_id for c in collections}

    @inlineCallbacks
    def assert_admin_error(self, coroutine: Coroutine[Any, Any, Any], text: str) -> Gen:
        try:
            yield run(coroutine)
        except AdminError as exc:
            self.assertIn(text, str(exc))
        else:
            self.fail(f"no AdminError ({text})")

    @inlineCallbacks
    def revision(self, collection_id: str) -> Generator[Any, Any, int]:
        value = yield self.backend.current_revision("alice", collection_id)
        return int(value)

    @inlineCallbacks
    def test_collections(self) -> Gen:
        found = yield run(groupware.list_collections(self.backend, "alice"))
        self.assertEqual(
            [groupware.collection_to_json(c) for c in found],
            [{"id": self.ids[kind], "kind": kind, "name": name, "default": True,
              "synced": True}
             for kind, name in (("calendar", "Calendar"), ("contacts", "Contacts"),
                                ("notes", "Notes"), ("tasks", "Tasks"))])
        table = groupware.format_collection_table(found)
        self.assertEqual(table.splitlines()[0].split(), ["ID", "KIND", "NAME", "DEFAULT", "SYNCED"])
        self.assertEqual(table.splitlines()[1].split(),
                         [self.ids["calendar"], "calendar", "Calendar", "yes", "yes"])

        work = yield run(groupware.create_collection(self.backend, "alice", "calendar", "Work"))
        self.assertFalse(work.is_default)
        renamed = yield run(groupware.rename_collection(
            self.backend, "alice", work.collection_id, "Office"))
        self.assertEqual(renamed.display_name, "Office")
        hidden = yield run(groupware.set_synced(self.backend, "alice", work.collection_id, False))
        self.assertFalse(hidden.synced)
        shown = yield run(groupware.set_synced(self.backend, "alice", work.collection_id, True))
        self.assertTrue(shown.synced)
        yield self.assert_admin_error(
            groupware.create_collection(self.backend, "alice", "calendar", "Office"),
            "exists")
        yield self.assert_admin_error(
            groupware.create_collection(self.backend, "alice", "calendar", " "), "empty")
        yield self.assert_admin_error(
            groupware.create_collection(self.backend, "alice", "mail", "X"), "unknown kind")
        deleted = yield run(groupware.delete_collection(
            self.backend, "alice", work.collection_id))
        self.assertEqual(deleted.display_name, "Office")
        yield self.assert_admin_error(
            groupware.delete_collection(self.backend, "alice", work.collection_id),
            f"no such collection: {work.collection_id} (user alice)")
        yield self.assert_admin_error(
            groupware.delete_collection(self.backend, "alice", self.ids["contacts"]),
            "default contacts collection: it cannot be deleted")
        yield self.assert_admin_error(
            groupware.set_synced(self.backend, "alice", self.ids["tasks"], False),
            "always syncs")
        yield self.assert_admin_error(
            groupware.rename_collection(self.backend, "bob", self.ids["tasks"], "X"),
            "no such collection")
        yield self.assert_admin_error(
            groupware.list_items(self.backend, "alice", "nonsense"), "no such collection")

    @inlineCallbacks
    def test_import_contacts(self) -> Gen:
        contacts = self.ids["contacts"]
        result = yield run(groupware.import_items(
            self.backend, "alice", contacts, read(VCF), new_uid=uids()))
        self.assertEqual((result.total, result.added, result.updated), (4, 4, 0))
        items = yield run(groupware.all_items(self.backend, "alice", contacts))
        self.assertEqual(sorted(str(i.uid) for i in items), sorted([
            "0b9a4f5e-3c2d-4e1f-8a7b-6c5d4e3f2a1b", MARIA, "generated-1", "generated-2"]))
        by_uid = {i.uid: i for i in items}
        self.assertEqual(parse_vcard(by_uid["generated-1"].data).last_name, "Schröder")
        self.assertIn("UID:generated-1", by_uid["generated-1"].data)
        # Revisions: one transaction, consecutive.
        revision = yield self.revision(contacts)
        self.assertEqual(revision, 4)

        # A file with a known UID replaces that item (same id), others are added.
        changed = read(VCF).split("END:VCARD")[2] + "END:VCARD\n"
        changed = changed.replace("Maria Garcia", "Maria García-López").lstrip()
        newcomer = "BEGIN:VCARD\nVERSION:3.0\nFN:Neu\nN:Neu;;;;\nUID:neu-1\nEND:VCARD\n"
        result = yield run(groupware.import_items(
            self.backend, "alice", contacts, changed + newcomer))
        self.assertEqual((result.added, result.updated), (1, 1))
        after = yield run(groupware.all_items(self.backend, "alice", contacts))
        after_by_uid = {i.uid: i for i in after}
        self.assertEqual(after_by_uid[MARIA].item_id, by_uid[MARIA].item_id)
        self.assertIn("FN:Maria García-López", after_by_uid[MARIA].data)
        self.assertEqual(len(after), 5)

        summaries = yield run(groupware.list_items(self.backend, "alice", contacts))
        self.assertIn(groupware.ItemSummary(after_by_uid[MARIA].item_id, MARIA,
                                            "Maria García-López"), summaries)
        self.assertEqual(groupware.item_to_json(summaries[0]),
                         {"id": summaries[0].item_id, "uid": summaries[0].uid,
                          "summary": summaries[0].summary})
        self.assertIn("Maria García-López", groupware.format_item_table(summaries))

    @inlineCallbacks
    def test_import_calendar_export_round_trip(self) -> Gen:
        calendar = self.ids["calendar"]
        result = yield run(groupware.import_items(
            self.backend, "alice", calendar, read(ICS), new_uid=uids()))
        self.assertEqual((result.added, result.updated), (4, 0))
        items = yield run(groupware.all_items(self.backend, "alice", calendar))
        choir = [i for i in items if i.uid == CHOIR][0]
        event = parse_ics(choir.data)
        self.assertEqual(len(event.exceptions), 2)
        self.assertEqual(choir.data.count("BEGIN:VTIMEZONE"), 1)

        text, count = yield run(groupware.export_items(self.backend, "alice", calendar))
        self.assertEqual(count, 4)
        self.assertEqual(text.count("BEGIN:VCALENDAR"), 1)
        self.assertEqual(text.count("TZID:Europe/Berlin"), 1)
        self.assertEqual(text.count("TZID:America/New_York"), 1)

        # Into a second calendar: the same items.
        other = yield run(groupware.create_collection(self.backend, "alice", "calendar", "Copy"))
        result = yield run(groupware.import_items(
            self.backend, "alice", other.collection_id, text))
        self.assertEqual((result.added, result.updated), (4, 0))
        copies = yield run(groupware.all_items(self.backend, "alice", other.collection_id))
        self.assertEqual({i.uid: parse_ics(i.data) for i in copies},
                         {i.uid: parse_ics(i.data) for i in items})
        # Into the same one: every item replaced, nothing added.
        result = yield run(groupware.import_items(self.backend, "alice", calendar, text))
        self.assertEqual((result.added, result.updated), (0, 4))

    @inlineCallbacks
    def test_wrong_kind_and_bad_files_import_nothing(self) -> Gen:
        contacts, calendar, tasks = self.ids["contacts"], self.ids["calendar"], self.ids["tasks"]
        yield self.assert_admin_error(
            groupware.import_items(self.backend, "alice", calendar, read(VCF), "book.vcf"),
            "book.vcf holds contacts (vCards), but the collection holds calendar events")
        yield self.assert_admin_error(
            groupware.import_items(self.backend, "alice", contacts, read(ICS)),
            "holds calendar events (VEVENT), but the collection holds contacts")
        yield self.assert_admin_error(
            groupware.import_items(self.backend, "alice", tasks, read(ICS)),
            "nothing imported")
        broken = read(ICS).replace("DTSTART:20240405T140000Z", "DTSTART:tomorrow")
        yield self.assert_admin_error(
            groupware.import_items(self.backend, "alice", calendar, broken, "cal.ics"),
            "cal.ics: item 2 (UID 3b0e9a44-61f2-4c0d-8e7a-1f2e3d4c5b6a) cannot be read")
        yield self.assert_admin_error(
            groupware.import_items(self.backend, "alice", calendar, "BEGIN:VCALENDAR\n"),
            "not a vCard or iCalendar file")
        yield self.assert_admin_error(
            groupware.import_items(self.backend, "alice", "999", read(ICS)),
            "no such collection: 999")
        for collection in (contacts, calendar, tasks):
            revision = yield self.revision(collection)
            self.assertEqual(revision, 0)
        result = yield run(groupware.import_items(self.backend, "alice", calendar, ""))
        self.assertEqual(result.total, 0)

    @inlineCallbacks
    def test_tasks_import_and_duplicate_uids(self) -> Gen:
        tasks = self.ids["tasks"]
        names = sorted(os.listdir(os.path.join(FIXTURES, "vtodo")))
        text = "".join(read(os.path.join(FIXTURES, "vtodo", n)) for n in names)
        result = yield run(groupware.import_items(self.backend, "alice", tasks, text + text))
        self.assertEqual((result.added, result.updated), (len(names), 0))
        items = yield run(groupware.all_items(self.backend, "alice", tasks))
        self.assertEqual(sorted(parse_vtodo(i.data).uid for i in items),
                         sorted(str(i.uid) for i in split_file(text)))

    @inlineCallbacks
    def test_items_list_and_delete(self) -> Gen:
        contacts = self.ids["contacts"]
        yield run(groupware.import_items(self.backend, "alice", contacts, read(VCF)))
        items = yield run(groupware.all_items(self.backend, "alice", contacts))
        gone = yield run(groupware.delete_item(self.backend, "alice", contacts, items[0].item_id))
        self.assertEqual(gone.item_id, items[0].item_id)
        gone = yield run(groupware.delete_item(self.backend, "alice", contacts, MARIA))
        self.assertEqual(gone.uid, MARIA)
        left = yield run(groupware.list_items(self.backend, "alice", contacts))
        self.assertEqual(len(left), 2)
        self.assertNotIn(MARIA, [i.uid for i in left])
        yield self.assert_admin_error(
            groupware.delete_item(self.backend, "alice", contacts, MARIA),
            f"no item with id or UID {MARIA}")
        text, count = yield run(groupware.export_items(self.backend, "alice", contacts))
        self.assertEqual(count, 2)
        self.assertEqual(text.count("BEGIN:VCARD"), 2)
        empty, count = yield run(groupware.export_items(
            self.backend, "alice", self.ids["notes"]))
        self.assertEqual(count, 0)
        self.assertNotIn("BEGIN:VJOURNAL", empty)


class MemoryGroupwareActionTests(GroupwareActionsMixin, TestCase):
    """The actions on the memory fake."""

    def make_backend(self) -> "Deferred[Any]":
        from twisted.internet.defer import succeed

        return succeed(MemoryGroupwareBackend(Clock()))


class SQLiteGroupwareActionTests(GroupwareActionsMixin, TestCase):
    """The actions on the SQL backend over SQLite."""

    @inlineCallbacks
    def make_backend(self) -> Generator[Any, Any, Any]:
        from twisted.internet import reactor

        directory = tempfile.mkdtemp(prefix="easyncd-admin-gw-")
        self.addCleanup(shutil.rmtree, directory, True)
        store = SQLiteStateStore(os.path.join(directory, "state.db"), reactor)
        self.addCleanup(store.close)
        yield store.migrate()
        return SQLGroupwareBackend(store, Clock())


class FileTests(TestCase):
    """Reading import files and writing exports."""

    def test_decode(self) -> None:
        self.assertEqual(groupware.decode_file("\ufeffFN:Jürgen".encode("utf-8")), "FN:Jürgen")
        self.assertEqual(groupware.decode_file("FN:Jürgen".encode("cp1252")), "FN:Jürgen")

    def test_read_and_write(self) -> None:
        path = self.mktemp()
        groupware.write_export_file(path, "BEGIN:VCARD\r\nEND:VCARD\r\n")
        with open(path, "rb") as handle:
            self.assertEqual(handle.read(), b"BEGIN:VCARD\r\nEND:VCARD\r\n")
        self.assertEqual(groupware.read_import_file(path, io.StringIO()),
                         "BEGIN:VCARD\r\nEND:VCARD\r\n")
        self.assertEqual(groupware.read_import_file("-", io.StringIO("FN:x")), "FN:x")
        self.assertRaises(AdminError, groupware.read_import_file, path + ".missing",
                          io.StringIO())
        self.assertRaises(AdminError, groupware.write_export_file,
                          os.path.join(path + ".missing", "x.vcf"), "")


class GroupwareCommandLineTests(TestCase):
    """``python -m easyncd.admin.cli collection|item ...`` on a temporary SQLite."""

    def setUp(self) -> None:
        self.base = os.path.abspath(self.mktemp())
        data_dir = os.path.join(self.base, "data")
        os.makedirs(data_dir)
        self.config = os.path.join(self.base, "easyncd.conf")
        with open(self.config, "w", encoding="utf-8") as handle:
            handle.write(f"[server]\ndata_dir = {data_dir}\n"
                         f"[store]\ndatabase = sqlite:///{data_dir}/state.db\n")
        self.env = {key: value for key, value in os.environ.items()
                    if key not in ("STATE_DIRECTORY", "PYTHONPATH")}
        self.env["PYTHONPATH"] = ROOT
        self.env["HOME"] = self.base

    def admin(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "easyncd.admin.cli", "-f", self.config, *args],
            input=stdin, capture_output=True, text=True, env=self.env, cwd=self.base,
            timeout=60,
        )

    def ok(self, *args: str, stdin: str = "") -> str:
        result = self.admin(*args, stdin=stdin)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        return result.stdout

    def fails(self, message: str, *args: str, code: int = 1) -> None:
        result = self.admin(*args)
        self.assertEqual(result.returncode, code, result.stdout + result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        if code == 1:
            self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertIn(message, result.stderr)

    def collections(self) -> dict[str, dict[str, Any]]:
        found = json.loads(self.ok("collection", "list", "alice", "--json"))
        return {c["name"]: c for c in found}

    def items(self, collection: str) -> list[dict[str, Any]]:
        return list(json.loads(self.ok("item", "list", "alice", collection, "--json")))

    def test_collections(self) -> None:
        table = self.ok("collection", "list", "alice").splitlines()
        self.assertEqual(table[0].split(), ["ID", "KIND", "NAME", "DEFAULT", "SYNCED"])
        self.assertEqual(sorted(line.split()[1] for line in table[1:]),
                         ["calendar", "contacts", "notes", "tasks"])
        found = self.collections()
        self.assertEqual(set(found), {"Calendar", "Contacts", "Tasks", "Notes"})
        self.assertTrue(all(c["default"] and c["synced"] for c in found.values()))
        self.assertEqual(set(found["Tasks"]), {"id", "kind", "name", "default", "synced"})

        new_id = self.ok("collection", "create", "alice", "tasks", "Garden").strip()
        self.assertTrue(new_id.isdigit(), new_id)
        self.ok("collection", "rename", "alice", new_id, "Garden and house")
        self.ok("collection", "sync", "alice", new_id, "off")
        entry = self.collections()["Garden and house"]
        self.assertEqual(entry, {"id": new_id, "kind": "tasks", "name": "Garden and house",
                                 "default": False, "synced": False})
        self.fails("exists", "collection", "create", "alice", "tasks", "Garden and house")
        self.fails("always syncs", "collection", "sync", "alice", found["Tasks"]["id"], "off")
        self.fails("cannot be deleted", "collection", "delete", "alice", found["Contacts"]["id"])
        self.ok("collection", "delete", "alice", new_id)
        self.assertNotIn("Garden and house", self.collections())
        self.fails(f"no such collection: {new_id}", "collection", "delete", "alice", new_id)
        self.fails("invalid choice", "collection", "create", "alice", "mail", "X", code=2)
        self.fails("invalid choice", "collection", "sync", "alice", new_id, "maybe", code=2)

    def test_import_export_contacts(self) -> None:
        contacts = self.collections()["Contacts"]["id"]
        calendar = self.collections()["Calendar"]["id"]
        out = self.ok("collection", "import", "alice", contacts, VCF)
        self.assertEqual(out.strip(), "imported 4 (added 4, updated 0)")
        listed = self.items(contacts)
        self.assertEqual(sorted(i["summary"] for i in listed),
                         ["Hans Meier", "Johnny Appleseed", "Jürgen Schröder", "Maria Garcia"])
        self.assertTrue(all(i["uid"] for i in listed))

        # Export to a file, import into a new address book: the same contacts.
        exported = os.path.join(self.base, "backup.vcf")
        self.ok("collection", "export", "alice", contacts, exported)
        copy = self.ok("collection", "create", "alice", "contacts", "Copy").strip()
        self.assertEqual(self.ok("collection", "import", "alice", copy, exported).strip(),
                         "imported 4 (added 4, updated 0)")
        self.assertEqual(self.contacts_by_uid(copy), self.contacts_by_uid(contacts))
        # Through stdin and stdout too; a known UID is replaced, not added.
        text = self.ok("collection", "export", "alice", contacts)
        self.assertEqual(text.count("BEGIN:VCARD"), 4)
        changed = text.replace("FN:Maria Garcia", "FN:Maria Garcia-Lopez")
        self.assertEqual(self.ok("collection", "import", "alice", contacts, "-",
                                 stdin=changed).strip(),
                         "imported 4 (added 0, updated 4)")
        self.assertIn("Maria Garcia-Lopez", [i["summary"] for i in self.items(contacts)])
        self.assertEqual(len(self.items(contacts)), 4)

        # Wrong kind: refused, nothing imported.
        self.fails("holds calendar events (VEVENT), but the collection holds contacts",
                   "collection", "import", "alice", contacts, ICS)
        self.fails("holds contacts (vCards), but the collection holds calendar events",
                   "collection", "import", "alice", calendar, VCF)
        self.assertEqual(self.items(calendar), [])
        self.assertEqual(len(self.items(contacts)), 4)
        self.fails("cannot read", "collection", "import", "alice", contacts,
                   os.path.join(self.base, "missing.vcf"))

        # item delete by id and by UID.
        listed = self.items(contacts)
        self.ok("item", "delete", "alice", contacts, listed[0]["id"])
        self.ok("item", "delete", "alice", contacts, MARIA)
        left = self.items(contacts)
        self.assertEqual(len(left), 2)
        self.assertNotIn(MARIA, [i["uid"] for i in left])
        self.assertNotIn(listed[0]["id"], [i["id"] for i in left])
        self.fails(f"no item with id or UID {MARIA}", "item", "delete", "alice", contacts, MARIA)
        table = self.ok("item", "list", "alice", contacts).splitlines()
        self.assertEqual(table[0].split(), ["ID", "UID", "SUMMARY"])
        self.assertEqual(len(table), 3)

    def contacts_by_uid(self, collection: str) -> dict[str | None, Any]:
        text = self.ok("collection", "export", "alice", collection)
        return {item.uid: parse_vcard(item.text) for item in split_file(text)}

    def test_import_export_calendar(self) -> None:
        calendar = self.collections()["Calendar"]["id"]
        tasks = self.collections()["Tasks"]["id"]
        self.assertEqual(self.ok("collection", "import", "alice", calendar, ICS).strip(),
                         "imported 4 (added 4, updated 0)")
        listed = self.items(calendar)
        self.assertIn({"id": listed[0]["id"], "uid": CHOIR,
                       "summary": "Choir rehearsal (2024-03-05 19:30 Europe/Berlin)"}, listed)
        exported = os.path.join(self.base, "backup.ics")
        self.ok("collection", "export", "alice", calendar, exported)
        text = read(exported)
        self.assertEqual(text.count("BEGIN:VCALENDAR"), 1)
        self.assertEqual(text.count("BEGIN:VEVENT"), 5)
        self.assertEqual(text.count("TZID:Europe/Berlin"), 1)
        before = {i.uid: parse_ics(i.text) for i in split_file(text)}
        self.assertEqual(len(before[CHOIR].exceptions), 2)

        # Tasks refuse it; a new calendar takes the same events.
        self.fails("holds calendar events (VEVENT), but the collection holds tasks (VTODO)",
                   "collection", "import", "alice", tasks, exported)
        self.assertEqual(self.items(tasks), [])
        copy = self.ok("collection", "create", "alice", "calendar", "Copy").strip()
        self.ok("collection", "import", "alice", copy, exported)
        again = self.ok("collection", "export", "alice", copy)
        self.assertEqual({i.uid: parse_ics(i.text) for i in split_file(again)}, before)
        # Re-importing the export into the original replaces every event.
        self.assertEqual(self.ok("collection", "import", "alice", calendar, exported).strip(),
                         "imported 4 (added 0, updated 4)")
        self.assertEqual(len(self.items(calendar)), 4)
        self.ok("item", "delete", "alice", calendar, CHOIR)
        self.assertNotIn(CHOIR, [i["uid"] for i in self.items(calendar)])
