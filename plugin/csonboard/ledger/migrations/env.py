"""Alembic environment: runs on the connection csonboard hands over.

Migrations are only ever run through ``csonboard.ledger.database.upgrade`` (the
``csonboard db upgrade`` command and the start of ``serve``/``worker``), which
opens the transaction and takes the migration lock.
"""

from alembic import context

from csonboard.ledger.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # One transaction for the whole upgrade, on SQLite too: all or nothing.
    transactional_ddl=True,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
