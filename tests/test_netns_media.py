"""DSCP on the wire between two hosts: the media node in one network namespace, the call
parties and a packet capture in another, joined by a veth pair."""
import os
import subprocess
import sys
import textwrap
import uuid

import pytest

pytestmark = pytest.mark.netns

RELAY_IP, PEER_IP = "198.18.77.1", "198.18.77.2"

NODE = textwrap.dedent("""
    import sys
    from vosmedia.engine import MediaEngine
    peer_ip, a_port, b_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with MediaEngine(interfaces=[sys.argv[4]], port_min=30000, port_max=30099, tos=46) as eng:
        sid = eng.create_session()
        eng.set_remote(sid, 0, peer_ip, a_port)
        eng.set_remote(sid, 1, peer_ip, b_port)
        print(eng.local_endpoint(sid, 0)[1], eng.local_endpoint(sid, 1)[1], flush=True)
        sys.stdin.readline()
        print(eng.query(sid)["legs"][0]["rx"]["packets"], flush=True)
""")

PARTIES = textwrap.dedent("""
    import socket, struct, sys, time
    relay_ip, to_b, dev = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    cap = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
    cap.bind((dev, 0))
    cap.settimeout(3)
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("0.0.0.0", 40000))
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(("0.0.0.0", 40002))
    pkt = struct.pack("!BBHII", 0x80, 8, 1, 0, 0x42) + bytes(160)
    tos = []
    deadline = time.time() + 3
    while len(tos) < 3 and time.time() < deadline:
        a.sendto(pkt, (relay_ip, to_b))
        try:
            frame = cap.recv(65535)
        except socket.timeout:
            break
        ihl = (frame[0] & 15) * 4
        if frame[9] == 17 and struct.unpack_from("!H", frame, ihl + 2)[0] == 40002:
            tos.append(frame[1])
    print(" ".join("%02x" % t for t in tos), flush=True)
""")


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@pytest.fixture
def two_hosts():
    tag = uuid.uuid4().hex[:6]
    relay_ns, peer_ns = f"vmr{tag}", f"vmp{tag}"
    if ip("netns", "add", relay_ns, check=False).returncode:
        pytest.skip("network namespaces are not available (needs root)")
    try:
        ip("netns", "add", peer_ns)
        ip("link", "add", f"r{tag}", "netns", relay_ns, "type", "veth", "peer", "name", f"p{tag}",
           "netns", peer_ns)
        for ns, dev, addr in ((relay_ns, f"r{tag}", RELAY_IP), (peer_ns, f"p{tag}", PEER_IP)):
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield relay_ns, peer_ns, f"p{tag}"
    finally:
        ip("netns", "del", relay_ns, check=False)
        ip("netns", "del", peer_ns, check=False)


def test_relayed_rtp_carries_ef_between_namespaces(two_hosts):
    relay_ns, peer_ns, peer_dev = two_hosts
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    node = subprocess.Popen(["ip", "netns", "exec", relay_ns, sys.executable, "-c", NODE,
                             PEER_IP, "40000", "40002", RELAY_IP],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        to_b, _ = map(int, node.stdout.readline().split())
        seen = subprocess.run(["ip", "netns", "exec", peer_ns, sys.executable, "-c", PARTIES,
                               RELAY_IP, str(to_b), peer_dev],
                              capture_output=True, text=True, env=env, timeout=20)
        assert seen.returncode == 0, seen.stderr
        tos = seen.stdout.split()
        node.stdin.write("\n")
        node.stdin.flush()
        relayed = int(node.stdout.readline())
    finally:
        node.kill()
        node.wait()
    assert tos and set(tos) == {"b8"}, f"TOS bytes on the wire: {tos}"
    assert relayed >= len(tos)


MULTIHOMED = textwrap.dedent("""
    from vosmedia.engine import MediaEngine
    with MediaEngine(interfaces=["198.18.80.1", "198.18.81.1"], port_min=30000, port_max=30099) as eng:
        a, b = eng.address_toward("198.18.80.2"), eng.address_toward("198.18.81.2")
        sid = eng.create_session(local_address=(a, b))
        print(a, b, eng.local_endpoint(sid, 0)[0], eng.local_endpoint(sid, 1)[0])
""")


def test_multihomed_node_picks_the_address_toward_each_party():
    tag = uuid.uuid4().hex[:6]
    relay_ns, peer_ns = f"vmm{tag}", f"vmq{tag}"
    if ip("netns", "add", relay_ns, check=False).returncode:
        pytest.skip("network namespaces are not available (needs root)")
    try:
        ip("netns", "add", peer_ns)
        for n in (80, 81):
            ip("link", "add", f"m{n}{tag}", "netns", relay_ns, "type", "veth",
               "peer", "name", f"q{n}{tag}", "netns", peer_ns)
            for ns, dev, host in ((relay_ns, f"m{n}{tag}", 1), (peer_ns, f"q{n}{tag}", 2)):
                ip("-n", ns, "addr", "add", f"198.18.{n}.{host}/24", "dev", dev)
                ip("-n", ns, "link", "set", dev, "up")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        out = subprocess.run(["ip", "netns", "exec", relay_ns, sys.executable, "-c", MULTIHOMED],
                             capture_output=True, text=True, env=env, timeout=20)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["198.18.80.1", "198.18.81.1", "198.18.80.1", "198.18.81.1"]
    finally:
        ip("netns", "del", relay_ns, check=False)
        ip("netns", "del", peer_ns, check=False)
