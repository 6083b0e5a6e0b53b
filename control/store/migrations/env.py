"""Alembic environment: always driven from control.store.migrate, which hands over an open
connection already inside the migration's transaction."""
from alembic import context

from control.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite alters most things only by rebuilding the table: batch mode does that
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    compare_server_default=False,
)
with context.begin_transaction():
    context.run_migrations()
