"""The web process's entry point (gunicorn `web.wsgi:app`, `flask --app web.wsgi`): the settings
are read from the environment here, once, and everything else is built from them."""

from bot.settings import Settings
from web import create_app

app = create_app(Settings())
