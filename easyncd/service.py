"""The daemon's service tree: the store first (migrated before anything is
served), then the authenticator and the HTTP listeners.

Startup failures (database unreachable, schema too new, a port in use, a bad
endpoint string) are logged as one critical event and the daemon exits with
status 1, so that systemd sees the failure.
"""
from __future__ import annotations

import os
import socket
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from easyncd.backends.groupware.sql import SQLGroupwareBackend
from easyncd.backends.imap.backend import IMAPMailBackend
from easyncd.backends.imap.pool import IMAPPool, imap_connector
from easyncd.backends.smtp import SMTPSender
from easyncd.config import Config
from easyncd.http.activesync import Services
from easyncd.http.auth import Authenticator
from easyncd.http.root import build_root
from easyncd.http.site import EASSite
from easyncd.http.trace import ProtocolTracer
from easyncd.protocol.commands.validatecert import TrustAnchors
from easyncd.protocol.mailpush import MailWatchRegistry
from easyncd.push.hub import PushHub
from easyncd.store import open_store
from easyncd.store.interfaces import IStateStore, StoreError

log = Logger()


def sd_notify(state: str) -> bool:
    """Tell systemd (Type=notify) about our state; False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode("ascii"))
    except OSError:
        return False
    return True


class EasyncdService(MultiService):
    """The whole daemon.  Its children come up in order in :meth:`startService`."""

    def __init__(self, config: Config, reactor: Any) -> None:
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.store: IStateStore | None = None
        self.ports: list[IListeningPort] = []
        self.hub: PushHub | None = None
        self.mail: IMAPMailBackend | None = None
        self.mail_watches: MailWatchRegistry | None = None
        self.trimming: LoopingCall | None = None
        self.ready: Deferred[None] | None = None

    def startService(self) -> None:  # noqa: N802 (Twisted hook)
        """Open and migrate the store, then start listening."""
        super().startService()
        self.ready = Deferred.fromCoroutine(self._start())

    async def _start(self) -> None:
        config = self.config
        try:
            store = open_store(config.database_url, self.reactor)
            self.store = store
            await store.migrate()
            version = await store.schema_version()
            log.info("state store ready: {engine}, schema version {version}",
                     engine=store.engine, version=version)
            hub = PushHub(self.reactor, poll_interval=0.5)
            groupware = SQLGroupwareBackend(store, self.reactor, hub)
            hub.backend = groupware
            hub.startService()
            self.hub = hub
            self._start_trimming(groupware)
            services = Services(
                config=config,
                store=store,
                authenticator=Authenticator(config, self.reactor),
                clock=self.reactor,
                tracer=ProtocolTracer(config.trace_dir, config.log.trace_devices,
                                      config.log.trace_users),
                extra={"groupware": groupware, "push": hub, **self._mail_services(),
                       **self._trust_services()},
            )
            site = EASSite(build_root(services), config.server.max_request_size)
            for description in config.server.listen:
                try:
                    endpoint = serverFromString(self.reactor, description)
                except (ValueError, KeyError, TypeError) as exc:
                    raise StartupError(f"[server] listen: bad endpoint {description!r}: {exc}")
                try:
                    port = await endpoint.listen(site)
                except Exception as exc:
                    raise StartupError(f"[server] listen: cannot listen on {description!r}: {exc}")
                self.ports.append(port)
                address = port.getHost()
                log.info("listening on {description} ({host}:{port})", description=description,
                         host=getattr(address, "host", "?"), port=getattr(address, "port", "?"))
        except (StartupError, StoreError) as exc:
            self._fail(str(exc) or exc.__class__.__name__)
            return
        except Exception:
            log.failure("easyncd could not start")
            self._fail("unexpected error (see above)")
            return
        sd_notify("READY=1\nSTATUS=serving")
        log.info("easyncd ready")

    def _mail_services(self) -> dict[str, Any]:
        """The IMAP mail backend and the SMTP sender, when [imap] enabled."""
        imap = self.config.imap
        if not imap.enabled:
            return {}
        connect = imap_connector(
            self.reactor, imap.host, imap.port, imap.tls, imap.ca_file or None,
            master_user=imap.master_user or None,
            master_password=imap.master_password or None,
            master_separator=imap.master_separator or None,
            timeout=imap.connect_timeout,
        )
        pool = IMAPPool(
            self.reactor, connect,
            max_per_user=imap.max_connections_per_user,
            max_total=imap.max_connections,
            idle_timeout=imap.idle_timeout,
            backoff=(imap.backoff_initial, imap.backoff_max),
            shared_credentials=bool(imap.master_user),
            op_timeout=imap.operation_timeout,
        )
        names = {role: getattr(imap, role) for role in ("drafts", "sent", "trash", "junk", "outbox")
                 if getattr(imap, role)}
        self.mail = IMAPMailBackend(
            self.reactor, pool, folder_names=names, fetch_batch=imap.fetch_batch,
            poll_interval=imap.poll_interval, watch_linger=imap.watch_linger,
            folder_cache=imap.folder_cache,
        )
        log.info("mail from IMAP {host}:{port} ({tls})", host=imap.host, port=imap.port,
                 tls=imap.tls)
        self.mail_watches = MailWatchRegistry(self.mail, self.reactor, imap.watch_linger)
        return {"mail": self.mail, "mailpush": self.mail_watches,
                "smtp": SMTPSender.from_config(self.config, self.reactor)}

    def _trust_services(self) -> dict[str, Any]:
        """The S/MIME trust anchors for ValidateCert, when [smime] trust_file is set."""
        trust_file = self.config.smime.trust_file
        if not trust_file:
            return {}
        if not os.path.isfile(trust_file):
            raise StartupError(f"[smime] trust_file: no such file {trust_file!r}")
        return {"certificate_trust": TrustAnchors(cafile=trust_file)}

    def _start_trimming(self, groupware: SQLGroupwareBackend) -> None:
        """Trim the groupware history once a day ([groupware] history_days)."""
        days = self.config.groupware.history_days
        if not days:
            return

        async def trim() -> None:
            try:
                removed = await groupware.trim_history(self.reactor.seconds() - days * 86400)
            except Exception:
                log.failure("trimming the groupware history failed; trying again tomorrow")
                return
            if removed:
                log.info("trimmed {count} groupware history rows older than {days} days",
                         count=removed, days=days)

        loop = LoopingCall(lambda: Deferred.fromCoroutine(trim()))
        loop.clock = self.reactor
        loop.start(86400, now=True).addErrback(
            lambda failure: log.failure("groupware history trimming stopped", failure))
        self.trimming = loop

    def _fail(self, reason: str) -> None:
        log.critical("easyncd could not start: {reason}", reason=reason)
        self.reactor.addSystemEventTrigger("after", "shutdown", os._exit, 1)
        if self.reactor.running:
            self.reactor.stop()
        else:
            self.reactor.callWhenRunning(self.reactor.stop)

    async def _stop(self) -> None:
        sd_notify("STOPPING=1")
        if self.trimming is not None and self.trimming.running:
            self.trimming.stop()
        if self.hub is not None:
            hub, self.hub = self.hub, None
            await hub.stopService()  # waiting Ping/Sync requests get their answer
        if self.mail_watches is not None:
            self.mail_watches.stop_all()
            self.mail_watches = None
        if self.mail is not None:
            mail, self.mail = self.mail, None
            mail.stop()
            mail.pool.close_all()
        ports, self.ports = self.ports, []
        stopping = [port.stopListening() for port in ports]
        await DeferredList([d for d in stopping if d is not None])
        if self.store is not None:
            store, self.store = self.store, None
            await store.close()
        log.info("easyncd stopped")

    def stopService(self) -> Deferred[None]:  # noqa: N802 (Twisted hook)
        """Stop listening, then close the store."""
        super().stopService()
        return Deferred.fromCoroutine(self._stop())


class StartupError(Exception):
    """A problem that keeps the daemon from starting, fit for one log line."""


def make_service(config: Config, reactor: Any) -> EasyncdService:
    """The daemon's root service."""
    return EasyncdService(config, reactor)
