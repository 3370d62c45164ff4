"""Alembic's entry point for the drawings store: runs migrations on the connection the store hands it."""

from alembic import context

connection = context.config.attributes["connection"]
# SQLite alters tables by copying them; "batch" mode lets one migration serve both databases.
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
