"""SQLAlchemy models. Texts are stored masked; nothing here holds personal data in clear."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


TICKET_STATUSES = ("new", "claimed", "answered", "closed")
ISSUE_STATUSES = ("new", "acknowledged", "answered", "closed")


class Ticket(Base):
    """A conversation handed to ward staff."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ward: Mapped[str | None] = mapped_column(String(16), index=True)
    department: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))  # requested | not_helped | sensitive
    channel: Mapped[str] = mapped_column(String(32))  # rest, line, widget …
    sender: Mapped[str] = mapped_column(String(128), index=True)  # reply address
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    resolution: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    messages: Mapped[list[TicketMessage]] = relationship(
        back_populates="ticket", order_by="TicketMessage.id", cascade="all, delete-orphan"
    )


class TicketMessage(Base):
    """One line of a ticket: the masked transcript, staff replies and internal notes."""

    __tablename__ = "ticket_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(16))  # resident | bot | staff | note
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ticket: Mapped[Ticket] = relationship(back_populates="messages")


class RegionalIssue(Base):
    """Unanswered questions of one ward grouped by meaning: what the ward's residents need."""

    __tablename__ = "regional_issues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ward: Mapped[str] = mapped_column(String(16), index=True)  # 不明 when unknown
    label: Mapped[str] = mapped_column(String(128))
    count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    knowledge_entry: Mapped[str | None] = mapped_column(String(128))  # set when answered
    centroid: Mapped[bytes] = mapped_column(LargeBinary)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    questions: Mapped[list[UnresolvedQuestion]] = relationship(
        back_populates="issue", order_by="UnresolvedQuestion.id"
    )


class UnresolvedQuestion(Base):
    """A message the bot could not answer confidently (masked), with its embedding."""

    __tablename__ = "unresolved_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ward: Mapped[str] = mapped_column(String(16), index=True)
    text: Mapped[str] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Float)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    channel: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("regional_issues.id"), index=True)
    issue: Mapped[RegionalIssue | None] = relationship(back_populates="questions")


STAFF_ROLES = ("ward_staff", "editor", "admin")


class StaffUser(Base):
    """A person who works in the staff console. Passwords are stored hashed (werkzeug scrypt)."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    wards: Mapped[str] = mapped_column(String(128), default="")  # comma-separated, for ward_staff
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A disabled user cannot log in and their live sessions are refused (`concierge staff disable`).
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    @property
    def ward_list(self) -> list[str]:
        return [w for w in self.wards.split(",") if w]


class ConsoleSession(Base):
    """A logged-in staff browser. The cookie carries a random token; only its SHA-256 is stored, so
    the table cannot be replayed. Deleting the row (logout, disable, new password, timeout) ends
    the session at once, whatever copies of the cookie exist."""

    __tablename__ = "staff_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEntry(Base):
    """Who did what in the console, and when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    user: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class HandledLineEvent(Base):
    """A LINE webhook event already taken by a worker (its webhookEventId, nothing of its content):
    LINE delivers again when it thinks a delivery failed, and the second delivery is skipped."""

    __tablename__ = "line_events"

    webhook_event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    handled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


ANSWER_OUTCOMES = ("answered", "not_sure", "handoff", "out_of_scope", "sensitive")


class AnswerEvent(Base):
    """One question the bot replied to, for the staff's figures: what came of it, which entry
    answered it and the resident's rating — never the resident's text. `conversation` is a keyed
    hash of the sender id (bot/analytics.py), so a conversation can be counted and erased without
    storing its address; it is cleared when the retention period ends, the counts stay."""

    __tablename__ = "answer_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    ward: Mapped[str | None] = mapped_column(String(16), index=True)
    channel: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))  # one of ANSWER_OUTCOMES
    entry: Mapped[str | None] = mapped_column(String(128), index=True)  # knowledge entry id answered
    topic: Mapped[str | None] = mapped_column(String(128))  # the entry's title, for the figures
    conversation: Mapped[str | None] = mapped_column(String(64), index=True)
    helpful: Mapped[bool | None] = mapped_column(Boolean)  # the resident's 「解決しましたか？」
    rated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


DRAFT_STATUSES = ("draft", "submitted", "published", "rejected")


class KnowledgeDraft(Base):
    """An editor's proposed change to one knowledge entry (or a new entry), waiting for a second
    person's approval before it reaches knowledge/. `base` is the entry's text in its file when
    the draft was made: approving compares it with the file, so a change published meanwhile is
    never silently overwritten. Knowledge is public text: no resident's words are stored here
    (a draft from a regional issue holds its questions masked)."""

    __tablename__ = "knowledge_drafts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # faq, service, office, counter, hours, towns
    entry_id: Mapped[str | None] = mapped_column(String(128), index=True)  # None: a new entry
    base: Mapped[str] = mapped_column(Text, default="")  # the entry's YAML text when drafted
    fields: Mapped[str] = mapped_column(Text)  # the form's fields, JSON
    author: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)  # DRAFT_STATUSES
    reviewer: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text, default="")  # the reviewer's, kept on rejection
    issue_id: Mapped[int | None] = mapped_column(Integer, index=True)  # made from a regional issue
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class KnowledgeRevision(Base):
    """One published change of a knowledge entry: its text in the file before and after, who wrote
    it and who approved it. A rollback is a revision too (its `rolled_back` names the one undone)."""

    __tablename__ = "knowledge_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    file: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    entry_id: Mapped[str] = mapped_column(String(128), index=True)
    before: Mapped[str] = mapped_column(Text, default="")  # "" : the entry was new
    after: Mapped[str] = mapped_column(Text, default="")  # "" : the entry was removed
    author: Mapped[str] = mapped_column(String(64))
    approver: Mapped[str] = mapped_column(String(64))
    draft_id: Mapped[int | None] = mapped_column(Integer)
    rolled_back: Mapped[int | None] = mapped_column(Integer)  # the revision this one undid


# Reaching residents first (issue 18): subscriptions, notices and their delivery log, the disaster
# banner, counter congestion and temporary openings. bot/notices/ reads and writes these.

NOTICE_STATUSES = ("scheduled", "sending", "sent", "cancelled")


class NoticeSubscription(Base):
    """A LINE resident's wish to receive one ward's notices on one topic. The LINE user id is the
    only address a multicast can use, so it is kept here — until the resident stops the notices,
    blocks the bot or erases the conversation (bot/retention.py), never in a log."""

    __tablename__ = "notice_subscriptions"
    __table_args__ = (UniqueConstraint("line_user_id", "ward", "topic", name="uq_notice_subscription"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line_user_id: Mapped[str] = mapped_column(String(64), index=True)
    ward: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(16))  # an id of bot.notices.topics.TOPICS
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


Index("ix_notice_subscriptions_ward_topic", NoticeSubscription.ward, NoticeSubscription.topic)


class Notice(Base):
    """A notice staff (or the CLI) wrote for some wards and one topic: shown in the widget of those
    wards while it is current, and sent to the LINE residents subscribed to them."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(500))
    wards: Mapped[str] = mapped_column(String(128))  # comma-separated; every ward when citywide
    topic: Mapped[str] = mapped_column(String(16), index=True)
    author: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="scheduled", index=True)  # NOTICE_STATUSES
    send_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # One sender at a time: a worker holds the notice until this time and renews it per batch; a
    # killed worker's lease runs out and another (or the restarted one) resumes the notice.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def ward_list(self) -> list[str]:
        return [w for w in self.wards.split(",") if w]


BATCH_STATUSES = ("pending", "sent", "failed")


class NoticeBatch(Base):
    """Up to 500 recipients of a notice sent in one multicast. `retry_key` goes with every try as
    LINE's X-Line-Retry-Key: LINE accepts a key once, so a batch re-sent after a crash between
    LINE's 200 and our commit is answered 409 and reaches nobody twice."""

    __tablename__ = "notice_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"), index=True)
    retry_key: Mapped[str] = mapped_column(String(36), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # BATCH_STATUSES
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(String(120))  # the status LINE answered, no content


class NoticeDelivery(Base):
    """The delivery log: one row per notice and recipient (the primary key makes a second row for
    the same pair impossible), in the batch that carries it."""

    __tablename__ = "notice_deliveries"

    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"), primary_key=True)
    line_user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("notice_batches.id", ondelete="CASCADE"), index=True)


class DisasterAlert(Base):
    """Disaster mode, citywide (`wards` empty) or for some wards, while `ended_at` is empty: the
    widget and the greeting carry a red banner with `message`, and the bot answers shelters."""

    __tablename__ = "disaster_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    wards: Mapped[str] = mapped_column(String(128), default="")  # comma-separated; "" = citywide
    message: Mapped[str] = mapped_column(Text)
    notice_id: Mapped[int | None] = mapped_column(Integer)  # the notice sent with it, if any
    started_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_by: Mapped[str | None] = mapped_column(String(64))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)

    @property
    def ward_list(self) -> list[str]:
        return [w for w in self.wards.split(",") if w]


CONGESTION_LEVELS = ("quiet", "some", "busy")  # 空いています / やや混雑 / 混雑


class CounterStatus(Base):
    """How busy one counter of one ward office is now, as staff last set it."""

    __tablename__ = "counter_status"

    ward: Mapped[str] = mapped_column(String(16), primary_key=True)
    counter_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[str | None] = mapped_column(String(8))  # one of CONGESTION_LEVELS
    wait_minutes: Mapped[int | None] = mapped_column(Integer)
    set_by: Mapped[str] = mapped_column(String(64))
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


OPENING_KINDS = ("temporary", "holiday")  # 臨時窓口 / 休日開庁


class SpecialOpening(Base):
    """A published temporary counter or holiday opening of a ward office (臨時窓口・休日開庁)."""

    __tablename__ = "special_openings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ward: Mapped[str] = mapped_column(String(16), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    opens: Mapped[str] = mapped_column(String(5))  # HH:MM, Japan time
    closes: Mapped[str] = mapped_column(String(5))
    kind: Mapped[str] = mapped_column(String(16))  # one of OPENING_KINDS
    counters: Mapped[str] = mapped_column(String(256), default="")  # counter ids, comma-separated
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def counter_list(self) -> list[str]:
        return [c for c in self.counters.split(",") if c]


# Consultation booking (issue 19): slots staff publish per ward office counter, and the bookings
# residents make in the conversation. bot/bookings/ reads and writes these.

SLOT_STATUSES = ("open", "closed")


class BookingSlot(Base):
    """A bookable time at one counter of one ward office. `booked` counts the live bookings: a seat
    is taken by one conditional UPDATE (`booked < capacity`), and the CHECK keeps the database from
    ever holding more bookings than seats, whatever the concurrency."""

    __tablename__ = "booking_slots"
    __table_args__ = (
        UniqueConstraint("ward", "counter_id", "day", "start", name="uq_booking_slot"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="ck_booking_slot_seats"),
        CheckConstraint("capacity >= 1", name="ck_booking_slot_capacity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ward: Mapped[str] = mapped_column(String(16))
    counter_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date, index=True)
    start: Mapped[str] = mapped_column(String(5))  # HH:MM, Japan time
    minutes: Mapped[int] = mapped_column(Integer, default=30)
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    booked: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(8), default="open")  # SLOT_STATUSES
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


BOOKING_STATUSES = ("booked", "cancelled", "arrived", "no_show")


class Booking(Base):
    """One resident's booking of a slot. It belongs to the conversation that made it
    (`conversation`: the sender id, which is also the LINE user id a reminder is pushed to); no
    name or phone number is asked. `topic` is what the consultation is about, as the bot named it
    (a knowledge entry's title or the counter's name) — never the resident's words."""

    __tablename__ = "bookings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)  # what the resident shows at the counter
    slot_id: Mapped[int] = mapped_column(ForeignKey("booking_slots.id", ondelete="CASCADE"), index=True)
    conversation: Mapped[str | None] = mapped_column(String(128), index=True)
    channel: Mapped[str | None] = mapped_column(String(32))
    topic: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="booked", index=True)  # BOOKING_STATUSES
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    cancelled_by: Mapped[str | None] = mapped_column(String(64))  # "resident" or the staff's name
    staff_message: Mapped[str | None] = mapped_column(Text)  # staff's word to the resident on cancelling
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
