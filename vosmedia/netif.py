"""Local addresses for the media engine.

Resolve a configured interface name or address to the address the engine binds, list the
host's addresses, and find the source address the kernel uses toward a peer — on a
multi-homed host the relay must announce (in SDP) and send from the address on the path
to that peer. Uses netlink through pyroute2; the route lookup falls back to a connected
UDP socket when netlink cannot be used. Pure Python; part of the engine package, so it
imports nothing from ``control``.
"""
from __future__ import annotations

import errno
import ipaddress
import os
import socket

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

_IP_VERSION = {socket.AF_INET: 4, socket.AF_INET6: 6}
_RTN_LOCAL = 2                      # route type of addresses that belong to this host
_IFA_F_DADFAILED = 0x08
_IFA_F_DEPRECATED = 0x20
_IFA_F_TENTATIVE = 0x40             # IPv6 duplicate address detection still running
_UNBINDABLE = _IFA_F_DADFAILED | _IFA_F_TENTATIVE
_DISCARD_PORT = 9                   # any port works: connecting a UDP socket sends nothing

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def interface_addresses() -> dict[str, list[str]]:
    """Every interface and the addresses the engine can bind on it (IPv4 first, kernel
    order; addresses still in or failed in duplicate address detection are left out)."""
    with IPRoute() as ipr:
        names = {link["index"]: link.get("IFLA_IFNAME") for link in ipr.get_links()}
        result: dict[str, list[str]] = {name: [] for name in names.values()}
        for msg in ipr.get_addr():
            if _bindable(msg) and msg["index"] in names:
                result[names[msg["index"]]].append(msg.get("IFA_ADDRESS"))
    return result


def resolve_interface(name_or_addr: str, family: int = socket.AF_INET) -> str:
    """The address to bind for a configured interface name or address.

    An IP literal is returned (normalised) if it belongs to this host, or if it is the
    wildcard ``0.0.0.0`` / ``::``. An interface name resolves to its first address of
    ``family`` (``AF_INET`` or ``AF_INET6``; for IPv6, global before link-local, and a
    link-local address carries ``%name``). Raises ValueError naming what was not found.
    """
    text = name_or_addr.strip()
    if not text:
        raise ValueError("empty interface name or address")
    if family not in _IP_VERSION:
        raise ValueError(f"family must be socket.AF_INET or socket.AF_INET6, got {family!r}")
    addr = _ip_literal(text)
    if addr is None:
        return _first_address(text, family)
    if addr.is_unspecified or _is_local(addr):
        return str(addr)
    raise ValueError(f"address {addr} is not configured on this host")


def local_address_for(peer_ip: str) -> str:
    """The local address the kernel would send from toward ``peer_ip``.

    Asks the routing table (what ``ip route get PEER`` prints as ``src``), so policy such as
    a route's preferred source is honoured; when netlink cannot be used, or the route names
    no source, a UDP socket connected to the peer gives the kernel's choice. Raises
    ValueError for something that is not a peer address and OSError when there is no
    route to it.
    """
    peer = _ip_literal(peer_ip.strip())
    if peer is None or peer.is_unspecified:
        raise ValueError(f"not a peer IP address: {peer_ip!r}")
    source = None if _has_scope(peer) else _route_source(peer)
    return source or _connect_source(peer)


def _ip_literal(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _has_scope(addr: IPAddress) -> bool:
    return isinstance(addr, ipaddress.IPv6Address) and addr.scope_id is not None


def _bindable(msg) -> bool:
    flags = msg.get("IFA_FLAGS") or msg["flags"]
    return not flags & _UNBINDABLE


def _first_address(name: str, family: int) -> str:
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=name)
        if not index:
            known = sorted(link.get("IFLA_IFNAME") for link in ipr.get_links())
            raise ValueError(f"unknown network interface {name!r} (this host has: {_some(known)})")
        usable = [m for m in ipr.get_addr(family=family, index=index[0]) if _bindable(m)]
    if not usable:
        raise ValueError(f"network interface {name!r} has no usable IPv{_IP_VERSION[family]} address")
    best = min(usable, key=_preference)          # min keeps kernel order among equals
    return _with_scope(best.get("IFA_ADDRESS"), name)


def _some(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _preference(msg) -> tuple[bool, bool]:
    """Sort key: addresses needing no scope first, then those not deprecated."""
    link_local = ipaddress.ip_address(msg.get("IFA_ADDRESS")).is_link_local
    deprecated = bool((msg.get("IFA_FLAGS") or msg["flags"]) & _IFA_F_DEPRECATED)
    return link_local, deprecated


def _with_scope(address: str, ifname: str) -> str:
    """IPv6 link-local addresses are only usable with their interface: ``fe80::1%eth0``."""
    addr = ipaddress.ip_address(address)
    if ifname and isinstance(addr, ipaddress.IPv6Address) and addr.is_link_local:
        return f"{addr}%{ifname}"
    return str(addr)


def _is_local(addr: IPAddress) -> bool:
    """True if ``addr`` belongs to this host (configured, or in a local route such as
    127.0.0.0/8), as the kernel's local routing table says."""
    plain = str(addr).split("%")[0]
    with IPRoute() as ipr:
        try:
            routes = list(ipr.route("get", dst=plain))
        except NetlinkError:
            return False
    return any(route["type"] == _RTN_LOCAL for route in routes)


def _route_source(peer: IPAddress) -> str | None:
    """RTA_PREFSRC of the route toward ``peer``; None when netlink cannot be used or the
    route names no source. A netlink error for the lookup itself means no route."""
    try:
        ipr = IPRoute()
    except OSError:
        return None
    with ipr:
        try:
            routes = list(ipr.route("get", dst=str(peer)))
        except NetlinkError as exc:
            raise OSError(exc.code, f"no route to {peer}: {os.strerror(exc.code)}") from exc
    for route in routes:
        source = route.get("RTA_PREFSRC")
        if source:
            return _with_scope(source, _ifname(route.get("RTA_OIF")))
    return None


def _ifname(index: int | None) -> str:
    try:
        return socket.if_indextoname(index) if index else ""
    except OSError:
        return ""


def _connect_source(peer: IPAddress) -> str:
    """Source address the kernel picks for a UDP socket connected to ``peer``."""
    family = socket.AF_INET6 if peer.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(_sockaddr(peer, family))
        except OSError as exc:
            if peer.version == 6 and peer.is_link_local and not _has_scope(peer):
                raise ValueError(f"link-local peer {peer} needs its interface, e.g. {peer}%eth0") from exc
            code = exc.errno or errno.ENETUNREACH
            raise OSError(code, f"no route to {peer}: {os.strerror(code)}") from exc
        local = sock.getsockname()
    scope = local[3] if family == socket.AF_INET6 else None
    return _with_scope(local[0], _ifname(scope))


def _sockaddr(peer: IPAddress, family: int) -> tuple:
    """A socket address for ``peer``; getaddrinfo turns a scope like ``%eth0`` into its index."""
    try:
        return socket.getaddrinfo(str(peer), _DISCARD_PORT, family, socket.SOCK_DGRAM)[0][4]
    except socket.gaierror as exc:
        raise ValueError(f"not a usable peer address: {peer}") from exc
