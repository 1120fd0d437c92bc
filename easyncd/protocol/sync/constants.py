"""Sync status codes (MS-ASCMD 2.2.3.177.17), limits and namespaces, as data."""
from __future__ import annotations

from enum import IntEnum

AIRSYNC = "AirSync:"
AIRSYNCBASE = "AirSyncBase:"


class SyncStatus(IntEnum):
    """Sync Status values (top level, per collection and per item)."""

    Success = 1
    InvalidSyncKey = 3
    ProtocolError = 4
    ServerError = 5
    ConversionError = 6
    Conflict = 7
    ObjectNotFound = 8
    CannotComplete = 9
    HierarchyChanged = 12
    IncompleteRequest = 13
    InvalidWaitOrHeartbeat = 14
    TooManyCollections = 15
    Retry = 16


#: WindowSize when the device sends none, and the largest honoured.
DEFAULT_WINDOW_SIZE = 100
MAX_WINDOW_SIZE = 512

#: Wait is in minutes (12.1+), HeartbeatInterval in seconds (14.0+).
MIN_WAIT_MINUTES = 1
MAX_WAIT_MINUTES = 59
MIN_HEARTBEAT_SECONDS = 60
MAX_HEARTBEAT_SECONDS = 3540

#: Collections in one request at most (Status 15 beyond).
MAX_COLLECTIONS = 1000

#: The reserved collection id under which the last full request of a device
#: account is cached (empty-request shorthand, partial Sync).
REQUEST_CACHE_ID = "_sync"

#: Conflict option: 0 the client's object wins, 1 the server's (the default).
CONFLICT_CLIENT_WINS = 0
CONFLICT_SERVER_WINS = 1

#: 2.5's Truncation codes -> bytes (None: the whole body).
TRUNCATION_SIZES: dict[int, int | None] = {
    0: 0, 1: 512, 2: 1024, 3: 2048, 4: 5120, 5: 10240, 6: 20480, 7: 51200,
    8: 102400, 9: None,
}

#: FilterType values that depend on the item (calendar windows, open tasks).
FILTERING_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 8})
