"""The task queue (Huey): work that must not run inside a web request, done by `concierge tasks
worker`.

The LINE webhook only verifies the signature and enqueues each event; the worker talks to Rasa and
LINE. The queue is a SQLite file under var/ by default (embedded: no service to run) and Redis when
`task_queue_url` names one (the cluster's), so any web process may enqueue and any worker consume.
Queued events survive a stopped or killed worker: they wait in the file or in Redis. Results are
not stored, and a task leaves the queue when a worker takes it, so a resident's message stays
there only until it is handled.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.api import Task
from huey.exceptions import CancelExecution

from bot.line_messaging import LineApiError
from bot.settings import Settings

log = logging.getLogger(__name__)

QUEUE_NAME = "concierge"


def make_huey(settings: Settings) -> Huey:
    """SqliteHuey under var/ (or at a sqlite:/// path), RedisHuey for a redis:// URL."""
    url = settings.task_queue_url
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(QUEUE_NAME, url=url, results=False, utc=True)
    path = Path(url.removeprefix("sqlite:///")) if url else settings.var_dir / "tasks.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(QUEUE_NAME, filename=str(path), results=False, utc=True)


class TaskQueue:
    """The concierge's tasks on one Huey: the same code enqueues (web app) and runs them (worker),
    each process with its own settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.huey = make_huey(settings)
        self._line = None
        huey = self.huey

        @huey.task(name="line_event")
        def line_event(event: dict[str, Any]) -> None:
            """One LINE webhook event (already signature-checked by the web app)."""
            self.line_events().handle(event)

        @huey.task(
            name="line_push",
            retries=max(0, settings.line_push_attempts - 1),
            retry_delay=settings.line_push_retry_s,
            retry_backoff=2,
            context=True,
        )
        def line_push(user_id: str, messages: list[dict[str, Any]], task: Task) -> None:
            """Push an answer whose reply failed. A failure raises, so Huey tries again later (the
            wait doubling); the last one is logged and dropped."""
            try:
                self.line_events().push(user_id, messages, last_try=task.retries == 0)
            except LineApiError as err:  # tried again after the wait, without a traceback in the log
                raise CancelExecution(retry=True) from err

        # 03:00 in Japan (the queue's clock is UTC): the daily purge of what is past its retention
        # period (bot/retention.py, docs/privacy.md). With several workers on one Redis queue each
        # runs it; a second purge finds nothing more to delete.
        @huey.periodic_task(crontab(minute="0", hour=str((settings.purge_hour_jst - 9) % 24)), name="purge")
        def daily_purge() -> None:
            from bot.retention import purge

            log.info("daily purge: %s", purge(self.settings))

        self.line_event = line_event
        self.line_push = line_push
        self.daily_purge = daily_purge

    def line_events(self):
        """The LINE event handler, built on first use (only the worker needs it)."""
        if self._line is None:
            from bot.line_events import LineEvents

            self._line = LineEvents(self.settings, self.line_push)
        return self._line

    def pending(self) -> int:
        """Tasks waiting in the queue (and scheduled retries)."""
        return len(self.huey) + self.huey.scheduled_count()

    def run_worker(self) -> None:
        """Consume until SIGINT/SIGTERM (Huey's consumer; threads, polling at most 0.5 s apart)."""
        consumer = self.huey.create_consumer(
            workers=max(1, self.settings.task_workers),
            worker_type="thread",
            initial_delay=0.05,
            backoff=1.5,
            max_delay=0.5,
            periodic=True,  # the daily purge
        )
        consumer.run()
