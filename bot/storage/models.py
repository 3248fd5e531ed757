"""SQLAlchemy models. Texts are stored masked; nothing here holds personal data in clear."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text, false
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
