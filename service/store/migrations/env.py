"""Alembic environment: runs against the connection `service.store.migrate` hands it."""

from alembic import context

from service.store import access_tables, subscription_tables  # noqa: F401  (register their tables on `metadata`)
from service.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
