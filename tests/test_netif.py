"""Local address resolution against the real kernel (netlink), including a multi-homed
host built from network namespaces."""
import json
import os
import secrets
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vosmedia import netif

ROOT = Path(__file__).resolve().parent.parent


# --- this host -----------------------------------------------------------------------

def test_loopback_name_resolves_to_127_0_0_1():
    assert netif.resolve_interface("lo") == "127.0.0.1"
    assert netif.resolve_interface(" lo ", socket.AF_INET) == "127.0.0.1"


def test_loopback_ipv6():
    if "::1" not in netif.interface_addresses().get("lo", []):
        pytest.skip("IPv6 is disabled on lo")
    assert netif.resolve_interface("lo", socket.AF_INET6) == "::1"


def test_interface_addresses_lists_loopback():
    table = netif.interface_addresses()
    assert "127.0.0.1" in table["lo"]
    assert all(isinstance(a, str) for addresses in table.values() for a in addresses)


def test_literal_addresses():
    assert netif.resolve_interface("127.0.0.1") == "127.0.0.1"
    assert netif.resolve_interface("127.0.0.9") == "127.0.0.9"     # all of 127/8 is local
    assert netif.resolve_interface("0.0.0.0") == "0.0.0.0"
    assert netif.resolve_interface("::") == "::"
    assert netif.resolve_interface("0:0::0") == "::"


def test_every_listed_address_resolves_to_itself():
    for addresses in netif.interface_addresses().values():
        for address in addresses:
            assert netif.resolve_interface(address) == address


def test_address_not_on_this_host():
    with pytest.raises(ValueError, match=r"address 198\.51\.100\.77 is not configured on this host"):
        netif.resolve_interface("198.51.100.77")


def test_unknown_interface_is_named():
    with pytest.raises(ValueError, match=r"unknown network interface 'nosuchif0' \(this host has: .*\blo\b"):
        netif.resolve_interface("nosuchif0")


def test_bad_arguments():
    with pytest.raises(ValueError, match="empty"):
        netif.resolve_interface("  ")
    with pytest.raises(ValueError, match="family"):
        netif.resolve_interface("lo", socket.AF_UNIX)
    with pytest.raises(ValueError, match="not a peer IP address: 'lo'"):
        netif.local_address_for("lo")
    with pytest.raises(ValueError, match="not a peer IP address"):
        netif.local_address_for("0.0.0.0")


def test_local_address_toward_loopback_peer():
    assert netif.local_address_for("127.0.0.5") == "127.0.0.1"
    assert netif.local_address_for("127.0.0.1") == "127.0.0.1"


def test_without_netlink_falls_back_to_connected_socket(monkeypatch):
    def no_netlink():
        raise PermissionError(1, "netlink sockets are not permitted here")
    monkeypatch.setattr(netif, "IPRoute", no_netlink)
    assert netif.local_address_for("127.0.0.5") == "127.0.0.1"


# --- a multi-homed host in network namespaces ----------------------------------------

def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")


@pytest.fixture(scope="module")
def multihomed():
    """Namespace ``host`` with two links into namespace ``peers``:

    ``va`` 10.77.1.1/24, fd77:1::1/64  <->  ``pa`` 10.77.1.2, fd77:1::2
    ``vb`` 10.77.2.1/24 (+ 10.77.2.50), fd77:2::1/64  <->  ``pb`` 10.77.2.2, fd77:2::2

    ``host`` routes: default via 10.77.1.2; 198.51.100.0/24 via 10.77.2.2;
    192.0.2.128/25 via 10.77.2.2 with preferred source 10.77.2.50. ``host`` also has
    link-local fe80::77:2 on ``vb``, ``ll0`` (to ``ll1`` in ``peers``) with only
    fe80::77:3, and ``tt0`` (down) with 10.77.9.1 and the tentative fd77:9::1.
    """
    tag = f"{os.getpid()}-{secrets.token_hex(3)}"
    host, peers = f"vmtest-host-{tag}", f"vmtest-peers-{tag}"
    try:
        _ip("netns", "add", host)
    except OSError as exc:
        pytest.skip(f"cannot create a network namespace (needs root and iproute2): {exc}")
    created = [host]
    try:
        _ip("netns", "add", peers)
        created.append(peers)
        _build_links(host, peers)
        yield host, peers
    finally:
        for name in created:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _build_links(host: str, peers: str) -> None:
    for ns in (host, peers):
        _ip("-n", ns, "link", "set", "lo", "up")
    for mine, theirs, net in (("va", "pa", 1), ("vb", "pb", 2)):
        _ip("-n", host, "link", "add", mine, "type", "veth", "peer", "name", theirs, "netns", peers)
        _ip("-n", host, "addr", "add", f"10.77.{net}.1/24", "dev", mine)
        _ip("-n", host, "addr", "add", f"fd77:{net}::1/64", "dev", mine, "nodad")
        _ip("-n", peers, "addr", "add", f"10.77.{net}.2/24", "dev", theirs)
        _ip("-n", peers, "addr", "add", f"fd77:{net}::2/64", "dev", theirs, "nodad")
        _ip("-n", host, "link", "set", mine, "up")
        _ip("-n", peers, "link", "set", theirs, "up")
    _ip("-n", host, "addr", "add", "10.77.2.50/24", "dev", "vb")
    # Link-local addresses that are usable at once (no duplicate address detection):
    # one on vb beside its global address, one on ll0 which has no other address.
    _ip("-n", host, "addr", "add", "fe80::77:2/64", "dev", "vb", "nodad")
    _ip("-n", host, "link", "add", "ll0", "type", "veth", "peer", "name", "ll1", "netns", peers)
    _ip("-n", host, "link", "set", "ll0", "addrgenmode", "none")
    _ip("-n", host, "addr", "add", "fe80::77:3/64", "dev", "ll0", "nodad")
    _ip("-n", host, "link", "set", "ll0", "up")
    _ip("-n", peers, "link", "set", "ll1", "up")
    # A link left down: its IPv6 address stays tentative (not bindable), IPv4 is usable.
    _ip("-n", host, "link", "add", "tt0", "type", "veth", "peer", "name", "tt1")
    _ip("-n", host, "addr", "add", "10.77.9.1/24", "dev", "tt0")
    _ip("-n", host, "addr", "add", "fd77:9::1/64", "dev", "tt0")
    _ip("-n", host, "route", "add", "default", "via", "10.77.1.2")
    _ip("-n", host, "route", "add", "198.51.100.0/24", "via", "10.77.2.2")
    _ip("-n", host, "route", "add", "192.0.2.128/25", "via", "10.77.2.2", "src", "10.77.2.50")


PEERS = ["10.77.1.2", "10.77.2.2", "198.51.100.7", "203.0.113.9", "192.0.2.200",
         "fd77:1::2", "fd77:2::2"]
EXPECTED_SOURCE = {
    "10.77.1.2": "10.77.1.1",        # on-link, first subnet
    "10.77.2.2": "10.77.2.1",        # on-link, second subnet
    "198.51.100.7": "10.77.2.1",     # routed via the second subnet
    "203.0.113.9": "10.77.1.1",      # default route, first subnet
    "192.0.2.200": "10.77.2.50",     # route with an explicit preferred source
    "fd77:1::2": "fd77:1::1",
    "fd77:2::2": "fd77:2::1",
}

PROBE = textwrap.dedent("""
    import json, socket, sys
    from vosmedia import netif

    def attempt(function, *args):
        try:
            return function(*args)
        except (ValueError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"

    def refuse(*args):
        raise AssertionError("the connected-socket fallback was used")

    peers = json.loads(sys.argv[1])
    connect_source, netif._connect_source = netif._connect_source, refuse
    route = {p: attempt(netif.local_address_for, p) for p in peers}
    netif._connect_source = connect_source
    out = {"route": route,
           "va": attempt(netif.resolve_interface, "va"),
           "vb": attempt(netif.resolve_interface, "vb"),
           "vb6": attempt(netif.resolve_interface, "vb", socket.AF_INET6),
           "ll0": attempt(netif.resolve_interface, "ll0", socket.AF_INET6),
           "ll0_v4": attempt(netif.resolve_interface, "ll0"),
           "link_local": attempt(netif.resolve_interface, "fe80::77:2"),
           "tentative": attempt(netif.resolve_interface, "tt0", socket.AF_INET6),
           "secondary": attempt(netif.resolve_interface, "10.77.2.50"),
           "foreign": attempt(netif.resolve_interface, "10.77.3.1"),
           "unreachable": attempt(netif.local_address_for, "203.0.113.9"),
           "table": netif.interface_addresses()}

    def no_netlink():
        raise PermissionError(1, "netlink sockets are not permitted here")
    netif.IPRoute = no_netlink
    out["fallback"] = {p: attempt(netif.local_address_for, p) for p in peers}
    out["fallback_unreachable"] = attempt(netif.local_address_for, "203.0.113.9")
    print(json.dumps(out))
""")


def _probe(namespace: str, peers: list[str]) -> dict:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", PROBE, json.dumps(peers)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.netns
def test_source_address_follows_the_route(multihomed):
    host, _ = multihomed
    result = _probe(host, PEERS)
    assert result["route"] == EXPECTED_SOURCE
    assert result["unreachable"] == "10.77.1.1"


@pytest.mark.netns
def test_connected_socket_fallback_agrees(multihomed):
    host, _ = multihomed
    assert _probe(host, PEERS)["fallback"] == EXPECTED_SOURCE


@pytest.mark.netns
def test_interfaces_in_namespace(multihomed):
    host, _ = multihomed
    result = _probe(host, [])
    assert result["va"] == "10.77.1.1"
    assert result["vb"] == "10.77.2.1"
    assert result["vb6"] == "fd77:2::1"           # global before link-local
    assert result["secondary"] == "10.77.2.50"
    assert result["ll0"] == "fe80::77:3%ll0"      # link-local only: usable with its scope
    assert result["ll0_v4"] == "ValueError: network interface 'll0' has no usable IPv4 address"
    assert result["link_local"] == "fe80::77:2"
    assert "fe80::77:2" in result["table"]["vb"]
    assert result["table"]["tt0"] == ["10.77.9.1"]
    assert result["tentative"] == "ValueError: network interface 'tt0' has no usable IPv6 address"
    assert result["foreign"] == "ValueError: address 10.77.3.1 is not configured on this host"
    assert result["table"]["vb"][:2] == ["10.77.2.1", "10.77.2.50"]
    assert "fd77:2::1" in result["table"]["vb"]
    assert result["table"]["lo"][0] == "127.0.0.1"


@pytest.mark.netns
def test_no_route_is_an_os_error(multihomed):
    _, peers = multihomed                          # the peer namespace has no default route
    result = _probe(peers, ["10.77.1.1"])
    assert result["route"] == {"10.77.1.1": "10.77.1.2"}
    assert result["fallback"] == {"10.77.1.1": "10.77.1.2"}
    for outcome in (result["unreachable"], result["fallback_unreachable"]):
        assert outcome == "OSError: [Errno 101] no route to 203.0.113.9: Network is unreachable"
    assert result["va"].startswith("ValueError: unknown network interface 'va'")
