"""Staff accounts and the audit log of the staff console (login throttling: bot/rate_limit.py)."""

from __future__ import annotations

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from bot.knowledge import WARDS
from bot.storage.db import session_scope
from bot.storage.models import STAFF_ROLES, AuditEntry, StaffUser

MIN_PASSWORD = 10


class StaffError(ValueError):
    pass


def add_user(db_url: str, name: str, role: str, password: str, wards: list[str] | None = None) -> int:
    if role not in STAFF_ROLES:
        raise StaffError(f"role must be one of {STAFF_ROLES}")
    wards = wards or []
    if role == "ward_staff" and not wards:
        raise StaffError("ward_staff needs at least one --ward")
    unknown = [w for w in wards if w not in WARDS]
    if unknown:
        raise StaffError(f"unknown ward(s): {unknown}")
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"the password needs at least {MIN_PASSWORD} characters")
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


def authenticate(db_url: str, name: str, password: str) -> StaffUser | None:
    with session_scope(db_url) as session:
        user = session.scalars(select(StaffUser).where(StaffUser.name == name)).first()
        if user and check_password_hash(user.password_hash, password):
            return user
        return None


def get_user(db_url: str, user_id: int) -> StaffUser | None:
    with session_scope(db_url) as session:
        return session.get(StaffUser, user_id)


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
