"""A throw-away PostgreSQL database for tests.

The server comes from ``EASYNCD_TEST_POSTGRES`` (a URL of a database that the
test may connect to, to create others), by default
``postgresql://postgres@127.0.0.1:5432/postgres``.  If it cannot be reached the
test fails with a message saying so: store tests are never skipped.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    """The URL of the test server's maintenance database."""
    return os.environ.get("EASYNCD_TEST_POSTGRES", DEFAULT_URL)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@contextlib.contextmanager
def temporary_database(prefix: str = "easyncd_test") -> Iterator[str]:
    """Create a uniquely named database, yield its URL, drop it afterwards."""
    import psycopg2

    admin_url = server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        connection = psycopg2.connect(admin_url, connect_timeout=10)
    except psycopg2.OperationalError as exc:
        raise AssertionError(
            f"PostgreSQL for the tests is not reachable at {admin_url} "
            f"(set EASYNCD_TEST_POSTGRES): {exc}"
        ) from None
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield _with_database(admin_url, name)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.close()
