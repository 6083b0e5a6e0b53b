"""Schema migrations with Alembic, driven from code: no alembic.ini, the scripts live in
this package (``migrations/versions``).

``upgrade_to_head(url)`` runs at switch start and is safe when several nodes start at
once on one PostgreSQL database (an advisory lock makes them take turns).

``python -m control.store.migrate upgrade [URL]`` upgrades a database by hand;
``python -m control.store.migrate revision "MESSAGE" [URL]`` writes a new migration script
from the difference between ``schema.py`` and a database at head (review it before use).
"""
from __future__ import annotations

import argparse
import os
import sys

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from control.store.engine import Store, StoreError, open_store

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")
_PG_LOCK_KEY = 0x766F736D   # "vosm": the advisory lock held while migrating


def _config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR)
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = conn
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(target: Store | str | None) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with _opened(target) as store, store.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_to_head(target: Store | str | None = None) -> str:
    """Bring the database (a Store, a URL, or None for the default SQLite file) to the
    newest schema; returns the revision it is at."""
    return _run(target, lambda config: command.upgrade(config, "head"))


def downgrade(target: Store | str | None, revision: str) -> str:
    return _run(target, lambda config: command.downgrade(config, revision))


def _run(target, action) -> str:
    with _opened(target) as store:
        sqlite = store.backend == "sqlite"
        with store.engine.connect() as conn:
            if sqlite:
                # table rebuilds in batch migrations must not cascade through foreign keys;
                # the pragma only changes outside a transaction, hence the driver connection
                _pragma(conn, "PRAGMA foreign_keys=OFF")
            try:
                conn = conn.execution_options(vosmedia_write=True)
                with conn.begin():
                    if not sqlite:
                        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
                    action(_config(conn))
                    if sqlite:
                        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                        if broken:
                            raise StoreError(f"migration left rows with broken foreign keys: {broken[:5]}")
                    revision = MigrationContext.configure(conn).get_current_revision()
            finally:
                if sqlite:
                    _pragma(conn, "PRAGMA foreign_keys=ON")
        return revision


def _pragma(conn: Connection, statement: str) -> None:
    conn.connection.dbapi_connection.execute(statement)


class _opened:
    """A Store as given, or one opened (and closed again) from a URL."""

    def __init__(self, target):
        self.target = target
        self.owned = not isinstance(target, Store)

    def __enter__(self) -> Store:
        self.store = open_store(self.target) if self.owned else self.target
        return self.store

    def __exit__(self, *exc):
        if self.owned:
            self.store.close()


def make_revision(message: str, target: Store | str | None) -> None:
    """Write a new migration script from the difference between schema.py and the database
    (which must be at head)."""
    with _opened(target) as store, store.engine.connect() as conn, conn.begin():
        command.revision(_config(conn), message=message, autogenerate=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m control.store.migrate", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade", help="upgrade a database to the newest schema")
    up.add_argument("url", nargs="?", help="database URL or SQLite path (default vosmedia-data/vosmedia.db)")
    rev = sub.add_parser("revision", help="write a migration for the changes in schema.py")
    rev.add_argument("message")
    rev.add_argument("url", nargs="?")
    sub.add_parser("heads", help="print the newest revision")
    args = parser.parse_args(argv)
    if args.command == "upgrade":
        print(upgrade_to_head(args.url))
    elif args.command == "revision":
        make_revision(args.message, args.url)
    else:
        print(head_revision())
    return 0


if __name__ == "__main__":
    sys.exit(main())
