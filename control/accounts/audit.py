"""The audit trail and the changesets handed to the store.

Every accepted change yields one :class:`AuditEntry` per record it touched, with the
record before and after as JSON-ready dicts (Decimal and dates as text), so the store can
write them without knowing the model. ``owners`` are the accounts whose agents may read
the entry: the record's chain of agents at the time, on both sides of a move, so an agent
never reads a change that happened while the record was outside its subtree.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Mapping


def snapshot(record: Any) -> dict[str, Any]:
    """A record as a dict of JSON-ready values."""
    return {f.name: _plain(getattr(record, f.name)) for f in dataclasses.fields(record)}


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(item) for item in value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str                          # "operator:alice", "agent:1001", "system:setup"
    action: str                         # "account.update", "operator.create", ...
    entity: str                         # "account" or "operator"
    entity_id: str
    before: Mapping[str, Any] | None    # None for a creation
    after: Mapping[str, Any] | None     # None for a deletion
    memo: str = ""
    owners: frozenset[str] = frozenset()

    @property
    def changed(self) -> tuple[str, ...]:
        """Names of the fields whose value differs between before and after."""
        before, after = self.before or {}, self.after or {}
        keys = before.keys() | after.keys()
        return tuple(sorted(k for k in keys if before.get(k) != after.get(k)))


class AuditLog:
    """Append-only, numbered. The store persists ``since(last_seq_it_wrote)``."""

    def __init__(self, start_seq: int = 0) -> None:
        self.entries: list[AuditEntry] = []
        self._seq = self._start = start_seq
        self._lock = threading.Lock()

    def record(self, at: datetime, actor: str, action: str, entity: str, entity_id: str,
               before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
               memo: str = "", owners: frozenset[str] = frozenset()) -> AuditEntry:
        with self._lock:
            self._seq += 1
            entry = AuditEntry(self._seq, at, actor, action, entity, entity_id,
                               before, after, memo, owners)
            self.entries.append(entry)
            return entry

    def since(self, seq: int) -> list[AuditEntry]:
        with self._lock:
            # Numbers are contiguous from start_seq + 1, so the position is arithmetic.
            return self.entries[max(0, seq - self._start):]


@dataclass(frozen=True)
class Changeset:
    """What one accepted request changed: records to save, ids to delete, its audit entries."""

    saved: tuple[Any, ...] = ()
    removed: tuple[str, ...] = ()
    audit: tuple[AuditEntry, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.saved or self.removed)


NO_CHANGE = Changeset()
