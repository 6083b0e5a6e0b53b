"""Flood protection for SIP input, sans-I/O.

* Per-source token bucket (default 10 requests/s, burst 20): a source that sends faster is
  dropped silently before its messages are parsed, so floods cost almost nothing.
* Scanner User-Agents (friendly-scanner, sipvicious, ...) are blocked on sight.
* Dynamic blacklist: too many failed authentications in a window blocks the source for a
  while; scanner sightings block it until cleared.
* A source that keeps flooding past its bucket (``flood_block`` drops within a second) is
  blocked for ``block_for`` seconds; :attr:`FloodGuard.version` changes with the block list
  so the transport can drop blocked sources in the kernel (``control.bpf``).
* Trusted peers (customer and vendor gateways) are exempt from all of it.

Responses (for our own requests) are never limited: they are not what floods consist of,
and dropping them would only hurt our own calls.
"""
from __future__ import annotations

from collections import deque

SCANNERS = ("friendly-scanner", "sipvicious", "vaxsipuseragent", "sipscan", "sipcli")
FOREVER = float("inf")


class FloodGuard:
    def __init__(self, *, rate: float = 10.0, burst: float = 20.0, trusted=(),
                 auth_failures: int = 5, auth_window: float = 600.0, block_for: float = 600.0,
                 flood_block: int = 200, max_sources: int = 100_000):
        self.rate = rate
        self.burst = burst
        self.trusted = set(trusted)
        self.auth_failures = auth_failures
        self.auth_window = auth_window
        self.block_for = block_for
        self.flood_block = flood_block
        self.max_sources = max_sources
        # source -> [tokens, last refill time, drops in the current second, that second]
        self._buckets: dict[str, list[float]] = {}
        self._blocked: dict[str, float] = {}            # source -> until (FOREVER for attacks)
        self._failures: dict[str, deque] = {}
        self.dropped = 0
        self.version = 0                               # bumped whenever the block list changes

    def allow(self, source: str, now: float) -> bool:
        """Whether a request from ``source`` may be processed (spends one token)."""
        if source in self.trusted:
            return True
        until = self._blocked.get(source)
        if until is not None:
            if now < until:
                self.dropped += 1
                return False
            del self._blocked[source]
            self.version += 1
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= self.max_sources:
                self._forget_idle(now)
            self._buckets[source] = [self.burst - 1.0, now, 0, int(now)]
            return True
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            self.dropped += 1
            second = int(now)
            if bucket[3] != second:
                bucket[2], bucket[3] = 0, second
            bucket[2] += 1
            if bucket[2] >= self.flood_block:
                self.block(source, now, self.block_for)     # a flood, not a busy peer
            return False
        bucket[0] = tokens - 1.0
        return True

    def _forget_idle(self, now: float) -> None:
        """Buckets refilled to the brim carry no information: drop them to bound memory."""
        full = self.burst / self.rate if self.rate else 0.0
        for source in [s for s, b in self._buckets.items() if now - b[1] >= full]:
            del self._buckets[source]

    def is_scanner(self, user_agent: str | None) -> bool:
        if not user_agent:
            return False
        lowered = user_agent.lower()
        return any(name in lowered for name in SCANNERS)

    def block(self, source: str, now: float, seconds: float | None = None) -> None:
        if source in self.trusted:
            return
        self._blocked[source] = FOREVER if seconds is None else now + seconds
        self.version += 1

    def unblock(self, source: str) -> None:
        if self._blocked.pop(source, None) is not None:
            self.version += 1
        self._failures.pop(source, None)

    def auth_failed(self, source: str, now: float) -> bool:
        """Count a failed authentication; returns True when the source got blocked."""
        if source in self.trusted:
            return False
        times = self._failures.setdefault(source, deque())
        times.append(now)
        while times and now - times[0] > self.auth_window:
            times.popleft()
        if len(times) >= self.auth_failures:
            self.block(source, now, self.block_for)
            times.clear()
            return True
        return False

    def blocked(self, now: float) -> dict[str, float]:
        """Blocked sources and seconds left (inf for permanent blocks)."""
        return {s: (until - now) for s, until in self._blocked.items() if until > now}
