"""asyncio UDP and TCP endpoints for the sans-I/O SIP core.

The adapter's whole job: hand each datagram (or each framed TCP message) to
``core.receive(data, flow)`` with the loop's clock applied to the core's timers, send what
the core put in its outbox, and wake up for the core's next timer. Nothing here knows SIP
beyond TCP framing.

A flow is ``(transport, (host, port), local)``; ``local`` is the ``(host, port)`` of our
listening socket, so replies leave from the port a request came to (operators tell
customers apart by port).
"""
from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter

from control import bpf
from control.sip.message import SipParseError, StreamFramer

log = logging.getLogger("vosmedia.transport")


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, hub: "SipTransport", local):
        self.hub = hub
        self.local = local
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.hub.deliver(data, ("udp", (addr[0], addr[1]), self.local))

    def error_received(self, exc: Exception) -> None:
        self.hub.stats["udp_errors"] += 1     # ICMP unreachable from a peer that went away


class _Tcp(asyncio.Protocol):
    def __init__(self, hub: "SipTransport", local, peer=None):
        self.hub = hub
        self.local = local
        self.peer = peer
        self.framer = StreamFramer()
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self.peer is None:
            peer = transport.get_extra_info("peername")
            self.peer = (peer[0], peer[1])
        self.hub.connections[self.peer] = self

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.framer.feed(data)
        except SipParseError:
            self.hub.stats["tcp_garbage"] += 1
            self.transport.close()           # the stream cannot be re-synchronised
            return
        flow = ("tcp", self.peer, self.local)
        for message in messages:
            self.hub.deliver(message, flow)

    def connection_lost(self, exc) -> None:
        if self.hub.connections.get(self.peer) is self:
            del self.hub.connections[self.peer]


class SipTransport:
    def __init__(self, core, loop: asyncio.AbstractEventLoop | None = None, tos: int = 0):
        self.core = core
        self.loop = loop or asyncio.get_event_loop()
        self.tos = tos
        self.udp: dict[tuple, _Udp] = {}
        self.servers: list = []
        self.connections: dict[tuple, _Tcp] = {}
        self._connecting: dict[tuple, list] = {}
        self._wakeup = None
        self._wakeup_at = None
        self._blocklist_version = 0
        self.stats: Counter = Counter()

    async def listen(self, host: str, port: int, tcp: bool = True) -> tuple[str, int]:
        """UDP (and TCP) on ``host:port``; returns the bound address. Port 0 picks one
        free for both: a UDP port whose TCP twin is taken is given back and another tried."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for attempt in range(20 if port == 0 else 1):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self._mark(sock, family)
            sock.bind((host, port))
            local = sock.getsockname()[:2]
            server = None
            if tcp:
                try:
                    server = await self.loop.create_server(lambda: _Tcp(self, local), host, local[1],
                                                           family=family, reuse_address=True)
                except OSError:
                    sock.close()
                    if port == 0 and attempt < 19:
                        continue
                    raise
            break
        transport, protocol = await self.loop.create_datagram_endpoint(lambda: _Udp(self, local), sock=sock)
        self.udp[local] = protocol
        if server is not None:
            for listener in server.sockets:
                self._mark(listener, family)
            self.servers.append(server)
        return local

    def _mark(self, sock: socket.socket, family: int) -> None:
        """DSCP for signalling (SS_QOS_SIGNAL; TOS byte = DSCP << 2)."""
        if not self.tos:
            return
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, self.tos << 2)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, self.tos << 2)

    # ------------------------------------------------------------------ core side

    def deliver(self, data: bytes, flow) -> None:
        core = self.core
        core.timers.advance(self.loop.time())
        core.receive(data, flow)
        self.flush()
        guard = getattr(core, "guard", None)
        if guard is not None and guard.version != self._blocklist_version:
            self._apply_blocklist(guard)

    def _apply_blocklist(self, guard) -> None:
        """Blocked sources are dropped by the kernel from now on (IPv4 UDP sockets)."""
        self._blocklist_version = guard.version
        blocked = list(guard.blocked(self.loop.time()))
        for endpoint in self.udp.values():
            sock = endpoint.transport.get_extra_info("socket")
            if sock is not None and sock.family == socket.AF_INET:
                try:
                    bpf.apply_blocklist(sock, blocked)
                except OSError as exc:
                    log.warning("cannot install the block list filter: %s", exc)
        self.stats["blocklist_updates"] += 1

    def flush(self) -> None:
        outbox = self.core.outbox
        if outbox:
            for data, flow in outbox:
                self._send(data, flow)
            outbox.clear()
        deadline = self.core.timers.next_deadline()
        if deadline is not None and (self._wakeup_at is None or deadline < self._wakeup_at):
            if self._wakeup is not None:
                self._wakeup.cancel()
            self._wakeup_at = deadline
            self._wakeup = self.loop.call_at(deadline, self._tick)

    def _tick(self) -> None:
        self._wakeup = self._wakeup_at = None
        try:
            self.core.timers.advance(self.loop.time())
        except Exception:
            log.exception("timer callback failed")
            self.stats["timer_errors"] += 1
        self.flush()

    def _send(self, data: bytes, flow) -> None:
        kind, addr, local = flow
        if kind == "udp":
            endpoint = self.udp.get(local) or next(iter(self.udp.values()))
            try:
                endpoint.transport.sendto(data, addr)
            except (OSError, ValueError) as exc:     # unresolvable or unreachable target
                self.stats["send_errors"] += 1
                log.debug("UDP send to %s failed: %s", addr, exc)
            return
        connection = self.connections.get(addr)
        if connection is not None and not connection.transport.is_closing():
            connection.transport.write(data)
            return
        queue = self._connecting.get(addr)
        if queue is not None:
            queue.append(data)
            return
        self._connecting[addr] = [data]
        self.loop.create_task(self._connect(addr, local))

    async def _connect(self, addr, local) -> None:
        try:
            transport, protocol = await asyncio.wait_for(
                self.loop.create_connection(lambda: _Tcp(self, local, addr), addr[0], addr[1]), 5.0)
        except (OSError, asyncio.TimeoutError) as exc:
            self.stats["connect_errors"] += 1
            log.info("TCP connection to %s failed: %s", addr, exc)
            self._connecting.pop(addr, None)
            return
        for data in self._connecting.pop(addr, []):
            transport.write(data)

    def close(self) -> None:
        if self._wakeup is not None:
            self._wakeup.cancel()
        for endpoint in self.udp.values():
            endpoint.transport.close()
        for server in self.servers:
            server.close()
        for connection in list(self.connections.values()):
            connection.transport.close()
