"""The console's pages for reaching residents first (issue 18): notices (compose, preview as LINE
and the widget show them, send now or at a time, cancel), disaster mode (admins only), how busy
each ward-office counter is, and temporary counters and holiday openings.

Registered on the console's blueprint (web/staff.py imports this module), so the same login,
session checks, CSRF tokens and security headers apply. Ward staff act for their own wards only:
a ward they do not hold in a form is refused (403; the pages never offer it). Every change is in
the audit log. The sending itself is the task worker's (bot/tasks.py `send_notice`).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from bot.knowledge import WARDS, KnowledgeError
from bot.notices import board, store
from bot.notices.topics import TOPICS, topic_label
from bot.storage.models import CONGESTION_LEVELS, OPENING_KINDS
from web import console_text
from web.staff import ActionForm, _audit, _console, _now, _settings, bp, role_required

log = logging.getLogger(__name__)
WARD_OFFICE = "区役所"  # the `at` of the counters inside a ward office (knowledge/counters.yml)


def _my_wards() -> list[str]:
    """The wards this user acts for: their own for ward staff, all seven for editors and admins."""
    return list(WARDS) if current_user.role != "ward_staff" else [w for w in WARDS if w in current_user.wards]


def _check_wards(wards: list[str]) -> None:
    """A ward outside the user's in a posted form was never offered: refused, not corrected."""
    if any(w not in _my_wards() for w in wards if w in WARDS):
        abort(403)


def _csrf_ok() -> None:
    if not ActionForm().validate_on_submit():
        abort(400)


def _task_queue():
    """The app's task queue (web/__init__.py keeps one; tests put a recorder there)."""
    queue = current_app.extensions.get("task_queue")
    if queue is None:
        from bot.tasks import TaskQueue

        queue = current_app.extensions["task_queue"] = TaskQueue(_settings())
    return queue


def _send_now(notice_id: int) -> bool:
    """Ask the worker to send the notice now. A queue that cannot be reached is not the end: the
    notice is stored as due, and the worker's periodic sweep (store.due) sends it."""
    try:
        _task_queue().send_notice(notice_id)
    except Exception:  # Redis down, a queue file locked …; logged with the notice's number only
        log.exception("notice %s not enqueued; the periodic sweep will send it", notice_id)
        return False
    return True


@bp.context_processor
def _disaster_mode() -> dict:
    """Every console page says when disaster mode is on: staff answering residents should know."""
    if not current_user.is_authenticated:
        return {"disaster_alerts": []}
    return {"disaster_alerts": board.active_alerts(_settings().database_url)}


# --- notices ---------------------------------------------------------------------------------


def _notice_fields() -> dict:
    form = request.form
    return {
        "title": form.get("title", ""),
        "body": form.get("body", ""),
        "link": form.get("link", "").strip(),
        "wards": [w for w in WARDS if w in form.getlist("wards")],
        "topic": form.get("topic", ""),
        "when": "at" if form.get("when") == "at" else "now",
        "send_at": form.get("send_at", ""),
    }


def _send_time(fields: dict) -> datetime | None:
    """When to send, in UTC (None: now). The form's datetime-local is Japan time."""
    if fields["when"] != "at":
        return None
    try:
        local = datetime.strptime(fields["send_at"], "%Y-%m-%dT%H:%M")
    except ValueError as err:
        raise store.NoticeError(console_text.NOTICE_PROBLEM["bad_time"]) from err
    moment = local.replace(tzinfo=console_text.JST).astimezone(UTC)
    if moment <= _now():
        raise store.NoticeError(console_text.NOTICE_PROBLEM["past_time"])
    return moment


def _checked(fields: dict) -> datetime | None:
    _check_wards(fields["wards"])
    store.validate(fields["title"], fields["body"], fields["link"] or None, fields["wards"], fields["topic"])
    return _send_time(fields)


DUPLICATE_WINDOW = timedelta(minutes=2)


def _same_notice_just_made(fields: dict, send_at: datetime | None) -> store.NoticeView | None:
    """The same notice by the same person moments ago (for the same time, when scheduled): a second
    click on 送信する, or the browser's back and resend. Residents must not get it twice."""
    wanted = (current_user.name, fields["title"].strip(), fields["body"].strip(), tuple(fields["wards"]),
              fields["topic"], fields["link"] or None)  # fmt: skip
    for notice in store.listing(_settings().database_url, fields["wards"], limit=20):
        made = (notice.author, notice.title, notice.body, notice.wards, notice.topic, notice.link)
        if made != wanted or notice.status == "cancelled":
            continue
        when = notice.send_at if notice.send_at.tzinfo else notice.send_at.replace(tzinfo=UTC)
        if when == send_at or (send_at is None and abs(_now() - when) < DUPLICATE_WINDOW):
            return notice
    return None


def _empty_notice() -> dict:
    mine = _my_wards()
    return {"title": "", "body": "", "link": "", "wards": mine if len(mine) == 1 else [], "topic": "",
            "when": "now", "send_at": ""}  # fmt: skip


def _may_cancel(notice: store.NoticeView) -> bool:
    return notice.status == "scheduled" and all(w in _my_wards() for w in notice.wards)


def _notices_page(fields: dict, problem: str | None = None, status: int = 200):
    wards = None if current_user.role != "ward_staff" else _my_wards()
    rows = store.listing(_settings().database_url, wards, limit=50)
    page = render_template(
        "staff/notices.html", rows=rows, fields=fields, problem=problem, wards=_my_wards(), topics=TOPICS,
        may_cancel=_may_cancel, form=ActionForm(),
    )  # fmt: skip
    return page, status


@bp.get("/notices")
@login_required
def notices():
    return _notices_page(_empty_notice())


@bp.post("/notices")
@login_required
def notice_compose():
    """One form, three steps by its button: 確認 (preview) → 送信/予約 (confirm), or 修正 (edit)."""
    _csrf_ok()
    fields = _notice_fields()
    step = request.form.get("do")
    if step == "edit":
        return _notices_page(fields)
    try:
        send_at = _checked(fields)
    except store.NoticeError as err:
        return _notices_page(fields, str(err), 400)
    if step != "confirm":
        parts = (fields["title"], fields["body"], fields["link"], fields["wards"], fields["topic"])
        text = store.notice_text(*parts)
        widget = {"title": fields["title"].strip(), "body": fields["body"].strip(), "link": fields["link"],
                  "topic_label": topic_label(fields["topic"]),
                  "day": console_text.jst(send_at or _now())}  # fmt: skip
        return render_template(
            "staff/notice_preview.html", fields=fields, line=text, widget=widget, send_at=send_at,
            form=ActionForm(),
        )  # fmt: skip
    if twin := _same_notice_just_made(fields, send_at):
        flash(f"同じお知らせ #{twin.id} をもう受け付けています。"
              "二重に届かないよう、今回の操作では送りませんでした。")  # fmt: skip
        return redirect(url_for("staff.notices"))
    notice = store.create(
        _settings().database_url, title=fields["title"], body=fields["body"], wards=fields["wards"],
        topic=fields["topic"], author=current_user.name, link=fields["link"] or None, send_at=send_at,
    )  # fmt: skip
    when = "now" if send_at is None else send_at.isoformat(timespec="minutes")
    _audit("notice-create", f"notice:{notice.id}", f"wards={','.join(notice.wards)} topic={notice.topic} "
           f"send={when}")  # fmt: skip
    if send_at is not None:
        flash(f"お知らせ #{notice.id} を {console_text.jst(send_at, True)} に送る予約をしました。")
    elif _send_now(notice.id):
        flash(f"お知らせ #{notice.id} を送信しています。送信の結果はこの一覧に出ます。")
    else:
        flash(f"お知らせ #{notice.id} を保存しました。送信の受付が混み合っているため、数分以内に送られます。")
    return redirect(url_for("staff.notices"))


@bp.post("/notices/<int:notice_id>/cancel")
@login_required
def notice_cancel(notice_id: int):
    _csrf_ok()
    notice = store.get(_settings().database_url, notice_id)
    if notice is None or not any(w in _my_wards() for w in notice.wards):
        abort(404)  # another ward's notice does not exist for this user
    if not all(w in _my_wards() for w in notice.wards):
        abort(403)
    if store.cancel(_settings().database_url, notice_id):
        _audit("notice-cancel", f"notice:{notice_id}")
        flash(f"お知らせ #{notice_id} の送信を取り消しました。")
    else:
        flash(f"お知らせ #{notice_id} はもう送信が始まっているため、取り消せません。")
    return redirect(url_for("staff.notices"))


# --- disaster mode ---------------------------------------------------------------------------


def _disaster_page(fields: dict, problem: str | None = None, status: int = 200):
    alerts = board.active_alerts(_settings().database_url)
    page = render_template(
        "staff/disaster.html", alerts=alerts, fields=fields, problem=problem, wards=WARDS, form=ActionForm()
    )
    return page, status


@bp.get("/disaster")
@role_required("admin")
def disaster():
    return _disaster_page({"scope": "city", "wards": [], "message": "", "notice": False, "title": ""})


@bp.post("/disaster")
@role_required("admin")
def disaster_start():
    _csrf_ok()
    form = request.form
    fields = {
        "scope": "wards" if form.get("scope") == "wards" else "city",
        "wards": [w for w in WARDS if w in form.getlist("wards")],
        "message": form.get("message", ""),
        "notice": form.get("notice") == "yes",
        "title": form.get("title", ""),
    }
    wards = fields["wards"] if fields["scope"] == "wards" else []
    db = _settings().database_url
    try:
        if fields["scope"] == "wards" and not wards:
            raise board.BoardError(console_text.DISASTER_PROBLEM["no_ward"])
        if not fields["message"].strip():
            raise board.BoardError("災害時の表示文を入力してください。")
        notice = None
        if fields["notice"]:
            title = fields["title"].strip() or console_text.DISASTER_NOTICE_TITLE
            notice = store.create(db, title=title, body=fields["message"], wards=wards or list(WARDS),
                                  topic="bousai", author=current_user.name)  # fmt: skip
        alert = board.start_disaster(
            db, fields["message"], wards, current_user.name, notice.id if notice else None
        )
    except (board.BoardError, store.NoticeError) as err:
        return _disaster_page(fields, str(err), 400)
    scope = "・".join(alert.wards) or "市内全域"
    _audit("disaster-start", f"alert:{alert.id}", f"wards={','.join(alert.wards) or 'all'}"
           + (f" notice:{notice.id}" if notice else ""))  # fmt: skip
    if notice:
        _audit(
            "notice-create", f"notice:{notice.id}", f"wards={','.join(notice.wards)} topic=bousai send=now"
        )
        _send_now(notice.id)
    flash(f"災害モードを開始しました（{scope}）。ウィジェットに赤い帯で表示されます。"
          + (f"防災のお知らせ #{notice.id} を送信しています。" if notice else ""))  # fmt: skip
    return redirect(url_for("staff.disaster"))


@bp.post("/disaster/end")
@role_required("admin")
def disaster_end():
    _csrf_ok()
    raw = request.form.get("alert", "")
    alert_id = int(raw) if raw.isdigit() else None
    ended = board.end_disaster(_settings().database_url, current_user.name, alert_id)
    if ended:
        _audit("disaster-end", f"alert:{alert_id}" if alert_id else "alert:all", f"{ended} ended")
        flash("災害モードを終了しました。ウィジェットの赤い帯は次に開いたときに消えます。")
    else:
        flash("終了する災害モードはありません。")
    return redirect(url_for("staff.disaster"))


# --- counter congestion ----------------------------------------------------------------------


def _office_counters():
    """The counters inside a ward office, from knowledge as it is on disk (no encoder loaded)."""
    kb = _console().knowledge()
    return [c for c in kb.counters.values() if c.at == WARD_OFFICE]


def _chosen_ward(value: str | None) -> str:
    mine = _my_wards()
    if value and value not in mine:
        abort(404)
    return value or mine[0]


def _congestion_page(ward: str, typed: dict | None = None, status: int = 200):
    problem = None
    try:
        counters = _office_counters()
    except KnowledgeError:
        counters, problem = [], "窓口の一覧（ナレッジ）を読み込めません。管理者に連絡してください。"
    now = _now()
    current = {c.counter_id: c for c in board.congestion_of_ward(_settings().database_url, ward)}
    rows = [{"counter": c, "status": current.get(c.id), "stale": c.id in current and current[c.id].stale(now)}
            for c in counters]  # fmt: skip
    page = render_template(
        "staff/congestion.html", ward=ward, wards=_my_wards(), rows=rows, typed=typed or {}, problem=problem,
        levels=[(lv, board.LEVEL_LABELS[lv]) for lv in CONGESTION_LEVELS], form=ActionForm(),
    )  # fmt: skip
    return page, status


@bp.get("/congestion")
@login_required
def congestion():
    return _congestion_page(_chosen_ward(request.args.get("ward")))


@bp.post("/congestion/<ward>/<counter_id>")
@login_required
def congestion_set(ward: str, counter_id: str):
    _csrf_ok()
    if ward not in WARDS:
        abort(404)
    _check_wards([ward])
    counters = {c.id: c for c in _office_counters()}
    if counter_id not in counters:
        abort(404)
    level = request.form.get("level") or None
    minutes_text = request.form.get("minutes", "").strip()
    typed = {"counter": counter_id, "level": level or "", "minutes": minutes_text}
    try:
        if minutes_text and not minutes_text.isdecimal():
            raise board.BoardError(console_text.CONGESTION_PROBLEM["bad_minutes"])
        minutes = int(minutes_text) if minutes_text else None
        status = board.set_congestion(
            _settings().database_url, ward, counter_id, current_user.name, level, minutes
        )
    except board.BoardError as err:
        typed["problem"] = str(err)
        return _congestion_page(ward, typed, 400)
    _audit("congestion-set", f"{ward}:{counter_id}", status.label)
    flash(f"{ward} {counters[counter_id].name}: 「{status.label}」にしました。")
    return redirect(url_for("staff.congestion", ward=ward))


# --- temporary counters and holiday openings -------------------------------------------------


def _today() -> date:
    return _now().astimezone(console_text.JST).date()


def _openings_page(fields: dict, problem: str | None = None, status: int = 200):
    try:
        counters = _office_counters()
    except KnowledgeError:
        counters = []
    names = {c.id: c.name for c in counters}
    mine = _my_wards()
    rows = [o for o in board.upcoming_openings(_settings().database_url, None, _today()) if o.ward in mine]
    page = render_template(
        "staff/openings.html", rows=rows, fields=fields, problem=problem, wards=mine, counters=counters,
        names=names, kinds=[(k, board.KIND_LABELS[k]) for k in OPENING_KINDS], form=ActionForm(),
    )  # fmt: skip
    return page, status


@bp.get("/openings")
@login_required
def openings():
    mine = _my_wards()
    fields = {"ward": mine[0] if len(mine) == 1 else "", "day": "", "opens": "", "closes": "",
              "kind": "", "counters": [], "note": ""}  # fmt: skip
    return _openings_page(fields)


@bp.post("/openings")
@login_required
def opening_add():
    _csrf_ok()
    form = request.form
    fields = {key: form.get(key, "") for key in ("ward", "day", "opens", "closes", "kind", "note")}
    fields["counters"] = form.getlist("counters")
    _check_wards([fields["ward"]])
    try:
        known = {c.id for c in _office_counters()}
        if any(c not in known for c in fields["counters"]):
            raise board.BoardError(console_text.OPENING_PROBLEM["unknown_counter"])
        try:
            day = date.fromisoformat(fields["day"])
        except ValueError as err:
            raise board.BoardError(console_text.OPENING_PROBLEM["bad_date"]) from err
        opening = board.add_opening(
            _settings().database_url, fields["ward"], day, fields["opens"], fields["closes"], fields["kind"],
            current_user.name, counters=fields["counters"], note=fields["note"], today=_today(),
        )  # fmt: skip
    except board.BoardError as err:
        return _openings_page(fields, str(err), 400)
    _audit("opening-add", f"opening:{opening.id}",
           f"{opening.ward} {opening.day} {opening.opens}-{opening.closes} {opening.kind}")  # fmt: skip
    flash(f"{opening.ward}の{opening.kind_label}（{console_text.day_ja(opening.day)} "
          f"{opening.opens}〜{opening.closes}）を公開しました。")  # fmt: skip
    return redirect(url_for("staff.openings"))


@bp.post("/openings/<int:opening_id>/remove")
@login_required
def opening_remove(opening_id: int):
    _csrf_ok()
    found = [
        o for o in board.upcoming_openings(_settings().database_url, None, _today()) if o.id == opening_id
    ]
    if not found or found[0].ward not in _my_wards():
        abort(404)
    board.remove_opening(_settings().database_url, opening_id)
    _audit("opening-remove", f"opening:{opening_id}", f"{found[0].ward} {found[0].day}")
    flash(f"{found[0].ward}の{found[0].kind_label}（{console_text.day_ja(found[0].day)}）を取り下げました。")
    return redirect(url_for("staff.openings"))
