"""Small RTP/RTCP helpers for tests: build packets, open UDP endpoints, receive with a deadline."""
from __future__ import annotations

import socket
import struct
import time


def rtp(seq: int, ts: int, ssrc: int = 0x11223344, pt: int = 8, payload: bytes = bytes(160),
        marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF,
                       ts & 0xFFFFFFFF, ssrc) + payload


def seq_of(packet: bytes) -> int:
    return struct.unpack_from("!H", packet, 2)[0]


def rtcp_sr(ssrc: int, ntp_sec: int, ntp_frac: int, reports=()) -> bytes:
    """Sender report with optional report blocks (ssrc, fraction, cum_lost, jitter, lsr, dlsr)."""
    body = struct.pack("!IIIIII", ssrc, ntp_sec, ntp_frac, 0, 10, 1600)
    for block in reports:
        body += _report_block(*block)
    return struct.pack("!BBH", 0x80 | len(reports), 200, (4 + len(body)) // 4 - 1) + body


def rtcp_rr(ssrc: int, reports=()) -> bytes:
    body = struct.pack("!I", ssrc)
    for block in reports:
        body += _report_block(*block)
    return struct.pack("!BBH", 0x80 | len(reports), 201, (4 + len(body)) // 4 - 1) + body


def _report_block(ssrc, fraction, cum_lost, jitter, lsr, dlsr) -> bytes:
    return struct.pack("!IB", ssrc, fraction) + (cum_lost & 0xFFFFFF).to_bytes(3, "big") + \
        struct.pack("!IIII", 0, jitter, lsr, dlsr)


class Peer:
    """A UDP endpoint playing one call party (RTP port and RTP+1 for RTCP)."""

    def __init__(self, host: str = "127.0.0.1", rtp_port: int = 0):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.rtp = socket.socket(family, socket.SOCK_DGRAM)
        self.rtp.bind((host, rtp_port))
        self.port = self.rtp.getsockname()[1]
        self.rtcp = socket.socket(family, socket.SOCK_DGRAM)
        self.rtcp.bind((host, self.port + 1))
        self.host = host

    @classmethod
    def pair(cls, host: str = "127.0.0.1") -> "Peer":
        """A peer whose RTP port is even and RTCP port free (retries until both bind)."""
        for _ in range(200):
            probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
            probe.bind((host, 0))
            port = probe.getsockname()[1] & ~1
            probe.close()
            try:
                return cls(host, port)
            except OSError:
                continue
        raise RuntimeError("no free port pair")

    def recv_all(self, sock: socket.socket, count: int, timeout: float = 2.0) -> list[bytes]:
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                got.append(sock.recvfrom(4096)[0])
            except socket.timeout:
                break
        return got

    def drain(self, sock: socket.socket, quiet: float = 0.2) -> list[bytes]:
        return self.recv_all(sock, 1 << 30, quiet)

    def close(self) -> None:
        self.rtp.close()
        self.rtcp.close()


def wait_for(predicate, timeout: float = 2.0, step: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def connect(engine, a: Peer, b: Peer, **session_options) -> int:
    """A new engine session between two peers whose SDP addresses are known."""
    sid = engine.create_session(**session_options)
    engine.set_remote(sid, 0, a.host, a.port)
    engine.set_remote(sid, 1, b.host, b.port)
    return sid
