r"""Kamailio's stock rtpengine module drives the vosmedia media node, end to end.

Processes, all on 127.0.0.1 with ports chosen free for this run:

    sipp UAC --SIP--> Kamailio (tm + rr + rtpengine) --SIP--> sipp UAS (-rtp_echo)
        \                    | NG offer/answer/delete               /
         `--- RTP ---> vosmedia media (relay ports 62800-62999) <--'

Kamailio runs ``tests/kamailio/rtpengine-proxy.cfg``: ``rtpengine_offer()`` on the INVITE,
``rtpengine_answer()`` on the 200 OK, ``rtpengine_delete()`` on the BYE, with the media
node as its only ``rtpengine_sock``. The UAC (``tests/kamailio/uac-pcap.xml``) plays the
G.711 A-law pcap that ships with sip-tester; the UAS (``tests/kamailio/uas-echo.xml``)
echoes every packet back, so media flows both ways through the relay.

Checked: the call completes; the SDP each party received points at the relay (127.0.0.1,
a port in the node's range); the node's own ``query`` before the BYE shows RTP both ways
between the right endpoints; a packet capture on ``lo`` independently sees the four RTP
flows through the relay ports; every NG exchange was answered ``ok``; after the BYE the
node lists no call. Needs root (sipp plays the pcap through a raw socket, the capture
uses a packet socket) and the Debian packages ``kamailio`` and ``sip-tester``, which
``scripts/setup.sh`` installs.
"""
from __future__ import annotations

import csv
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from control import bpf
from vosmedia import bencode

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = Path(__file__).resolve().parent / "kamailio"
PCAP = Path("/usr/share/sip-tester/g711a.pcap")     # shipped by the sip-tester package
RELAY_MIN, RELAY_MAX = 62800, 62999                 # reserved for this test
CALL_SECONDS = 3                                    # media time between ACK and BYE
MIN_NODE_PACKETS = 30                               # per direction, counted by the node (~100 sent)
MIN_CAPTURED_PACKETS = 10                           # per flow, seen on the wire


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found is None:
        for folder in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
            if os.access(os.path.join(folder, name), os.X_OK):
                return os.path.join(folder, name)
    return found


KAMAILIO = _binary("kamailio")
SIPP = _binary("sipp")

pytestmark = pytest.mark.skipif(
    KAMAILIO is None or SIPP is None,
    reason="needs the kamailio and sipp binaries (Debian packages kamailio and sip-tester; "
           "scripts/setup.sh installs them)")


# ------------------------------------------------------------------ ports and files

class Ports:
    """Free UDP ports for this run, none handed out twice and none in the relay range."""

    def __init__(self):
        self.taken: set[int] = set()

    def _usable(self, port: int) -> bool:
        return port not in self.taken and not RELAY_MIN <= port <= RELAY_MAX and port != 5060

    def one(self) -> int:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if self._usable(port):
                self.taken.add(port)
                return port
        raise RuntimeError("no free UDP port")

    def media(self) -> int:
        """An RTP port P with P..P+3 free (sipp binds P and P+2, RTCP would use P+1)."""
        for _ in range(200):
            base = random.randrange(40000, 60000) & ~3
            block = range(base, base + 4)
            if not all(self._usable(p) for p in block):
                continue
            socks = []
            try:
                for p in block:
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    socks.append(s)
                    s.bind(("127.0.0.1", p))
            except OSError:
                continue
            finally:
                for s in socks:
                    s.close()
            self.taken.update(block)
            return base
        raise RuntimeError("no free block of 4 UDP ports")


def render(template: Path, target: Path, **values) -> Path:
    """Copy ``template`` to ``target`` with every ``%%NAME%%`` replaced by ``values[NAME]``."""
    text = template.read_text()
    for name, value in values.items():
        text = text.replace(f"%%{name}%%", str(value))
    left = re.findall(r"%%\w+%%", text)
    assert not left, f"{template.name}: no value given for {left}"
    target.write_text(text)
    return target


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(missing)"


# ------------------------------------------------------------------ processes

class Processes:
    """Started processes, each in its own session; ``stop_all`` ends what is still running."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], cwd: Path) -> subprocess.Popen:
        out = open(self.folder / f"{name}.out", "wb")
        err = open(self.folder / f"{name}.err", "wb")
        try:
            proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)
        finally:
            out.close()
            err.close()
        self.procs[name] = proc
        return proc

    def out(self, name: str) -> Path:
        return self.folder / f"{name}.out"

    def err(self, name: str) -> Path:
        return self.folder / f"{name}.err"

    def stop(self, name: str, timeout: float = 10) -> int | None:
        proc = self.procs[name]
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)     # Kamailio's children share its group
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(5)
        try:
            os.killpg(proc.pid, signal.SIGKILL)         # anything of its group left behind
        except (ProcessLookupError, PermissionError):
            pass
        return proc.returncode

    def stop_all(self):
        for name in reversed(list(self.procs)):
            try:
                self.stop(name)
            except Exception:                           # keep going: end every process
                pass

    def report(self) -> str:
        parts = []
        for name, proc in self.procs.items():
            parts.append(f"--- {name} (exit {proc.poll()}) {' '.join(map(str, proc.args))}\n"
                         f"stdout:\n{tail(self.out(name), 15)}\nstderr:\n{tail(self.err(name))}")
        return "\n".join(parts)


# ------------------------------------------------------------------ NG client

class Ng:
    def __init__(self, port: int):
        self.address = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.serial = 0

    def call(self, message: dict, timeout: float = 2.0) -> dict | None:
        self.serial += 1
        cookie = b"kt%d_%d" % (os.getpid(), self.serial)
        self.sock.settimeout(timeout)
        self.sock.sendto(cookie + b" " + bencode.encode(message), self.address)
        deadline = time.monotonic() + timeout
        while True:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            head, _, body = data.partition(b" ")
            if head == cookie:
                return bencode.decode(body, str_keys=True)
            if time.monotonic() > deadline:            # a late reply to an earlier request
                return None

    def close(self):
        self.sock.close()


def wait_for_node(ng: Ng, node: subprocess.Popen, procs: Processes, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.poll() is not None:
            raise AssertionError(f"media node exited early\n{procs.report()}")
        reply = ng.call({"command": "ping"}, timeout=0.3)
        if reply is not None and reply.get("result") == b"pong":
            return
    raise AssertionError(f"media node did not answer NG ping within {timeout} s\n{procs.report()}")


# ------------------------------------------------------------------ SIP readiness probes

def wait_for_kamailio(sip_port: int, kam: subprocess.Popen, procs: Processes, timeout: float = 30):
    """OPTIONS to the proxy itself until it answers 200 (the config answers it)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    own = probe.getsockname()[1]
    deadline = time.monotonic() + timeout
    n = 0
    try:
        while time.monotonic() < deadline:
            if kam.poll() is not None:
                raise AssertionError(f"kamailio exited early\n{procs.report()}")
            n += 1
            request = (f"OPTIONS sip:127.0.0.1:{sip_port} SIP/2.0\r\n"
                       f"Via: SIP/2.0/UDP 127.0.0.1:{own};rport;branch=z9hG4bK-probe{os.getpid()}x{n}\r\n"
                       f"From: <sip:probe@127.0.0.1:{own}>;tag=probe{n}\r\n"
                       f"To: <sip:127.0.0.1:{sip_port}>\r\nCall-ID: probe-{os.getpid()}-{n}@127.0.0.1\r\n"
                       f"CSeq: {n} OPTIONS\r\nMax-Forwards: 5\r\nContent-Length: 0\r\n\r\n")
            probe.sendto(request.encode(), ("127.0.0.1", sip_port))
            probe.settimeout(0.3)
            try:
                if probe.recv(65536).startswith(b"SIP/2.0 200"):
                    return
            except (socket.timeout, ConnectionRefusedError):
                continue
        raise AssertionError(f"kamailio did not answer OPTIONS within {timeout} s\n{procs.report()}")
    finally:
        probe.close()


def udp_bound(port: int) -> bool:
    """Whether some socket holds UDP ``port`` on 127.0.0.1 or the wildcard (/proc/net/udp)."""
    wanted = {f"0100007F:{port:04X}", f"00000000:{port:04X}"}
    with open("/proc/net/udp") as table:
        return any(line.split()[1] in wanted for line in table.readlines()[1:])


def wait_until_bound(port: int, proc: subprocess.Popen, procs: Processes, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited early\n{procs.report()}")
        if udp_bound(port):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing bound UDP port {port} within {timeout} s\n{procs.report()}")


# ------------------------------------------------------------------ capture on lo



def _bpf_udp_ports(ng_port: int, low: int, high: int) -> list[tuple[int, int, int, int]]:
    """Classic BPF over the IPv4 header: accept UDP (first fragments) whose source or
    destination port is ``ng_port`` or in ``low..high``, so the capture ignores whatever
    else runs on lo."""
    prog = bpf.Program()
    prog.emit(bpf.LD_B_ABS, 9)                              # IP protocol
    prog.emit(bpf.JEQ, 17, 0, "drop")
    prog.emit(bpf.LD_H_ABS, 6)                              # flags + fragment offset
    prog.emit(bpf.JSET, 0x1FFF, "drop", 0)
    prog.emit(bpf.LDX_MSH, 0)                               # X = IP header length
    for offset, next_label in ((0, "dst"), (2, "drop")):
        if offset == 2:
            prog.label("dst")
        prog.emit(bpf.LD_H_IND, offset)                     # UDP source / destination port
        prog.emit(bpf.JEQ, ng_port, "accept", 0)
        prog.emit(bpf.JGE, low, 0, next_label)
        prog.emit(bpf.JGT, high, next_label, "accept")
    prog.label("drop")
    prog.emit(bpf.RET, 0)
    prog.label("accept")
    prog.emit(bpf.RET, 0xFFFF)
    return prog.assemble()


class LoCapture:
    """Records UDP datagrams on lo to or from the NG port or the relay port range."""

    def __init__(self, ng_port: int):
        self.ng_port = ng_port
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
        bpf.attach(self.sock, _bpf_udp_ports(ng_port, RELAY_MIN, RELAY_MAX))
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)   # SO_RCVBUFFORCE (root)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.1)
        self.packets: list[tuple[int, int, bytes]] = []     # (source port, destination port, payload)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data, address = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if address[2] == socket.PACKET_OUTGOING or len(data) < 20 or data[9] != 17:
                continue
            ihl = (data[0] & 15) * 4
            source, destination = struct.unpack_from("!HH", data, ihl)
            if self.ng_port in (source, destination) or \
                    RELAY_MIN <= source <= RELAY_MAX or RELAY_MIN <= destination <= RELAY_MAX:
                self.packets.append((source, destination, bytes(data[ihl + 8:])))

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def flows(self) -> Counter:
        return Counter((s, d) for s, d, _ in self.packets if self.ng_port not in (s, d))

    def ng_exchanges(self) -> list[tuple[str, bytes]]:
        """NG datagrams in order: ('request', data) toward the node, ('reply', data) from it."""
        return [("reply" if s == self.ng_port else "request", p)
                for s, d, p in self.packets if self.ng_port in (s, d)]


def decode_ng(datagram: bytes) -> tuple[bytes, object]:
    cookie, _, body = datagram.partition(b" ")
    try:
        return cookie, bencode.decode(body, str_keys=True)
    except Exception as exc:                        # shown as is in the failure message
        return cookie, f"undecodable ({exc}): {body[:300]!r}"


def show_ng(exchanges: list[tuple[str, bytes]]) -> str:
    lines = []
    for kind, datagram in exchanges:
        cookie, message = decode_ng(datagram)
        lines.append(f"{kind} {cookie.decode(errors='replace')}: {message!r}"[:2000])
    return "\n".join(lines) or "(none captured)"


# ------------------------------------------------------------------ sipp output

def sipp_log_values(path: Path, kind: str) -> dict[str, str]:
    """The ``KIND c=... m=... call-id=...`` line a scenario's <log> action wrote."""
    text = path.read_text(errors="replace") if path.exists() else ""
    found = re.search(rf"^{kind} c=(\S*) m=(\S*) call-id=(\S*)", text, re.M)
    assert found, f"no {kind} line in {path.name}:\n{text[-2000:]}"
    return {"c": found[1], "m": found[2], "call-id": found[3]}


def sipp_final_stats(path: Path) -> dict[str, str]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    assert len(rows) >= 2, f"empty sipp statistics file {path}"
    return dict(zip(rows[0], rows[-1]))


def rtp_stream(tag: dict) -> dict:
    """The RTP stream of a tag's single audio media in an NG query reply."""
    medias = tag["medias"]
    assert len(medias) == 1, medias
    streams = [s for s in medias[0]["streams"] if b"RTP" in s["flags"]]
    assert len(streams) == 1, medias[0]["streams"]
    return streams[0]


# ------------------------------------------------------------------ the test

def test_kamailio_rtpengine_module_drives_media_node(tmp_path):
    assert os.geteuid() == 0, ("needs root: sipp plays the pcap through a raw socket and the test "
                               "captures on lo with a packet socket (CI runs as root)")
    assert PCAP.exists(), f"{PCAP} missing: the sip-tester package ships it"
    ports = Ports()
    ng_port, sip_port, uas_port, uac_port, uas_cp, uac_cp = (ports.one() for _ in range(6))
    uas_media, uac_media = ports.media(), ports.media()
    assert 5060 not in (sip_port, uas_port, uac_port)

    kam_dir = tmp_path / "kamailio"
    kam_dir.mkdir()
    cfg = render(CONFIGS / "rtpengine-proxy.cfg", kam_dir / "kamailio.cfg",
                 SIP_PORT=sip_port, NG_PORT=ng_port, UAS_PORT=uas_port)
    uac_xml = render(CONFIGS / "uac-pcap.xml", tmp_path / "uac-pcap.xml", PCAP=PCAP)
    uas_xml = render(CONFIGS / "uas-echo.xml", tmp_path / "uas-echo.xml")

    procs = Processes(tmp_path)
    ng = Ng(ng_port)
    capture = None
    try:
        node = procs.start("node", [sys.executable, "-m", "control.cli", "media",
                                    "--listen-ng", f"127.0.0.1:{ng_port}", "--interface", "127.0.0.1",
                                    "--port-min", str(RELAY_MIN), "--port-max", str(RELAY_MAX)], cwd=ROOT)
        wait_for_node(ng, node, procs)

        kam = procs.start("kamailio", [KAMAILIO, "-f", str(cfg), "-DD", "-E", "-w", str(kam_dir),
                                       "-P", str(kam_dir / "kamailio.pid"), "-Y", str(kam_dir),
                                       "-m", "32", "-M", "4"], cwd=kam_dir)
        wait_for_kamailio(sip_port, kam, procs)
        listening = procs.out("kamailio").read_text()
        assert re.findall(r"udp: \S+ \[[^]]*\]:(\d+)", listening) == [str(sip_port)], listening

        capture = LoCapture(ng_port)

        uas = procs.start("uas", [SIPP, "-sf", str(uas_xml), "-i", "127.0.0.1", "-p", str(uas_port),
                                  "-mi", "127.0.0.1", "-mp", str(uas_media), "-rtp_echo",
                                  "-cp", str(uas_cp), "-m", "1", "-nostdin",
                                  "-timeout", "40s", "-timeout_error",
                                  "-trace_logs", "-log_file", str(tmp_path / "uas.log"),
                                  "-trace_msg", "-message_file", str(tmp_path / "uas.msg")], cwd=tmp_path)
        wait_until_bound(uas_port, uas, procs)

        uac = procs.start("uac", [SIPP, f"127.0.0.1:{sip_port}", "-sf", str(uac_xml), "-s", "callee",
                                  "-i", "127.0.0.1", "-p", str(uac_port),
                                  "-mi", "127.0.0.1", "-mp", str(uac_media), "-cp", str(uac_cp),
                                  "-m", "1", "-d", str(CALL_SECONDS * 1000), "-nostdin",
                                  "-timeout", "30s", "-timeout_error",
                                  "-trace_logs", "-log_file", str(tmp_path / "uac.log"),
                                  "-trace_msg", "-message_file", str(tmp_path / "uac.msg"),
                                  "-trace_stat", "-stf", str(tmp_path / "uac.csv")], cwd=tmp_path)

        # While the call runs, ask the node about it; keep the last answer before the BYE.
        seen_calls: set[bytes] = set()
        last_query: dict | None = None
        deadline = time.monotonic() + 40
        while uac.poll() is None and time.monotonic() < deadline:
            listed = ng.call({"command": "list"}, timeout=0.5)
            for call_id in (listed or {}).get("calls", []):
                seen_calls.add(call_id)
                reply = ng.call({"command": "query", "call-id": call_id}, timeout=0.5)
                if reply is not None and reply.get("result") == b"ok":
                    last_query = reply
            time.sleep(0.1)
        try:
            uac.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        if uac.returncode == 0:                     # the UAS ends after the BYE it answered
            try:
                uas.wait(10)
            except subprocess.TimeoutExpired:
                pass
        after_bye = None
        settle = time.monotonic() + 3
        while node.poll() is None and time.monotonic() < settle:
            after_bye = ng.call({"command": "list"}, timeout=0.5)
            if after_bye is not None and after_bye.get("calls") == []:
                break
            time.sleep(0.1)
        time.sleep(0.2)                             # let the capture drain
        capture.stop()

        diagnostics = (f"\nNG exchanges on the wire:\n{show_ng(capture.ng_exchanges())}\n"
                       f"RTP flows through the relay: {dict(capture.flows())}\n"
                       f"UAC messages:\n{tail(tmp_path / 'uac.msg', 60)}\n{procs.report()}")

        # --- the call completed through Kamailio
        assert uac.returncode == 0, f"sipp UAC exit code {uac.returncode}" + diagnostics
        stats = sipp_final_stats(tmp_path / "uac.csv")
        assert (stats["SuccessfulCall(C)"], stats["FailedCall(C)"]) == ("1", "0"), str(stats) + diagnostics
        assert uas.returncode == 0, f"sipp UAS exit code {uas.returncode}" + diagnostics
        kam_log = procs.err("kamailio").read_text(errors="replace")
        assert "rtpengine instance <udp:127.0.0.1:%d> found" % ng_port in kam_log, diagnostics
        assert "MEDIA: offer anchored" in kam_log and "deleted at the media node" in kam_log, diagnostics
        errors = [line for line in kam_log.splitlines() if "ERROR" in line]
        assert not errors, "kamailio logged errors:\n" + "\n".join(errors) + diagnostics

        # --- each party was told to send to the relay
        offer = sipp_log_values(tmp_path / "uas.log", "OFFER")     # what the UAS received
        answer = sipp_log_values(tmp_path / "uac.log", "ANSWER")   # what the UAC received
        call_id = offer["call-id"]
        assert answer["call-id"] == call_id
        for seen, own in ((offer, uac_media), (answer, uas_media)):
            assert seen["c"] == "127.0.0.1", (seen, diagnostics)
            port = int(seen["m"])
            assert RELAY_MIN <= port <= RELAY_MAX and port % 2 == 0, (seen, diagnostics)
            assert port != own
        callee_leg, caller_leg = int(offer["m"]), int(answer["m"])
        assert callee_leg != caller_leg

        # --- the node's view of the call before the BYE: RTP both ways, right endpoints
        assert seen_calls == {call_id.encode()}, (seen_calls, diagnostics)
        assert last_query is not None, "no successful NG query during the call" + diagnostics
        tags = last_query["tags"]
        assert len(tags) == 2, tags
        by_port = {rtp_stream(tag)["advertised endpoint"]["port"]: (name, tag) for name, tag in tags.items()}
        assert set(by_port) == {uac_media, uas_media}, (by_port, diagnostics)
        caller_name, caller = by_port[uac_media]
        callee_name, callee = by_port[uas_media]
        assert caller["in dialogue with"].decode() == callee_name
        assert callee["in dialogue with"].decode() == caller_name
        for stream, leg, party in ((rtp_stream(caller), caller_leg, uac_media),
                                   (rtp_stream(callee), callee_leg, uas_media)):
            assert stream["local address"] == b"127.0.0.1" and stream["local port"] == leg, stream
            assert stream["endpoint"]["address"] == b"127.0.0.1" and stream["endpoint"]["port"] == party, stream
            assert b"confirmed" in stream["flags"], stream
            assert stream["stats"]["packets"] >= MIN_NODE_PACKETS, (stream, diagnostics)   # from the party
            assert stream["sent"]["packets"] >= MIN_NODE_PACKETS, (stream, diagnostics)    # to the party
            assert stream["stats"]["errors"] == 0 and not any(stream["drops"].values()), stream
        assert last_query["totals"]["RTP"]["packets"] >= 2 * MIN_NODE_PACKETS

        # --- on the wire: the UAC's audio went to the relay, on to the UAS, and its echo back
        flows = capture.flows()
        expected = [(uac_media, caller_leg), (callee_leg, uas_media), (uas_media, callee_leg), (caller_leg, uac_media)]
        for flow in expected:
            assert flows[flow] >= MIN_CAPTURED_PACKETS, (flow, dict(flows), diagnostics)
        assert set(flows) == set(expected), (dict(flows), diagnostics)
        relayed = [p for s, d, p in capture.packets if (s, d) in ((callee_leg, uas_media), (caller_leg, uac_media))]
        assert relayed and all(len(p) > 12 and p[0] >> 6 == 2 and p[1] & 0x7F == 8 for p in relayed), \
            "relayed datagrams are not the pcap's RTP/PCMA packets"

        print(f"call {call_id}: UAC {uac_media} <-> relay {caller_leg} | relay {callee_leg} <-> UAS {uas_media}; "
              f"node counted caller->relay {rtp_stream(caller)['stats']['packets']}, "
              f"relay->callee {rtp_stream(callee)['sent']['packets']}, "
              f"callee->relay {rtp_stream(callee)['stats']['packets']}, "
              f"relay->caller {rtp_stream(caller)['sent']['packets']}; captured {dict(flows)}")

        # --- every NG request Kamailio sent got an ok; it sent offer, answer, delete
        commands, results = [], []
        for kind, datagram in capture.ng_exchanges():
            cookie, message = decode_ng(datagram)
            assert isinstance(message, dict), (message, diagnostics)
            if cookie.startswith(b"kt"):            # this test's own list/query/ping
                continue
            if kind == "request":
                commands.append(message.get("command"))
            else:
                results.append(message.get("result"))
        assert {b"offer", b"answer", b"delete"} <= set(commands), (commands, diagnostics)
        assert commands[0] == b"offer" and commands[-1] == b"delete", (commands, diagnostics)
        assert results and all(r in (b"ok", b"pong") for r in results), (results, diagnostics)
        print("NG requests from Kamailio:", b" ".join(commands).decode())

        # --- after the BYE the node holds no call, and it is still serving
        assert after_bye is not None and after_bye.get("calls") == [], (after_bye, diagnostics)
        assert node.poll() is None, diagnostics
        gone = ng.call({"command": "query", "call-id": call_id})
        assert gone is not None and gone.get("result") == b"error", gone
        assert b"call ended: delete" in gone["error-reason"], gone
    finally:
        if capture is not None and capture._thread.is_alive():
            capture.stop()
        ng.close()
        procs.stop_all()

    # The node stops cleanly on SIGTERM (stop_all sent it; it had no call left).
    assert procs.procs["node"].returncode == 0, procs.report()
    assert b"Traceback" not in procs.err("node").read_bytes(), procs.report()
