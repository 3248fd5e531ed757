"""Alembic environment: the URL comes from the caller (bot.storage.db.upgrade)."""

from alembic import context
from sqlalchemy import create_engine

from bot.storage.models import Base

url = context.config.get_main_option("sqlalchemy.url")
engine = create_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
