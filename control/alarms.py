"""Alarms the switch raises about itself and its peers (a vendor unreachable, ...): each
has a key, a severity and a text, is raised once and cleared when the cause is gone.
Logged when raised and cleared; the Web API and Manager list the active ones."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

log = logging.getLogger("vosmedia.alarms")

SEVERITIES = ("High", "Medium", "Low")


@dataclass(frozen=True)
class Alarm:
    key: str              # e.g. "vendor-unreachable:rg1": one alarm per cause
    kind: str             # e.g. "Vendor Unreachable"
    severity: str
    text: str
    since: float


class Alarms:
    def __init__(self, clock=time.time):
        self.clock = clock
        self._active: dict[str, Alarm] = {}

    def raise_(self, key: str, kind: str, severity: str, text: str) -> bool:
        """Raise (once); True if it was not active already."""
        if key in self._active:
            return False
        self._active[key] = Alarm(key, kind, severity, text, self.clock())
        log.warning("alarm %s (%s): %s", kind, severity, text)
        return True

    def clear(self, key: str) -> bool:
        alarm = self._active.pop(key, None)
        if alarm is not None:
            log.info("alarm cleared: %s: %s", alarm.kind, alarm.text)
        return alarm is not None

    def active(self) -> list[Alarm]:
        return sorted(self._active.values(), key=lambda a: (SEVERITIES.index(a.severity), a.since))
