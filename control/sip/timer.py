"""Timers for sans-I/O protocol code.

Protocol objects never read a clock: the adapter tells :class:`Timers` what time it is
(``advance(now)``), protocol code schedules callbacks relative to that time, and the adapter
asks for :meth:`Timers.next_deadline` to know when to wake up next. Tests drive the same
code with a hand-moved clock.
"""
from __future__ import annotations

import heapq
from typing import Callable


class Timer:
    """A scheduled callback; :meth:`cancel` is O(1) (the heap entry is skipped later)."""

    __slots__ = ("when", "fn", "args", "alive")

    def __init__(self, when: float, fn: Callable, args: tuple):
        self.when = when
        self.fn = fn
        self.args = args
        self.alive = True

    def cancel(self) -> None:
        self.alive = False


class Timers:
    def __init__(self, now: float = 0.0):
        self.now = now
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = 0

    def after(self, delay: float, fn: Callable, *args) -> Timer:
        return self.at(self.now + delay, fn, *args)

    def at(self, when: float, fn: Callable, *args) -> Timer:
        timer = Timer(when, fn, args)
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, timer))
        return timer

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and not heap[0][2].alive:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def advance(self, now: float) -> int:
        """Set the time and run every callback due by then (in deadline order); returns
        how many ran. Callbacks may schedule more timers, which run too if already due."""
        if now > self.now:
            self.now = now
        heap = self._heap
        ran = 0
        while heap and heap[0][0] <= self.now:
            timer = heapq.heappop(heap)[2]
            if timer.alive:
                timer.alive = False
                timer.fn(*timer.args)
                ran += 1
        return ran

    def __len__(self) -> int:
        return sum(1 for entry in self._heap if entry[2].alive)
