"""A change written by another process (here: another store on the same
SQLite file, like easyncd-admin) wakes a waiter through the hub's polling,
with the real reactor and the real SQL backend."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any, Generator

from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest

from easyncd.backends.groupware.sql import SQLGroupwareBackend
from easyncd.push.hub import PushHub
from easyncd.store.sqlite import SQLiteStateStore


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class CrossProcessTests(unittest.TestCase):
    """Polling finds what the hub was never told about."""

    @inlineCallbacks
    def test_other_writer_wakes_within_a_second(self) -> Generator[Any, Any, None]:
        reactor = _reactor()
        directory = tempfile.mkdtemp(prefix="easyncd-push-")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "state.db")
        daemon_store = SQLiteStateStore(path, reactor)
        self.addCleanup(daemon_store.close)
        yield daemon_store.migrate()
        cli_store = SQLiteStateStore(path, reactor)
        self.addCleanup(cli_store.close)
        hub = PushHub(reactor, poll_interval=0.1)
        daemon = SQLGroupwareBackend(daemon_store, reactor, hub)
        hub.backend = daemon
        hub.startService()
        self.addCleanup(hub.stopService)
        cli = SQLGroupwareBackend(cli_store, reactor)  # tells no hub
        contacts = (yield daemon.list_collections("alice", "contacts"))[0]
        topic = f"groupware:{contacts.collection_id}"
        waiting = hub.wait("alice", [topic], 10)
        # Let the hub take its first look before the other process writes.
        yield _sleep(reactor, 0.25)
        started = time.monotonic()
        yield cli.add_item("alice", contacts.collection_id,
                           "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:x\r\nFN:X\r\nEND:VCARD\r\n")
        woken = yield waiting
        self.assertEqual(woken, frozenset({topic}))
        self.assertLess(time.monotonic() - started, 1.0)


def _sleep(reactor: Any, seconds: float) -> Any:
    from twisted.internet.task import deferLater

    return deferLater(reactor, seconds, lambda: None)
