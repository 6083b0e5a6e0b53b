"""Classic BPF socket filters, assembled from a few instructions.

Used to shed a flooding source in the kernel: once the flood guard blocks an address, its
datagrams are dropped before they reach the SIP socket's queue, so they can no longer
crowd out other peers' messages. (``SO_ATTACH_FILTER`` needs no privileges.)
"""
from __future__ import annotations

import ctypes
import ipaddress
import socket
import struct

SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
SKF_NET_OFF = -0x100000           # loads relative to the network (IP) header

LD_W_ABS, LD_H_ABS, LD_B_ABS = 0x20, 0x28, 0x30
LDX_MSH, LD_H_IND = 0xB1, 0x48
JEQ, JGE, JGT, JSET, RET = 0x15, 0x35, 0x25, 0x45, 0x06
MAX_BLOCKED = 250                 # jump offsets are 8-bit: keep the program short


class Program:
    """Instructions with symbolic jump targets (labels), resolved by :meth:`assemble`."""

    def __init__(self):
        self.code: list[list] = []
        self.labels: dict[str, int] = {}

    def emit(self, code: int, k: int = 0, jt=0, jf=0) -> None:
        self.code.append([code, jt, jf, k & 0xFFFFFFFF])

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def assemble(self) -> list[tuple[int, int, int, int]]:
        out = []
        for pc, (code, jt, jf, k) in enumerate(self.code):
            jt = self.labels[jt] - pc - 1 if isinstance(jt, str) else jt
            jf = self.labels[jf] - pc - 1 if isinstance(jf, str) else jf
            out.append((code, jt, jf, k))
        return out


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def attach(sock: socket.socket, instructions: list[tuple[int, int, int, int]]) -> None:
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in instructions))
    fprog = _SockFprog(len(instructions), ctypes.addressof(code))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(fprog))


def detach(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
    except OSError:
        pass                       # no filter attached


def ipv4_blocklist(addresses) -> list[tuple[int, int, int, int]]:
    """Drop IPv4 datagrams whose source is one of ``addresses`` (at most MAX_BLOCKED)."""
    prog = Program()
    prog.emit(LD_W_ABS, SKF_NET_OFF + 12)          # source address
    for address in list(addresses)[:MAX_BLOCKED]:
        prog.emit(JEQ, int(ipaddress.IPv4Address(address)), "drop", 0)
    prog.emit(RET, 0x40000)
    prog.label("drop")
    prog.emit(RET, 0)
    return prog.assemble()


def apply_blocklist(sock: socket.socket, addresses) -> None:
    """Make ``sock`` (AF_INET) drop datagrams from ``addresses``; an empty list removes the filter."""
    v4 = sorted(a for a in addresses if ":" not in a)
    if not v4:
        detach(sock)
        return
    attach(sock, ipv4_blocklist(v4))
