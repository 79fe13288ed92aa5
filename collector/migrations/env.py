"""Alembic environment: runs migrations on the connection Gatewatch hands over."""

from alembic import context

from collector.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the alembic CLI gets here
    from collector.db import create_store_engine

    connection = create_store_engine().connect()

context.configure(connection=connection, target_metadata=metadata, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
