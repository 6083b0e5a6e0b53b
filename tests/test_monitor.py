"""The system performance sampler (control/monitor.py): exact CPU, memory, disk and network
figures from a fake /proc written here and a hand-moved clock, the High CPU / Memory / Disk
alarms and their hysteresis, the bounded hour of history, odd /proc content, the run loop,
and one sanity pass over the real /proc."""
from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from control import monitor as monitor_mod
from control.alarms import Alarms
from control.monitor import SystemMonitor

NET_HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|"
    "bytes    packets errs drop fifo colls carrier compressed\n"
)


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeProc:
    """A proc_root directory with the four files the monitor reads, rewritten per step."""

    def __init__(self, root: Path):
        self.root = root
        (root / "self").mkdir(parents=True)
        (root / "net").mkdir()
        # user nice system idle iowait irq softirq steal guest guest_nice, per core
        self.cores = [[1000, 10, 500, 8000, 100, 20, 30, 0, 0, 0],
                      [2000, 0, 700, 6000, 300, 10, 10, 5, 0, 0]]
        self.write_stat()
        self.write_meminfo(total_kb=16_000_000, available_kb=4_000_000)
        self.write_status(rss_kb=51_200)
        self.write_net({"lo": (10**9, 10**6, 10**9, 10**6),
                        "eth0": (100_000, 1_000, 50_000, 500),
                        "eth1": (7_000, 70, 3_000, 30)})

    def write(self, relative: str, text: str) -> None:
        (self.root / relative).write_text(text)

    def write_stat(self) -> None:
        total = [sum(col) for col in zip(*self.cores)]
        lines = ["cpu  " + " ".join(map(str, total))]
        lines += [f"cpu{i} " + " ".join(map(str, c)) for i, c in enumerate(self.cores)]
        lines += ["intr 2193035 0 0 0", "ctxt 3279044", "btime 1718000000",
                  "processes 12345", "procs_running 2", "procs_blocked 0",
                  "softirq 100 0 1 2 3"]
        self.write("stat", "\n".join(lines) + "\n")

    def add_cpu(self, core: int, user=0, system=0, idle=0, iowait=0, guest=0) -> None:
        c = self.cores[core]
        c[0] += user
        c[2] += system
        c[3] += idle
        c[4] += iowait
        c[8] += guest

    def busy(self, percent: int) -> None:
        """Every core spends `percent` of the next 100 jiffies busy."""
        for i in range(len(self.cores)):
            self.add_cpu(i, user=percent, idle=100 - percent)
        self.write_stat()

    def write_meminfo(self, total_kb: int, available_kb: int) -> None:
        self.write("meminfo",
                   f"MemTotal:       {total_kb} kB\n"
                   f"MemFree:         1000000 kB\n"
                   f"MemAvailable:   {available_kb} kB\n"
                   "Buffers:          200000 kB\n"
                   "Cached:          3000000 kB\n"
                   "SwapTotal:             0 kB\n"
                   "HugePages_Total:       0\n"
                   "Hugepagesize:       2048 kB\n")

    def write_status(self, rss_kb: int) -> None:
        self.write("self/status",
                   "Name:\tpython3\nState:\tR (running)\nPid:\t4242\n"
                   f"VmPeak:\t  300000 kB\nVmSize:\t  250000 kB\nVmRSS:\t   {rss_kb} kB\n"
                   "Threads:\t4\n")

    def write_net(self, ifaces: dict[str, tuple[int, int, int, int]]) -> None:
        lines = [f"{name:>6}: {rb} {rp} 0 0 0 0 0 0 {tb} {tp} 0 0 0 0 0 0"
                 for name, (rb, rp, tb, tp) in ifaces.items()]
        self.write("net/dev", NET_HEADER + "".join(line + "\n" for line in lines))


def fake_statvfs(blocks: int, bfree: int, bavail: int, frsize: int = 4096):
    return lambda path: SimpleNamespace(f_blocks=blocks, f_bfree=bfree, f_bavail=bavail,
                                        f_frsize=frsize, f_bsize=frsize)


@pytest.fixture
def proc(tmp_path) -> FakeProc:
    return FakeProc(tmp_path / "proc")


@pytest.fixture
def disk_80(monkeypatch):
    # 100 blocks reserved for root: used 800 / (used 800 + available 200) = 80 %, as df says.
    monkeypatch.setattr(monitor_mod.os, "statvfs", fake_statvfs(1100, 300, 200))


def make(proc: FakeProc, clock: Clock, alarms: Alarms | None = None, **kw) -> SystemMonitor:
    return SystemMonitor(alarms or Alarms(clock=clock), proc_root=str(proc.root),
                         clock=clock, **kw)


def test_two_samples_give_exact_percentages_and_rates(proc, disk_80):
    clock = Clock(1000.0)
    mon = make(proc, clock, disk_path="/srv")
    assert mon.latest() is None and mon.history() == []

    first = mon.sample()
    assert first["time"] == 1000.0
    assert first["cpu_percent"] == 0.0 and first["cpu_per_core"] == [0.0, 0.0]
    assert first["network"] == {"rx_bytes_per_s": 0.0, "tx_bytes_per_s": 0.0,
                                "rx_packets_per_s": 0.0, "tx_packets_per_s": 0.0}

    # core0: 150 user + 50 system busy, 50 idle -> 80 %; its 100 guest jiffies are already
    # inside user and must not be counted twice.
    proc.add_cpu(0, user=150, system=50, idle=50, guest=100)
    # core1: 100 busy, 550 idle + 100 iowait -> 100/750
    proc.add_cpu(1, user=50, system=50, idle=550, iowait=100)
    proc.write_stat()
    proc.write_net({"lo": (2 * 10**9, 2 * 10**6, 2 * 10**9, 2 * 10**6),   # ignored
                    "eth0": (105_000, 1_050, 52_500, 525),
                    "eth1": (8_000, 80, 3_500, 35)})
    clock.t = 1005.0
    second = mon.sample()

    assert second["cpu_per_core"] == [80.0, 13.33]
    assert second["cpu_percent"] == 30.0                 # 300 busy of 1000 jiffies
    assert second["memory"] == {"total_bytes": 16_000_000 * 1024,
                                "available_bytes": 4_000_000 * 1024, "used_percent": 75.0}
    assert second["process_rss_bytes"] == 51_200 * 1024
    assert second["disk"] == {"path": "/srv", "total_bytes": 1100 * 4096,
                              "free_bytes": 200 * 4096, "used_percent": 80.0}
    # (5000 + 1000) B, 60 pkts in, (2500 + 500) B, 30 pkts out over 5 s
    assert second["network"] == {"rx_bytes_per_s": 1200.0, "tx_bytes_per_s": 600.0,
                                 "rx_packets_per_s": 12.0, "tx_packets_per_s": 6.0}
    assert mon.latest() is second
    assert mon.history()[-1] == {"time": 1005.0, "cpu_percent": 30.0, "memory_percent": 75.0,
                                 "disk_percent": 80.0, "rx_bytes_per_s": 1200.0,
                                 "tx_bytes_per_s": 600.0}
    assert len(mon.history()) == 2


def cpu_steps(mon: SystemMonitor, proc: FakeProc, clock: Clock, percents: list[int]) -> list[float]:
    seen = []
    for p in percents:
        proc.busy(p)
        clock.t += 5
        seen.append(mon.sample()["cpu_percent"])
    return seen


def test_high_cpu_alarm_needs_three_consecutive_samples_and_clears_with_hysteresis(proc, disk_80):
    clock = Clock()
    alarms = Alarms(clock=clock)
    mon = make(proc, clock, alarms)
    mon.sample()

    assert cpu_steps(mon, proc, clock, [95, 95]) == [95.0, 95.0]
    assert alarms.active() == []                         # two high samples: a spike
    cpu_steps(mon, proc, clock, [50, 95, 95])
    assert alarms.active() == []                         # the run was broken, counting restarts
    cpu_steps(mon, proc, clock, [90])                    # third in a row, exactly at 90
    [alarm] = alarms.active()
    assert (alarm.key, alarm.kind, alarm.severity) == ("system:cpu", "High CPU", "High")
    assert alarm.since == clock.t

    cpu_steps(mon, proc, clock, [85, 80])                # below 90 but not below 80: kept
    assert [a.key for a in alarms.active()] == ["system:cpu"]
    cpu_steps(mon, proc, clock, [79])
    assert alarms.active() == []


def test_cpu_thresholds_are_configurable(proc, disk_80):
    clock = Clock()
    alarms = Alarms(clock=clock)
    mon = make(proc, clock, alarms, cpu_high=50.0, cpu_clear=20.0, cpu_samples=1)
    mon.sample()
    cpu_steps(mon, proc, clock, [60])
    assert [a.kind for a in alarms.active()] == ["High CPU"]
    cpu_steps(mon, proc, clock, [30])
    assert [a.kind for a in alarms.active()] == ["High CPU"]
    cpu_steps(mon, proc, clock, [10])
    assert alarms.active() == []


def test_memory_alarm_raises_at_90_and_clears_below_85(proc, disk_80):
    clock = Clock()
    alarms = Alarms(clock=clock)
    mon = make(proc, clock, alarms)
    proc.write_meminfo(total_kb=1_000_000, available_kb=110_000)     # 89 %
    assert mon.sample()["memory"]["used_percent"] == 89.0
    assert alarms.active() == []
    proc.write_meminfo(total_kb=1_000_000, available_kb=100_000)     # 90 %
    mon.sample()
    [alarm] = alarms.active()
    assert (alarm.key, alarm.kind, alarm.severity) == ("system:memory", "Memory", "High")
    assert "90.0%" in alarm.text
    proc.write_meminfo(total_kb=1_000_000, available_kb=150_000)     # 85 %: still high
    mon.sample()
    assert [a.key for a in alarms.active()] == ["system:memory"]
    proc.write_meminfo(total_kb=1_000_000, available_kb=160_000)     # 84 %
    mon.sample()
    assert alarms.active() == []


def test_disk_alarm_raises_at_90_and_clears_below_85(proc, monkeypatch):
    clock = Clock()
    alarms = Alarms(clock=clock)
    mon = make(proc, clock, alarms, disk_path="/var/lib/vosmedia")
    monkeypatch.setattr(monitor_mod.os, "statvfs", fake_statvfs(1000, 80, 80))    # 92 %
    mon.sample()
    [alarm] = alarms.active()
    assert (alarm.key, alarm.kind, alarm.severity) == ("system:disk", "Disk", "High")
    assert "/var/lib/vosmedia" in alarm.text
    monkeypatch.setattr(monitor_mod.os, "statvfs", fake_statvfs(1000, 140, 140))  # 86 %
    mon.sample()
    assert [a.key for a in alarms.active()] == ["system:disk"]
    monkeypatch.setattr(monitor_mod.os, "statvfs", fake_statvfs(1000, 160, 160))  # 84 %
    mon.sample()
    assert alarms.active() == []


def test_real_disk_against_thresholds(proc, tmp_path):
    clock = Clock()
    alarms = Alarms(clock=clock)
    make(proc, clock, alarms, disk_path=str(tmp_path), disk_high=0.0, disk_clear=0.0).sample()
    assert [a.kind for a in alarms.active()] == ["Disk"]      # any usage is >= 0 %

    alarms = Alarms(clock=clock)
    sample = make(proc, clock, alarms, disk_path=str(tmp_path), disk_high=100.1).sample()
    assert alarms.active() == []                              # no disk is over 100 %
    st = os.statvfs(tmp_path)
    assert sample["disk"]["total_bytes"] == st.f_blocks * st.f_frsize > 0


def test_history_keeps_only_history_seconds(proc, disk_80):
    clock = Clock(0.0)
    mon = make(proc, clock, history_seconds=60, interval=10)
    for t in range(0, 130, 10):
        clock.t = float(t)
        mon.sample()
    times = [p["time"] for p in mon.history()]
    assert times == [60.0, 70.0, 80.0, 90.0, 100.0, 110.0, 120.0]    # oldest first
    assert set(mon.history()[0]) == {"time", "cpu_percent", "memory_percent", "disk_percent",
                                     "rx_bytes_per_s", "tx_bytes_per_s"}
    clock.t = 1000.0                                    # a long gap leaves only the new point
    mon.sample()
    assert [p["time"] for p in mon.history()] == [1000.0]


def test_malformed_and_missing_proc_files_give_zeros(proc, tmp_path):
    clock = Clock()
    alarms = Alarms(clock=clock)
    mon = make(proc, clock, alarms, disk_path=str(tmp_path / "no-such-dir"))
    proc.write("stat", "cpu  x y z\ncpu0\nintr 1 2\n\x00garbage")
    proc.write("meminfo", "MemTotal: lots kB\nMemAvailable:\nnonsense\n")
    proc.write("self/status", "VmRSS:\tunknown kB\n")
    proc.write("net/dev", NET_HEADER + "eth0: 1 2 3\nbroken line\n")
    for _ in range(2):
        clock.t += 5
        s = mon.sample()
    assert s["cpu_percent"] == 0.0 and s["cpu_per_core"] == []
    assert s["memory"] == {"total_bytes": 0, "available_bytes": 0, "used_percent": 0.0}
    assert s["process_rss_bytes"] == 0
    assert s["disk"] == {"path": str(tmp_path / "no-such-dir"), "total_bytes": 0,
                         "free_bytes": 0, "used_percent": 0.0}
    assert set(s["network"].values()) == {0.0}
    assert alarms.active() == []

    for name in ("stat", "meminfo", "self/status", "net/dev"):
        (proc.root / name).unlink()
    clock.t += 5
    s = mon.sample()
    assert s["cpu_percent"] == 0.0 and s["memory"]["total_bytes"] == 0
    assert len(mon.history()) == 3


def test_machine_without_network_devices_and_counter_resets(proc, disk_80):
    clock = Clock()
    mon = make(proc, clock)
    proc.write_net({"lo": (5, 5, 5, 5)})
    mon.sample()
    clock.t += 5
    proc.write_net({"lo": (50, 50, 50, 50)})
    assert set(mon.sample()["network"].values()) == {0.0}

    # An interface that appears, then resets its counters: never a negative rate.
    proc.write_net({"eth0": (10_000, 100, 10_000, 100)})
    clock.t += 5
    mon.sample()
    proc.write_net({"eth0": (500, 5, 20_000, 110)})
    clock.t += 5
    net = mon.sample()["network"]
    assert net == {"rx_bytes_per_s": 0.0, "tx_bytes_per_s": 2000.0,
                   "rx_packets_per_s": 0.0, "tx_packets_per_s": 2.0}


def test_unreadable_memory_does_not_clear_an_active_alarm(proc, disk_80):
    clock = Clock()
    alarms = Alarms(clock=clock)
    mon = make(proc, clock, alarms)
    proc.write_meminfo(total_kb=1_000_000, available_kb=10_000)
    mon.sample()
    assert [a.key for a in alarms.active()] == ["system:memory"]
    proc.write("meminfo", "")
    mon.sample()
    assert [a.key for a in alarms.active()] == ["system:memory"]     # no data is not healthy


def test_run_logs_a_failed_sample_and_keeps_going(proc, disk_80, caplog):
    mon = make(proc, Clock(), interval=0)
    real = mon.sample
    calls = []

    def flaky() -> dict:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real()

    mon.sample = flaky

    async def drive() -> None:
        task = asyncio.create_task(mon.run())
        for _ in range(1000):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.ERROR, logger="vosmedia.monitor"):
        asyncio.run(drive())
    assert len(calls) >= 3
    assert len(mon.history()) == len(calls) - 1
    [record] = [r for r in caplog.records if r.name == "vosmedia.monitor"]
    assert record.exc_info and "boom" in str(record.exc_info[1])


def test_real_proc_gives_sane_values():
    alarms = Alarms()
    mon = SystemMonitor(alarms, proc_root="/proc")
    first = mon.sample()
    end = time.process_time() + 0.05
    while time.process_time() < end:       # some CPU work so the delta is not empty
        pass
    s = mon.sample()
    assert len(s["cpu_per_core"]) == len(first["cpu_per_core"]) == os.cpu_count()
    for value in [s["cpu_percent"], *s["cpu_per_core"], s["memory"]["used_percent"],
                  s["disk"]["used_percent"]]:
        assert 0.0 <= value <= 100.0
    assert s["cpu_percent"] > 0.0
    assert 0 < s["memory"]["available_bytes"] <= s["memory"]["total_bytes"]
    assert 0 < s["process_rss_bytes"] < s["memory"]["total_bytes"]
    assert 0 <= s["disk"]["free_bytes"] <= s["disk"]["total_bytes"]
    assert s["disk"]["total_bytes"] > 0
    assert all(v >= 0.0 for v in s["network"].values())
    assert len(mon.history()) == 2
