"""The task queue (Huey): work that must not run inside a web request, done by `concierge tasks
worker`.

The LINE webhook only verifies the signature and enqueues each event; the worker talks to Rasa and
LINE. Notices (bot/notices/sending.py) are sent here too: `send_notice` when staff send one now,
and a sweep every minute — and once when a worker starts — for scheduled notices that are due and
for sends whose worker was killed (their lease ran out); booking reminders (bot/bookings/
reminders.py) are pushed hourly. The queue is a SQLite file under var/ by default (embedded: no
service to run) and Redis when `task_queue_url` names one (the cluster's), so any web process may
enqueue and any worker consume. Queued events survive a stopped or killed worker: they wait in the
file or in Redis. Results are not stored, and a task leaves the queue when a worker takes it, so a
resident's message stays there only until it is handled.
"""

from __future__ import annotations

import logging
import threading
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
        self._notice_line = None
        self._started = False
        self._startup_lock = threading.Lock()
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

        @huey.task(name="send_notice")
        def send_notice(notice_id: int) -> None:
            """Send (or resume) one notice; nothing when it is not due or another worker has it."""
            from bot.notices.sending import LeaseLost, send

            try:
                send(self.settings, notice_id, self.notice_line())
            except LeaseLost as err:  # this worker stalled past its lease: the other one carries on
                log.warning("%s", err)

        # The sweeps are a query or two: ahead of the queue (priority), so they never wait behind
        # residents' messages, nor leave anything queued behind the message a worker just answered.
        @huey.task(name="notice_sweep", priority=10)
        def notice_sweep(follow: bool = False) -> None:
            self.sweep_notices(follow)

        @huey.periodic_task(crontab(minute="*"), name="notice_sweep_periodic", priority=10)
        def notice_sweep_periodic() -> None:
            """Scheduled notices that are due, and sends whose worker is gone (every minute, and
            when the consumer starts: Huey's scheduler looks at once)."""
            self.sweep_notices(follow=False)

        # Booking reminders (bot/bookings/reminders.py, issue 19): every hour on the hour, the LINE
        # push the day before a booking. Each booking is claimed before its push, so several workers
        # on one Redis queue, each running this, remind a resident once.
        @huey.periodic_task(crontab(minute="0"), name="booking_reminders")
        def booking_reminders() -> None:
            from datetime import UTC, datetime

            from bot.bookings.reminders import send_reminders

            send_reminders(self.settings, datetime.now(UTC), self.notice_line())

        @huey.on_startup(name="resume_notices")
        def resume_notices() -> None:
            """Once per worker process (each thread calls this): resume what a stopped worker left,
            and look again when a running lease ends — the lease of the worker this one replaces."""
            with self._startup_lock:
                if self._started:
                    return
                self._started = True
            self.sweep_notices(follow=True)

        self.line_event = line_event
        self.line_push = line_push
        self.daily_purge = daily_purge
        self.send_notice = send_notice
        self.notice_sweep = notice_sweep
        self.booking_reminders = booking_reminders

    def line_events(self):
        """The LINE event handler, built on first use (only the worker needs it)."""
        if self._line is None:
            from bot.line_events import LineEvents

            self._line = LineEvents(self.settings, self.line_push)
        return self._line

    def sweep_notices(self, follow: bool) -> None:
        """Enqueue every due notice. `follow`: while a notice is being sent, sweep again when its
        lease ends, so a send interrupted by a restart resumes then, not at the next minute."""
        from bot.notices.sending import next_lease_end
        from bot.notices.store import due

        for notice_id in due(self.settings.database_url):
            self.send_notice(notice_id)
        wait = next_lease_end(self.settings) if follow else None
        if wait is not None:
            self.notice_sweep.schedule(args=(True,), delay=wait + 0.2)

    def notice_line(self):
        """The LINE client notices are multicast and booking reminders pushed with; None when LINE
        is off (the notices are then only shown in the widget; reminders are not sent)."""
        if self._notice_line is None:
            from bot.line_messaging import LineClient, LineConfig

            config = LineConfig.from_settings(self.settings)
            self._notice_line = LineClient(config) if config else None
        return self._notice_line

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
            periodic=True,  # the daily purge, the notice sweep, the booking reminders
        )
        consumer.run()
