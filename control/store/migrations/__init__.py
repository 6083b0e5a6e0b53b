"""Alembic migrations of the store (see control.store.migrate)."""
