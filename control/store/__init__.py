"""The persistence layer of the whole product: one schema for SQLite (the embedded default,
``vosmedia-data/vosmedia.db``) and PostgreSQL, migrated by Alembic, with repository
functions that take and return plain dicts, and a durable writer for CDRs and charges.

Start-up::

    store = open_store(url)                # None: the default SQLite file
    upgrade_to_head(store)
    writer = StoreWriter(store, os.path.join(data_dir, "journal"))   # replays the journal

Repository modules: :mod:`~control.store.accounts` (accounts and the agent tree),
:mod:`~control.store.ledger` (balances), :mod:`~control.store.entities` (phones, gateways,
rate tables, calendars, operators), :mod:`~control.store.rates` (bulk rate import),
:mod:`~control.store.cdrs`, :mod:`~control.store.audit`, :mod:`~control.store.parameters`.
Each function takes a :class:`Store` (and opens its own transaction) or a SQLAlchemy
``Connection`` (and joins the caller's). See docs/store.md.
"""
from control.store.engine import (Conflict, InsufficientFunds, NotFound, Store, StoreError, open_store,
                                  store_url, transaction)
from control.store.migrate import current_revision, head_revision, upgrade_to_head
from control.store.writer import StoreWriter

__all__ = [
    "Conflict", "InsufficientFunds", "NotFound", "Store", "StoreError", "StoreWriter", "current_revision",
    "head_revision", "open_store", "store_url", "transaction", "upgrade_to_head",
]
