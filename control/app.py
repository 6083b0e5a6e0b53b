"""Wires the switch together: media engine (in-process), the NG front end's offer/answer
code, the B2BUA, its SIP transports, the call record store, and the housekeeping timers."""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time

from control.b2bua import B2BUA
from control.monitor import SystemMonitor
from control.store import StoreWriter, open_store, upgrade_to_head
from control.services import Services
from control.services.logins import Logins
from control.services.operations import Operations
from control.services.webaccess import WebAccess
from control.store import entities
from control.web.api import build_api
from control.web.server import WebServer
from control.services.bootstrap import bootstrap_customer, bootstrap_phone, bootstrap_vendor
from control.config import SwitchConfig
from control.media import MediaControl
from control.params import ParamStore
from control.store.parameters import load_params
from control.sip.timer import Timers
from control.transport import SipTransport

log = logging.getLogger("vosmedia.app")

NG_SWEEP_INTERVAL = 10.0


class Switch:
    """A running switch. ``await start()``, then ``await stop()``."""

    def __init__(self, config: SwitchConfig, *, data_dir: str = ".", media_interfaces=None,
                 media: bool = True, num_threads: int = 1, store_url: str | None = None,
                 web_listen: tuple[str, int] | None = None, admin_password: str | None = None):
        self.config = config
        self.params = ParamStore(config.params)
        self.data_dir = data_dir
        self.media_interfaces = media_interfaces or [config.advertised_host()]
        self.use_media = media
        self.num_threads = num_threads
        self.store_url = store_url or os.path.join(data_dir, "vosmedia.db")
        self.engine = None
        self.ng = None
        self.core: B2BUA | None = None
        self.transport: SipTransport | None = None
        self.store = None
        self.cdr: StoreWriter | None = None
        self.web_listen = web_listen                 # None: no Web API
        self.admin_password = admin_password
        self.web: WebServer | None = None
        self.monitor: SystemMonitor | None = None
        self.web_address: tuple[str, int] | None = None
        self.addresses: list[tuple[str, int]] = []
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        os.makedirs(self.data_dir, exist_ok=True)
        # the store (SQLite file by default, PostgreSQL by URL) at the current schema; call
        # records and charges go through the journaled writer, durable once accepted
        self.store = open_store(self.store_url)
        upgrade_to_head(self.store)
        # values operators stored (Web API) win over the configuration file's
        self.params = ParamStore({**self.config.params, **load_params(self.store)})
        self.cdr = StoreWriter(self.store, os.path.join(self.data_dir, "journal"))
        self.logins = Logins(self.store, Logins.secret_file(os.path.join(self.data_dir, "web-secret")))
        self._first_login()
        self.services = self._open_services()
        self.logins.manage(self.services.operators, self.services.accounts.directory.require)
        self.charging = self.services.charging
        media = None
        if self.use_media:
            from vosmedia.engine import MediaEngine
            from vosmedia.ng import NgServer
            p = self.params
            self.engine = MediaEngine(
                interfaces=self.media_interfaces, port_min=p.get("SS_MEDIAPROXYPORT_START"),
                port_max=p.get("SS_MEDIAPROXYPORT_END"), num_threads=self.num_threads,
                tos=p.get("SS_QOS_RTP"), rtp_timeout=float(p.get("SS_RTP_TIMEOUT")),
                jitter_buffer=(p.get("SS_JITTERBUFFER_MODE"), p.get("SS_JITTERBUFFER_MIN"),
                               p.get("SS_JITTERBUFFER_MAX"), p.get("SS_JITTERBUFFER_DEFAULT")))
            self.engine.start()
            self.ng = NgServer(self.engine)
            media = MediaControl(self.ng)
            loop.add_reader(self.engine.event_fd, self._engine_events)
        timers = Timers(loop.time())
        first = self.config.listen[0]
        host = self.config.advertised_host()
        # the core needs its own address for Via/Contact before the sockets exist; port 0
        # (tests) is fixed up once bound
        local = {"udp": (host, first[1]), "tcp": (host, first[1])}
        self.core = B2BUA(timers, self.config, self.params, media, self.cdr, local=local,
                          wall_offset=time.time() - loop.time(), charging=self.charging,
                          router=self.services.gateways.router, phones=self.services.phones.lookup)
        self.services.gateways.listeners.append(self._routing_changed)
        self.transport = SipTransport(self.core, loop, tos=self.params.get("SS_QOS_SIGNAL"))
        for listen_host, port in self.config.listen:
            self.addresses.append(await self.transport.listen(listen_host, port))
        bound_port = self.addresses[0][1]
        self.core.local.update({"udp": (host, bound_port), "tcp": (host, bound_port)})
        self._tasks.append(loop.create_task(self._housekeeping()))
        self.core.start_probes()
        self.transport.flush()                   # arms the timer wake-up before any traffic
        self.monitor = SystemMonitor(self.core.alarms, disk_path=os.path.abspath(self.data_dir))
        self._tasks.append(loop.create_task(self.monitor.run()))
        if self.web_listen is not None:
            manager = os.path.join(os.path.dirname(__file__), "web", "manager")
            self.web_access = WebAccess(self.store, self.services.accounts.directory.require)
            self.web_access.load()
            api = build_api(self.services, self.logins, Operations(self),
                            manager if os.path.isdir(manager) else None, self.web_access)
            self.web = WebServer(api, *self.web_listen)
            self.web_address = await self.web.start()
        log.info("switch ready: SIP on %s; media %s", ", ".join(f"{h}:{p}" for h, p in self.addresses),
                 ", ".join(self.media_interfaces) if self.engine else "not proxied")

    def _first_login(self) -> None:
        """A fresh store gets one super admin login, ``admin``: its password is the one
        given, else a random one written to ``<data dir>/admin-password`` (mode 0600)."""
        if entities.find(self.store, "operators", limit=1):
            return
        password = self.admin_password
        if not password:
            password = secrets.token_urlsafe(12)
            path = os.path.join(self.data_dir, "admin-password")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(password + "\n")
            log.warning("created the Web login 'admin'; its password is in %s", path)
        self.logins.add("admin", password, role="super admin")

    def _open_services(self) -> Services:
        """Accounts, tariffs, gateways and funds from the store. What a configuration file
        names (rate tables, customers with their mapping gateway, vendors with their
        routing gateway) is created the first time, with its opening balance; from then
        on the store rules and operators change it through the services."""
        services = Services.open(self.store, self.params, self.cdr)
        for name, path in self.config.rate_tables.items():
            services.tariffs.bootstrap_table(name, path)
        for customer in self.config.customers:
            bootstrap_customer(services, customer)
        for vendor in self.config.vendors:
            bootstrap_vendor(services, vendor)
        for phone in self.config.phones:
            bootstrap_phone(services, phone, self.config.customers)
        return services

    def _routing_changed(self, table) -> None:
        # gateway addresses are the flood guard's trusted peers (a set swapped whole)
        self.core.guard.trusted = table.trusted_addresses()

    def _engine_events(self) -> None:
        try:
            events = self.engine.poll_events()
            ended = self.ng.handle_events(events)
            self.core.timers.advance(asyncio.get_running_loop().time())
            self.core.media_events(events)
            if ended:
                self.core.media_timed_out(ended)
        except Exception:
            log.exception("engine events failed")
        self.transport.flush()

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(NG_SWEEP_INTERVAL)
            try:
                if self.ng is not None:
                    self.ng.sweep()
            except Exception:
                log.exception("housekeeping failed")

    async def stop(self) -> None:
        if self.web is not None:
            await self.web.stop()
        for task in self._tasks:
            task.cancel()
        if self.core is not None:
            self.core.shutdown()
            if self.transport is not None:
                self.transport.flush()
                await asyncio.sleep(0.05)          # let the BYEs leave
                self.transport.close()
        if self.engine is not None:
            asyncio.get_running_loop().remove_reader(self.engine.event_fd)
            self.engine.close()
        if self.cdr is not None:
            self.cdr.close()
        if self.store is not None:
            self.store.close()
