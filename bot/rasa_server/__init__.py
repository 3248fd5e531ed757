"""Runs inside the Rasa server (its own environment, .venv-rasa): the residents' channel, the
lock store and the NLU components that config.yml names. Never imports bot.settings."""
