"""Durable CDR and ledger writes off the call path.

:class:`StoreWriter` takes CDRs (``write``) and charges (``charge``) from the event loop
thread. Each is first appended to the write-ahead journal (one ``write(2)``, no fsync,
microseconds) and then queued; a background thread gathers the queue into batches,
fsyncs the journal, and commits each batch in one transaction together with the
journal checkpoint (how far the journal has been applied). So:

* a call's CDR and charge survive ``kill -9`` as soon as ``write``/``charge`` returned,
  and power loss once the batch's fsync is done (within ``max_delay`` plus one commit);
* at start the journal is replayed from the checkpoint; since the checkpoint commits in
  the same transaction as the rows it covers, each record is applied exactly once;
* a record the database refuses for good (e.g. a charge for a deleted account) is moved
  to ``rejected.jsonl`` in the journal directory and logged, instead of blocking the rest;
  a database that is down is retried until it is back.

It is also the B2BUA's CDR sink: ``write(CallRecord)``, ``flush()``, ``close()``,
``pending()`` and ``records()`` for operators and tests.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, exc, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from control.store import cdrs, ledger
from control.store.engine import Store, StoreError
from control.store.journal import Journal, encode
from control.store.rows import check_values
from control.store.schema import ledger as ledger_table, store_journal
from control.store.types import to_units

log = logging.getLogger("vosmedia.store")

_FLUSH = object()      # queue marker: commit what has been gathered now
_STOP = object()       # queue marker: commit the rest and end the thread


@dataclass(slots=True)
class _Item:
    seq: int           # acceptance order (0 for records replayed at start)
    segment: int
    offset: int | None  # end offset in the journal segment; None if the append failed
    kind: str          # "cdr" or "ledger"
    data: dict


class _Permanent(Exception):
    """The database refused a batch for a reason that retrying will not change."""


class _Abandoned(Exception):
    """Closing timed out while the database was unreachable: the journal keeps the rest."""


class StoreWriter:
    def __init__(self, store: Store, journal_dir: str, *, batch_size: int = 500, max_delay: float = 0.05,
                 segment_bytes: int = 64 << 20):
        self.store = store
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.segment_bytes = segment_bytes
        self.journal = Journal(journal_dir)
        self.written = 0           # records committed by this writer (replayed ones included)
        self.rejected = 0
        self.journal_errors = 0
        self._lock = threading.Lock()          # journal order == queue order
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._done = threading.Condition()
        self._accepted = 0
        self._committed = 0
        self._closed = False
        self._abandon = threading.Event()
        try:
            self.replayed = self._replay()
        except BaseException:
            self.journal.close()
            raise
        self._thread = threading.Thread(target=self._run, name="vosmedia-store-writer", daemon=True)
        self._thread.start()

    # --- called from the event loop (or any thread) -----------------------------------

    def write(self, record) -> None:
        """Accept a CDR: a :class:`control.cdr.CallRecord` or a dict of ``cdrs`` columns
        (with optional ``attempt_details``). Durable against a crash when this returns."""
        self._accept("cdr", cdrs.cdr_row(record))

    def charge(self, account_id: str, amount, *, kind: str = "charge", call_id: str | None = None,
               memo: str = "", operator: str = "system", time: float | None = None) -> None:
        """Accept a ledger entry (negative ``amount`` debits), applied like
        :func:`control.store.ledger.append` with the balance updated in the same commit."""
        check_values(ledger_table, {"kind": kind})
        to_units(amount, 4)
        self._accept("ledger", {"account_id": account_id, "amount": Decimal(amount), "kind": kind,
                                "call_id": call_id, "memo": memo, "operator": operator,
                                "time": _now() if time is None else time})

    def _accept(self, kind: str, data: dict) -> None:
        frame = encode({"k": kind, "r": data})
        with self._lock:
            if self._closed:
                raise StoreError("the store writer is closed")
            try:
                offset = self.journal.append(frame)
            except OSError as error:
                # still committed from memory; only crash-safety is lost for this record
                self.journal_errors += 1
                offset = None
                log.error("journal append failed (%s): record kept in memory only", error)
            self._accepted += 1
            self._queue.put(_Item(self._accepted, self.journal.segment, offset, kind, data))

    def pending(self) -> int:
        """Records accepted but not yet committed to the database."""
        return self._accepted - self._committed

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record accepted so far is in the database; False on timeout."""
        with self._lock:
            target = self._accepted
        if self._committed >= target:
            return True
        self._queue.put(_FLUSH)
        with self._done:
            return self._done.wait_for(lambda: self._committed >= target or not self._thread.is_alive(), timeout)

    def records(self, limit: int = 100) -> list[dict]:
        """The latest CDRs, newest first, keyed like CallRecord (as the SQLite sink had it)."""
        return cdrs.latest_records(self.store, limit)

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued and stop. If the database stays unreachable past
        ``timeout``, the rest stays in the journal and is applied at the next start."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abandon.set()
            self._thread.join(10)
        self.journal.close()

    # --- the writer thread --------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                batch, stop = self._gather()
                if batch:
                    self._commit(batch)
                self._notify()
                self._maybe_rotate()
                if stop:
                    return
        except _Abandoned:
            log.warning("store writer stopped with %d records left in the journal", self.pending())
        except Exception:
            log.exception("store writer failed; records stay in the journal until the next start")
        finally:
            self._notify()

    def _gather(self) -> tuple[list[_Item], bool]:
        """Wait for a record, then collect more for up to ``max_delay`` or ``batch_size``."""
        batch: list[_Item] = []
        item = self._queue.get()
        deadline = time.monotonic() + self.max_delay
        while True:
            if item is _STOP:
                return batch, True
            if item is _FLUSH:
                return batch, False
            batch.append(item)
            if len(batch) >= self.batch_size:
                return batch, False
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                return batch, False

    def _notify(self) -> None:
        with self._done:
            self._done.notify_all()

    def _commit(self, batch: list[_Item]) -> None:
        try:
            self._apply_with_retry(batch)
        except _Permanent:
            # find the records at fault; the others still go in
            for item in batch:
                try:
                    self._apply_with_retry([item])
                except _Permanent as error:
                    self._reject(item, error.__cause__)
        self.written += len(batch)
        self._committed = max(self._committed, batch[-1].seq)

    def _apply_with_retry(self, items: list[_Item]) -> None:
        delay = 0.1
        while True:
            try:
                self.journal.sync()
                with self.store.write() as conn:
                    self._apply(conn, items)
                return
            except (exc.OperationalError, exc.InterfaceError, exc.TimeoutError) as error:
                if self._abandon.is_set():
                    raise _Abandoned from error
                log.warning("store unavailable, retrying in %.1fs: %s", delay, str(error).splitlines()[0])
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            except (exc.SQLAlchemyError, StoreError, ValueError, TypeError, KeyError) as error:
                raise _Permanent from error

    def _apply(self, conn: Connection, items: list[_Item]) -> None:
        rows = [item.data for item in items if item.kind == "cdr"]
        if rows:
            cdrs.insert_cdrs(conn, rows)
        for item in items:
            if item.kind == "ledger":
                data = item.data
                ledger.append(conn, data["account_id"], data["amount"], data["kind"], operator=data["operator"],
                              memo=data["memo"], call_id=data["call_id"], time=data["time"], audited=False)
            elif item.kind != "cdr":
                raise ValueError(f"unknown journal record kind {item.kind!r}")
        self._save_checkpoint(conn, items)

    def _reject(self, item: _Item, error: BaseException | None) -> None:
        self.rejected += 1
        log.error("store refused a %s record, moved to rejected.jsonl: %s", item.kind, error)
        path = os.path.join(self.journal.directory, "rejected.jsonl")
        line = json.dumps({"error": str(error), "kind": item.kind, "record": item.data}, default=str)
        with open(path, "a") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        while True:                     # the checkpoint moves past it, so replay skips it
            try:
                with self.store.write() as conn:
                    self._save_checkpoint(conn, [item])
                return
            except (exc.OperationalError, exc.InterfaceError) as again:
                if self._abandon.is_set():
                    raise _Abandoned from again
                time.sleep(1.0)

    def _save_checkpoint(self, conn: Connection, items: list[_Item]) -> None:
        placed = [item for item in items if item.offset is not None]
        if not placed:
            return
        last = placed[-1]
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(store_journal).values(name=self.journal.name, segment=last.segment,
                                            applied_offset=last.offset)
        conn.execute(stmt.on_conflict_do_update(index_elements=[store_journal.c.name], set_={
            "segment": stmt.excluded.segment, "applied_offset": stmt.excluded.applied_offset}))

    def _checkpoint(self) -> tuple[int, int]:
        with self.store.read() as conn:
            row = conn.execute(select(store_journal.c.segment, store_journal.c.applied_offset)
                               .where(store_journal.c.name == self.journal.name)).one_or_none()
        return (row.segment, row.applied_offset) if row is not None else (0, 0)

    def _replay(self) -> int:
        """Apply what the journal holds past the checkpoint, then start a new segment."""
        segment, offset = self._checkpoint()
        existing = self.journal.segments()
        count = 0
        for number in existing:
            if number < segment:
                continue
            batch: list[_Item] = []
            for end, record in self.journal.read(number, offset if number == segment else 0):
                batch.append(_Item(0, number, end, record["k"], record["r"]))
                if len(batch) >= self.batch_size:
                    self._commit(batch)
                    count += len(batch)
                    batch = []
            if batch:
                self._commit(batch)
                count += len(batch)
        if count:
            log.info("journal %s: %d records applied after an unclean stop", self.journal.name, count)
        self.journal.start(max(existing + [segment]) + 1)
        for number in existing:           # everything in them is in the database now
            self.journal.remove(number)
        return count

    def _maybe_rotate(self) -> None:
        if self.journal.size < self.segment_bytes:
            return
        with self._lock:
            if self._committed != self._accepted:
                return                     # this segment still holds uncommitted records
            old = self.journal.segment
            self.journal.start(old + 1)
        self.journal.remove(old)


def _now() -> float:
    return time.time()
