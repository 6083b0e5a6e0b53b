"""Call records: one for every call attempt, written in batches to SQLite.

The B2BUA hands a :class:`CallRecord` to a sink when a call ends; the sink appends it to an
in-memory batch and :meth:`SqliteCdrSink.flush` (run by the application every
``flush_interval`` and at shutdown) writes the batch in one transaction. The call path never
waits on the disk. Pricing is added by the billing module.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field


@dataclass
class CallRecord:
    call_id: str                       # the caller's Call-ID
    caller: str
    callee: str
    customer: str = ""
    vendor: str = ""
    caller_ip: str = ""
    vendor_ip: str = ""
    start: float = 0.0                 # INVITE received (Unix time)
    progress: float | None = None      # first 18x
    answer: float | None = None
    end: float = 0.0
    pdd_ms: int | None = None          # post-dial delay: INVITE to first 18x/200
    duration_s: float = 0.0            # answer to end
    sip_code: int = 0                  # final status sent to the caller (200 for answered calls)
    reason: str = ""                   # why it ended: a name from control.reasons
    detail: str = ""                   # free text adding to the reason (e.g. the codec lists)
    end_direction: str = ""            # "caller", "callee" or "switch"
    caller_codec: str = ""
    vendor_codec: str = ""
    attempts: int = 0                  # vendor attempts (failover)
    dtmf: str = ""                     # digits seen in the call, in order
    media: dict = field(default_factory=dict)   # per-leg packets/bytes/loss/jitter


_COLUMNS = [name for name in CallRecord.__dataclass_fields__]
_MEDIA = _COLUMNS.index("media")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cdr (
    id INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL, caller TEXT, callee TEXT, customer TEXT, vendor TEXT,
    caller_ip TEXT, vendor_ip TEXT, start REAL, progress REAL, answer REAL, "end" REAL,
    pdd_ms INTEGER, duration_s REAL, sip_code INTEGER, reason TEXT, detail TEXT, end_direction TEXT,
    caller_codec TEXT, vendor_codec TEXT, attempts INTEGER, dtmf TEXT, media TEXT
);
CREATE INDEX IF NOT EXISTS cdr_start ON cdr(start);
"""


class SqliteCdrSink:
    def __init__(self, path: str):
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._add_missing_columns()
        self._batch: list[CallRecord] = []
        self.written = 0

    def _add_missing_columns(self) -> None:
        """A store created by an older version gains the columns added since (empty)."""
        present = {row[1] for row in self._db.execute("PRAGMA table_info(cdr)")}
        for name in _COLUMNS:
            if name not in present:
                self._db.execute(f'ALTER TABLE cdr ADD COLUMN "{name}"')

    def write(self, record: CallRecord) -> None:
        self._batch.append(record)

    def pending(self) -> int:
        return len(self._batch)

    def flush(self) -> int:
        """Write the batch in one transaction; returns how many records were written."""
        if not self._batch:
            return 0
        batch, self._batch = self._batch, []
        rows = []
        for record in batch:
            # attribute reads, not dataclasses.asdict: it deep-copies the media statistics
            row = [getattr(record, c) for c in _COLUMNS]
            row[_MEDIA] = json.dumps(row[_MEDIA], separators=(",", ":"))
            rows.append(row)
        quoted = ", ".join(f'"{c}"' for c in _COLUMNS)
        marks = ", ".join("?" for _ in _COLUMNS)
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(f"INSERT INTO cdr ({quoted}) VALUES ({marks})", rows)
        except BaseException:
            self._batch[:0] = batch             # keep them for the next attempt
            raise
        self.written += len(rows)
        return len(rows)

    def records(self, limit: int = 100) -> list[dict]:
        """The latest records, newest first (for operators and tests)."""
        cursor = self._db.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in _COLUMNS)} '
                                  f"FROM cdr ORDER BY id DESC LIMIT ?", (limit,))
        out = []
        for row in cursor.fetchall():
            record = dict(zip(_COLUMNS, row))
            record["media"] = json.loads(record["media"] or "{}")
            out.append(record)
        return out

    def close(self) -> None:
        self.flush()
        self._db.close()
