"""rasa-sdk custom actions: one small class per action; the answering logic lives in bot/."""

import os

if os.environ.get("CONCIERGE_WARM_UP") == "1":  # set for the action server by bot/services.py
    from bot.concierge import warm_up

    warm_up()
