"""Throw-away PostgreSQL databases for tests.

The server comes from ``EASYNCD_TEST_POSTGRES`` (the URL of a database that the
tests may connect to in order to create others), by default
``postgresql://postgres@127.0.0.1:5432/postgres``.  If it cannot be reached the
test fails with a message saying so: store tests are never skipped.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class PostgresUnreachable(AssertionError):
    """The test server cannot be reached: a test failure, never a skip."""


def server_url() -> str:
    """The URL of the test server's maintenance database."""
    return os.environ.get("EASYNCD_TEST_POSTGRES", DEFAULT_URL)


def database_url(name: str) -> str:
    """The URL of database ``name`` on the test server."""
    parts = urlsplit(server_url())
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _admin_connection() -> Any:
    import psycopg2

    try:
        connection = psycopg2.connect(server_url(), connect_timeout=10)
    except psycopg2.OperationalError as exc:
        raise PostgresUnreachable(
            f"PostgreSQL test server {server_url()} cannot be reached (set "
            f"EASYNCD_TEST_POSTGRES to a server where CREATE DATABASE is allowed): {exc}"
        ) from None
    connection.autocommit = True
    return connection


def create_database(prefix: str = "easyncd_test") -> tuple[str, str]:
    """Create a uniquely named database; returns (name, URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    connection = _admin_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()
    return name, database_url(name)


def drop_database(name: str) -> None:
    """Drop a database made by :func:`create_database`, even if still in use."""
    connection = _admin_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        connection.close()


@contextlib.contextmanager
def temporary_database(prefix: str = "easyncd_test") -> Iterator[str]:
    """Create a database, yield its URL, drop it afterwards."""
    name, url = create_database(prefix)
    try:
        yield url
    finally:
        drop_database(name)
