"""The concierge's own database: escalation tickets, unresolved questions, regional issues.

SQLite (WAL) under var/ by default, PostgreSQL by URL (CONCIERGE_DB_URL); schema by Alembic.
Everything written here is masked first (bot.privacy).
"""
