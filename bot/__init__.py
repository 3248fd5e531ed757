"""Kawasaki ward-office concierge: shared code for the Rasa server, the actions, the web app and the CLI.

Only `bot.japanese` and `bot.nlu` are imported inside the Rasa server's environment; everything
else runs in the application environment (`.venv`).
"""
