"""Staff console (/staff): escalation queue, regional-issue dashboard, knowledge editing.

Server-rendered pages; Jinja escapes everything a resident typed. Flask-Login sessions checked
against the database on every request (bot/console/accounts.py: logout and disable act at once,
idle and absolute timeouts), Flask-WTF CSRF tokens on every form, login throttling, security
headers on every page, and an audit log of every change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from bot.console.accounts import audit, audit_log, authenticate, end_session, resume_session, start_session
from bot.console.drafts import DraftError
from bot.console.service import ConsoleService
from bot.escalation import TicketError
from bot.knowledge import WARDS
from bot.knowledge.editor import FIELDS, NEW_KINDS, empty_fields, entry_text, list_entries, read_fields
from bot.settings import Settings
from bot.storage.models import ISSUE_STATUSES, TICKET_STATUSES
from web import console_text

bp = Blueprint("staff", __name__, url_prefix="/staff", template_folder="templates")
STATIC = Path(__file__).parent / "static"
login_manager = LoginManager()
login_manager.login_view = "staff.login"
login_manager.login_message = "ログインしてください。"
OLD_TICKET_MINUTES = 60  # tickets waiting longer than this are highlighted


@bp.app_template_filter("jst")
def _jst(value, with_year: bool = False) -> str:
    return console_text.jst(value, with_year)


@bp.app_template_filter("editor_problem")
def _editor_problem(problem: str) -> str:
    return console_text.editor_problem(problem)


@bp.app_template_filter("problem_field")
def _problem_field(problem: str) -> str | None:
    return console_text.field_of(problem)


@bp.app_template_filter("diff_rows")
def _diff_rows(pair: tuple[str, str]) -> list[tuple[str, str]]:
    return console_text.diff_rows(*pair)


@bp.app_template_filter("day_ja")
def _day_ja(value) -> str:
    return console_text.day_ja(value)


@bp.app_template_global("ja")
def _ja(kind: str, code: str | None) -> str:
    """ja('status', 'new') → 未対応: the console shows words, not codes."""
    return console_text.label(console_text.WORDS[kind], code)


class StaffSession(UserMixin):
    """The logged-in user as Flask-Login sees them. Its id — what the cookie carries — is the
    session's random token, not the user's number (Flask-Login's "alternative tokens"): a copied
    cookie is worth nothing once the token's row is gone."""

    def __init__(self, user, token: str) -> None:
        self.user_id, self.name, self.role, self.wards = user.id, user.name, user.role, user.ward_list
        self.token = token

    def get_id(self) -> str:
        return self.token

    def sees_ward(self, ward: str | None) -> bool:
        return self.role != "ward_staff" or (ward in self.wards)


def _now() -> datetime:
    """The console's clock: tests inject one as app.extensions["clock"] to move time."""
    return current_app.extensions.get("clock", lambda: datetime.now(UTC))()


def _idle() -> timedelta:
    return timedelta(minutes=_settings().staff_idle_minutes)


def _lifetime() -> timedelta:
    return timedelta(hours=_settings().staff_session_hours)


@login_manager.user_loader
def load_user(token: str) -> StaffSession | None:
    """Called on every request with the cookie's token: logged out, disabled, idle or too old → None
    (anonymous, so login_required sends the browser to the login page)."""
    user = resume_session(_settings().database_url, token, _idle(), _lifetime(), _now())
    return StaffSession(user, token) if user else None


# Every staff page, error pages included. No inline script or style anywhere in the templates
# (the console has no script at all; styles are /staff/console.css), so the policy needs no nonce.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@bp.after_app_request
def _security_headers(resp: Response) -> Response:
    """A handful of fixed headers on everything under /staff (a 404 there too, which no blueprint
    owns), set here rather than by flask-talisman: talisman works app-wide (the widget's script
    and API are embedded in other sites and must not get frame-ancestors 'none'), and redirects
    to HTTPS itself, which behind nginx's TLS needs proxy configuration done elsewhere."""
    if not (request.path == bp.url_prefix or request.path.startswith(f"{bp.url_prefix}/")):
        return resp
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Frame-Options"] = "DENY"  # browsers without frame-ancestors
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers["Cache-Control"] = resp.headers.get("Cache-Control", "no-store")
    if _settings().secure_cookies:  # served over HTTPS: browsers keep to it for a year
        resp.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return resp


@bp.get("/console.css")
def console_css():
    return send_from_directory(STATIC, "staff.css", mimetype="text/css", max_age=3600)


def role_required(*roles: str):
    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


class LoginForm(FlaskForm):
    name = StringField("ユーザー名", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("パスワード", validators=[DataRequired(), Length(max=256)])


class ReplyForm(FlaskForm):
    text = TextAreaField("住民への返信", validators=[DataRequired(), Length(max=2000)])


class NoteForm(FlaskForm):
    text = TextAreaField("内部メモ（住民には送られません）", validators=[DataRequired(), Length(max=2000)])


class CloseForm(FlaskForm):
    resolution = StringField("対応結果", validators=[Length(max=500)])


class ActionForm(FlaskForm):
    """A button with only a CSRF token (claim, FAQにする)."""


class RejectForm(FlaskForm):
    comment = TextAreaField(
        "差し戻す理由（作者に表示されます）", validators=[DataRequired(), Length(max=2000)]
    )


class StatusForm(FlaskForm):
    status = SelectField("状態", choices=[(s, console_text.ISSUE_STATUS[s]) for s in ISSUE_STATUSES])


def _prefixed(form: type[FlaskForm], prefix: str):
    """A form whose fields' ids and names start with `prefix`: several forms share one page, and
    unprefixed they all had id="csrf_token" (and the reply and the note box both id="text")."""
    return lambda: form(prefix=prefix)


# The ticket page's forms, one per action it posts to (the prefix is the action's name).
_TICKET_FORMS = {
    verb: _prefixed(form, verb)
    for verb, form in {"claim": ActionForm, "reply": ReplyForm, "note": NoteForm, "close": CloseForm}.items()
}
_DONE = {
    "claim": "担当者になりました。",
    "reply": "住民に送信しました。",
    "note": "内部メモを残しました。",
    "close": "完了にしました。会話はボットに戻りました。",
}


def _settings() -> Settings:
    return current_app.extensions["settings"]


def _console() -> ConsoleService:
    return current_app.extensions["console"]


def _audit(action: str, target: str = "", detail: str = "") -> None:
    audit(_settings().database_url, current_user.name, action, target, detail)


def _visible_ticket(ticket_id: int) -> dict:
    try:
        ticket = _console().escalations.get(ticket_id)
    except TicketError:
        abort(404)
    if not current_user.sees_ward(ticket["ward"]):
        abort(404)  # another ward's ticket does not exist for this user
    return ticket


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        keys = (form.name.data, request.remote_addr or "")
        throttle = current_app.extensions["login_throttle"]
        if throttle.blocked(*keys):
            flash("ログインの失敗が続いたため、しばらくお待ちください。")
            return render_template("staff/login.html", form=form), 429
        user = authenticate(_settings().database_url, form.name.data, form.password.data)
        if user is None:
            throttle.failed(*keys)
            flash("ユーザー名またはパスワードが違います。")
            return render_template("staff/login.html", form=form), 401
        throttle.succeeded(form.name.data)
        login_user(StaffSession(user, start_session(_settings().database_url, user.id, _lifetime(), _now())))
        audit(_settings().database_url, user.name, "login")
        return redirect(url_for("staff.tickets"))
    return render_template("staff/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    _audit("logout")
    end_session(_settings().database_url, current_user.token)
    logout_user()
    return redirect(url_for("staff.login"))


@bp.get("/")
@login_required
def home():
    return redirect(url_for("staff.tickets"))


@bp.get("/tickets")
@login_required
def tickets():
    ward = request.args.get("ward") or None
    status = request.args.get("status") or None
    rows = [t for t in _console().escalations.list(ward, status) if current_user.sees_ward(t["ward"])]
    now = datetime.now(UTC)
    for t in rows:
        created = datetime.fromisoformat(t["created_at"])
        created = created if created.tzinfo else created.replace(tzinfo=UTC)
        t["age_minutes"] = int((now - created).total_seconds() // 60)
        t["open"] = t["status"] != "closed"  # a closed ticket waits for no one
        t["old"] = t["open"] and t["age_minutes"] >= OLD_TICKET_MINUTES
    wards = WARDS if current_user.role != "ward_staff" else current_user.wards
    return render_template(
        "staff/tickets.html", tickets=rows, wards=wards, statuses=TICKET_STATUSES, ward=ward, status=status
    )


@bp.get("/tickets/<int:ticket_id>")
@login_required
def ticket(ticket_id: int):
    data = _visible_ticket(ticket_id)
    forms = {verb: form() for verb, form in _TICKET_FORMS.items()}
    return render_template("staff/ticket.html", t=data, **forms)


@bp.post("/tickets/<int:ticket_id>/<verb>")
@login_required
def ticket_action(ticket_id: int, verb: str):
    _visible_ticket(ticket_id)
    if verb not in _TICKET_FORMS:
        abort(404)
    form = _TICKET_FORMS[verb]()
    if not form.validate_on_submit():
        flash("入力を確認してください。")
        return redirect(url_for("staff.ticket", ticket_id=ticket_id))
    esc = _console().escalations
    try:
        if verb == "claim":
            esc.claim(ticket_id, current_user.name)
        elif verb == "reply":
            esc.reply(ticket_id, form.text.data, current_user.name)
        elif verb == "note":
            esc.note(ticket_id, form.text.data, current_user.name)
        else:
            esc.close(ticket_id, form.resolution.data or "")
    except TicketError as err:
        flash(str(err))
    else:
        _audit(f"ticket-{verb}", f"ticket:{ticket_id}")
        flash(_DONE[verb])
    return redirect(url_for("staff.ticket", ticket_id=ticket_id))


def _trend_svg(counts: dict[str, list[int]], now: datetime | None = None) -> dict:
    """Small multiples for a server-side SVG chart (no chart library, no CDN): one panel per ward on
    one scale, so equal counts never hide each other; weeks labelled by their first day (JST)."""
    width, height, pad, bottom = 250, 90, 16, 18
    weeks = max((len(v) for v in counts.values()), default=8)
    top = max([1, *(max(v) for v in counts.values() if v)])
    start = (now or datetime.now(UTC)) - timedelta(weeks=weeks)
    step = (width - 2 * pad) / max(1, weeks - 1)
    scale = (height - pad - bottom) / top
    labels = []
    for i in range(weeks):
        day = console_text.jst(start + timedelta(weeks=i)).split(" ")[0]  # 「11月2日」
        labels.append({"x": round(pad + i * step), "text": day.replace("月", "/").rstrip("日")})
    panels = []
    for ward, values in counts.items():
        dots = [
            {**labels[i], "y": round(height - bottom - v * scale), "count": v, "week": labels[i]["text"]}
            for i, v in enumerate(values)
        ]
        points = " ".join(f"{d['x']},{d['y']}" for d in dots)
        panels.append({"ward": ward, "points": points, "dots": dots, "total": sum(values)})
    return {"width": width, "height": height, "pad": pad, "bottom": bottom, "top": top,
            "panels": panels, "labels": labels, "weeks": weeks}  # fmt: skip


@bp.get("/issues")
@login_required
def issues():
    wards = WARDS if current_user.role != "ward_staff" else current_user.wards
    ward = request.args.get("ward") or None
    regional = _console().issues
    rows = [i for i in regional.list(ward) if i["ward"] in wards or current_user.role != "ward_staff"]
    per_ward = {w: sum(i["count"] for i in rows if i["ward"] == w) for w in wards}
    chart = _trend_svg(regional.weekly_counts(list(wards)))
    return render_template(
        "staff/issues.html", issues=rows[:50], per_ward=per_ward, chart=chart, ward=ward, wards=wards
    )


@bp.route("/issues/<int:issue_id>", methods=["GET", "POST"])
@login_required
def issue(issue_id: int):
    regional = _console().issues
    try:
        data = regional.get(issue_id)
    except KeyError:
        abort(404)
    if not current_user.sees_ward(data["ward"]):
        abort(404)
    form = StatusForm(status=data["status"], prefix="status")
    if form.validate_on_submit():
        regional.set_status(issue_id, form.status.data)
        _audit("issue-status", f"issue:{issue_id}", form.status.data)
        flash(f"状態を「{console_text.ISSUE_STATUS[form.status.data]}」にしました。")
        return redirect(url_for("staff.issue", issue_id=issue_id))
    return render_template("staff/issue.html", i=data, form=form, action=ActionForm(prefix="draft"))


@bp.post("/issues/<int:issue_id>/draft")
@role_required("editor", "admin")
def issue_draft(issue_id: int):
    """「FAQにする」: a new FAQ draft in the review loop, prefilled with the issue's questions."""
    if not ActionForm(prefix="draft").validate_on_submit():
        abort(400)
    try:
        draft = _console().editors.from_issue(issue_id, current_user.name)
    except KeyError:
        abort(404)
    _audit("issue-draft", f"issue:{issue_id}", f"draft:{draft['id']}")
    flash("FAQの下書きを作成しました。回答と出典を記入して、審査に出してください。")
    return redirect(url_for("staff.draft", draft_id=draft["id"]))


def _analytics_request():
    """(figures, filter values, error) for the period and ward in the query string. Ward staff get
    their own wards only: another ward in the URL is a 404, as another ward's ticket is."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.analytics_figures import FiguresError, compute, parse_day
    from bot.business_hours import JST
    from bot.knowledge import KnowledgeError

    today = _now().astimezone(JST).date()
    since_text = request.args.get("since") or (today - timedelta(days=30)).isoformat()
    until_text = request.args.get("until") or today.isoformat()
    ward = request.args.get("ward") or None
    wards = _visible_wards()
    if ward and ward not in wards:
        abort(404)
    chosen = [ward] if ward else (None if current_user.role != "ward_staff" else list(wards))
    form = {"since": since_text, "until": until_text, "ward": ward or ""}
    try:
        kb = _console().knowledge()
    except KnowledgeError:
        kb = None  # the promise share needs the opening hours; the rest does not
    try:
        since, until = parse_day(since_text), parse_day(until_text)
        figures = compute(_settings().database_url, since, until, chosen, kb, now=_now())
    except FiguresError as err:
        return None, form, console_text.FIGURES_PROBLEM.get(err.code, str(err)), 400
    except SQLAlchemyError:
        return None, form, "データベースに接続できません。しばらくしてからもう一度お試しください。", 503
    return figures, form, None, 200


def _visible_wards() -> tuple[str, ...]:
    from bot.regional_issues import UNKNOWN_WARD

    return (*WARDS, UNKNOWN_WARD) if current_user.role != "ward_staff" else tuple(current_user.wards)


@bp.get("/analytics")
@login_required
def analytics():
    from web import analytics_charts as charts

    figures, form, problem, status = _analytics_request()
    chart = None
    if figures is not None:
        chart = {"days": charts.questions_per_day(figures), "helpful": charts.helpful_per_day(figures),
                 "wards": charts.per_ward(figures), "legend": charts.legend()}  # fmt: skip
    page = render_template(
        "staff/analytics.html", f=figures, form=form, problem=problem, chart=chart, wards=_visible_wards(),
        outcome_labels=charts.OUTCOME_LABELS, all_wards=current_user.role != "ward_staff",
    )  # fmt: skip
    return page, status


@bp.get("/analytics.csv")
@login_required
def analytics_csv():
    import csv
    import io

    from bot.analytics_figures import CSV_COLUMNS, csv_rows

    figures, _form, problem, status = _analytics_request()
    if figures is None:
        return Response(f"{problem}\n", status=status, mimetype="text/plain")
    out = io.StringIO()
    out.write("\ufeff")  # Excel opens UTF-8 as such only with the BOM
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_rows(figures))
    wards = ",".join(figures.ward_filter) if figures.ward_filter else "all"
    _audit(
        "analytics-export", f"wards:{wards}", f"{figures.since}..{figures.until}, {len(figures.cells)} rows"
    )
    name = f"concierge-figures-{figures.since}-{figures.until}.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.get("/knowledge")
@role_required("editor", "admin")
def knowledge():
    query = request.args.get("q", "")
    entries = list_entries(_console().knowledge(), query)
    return render_template("staff/knowledge.html", entries=entries, q=query, new_kinds=NEW_KINDS)


def _form_fields(kind: str, new: bool) -> dict[str, str]:
    names = [*(("id",) if new else ()), *FIELDS[kind]]
    return {name: request.form.get(name, "") for name in names}


def _entry_page(kind: str, entry_id: str | None, fields: dict[str, str], result=None, status: int = 200):
    return (
        render_template(
            "staff/entry.html",
            kind=kind,
            entry_id=entry_id,
            fields=fields,
            lists=FIELDS[kind],
            form=ActionForm(),
            result=result,
            draft=None,
        ),
        status,
    )


def _save_draft(kind: str, entry_id: str | None, draft_id: int | None = None):
    """Preview, or save as a draft (never the live file) and show the draft."""
    editors = _console().editors
    fields = _form_fields(kind, entry_id is None)
    if request.form.get("do") != "save":
        return _entry_page(kind, entry_id, fields, editors.check(kind, entry_id, fields))
    try:
        draft, result = editors.save(kind, entry_id, fields, current_user.name, draft_id=draft_id)
    except DraftError as err:
        flash(str(err))
        return _entry_page(kind, entry_id, fields, status=409)
    if result.problems:
        flash("下書きを保存しました。直すところがあります（審査に出す前に直してください）。")
    else:
        flash("下書きを保存しました。内容を確かめて「審査に出す」を押してください。")
    return redirect(url_for("staff.draft", draft_id=draft["id"]))


@bp.route("/knowledge/<kind>/<entry_id>", methods=["GET", "POST"])
@role_required("editor", "admin")
def knowledge_entry(kind: str, entry_id: str):
    if kind not in FIELDS:
        abort(404)
    try:
        fields = read_fields(_settings().knowledge_dir, kind, entry_id)
    except KeyError:
        abort(404)
    mine = _console().editors.open_draft_of(kind, entry_id, current_user.name)
    if request.method == "POST":
        if not ActionForm().validate_on_submit():
            abort(400)
        if mine and mine["status"] == "submitted":
            flash("この項目のあなたの下書きは審査中です。")
            return redirect(url_for("staff.draft", draft_id=mine["id"]))
        return _save_draft(kind, entry_id, mine["id"] if mine else None)
    if mine:
        flash(f"この項目にはあなたの下書き #{mine['id']} があります。続きはそちらで編集してください。")
    return _entry_page(kind, entry_id, fields)


@bp.route("/knowledge/new/<kind>", methods=["GET", "POST"])
@role_required("editor", "admin")
def knowledge_new(kind: str):
    if kind not in NEW_KINDS:
        abort(404)
    if request.method == "POST":
        if not ActionForm().validate_on_submit():
            abort(400)
        return _save_draft(kind, None)
    return _entry_page(kind, None, empty_fields(kind))


def _draft_or_404(draft_id: int) -> dict:
    try:
        return _console().editors.get(draft_id)
    except KeyError:
        abort(404)


@bp.get("/drafts/<int:draft_id>")
@role_required("editor", "admin")
def draft(draft_id: int, problems: list[str] | None = None, status: int = 200):
    editors = _console().editors
    data = _draft_or_404(draft_id)
    result = None
    if data["status"] != "published":
        result = editors.check(data["kind"], data["entry_id"], data["fields"])
        if problems:
            result.problems = problems
    published = data["status"] == "published"
    live = entry_text(_settings().knowledge_dir, data["kind"], data["entry_id"]) if data["entry_id"] else ""
    page = render_template(
        "staff/entry.html",
        kind=data["kind"],
        entry_id=data["entry_id"],
        fields=data["fields"],
        lists=FIELDS[data["kind"]],
        form=ActionForm(),
        reject=RejectForm(prefix="reject"),
        result=result,
        draft=data,
        mine=data["author"] == current_user.name,
        stale=not published and editors.stale(draft_id),
        diff=(data["base"], result.after if result and result.after else live),
    )
    return page, status


_DRAFT_DONE = {
    "submit": "審査に出しました。ほかの編集者か管理者が承認すると公開されます。",
    "approve": "承認して公開しました。索引を作り直しています。1分ほどでボットの回答に反映されます。",
    "reject": "差し戻しました。理由は作者に表示されます。",
    "refresh": "最新の内容に合わせました。違いを確かめてから、もう一度審査に出してください。",
}


@bp.post("/drafts/<int:draft_id>/<verb>")
@role_required("editor", "admin")
def draft_action(draft_id: int, verb: str):
    editors = _console().editors
    data = _draft_or_404(draft_id)
    if verb == "reject":
        form = RejectForm(prefix="reject")
    elif verb in ("save", "submit", "approve", "refresh"):
        form = ActionForm()
    else:
        abort(404)
    if not form.validate_on_submit():
        if "csrf_token" in form.errors or not request.form:
            abort(400)
        flash("差し戻す理由を書いてください。")
        return redirect(url_for("staff.draft", draft_id=draft_id))
    try:
        if verb == "save":
            return _save_draft(data["kind"], data["entry_id"], draft_id)
        if verb == "submit":
            editors.submit(draft_id, current_user.name)
        elif verb == "approve":
            editors.approve(draft_id, current_user.name)
        elif verb == "reject":
            editors.reject(draft_id, current_user.name, form.comment.data)
        else:
            editors.refresh(draft_id, current_user.name)
    except DraftError as err:
        flash(str(err))
        return draft(draft_id, problems=err.problems, status=409)
    flash(_DRAFT_DONE[verb])
    return redirect(url_for("staff.draft", draft_id=draft_id))


@bp.get("/review")
@role_required("editor", "admin")
def review():
    return render_template("staff/review.html", q=_console().editors.queue(current_user.name))


@bp.get("/knowledge/history")
@role_required("editor", "admin")
def history():
    return render_template("staff/history.html", rows=_console().editors.history(), entry=None)


@bp.get("/knowledge/<kind>/<entry_id>/history")
@role_required("editor", "admin")
def entry_history(kind: str, entry_id: str):
    if kind not in FIELDS:
        abort(404)
    rows = _console().editors.history(kind, entry_id)
    return render_template("staff/history.html", rows=rows, entry=(kind, entry_id))


@bp.get("/history/<int:revision_id>")
@role_required("editor", "admin")
def revision(revision_id: int, problems: list[str] | None = None, status: int = 200):
    try:
        data = _console().editors.revision(revision_id)
    except KeyError:
        abort(404)
    page = render_template("staff/revision.html", r=data, form=ActionForm(), problems=problems or [])
    return page, status


@bp.post("/history/<int:revision_id>/rollback")
@role_required("editor", "admin")
def rollback(revision_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        restored = _console().editors.rollback(revision_id, current_user.name)
    except KeyError:
        abort(404)
    except DraftError as err:
        flash(str(err))
        return revision(revision_id, problems=err.problems, status=409)
    flash("元に戻しました。索引を作り直しています。1分ほどでボットの回答に反映されます。")
    return redirect(url_for("staff.revision", revision_id=restored["id"]))


@bp.get("/audit")
@role_required("admin")
def audit_page():
    return render_template("staff/audit.html", rows=audit_log(_settings().database_url))
