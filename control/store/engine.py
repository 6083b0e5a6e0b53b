"""Opening the database: SQLite (the embedded default) or PostgreSQL by URL."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

DEFAULT_PATH = os.path.join("vosmedia-data", "vosmedia.db")


class StoreError(RuntimeError):
    """The store cannot do what was asked; the message says why."""


class NotFound(StoreError, LookupError):
    """The row named does not exist."""


class Conflict(StoreError):
    """The change breaks a rule of the data: a duplicate name, a row still referenced, a
    cycle in the agent tree."""


class InsufficientFunds(StoreError):
    """A debit asked to keep balance + credit limit >= 0 would not."""


class Store:
    """An open database. Use :meth:`read` and :meth:`write` for transactions, or hand the
    store to the repository functions, which open their own."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.url = engine.url
        self.backend = engine.dialect.name          # "sqlite" or "postgresql"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will write. On SQLite it takes the write lock at BEGIN, so two
        writers queue on the busy timeout instead of one failing when it upgrades its lock."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(vosmedia_write=True)
            with conn.begin():
                yield conn

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({self.url.render_as_string(hide_password=True)})"


@contextmanager
def transaction(db: "Store | Connection", write: bool = True) -> Iterator[Connection]:
    """The caller's connection as it is (its transaction), or a new transaction on a Store.
    Repository functions take either, so callers can group several calls atomically."""
    if isinstance(db, Connection):
        yield db
    else:
        with (db.write() if write else db.read()) as conn:
            yield conn


def store_url(url: str | None = None) -> str:
    """The URL to open: the default SQLite file, a path, or a database URL. Plain
    ``postgresql://`` means psycopg 3, the driver the project installs."""
    if not url:
        url = DEFAULT_PATH
    if "://" not in url:
        return "sqlite:///" + os.path.abspath(url)
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def open_store(url: str | None = None, *, pool_size: int = 5) -> Store:
    """Open the store (without migrating it: see :func:`control.store.upgrade_to_head`).

    SQLite runs in WAL mode (readers never block the writer) with ``synchronous=FULL`` (a
    committed transaction survives power loss, not only a crash) and foreign keys on;
    the file's directory is created if needed.
    """
    parsed = make_url(store_url(url))
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed)
    elif parsed.get_backend_name() == "postgresql":
        engine = create_engine(parsed, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)
    else:
        raise StoreError(f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL")
    return Store(engine)


def _sqlite_engine(parsed) -> Engine:
    path = parsed.database
    if not path or path == ":memory:":
        raise StoreError("the store needs a SQLite file (WAL does not apply to :memory:)")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # timeout: how long a writer waits for another's lock before "database is locked"
    engine = create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        # the driver's own implicit BEGIN is switched off; _begin below issues ours
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        write = conn.get_execution_options().get("vosmedia_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
