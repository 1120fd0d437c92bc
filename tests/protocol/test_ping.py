"""Ping: parameters and their cache, limits, pending changes, waiting, cancellation.

The waiting tests run against a small local push hub (:class:`FakePushHub`)
and, in :mod:`tests.protocol.test_ping` subclasses further down, against the
real one when it is importable; the groupware side is a revision table
(:class:`FakeGroupware`) or the real memory backend.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from easyncd.protocol.commands.ping import (
    MAX_FOLDERS,
    MAX_HEARTBEAT,
    MIN_HEARTBEAT,
    PING_STATE,
    PingCommand,
    PingFolder,
    PingParameters,
    PingSyntaxError,
    decode_parameters,
    encode_parameters,
    device_behind,
    parse_ping,
)
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.dispatch import dispatch
from easyncd.protocol.sync.state import CollectionState
from easyncd.push.hub import PushHub
from easyncd.push.interfaces import IPushHub
from easyncd.store.interfaces import WIPE_DEVICE
from easyncd.testing.memory_groupware import MemoryGroupwareBackend
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element, decode, encode
from tests.protocol.helpers import make_clock, make_context, provision_device, result_of

NS = "Ping:"
USER = "alice"
DEVICE = "dev1"
VCARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Someone\r\nEND:VCARD\r\n"
VCALENDAR = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wbxml"


# -- local fakes ------------------------------------------------------------------


class _Waiter:
    def __init__(self, user: str, topics: frozenset[str], timeout: float) -> None:
        self.user = user
        self.topics = topics
        self.timeout = timeout
        self.deferred: Deferred[frozenset[str]] = Deferred(self._cancel)
        self.call: Any = None
        self.hub: FakePushHub | None = None
        self.known: dict[str, int] | None = None

    def _cancel(self, _: Deferred[frozenset[str]]) -> None:
        assert self.hub is not None
        self.hub._remove(self)


@implementer(IPushHub)
class FakePushHub:
    """A minimal IPushHub on a Clock: waiters with a timeout, notify wakes them."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.waiters: list[_Waiter] = []

    def notify(self, user: str, topics: Iterable[str]) -> None:
        changed = frozenset(topics)
        for waiter in list(self.waiters):
            hit = waiter.topics & changed
            if waiter.user == user and hit:
                self._remove(waiter)
                waiter.deferred.callback(hit)

    def wait(self, user: str, topics: Iterable[str], timeout: float,
             known: Mapping[str, int] | None = None) -> Deferred[frozenset[str]]:
        waiter = _Waiter(user, frozenset(topics), timeout)
        waiter.known = dict(known) if known is not None else None
        waiter.hub = self
        waiter.call = self.clock.callLater(timeout, self._expire, waiter)
        self.waiters.append(waiter)
        return waiter.deferred

    def _expire(self, waiter: _Waiter) -> None:
        waiter.call = None
        self._remove(waiter)
        waiter.deferred.callback(frozenset())

    def _remove(self, waiter: _Waiter) -> None:
        if waiter in self.waiters:
            self.waiters.remove(waiter)
        if waiter.call is not None and waiter.call.active():
            waiter.call.cancel()
        waiter.call = None


class FakeGroupware:
    """Only what Ping uses of IGroupwareBackend: ``watch_revisions``."""

    def __init__(self) -> None:
        self.revisions: dict[tuple[str, str], int] = {}
        self.next_id = 0

    def watch_revisions(self, user: str, collection_ids: Iterable[str]) -> Deferred[dict[str, int]]:
        return succeed({cid: self.revisions[(user, cid)]
                        for cid in collection_ids if (user, cid) in self.revisions})


# -- request bodies -------------------------------------------------------------------


def ping_body(heartbeat: int | str | None = None,
              folders: Iterable[tuple[str, str]] | None = None) -> Element:
    root = Element(NS + "Ping")
    if heartbeat is not None:
        root.add(NS + "HeartbeatInterval", str(heartbeat))
    if folders is not None:
        container = root.add(NS + "Folders")
        for server_id, cls in folders:
            folder = container.add(NS + "Folder")
            folder.add(NS + "Id", server_id)
            folder.add(NS + "Class", cls)
    return root


def status_of(response: CommandResponse) -> str | None:
    assert response.body is not None
    return response.body.findtext(NS + "Status")


def text_of(response: CommandResponse, tag: str) -> str | None:
    assert response.body is not None
    return response.body.findtext(NS + tag)


def changed_ids(response: CommandResponse) -> list[str]:
    assert response.body is not None
    return [e.text if isinstance(e.text, str) else ""
            for e in response.body.findall(NS + "Folders/" + NS + "Folder")]


# -- parsing ------------------------------------------------------------------------------


class ParseTests(SynchronousTestCase):
    def test_empty(self) -> None:
        self.assertEqual(parse_ping(None), PingParameters())
        self.assertEqual(parse_ping(Element(NS + "Ping")), PingParameters())

    def test_full(self) -> None:
        parsed = parse_ping(ping_body(480, [("1", "Email"), ("3", "Calendar"), ("1", "Email")]))
        self.assertEqual(parsed, PingParameters(
            480, (PingFolder("1", "Email"), PingFolder("3", "Calendar"))))

    def test_empty_folders_is_left_out(self) -> None:
        self.assertEqual(parse_ping(ping_body(300, [])), PingParameters(300, None))

    def test_syntax_errors(self) -> None:
        self.assertRaises(PingSyntaxError, parse_ping, Element("AirSync:Sync"))
        self.assertRaises(PingSyntaxError, parse_ping, ping_body("soon"))
        self.assertRaises(PingSyntaxError, parse_ping, ping_body("-5"))
        no_id = ping_body(300)
        no_id.add(NS + "Folders").add(NS + "Folder").add(NS + "Class", "Contacts")
        self.assertRaises(PingSyntaxError, parse_ping, no_id)

    def test_libwbxml_fixture(self) -> None:
        with open(FIXTURES / "ping-request.wbxml", "rb") as f:
            parsed = parse_ping(decode(f.read()))
        self.assertEqual(parsed, PingParameters(
            480, (PingFolder("1", "Email"), PingFolder("3", "Calendar"))))

    def test_parameter_cache_text(self) -> None:
        params = PingParameters(600, (PingFolder("7", "Contacts"), PingFolder("9", None)))
        self.assertEqual(decode_parameters(encode_parameters(params)), params)
        self.assertEqual(decode_parameters(None), PingParameters())
        self.assertEqual(decode_parameters("not json"), PingParameters())
        self.assertEqual(decode_parameters('{"heartbeat": true, "folders": 3}'),
                         PingParameters())

    def test_device_behind(self) -> None:
        at = CollectionState(rev=12).to_text()
        self.assertFalse(device_behind(at, 12))
        self.assertTrue(device_behind(at, 13))
        # Never synced, or not a state of ours: not pending.
        self.assertFalse(device_behind(None, 13))
        self.assertFalse(device_behind("garbage", 13))
        self.assertFalse(device_behind(json.dumps({"revision": 1}), 13))
        # A MoreAvailable remainder is pending even at the current revision.
        left = CollectionState(rev=12, pending=(("add", "7"),)).to_text()
        self.assertTrue(device_behind(left, 12))
        # The device's own changes do not count; anybody else's do.
        own = CollectionState(rev=12, own={"5": 13, "6": 14}).to_text()
        self.assertFalse(device_behind(own, 14))
        self.assertTrue(device_behind(own, 15))
        deleted = CollectionState(rev=12, own={"5": 13, "6": -1}).to_text()
        self.assertTrue(device_behind(deleted, 14))


# -- the command ----------------------------------------------------------------------------


class PingTestsMixin:
    """The command's behaviour; subclasses choose the hub and the backend."""

    # Provided by SynchronousTestCase.
    assertEqual: Any
    assertIsNone: Any
    assertTrue: Any
    assertFalse: Any
    failureResultOf: Any
    successResultOf: Any
    assertNoResult: Any
    patch: Any

    def make_hub(self, clock: Clock) -> Any:
        raise NotImplementedError

    def make_groupware(self) -> Any:
        raise NotImplementedError

    def new_collection(self, kind: str) -> str:
        """Create a collection in the backend; return its id."""
        raise NotImplementedError

    def change(self, collection_id: str) -> int:
        """Change something in a collection; return its new revision."""
        raise NotImplementedError

    def drop_collection(self, collection_id: str) -> None:
        raise NotImplementedError

    def waiter_count(self) -> int | None:
        """How many waiters the hub holds, if it can tell."""
        return None

    def setUp(self) -> None:
        self.store: Any = MemoryStateStore()
        self.clock = make_clock()
        self.hub = self.make_hub(self.clock)
        self.groupware = self.make_groupware()
        self.contacts_cid = self.new_collection("contacts")
        self.calendar_cid = self.new_collection("calendar")
        self.contacts = self.add_folder("Contacts", 9, "groupware:" + self.contacts_cid)
        self.calendar = self.add_folder("Calendar", 8, "groupware:" + self.calendar_cid)

    # helpers

    def add_folder(self, name: str, folder_type: int, backend_id: str) -> str:
        folder = result_of(self.store.add_folder(USER, "0", name, folder_type, backend_id))
        return folder.server_id  # type: ignore[no-any-return]

    def ctx(self, version: str = "16.1") -> CommandContext:
        return make_context(self.store, "Ping", version=version, clock=self.clock,
                            services={"push": self.hub, "groupware": self.groupware})

    def start(self, body: Element | None, version: str = "16.1") -> Deferred[CommandResponse]:
        return Deferred.fromCoroutine(PingCommand().run(self.ctx(version), body))

    def ping_now(self, body: Element | None, version: str = "16.1") -> CommandResponse:
        """A Ping that must answer without waiting."""
        return self.successResultOf(self.start(body, version))  # type: ignore[no-any-return]

    def both(self, heartbeat: int | None = 120) -> Element:
        return ping_body(heartbeat, [(self.contacts, "Contacts"), (self.calendar, "Calendar")])

    def synced(self, server_id: str, revision: int) -> None:
        """Record that the device synced folder ``server_id`` up to ``revision``."""
        result_of(self.store.register_account(DEVICE, USER, "TestDevice", None, 0.0))
        result_of(self.store.advance_sync_state(
            DEVICE, USER, server_id, None, 3, CollectionState(rev=revision).to_text()))

    # limits and parameters

    def test_heartbeat_too_short(self) -> None:
        response = self.ping_now(self.both(MIN_HEARTBEAT - 1))
        self.assertEqual(status_of(response), "5")
        self.assertEqual(text_of(response, "HeartbeatInterval"), str(MIN_HEARTBEAT))

    def test_heartbeat_too_long(self) -> None:
        response = self.ping_now(self.both(MAX_HEARTBEAT + 1))
        self.assertEqual(status_of(response), "5")
        self.assertEqual(text_of(response, "HeartbeatInterval"), str(MAX_HEARTBEAT))
        self.assertEqual(self.waiter_count() or 0, 0)

    def test_heartbeat_limits_are_inclusive(self) -> None:
        for heartbeat in (MIN_HEARTBEAT, MAX_HEARTBEAT):
            d = self.start(self.both(heartbeat))
            self.assertNoResult(d)
            self.clock.advance(heartbeat)
            self.assertEqual(status_of(self.successResultOf(d)), "1")

    def test_too_many_folders(self) -> None:
        folders = [(str(n), "Contacts") for n in range(MAX_FOLDERS + 1)]
        response = self.ping_now(ping_body(300, folders))
        self.assertEqual(status_of(response), "6")
        self.assertEqual(text_of(response, "MaxFolders"), str(MAX_FOLDERS))

    def test_syntax_error(self) -> None:
        self.assertEqual(status_of(self.ping_now(ping_body("x", []))), "4")

    def test_missing_parameters_without_cache(self) -> None:
        self.assertEqual(status_of(self.ping_now(None)), "3")
        self.assertEqual(status_of(self.ping_now(Element(NS + "Ping"))), "3")
        self.assertEqual(status_of(self.ping_now(ping_body(300))), "3")
        self.assertEqual(status_of(self.ping_now(
            ping_body(None, [(self.contacts, "Contacts")]))), "3")
        self.assertEqual(self.waiter_count() or 0, 0)

    def test_empty_ping_reuses_cached_parameters(self) -> None:
        first = self.start(self.both(300))
        self.clock.advance(300)
        self.assertEqual(status_of(self.successResultOf(first)), "1")
        state = result_of(self.store.get_sync_state(DEVICE, USER, PING_STATE))
        self.assertEqual(decode_parameters(state.state).heartbeat, 300)

        again = self.start(None)
        self.assertNoResult(again)
        self.clock.advance(299)
        self.assertNoResult(again)
        self.hub.notify(USER, {"groupware:" + self.calendar_cid})
        response = self.successResultOf(again)
        self.assertEqual(status_of(response), "2")
        self.assertEqual(changed_ids(response), [self.calendar])

    def test_partial_requests_merge_with_cache(self) -> None:
        d = self.start(self.both(300))
        self.clock.advance(300)
        self.successResultOf(d)
        # Only folders: the cached heartbeat (300) stays.
        d = self.start(ping_body(None, [(self.contacts, "Contacts")]))
        self.clock.advance(299)
        self.hub.notify(USER, {"groupware:" + self.calendar_cid})  # not watched any more
        self.assertNoResult(d)
        self.clock.advance(1)
        self.assertEqual(status_of(self.successResultOf(d)), "1")
        # Only a heartbeat: the cached folders (contacts only) stay.
        d = self.start(ping_body(900))
        self.clock.advance(899)
        self.assertNoResult(d)
        self.hub.notify(USER, {"groupware:" + self.contacts_cid})
        self.assertEqual(changed_ids(self.successResultOf(d)), [self.contacts])
        params = decode_parameters(
            result_of(self.store.get_sync_state(DEVICE, USER, PING_STATE)).state)
        self.assertEqual(params, PingParameters(900, (PingFolder(self.contacts, "Contacts"),)))

    def test_unchanged_parameters_are_not_rewritten(self) -> None:
        writes: list[str] = []
        original = self.store.advance_sync_state

        def counting(*args: Any) -> Any:
            writes.append(args[2])
            return original(*args)

        self.patch(self.store, "advance_sync_state", counting)
        for body in (self.both(300), None, self.both(300)):
            d = self.start(body)
            self.clock.advance(300)
            self.successResultOf(d)
        self.assertEqual(writes, [PING_STATE])

    def test_invalid_parameters_are_not_cached(self) -> None:
        self.ping_now(self.both(10))
        self.assertIsNone(result_of(self.store.get_sync_state(DEVICE, USER, PING_STATE)))

    # folders

    def test_unknown_folder_needs_hierarchy_sync(self) -> None:
        response = self.ping_now(ping_body(300, [(self.contacts, "Contacts"), ("999", "Tasks")]))
        self.assertEqual(status_of(response), "7")
        self.assertEqual(self.waiter_count() or 0, 0)

    def test_deleted_folder_needs_hierarchy_sync(self) -> None:
        result_of(self.store.delete_folder(USER, self.calendar))
        self.assertEqual(status_of(self.ping_now(self.both())), "7")

    def test_collection_gone_from_backend_needs_hierarchy_sync(self) -> None:
        self.drop_collection(self.calendar_cid)
        self.assertEqual(status_of(self.ping_now(self.both())), "7")
        self.assertEqual(self.waiter_count() or 0, 0)

    def test_other_backend_folder_uses_backend_id_as_topic(self) -> None:
        inbox = self.add_folder("Inbox", 2, "imap:INBOX")
        d = self.start(ping_body(300, [(inbox, "Email"), (self.contacts, "Contacts")]))
        self.assertNoResult(d)
        self.hub.notify(USER, {"imap:INBOX"})
        response = self.successResultOf(d)
        self.assertEqual(status_of(response), "2")
        self.assertEqual(changed_ids(response), [inbox])

    # waiting

    def test_timeout_gives_status_1(self) -> None:
        d = self.start(self.both(120))
        self.clock.advance(119)
        self.assertNoResult(d)
        self.clock.advance(1)
        response = self.successResultOf(d)
        self.assertEqual(status_of(response), "1")
        self.assertEqual(changed_ids(response), [])
        self.assertEqual(self.waiter_count() or 0, 0)

    def test_notify_wakes_with_changed_folders_only(self) -> None:
        tasks_cid = self.new_collection("tasks")
        tasks = self.add_folder("Tasks", 7, "groupware:" + tasks_cid)
        d = self.start(ping_body(600, [(self.contacts, "Contacts"), (tasks, "Tasks"),
                                       (self.calendar, "Calendar")]))
        self.clock.advance(10)
        self.hub.notify("bob", {"groupware:" + self.contacts_cid})
        self.hub.notify(USER, {"groupware:something-else"})
        self.assertNoResult(d)
        self.hub.notify(USER, {"groupware:" + tasks_cid, "groupware:" + self.calendar_cid})
        response = self.successResultOf(d)
        self.assertEqual(status_of(response), "2")
        self.assertEqual(changed_ids(response), [tasks, self.calendar])
        self.assertEqual(self.waiter_count() or 0, 0)

    def test_pending_change_answers_at_once(self) -> None:
        revision = self.change(self.contacts_cid)
        self.synced(self.contacts, revision)
        self.synced(self.calendar, 0)
        later = self.change(self.calendar_cid)
        self.assertTrue(later > 0)
        response = self.ping_now(self.both(600))
        self.assertEqual(status_of(response), "2")
        self.assertEqual(changed_ids(response), [self.calendar])
        self.assertEqual(self.waiter_count() or 0, 0)

    def test_synced_folders_wait(self) -> None:
        self.synced(self.contacts, self.change(self.contacts_cid))
        d = self.start(self.both(600))
        self.assertNoResult(d)
        self.clock.advance(600)
        self.assertEqual(status_of(self.successResultOf(d)), "1")

    def test_folder_never_synced_is_not_pending(self) -> None:
        self.change(self.contacts_cid)
        d = self.start(self.both(60))
        self.assertNoResult(d)
        self.clock.advance(60)
        self.assertEqual(status_of(self.successResultOf(d)), "1")

    def test_every_version_same_statuses(self) -> None:
        for version in ("2.5", "12.0", "12.1", "14.0", "14.1", "16.0", "16.1"):
            d = self.start(self.both(60), version)
            self.clock.advance(60)
            self.assertEqual(status_of(self.successResultOf(d)), "1")
            d = self.start(None, version)
            self.hub.notify(USER, {"groupware:" + self.contacts_cid})
            self.assertEqual(changed_ids(self.successResultOf(d)), [self.contacts])

    def test_response_encodes(self) -> None:
        d = self.start(self.both(60))
        self.hub.notify(USER, {"groupware:" + self.contacts_cid})
        response = self.successResultOf(d)
        assert response.body is not None
        again = decode(encode(response.body))
        self.assertEqual(again, response.body)

    def test_change_during_pending_check_still_wakes(self) -> None:
        """The waiter is registered before the pending check: a change that
        commits in between is not lost."""
        original = self.groupware.watch_revisions

        def racing(user: str, ids: Any) -> Any:
            self.hub.notify(USER, {"groupware:" + self.calendar_cid})
            return original(user, ids)

        self.patch(self.groupware, "watch_revisions", racing)
        response = self.ping_now(self.both(600))
        self.assertEqual(status_of(response), "2")
        self.assertEqual(changed_ids(response), [self.calendar])

    # cancellation

    def test_cancel_during_pending_check_removes_the_waiter(self) -> None:
        self.patch(self.groupware, "watch_revisions", lambda user, ids: Deferred())
        d = self.start(self.both(600))
        self.assertNoResult(d)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.waiter_count() or 0, 0)
        self.clock.advance(600)

    def test_cancel_removes_the_waiter(self) -> None:
        d = self.start(self.both(600))
        self.assertNoResult(d)
        self.assertEqual(self.waiter_count() if self.waiter_count() is not None else 1, 1)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.waiter_count() or 0, 0)
        # Nothing fires later.
        self.hub.notify(USER, {"groupware:" + self.contacts_cid})
        self.clock.advance(600)

    def test_cancel_through_dispatch(self) -> None:
        """The HTTP layer runs dispatch() as a Deferred and cancels it."""
        from easyncd.protocol import dispatch as dispatch_module

        commands = dict(dispatch_module.COMMANDS)
        commands["Ping"] = PingCommand
        self.patch(dispatch_module, "COMMANDS", commands)
        key = provision_device(self.store)
        ctx = make_context(self.store, "Ping", clock=self.clock, policy_key=key,
                           services={"push": self.hub, "groupware": self.groupware})
        d = Deferred.fromCoroutine(dispatch(ctx, encode(self.both(600))))
        self.assertNoResult(d)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.waiter_count() or 0, 0)


class DispatchTests(SynchronousTestCase):
    """Ping through the dispatcher: no body needed, exempt from the wipe gate."""

    def setUp(self) -> None:
        from easyncd.protocol import dispatch as dispatch_module

        commands = dict(dispatch_module.COMMANDS)
        commands["Ping"] = PingCommand
        self.patch(dispatch_module, "COMMANDS", commands)
        self.store: Any = MemoryStateStore()
        self.clock = make_clock()
        self.hub = FakePushHub(self.clock)
        self.key = provision_device(self.store)

    def ctx(self, version: str = "14.1", services: Any = None) -> CommandContext:
        if services is None:
            services = {"push": self.hub, "groupware": FakeGroupware()}
        return make_context(self.store, "Ping", version=version, clock=self.clock,
                            policy_key=self.key, services=services)

    def test_unprovisioned_device_is_refused(self) -> None:
        ctx = make_context(self.store, "Ping", version="14.1", clock=self.clock,
                           services={"push": self.hub})
        response = self.successResultOf(Deferred.fromCoroutine(dispatch(ctx, b"")))
        self.assertEqual(status_of(response), "142")

    def test_empty_body_allowed(self) -> None:
        response = self.successResultOf(Deferred.fromCoroutine(dispatch(self.ctx(), b"")))
        self.assertEqual(response.http_status, 200)
        self.assertEqual(status_of(response), "3")
        self.assertEqual(response.status, "3")

    def test_pending_wipe_does_not_block_ping(self) -> None:
        result_of(self.store.request_wipe(DEVICE, WIPE_DEVICE, USER, 0.0))
        response = self.successResultOf(Deferred.fromCoroutine(dispatch(self.ctx(), b"")))
        self.assertEqual(status_of(response), "3")

    def test_no_push_hub_is_a_server_error(self) -> None:
        folder = result_of(self.store.add_folder(USER, "0", "Contacts", 9, "groupware:c"))
        ctx = self.ctx(services={})
        body = ping_body(60, [(folder.server_id, "Contacts")])
        response = self.successResultOf(
            Deferred.fromCoroutine(dispatch(ctx, encode(body))))
        self.assertEqual(status_of(response), "8")


class FakeHubFakeGroupwarePingTests(PingTestsMixin, SynchronousTestCase):
    """The command with the local fakes."""

    def make_hub(self, clock: Clock) -> Any:
        return FakePushHub(clock)

    def make_groupware(self) -> Any:
        return FakeGroupware()

    def new_collection(self, kind: str) -> str:
        self.groupware.next_id += 1
        cid = f"{kind}:{self.groupware.next_id}"
        self.groupware.revisions[(USER, cid)] = 0
        return cid

    def change(self, collection_id: str) -> int:
        self.groupware.revisions[(USER, collection_id)] += 1
        return self.groupware.revisions[(USER, collection_id)]  # type: ignore[no-any-return]

    def drop_collection(self, collection_id: str) -> None:
        del self.groupware.revisions[(USER, collection_id)]

    def waiter_count(self) -> int | None:
        return len(self.hub.waiters)

    def test_wait_knows_what_the_device_has(self) -> None:
        """The hub wait gets, per groupware topic, the revision the pending
        check found the device up to date with."""
        revision = self.change(self.contacts_cid)
        self.change(self.contacts_cid)
        own = CollectionState(rev=revision, own={"7": revision + 1}).to_text()
        result_of(self.store.register_account(DEVICE, USER, "TestDevice", None, 0.0))
        result_of(self.store.advance_sync_state(DEVICE, USER, self.contacts, None, 3, own))
        inbox = self.add_folder("Inbox", 2, "imap:INBOX")
        d = self.start(ping_body(300, [(self.contacts, "Contacts"), (self.calendar, "Calendar"),
                                       (inbox, "Email")]))
        self.assertNoResult(d)
        [waiter] = self.hub.waiters
        self.assertEqual(waiter.known, {"groupware:" + self.contacts_cid: revision + 1,
                                        "groupware:" + self.calendar_cid: 0})
        self.assertEqual(waiter.timeout, 300)
        d.cancel()
        self.failureResultOf(d, CancelledError)


class RealHubMemoryGroupwarePingTests(PingTestsMixin, SynchronousTestCase):
    """The command with the real push hub and the memory groupware backend
    (which notifies the hub after each write)."""

    def make_hub(self, clock: Clock) -> Any:
        return PushHub(clock)

    def make_groupware(self) -> Any:
        return MemoryGroupwareBackend(self.clock, self.hub)

    def new_collection(self, kind: str) -> str:
        self.made = getattr(self, "made", 0) + 1
        collection = result_of(self.groupware.create_collection(USER, kind, f"{kind} {self.made}"))
        return collection.collection_id  # type: ignore[no-any-return]

    def change(self, collection_id: str, groupware: Any = None) -> int:
        groupware = groupware or self.groupware
        kind = result_of(groupware.get_collection(USER, collection_id)).kind
        data = (VCARD if kind == "contacts" else VCALENDAR)
        item = result_of(groupware.add_item(USER, collection_id, data))
        return item.revision  # type: ignore[no-any-return]

    def drop_collection(self, collection_id: str) -> None:
        result_of(self.groupware.delete_collection(USER, collection_id))

    def waiter_count(self) -> int | None:
        return self.hub.waiter_count()  # type: ignore[no-any-return]

    def test_backend_write_wakes_ping(self) -> None:
        """A change written through the backend (another device, or the CLI
        in this process) wakes the waiting Ping with that folder only."""
        d = self.start(self.both(600))
        self.clock.advance(5)
        self.assertNoResult(d)
        self.change(self.contacts_cid)
        response = self.successResultOf(d)
        self.assertEqual(status_of(response), "2")
        self.assertEqual(changed_ids(response), [self.contacts])

    def test_unnotified_change_found_by_polling(self) -> None:
        """A change the hub is not told about (another process writing the
        same database) wakes the Ping within a second by the hub's polling."""
        self.hub = PushHub(self.clock, backend=self.groupware, poll_interval=0.5)
        self.groupware._hub = None  # writes notify nobody, like another process
        d = self.start(self.both(600))
        self.clock.advance(0.5)  # the first poll takes the baseline
        self.assertNoResult(d)
        self.change(self.calendar_cid)
        self.clock.advance(0.5)
        self.assertEqual(changed_ids(self.successResultOf(d)), [self.calendar])

    def polling_hub(self) -> None:
        """A hub that polls the backend, and a backend that notifies nobody
        (its writes stand for another process: the CLI, another node)."""
        self.hub = PushHub(self.clock, backend=self.groupware, poll_interval=0.5)
        self.groupware._hub = None

    def test_unnotified_change_right_after_the_check(self) -> None:
        """The CLI imports right after the Ping started waiting, before the
        hub's first poll: the Ping answers at that poll, not at its
        heartbeat."""
        self.polling_hub()
        self.synced(self.calendar, self.change(self.calendar_cid))
        d = self.start(self.both(60))
        self.assertNoResult(d)
        self.change(self.calendar_cid)
        self.clock.advance(0.5)
        response = self.successResultOf(d)
        self.assertEqual(status_of(response), "2")
        self.assertEqual(changed_ids(response), [self.calendar])

    def test_unnotified_change_during_the_check(self) -> None:
        """The change commits after the pending check read the revisions and
        before the wait registered: still found at the first poll."""
        self.polling_hub()
        original = self.hub.wait
        writes: list[int] = []

        def racing(user: str, topics: Any, timeout: float, known: Any = None) -> Any:
            if known is not None and not writes:
                writes.append(self.change(self.contacts_cid))
            return original(user, topics, timeout, known=known)

        self.patch(self.hub, "wait", racing)
        d = self.start(self.both(60))
        self.assertEqual(len(writes), 1)
        self.assertNoResult(d)
        self.clock.advance(0.5)
        self.assertEqual(changed_ids(self.successResultOf(d)), [self.contacts])

    def test_in_process_write_then_cli_write(self) -> None:
        """A Ping woken by this process's write; the device syncs and pings
        again, and the CLI writes at once: that write wakes the new Ping."""
        self.hub = PushHub(self.clock, backend=self.groupware, poll_interval=0.5)
        self.groupware._hub = self.hub
        d = self.start(self.both(60))
        self.clock.advance(0.5)
        revision = self.change(self.contacts_cid)  # notified
        self.assertEqual(changed_ids(self.successResultOf(d)), [self.contacts])
        self.synced(self.contacts, revision)
        again = self.start(self.both(60))
        self.assertNoResult(again)
        self.groupware._hub = None
        self.change(self.contacts_cid)  # not notified: another process
        self.clock.advance(0.5)
        self.assertEqual(changed_ids(self.successResultOf(again)), [self.contacts])

    def test_own_changes_do_not_wake(self) -> None:
        """Revisions the device made itself are behind its Sync state's rev
        but not news: the Ping waits through the polls to its heartbeat."""
        self.polling_hub()
        start = self.change(self.contacts_cid)
        mine = self.change(self.contacts_cid)
        own = CollectionState(rev=start, own={"x": mine}).to_text()
        result_of(self.store.register_account(DEVICE, USER, "TestDevice", None, 0.0))
        result_of(self.store.advance_sync_state(DEVICE, USER, self.contacts, None, 3, own))
        d = self.start(self.both(60))
        self.clock.pump([0.5] * 100)
        self.assertNoResult(d)
        self.clock.advance(10)
        self.assertEqual(status_of(self.successResultOf(d)), "1")
