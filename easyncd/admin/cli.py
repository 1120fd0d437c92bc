"""``easyncd-admin``: users, devices, groupware collections, the database, the config.

::

    easyncd-admin [-f CONFIG] [-o section.option=value ...] COMMAND ...

Without ``-f`` it reads ``/etc/easyncd/easyncd.conf`` when that exists, else the
built-in defaults: the same configuration the daemon would use.  Expected
problems (a bad config, an unknown device, an unreachable database) print one
line to stderr and exit with status 1; usage errors exit with status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from typing import Any, Sequence, TextIO
from urllib.parse import urlsplit, urlunsplit

from easyncd.admin import devices, users
from easyncd.admin.errors import AdminError
from easyncd.config import Config, ConfigError, load_config, render_default_config
from easyncd.store.interfaces import IStateStore, StoreError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``easyncd-admin``."""
    parser = argparse.ArgumentParser(
        prog="easyncd-admin",
        description="Manage easyncd: users, devices, contacts/calendars/tasks/notes,"
                    " the state database and the configuration.",
    )
    parser.add_argument(
        "-f", "--config", metavar="CONFIG", default=None,
        help="configuration file (default: /etc/easyncd/easyncd.conf if it exists)",
    )
    parser.add_argument(
        "-o", "--option", metavar="SECTION.OPTION=VALUE", action="append", default=[],
        dest="overrides", help="override one option; may be repeated",
    )
    commands = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)

    user = commands.add_parser("user", help="local users (the users_file checker)")
    user_commands = user.add_subparsers(dest="command", metavar="ACTION", required=True)
    add = user_commands.add_parser(
        "add", help="add a user; the password is read from stdin (asked twice on a terminal)")
    add.add_argument("name")
    passwd = user_commands.add_parser("passwd", help="change a user's password (read like add)")
    passwd.add_argument("name")
    user_commands.add_parser("list", help="list the users")
    remove = user_commands.add_parser("remove", help="remove a user")
    remove.add_argument("name")
    remove.add_argument(
        "--devices", action="store_true",
        help="also remove the user's accounts on devices (and devices left without one)",
    )

    device = commands.add_parser("device", help="devices and their accounts")
    device_commands = device.add_subparsers(dest="command", metavar="ACTION", required=True)
    dlist = device_commands.add_parser("list", help="list devices")
    dlist.add_argument("--user", help="only the devices of this user")
    dlist.add_argument("--json", action="store_true", help="print JSON")
    show = device_commands.add_parser("show", help="everything known about a device")
    show.add_argument("device_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON")
    wipe = device_commands.add_parser(
        "wipe", help="remote-wipe a device at its next request")
    wipe.add_argument("device_id", metavar="ID")
    wipe.add_argument(
        "--account-only", action="store_true",
        help="remove only the account's data, not the whole device (needs EAS 16.1)",
    )
    wipe.add_argument("--user", help="with --account-only: only this user's account")
    cancel = device_commands.add_parser("cancel-wipe", help="cancel a pending wipe")
    cancel.add_argument("device_id", metavar="ID")
    dremove = device_commands.add_parser(
        "remove", help="forget a device and its sync state (it starts over if it comes back)")
    dremove.add_argument("device_id", metavar="ID")
    trace = device_commands.add_parser("trace", help="switch the protocol trace of a device")
    trace.add_argument("device_id", metavar="ID")
    trace.add_argument("state", choices=("on", "off"))
    resync = device_commands.add_parser(
        "resync", help="make a device provision again and start its sync over")
    resync.add_argument("device_id", metavar="ID")
    resync.add_argument("--user", help="only this user's account")

    config = commands.add_parser("config", help="the configuration")
    config_commands = config.add_subparsers(dest="command", metavar="ACTION", required=True)
    config_commands.add_parser(
        "check", help="load the configuration and connect to the database")
    config_commands.add_parser(
        "show-defaults", help="print the default configuration file")

    _add_groupware_parsers(commands)

    db = commands.add_parser("db", help="the state database")
    db_commands = db.add_subparsers(dest="command", metavar="ACTION", required=True)
    db_commands.add_parser("upgrade", help="create or upgrade the database schema")
    return parser


def _add_groupware_parsers(commands: Any) -> None:
    """``collection ...`` and ``item ...``: contacts, calendars, tasks, notes."""
    from easyncd.backends.interfaces import KINDS

    collection = commands.add_parser(
        "collection", help="a user's address books, calendars, task lists and note folders")
    actions = collection.add_subparsers(dest="command", metavar="ACTION", required=True)
    clist = actions.add_parser("list", help="list a user's collections")
    clist.add_argument("user", metavar="USER")
    clist.add_argument("--json", action="store_true", help="print JSON")
    create = actions.add_parser("create", help="create a collection; prints its id")
    create.add_argument("user", metavar="USER")
    create.add_argument("kind", metavar="KIND", choices=KINDS,
                        help="one of: " + ", ".join(KINDS))
    create.add_argument("name", metavar="NAME")
    rename = actions.add_parser("rename", help="rename a collection")
    rename.add_argument("user", metavar="USER")
    rename.add_argument("collection", metavar="COLLECTION")
    rename.add_argument("name", metavar="NAME")
    cdelete = actions.add_parser(
        "delete", help="delete a collection and its items (not the default one of a kind)")
    cdelete.add_argument("user", metavar="USER")
    cdelete.add_argument("collection", metavar="COLLECTION")
    sync = actions.add_parser(
        "sync", help="whether the user's devices see a collection (defaults always do)")
    sync.add_argument("user", metavar="USER")
    sync.add_argument("collection", metavar="COLLECTION")
    sync.add_argument("state", choices=("on", "off"))
    cimport = actions.add_parser(
        "import", help="import a .vcf / .ics file (- for stdin); a known UID replaces its item")
    cimport.add_argument("user", metavar="USER")
    cimport.add_argument("collection", metavar="COLLECTION")
    cimport.add_argument("file", metavar="FILE")
    export = actions.add_parser(
        "export", help="write all items as one .vcf / .ics (stdout by default)")
    export.add_argument("user", metavar="USER")
    export.add_argument("collection", metavar="COLLECTION")
    export.add_argument("file", metavar="FILE", nargs="?", default="-")

    item = commands.add_parser("item", help="the items of a collection")
    item_actions = item.add_subparsers(dest="command", metavar="ACTION", required=True)
    ilist = item_actions.add_parser("list", help="list the items of a collection")
    ilist.add_argument("user", metavar="USER")
    ilist.add_argument("collection", metavar="COLLECTION")
    ilist.add_argument("--json", action="store_true", help="print JSON")
    idelete = item_actions.add_parser("delete", help="delete an item (by id or UID)")
    idelete.add_argument("user", metavar="USER")
    idelete.add_argument("collection", metavar="COLLECTION")
    idelete.add_argument("item", metavar="ITEM")


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:`` URL (None for other URLs and ``:memory:``)."""
    if not url.startswith("sqlite:"):
        return None
    from easyncd.store import sqlite_path as store_sqlite_path

    try:
        path = store_sqlite_path(url)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    return None if path == ":memory:" else path


class _Run:
    """One invocation: parsed arguments, streams, and the reactor (if any)."""

    def __init__(self, args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> None:
        self.args = args
        self.out = out
        self.err = err
        self.stdin = stdin

    def print(self, text: str = "") -> None:
        self.out.write(text if text.endswith("\n") else text + "\n")

    def warn(self, text: str) -> None:
        self.err.write(text + "\n")

    def load(self) -> Config:
        return load_config(self.args.config, self.args.overrides)

    # stores ------------------------------------------------------------------------

    async def open_store(
        self, reactor: Any, config: Config, *, migrate: bool = True
    ) -> IStateStore:
        """Open the configured store (migrated unless ``migrate`` is false)."""
        from easyncd.store import open_store

        url = config.database_url
        path = sqlite_path(url)
        if path is not None:
            self.check_root_ownership(os.path.dirname(os.path.abspath(path)))
        try:
            store = open_store(url, reactor, pool_size=1)
            if migrate:
                await store.migrate()
        except StoreError as exc:
            raise AdminError(f"database {redact_url(url)}: {_one_line(exc)}") from None
        return store

    def check_root_ownership(self, directory: str) -> None:
        """Warn when root is about to write into a directory another user owns."""
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            return
        try:
            owner = os.stat(directory).st_uid
        except OSError:
            return
        if owner != 0:
            self.warn(
                f"warning: running as root, but {directory} belongs to uid {owner}; files"
                " written now may belong to root (run as the service user: sudo -u easyncd ...)"
            )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# -- commands without the reactor ------------------------------------------------------


def _users_file(run: _Run, config: Config) -> Any:
    from easyncd.backends.users_file import UsersFile

    path = config.users_file
    run.check_root_ownership(os.path.dirname(os.path.abspath(path)))
    if "users_file" not in config.auth.checkers and run.args.command in ("add", "passwd"):
        run.warn(
            "warning: [auth] checkers does not include users_file: these passwords are not used"
        )
    if run.args.command in ("add", "passwd"):
        # A fresh installation: the data directory does not exist yet.
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    return UsersFile(path)


def run_user_command(run: _Run, config: Config) -> int:
    """``user add|passwd|list|remove`` (``remove --devices`` needs the store)."""
    args = run.args
    file = _users_file(run, config)
    if args.command == "list":
        for name in users.list_users(file):
            run.print(name)
    elif args.command == "add":
        password = users.read_new_password(run.stdin)
        users.add_user(file, args.name, password)
        run.print(f"added user {args.name}")
    elif args.command == "passwd":
        password = users.read_new_password(run.stdin)
        users.set_password(file, args.name, password)
        run.print(f"changed the password of {args.name}")
    elif args.command == "remove":
        users.remove_user(file, args.name)
        run.print(f"removed user {args.name}")
    return EXIT_OK


# -- commands with the reactor --------------------------------------------------------------


async def run_store_command(run: _Run, config: Config, reactor: Any) -> int:
    """The commands that use the state store."""
    args = run.args
    if args.group == "config":
        return await _config_check(run, config, reactor)
    store = await run.open_store(reactor, config)
    try:
        if args.group == "db":
            version = await store.schema_version()
            run.print(f"database {redact_url(config.database_url)} is at schema version {version}")
        elif args.group == "user":
            touched = await users.remove_user_devices(store, args.name)
            if touched:
                run.print(f"removed the accounts of {args.name} on: {', '.join(touched)}")
        elif args.group in ("collection", "item"):
            from easyncd.backends.groupware.sql import SQLGroupwareBackend

            # No push hub here: the daemon's hub notices these writes by
            # polling the collection revisions.
            await _groupware_command(run, SQLGroupwareBackend(store, reactor))
        else:
            await _device_command(run, store, reactor)
    except StoreError as exc:
        raise AdminError(f"database {redact_url(config.database_url)}: {_one_line(exc)}") from None
    finally:
        await store.close()
    return EXIT_OK


async def _device_command(run: _Run, store: IStateStore, reactor: Any) -> None:
    args = run.args
    command = args.command
    if command == "list":
        found = await devices.list_devices(store, args.user)
        if args.json:
            run.print(json.dumps([devices.device_to_json(d) for d in found], indent=2))
        elif found:
            run.print(devices.format_device_table(found))
        else:
            run.warn("no devices")
    elif command == "show":
        device = await devices.get_device(store, args.device_id)
        if args.json:
            run.print(json.dumps(devices.device_to_json(device), indent=2))
        else:
            run.print(devices.format_device_details(device))
    elif command == "wipe":
        warnings = await devices.wipe_device(
            store, args.device_id, now=reactor.seconds(),
            account_only=args.account_only, user=args.user,
        )
        for warning in warnings:
            run.warn(warning)
        what = "account-only wipe" if args.account_only else "wipe"
        run.print(f"{what} of {args.device_id} requested; it happens at the device's next request")
    elif command == "cancel-wipe":
        if await devices.cancel_wipe(store, args.device_id):
            run.print(f"cancelled the pending wipe of {args.device_id}")
        else:
            run.print(f"no wipe was pending for {args.device_id}")
    elif command == "remove":
        await devices.remove_device(store, args.device_id)
        run.print(f"removed device {args.device_id}")
    elif command == "trace":
        await devices.set_trace(store, args.device_id, args.state == "on")
        run.print(f"protocol trace of {args.device_id} is {args.state}")
    elif command == "resync":
        names = await devices.resync_device(store, args.device_id, args.user)
        run.print(
            f"{args.device_id} will provision again and start over"
            f" (accounts: {', '.join(names) or '-'})"
        )


async def _groupware_command(run: _Run, backend: Any) -> None:
    # Imported here: it loads vobject, which the other commands do not need.
    from easyncd.admin import groupware

    args = run.args
    user = args.user
    if args.group == "item":
        if args.command == "list":
            items = await groupware.list_items(backend, user, args.collection)
            if args.json:
                run.print(json.dumps([groupware.item_to_json(i) for i in items], indent=2))
            elif items:
                run.print(groupware.format_item_table(items))
            else:
                run.warn(f"no items in collection {args.collection}")
        else:
            item = await groupware.delete_item(backend, user, args.collection, args.item)
            run.print(f"deleted item {item.item_id} (UID {item.uid or '-'})"
                      f" from collection {args.collection}")
        return
    command = args.command
    if command == "list":
        found = await groupware.list_collections(backend, user)
        if args.json:
            run.print(json.dumps([groupware.collection_to_json(c) for c in found], indent=2))
        else:
            run.print(groupware.format_collection_table(found))
    elif command == "create":
        created = await groupware.create_collection(backend, user, args.kind, args.name)
        run.print(created.collection_id)
    elif command == "rename":
        renamed = await groupware.rename_collection(backend, user, args.collection, args.name)
        run.print(f"renamed collection {renamed.collection_id} to {renamed.display_name}")
    elif command == "delete":
        deleted = await groupware.delete_collection(backend, user, args.collection)
        run.print(f"deleted {deleted.kind} collection {deleted.collection_id}"
                  f" ({deleted.display_name}) of {user}")
    elif command == "sync":
        changed = await groupware.set_synced(backend, user, args.collection,
                                             args.state == "on")
        run.print(f"collection {changed.collection_id} sync is {args.state}")
    elif command == "import":
        source = "stdin" if args.file == "-" else args.file
        text = groupware.read_import_file(args.file, run.stdin)
        result = await groupware.import_items(backend, user, args.collection, text, source)
        run.print(f"imported {result.total} (added {result.added}, updated {result.updated})")
    elif command == "export":
        text, count = await groupware.export_items(backend, user, args.collection)
        if args.file == "-":
            run.out.write(text)
        else:
            groupware.write_export_file(args.file, text)
            run.print(f"exported {count} items to {args.file}")


async def _config_check(run: _Run, config: Config, reactor: Any) -> int:
    url = config.database_url
    run.print(f"OK: {config.path or 'built-in defaults'}")
    run.print(f"database: {redact_url(url)}")
    run.print(f"listen: {', '.join(config.server.listen)}")
    run.print(f"checkers: {', '.join(config.auth.checkers)}")
    if "users_file" in config.auth.checkers:
        run.print(f"users file: {config.users_file}")
    path = sqlite_path(url)
    if path is not None and not os.path.exists(path):
        run.print("schema version: none yet (the database is created by"
                  " 'easyncd-admin db upgrade' or at the daemon's start)")
        return EXIT_OK
    store = await run.open_store(reactor, config, migrate=False)
    try:
        version = await store.schema_version()
    except StoreError as exc:
        raise AdminError(f"database {redact_url(url)}: {_one_line(exc)}") from None
    finally:
        await store.close()
    from easyncd.store.migrations import SCHEMA_DIR, load_plan

    expected = load_plan(store.engine, SCHEMA_DIR).version
    if version == expected:
        run.print(f"schema version: {version} (up to date)")
    elif version < expected:
        run.print(f"schema version: {version} (this easyncd upgrades it to {expected}"
                  " at start, or run: easyncd-admin db upgrade)")
    else:
        raise AdminError(f"database {redact_url(url)}: schema version {version} is newer"
                         f" than this easyncd ({expected}): upgrade easyncd")
    return EXIT_OK


# -- entry point ---------------------------------------------------------------------------


def _needs_store(args: argparse.Namespace) -> bool:
    if args.group in ("device", "db", "collection", "item"):
        return True
    if args.group == "config":
        return bool(args.command == "check")
    return bool(args.group == "user" and args.command == "remove" and args.devices)


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
) -> None:
    """Run ``easyncd-admin``; exits with 0 (done), 1 (failed) or 2 (usage)."""
    out = out or sys.stdout
    err = err or sys.stderr
    stdin = stdin or sys.stdin
    args = build_parser().parse_args(argv)
    run = _Run(args, out, err, stdin)
    if args.group == "config" and args.command == "show-defaults":
        out.write(render_default_config())
        sys.exit(EXIT_OK)
    try:
        config = run.load()
        code = EXIT_OK
        if args.group == "user":
            code = run_user_command(run, config)
    except (AdminError, ConfigError) as exc:
        err.write(f"easyncd-admin: {_one_line(exc)}\n")
        sys.exit(EXIT_FAILURE)
    except (KeyboardInterrupt, EOFError):
        err.write("\neasyncd-admin: interrupted\n")
        sys.exit(EXIT_FAILURE)
    if code != EXIT_OK or not _needs_store(args):
        sys.exit(code)

    from twisted.internet import task

    async def _react(reactor: Any) -> None:
        try:
            result = await run_store_command(run, config, reactor)
        except (AdminError, ConfigError) as exc:
            err.write(f"easyncd-admin: {_one_line(exc)}\n")
            result = EXIT_FAILURE
        except Exception:
            err.write("easyncd-admin: internal error:\n" + traceback.format_exc())
            result = EXIT_FAILURE
        if result:
            raise SystemExit(result)

    task.react(_react)


if __name__ == "__main__":
    main()
