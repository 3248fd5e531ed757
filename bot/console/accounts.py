"""Staff accounts, their console sessions and the audit log (login throttling: bot/rate_limit.py).

Sessions live in the database (`staff_sessions`), not only in the signed cookie: the cookie
carries a random token whose hash must still be a row, so logout, `concierge staff disable` and a
new password end every copy of a session at once, and idle/absolute timeouts are checked here.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from werkzeug.security import check_password_hash, generate_password_hash

from bot.knowledge import WARDS
from bot.storage.db import session_scope
from bot.storage.models import STAFF_ROLES, AuditEntry, ConsoleSession, StaffUser

MIN_PASSWORD = 12
# Write last_seen at most this often: a page view is a read, not a write, most of the time; the
# idle timeout is then exact to within this much.
TOUCH_EVERY = timedelta(seconds=60)


class StaffError(ValueError):
    pass


def utcnow() -> datetime:
    return datetime.now(UTC)


@functools.cache
def _common_passwords() -> frozenset[str]:
    """zxcvbn's list of the 30,000 most used passwords (from leaked password sets), maintained
    with the zxcvbn package rather than copied into this repository."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problem(password: str, name: str = "") -> str | None:
    """Why this password may not be used, or None. A common password with digits or signs added
    at either end ("password1234!") is still a common password; a keyboard walk is not in the
    list but zxcvbn's score catches it."""
    if len(password) < MIN_PASSWORD:
        return f"the password needs at least {MIN_PASSWORD} characters"
    lowered = password.lower()
    core = lowered.strip("0123456789!?@#$%^&*()_+-=.,:;~ ")
    common = _common_passwords()
    if lowered in common or core in common:
        return "this password is one of the most common passwords; choose another"
    if len(name) >= 3 and name.lower() in lowered:
        return "the password may not contain the user name"
    from zxcvbn import zxcvbn

    # zxcvbn's estimate (dictionary words, keyboard walks, repeats, sequences, dates): 3 is "safely
    # unguessable" at 10^8 guesses, which a leaked hash list allows offline
    if zxcvbn(password[:72], user_inputs=[name])["score"] < 3:
        return "this password is too easy to guess (keyboard pattern, sequence or common words)"
    return None


def _check_password(password: str, name: str) -> None:
    problem = password_problem(password, name)
    if problem:
        raise StaffError(problem)


@functools.cache
def _dummy_hash() -> str:
    """A hash of nothing anyone knows, checked for unknown users so that a wrong name takes as
    long as a wrong password (no user enumeration by timing)."""
    return generate_password_hash(secrets.token_hex(16))


def add_user(db_url: str, name: str, role: str, password: str, wards: list[str] | None = None) -> int:
    if role not in STAFF_ROLES:
        raise StaffError(f"role must be one of {STAFF_ROLES}")
    wards = wards or []
    if role == "ward_staff" and not wards:
        raise StaffError("ward_staff needs at least one --ward")
    unknown = [w for w in wards if w not in WARDS]
    if unknown:
        raise StaffError(f"unknown ward(s): {unknown}")
    _check_password(password, name)
    with session_scope(db_url) as session:
        if session.scalars(select(StaffUser).where(StaffUser.name == name)).first():
            raise StaffError(f"user {name!r} exists")
        user = StaffUser(
            name=name, role=role, wards=",".join(wards), password_hash=generate_password_hash(password)
        )
        session.add(user)
        session.flush()
        session.add(
            AuditEntry(user="cli", action="add-user", target=name, detail=f"role={role} wards={wards}")
        )
        return user.id


def unknown_name(name: str) -> str:
    """How an unknown login name appears in the audit log: people type their password into the name
    field, so never the name itself; a short hash lets an admin see the same name tried again (32
    bits: many strings share one, so it does not give a typed password back)."""
    return "unknown#" + hashlib.blake2b(name.encode(), digest_size=4).hexdigest()


def authenticate(db_url: str, name: str, password: str) -> StaffUser | None:
    """The user if the name and password match and the account is enabled. A failure is audited
    (never the password); an unknown name costs the same hash check as a known one."""
    with session_scope(db_url) as session:
        user = session.scalars(select(StaffUser).where(StaffUser.name == name)).first()
        if user is None:
            check_password_hash(_dummy_hash(), password)
            session.add(AuditEntry(user=unknown_name(name), action="login-failed", detail="unknown user"))
            return None
        if not check_password_hash(user.password_hash, password):
            session.add(AuditEntry(user=user.name, action="login-failed", detail="wrong password"))
            return None
        if user.disabled:
            session.add(AuditEntry(user=user.name, action="login-failed", detail="account disabled"))
            return None
        return user


def get_user(db_url: str, user_id: int) -> StaffUser | None:
    with session_scope(db_url) as session:
        return session.get(StaffUser, user_id)


def _user_named(session, name: str) -> StaffUser:
    user = session.scalars(select(StaffUser).where(StaffUser.name == name)).first()
    if user is None:
        raise StaffError(f"no user {name!r}")
    return user


def set_disabled(db_url: str, name: str, disabled: bool, by: str = "cli") -> None:
    """Disable (ending the user's live sessions now) or enable an account."""
    with session_scope(db_url) as session:
        user = _user_named(session, name)
        user.disabled = disabled
        if disabled:
            session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))
        session.add(AuditEntry(user=by, action="disable-user" if disabled else "enable-user", target=name))


def set_password(db_url: str, name: str, password: str, by: str = "cli") -> None:
    """A new password, checked like a first one; every session of the user ends (a password is
    changed because the old one may be known)."""
    _check_password(password, name)
    with session_scope(db_url) as session:
        user = _user_named(session, name)
        user.password_hash = generate_password_hash(password)
        session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))
        session.add(AuditEntry(user=by, action="set-password", target=name))


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    """SQLite gives back naive datetimes for timezone-aware columns; they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def start_session(db_url: str, user_id: int, absolute: timedelta, now: datetime | None = None) -> str:
    """A new session for the user; returns the token for the cookie. Sessions past their absolute
    lifetime are swept here, so the table does not grow with browsers that never came back."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    with session_scope(db_url) as session:
        session.execute(delete(ConsoleSession).where(ConsoleSession.created_at < now - absolute))
        row = ConsoleSession(token_hash=_hash_token(token), user_id=user_id, created_at=now, last_seen=now)
        session.add(row)
    return token


def resume_session(
    db_url: str, token: str, idle: timedelta, absolute: timedelta, now: datetime | None = None
) -> StaffUser | None:
    """The session's user if the session exists, is neither idle too long nor too old, and the
    user is enabled; an expired session is deleted."""
    now = now or utcnow()
    with session_scope(db_url) as session:
        row = session.get(ConsoleSession, _hash_token(token))
        if row is None:
            return None
        user = session.get(StaffUser, row.user_id)
        expired = now - _aware(row.last_seen) > idle or now - _aware(row.created_at) > absolute
        if user is None or user.disabled or expired:
            session.delete(row)
            return None
        if now - _aware(row.last_seen) >= TOUCH_EVERY:
            row.last_seen = now
        return user


def end_session(db_url: str, token: str) -> None:
    with session_scope(db_url) as session:
        session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == _hash_token(token)))


def audit(db_url: str, user: str, action: str, target: str = "", detail: str = "") -> None:
    with session_scope(db_url) as session:
        session.add(AuditEntry(user=user, action=action, target=target, detail=detail[:2000]))


def audit_log(db_url: str, limit: int = 200) -> list[dict]:
    with session_scope(db_url) as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
        return [
            {
                "at": r.at.isoformat(),
                "user": r.user,
                "action": r.action,
                "target": r.target,
                "detail": r.detail,
            }
            for r in rows
        ]
