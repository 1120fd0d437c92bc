"""Follow-up flags on mail: what the device sets is kept in the state store
(``mail_flags``) and comes back with the message; ``\\Flagged`` follows the
flag's status (MS-ASEMAIL 2.2.2.34, 3.2.5.4.2)."""
from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from easyncd.protocol.context import CommandResponse
from easyncd.wbxml import Element, decode, encode
from tests.protocol.groupware_helpers import AS, change_command, delete_command, fetch_command
from tests.protocol.groupware_helpers import sync_request as groupware_sync_request
from tests.protocol.helpers import make_context, result_of
from tests.protocol.test_mailsync import mail_collection
from tests.protocol.test_mailsync_support import MailHarness

E = "Email:"
T = "Tasks:"

DUE = {
    T + "Subject": "Call back",
    E + "Status": "2",
    E + "FlagType": "Flag for follow up",
    T + "StartDate": "2023-11-15T00:00:00.000Z",
    T + "DueDate": "2023-11-17T00:00:00.000Z",
    T + "UtcStartDate": "2023-11-14T23:00:00.000Z",
    T + "UtcDueDate": "2023-11-16T23:00:00.000Z",
    T + "ReminderSet": "1",
    T + "ReminderTime": "2023-11-16T08:00:00.000Z",
    T + "OrdinalDate": "2023-11-14T22:00:00.000Z",
    T + "SubOrdinalDate": "5555555",
}


def flag_change(server_id: str, children: dict[str, str] | None, **extra: str) -> Element:
    """Commands/Change with an Email:Flag (None: an empty Flag)."""
    element = Element(AS + "Change")
    element.add(AS + "ServerId", server_id)
    app = element.add(AS + "ApplicationData")
    for name, value in extra.items():
        app.add(E + name, value)
    flag = app.add(E + "Flag")
    for tag, value in (children or {}).items():
        flag.add(tag, value)
    return element


def flags_in(response: CommandResponse) -> dict[str, dict[str, str]]:
    """ServerId -> the Email:Flag children of every command and Fetch response."""
    assert response.body is not None
    body = decode(encode(response.body))
    out: dict[str, dict[str, str]] = {}
    for collection in body.findall(AS + "Collections/" + AS + "Collection"):
        for block in (AS + "Commands", AS + "Responses"):
            holder = collection.find(block)
            for element in holder.children if holder is not None else []:
                app = element.find(AS + "ApplicationData")
                flag = app.find(E + "Flag") if app is not None else None
                if flag is not None:
                    out[element.findtext(AS + "ServerId") or ""] = {
                        c.tag: str(c.text or "") for c in flag.children}
    return out


class MailFlagTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = MailHarness()
        self.inbox = self.h.folders["INBOX"]
        self.uids = [self.h.mail.deliver(fixture="plain") for _ in range(2)]
        self.key = self._initial()

    def _initial(self) -> str:
        key = self._answer(self.h.sync(groupware_sync_request(
            mail_collection(self.inbox, "0"))))["SyncKey"]
        response = self.h.sync(groupware_sync_request(mail_collection(self.inbox, key)))
        return self._answer(response)["SyncKey"]

    @staticmethod
    def _answer(response: CommandResponse) -> dict[str, str]:
        assert response.body is not None
        collection = decode(encode(response.body)).find(
            AS + "Collections/" + AS + "Collection")
        assert collection is not None
        return {c.name: str(c.text or "") for c in collection.children}

    def sync(self, *commands: Element, version: str = "16.1") -> CommandResponse:
        response = self.h.sync(groupware_sync_request(mail_collection(
            self.inbox, self.key, commands=commands)), version)
        if response.body is not None:
            self.key = self._answer(response)["SyncKey"]
        return response

    def stored(self, uid: int) -> Any:
        found = result_of(self.h.store.get_mail_flags(self.h.user, "INBOX", 1, [uid]))
        return found.get(uid)

    def imap_flags(self, uid: int) -> set[str]:
        return set(self.h.mail.boxes["INBOX"].messages[uid].flags)

    def fetched_flag(self, uid: int, version: str = "16.1") -> dict[str, str]:
        sid = self.h.sid(uid)
        return flags_in(self.sync(fetch_command(sid), version=version))[sid]

    # -- the device's flag ---------------------------------------------------------

    def test_flag_with_dates_is_kept_and_sent_back(self) -> None:
        a = self.uids[0]
        self.sync(flag_change(self.h.sid(a), DUE))
        self.assertIn("\\Flagged", self.imap_flags(a))
        self.assertEqual(DUE, self.stored(a))
        self.assertEqual(DUE, self.fetched_flag(a))
        # In MS-ASEMAIL's order.
        sid = self.h.sid(a)
        response = self.sync(fetch_command(sid))
        body = decode(encode(response.body))  # type: ignore[arg-type]
        flag = body.find(AS + "Collections/" + AS + "Collection/" + AS + "Responses/"
                         + AS + "Fetch/" + AS + "ApplicationData/" + E + "Flag")
        assert flag is not None
        self.assertEqual(list(DUE), [c.tag for c in flag.children])

    def test_no_echo_after_the_device_flags(self) -> None:
        self.sync(flag_change(self.h.sid(self.uids[0]), DUE))
        self.assertIsNone(self.sync().body)

    def test_complete_clears_flagged_and_keeps_the_dates(self) -> None:
        a = self.uids[0]
        self.sync(flag_change(self.h.sid(a), DUE))
        done = {E + "Status": "1", E + "CompleteTime": "2023-11-16T10:00:00.000Z",
                T + "DateCompleted": "2023-11-16T10:00:00.000Z"}
        self.sync(flag_change(self.h.sid(a), done))
        self.assertNotIn("\\Flagged", self.imap_flags(a))
        stored = self.stored(a)
        self.assertEqual("1", stored[E + "Status"])
        self.assertEqual(done[E + "CompleteTime"], stored[E + "CompleteTime"])
        self.assertEqual(done[T + "DateCompleted"], stored[T + "DateCompleted"])
        self.assertEqual(DUE[T + "DueDate"], stored[T + "DueDate"])
        self.assertEqual(DUE[T + "Subject"], stored[T + "Subject"])
        sent = self.fetched_flag(a)
        self.assertEqual("1", sent[E + "Status"])
        self.assertEqual(done[E + "CompleteTime"], sent[E + "CompleteTime"])
        self.assertEqual(DUE[T + "StartDate"], sent[T + "StartDate"])

    def test_clear_forgets_the_data(self) -> None:
        a, b = self.uids
        self.sync(flag_change(self.h.sid(a), DUE), flag_change(self.h.sid(b), DUE))
        self.sync(flag_change(self.h.sid(a), {E + "Status": "0"}),
                  flag_change(self.h.sid(b), None))
        for uid in (a, b):
            self.assertNotIn("\\Flagged", self.imap_flags(uid))
            self.assertIsNone(self.stored(uid))
            self.assertEqual({}, self.fetched_flag(uid))

    def test_invalid_status_is_status_6_and_changes_nothing(self) -> None:
        a = self.uids[0]
        before = self.h.mail.count("set_flags")
        response = self.sync(flag_change(self.h.sid(a), {E + "Status": "3"}, Read="1"))
        body = decode(encode(response.body))  # type: ignore[arg-type]
        change = body.find(AS + "Collections/" + AS + "Collection/" + AS + "Responses/"
                           + AS + "Change")
        assert change is not None
        self.assertEqual(("6", self.h.sid(a)),
                         (change.findtext(AS + "Status"), change.findtext(AS + "ServerId")))
        self.assertEqual(before, self.h.mail.count("set_flags"))
        self.assertIsNone(self.stored(a))

    def test_delete_forgets_the_data(self) -> None:
        a = self.uids[0]
        self.sync(flag_change(self.h.sid(a), DUE))
        self.sync(delete_command(self.h.sid(a)))
        self.assertIsNone(self.stored(a))

    # -- other mail programs -----------------------------------------------------------

    def test_flagged_elsewhere_without_data_is_a_plain_flag(self) -> None:
        a = self.uids[0]
        self.h.mail.store("INBOX", a, {"\\Flagged"})
        response = self.sync()
        self.assertEqual({self.h.sid(a): {E + "Status": "2", E + "FlagType": "Flag for follow up"}},
                         flags_in(response))

    def test_server_change_carries_the_stored_dates(self) -> None:
        a = self.uids[0]
        self.sync(flag_change(self.h.sid(a), DUE))
        self.h.mail.store("INBOX", a, {"\\Flagged", "\\Seen"})
        self.assertEqual({self.h.sid(a): DUE}, flags_in(self.sync()))

    def test_flag_cleared_elsewhere_is_not_resurrected(self) -> None:
        a = self.uids[0]
        self.sync(flag_change(self.h.sid(a), DUE))
        self.h.mail.store("INBOX", a, set())
        self.assertEqual({self.h.sid(a): {}}, flags_in(self.sync()))

    def test_reflagged_after_completion_is_active(self) -> None:
        a = self.uids[0]
        self.sync(flag_change(self.h.sid(a), {E + "Status": "1",
                                              E + "CompleteTime": "2023-11-16T10:00:00.000Z"}))
        self.h.mail.store("INBOX", a, {"\\Flagged"})
        self.assertEqual({self.h.sid(a): {E + "Status": "2", E + "FlagType": "Flag for follow up"}},
                         flags_in(self.sync()))

    def test_flag_data_is_shared_by_the_users_devices(self) -> None:
        a = self.uids[0]
        self.sync(flag_change(self.h.sid(a), DUE))
        # A second device: its first Sync sends the message with the dates.
        result_of(self.h.store.register_account("dev2", self.h.user, "Other", "o/1", 1.0))
        h = self.h

        def ctx(command: str = "Sync", version: str = "16.1") -> Any:
            context = make_context(h.store, command, version, h.user, "dev2", clock=h.clock,
                                   services={"mail": h.mail, "push": h.hub,
                                             "groupware": object()})
            context.password = "secret"
            return context

        h.ctx = ctx  # type: ignore[method-assign]
        first = h.sync(groupware_sync_request(mail_collection(self.inbox, "0")))
        key = self._answer(first)["SyncKey"]
        response = h.sync(groupware_sync_request(mail_collection(self.inbox, key)))
        self.assertEqual(DUE, flags_in(response)[h.sid(a)])

    def test_2_5_has_no_flag(self) -> None:
        a = self.uids[0]
        self.sync(flag_change(self.h.sid(a), DUE))
        self.h.mail.store("INBOX", a, {"\\Flagged", "\\Seen"})
        response = self.sync(version="2.5")
        self.assertEqual({}, flags_in(response))

    # -- UIDVALIDITY -------------------------------------------------------------------

    def test_uidvalidity_change_drops_the_folders_flags(self) -> None:
        a = self.uids[0]
        self.sync(flag_change(self.h.sid(a), DUE))
        result_of(self.h.store.set_mail_flags(self.h.user, "Drafts", 1, {1: DUE}))
        self.h.mail.boxes["INBOX"].uidvalidity = 2
        response = self.sync()
        self.assertEqual("3", self._answer(response)["Status"])
        self.assertIsNone(self.stored(a))
        self.assertEqual({1: DUE}, result_of(self.h.store.get_mail_flags(
            self.h.user, "Drafts", 1, [1])))
