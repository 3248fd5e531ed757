"""One settings object: read from the environment in one module, passed down everywhere else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import ROOT, Settings

PACKAGES = ("bot", "actions", "web", "tests", "bench")


def test_environment_values_are_parsed_and_validated(monkeypatch):
    monkeypatch.setenv("CONCIERGE_ENCODERS", "usem3, st:/models/x")
    monkeypatch.setenv("CONCIERGE_ANSWER_MIN_SCORE", "0.7")
    monkeypatch.setenv("CONCIERGE_RETRIEVAL_WEIGHTS", '{"terms": 0.5}')
    monkeypatch.setenv("CONCIERGE_ANSWER_MODEL", "0")
    settings = Settings()
    assert settings.encoders == ("usem3", "st:/models/x") and settings.answer_min_score == 0.7
    assert settings.retrieval_weights == {"terms": 0.5} and settings.answer_model is False
    monkeypatch.setenv("CONCIERGE_ANSWER_MIN_SCORE", "high")
    with pytest.raises(ValidationError, match=r"CONCIERGE_ANSWER_MIN_SCORE"):
        Settings()  # a mistyped value stops the process at start, not mid-conversation


def test_a_child_process_gets_the_same_settings(tmp_path, monkeypatch):
    settings = Settings(
        knowledge_dir=tmp_path / "k", encoders=("usem3",), secure_cookies=True, line_channel_secret="s3cret"
    )
    for name, value in settings.child_env().items():
        monkeypatch.setenv(name, value)
    assert Settings() == settings


def test_replace_validates_like_construction(tmp_path):
    settings = Settings(var_dir=tmp_path)
    assert settings.replace(web_port="8001").web_port == 8001
    with pytest.raises(ValidationError):
        settings.replace(web_port="eighty")


def _environment_reads(path: Path, root: Path = ROOT) -> list[str]:
    return [
        f"{path.relative_to(root)}:{node.lineno}"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute)
        and node.attr in ("environ", "getenv", "putenv")
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    ]


def test_only_the_settings_module_reads_the_environment():
    """Everything else gets its settings passed in (one composition root per process)."""
    offenders = [
        place
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != ROOT / "bot" / "settings.py" and path.name != Path(__file__).name
        for place in _environment_reads(path)
    ]
    assert offenders == []


def test_the_environment_check_finds_a_read(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import os\nx = os.environ.get('A')\nos.environ['B'] = '1'\n", encoding="utf-8")
    assert sorted(_environment_reads(probe, tmp_path)) == ["probe.py:2", "probe.py:3"]
