"""Notices: written in the console or with `concierge notices send`, shown in the widget of their
wards while current, and sent to LINE subscribers by bot/notices/sending.py.

A notice is public text written by staff; it holds no resident's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, select

from bot.notices.topics import TOPIC_IDS, topic_label
from bot.payloads import WARDS
from bot.storage.db import session_scope
from bot.storage.models import Notice, utcnow

MAX_TITLE = 120
MAX_BODY = 2000  # a LINE text message holds 5,000; a notice is read on a phone
CURRENT_DAYS = 7  # a sent notice is shown in the widget for a week
CITYWIDE = "川崎市"  # the header of a notice to every ward
# one LINE text message (bot/line_messaging.MAX_TEXT; not imported: this module loads no LINE SDK)
MAX_LINE_TEXT = 5000


class NoticeError(ValueError):
    """A notice that cannot be sent as written (the text says what to fix, in Japanese)."""


@dataclass(frozen=True)
class NoticeView:
    """What the widget and the console show of a notice."""

    id: int
    title: str
    body: str
    link: str | None
    wards: tuple[str, ...]
    topic: str
    topic_label: str
    status: str
    send_at: datetime
    sent_at: datetime | None
    recipients: int
    delivered: int
    failed: int
    author: str

    def as_public(self) -> dict:
        """The fields a resident's page may see (no author, no counts)."""
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "link": self.link,
            "wards": list(self.wards),
            "topic": self.topic,
            "topic_label": self.topic_label,
            "sent_at": (self.sent_at or self.send_at).isoformat(),
        }


def notice_text(title: str, body: str, link: str | None, wards: list[str], topic: str) -> str:
    """「【中原区・防災】title\\n\\nbody\\nlink」, the body cut so that it fits one LINE text message.
    The sender sends it and the console's preview shows it: one function, so they cannot drift."""
    place = CITYWIDE if set(wards) >= set(WARDS) else "・".join(w for w in WARDS if w in wards)
    title, body, link = title.strip(), body.strip(), (link or "").strip()
    head = f"【{place}・{topic_label(topic)}】{title}\n\n"
    tail = f"\n{link}" if link else ""
    room = MAX_LINE_TEXT - len(head) - len(tail)
    if len(body) > room:
        body = body[: max(0, room - 1)] + "…"
    return (head + body + tail)[:MAX_LINE_TEXT]


def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def view(notice: Notice) -> NoticeView:
    return NoticeView(
        id=notice.id,
        title=notice.title,
        body=notice.body,
        link=notice.link,
        wards=tuple(notice.ward_list),
        topic=notice.topic,
        topic_label=topic_label(notice.topic),
        status=notice.status,
        send_at=_aware(notice.send_at),
        sent_at=_aware(notice.sent_at) if notice.sent_at else None,
        recipients=notice.recipients,
        delivered=notice.delivered,
        failed=notice.failed,
        author=notice.author,
    )


def validate(title: str, body: str, link: str | None, wards: list[str], topic: str) -> None:
    """Raise NoticeError with what to fix."""
    if not title.strip():
        raise NoticeError("件名を入力してください。")
    if len(title) > MAX_TITLE:
        raise NoticeError(f"件名は{MAX_TITLE}文字以内にしてください。")
    if not body.strip():
        raise NoticeError("本文を入力してください。")
    if len(body) > MAX_BODY:
        raise NoticeError(f"本文は{MAX_BODY}文字以内にしてください。")
    if link and not link.startswith(("https://", "http://")):
        raise NoticeError("リンクは https:// で始まるURLにしてください。")
    if not wards or any(w not in WARDS for w in wards):
        raise NoticeError("区を1つ以上選んでください。")
    if topic not in TOPIC_IDS:
        raise NoticeError("分野を選んでください。")


def create(
    database_url: str,
    *,
    title: str,
    body: str,
    wards: list[str],
    topic: str,
    author: str,
    link: str | None = None,
    send_at: datetime | None = None,
) -> NoticeView:
    """A notice to send at `send_at` (now when None); sending is bot/notices/sending.py's job."""
    validate(title, body, link, wards, topic)
    with session_scope(database_url) as session:
        notice = Notice(
            title=title.strip(),
            body=body.strip(),
            link=(link or "").strip() or None,
            wards=",".join(w for w in WARDS if w in wards),
            topic=topic,
            author=author,
            status="scheduled",
            send_at=send_at or utcnow(),
        )
        session.add(notice)
        session.flush()
        return view(notice)


def get(database_url: str, notice_id: int) -> NoticeView | None:
    with session_scope(database_url) as session:
        notice = session.get(Notice, notice_id)
        return view(notice) if notice else None


def cancel(database_url: str, notice_id: int) -> bool:
    """Cancel a notice not yet being sent; False when it is sending or sent."""
    with session_scope(database_url) as session:
        notice = session.get(Notice, notice_id)
        if notice is None or notice.status != "scheduled":
            return False
        notice.status = "cancelled"
        return True


def listing(database_url: str, wards: list[str] | None = None, limit: int = 100) -> list[NoticeView]:
    """Newest first; only those touching `wards` when given (ward staff see their wards')."""
    with session_scope(database_url) as session:
        notices = session.execute(select(Notice).order_by(Notice.id.desc()).limit(limit * 4)).scalars()
        out = [view(n) for n in notices if wards is None or set(n.ward_list) & set(wards)]
    return out[:limit]


def current(database_url: str, ward: str | None, now: datetime | None = None) -> list[NoticeView]:
    """The notices a resident of `ward` sees now (every ward's when None): sent, or being sent,
    within the last CURRENT_DAYS, newest first."""
    now = now or utcnow()
    since = now - timedelta(days=CURRENT_DAYS)
    with session_scope(database_url) as session:
        notices = session.execute(
            select(Notice)
            .where(Notice.status.in_(("sending", "sent")), Notice.send_at >= since, Notice.send_at <= now)
            .order_by(Notice.send_at.desc())
            .limit(50)
        ).scalars()
        return [view(n) for n in notices if ward is None or ward in n.ward_list][:5]


def due(database_url: str, now: datetime | None = None) -> list[int]:
    """Ids of notices to send now: scheduled and due, or sending with a lease that ran out (their
    sender was killed)."""
    with session_scope(database_url) as session:
        rows = session.execute(select(Notice.id).where(due_clause(now or utcnow())).order_by(Notice.id))
        return list(rows.scalars())


def due_clause(now: datetime) -> ColumnElement[bool]:
    """The condition of `due`, also the one a sender claims a notice on (bot/notices/sending.py)."""
    return ((Notice.status == "scheduled") & (Notice.send_at <= now)) | (
        (Notice.status == "sending") & ((Notice.lease_until.is_(None)) | (Notice.lease_until < now))
    )
