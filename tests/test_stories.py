"""The test stories (tests/stories) against the trained model: every action the dialogue should
take after each intent is the one the model's policies predict."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
MODEL = ROOT / "models" / "concierge.tar.gz"


def _rasa_test(stories: Path, out: Path) -> subprocess.CompletedProcess:
    # PYTHONPATH: the model's own components, from this checkout
    env = Settings().child_env(PYTHONPATH=str(ROOT), RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="3")
    command = [str(RASA), "test", "core", "--stories", str(stories), "--model", str(MODEL)]
    command += ["--out", str(out), "--fail-on-prediction-errors", "--no-plot"]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)


def test_the_main_conversations_are_predicted(tmp_path):
    assert MODEL.exists(), "train the model first: make train"
    done = _rasa_test(ROOT / "tests" / "stories", tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "story:" not in (tmp_path / "failed_test_stories.yml").read_text(encoding="utf-8")
    report = json.loads((tmp_path / "story_report.json").read_text(encoding="utf-8"))
    assert report["action_handoff"]["support"] == 2 and report["action_set_ward"]["f1-score"] == 1.0


def test_a_wrong_story_fails(tmp_path):
    wrong = tmp_path / "wrong.yml"
    wrong.write_text(
        'version: "3.1"\nstories:\n- story: greeting answered as a hand-off\n  steps:\n'
        "  - intent: greet\n  - action: action_handoff\n",
        encoding="utf-8",
    )
    assert _rasa_test(wrong, tmp_path / "out").returncode != 0
