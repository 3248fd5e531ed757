"""Flask app factory: one blueprint per audience (residents' widget now; LINE and staff later)."""

from __future__ import annotations

from flask import Flask

from bot.line_messaging import LineConfig
from bot.settings import get_settings


def create_app() -> Flask:
    app = Flask(__name__, static_folder=None)
    settings = get_settings()
    app.config.update(
        RASA_URL=settings.rasa_base_url,
        REQUEST_TIMEOUT=settings.request_timeout_s,
        MAX_CONTENT_LENGTH=64 * 1024,
        MAX_MESSAGE_CHARS=settings.max_message_chars,
    )
    from web.widget import bp as widget_bp

    app.register_blueprint(widget_bp)
    line_config = LineConfig.from_env()
    if line_config:
        from web.line import create_blueprint

        app.register_blueprint(create_blueprint(line_config))
    app.config["LINE_ENABLED"] = line_config is not None
    return app
