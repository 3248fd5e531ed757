"""Conversations written by Rasa's own SQLTrackerStore (in Rasa's environment), so the retention
tests read and delete the table layout Rasa 3.6 really makes, on SQLite or PostgreSQL."""

from __future__ import annotations

import json
import subprocess

from bot.settings import Settings
from bot.supervisor.processes import tracker_store_config

# Runs in .venv-rasa: one tracker per sender, each event stamped with the given Unix time.
WRITER = """
import asyncio, json, sys
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

config, conversations = json.loads(sys.stdin.read())
config.pop("type")
store = SQLTrackerStore(dialect=config.pop("dialect"), host=config.pop("url", None), **config)

async def main():
    for sender, stamps in conversations.items():
        events = []
        for t in stamps:
            said = UserUttered("[電話番号]に電話したい", timestamp=t)
            events += [said, ActionExecuted("action_listen", timestamp=t)]
        await store.save(DialogueStateTracker.from_events(sender, events))

asyncio.run(main())
"""


def write_conversations(settings: Settings, conversations: dict[str, list[float]]) -> None:
    """Store these conversations (sender → event times) through Rasa's SQLTrackerStore."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(settings.rasa_venv / "bin" / "python"), "-c", WRITER],
        input=json.dumps([tracker_store_config(settings), conversations]),
        text=True,
        check=True,
        timeout=180,
        env=settings.child_env(RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="3"),
    )
