"""What routing knows about gateways while the switch runs: lines in use per routing
gateway and gateway group, calls per mapping gateway, calls per second, reachability
(OPTIONS liveness) and recent outcomes for the ASR sort.

Owned by the SIP event loop (single-threaded); Routing Analysis reads a snapshot of it.
"""
from __future__ import annotations

from collections import Counter, deque

from control.routing.transform import CallerPool


class CallRate:
    """Calls per second of one mapping gateway: a sliding one-second window of admitted
    call times. ``admit`` says whether one more fits ``limit``."""

    __slots__ = ("times",)

    def __init__(self):
        self.times: deque[float] = deque()

    def admit(self, now: float, limit: int) -> bool:
        while self.times and self.times[0] <= now - 1.0:
            self.times.popleft()
        if len(self.times) >= limit:
            return False
        self.times.append(now)
        return True


class RouteState:
    def __init__(self):
        self.lines: Counter = Counter()           # routing gateway id -> calls on it now
        self.group_lines: Counter = Counter()     # gateway group id -> calls on its gateways
        self.ingress: Counter = Counter()         # mapping gateway id -> calls from it now
        self.rates: dict[int, CallRate] = {}      # mapping gateway id -> its CPS window
        self.last_seen: dict[int, float] = {}     # mapping gateway id -> its latest INVITE (monotonic)
        self.unreachable: set[int] = set()        # routing gateway ids failing OPTIONS
        self.missed: Counter = Counter()          # unanswered OPTIONS in a row
        self.outcomes: dict[int, deque] = {}      # routing gateway id -> (time, answered)
        self.pools: dict[int, tuple] = {}         # routing gateway id -> (its pool rules, CallerPool)

    # -- lines ------------------------------------------------------------------------

    def seize(self, gateway) -> None:
        self.lines[gateway.id] += 1
        if gateway.group is not None:
            self.group_lines[gateway.group] += 1

    def release(self, gateway) -> None:
        decrement(self.lines, gateway.id)
        if gateway.group is not None:
            decrement(self.group_lines, gateway.group)

    def pool_for(self, gateway) -> CallerPool | None:
        """The gateway's caller number pool (None: it has none). Kept across calls so
        round-robin and multiplex counts carry on; made anew when its rules change."""
        if not gateway.caller_pool:
            return None
        rules = (gateway.caller_pool, gateway.caller_pool_mode, gateway.caller_pool_multiplexes)
        held = self.pools.get(gateway.id)
        if held is None or held[0] != rules:
            held = self.pools[gateway.id] = (rules, CallerPool(*rules))
        return held[1]

    # -- ASR ----------------------------------------------------------------------------

    def outcome(self, gateway_id: int, now: float, answered: bool, window: float = 86400) -> None:
        history = self.outcomes.setdefault(gateway_id, deque())
        history.append((now, answered))
        while history and history[0][0] < now - window:
            history.popleft()

    def asr(self, gateway_id: int, now: float, window: float) -> tuple[int, float]:
        """(attempts, answer-seizure ratio in percent) over the last ``window`` seconds."""
        recent = [answered for when, answered in self.outcomes.get(gateway_id, ()) if when >= now - window]
        if not recent:
            return 0, 0.0
        return len(recent), 100.0 * sum(recent) / len(recent)

    # -- liveness -------------------------------------------------------------------------

    def probe_answered(self, gateway_id: int) -> bool:
        """An OPTIONS answer (any status) came; True if the gateway was unreachable."""
        self.missed.pop(gateway_id, None)
        if gateway_id in self.unreachable:
            self.unreachable.discard(gateway_id)
            return True
        return False

    def probe_missed(self, gateway_id: int, limit: int) -> bool:
        """An OPTIONS probe went unanswered; True when this makes the gateway unreachable."""
        self.missed[gateway_id] += 1
        if self.missed[gateway_id] >= limit and gateway_id not in self.unreachable:
            self.unreachable.add(gateway_id)
            return True
        return False


def decrement(counter: Counter, key) -> None:
    """One fewer in ``counter`` (the key goes at zero, so counters stay small)."""
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
