"""RTP relay load comparison: vosmedia against minrelay (the C floor) and rtpengine.

For every load and every relay, in one run and under the same conditions:

1. start the relay pinned to core 1 (``taskset -c 1``), on a port range no earlier run used;
2. create N bidirectional G.711 calls: vosmedia and rtpengine over the NG protocol with the
   shared ``ng_setup.py``, minrelay from a streams file written here with the same layout
   (local A/B ports ``base + 4i`` / ``base + 4i + 2``, relay ports likewise);
3. run the shared ``measure.sh`` (``blast`` on core 0) and parse sent, received, loss and
   the relay's CPU microseconds per relayed packet;
4. stop the relay (process group, SIGTERM then SIGKILL) and wait until its sockets are gone.

Then it prints a table and the ratios vosmedia/minrelay and vosmedia/rtpengine, and can
write everything to JSON.  A relay whose binary is missing, or that does not come up, is
reported as not measured; the run goes on with the others.

    python benchmarks/relay_load.py --calls 1500,500 --pps 50 --seconds 10 \
        --peers vosmedia,minrelay,rtpengine --out results.json

The measuring tools live outside the repository, at ``../shared/tools/relaybench`` from the
project root (the same in CI); ``RELAYBENCH_DIR`` overrides that.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import fcntl
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ("vosmedia", "minrelay", "rtpengine")
RELAY_CORE = 1
BLAST_CORE = 0
LOCK_PATH = "/tmp/vosmedia-relay-load.lock"
LOWEST_PORT = 10000
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 8.0


class NotMeasured(Exception):
    """The relay could not be measured (missing binary, did not start, set-up failed)."""


# --------------------------------------------------------------------------- locating tools

def tools_dir() -> Path:
    env = os.environ.get("RELAYBENCH_DIR")
    candidates = [Path(env)] if env else []
    candidates += [ROOT.parent / "shared" / "tools" / "relaybench",
                   ROOT / "shared" / "tools" / "relaybench"]
    for c in candidates:
        if (c / "measure.sh").is_file() and (c / "blast.c").is_file():
            return c.resolve()
    sys.exit("relaybench tools not found; looked in: " + ", ".join(str(c) for c in candidates)
             + " (set RELAYBENCH_DIR)")


def compile_c(src: Path, out: Path) -> None:
    cc = os.environ.get("CC", "gcc")
    # blast.c calls sin(): it needs libm (measure.sh's own gcc line lacks -lm, so we build it here).
    cmd = [cc, "-O2", "-o", str(out), str(src), "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")


# --------------------------------------------------------------------------- ports

def bound_udp_ports() -> set[int]:
    ports: set[int] = set()
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(name) as f:
            next(f, None)
            for line in f:
                parts = line.split()
                if len(parts) > 1:
                    ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


def ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


@dataclass
class PortPlan:
    local_base: int   # blast's A/B ports: local_base + 4i, + 2
    relay_min: int    # relay's media range
    relay_max: int
    ng_port: int      # NG control port (just above the media range)


class PortAllocator:
    """Hands out media ranges so that two successive relays never share a port.

    The space below the kernel's ephemeral range is cut into: one area for blast's local
    ports (blast has exited before the next relay starts, so it is reused) and as many relay
    slots as fit; slots are used round robin, and a slot is only taken once /proc/net/udp
    shows none of its ports bound (the previous relay's sockets are gone)."""

    last_used: set[int] = set()   # ports of the previous relay run, across allocators

    def __init__(self, calls: int, lowest: int = LOWEST_PORT):
        self.calls = calls
        self.local_base = lowest & ~1
        self.local_span = 4 * calls + 4
        # rtpengine and vosmedia take RTP + RTCP per stream, 4 ports per call; leave slack
        # for allocators that do not pack densely.
        # Even starts and spans: RTP on even ports (vosmedia rejects an odd --port-min).
        self.relay_span = (int(4 * calls * 1.25) + 64) & ~1
        top = ephemeral_low()
        start = self.local_base + self.local_span
        self.slots = []
        while start + self.relay_span + 1 <= top:
            self.slots.append(start)
            start += self.relay_span + 2
        if not self.slots:
            raise SystemExit(f"{calls} calls need {self.local_span + self.relay_span + 1} ports "
                             f"between {lowest} and the ephemeral range at {top}: too many calls")
        self.next_slot = 0

    def take(self) -> PortPlan:
        deadline = time.monotonic() + 15
        local = set(range(self.local_base, self.local_base + self.local_span))
        while True:
            bound = bound_udp_ports()
            # Prefer a slot that shares no port with the previous relay's range (also across
            # loads, whose layouts differ); with a single slot, reuse it once its ports are free.
            order = [(self.next_slot + k) % len(self.slots) for k in range(len(self.slots))]
            order.sort(key=lambda i: bool(PortAllocator.last_used
                                          & set(range(self.slots[i], self.slots[i] + self.relay_span + 1))))
            for idx in order:
                lo = self.slots[idx]
                span = set(range(lo, lo + self.relay_span + 1))
                if not (bound & span) and not (bound & local):
                    self.next_slot = (idx + 1) % len(self.slots)
                    PortAllocator.last_used = span | local
                    return PortPlan(self.local_base, lo, lo + self.relay_span - 1, lo + self.relay_span)
            if time.monotonic() > deadline:
                busy = sorted(bound & (local | set(range(self.slots[0], self.slots[-1] + self.relay_span + 1))))
                raise NotMeasured(f"no free port range: ports still bound {busy[:10]}...")
            time.sleep(0.2)


# --------------------------------------------------------------------------- processes

class Proc:
    """A child in its own process group, killed with its group on stop()."""

    def __init__(self, name: str, cmd: list[str], log: Path, cwd: Path | None = None,
                 env: dict | None = None):
        self.name, self.cmd, self.log_path = name, cmd, log
        self.log = open(log, "wb")
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, cwd=cwd, env=env,
                                  start_new_session=True)

    @property
    def pid(self) -> int:
        return self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def tail(self, n: int = 15) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        # whatever is left of the group (the leader or any child) goes now
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.p.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.p.wait(5)
        self.log.close()


LIVE: list[Proc] = []


def start(name: str, cmd: list[str], log: Path, **kw) -> Proc:
    p = Proc(name, cmd, log, **kw)
    LIVE.append(p)
    return p


def stop(p: Proc) -> None:
    p.stop()
    if p in LIVE:
        LIVE.remove(p)


def stop_all() -> None:
    for p in list(LIVE):
        stop(p)


def pinned(core: int, cmd: list[str]) -> list[str]:
    if shutil.which("taskset"):
        return ["taskset", "-c", str(core)] + cmd
    return cmd  # pinned by os.sched_setaffinity below


def pin_pid(pid: int, core: int) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(pid, {core})


def wait_ports_gone(ports: range, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    want = set(ports)
    while time.monotonic() < deadline:
        if not (bound_udp_ports() & want):
            return True
        time.sleep(0.1)
    return False


# --------------------------------------------------------------------------- NG control

def bencode(x) -> bytes:
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
    if isinstance(x, bytes):
        return b"%d:%s" % (len(x), x)
    if isinstance(x, list):
        return b"l" + b"".join(bencode(i) for i in x) + b"e"
    if isinstance(x, dict):
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in sorted(x.items())) + b"e"
    raise TypeError(type(x))


def ng_ping(port: int, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        cookie = b"%08x" % random.getrandbits(32)
        try:
            s.sendto(cookie + b" " + bencode({"command": "ping"}), ("127.0.0.1", port))
            data, _ = s.recvfrom(4096)
        except OSError:
            return False
        return data.startswith(cookie) and b"pong" in data


def wait_ng_ready(proc: Proc, port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if not proc.alive():
            raise NotMeasured(f"{proc.name} exited with {proc.p.returncode}:\n{proc.tail()}")
        if ng_ping(port):
            return
        time.sleep(0.2)
    raise NotMeasured(f"{proc.name} did not answer an NG ping on 127.0.0.1:{port} "
                      f"within {READY_TIMEOUT:.0f} s:\n{proc.tail()}")


# --transcode CODEC: every call is transcoded (A sends PCMA, B is offered and sends CODEC)
TRANSCODE: str | None = None
# blast's B side: payload type and bytes per 20 ms packet of the transcoded codec
B_SIDE = {"G729": ("18", "20")}


def ng_setup(tools: Path, plan: PortPlan, calls: int, streams: Path, log: Path) -> None:
    cmd = [sys.executable, str(tools / "ng_setup.py"), "127.0.0.1", str(plan.ng_port),
           str(calls), str(plan.local_base), str(streams)]
    if TRANSCODE:
        cmd += ["--transcode", TRANSCODE]
    p = start("ng_setup", cmd, log)
    try:
        rc = p.p.wait(max(60, calls * 0.2))
    except subprocess.TimeoutExpired:
        raise NotMeasured(f"ng_setup.py did not finish:\n{p.tail()}")
    finally:
        stop(p)
    if rc != 0:
        raise NotMeasured(f"ng_setup.py failed ({rc}):\n{p.tail()}")
    n = sum(1 for line in streams.read_text().splitlines() if line.strip())
    if n != calls:
        raise NotMeasured(f"ng_setup.py wrote {n} calls, expected {calls}")


# --------------------------------------------------------------------------- relays

@dataclass
class Env:
    tools: Path
    work: Path
    blast: Path
    minrelay: Path | None
    minrelay_error: str = ""


def vosmedia_command() -> list[str] | None:
    exe = shutil.which("vosmedia", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                        os.environ.get("PATH", "")]))
    if exe:
        return [exe]
    if (ROOT / "control" / "cli.py").is_file():
        return [sys.executable, "-c", "import sys; from control.cli import main; sys.exit(main())"]
    return None


def start_vosmedia(env: Env, plan: PortPlan, calls: int, tag: str) -> tuple[Proc, Path]:
    base = vosmedia_command()
    if base is None:
        raise NotMeasured("no `vosmedia` console script and no control/cli.py")
    probe = subprocess.run([sys.executable, "-c", "import vosmedia._rtp"], cwd=ROOT,
                           capture_output=True, text=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        raise NotMeasured(f"vosmedia._rtp does not import ({last}); "
                          "run `python setup.py build_ext --inplace`")
    cmd = base + ["media", "--listen-ng", f"127.0.0.1:{plan.ng_port}", "--interface", "127.0.0.1",
                  "--port-min", str(plan.relay_min), "--port-max", str(plan.relay_max),
                  "--num-threads", "1"]
    child_env = dict(os.environ)
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), child_env.get("PYTHONPATH")]))
    proc = start("vosmedia", pinned(RELAY_CORE, cmd), env.work / f"{tag}.log", cwd=ROOT, env=child_env)
    pin_pid(proc.pid, RELAY_CORE)
    wait_ng_ready(proc, plan.ng_port)
    streams = env.work / f"{tag}.streams"
    ng_setup(env.tools, plan, calls, streams, env.work / f"{tag}.ng_setup.log")
    return proc, streams


def rtpengine_version(exe: str) -> str:
    with contextlib.suppress(Exception):
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
        m = re.search(r"Version:\s*(\S+)", out.stdout + out.stderr)
        if m:
            return m.group(1)
    return "unknown"


def start_rtpengine(env: Env, plan: PortPlan, calls: int, tag: str) -> tuple[Proc, Path]:
    exe = shutil.which("rtpengine")
    if exe is None:
        raise NotMeasured("rtpengine binary not found (Debian package rtpengine-daemon)")
    # --config-file=none: the packaged /etc/rtpengine/rtpengine.conf would otherwise add
    # kernel table 0, HTTP/CLI listeners and recording. --table=-1: userspace only, no kernel
    # forwarding; no --no-fallback (that would insist on the kernel module). Log level 4
    # (warnings) keeps per-call notices out of the measured process's work.
    cmd = [exe, "--config-file=none", "--table=-1", "--num-threads=1", "--foreground",
           "--interface=127.0.0.1", f"--listen-ng=127.0.0.1:{plan.ng_port}",
           f"--port-min={plan.relay_min}", f"--port-max={plan.relay_max}",
           "--log-stderr", "--log-level=4"]
    proc = start("rtpengine", pinned(RELAY_CORE, cmd), env.work / f"{tag}.log")
    pin_pid(proc.pid, RELAY_CORE)
    wait_ng_ready(proc, plan.ng_port)
    streams = env.work / f"{tag}.streams"
    ng_setup(env.tools, plan, calls, streams, env.work / f"{tag}.ng_setup.log")
    return proc, streams


def start_minrelay(env: Env, plan: PortPlan, calls: int, tag: str) -> tuple[Proc, Path]:
    if env.minrelay is None:
        raise NotMeasured(f"minrelay not built: {env.minrelay_error}")
    streams = env.work / f"{tag}.streams"
    with open(streams, "w") as f:
        for i in range(calls):
            a, b = plan.local_base + 4 * i, plan.local_base + 4 * i + 2
            ra, rb = plan.relay_min + 4 * i, plan.relay_min + 4 * i + 2
            f.write(f"{a} {ra} {b} {rb}\n")
    proc = start("minrelay", pinned(RELAY_CORE, [str(env.minrelay), str(streams)]),
                 env.work / f"{tag}.log")
    pin_pid(proc.pid, RELAY_CORE)
    deadline = time.monotonic() + READY_TIMEOUT
    while "sockets" not in proc.tail(3):
        if not proc.alive():
            raise NotMeasured(f"minrelay exited with {proc.p.returncode}:\n{proc.tail()}")
        if time.monotonic() > deadline:
            raise NotMeasured("minrelay did not report its sockets")
        time.sleep(0.05)
    return proc, streams


STARTERS = {"vosmedia": start_vosmedia, "minrelay": start_minrelay, "rtpengine": start_rtpengine}


# --------------------------------------------------------------------------- measuring

@dataclass
class Result:
    peer: str
    calls: int
    pps: int
    seconds: float
    repeat: int
    measured: bool = False
    reason: str = ""
    offered_pps: int = 0
    sent: int = 0
    received: int = 0
    loss_pct: float = 0.0
    send_errors: int = 0
    relay_cpu_s: float = 0.0
    us_per_packet: float = 0.0
    relay_core_pct: float = 0.0
    relay_core_ticks: dict = field(default_factory=dict)
    loadavg_before: float = 0.0
    ports: dict = field(default_factory=dict)
    command: list = field(default_factory=list)
    disturbed: str = ""
    raw: str = ""


CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def core_ticks(core: int) -> dict[str, int]:
    """Tick counters of one CPU from /proc/stat (sampled at the tick, so only indicative)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{core} "):
                return dict(zip(CPU_FIELDS, (int(x) for x in line.split()[1:])))
    return {}


def parse_measure(text: str) -> dict[str, float]:
    line = next((ln for ln in reversed(text.splitlines()) if "relay_us_per_pkt=" in ln), "")
    return {k: float(v) for k, v in re.findall(r"(\w+)=(-?[0-9.]+)", line)}


def measure(env: Env, relay: Proc, streams: Path, seconds: float, pps: int, res: Result) -> None:
    cmd = ["bash", str(env.tools / "measure.sh"), str(relay.pid), str(streams), f"{seconds:g}", str(pps)]
    child_env = dict(os.environ, BLAST=str(env.blast))
    if TRANSCODE:
        child_env["BLAST_B_PT"], child_env["BLAST_B_LEN"] = B_SIDE[TRANSCODE]
    res.loadavg_before = os.getloadavg()[0]
    ticks0 = core_ticks(RELAY_CORE)
    m = start("measure.sh", cmd, env.work / f"measure-{res.peer}-{res.calls}-{res.repeat}.log", env=child_env)
    try:
        rc = m.p.wait(seconds + 90)
    except subprocess.TimeoutExpired:
        raise NotMeasured(f"measure.sh did not finish:\n{m.tail()}")
    finally:
        stop(m)
    ticks1 = core_ticks(RELAY_CORE)
    # Where the relay's core spent the whole measure.sh span, warm-up included: a record of
    # softirq and idle time, and of other work on that core if the machine was busy.
    res.relay_core_ticks = {k: ticks1[k] - ticks0.get(k, 0) for k in ticks1}
    out = m.log_path.read_text(errors="replace")
    res.raw = out.strip()
    vals = parse_measure(out)
    if rc != 0 or "relay_us_per_pkt" not in vals:
        raise NotMeasured(f"measure.sh failed ({rc}):\n{out[-1500:]}")
    if not relay.alive():
        raise NotMeasured(f"{relay.name} died during the run:\n{relay.tail()}")
    res.offered_pps = int(vals.get("offered_pps", 0))
    res.sent = int(vals.get("sent", 0))
    res.received = int(vals.get("received", 0))
    res.loss_pct = vals.get("loss_pct", 0.0)
    res.send_errors = int(vals.get("send_errors", 0))
    res.relay_cpu_s = vals.get("relay_cpu_s", 0.0)
    res.us_per_packet = vals.get("relay_us_per_pkt", 0.0)
    res.relay_core_pct = 100.0 * res.relay_cpu_s / seconds
    if res.received <= 0:
        raise NotMeasured(f"no packet came back through {relay.name}: {res.raw}")
    res.measured = True


def all_cpu_busy(interval: float = 1.0) -> float:
    """Busy share of the whole machine over `interval`, in cores (0..ncpu), from /proc/stat."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return sum(v) - v[3] - v[4], sum(v)
    b0, t0 = sample()
    time.sleep(interval)
    b1, t1 = sample()
    return (os.cpu_count() or 1) * (b1 - b0) / max(t1 - t0, 1)


def foreign_load_generators() -> list[str]:
    """Other load generators on the machine (blast, measure.sh) that are not ours; an idle
    relay left running elsewhere is only a problem if it is busy, which all_cpu_busy sees."""
    mine = {p.pid for p in LIVE} | {os.getpid()}
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in mine:
            continue
        try:
            args = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
            pgid = os.getpgid(int(d))
        except (OSError, ProcessLookupError):
            continue
        if pgid in mine:
            continue
        names = [Path(a.decode(errors="replace")).name for a in args[:3] if a]
        if any(n == "measure.sh" or "blast" in n for n in names):
            found.append(f"{d}:{' '.join(a.decode(errors='replace') for a in args if a)[:80]}")
    return found


def wait_quiet(max_wait: float) -> str:
    """Wait until no other load run is going and the machine is idle; return a note if not."""
    deadline = time.monotonic() + max_wait
    told = False
    while True:
        others = foreign_load_generators()
        busy = all_cpu_busy(1.0)
        if not others and busy < 0.15:
            return ""
        note = (f"machine busy: {busy:.2f} cores in use"
                + (f"; other load runs: {', '.join(others[:3])}" if others else ""))
        if time.monotonic() > deadline:
            print(f"   warning: measuring anyway, {note}", file=sys.stderr, flush=True)
            return note
        if not told:
            print(f"   waiting for a quiet machine ({note})", file=sys.stderr, flush=True)
            told = True
        time.sleep(4)


def run_one(env: Env, alloc: PortAllocator, peer: str, calls: int, pps: int, seconds: float,
            repeat: int, quiet_wait: float = 300.0) -> Result:
    res = Result(peer, calls, pps, seconds, repeat)
    relay = None
    plan = None
    try:
        plan = alloc.take()
        res.ports = asdict(plan)
        res.disturbed = wait_quiet(quiet_wait)
        if TRANSCODE and peer == "minrelay":
            raise NotMeasured("minrelay does not transcode")
        relay, streams = STARTERS[peer](env, plan, calls, f"{peer}-{calls}-{repeat}")
        res.command = relay.cmd
        measure(env, relay, streams, seconds, pps, res)
    except NotMeasured as e:
        res.measured = False
        res.reason = str(e)
    finally:
        if relay is not None:
            stop(relay)
        if plan is not None and not wait_ports_gone(range(plan.relay_min, plan.ng_port + 1)):
            print(f"warning: ports of {peer} still bound after it stopped", file=sys.stderr)
    return res


# --------------------------------------------------------------------------- report

def summarise(results: list[Result]) -> dict:
    """Median over repeats for each (calls, peer)."""
    out: dict = {}
    for r in results:
        out.setdefault(r.calls, {}).setdefault(r.peer, []).append(r)
    summary: dict = {}
    for calls, peers in out.items():
        summary[calls] = {}
        for peer, rs in peers.items():
            ok = [r for r in rs if r.measured]
            if not ok:
                summary[calls][peer] = {"measured": False, "reason": rs[-1].reason}
                continue
            summary[calls][peer] = {
                "measured": True,
                "runs": len(ok),
                "disturbed_runs": sum(1 for r in ok if r.disturbed),
                "offered_pps": ok[0].offered_pps,
                "us_per_packet": statistics.median(r.us_per_packet for r in ok),
                "us_per_packet_min": min(r.us_per_packet for r in ok),
                "us_per_packet_max": max(r.us_per_packet for r in ok),
                "loss_pct": statistics.median(r.loss_pct for r in ok),
                "relay_core_pct": statistics.median(r.relay_core_pct for r in ok),
                "sent": statistics.median(r.sent for r in ok),
                "received": statistics.median(r.received for r in ok),
            }
    return summary


def print_report(summary: dict, peers: list[str], pps: int, seconds: float) -> None:
    for calls in summary:
        print()
        print(f"== {calls} calls x 2 streams x {pps} pps = {calls * 2 * pps:,} packets/s offered, "
              f"{seconds:g} s, relay on core {RELAY_CORE}, blast on core {BLAST_CORE}")
        print(f"{'relay':<10} {'sent':>10} {'received':>10} {'loss %':>8} {'core %':>7} "
              f"{'us/packet':>10} {'min-max':>13}")
        for peer in peers:
            s = summary[calls].get(peer)
            if s is None:
                continue
            if not s["measured"]:
                first = (s["reason"].strip().splitlines() or ["?"])[0]
                print(f"{peer:<10} not measured: {first[:100]}")
                continue
            mark = "*" if s["disturbed_runs"] else " "
            print(f"{peer:<9}{mark} {int(s['sent']):>10,} {int(s['received']):>10,} {s['loss_pct']:>8.2f} "
                  f"{s['relay_core_pct']:>7.1f} {s['us_per_packet']:>10.3f} "
                  f"{s['us_per_packet_min']:>6.2f}-{s['us_per_packet_max']:<6.2f}")
        v = summary[calls].get("vosmedia", {})
        for other in ("minrelay", "rtpengine"):
            o = summary[calls].get(other, {})
            if v.get("measured") and o.get("measured") and o["us_per_packet"] > 0:
                print(f"ratio vosmedia/{other}: {v['us_per_packet'] / o['us_per_packet']:.2f} "
                      f"(CPU per packet)")
            elif "vosmedia" in peers and other in peers:
                print(f"ratio vosmedia/{other}: n/a (not both measured)")
    print()
    print("core %: the relay's CPU over the counted window (100 = one core saturated); "
          "us/packet: median over runs, relay CPU per relayed packet (measure.sh); "
          "* = some runs had other load on the machine (see the JSON)")


def machine_info(peers: list[str]) -> dict:
    info = {"kernel": platform.release(), "python": platform.python_version(),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(), "loadavg_before": os.getloadavg()}
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(Exception):
        info["vosmedia_commit"] = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5).stdout.strip() or None
    if "rtpengine" in peers and shutil.which("rtpengine"):
        info["rtpengine_version"] = rtpengine_version(shutil.which("rtpengine"))
    return info


# --------------------------------------------------------------------------- main

def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", default="1500",
                    help="bidirectional calls; a comma list runs several loads (default 1500)")
    ap.add_argument("--pps", type=int, default=50, help="packets/s per stream (default 50: 20 ms)")
    ap.add_argument("--seconds", type=float, default=10, help="counted seconds per run (default 10)")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma list of " + ", ".join(PEERS))
    ap.add_argument("--repeat", type=int, default=1, help="runs per relay and load (median shown)")
    ap.add_argument("--transcode", choices=sorted(B_SIDE),
                    help="transcode every call: A sends PCMA, B sends this codec (20 ms)")
    ap.add_argument("--out", help="write all results as JSON to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs, streams files)")
    ap.add_argument("--quiet-wait", type=float, default=300, metavar="S",
                    help="before each run, wait up to S seconds for an idle machine with no other "
                         "blast/measure.sh running (default 300); then measure anyway, flagged")
    a = ap.parse_args(argv)
    try:
        a.calls = [int(x) for x in str(a.calls).split(",") if x.strip()]
    except ValueError:
        ap.error("--calls takes integers, e.g. 1500 or 1500,500")
    if not a.calls or min(a.calls) < 1:
        ap.error("--calls must be >= 1")
    a.peers = [p.strip() for p in a.peers.split(",") if p.strip()]
    bad = [p for p in a.peers if p not in PEERS]
    if bad:
        ap.error(f"unknown peer(s) {bad}; choose from {', '.join(PEERS)}")
    if a.pps < 1 or a.seconds <= 0 or a.repeat < 1:
        ap.error("--pps, --seconds and --repeat must be positive")
    return a


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    global TRANSCODE
    args = parse_args(argv)
    TRANSCODE = args.transcode
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs at least 2 CPUs (blast on core 0, relay on core 1)")
    tools = tools_dir()
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    # The harness, ng_setup and measure.sh stay off the relay's core.
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {BLAST_CORE})

    lock = open(LOCK_PATH, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another relay_load run holds {LOCK_PATH}; waiting for it", file=sys.stderr)
        fcntl.flock(lock, fcntl.LOCK_EX)

    work = Path(tempfile.mkdtemp(prefix="relay_load-"))
    results: list[Result] = []
    info = machine_info(args.peers)
    try:
        blast = work / "blast"
        compile_c(tools / "blast.c", blast)
        env = Env(tools, work, blast, None)
        if "minrelay" in args.peers:
            try:
                compile_c(tools / "minrelay.c", work / "minrelay")
                env.minrelay = work / "minrelay"
            except (RuntimeError, OSError) as e:
                env.minrelay_error = str(e)
        for calls in args.calls:
            alloc = PortAllocator(calls)
            for rep in range(args.repeat):
                for peer in args.peers:
                    print(f"-- {peer}: {calls} calls x {args.pps} pps, {args.seconds:g} s"
                          + (f" (run {rep + 1}/{args.repeat})" if args.repeat > 1 else ""),
                          file=sys.stderr, flush=True)
                    r = run_one(env, alloc, peer, calls, args.pps, args.seconds, rep,
                                args.quiet_wait)
                    results.append(r)
                    if r.measured:
                        print(f"   {r.us_per_packet:.3f} us/packet, loss {r.loss_pct:.2f} %, "
                              f"core {r.relay_core_pct:.0f} %", file=sys.stderr, flush=True)
                    else:
                        print(f"   not measured: {r.reason.strip()}", file=sys.stderr, flush=True)
    finally:
        stop_all()
        if args.keep:
            print(f"work dir kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()

    summary = summarise(results)
    print_report(summary, args.peers, args.pps, args.seconds)
    if args.out:
        doc = {"args": {"calls": args.calls, "pps": args.pps, "seconds": args.seconds,
                        "peers": args.peers, "repeat": args.repeat},
               "machine": info,
               "summary": {str(k): v for k, v in summary.items()},
               "runs": [asdict(r) for r in results]}
        Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
