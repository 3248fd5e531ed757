"""One notice to its LINE subscribers: planned once, sent in multicasts of at most 500, resumable.

A sender first claims the notice with a lease (`Notice.lease_until`) in one conditional UPDATE, so
two workers never send the same notice at once, and renews it before every request; a killed
sender's lease runs out and the task worker's sweep (bot/tasks.py) hands the notice to another.
The plan is made once, in one transaction: the recipients split into batches, each with its own
retry key (LINE's X-Line-Retry-Key), and one delivery-log row per recipient. A batch is marked sent
only after LINE took it; a batch re-sent after a crash between LINE's 200 and our commit carries the
same key, LINE answers 409 and delivers nothing twice. 429, 5xx and no answer are tried again with
back-off; the batch is failed when the tries run out or LINE refuses it otherwise.

Log lines name notices and batches and counts, never a LINE user id.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from linebot.v3.messaging import TextMessage
from sqlalchemy import func, insert, select, update

from bot.line_messaging import MAX_MULTICAST, LineApiError, LineClient, LineConfig
from bot.notices import subscriptions
from bot.notices.store import due_clause, notice_text
from bot.settings import Settings
from bot.storage.db import session_scope
from bot.storage.models import AuditEntry, Notice, NoticeBatch, NoticeDelivery, utcnow

log = logging.getLogger(__name__)

_warned_line_off = threading.Event()
_warned_line_waits = threading.Event()


class LeaseLost(RuntimeError):
    """Another sender holds the notice now (ours ran out): stop, it carries on."""


@dataclass(frozen=True)
class SendReport:
    """What one call of `send` did (the notice's own counts are the totals)."""

    notice_id: int
    recipients: int
    delivered: int
    failed: int
    requests: int  # multicasts made by this call
    plan_s: float  # seconds to plan (0 when planned before)
    total_s: float


class _Lease:
    """The claim on one notice: `until` is both its end and the fencing token of every write."""

    def __init__(self, settings: Settings, notice_id: int, until: datetime) -> None:
        self.settings, self.notice_id, self.until = settings, notice_id, until

    @property
    def held(self):
        return (
            (Notice.id == self.notice_id) & (Notice.status == "sending") & (Notice.lease_until == self.until)
        )

    def renew(self, session, **values) -> None:
        """Extend the lease (with `values` written to the notice) in the caller's transaction;
        LeaseLost when another sender took the notice meanwhile."""
        until = utcnow() + timedelta(seconds=self.settings.notice_lease_s)
        result = session.execute(
            update(Notice).where(self.held).values(lease_until=until, **values),
            execution_options={"synchronize_session": False},
        )
        if result.rowcount != 1:
            raise LeaseLost(f"notice {self.notice_id}: the lease went to another sender")
        self.until = until

    def sleep(self, seconds: float) -> None:
        """Wait, renewing the lease often enough that it never runs out meanwhile."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, self.settings.notice_lease_s / 3))
            with session_scope(self.settings.database_url) as session:
                self.renew(session)


def claim(settings: Settings, notice_id: int) -> _Lease | None:
    """Take the notice if it is due (scheduled and due, or its sender's lease ran out); None when
    it is not due, finished, cancelled, or another sender holds it."""
    now = utcnow()
    until = now + timedelta(seconds=settings.notice_lease_s)
    with session_scope(settings.database_url) as session:
        result = session.execute(
            update(Notice)
            .where(Notice.id == notice_id, due_clause(now))
            .values(status="sending", lease_until=until),
            execution_options={"synchronize_session": False},
        )
        return _Lease(settings, notice_id, until) if result.rowcount == 1 else None


def send(settings: Settings, notice_id: int, line: LineClient | None = None) -> SendReport | None:
    """Send (or resume) one notice end to end; None when it was not ours to send (see `claim`)."""
    started = time.monotonic()
    if line is None:
        config = LineConfig.from_settings(settings)
        if config is None:
            return _without_line(settings, notice_id, started)
        line = LineClient(config)
    lease = claim(settings, notice_id)
    if lease is None:
        log.info("notice %s: not due, or another sender has it", notice_id)
        return None
    plan_started = time.monotonic()
    planned = plan(lease)
    plan_s = time.monotonic() - plan_started if planned else 0.0
    with session_scope(settings.database_url) as session:
        notice = session.get(Notice, notice_id)
        message = TextMessage(
            text=notice_text(notice.title, notice.body, notice.link, notice.ward_list, notice.topic)
        )
        pending = session.execute(
            select(NoticeBatch.id, NoticeBatch.retry_key)
            .where(NoticeBatch.notice_id == notice_id, NoticeBatch.status == "pending")
            .order_by(NoticeBatch.id)
        ).all()
    requests = 0
    for number, (batch_id, retry_key) in enumerate(pending, 1):
        with session_scope(settings.database_url) as session:
            user_ids = list(
                session.execute(
                    select(NoticeDelivery.line_user_id)
                    .where(NoticeDelivery.batch_id == batch_id)
                    .order_by(NoticeDelivery.line_user_id)
                ).scalars()
            )
        status, error, tries = _deliver(lease, line, user_ids, [message], retry_key)
        requests += tries
        _record(lease, batch_id, len(user_ids), status, error, tries)
        if status == "failed":
            log.warning("notice %s: batch %s/%s failed (%s)", notice_id, number, len(pending), error)
    return _finish(lease, requests, plan_s, started)


def plan(lease: _Lease) -> bool:
    """Batches with their retry keys and the delivery log, all in one transaction; False when the
    notice was planned before (a resumed send)."""
    db = lease.settings.database_url
    with session_scope(db) as session:
        planned = select(NoticeBatch.id).where(NoticeBatch.notice_id == lease.notice_id).limit(1)
        if session.scalar(planned) is not None:
            return False
        notice = session.get(Notice, lease.notice_id)
        wards, topic = notice.ward_list, notice.topic
    user_ids = subscriptions.recipients(db, wards, topic)
    size = min(lease.settings.notice_batch_size, MAX_MULTICAST)
    chunks = [user_ids[i : i + size] for i in range(0, len(user_ids), size)]
    keys = [str(uuid.uuid4()) for _ in chunks]
    with session_scope(db) as session:
        lease.renew(session, recipients=len(user_ids), delivered=0, failed=0)  # fails if no longer ours
        if chunks:
            rows = session.execute(
                insert(NoticeBatch.__table__).returning(NoticeBatch.id, NoticeBatch.retry_key),
                [
                    {
                        "notice_id": lease.notice_id,
                        "retry_key": k,
                        "status": "pending",
                        "attempts": 0,
                        "size": len(c),
                    }
                    for k, c in zip(keys, chunks, strict=True)
                ],
            ).all()
            batch_of = dict((key, batch_id) for batch_id, key in rows)
            session.execute(
                insert(NoticeDelivery.__table__),
                [
                    {"notice_id": lease.notice_id, "line_user_id": u, "batch_id": batch_of[k]}
                    for k, c in zip(keys, chunks, strict=True)
                    for u in c
                ],
            )
    log.info("notice %s: %s recipients in %s batches", lease.notice_id, len(user_ids), len(chunks))
    return True


def _deliver(
    lease: _Lease, line: LineClient, user_ids: list[str], messages: list, retry_key: str
) -> tuple[str, str | None, int]:
    """(batch status, error, requests made): LINE's 200 or 409 is sent; 429, 5xx and no answer are
    tried again, the wait doubling from notice_retry_s unless LINE says how long; any other refusal,
    or the last try, is failed."""
    settings = lease.settings
    attempts = max(1, settings.notice_send_attempts)
    for attempt in range(1, attempts + 1):
        with session_scope(settings.database_url) as session:
            lease.renew(session)
        try:
            line.multicast(user_ids, messages, retry_key)
            return "sent", None, attempt
        except LineApiError as err:
            if err.status == 409:  # LINE took this batch before (we were stopped before noting it)
                log.info(
                    "notice %s: a batch LINE had already taken (409); not delivered again", lease.notice_id
                )
                return "sent", None, attempt
            error = f"HTTP {err.status}" if err.status else f"no answer ({err})"
            transient = err.status is None or err.status == 429 or err.status >= 500
            if not transient or attempt == attempts:
                return "failed", error[:120], attempt
            wait = (
                err.retry_after
                if err.retry_after is not None
                else settings.notice_retry_s * 2 ** (attempt - 1)
            )
            log.warning(
                "notice %s: LINE multicast refused (%s); try %s of %s in %.1f s",
                lease.notice_id, error, attempt + 1, attempts, wait,
            )  # fmt: skip
            lease.sleep(wait)
    raise AssertionError("unreachable")  # the loop returns on its last try


def _record(lease: _Lease, batch_id: int, size: int, status: str, error: str | None, tries: int) -> None:
    """The batch's outcome and the notice's running counts, with the lease renewed, at once."""
    with session_scope(lease.settings.database_url) as session:
        counts = (
            {"delivered": Notice.delivered + size} if status == "sent" else {"failed": Notice.failed + size}
        )
        lease.renew(session, **counts)
        session.execute(
            update(NoticeBatch)
            .where(NoticeBatch.id == batch_id)
            .values(
                status=status,
                error=error,
                attempts=NoticeBatch.attempts + tries,
                sent_at=utcnow() if status == "sent" else None,
            ),
            execution_options={"synchronize_session": False},
        )


def _without_line(settings: Settings, notice_id: int, started: float) -> SendReport | None:
    """A worker without LINE credentials. A notice nobody on LINE awaits is finished as sent, so the
    widget shows it (a deployment without LINE). One with LINE subscribers, or already planned, is
    left to a worker that has the credentials: finishing it here would send it to nobody (a node
    set up without LINE, sharing the database)."""
    with session_scope(settings.database_url) as session:
        notice = session.get(Notice, notice_id)
        if notice is None:
            return None
        planned = session.execute(select(NoticeBatch.id).where(NoticeBatch.notice_id == notice_id)).first()
        wards, topic = notice.ward_list, notice.topic
    if planned is not None or subscriptions.anyone(settings.database_url, wards, topic):
        if not _warned_line_waits.is_set():
            _warned_line_waits.set()
            log.warning("LINE is off here: notices with subscribers wait for a worker with LINE credentials")
        return None
    lease = claim(settings, notice_id)
    if lease is None:
        log.info("notice %s: not due, or another sender has it", notice_id)
        return None
    if not _warned_line_off.is_set():
        _warned_line_off.set()
        log.warning("LINE is off (no channel credentials): notices are shown, not sent by LINE")
    return _finish(lease, 0, 0.0, started)


def _finish(lease: _Lease, requests: int, plan_s: float, started: float) -> SendReport:
    """Mark the notice sent with its counts from the batches, and write the audit entry, at once."""
    with session_scope(lease.settings.database_url) as session:
        sizes = dict(
            session.execute(
                select(NoticeBatch.status, func.sum(NoticeBatch.size))
                .where(NoticeBatch.notice_id == lease.notice_id)
                .group_by(NoticeBatch.status)
            ).all()
        )
        if sizes.get("pending"):
            raise RuntimeError(f"notice {lease.notice_id}: batches still pending at the end")
        delivered, failed = int(sizes.get("sent") or 0), int(sizes.get("failed") or 0)
        recipients = delivered + failed
        result = session.execute(
            update(Notice)
            .where(lease.held)
            .values(
                status="sent",
                sent_at=utcnow(),
                lease_until=None,
                recipients=recipients,
                delivered=delivered,
                failed=failed,
            ),
            execution_options={"synchronize_session": False},
        )
        if result.rowcount != 1:
            raise LeaseLost(f"notice {lease.notice_id}: the lease went to another sender")
        author = session.scalar(select(Notice.author).where(Notice.id == lease.notice_id))
        session.add(
            AuditEntry(
                user=author or "system",
                action="notice_sent",
                target=f"notice:{lease.notice_id}",
                detail=f"recipients={recipients} delivered={delivered} failed={failed}",
            )
        )
    log.info(
        "notice %s sent: %s recipients, %s delivered, %s failed, %s requests",
        lease.notice_id, recipients, delivered, failed, requests,
    )  # fmt: skip
    return SendReport(
        lease.notice_id, recipients, delivered, failed, requests, plan_s, time.monotonic() - started
    )


def next_lease_end(settings: Settings) -> float | None:
    """Seconds until the first running lease ends (None when no notice is being sent): when a
    sender that is gone held it, its notice is due then."""
    now = utcnow()
    with session_scope(settings.database_url) as session:
        first = session.scalar(
            select(func.min(Notice.lease_until)).where(Notice.status == "sending", Notice.lease_until >= now)
        )
    if first is None:
        return None
    first = first if first.tzinfo else first.replace(tzinfo=now.tzinfo)  # SQLite: naive, in UTC
    return max(0.0, (first - now).total_seconds())
