"""Figures for staff (the read side of `answer_events`; bot/analytics.py writes it): what came of
residents' questions per JST day and per ward, how the answers were rated, what stays unresolved
and how soon staff answered hand-offs compared with what the resident was promised.

Nothing personal comes out of here: no sender, no conversation key (only a count of distinct
keys), no resident text. Unresolved topics are regional issues' labels — nouns taken from masked
questions — shown only for issues with at least MIN_TOPIC_QUESTIONS questions in the period (a
one-question label is one resident's words), masked again and never the raw-text fallback.

"answered" means the bot gave an answer it was confident in; a confidently wrong answer counts as
answered too. Only `helpful_rate` (the residents' 「解決しましたか？」) says whether answers helped.

Bookings (issue 19) are counted by the day of the consultation, not the day they were made: what a
counter had on its calendar that day and what came of it. Counts only — no booking number, no
conversation, no staff name.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import and_, case, func, select
from sqlalchemy.sql.elements import ColumnElement

from bot.business_hours import JST, schedules_for, staff_promise
from bot.knowledge import WARDS, KnowledgeBase
from bot.privacy import mask
from bot.regional_issues import UNKNOWN_WARD
from bot.storage.db import get_engine, session_scope
from bot.storage.models import (
    ANSWER_OUTCOMES,
    AnswerEvent,
    Booking,
    BookingSlot,
    RegionalIssue,
    Ticket,
    TicketMessage,
    UnresolvedQuestion,
)

MIN_RATINGS = 5  # an entry needs this many ratings before its helpful rate is shown as "worst"
MIN_TOPIC_QUESTIONS = 2  # see the module's docstring
WORST_SHOWN = 10
TOPICS_SHOWN = 10
MAX_DAYS = 731  # a period longer than two years is a typo, not a question
KNOWN_WARDS = (*WARDS, UNKNOWN_WARD)  # 不明: the resident never said their ward


class FiguresError(ValueError):
    """A period or ward the figures cannot be computed for (the CLI exits 2, the page says why in
    its own words, by `code`: bad_date, until_before_since, too_long, unknown_ward, dialect)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class Row(BaseModel):
    """The figures of one day, one ward, one day × ward, or the whole period (day and ward None)."""

    day: str | None = None  # JST date, YYYY-MM-DD
    ward: str | None = None
    conversations: int = 0  # distinct conversation keys
    unkeyed_questions: int = 0  # questions whose key was cleared at retention: in no conversation count
    questions: int = 0
    outcomes: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(ANSWER_OUTCOMES, 0))
    answered_rate: float | None = None
    not_sure_rate: float | None = None
    handoff_rate: float | None = None
    rated: int = 0
    helpful: int = 0
    helpful_rate: float | None = None
    tickets: int = 0  # hand-offs opened
    replied_tickets: int = 0  # of which staff have replied
    first_reply_minutes_median: float | None = None
    first_reply_minutes_p90: float | None = None
    promise_counted: int = 0  # tickets replied to, or past their promise unanswered
    answered_within_promise_rate: float | None = None
    bookings: int = 0  # made for a consultation on the day, whatever became of them
    bookings_cancelled: int = 0  # by the resident (a change of time too) or by staff
    bookings_cancelled_by_resident: int = 0
    bookings_cancelled_by_staff: int = 0
    bookings_arrived: int = 0
    bookings_no_show: int = 0


class WorstEntry(BaseModel):
    entry: str
    topic: str | None
    rated: int
    helpful: int
    helpful_rate: float


class UnresolvedTopic(BaseModel):
    issue: int
    label: str
    ward: str
    questions: int  # in the period
    status: str


class Figures(Row):
    """The totals at top level (the keys the CLI's --json promises), then the breakdowns."""

    since: str
    until: str
    ward_filter: list[str] | None
    days: list[Row]
    wards: list[Row]
    cells: list[Row]  # day × ward, for the CSV export
    worst_entries: list[WorstEntry]
    unresolved_topics: list[UnresolvedTopic]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _aware(value: datetime) -> datetime:
    """SQLite gives back naive datetimes; they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _jst_day(column, dialect: str) -> ColumnElement:
    """The JST date of a UTC timestamp as 'YYYY-MM-DD', computed by the database (JST has no DST)."""
    if dialect == "sqlite":
        return func.date(column, "+9 hours")
    if dialect == "postgresql":
        return func.to_char(func.timezone("Asia/Tokyo", column), "YYYY-MM-DD")
    raise FiguresError(f"figures are not implemented for {dialect}", "dialect")


def _bounds(since: date, until: date) -> tuple[datetime, datetime]:
    """[since 00:00 JST, the day after until 00:00 JST) in UTC."""
    start = datetime.combine(since, time(), JST).astimezone(UTC)
    end = datetime.combine(until + timedelta(days=1), time(), JST).astimezone(UTC)
    return start, end


def _ward_clause(column, wards: list[str] | None) -> ColumnElement | None:
    """`wards` None: every ward; 不明 in the list stands for rows without a ward (NULL or 不明)."""
    if wards is None:
        return None
    named = [w for w in wards if w != UNKNOWN_WARD]
    clause = column.in_(named) if named else None
    if UNKNOWN_WARD in wards:
        unknown = column.is_(None) | (column == UNKNOWN_WARD)
        clause = unknown if clause is None else clause | unknown
    return clause if clause is not None else column.in_([])


def _percentile(values: list[float], q: int) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), e.g. p90 of 1…10 is 9.1."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def check_wards(wards: Iterable[str] | None) -> list[str] | None:
    if wards is None:
        return None
    wards = list(dict.fromkeys(wards))
    unknown = [w for w in wards if w not in KNOWN_WARDS]
    if unknown:
        raise FiguresError(
            f"unknown ward(s): {', '.join(unknown)} (known: {', '.join(KNOWN_WARDS)})", "unknown_ward"
        )
    return wards


def compute(
    db_url: str,
    since: date,
    until: date | None = None,
    wards: Iterable[str] | None = None,
    kb: KnowledgeBase | None = None,
    now: datetime | None = None,
) -> Figures:
    """The figures for [since, until] (JST dates, both included; until defaults to today) and the
    given wards (None: all). `kb` gives the opening hours for the hand-off promise (without it the
    promise share is None); `now` decides which unanswered tickets are already late."""
    now = now or datetime.now(UTC)
    until = until or now.astimezone(JST).date()
    if until < since:
        raise FiguresError(f"until ({until}) is before since ({since})", "until_before_since")
    if (until - since).days >= MAX_DAYS:
        raise FiguresError(f"the period may be at most {MAX_DAYS} days", "too_long")
    wards = check_wards(wards)
    start, end = _bounds(since, until)
    dialect = get_engine(db_url).dialect.name
    cells: dict[tuple[str, str], Row] = {}
    days: dict[str, Row] = {}
    per_ward: dict[str, Row] = {}
    total = Row()

    def rows_for(day: str, ward: str) -> list[Row]:
        """The rows a count adds to: its day × ward, its day, its ward and the totals."""
        if (day, ward) not in cells:
            cells[(day, ward)] = Row(day=day, ward=ward)
            if day not in days:
                days[day] = Row(day=day)
            if ward not in per_ward:
                per_ward[ward] = Row(ward=ward)
        return [cells[(day, ward)], days[day], per_ward[ward], total]

    with session_scope(db_url) as session:
        e = AnswerEvent
        day = _jst_day(e.at, dialect).label("day")
        ward = func.coalesce(e.ward, UNKNOWN_WARD).label("ward")
        where = [e.at >= start, e.at < end]
        if (clause := _ward_clause(e.ward, wards)) is not None:
            where.append(clause)
        counts = session.execute(
            select(day, ward, e.outcome, e.helpful, func.count(), func.count(e.conversation))
            .where(*where)
            .group_by(day, ward, e.outcome, e.helpful)
        )
        for d, w, outcome, helpful, n, keyed in counts:
            for row in rows_for(str(d), w):
                row.questions += n
                row.unkeyed_questions += n - keyed
                row.outcomes[outcome] = row.outcomes.get(outcome, 0) + n
                if helpful is not None:
                    row.rated += n
                    row.helpful += n if helpful else 0
        # distinct keys do not add up across days or wards: one count per level
        distinct = func.count(e.conversation.distinct())
        for d, w, n in session.execute(select(day, ward, distinct).where(*where).group_by(day, ward)):
            cells[(str(d), w)].conversations = n
        for d, n in session.execute(select(day, distinct).where(*where).group_by(day)):
            days[str(d)].conversations = n
        for w, n in session.execute(select(ward, distinct).where(*where).group_by(ward)):
            per_ward[w].conversations = n
        total.conversations = session.execute(select(distinct).where(*where)).scalar_one()
        worst = _worst_entries(session, where)
        topics = _unresolved_topics(session, start, end, wards)
        _handoffs(session, start, end, wards, kb, now, rows_for)
        _bookings(session, since, until, wards, rows_for)

    for row in [*cells.values(), *days.values(), *per_ward.values(), total]:
        row.answered_rate = _rate(row.outcomes["answered"], row.questions)
        row.not_sure_rate = _rate(row.outcomes["not_sure"], row.questions)
        row.handoff_rate = _rate(row.outcomes["handoff"], row.questions)
        row.helpful_rate = _rate(row.helpful, row.rated)
    return Figures(
        **total.model_dump(),
        since=since.isoformat(),
        until=until.isoformat(),
        ward_filter=wards,
        days=[days.get(d) or Row(day=d) for d in _every_day(since, until)],  # a quiet day shows as 0
        wards=[per_ward[w] for w in sorted(per_ward, key=_ward_order)],
        cells=[cells[k] for k in sorted(cells, key=lambda k: (k[0], _ward_order(k[1])))],
        worst_entries=worst,
        unresolved_topics=topics,
    )


def _every_day(since: date, until: date) -> list[str]:
    return [(since + timedelta(days=n)).isoformat() for n in range((until - since).days + 1)]


def _ward_order(ward: str) -> int:
    return KNOWN_WARDS.index(ward) if ward in KNOWN_WARDS else len(KNOWN_WARDS)


def _worst_entries(session, where: list) -> list[WorstEntry]:
    e = AnswerEvent
    rated = func.count(e.helpful)
    helpful = func.sum(case((e.helpful.is_(True), 1), else_=0))
    query = (
        select(e.entry, func.max(e.topic), rated, helpful)
        .where(*where, e.entry.is_not(None), e.helpful.is_not(None))
        .group_by(e.entry)
        .having(rated >= MIN_RATINGS)
    )
    rows = [
        WorstEntry(entry=entry, topic=topic, rated=n, helpful=int(h), helpful_rate=round(int(h) / n, 4))
        for entry, topic, n, h in session.execute(query)
    ]
    rows.sort(key=lambda r: (r.helpful_rate, -r.rated, r.entry))
    return rows[:WORST_SHOWN]


def _unresolved_topics(
    session, start: datetime, end: datetime, wards: list[str] | None
) -> list[UnresolvedTopic]:
    """Regional issues by their questions in the period, most asked first (see the docstring for
    why an issue needs MIN_TOPIC_QUESTIONS and why its label is masked again)."""
    q = UnresolvedQuestion
    where = [q.created_at >= start, q.created_at < end, q.issue_id.is_not(None)]
    if (clause := _ward_clause(q.ward, wards)) is not None:
        where.append(clause)
    n = func.count(q.id)
    query = (
        select(RegionalIssue.id, RegionalIssue.label, RegionalIssue.ward, RegionalIssue.status, n)
        .join(RegionalIssue, RegionalIssue.id == q.issue_id)
        .where(*where)
        .group_by(RegionalIssue.id, RegionalIssue.label, RegionalIssue.ward, RegionalIssue.status)
        .having(n >= MIN_TOPIC_QUESTIONS)
        .order_by(n.desc(), RegionalIssue.id)
        .limit(TOPICS_SHOWN)
    )
    topics = []
    for issue_id, label, ward, status, count in session.execute(query).all():
        first = session.scalars(select(q.text).where(q.issue_id == issue_id).order_by(q.id).limit(1)).first()
        if first is not None and label == first[:20]:  # label_of's fallback: a question's own words
            label = "（話題語なし）"
        topics.append(
            UnresolvedTopic(
                issue=issue_id, label=mask(label, names=False), ward=ward, questions=count, status=status
            )
        )
    return topics


def _handoffs(session, start, end, wards, kb, now, rows_for) -> None:
    """Tickets opened in the period: minutes to the first staff reply, and whether it came by the
    deadline the resident was promised (bot/business_hours.py:staff_promise, the same function
    that worded the promise). A ticket not yet answered counts as late once its deadline passed
    and is left out before that."""
    t = Ticket
    first_reply = func.min(TicketMessage.created_at)
    query = (
        select(t.id, t.created_at, func.coalesce(t.ward, UNKNOWN_WARD), t.department, first_reply)
        .outerjoin(TicketMessage, and_(TicketMessage.ticket_id == t.id, TicketMessage.author == "staff"))
        .where(t.created_at >= start, t.created_at < end)
        .group_by(t.id, t.created_at, t.ward, t.department)
    )
    if (clause := _ward_clause(t.ward, wards)) is not None:
        query = query.where(clause)
    minutes: dict[int, list[float]] = defaultdict(list)
    within: dict[int, list[bool]] = defaultdict(list)
    rows: dict[int, list[Row]] = {}
    for _id, created, ward, department, replied in session.execute(query):
        created = _aware(created)
        targets = rows_for(created.astimezone(JST).date().isoformat(), ward)
        for row in targets:
            row.tickets += 1
        replied = _aware(replied) if replied else None
        promise = staff_promise(schedules_for(kb, ward, department), created) if kb else None
        on_time = None
        if promise is not None and (replied is not None or now > promise.deadline):
            on_time = replied is not None and replied <= promise.deadline
        for row in targets:
            rows[id(row)] = rows.get(id(row), row)
            if replied is not None:
                row.replied_tickets += 1
                minutes[id(row)].append((replied - created).total_seconds() / 60)
            if on_time is not None:
                row.promise_counted += 1
                within[id(row)].append(on_time)
    for key, row in rows.items():
        values = sorted(minutes.get(key, []))
        median = statistics.median(values) if values else None
        p90 = _percentile(values, 90)
        row.first_reply_minutes_median = round(median, 1) if median is not None else None
        row.first_reply_minutes_p90 = round(p90, 1) if p90 is not None else None
        row.answered_within_promise_rate = _rate(sum(within.get(key, [])), len(within.get(key, [])))


def _bookings(session, since: date, until: date, wards: list[str] | None, rows_for) -> None:
    """Bookings of consultations on [since, until] by the slot's day (already a JST date) and ward,
    per status; a cancellation is the resident's when `cancelled_by` says so, else a staff name's."""
    s, b = BookingSlot, Booking
    query = (
        select(s.day, s.ward, b.status, b.cancelled_by, func.count())
        .join(s, s.id == b.slot_id)
        .where(s.day >= since, s.day <= until)
        .group_by(s.day, s.ward, b.status, b.cancelled_by)
    )
    if (clause := _ward_clause(s.ward, wards)) is not None:
        query = query.where(clause)
    for day, ward, status, cancelled_by, n in session.execute(query):
        day = day if isinstance(day, str) else day.isoformat()
        for row in rows_for(day, ward):
            row.bookings += n
            if status == "cancelled":
                row.bookings_cancelled += n
                if cancelled_by in (None, "resident"):
                    row.bookings_cancelled_by_resident += n
                else:
                    row.bookings_cancelled_by_staff += n
            elif status == "arrived":
                row.bookings_arrived += n
            elif status == "no_show":
                row.bookings_no_show += n


def parse_day(text: str) -> date:
    """A YYYY-MM-DD date, or FiguresError saying what was wrong."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FiguresError(f"{text!r} is not a date (YYYY-MM-DD)", "bad_date") from None


CSV_COLUMNS = (
    "day", "ward", "conversations", "unkeyed_questions", "questions", *ANSWER_OUTCOMES,
    "answered_rate", "not_sure_rate", "handoff_rate", "rated", "helpful", "helpful_rate", "tickets",
    "replied_tickets", "first_reply_minutes_median", "first_reply_minutes_p90",
    "answered_within_promise_rate", "bookings", "bookings_cancelled_by_resident",
    "bookings_cancelled_by_staff", "bookings_arrived", "bookings_no_show",
)  # fmt: skip


def csv_rows(figures: Figures) -> list[list[object]]:
    """Per day × ward rows for the CSV export: counts and rates only (empty where a rate is None)."""
    out = []
    for row in figures.cells:
        data = {**row.model_dump(), **row.outcomes}
        out.append(["" if data[c] is None else data[c] for c in CSV_COLUMNS])
    return out
