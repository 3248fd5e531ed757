"""The action server: rasa-sdk's Sanic app behind the actions token.

rasa-sdk 3.6 has no authentication of its own: whoever reaches /webhook runs any action with any
tracker (files tickets, reads the knowledge). Rasa sends `Authorization: Bearer <actions token>`
(endpoints.yml `action_endpoint.headers`, written by bot/supervisor/processes.py); every request
but the health check without it gets 401. The server binds to the settings' host (loopback).

`python -m actions.server --port 5055`
"""

from __future__ import annotations

import argparse
import logging

from rasa_sdk import utils
from rasa_sdk.endpoint import create_app
from rasa_sdk.plugin import plugin_manager
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from actions import runtime
from bot.internal_auth import actions_token, bearer_matches

log = logging.getLogger(__name__)
OPEN_PATHS = frozenset({"/health"})  # says "ok" and nothing else: the supervisors poll it


def require_token(app: Sanic, token: str) -> None:
    """Refuse (401) every request but the health check that lacks the bearer token."""

    @app.middleware("request")
    async def check_token(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS or bearer_matches(request.headers.get("authorization"), token):
            return None
        log.warning("action server: request to %s without a valid token refused", request.path)
        return response.json({"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"})


def build_app() -> Sanic:
    """rasa-sdk's app with our actions, no CORS (no browser calls it) and the token check."""
    app = create_app("actions", cors_origins=None)
    require_token(app, actions_token(runtime.settings()))
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the concierge's action server (rasa-sdk, with a token)")
    parser.add_argument("--port", type=int, default=None, help="default: the settings' actions_port")
    args = parser.parse_args(argv)
    settings = runtime.settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    utils.update_sanic_log_level()
    app = build_app()
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    port = args.port or settings.actions_port
    log.info("action server on http://%s:%s", settings.host, port)
    app.run(settings.host, port, workers=utils.number_of_sanic_workers(), access_log=False)


if __name__ == "__main__":
    main()
