"""Helpers for tests that run the switch and real sipp peers against it."""
from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from control.app import Switch

SIPP = shutil.which("sipp") or ("/usr/bin/sipp" if Path("/usr/bin/sipp").exists() else None)
SCENARIOS = Path(__file__).parent / "sipp"


def free_udp_port() -> int:
    """A port free for UDP and TCP (sipp and the switch bind both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            if port % 2 == 0 and port < 60000:
                return port


def free_media_port() -> int:
    """An even port P with P..P+3 free (sipp binds its media port and neighbours)."""
    while True:
        port = free_udp_port()
        socks = []
        try:
            for p in range(port, port + 4):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()


class RunningSwitch:
    """The real switch on its own asyncio loop in a background thread."""

    def __init__(self, config, data_dir: Path, media: bool = True, **options):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.switch = Switch(config, data_dir=str(data_dir), media=media, **options)
        self.run(self.switch.start())
        self.port = self.switch.addresses[0][1]

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn, *args):
        """Run a plain function on the switch's loop (its objects are not thread-safe)."""
        async def wrapper():
            return fn(*args)
        return self.run(wrapper())

    def records(self) -> list[dict]:
        def fetch():
            self.switch.cdr.flush()
            return self.switch.cdr.records()
        return self.call(fetch)

    def wait_records(self, count: int, timeout: float = 10) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            records = self.records()
            if len(records) >= count or time.monotonic() > deadline:
                return records
            time.sleep(0.05)

    def stop(self) -> None:
        try:
            self.run(self.switch.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()


def render(name: str, folder: Path, **values) -> Path:
    """A scenario from tests/sipp with %%KEY%% placeholders filled in."""
    text = (SCENARIOS / name).read_text()
    for key, value in values.items():
        text = text.replace(f"%%{key.upper()}%%", str(value))
    out = folder / Path(name).name
    out.write_text(text)
    return out


def sipp_args(role_args: list[str], port: int, folder: Path, name: str, calls: int = 1,
              timeout: int = 20) -> list[str]:
    return [SIPP, *role_args, "-i", "127.0.0.1", "-p", str(port), "-m", str(calls), "-nostdin",
            "-timeout", f"{timeout}s", "-timeout_error", "-trace_err", "-trace_msg",
            "-error_file", str(folder / f"{name}.err"), "-message_file", str(folder / f"{name}.msg"),
            "-mp", str(free_media_port())]


class Peer:
    """A sipp process (UAS in the background, or a UAC run to completion)."""

    def __init__(self, args: list[str], folder: Path, name: str):
        self.name = name
        self.folder = folder
        self.out = open(folder / f"{name}.out", "wb")
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=subprocess.STDOUT, cwd=folder)

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"sipp {self.name} did not finish in {timeout}s\n{self.report()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()

    def report(self) -> str:
        parts = []
        for suffix in ("out", "err", "msg"):
            path = self.folder / f"{self.name}.{suffix}"
            if path.exists():
                text = path.read_text(errors="replace")
                parts.append(f"--- {path.name}\n{text[-4000:]}")
        return "\n".join(parts)
