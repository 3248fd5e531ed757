"""The action server's composition root: its settings, read once, and the one Concierge the
actions share, built from them on first use (encoders and index are loaded once per process).

Tests point the actions at their own knowledge with `configure(Settings(...))`.
"""

from __future__ import annotations

import threading
import time

from bot.answering.concierge import Concierge
from bot.handoff_limits import HandoffLimiter
from bot.notices import board
from bot.notices.board import Alert
from bot.settings import Settings

_lock = threading.Lock()
_settings: Settings | None = None
_concierge: Concierge | None = None
_handoff_limiter: HandoffLimiter | None = None
_alerts: tuple[float, list[Alert]] | None = None  # (when read, monotonic; the active alerts)


def configure(settings: Settings | None) -> None:
    """Use these settings from now on (None: the environment's, read on next use)."""
    global _settings, _concierge, _handoff_limiter, _alerts
    with _lock:
        _settings, _concierge, _handoff_limiter, _alerts = settings, None, None, None


def settings() -> Settings:
    global _settings
    with _lock:
        _settings = _settings or Settings()
        return _settings


def get_concierge() -> Concierge:
    global _concierge
    current = settings()
    with _lock:
        if _concierge is None:
            _concierge = Concierge(current)
        return _concierge


def disaster_alerts() -> list[Alert]:
    """Disaster mode as this process last read it, at most `disaster_cache_s` old: the answer
    action asks before every answer, and a database round trip there would cost every resident."""
    global _alerts
    current = settings()
    now = time.monotonic()
    with _lock:
        if _alerts is not None and now - _alerts[0] < current.disaster_cache_s:
            return _alerts[1]
    alerts = board.active_alerts(current.database_url)  # outside the lock; a race reads twice
    with _lock:
        _alerts = (now, alerts)
    return alerts


def handoff_limiter() -> HandoffLimiter:
    """Hand-off tickets per sender and per hashed address (one count store per process)."""
    global _handoff_limiter
    current = settings()
    with _lock:
        if _handoff_limiter is None:
            _handoff_limiter = HandoffLimiter.from_settings(current)
        return _handoff_limiter


def warm_up() -> None:
    """Load what the first resident would otherwise wait for: encoders, index, Sudachi, GiNZA.
    The action server does this before it starts listening (CONCIERGE_WARM_UP=1)."""
    from bot.privacy import mask

    concierge = get_concierge()
    service = next(iter(concierge.kb.services.values()))  # any catalogued question will do
    concierge.answer(service.questions[0] if service.questions else service.name)
    mask("")  # loads the name recogniser
    concierge.issues  # noqa: B018 - builds the regional-issue recorder (database schema check)
