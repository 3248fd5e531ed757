"""rasa-sdk custom actions: one small class per action; the answering logic lives in bot/, and
actions/runtime.py builds it from the settings."""

from actions import runtime

if runtime.settings().warm_up:  # set for the action server by bot/supervisor/processes.py
    runtime.warm_up()
