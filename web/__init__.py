"""Flask app factory `create_app(settings)`: one blueprint per audience — residents' widget, LINE,
staff console. The WSGI servers start it through web/wsgi.py, which builds the settings."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

from flask import Flask
from flask_compress import Compress
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.console.service import ConsoleService
from bot.escalation import ChannelDelivery, RasaDelivery
from bot.internal_auth import address_key, rasa_token
from bot.line_messaging import LineClient, LineConfig
from bot.rate_limit import LoginThrottle, SenderRateLimiter
from bot.settings import Settings

csrf = CSRFProtect()


def _secret_key(settings: Settings) -> str:
    """From CONCIERGE_SECRET_KEY, else one generated once and kept under var/ (sessions survive restarts)."""
    if settings.secret_key.get_secret_value():
        return settings.secret_key.get_secret_value()
    path = Path(settings.var_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(settings: Settings) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.config.update(
        RASA_URL=settings.rasa_base_url,
        RASA_TOKEN=rasa_token(settings),
        REQUEST_TIMEOUT=settings.request_timeout_s,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        SECRET_KEY=_secret_key(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,  # behind HTTPS
        REMEMBER_COOKIE_HTTPONLY=True,
        # the server ends a console session (bot/console/accounts.py); the cookie never outlives it
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.staff_session_hours),
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        # the widget's script, styles and JSON travel compressed to browsers that accept it
        COMPRESS_MIMETYPES=["text/javascript", "text/css", "text/html", "application/json", "image/svg+xml"],
        COMPRESS_MIN_SIZE=500,
    )
    if settings.proxy_hops:
        # the client's address from the X-Forwarded-For of exactly this many trusted proxies (nginx
        # appends the peer it saw); with 0 a client's own X-Forwarded-For is never believed
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops)  # type: ignore[method-assign]
    app.extensions["address_key"] = address_key(settings)
    Compress(app)
    csrf.init_app(app)
    app.extensions["rate_limiter"] = SenderRateLimiter(settings.rate_limit, settings.rate_limit_storage)
    app.extensions["login_throttle"] = LoginThrottle(
        settings.login_failures_per_account, settings.login_failures_per_address, settings.rate_limit_storage
    )
    line_config = LineConfig.from_settings(settings)
    app.extensions["settings"] = settings
    app.extensions["console"] = ConsoleService(
        settings,
        ChannelDelivery(
            RasaDelivery.from_settings(settings),
            LineClient(line_config) if line_config else None,
        ),
    )
    from web import (
        staff_bookings,  # noqa: F401  (its pages — slots, the day's bookings — join staff_bp)
        staff_notices,  # noqa: F401  (its pages — notices, disaster mode … — join staff_bp)
    )
    from web.staff import bp as staff_bp
    from web.staff import login_manager
    from web.widget import bp as widget_bp

    login_manager.init_app(app)
    csrf.exempt(widget_bp)  # JSON API for pages elsewhere; no cookies, so nothing to forge
    app.register_blueprint(widget_bp)
    app.register_blueprint(staff_bp)
    if line_config:
        from bot.tasks import TaskQueue
        from web.line import create_blueprint

        tasks = app.extensions["task_queue"] = TaskQueue(settings)  # the console's send_notice too
        line_bp = create_blueprint(line_config, tasks)
        csrf.exempt(line_bp)  # LINE signs its requests; the signature is checked instead
        app.register_blueprint(line_bp)
    app.config["LINE_ENABLED"] = line_config is not None
    return app
