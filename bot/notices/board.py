"""What staff post for residents to read at once: disaster mode, how busy a counter is, and the
temporary counters and holiday openings of the ward offices. The console writes it; the bot and
the widget read it. Nothing here holds a resident's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.payloads import WARDS
from bot.storage.db import session_scope
from bot.storage.models import (
    CONGESTION_LEVELS,
    OPENING_KINDS,
    CounterStatus,
    DisasterAlert,
    SpecialOpening,
    utcnow,
)

JST = ZoneInfo("Asia/Tokyo")
LEVEL_LABELS = {"quiet": "空いています", "some": "やや混雑", "busy": "混雑"}
KIND_LABELS = {"temporary": "臨時窓口", "holiday": "休日開庁"}
WEEKDAY_JA = "月火水木金土日"
STALE_AFTER = timedelta(hours=1)  # an older congestion status is said to be old
MAX_WAIT_MINUTES = 600


class BoardError(ValueError):
    """What staff entered cannot be posted (the text says what to fix, in Japanese)."""


def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- disaster mode ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    id: int
    wards: tuple[str, ...]  # empty: citywide
    message: str
    started_at: datetime
    started_by: str

    def covers(self, ward: str | None) -> bool:
        return not self.wards or ward in self.wards

    def as_public(self) -> dict:
        return {"wards": list(self.wards), "message": self.message, "since": self.started_at.isoformat()}


def start_disaster(
    database_url: str, message: str, wards: list[str], by: str, notice_id: int | None = None
) -> Alert:
    """Turn disaster mode on for `wards` (citywide when empty)."""
    if not message.strip():
        raise BoardError("災害時の表示文を入力してください。")
    if any(w not in WARDS for w in wards):
        raise BoardError("区の名前が正しくありません。")
    with session_scope(database_url) as session:
        alert = DisasterAlert(
            wards=",".join(w for w in WARDS if w in wards),
            message=message.strip()[:1000],
            notice_id=notice_id,
            started_by=by,
        )
        session.add(alert)
        session.flush()
        return _alert(alert)


def end_disaster(database_url: str, by: str, alert_id: int | None = None) -> int:
    """Turn disaster mode off (one alert, or all); the number ended."""
    with session_scope(database_url) as session:
        query = select(DisasterAlert).where(DisasterAlert.ended_at.is_(None))
        if alert_id is not None:
            query = query.where(DisasterAlert.id == alert_id)
        alerts = list(session.execute(query).scalars())
        for alert in alerts:
            alert.ended_at, alert.ended_by = utcnow(), by
        return len(alerts)


def active_alerts(database_url: str) -> list[Alert]:
    with session_scope(database_url) as session:
        rows = session.execute(
            select(DisasterAlert).where(DisasterAlert.ended_at.is_(None)).order_by(DisasterAlert.id.desc())
        ).scalars()
        return [_alert(a) for a in rows]


def alert_for(database_url: str, ward: str | None) -> Alert | None:
    """The newest active alert that covers `ward` (a citywide one covers every ward and none)."""
    return next((a for a in active_alerts(database_url) if a.covers(ward)), None)


def _alert(row: DisasterAlert) -> Alert:
    return Alert(row.id, tuple(row.ward_list), row.message, _aware(row.started_at), row.started_by)


# --- counter congestion ----------------------------------------------------------------------


@dataclass(frozen=True)
class Congestion:
    ward: str
    counter_id: str
    level: str | None
    wait_minutes: int | None
    set_at: datetime
    set_by: str

    def stale(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) - self.set_at > STALE_AFTER

    @property
    def label(self) -> str:
        """「やや混雑（待ち時間 約20分）」, 「待ち時間 約20分」 or 「空いています」."""
        parts = [LEVEL_LABELS[self.level]] if self.level else []
        if self.wait_minutes is not None:
            wait = f"待ち時間 約{self.wait_minutes}分"
            parts.append(f"（{wait}）" if parts else wait)
        return "".join(parts)


def set_congestion(
    database_url: str,
    ward: str,
    counter_id: str,
    by: str,
    level: str | None = None,
    wait_minutes: int | None = None,
) -> Congestion:
    if ward not in WARDS:
        raise BoardError("区の名前が正しくありません。")
    if level is not None and level not in CONGESTION_LEVELS:
        raise BoardError("混雑の程度は「空いています」「やや混雑」「混雑」から選んでください。")
    if wait_minutes is not None and not 0 <= wait_minutes <= MAX_WAIT_MINUTES:
        raise BoardError(f"待ち時間は0〜{MAX_WAIT_MINUTES}分で入力してください。")
    if level is None and wait_minutes is None:
        raise BoardError("混雑の程度か待ち時間を入力してください。")
    with session_scope(database_url) as session:
        row = session.get(CounterStatus, (ward, counter_id)) or CounterStatus(
            ward=ward, counter_id=counter_id
        )
        row.level, row.wait_minutes, row.set_by, row.set_at = level, wait_minutes, by, utcnow()
        session.add(row)
        session.flush()
        return _congestion(row)


def congestion(database_url: str, ward: str, counter_id: str) -> Congestion | None:
    with session_scope(database_url) as session:
        row = session.get(CounterStatus, (ward, counter_id))
        return _congestion(row) if row else None


def congestion_of_ward(database_url: str, ward: str | None = None) -> list[Congestion]:
    with session_scope(database_url) as session:
        query = select(CounterStatus).order_by(CounterStatus.ward, CounterStatus.counter_id)
        if ward:
            query = query.where(CounterStatus.ward == ward)
        return [_congestion(r) for r in session.execute(query).scalars()]


def _congestion(row: CounterStatus) -> Congestion:
    return Congestion(row.ward, row.counter_id, row.level, row.wait_minutes, _aware(row.set_at), row.set_by)


# --- temporary counters and holiday openings -------------------------------------------------


@dataclass(frozen=True)
class Opening:
    id: int
    ward: str
    day: date
    opens: str
    closes: str
    kind: str
    counters: tuple[str, ...]
    note: str

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    def as_public(self) -> dict:
        return {
            "ward": self.ward,
            "date": self.day.isoformat(),
            "opens": self.opens,
            "closes": self.closes,
            "kind": self.kind,
            "kind_label": self.kind_label,
            "counters": list(self.counters),
            "note": self.note,
        }


def _hhmm(value: str) -> str:
    try:
        return datetime.strptime(value.strip(), "%H:%M").strftime("%H:%M")  # 9:00 and 09:00
    except ValueError as err:
        raise BoardError("時刻は 9:00 のように入力してください。") from err


def add_opening(
    database_url: str,
    ward: str,
    day: date,
    opens: str,
    closes: str,
    kind: str,
    by: str,
    counters: list[str] | None = None,
    note: str = "",
    today: date | None = None,
) -> Opening:
    if ward not in WARDS:
        raise BoardError("区の名前が正しくありません。")
    if kind not in OPENING_KINDS:
        raise BoardError("種類は「臨時窓口」か「休日開庁」を選んでください。")
    if day < (today or datetime.now(JST).date()):
        raise BoardError("過去の日付は公開できません。")
    opens, closes = _hhmm(opens), _hhmm(closes)
    if opens >= closes:
        raise BoardError("終了時刻は開始時刻より後にしてください。")
    if kind == "holiday" and not office_closed_on(day):
        raise BoardError(
            f"{day.month}月{day.day}日（{WEEKDAY_JA[day.weekday()]}）は区役所が開いている平日です。"
            "休日開庁は土曜・日曜・祝日・年末年始（12月29日〜1月3日）の日にしてください"
            "（平日の臨時の窓口なら「臨時窓口」を選んでください）。"
        )
    with session_scope(database_url) as session:
        row = SpecialOpening(
            ward=ward,
            day=day,
            opens=opens,
            closes=closes,
            kind=kind,
            counters=",".join(counters or []),
            note=note.strip()[:500],
            created_by=by,
        )
        session.add(row)
        session.flush()
        return _opening(row)


def office_closed_on(day: date) -> bool:
    """Whether the ward offices are normally closed that day: a weekend, a public holiday (the
    `holidays` package, as bot/business_hours.py) or the year-end break 12-29 … 01-03 (the city's
    休日を定める条例; knowledge/hours.yml carries the same span)."""
    import holidays

    if day.weekday() >= 5 or day in holidays.country_holidays("JP", years=day.year):
        return True
    return (day.month, day.day) >= (12, 29) or (day.month, day.day) <= (1, 3)


def remove_opening(database_url: str, opening_id: int) -> bool:
    with session_scope(database_url) as session:
        row = session.get(SpecialOpening, opening_id)
        if row is None:
            return False
        session.delete(row)
        return True


def upcoming_openings(database_url: str, ward: str | None = None, today: date | None = None) -> list[Opening]:
    """Published openings from today on, soonest first (every ward's when `ward` is None)."""
    today = today or datetime.now(JST).date()
    with session_scope(database_url) as session:
        query = (
            select(SpecialOpening)
            .where(SpecialOpening.day >= today)
            .order_by(SpecialOpening.day, SpecialOpening.opens)
        )
        if ward:
            query = query.where(SpecialOpening.ward == ward)
        return [_opening(r) for r in session.execute(query).scalars()]


def _opening(row: SpecialOpening) -> Opening:
    return Opening(
        row.id, row.ward, row.day, row.opens, row.closes, row.kind, tuple(row.counter_list), row.note
    )
