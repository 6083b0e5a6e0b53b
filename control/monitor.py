"""System performance sampler and resource alarms (SPEC: "alarms with severity (High CPU,
Memory, Disk, ...); system performance (CPU per core, memory, disk, network) with a chart
of the last hour").

Reads Linux /proc and os.statvfs directly (no psutil). CPU and network figures are rates,
so they come from the delta with the previous sample: the first sample reports 0. Every
sample is appended to an hour of compact points for the chart, and drives the High CPU,
Memory and Disk alarms, each with a clear threshold below its raise threshold so a value
hovering around the limit does not make the alarm flap.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from typing import Callable

from control.alarms import Alarms

log = logging.getLogger("vosmedia.monitor")

CPU_KEY = "system:cpu"
MEMORY_KEY = "system:memory"
DISK_KEY = "system:disk"


def _read(path: str) -> str:
    """The file's text, or "" if it cannot be read: a missing file means no data, not a crash."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _ints(tokens: list[str]) -> list[int] | None:
    try:
        return [int(t) for t in tokens]
    except ValueError:
        return None


def _percent(part: float, whole: float) -> float:
    """part/whole as a percentage clamped to 0..100 (counters can reset or go backwards)."""
    if whole <= 0:
        return 0.0
    return min(100.0, max(0.0, 100.0 * part / whole))


def parse_cpu(text: str) -> dict[str, tuple[int, int]]:
    """/proc/stat "cpu" lines -> {name: (busy_jiffies, total_jiffies)}, file order ("cpu" first)."""
    counters: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        tokens = line.split()
        if not tokens or not tokens[0].startswith("cpu"):
            continue
        # user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is
        # already counted in user/nice, so only the first eight fields make the total.
        values = _ints(tokens[1:9])
        if not values or len(values) < 4:
            continue
        total = sum(values)
        idle = values[3] + (values[4] if len(values) > 4 else 0)   # iowait is idle time too
        counters[tokens[0]] = (total - idle, total)
    return counters


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo (and /proc/<pid>/status) "Key:   123 kB" lines -> {key: bytes}."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        tokens = rest.split()
        if not sep or not tokens:
            continue
        number = _ints(tokens[:1])
        if number is None:
            continue
        unit = 1024 if len(tokens) > 1 and tokens[1].lower() == "kb" else 1
        values[key.strip()] = number[0] * unit
    return values


def parse_net_dev(text: str) -> dict[str, tuple[int, int, int, int]]:
    """/proc/net/dev -> {interface: (rx_bytes, rx_packets, tx_bytes, tx_packets)}, without lo."""
    counters: dict[str, tuple[int, int, int, int]] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")   # old kernels write "eth0:123" with no space
        name = name.strip()
        if not sep or not name or "|" in line or name == "lo":
            continue
        values = _ints(rest.split())
        if values is None or len(values) < 10:
            continue
        counters[name] = (values[0], values[1], values[8], values[9])
    return counters


class SystemMonitor:
    """Samples the machine every `interval` seconds, keeps `history_seconds` of points and
    raises/clears the system alarms in `alarms`."""

    def __init__(self, alarms: Alarms, *, disk_path: str = "/", history_seconds: int = 3600,
                 interval: float = 5.0, proc_root: str = "/proc",
                 clock: Callable[[], float] = time.time,
                 cpu_high: float = 90.0, cpu_clear: float = 80.0, cpu_samples: int = 3,
                 memory_high: float = 90.0, memory_clear: float = 85.0,
                 disk_high: float = 90.0, disk_clear: float = 85.0):
        self.alarms = alarms
        self.disk_path = disk_path
        self.history_seconds = history_seconds
        self.interval = interval
        self.proc_root = proc_root
        self.clock = clock
        self.cpu_high, self.cpu_clear, self.cpu_samples = cpu_high, cpu_clear, cpu_samples
        self.memory_high, self.memory_clear = memory_high, memory_clear
        self.disk_high, self.disk_clear = disk_high, disk_clear
        self._history: deque[dict] = deque()
        self._latest: dict | None = None
        self._prev_time: float | None = None
        self._prev_cpu: dict[str, tuple[int, int]] = {}
        self._prev_net: dict[str, tuple[int, int, int, int]] = {}
        self._cpu_high_streak = 0

    # ---- sampling -------------------------------------------------------------------

    def sample(self) -> dict:
        now = self.clock()
        elapsed = now - self._prev_time if self._prev_time is not None else 0.0
        cpu_percent, per_core = self._cpu()
        result = {
            "time": now,
            "cpu_percent": cpu_percent,
            "cpu_per_core": per_core,
            "memory": self._memory(),
            "process_rss_bytes": parse_meminfo(self._proc("self/status")).get("VmRSS", 0),
            "disk": self._disk(),
            "network": self._network(elapsed),
        }
        self._prev_time = now
        self._latest = result
        self._remember(result)
        self._check_alarms(result)
        return result

    def history(self) -> list[dict]:
        """The compact points of the last history_seconds, oldest first."""
        return list(self._history)

    def latest(self) -> dict | None:
        return self._latest

    async def run(self) -> None:
        """Sample forever; one failed sample is logged and the next one tried as usual."""
        while True:
            try:
                self.sample()
            except Exception:
                log.exception("system sample failed")
            await asyncio.sleep(self.interval)

    def _proc(self, relative: str) -> str:
        return _read(os.path.join(self.proc_root, relative))

    def _cpu(self) -> tuple[float, list[float]]:
        counters = parse_cpu(self._proc("stat"))

        def busy(name: str) -> float:
            prev = self._prev_cpu.get(name)
            if prev is None:                # first sample, or a core just came online
                return 0.0
            cur = counters[name]
            return round(_percent(cur[0] - prev[0], cur[1] - prev[1]), 2)

        total = busy("cpu") if "cpu" in counters else 0.0
        cores = [busy(name) for name in counters if name != "cpu"]
        self._prev_cpu = counters
        return total, cores

    def _memory(self) -> dict:
        info = parse_meminfo(self._proc("meminfo"))
        total = info.get("MemTotal", 0)
        # MemAvailable exists since Linux 3.14; MemFree is the pessimistic fallback.
        available = info.get("MemAvailable", info.get("MemFree", 0))
        return {"total_bytes": total, "available_bytes": available,
                "used_percent": round(_percent(total - available, total), 2)}

    def _disk(self) -> dict:
        try:
            st = os.statvfs(self.disk_path)
        except OSError:
            return {"path": self.disk_path, "total_bytes": 0, "free_bytes": 0, "used_percent": 0.0}
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        free = st.f_bavail * st.f_frsize     # what the switch (not root) can still write
        # As df computes it: blocks reserved for root count neither as used nor as free.
        return {"path": self.disk_path, "total_bytes": st.f_blocks * st.f_frsize,
                "free_bytes": free, "used_percent": round(_percent(used, used + free), 2)}

    def _network(self, elapsed: float) -> dict:
        counters = parse_net_dev(self._proc("net/dev"))
        sums = [0, 0, 0, 0]
        for name, cur in counters.items():
            prev = self._prev_net.get(name)
            if prev is None:
                continue
            # Per interface, so one that vanishes or resets its counters is not a negative rate.
            for i in range(4):
                sums[i] += max(0, cur[i] - prev[i])
        self._prev_net = counters
        rx_b, rx_p, tx_b, tx_p = (round(v / elapsed, 2) if elapsed > 0 else 0.0 for v in sums)
        return {"rx_bytes_per_s": rx_b, "tx_bytes_per_s": tx_b,
                "rx_packets_per_s": rx_p, "tx_packets_per_s": tx_p}

    def _remember(self, result: dict) -> None:
        now = result["time"]
        self._history.append({
            "time": now,
            "cpu_percent": result["cpu_percent"],
            "memory_percent": result["memory"]["used_percent"],
            "disk_percent": result["disk"]["used_percent"],
            "rx_bytes_per_s": result["network"]["rx_bytes_per_s"],
            "tx_bytes_per_s": result["network"]["tx_bytes_per_s"],
        })
        cutoff = now - self.history_seconds
        while self._history and self._history[0]["time"] < cutoff:
            self._history.popleft()

    # ---- alarms ---------------------------------------------------------------------

    def _check_alarms(self, result: dict) -> None:
        cpu = result["cpu_percent"]
        # CPU spikes are normal: only a sustained run of high samples raises the alarm.
        self._cpu_high_streak = self._cpu_high_streak + 1 if cpu >= self.cpu_high else 0
        if self._cpu_high_streak >= self.cpu_samples:
            self.alarms.raise_(CPU_KEY, "High CPU", "High",
                               f"CPU at {cpu:.1f}% for {self._cpu_high_streak} samples")
        elif cpu < self.cpu_clear:
            self.alarms.clear(CPU_KEY)

        memory, disk = result["memory"], result["disk"]
        # A total of 0 means the figures could not be read: no reason to raise or clear.
        if memory["total_bytes"] > 0:
            self._level(MEMORY_KEY, "Memory", memory["used_percent"],
                        self.memory_high, self.memory_clear, "memory used")
        if disk["total_bytes"] > 0:
            self._level(DISK_KEY, "Disk", disk["used_percent"],
                        self.disk_high, self.disk_clear, f"disk {disk['path']} used")

    def _level(self, key: str, kind: str, value: float, high: float, clear: float,
               what: str) -> None:
        if value >= high:
            self.alarms.raise_(key, kind, "High", f"{what} {value:.1f}%")
        elif value < clear:
            self.alarms.clear(key)
