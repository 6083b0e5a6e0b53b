"""Call-rate benchmark: sipp UAC -> switch -> sipp UAS, the switch pinned to one core.

For each peer and rate, N calls are placed at a fixed rate (sipp's default scenario,
calls held for ``--hold`` ms, media proxied by vosmedia). Reported: calls completed and
failed, and the switch's CPU milliseconds per call (user + system time of the whole
process, all threads, from /proc/PID/stat). Peers measured in the same run:

* ``vosmedia``: ``vosmedia run`` with a vendor at the UAS (media engine in-process,
  every call's media relayed); ``vosmedia-signalling``: the same with media not proxied
  (what sippy and Kamailio do here);
* ``kamailio``: ../shared/tools/sipbench/run_kam.sh (a stateful proxy: does less);
* ``sippy``: the sippy B2BUA 2.5.0 (../shared/tools/sipbench/run_sippy.sh; set
  SIPPY_B2BUA or let this script install it in /tmp/sippyenv).

    python benchmarks/sip_load.py --rates 100,300,500 --calls 3000 --peers vosmedia,kamailio,sippy
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT.parent / "shared" / "tools" / "sipbench"
HZ = os.sysconf("SC_CLK_TCK")
SIPP = shutil.which("sipp") or "/usr/bin/sipp"


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def last_stat(path: Path) -> dict:
    rows = path.read_text().strip().splitlines()
    header, last = rows[0].split(";"), rows[-1].split(";")
    return dict(zip(header, last))


def udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def wait_port(port: int, proc, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the switch exited during start-up")
        if udp_port_taken(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def ports_free(*ports: int) -> None:
    """A leftover peer on a benchmark port would answer in the next peer's place."""
    for port in ports:
        if udp_port_taken(port):
            raise RuntimeError(f"UDP port {port} is taken: stop the leftover peer first")


def run_vosmedia(rate: int, calls: int, hold: int, media: bool) -> dict:
    ports_free(5070, 5080, 5090)
    work = Path(tempfile.mkdtemp(prefix="sipbench-"))
    config = work / "switch.toml"
    config.write_text(
        '[sip]\nlisten = ["127.0.0.1:5070"]\n'
        '[params]\nSS_MEDIAPROXYMODE = %d\n'
        '[[customer]]\nname = "bench"\naddresses = ["127.0.0.1"]\n'
        '[[vendor]]\nname = "uas"\nhost = "127.0.0.1"\nport = 5090\n' % (1 if media else 0))
    switch = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-m", "control.cli", "--log-level", "warning",
                               "run", "--config", str(config), "--data-dir", str(work), "--no-web"],
                              cwd=ROOT, stdout=open(work / "switch.log", "wb"), stderr=subprocess.STDOUT)
    try:
        wait_port(5070, switch)
        return drive("vosmedia", switch.pid, rate, calls, hold, work)
    finally:
        switch.send_signal(signal.SIGTERM)
        try:
            switch.wait(10)
        except subprocess.TimeoutExpired:
            switch.kill()


def drive(name: str, pid: int, rate: int, calls: int, hold: int, work: Path) -> dict:
    uas = subprocess.Popen(["taskset", "-c", "0", SIPP, "-sn", "uas", "-i", "127.0.0.1", "-p", "5090",
                            "-nostdin"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    stat = work / "uac_stat.csv"
    c0 = cpu_ticks(pid)
    t0 = time.monotonic()
    subprocess.run(["taskset", "-c", "0", SIPP, "-sn", "uac", "127.0.0.1:5070", "-i", "127.0.0.1", "-p", "5080",
                    "-r", str(rate), "-m", str(calls), "-d", str(hold), "-trace_stat", "-stf", str(stat),
                    "-nostdin", "-timeout", str(calls // rate + 60) + "s"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.monotonic() - t0
    c1 = cpu_ticks(pid)
    uas.terminate()
    uas.wait()
    values = last_stat(stat)
    done = int(values.get("SuccessfulCall(C)", 0))
    failed = int(values.get("FailedCall(C)", 0))
    cpu_s = (c1 - c0) / HZ
    return {"peer": name, "rate": rate, "calls": calls, "success": done, "failed": failed,
            "cpu_s": round(cpu_s, 3), "cpu_ms_per_call": round(cpu_s * 1000 / max(1, calls), 3),
            "wall_s": round(elapsed, 1)}


def run_script(script: str, name: str, rate: int, calls: int, env=None) -> dict:
    """Run a peer script from ../shared/tools/sipbench and read its result line. The
    scripts can hang in their final ``wait`` (sippy ignores SIGTERM), so the script's
    process group is killed as soon as the result is out."""
    ports_free(5070, 5080, 5090)
    proc = subprocess.Popen(["bash", str(TOOLS / script), str(rate), str(calls)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env={**os.environ, **(env or {})},
                            start_new_session=True)
    line = ""
    deadline = time.monotonic() + calls / max(1, rate) + 120
    try:
        for text in proc.stdout:
            if "cpu_ms_per_call" in text:
                line = text
                break
            if time.monotonic() > deadline:
                break
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        # servers the script started outlive its process group
        subprocess.run(["pkill", "-9", "-f", "sippyenv/bin/b2bua|kamailio -f kamailio.cfg"], check=False)
        subprocess.run(["pkill", "-f", "sipp -sn"], check=False)
        time.sleep(1)
    values = dict(re.findall(r"(\w+)=([0-9.]+)", line))
    return {"peer": name, "rate": rate, "calls": calls, "success": int(float(values.get("success", 0))),
            "failed": int(float(values.get("failed", 0))), "cpu_s": float(values.get("cpu_s", 0)),
            "cpu_ms_per_call": float(values.get("cpu_ms_per_call", 0))}


def sippy_b2bua() -> str:
    path = os.environ.get("SIPPY_B2BUA", "/tmp/sippyenv/bin/b2bua")
    if not Path(path).exists():
        subprocess.run([sys.executable, "-m", "venv", "/tmp/sippyenv"], check=True)
        subprocess.run(["/tmp/sippyenv/bin/pip", "install", "-q", "sippy==2.5.0"], check=True)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="100,300,500")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--hold", type=int, default=0, help="ms each call stays up (sipp -d)")
    parser.add_argument("--peers", default="vosmedia,kamailio,sippy")
    parser.add_argument("--no-media", action="store_true", help="vosmedia without media proxy")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    results = []
    for rate in [int(r) for r in args.rates.split(",")]:
        for peer in args.peers.split(","):
            if peer == "vosmedia":
                result = run_vosmedia(rate, args.calls, args.hold, not args.no_media)
            elif peer == "vosmedia-signalling":
                result = run_vosmedia(rate, args.calls, args.hold, False)
                result["peer"] = peer
            elif peer == "kamailio":
                result = run_script("run_kam.sh", "kamailio", rate, args.calls)
            elif peer == "sippy":
                result = run_script("run_sippy.sh", "sippy", rate, args.calls, {"SIPPY_B2BUA": sippy_b2bua()})
            else:
                parser.error(f"unknown peer {peer}")
            print(json.dumps(result), flush=True)
            results.append(result)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
