"""Escalation tickets: a conversation handed to ward staff, and the way back to the resident.

A ticket is committed before the bot tells the resident it exists. Staff replies are delivered
through the channel the ticket came from (the Rasa conversation for REST and the widget; LINE's
push API later), and closing a ticket hands the conversation back to the bot.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import selectinload
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from bot.privacy import mask, public_numbers
from bot.rasa_client import RasaClient
from bot.settings import Settings
from bot.storage.db import session_scope
from bot.storage.models import Ticket, TicketMessage
from bot.storage.spool import Spool
from bot.wording import say

log = logging.getLogger(__name__)
# What staff are told when their message did not reach the resident (nothing was recorded).
NOT_DELIVERED_BOT = "ボットのサーバーに届かず、住民に送れませんでした。少し待ってもう一度お試しください。"
NOT_DELIVERED_LINE = "LINEに送信できませんでした。少し待ってもう一度お試しください。"
# A locked SQLite file, a restarting or unreachable PostgreSQL: worth trying again.
TRANSIENT = (OperationalError, InterfaceError)


@dataclass(frozen=True)
class Addressee:
    """A resident's conversation that staff write to without a ticket (a booking they cancelled),
    reached the way a ticket's reply is: `sender` and `channel` as on a ticket; `kind` and `id` say
    what the message is about, in the tracker event's metadata and in log lines."""

    sender: str
    channel: str | None
    id: int
    kind: str = "booking"


def _about(target: Ticket | Addressee) -> tuple[str, int]:
    return getattr(target, "kind", "ticket"), target.id


class Delivery(Protocol):
    """How a staff message reaches a resident on the ticket's (or addressee's) channel."""

    def send(self, ticket: Ticket | Addressee, text: str) -> None: ...

    def resume(self, ticket: Ticket, text: str) -> None: ...


class TicketError(Exception):
    pass


class DeliveryError(TicketError):
    """The staff message did not reach the resident; the ticket is left as it was, to try again."""


class RasaDelivery:
    """Appends the staff message to the Rasa conversation; the resident's client picks it up.

    What staff type is masked before it goes into the tracker, like everything else stored there:
    staff copy a resident's phone number or address into a reply («090-… にお電話します»), and the
    tracker store is kept, backed up and read by more people than the ticket. The widget and REST
    clients read staff replies from the tracker, so their residents see the masked copy; the data
    masked is their own, which they know, and the public numbers of offices and hotlines the
    knowledge prints (`public`, from bot.privacy.public_numbers) stay readable. LINE residents
    get the original through the push API (ChannelDelivery), which stores nothing here."""

    def __init__(self, client: RasaClient, public: frozenset[str] = frozenset()) -> None:
        """`client`: a RasaClient with the Rasa token (its HTTP API refuses without)."""
        self.client = client
        self.public = public

    @classmethod
    def from_settings(cls, settings: Settings) -> RasaDelivery:
        """To the settings' Rasa server, with its token; a staff reply waits at most 10 s."""
        return cls(RasaClient.from_settings(settings, timeout=10.0), public_numbers(settings.knowledge_dir))

    def _stored(self, text: str) -> str:
        return mask(text, keep=self.public)

    def _append(self, ticket: Ticket | Addressee, events: list[dict]) -> None:
        import requests

        try:
            self.client.append_events(ticket.sender, events)
        except requests.RequestException as err:
            kind, number = _about(ticket)
            log.warning("staff message for %s #%s not delivered: %s", kind, number, type(err).__name__)
            raise DeliveryError(NOT_DELIVERED_BOT) from err

    def send(self, ticket: Ticket | Addressee, text: str) -> None:
        kind, number = _about(ticket)
        self._append(ticket, [staff_event(self._stored(text), number, kind)])

    def resume(self, ticket: Ticket, text: str) -> None:
        # action_listen leaves the dialogue ready for the resident's next message, as after any turn
        events = [
            {"event": "resume"},
            staff_event(self._stored(text), ticket.id),
            {"event": "action", "name": "action_listen"},
        ]
        self._append(ticket, events)


class ChannelDelivery:
    """Staff messages go out on the ticket's own channel: LINE's push API for LINE tickets, with
    the text as staff wrote it; the Rasa conversation always gets them too, masked (the widget and
    REST clients read them there, and the transcript stays whole; see RasaDelivery)."""

    def __init__(self, rasa: RasaDelivery, line=None) -> None:
        self.rasa = rasa
        self.line = line  # bot.line_messaging.LineClient, when LINE is configured

    def _push(self, ticket: Ticket | Addressee, text: str) -> None:
        if ticket.channel == "line" and self.line is not None:
            from linebot.v3.messaging import TextMessage

            from bot.line_messaging import LineApiError

            try:
                self.line.push(ticket.sender, [TextMessage(text=text[:5000])])
            except LineApiError as err:
                log.warning("LINE push for %s #%s not delivered (%s)", *_about(ticket), err)
                raise DeliveryError(NOT_DELIVERED_LINE) from err

    def send(self, ticket: Ticket | Addressee, text: str) -> None:
        self.rasa.send(ticket, text)
        self._push(ticket, text)

    def resume(self, ticket: Ticket, text: str) -> None:
        self.rasa.resume(ticket, text)
        self._push(ticket, text)


def staff_event(text: str, ticket_id: int, kind: str = "ticket") -> dict:
    return {"event": "bot", "text": text, "metadata": {"staff": True, kind: ticket_id}}


SUMMARY_CHARS = 40  # the ticket list's one-line summary of the resident's question


def summary_of(ticket: Ticket) -> str:
    """The resident's last line before the hand-off (masked), on one line."""
    lines = [m.text for m in ticket.messages if m.author == "resident"]
    text = " ".join((lines[-1] if lines else "").split())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def ticket_dict(ticket: Ticket, with_messages: bool = False) -> dict:
    data = {
        "id": ticket.id,
        "ward": ticket.ward,
        "department": ticket.department,
        "reason": ticket.reason,
        "channel": ticket.channel,
        "sender": ticket.sender,
        "status": ticket.status,
        "claimed_by": ticket.claimed_by,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
    }
    if with_messages:
        data["messages"] = [
            {"author": m.author, "text": m.text, "at": m.created_at.isoformat()} for m in ticket.messages
        ]
    return data


class StorageUnavailable(Exception):
    """The database stayed unreachable through every retry; the ticket waits in the spool."""


class Escalations:
    def __init__(
        self,
        db_url: str,
        spool_path: Path,
        delivery: Delivery | None = None,
        attempts: int = 4,
    ) -> None:
        """`spool_path`: where tickets wait while the database is away (written, never lost)."""
        self.db_url = db_url
        self.delivery = delivery
        self.spool = Spool(spool_path)
        self.attempts = attempts

    @classmethod
    def from_settings(cls, settings: Settings, delivery: Delivery | None = None) -> Escalations:
        spool = settings.var_dir / "spool" / "tickets.jsonl"
        return cls(settings.database_url, spool, delivery, settings.db_attempts)

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type(TRANSIENT),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=0.25, max=2.0),
            reraise=True,
        )

    def flush_spool(self) -> int:
        """Write tickets spooled while the database was away; returns how many."""
        if not self.spool.pending():
            return 0
        written = self.spool.drain(self._insert)
        if written:
            log.warning("wrote %d spooled ticket(s) to the database", written)
        return written

    def open_ticket(
        self,
        *,
        ward: str | None,
        department: str,
        reason: str,
        channel: str,
        sender: str,
        transcript: Sequence[tuple[str, str]],
    ) -> int:
        """Create and commit a ticket with the masked transcript; returns its number.

        A locked or unreachable database is retried; if it stays away the ticket goes to the
        spool (nothing is lost) and StorageUnavailable tells the caller to say so."""
        record = {
            "ward": ward,
            "department": department,
            "reason": reason,
            "channel": channel,
            "sender": sender,
            # residents' lines are masked; the bot's own lines hold no personal data
            "transcript": [[a, mask(t) if a == "resident" else t] for a, t in transcript],
        }
        try:
            self.flush_spool()
            return self._retrying()(self._insert, record)
        except TRANSIENT as err:
            self.spool.put(record)
            log.error(
                "database unreachable after %d attempts (%s); ticket spooled",
                self.attempts,
                type(err).__name__,
            )
            raise StorageUnavailable(str(self.spool.path)) from err

    def _insert(self, record: dict) -> int:
        with session_scope(self.db_url) as session:
            ticket = Ticket(**{k: record[k] for k in ("ward", "department", "reason", "channel", "sender")})
            ticket.messages = [TicketMessage(author=a, text=t) for a, t in record["transcript"]]
            session.add(ticket)
            session.flush()
            return ticket.id

    def open_ticket_of(self, sender: str) -> dict | None:
        with session_scope(self.db_url) as session:
            ticket = session.scalars(
                select(Ticket)
                .where(Ticket.sender == sender, Ticket.status != "closed")
                .order_by(Ticket.id.desc())
            ).first()
            return ticket_dict(ticket) if ticket else None

    def list(self, ward: str | None = None, status: str | None = None) -> list[dict]:
        """Oldest first: the ticket waiting longest is the one to answer."""
        self.flush_spool()
        with session_scope(self.db_url) as session:
            query = select(Ticket).options(selectinload(Ticket.messages))  # for the summaries
            query = query.order_by(Ticket.created_at, Ticket.id)
            if ward:
                query = query.where(Ticket.ward == ward)
            if status:
                query = query.where(Ticket.status == status)
            return [{**ticket_dict(t), "summary": summary_of(t)} for t in session.scalars(query)]

    def get(self, ticket_id: int) -> dict:
        with session_scope(self.db_url) as session:
            return ticket_dict(self._ticket(session, ticket_id), with_messages=True)

    @staticmethod
    def _ticket(session, ticket_id: int) -> Ticket:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise TicketError(f"no ticket #{ticket_id}")
        return ticket

    def claim(self, ticket_id: int, staff: str) -> None:
        with session_scope(self.db_url) as session:
            ticket = self._ticket(session, ticket_id)
            if ticket.status == "closed":
                raise TicketError(f"ticket #{ticket_id} is closed")
            ticket.status, ticket.claimed_by = "claimed", staff

    def note(self, ticket_id: int, text: str, staff: str = "") -> None:
        """An internal note for colleagues (masked); it never reaches the resident."""
        with session_scope(self.db_url) as session:
            # held in a name: the session keeps only a weak reference, and appending to the messages
            # of a ticket already collected raised ObjectDereferencedError (the note was lost)
            ticket = self._ticket(session, ticket_id)
            ticket.messages.append(TicketMessage(author="note", text=mask(text)))

    def reply(self, ticket_id: int, text: str, staff: str = "") -> None:
        """Deliver a staff answer to the resident (the delivery stores only a masked copy, see
        RasaDelivery), then record it (masked) on the ticket."""
        with session_scope(self.db_url) as session:
            ticket = self._ticket(session, ticket_id)
            if ticket.status == "closed":
                raise TicketError(f"ticket #{ticket_id} is closed")
            if self.delivery:
                self.delivery.send(ticket, text)
            ticket.messages.append(TicketMessage(author="staff", text=mask(text)))
            ticket.status = "answered"
            ticket.claimed_by = ticket.claimed_by or staff or None

    def close(self, ticket_id: int, resolution: str = "", notice: str = "") -> None:
        """Close the ticket and give the conversation back to the bot."""
        with session_scope(self.db_url) as session:
            ticket = self._ticket(session, ticket_id)
            if ticket.status == "closed":
                return
            if self.delivery:
                # the ticket does not know the resident's language: the default's
                self.delivery.resume(ticket, notice or say("utter_staff_done"))
            ticket.status, ticket.resolution = "closed", mask(resolution) or None
            ticket.closed_at = datetime.now(UTC)
