"""Residents' website channel: the embeddable chat widget and its JSON API in front of Rasa.

The widget is served from here (one origin for the script and the API); pages elsewhere embed it
with one <script> tag, so the API answers cross-origin requests (no cookies are used).
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

import requests
from flask import Blueprint, Response, current_app, jsonify, render_template, request, send_from_directory

from bot.internal_auth import hashed_address
from bot.knowledge import WARDS
from bot.rasa_client import RasaClient
from bot.rate_limit import SenderRateLimiter
from bot.retention import RetentionError, erase_conversation, is_erase_request
from bot.wording import language_of, say

bp = Blueprint("widget", __name__)

STATIC = Path(__file__).parent / "static"
SENDER = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def _rasa() -> RasaClient:
    config = current_app.config
    return RasaClient(config["RASA_URL"], timeout=config["REQUEST_TIMEOUT"], token=config["RASA_TOKEN"])


def _address_metadata() -> dict[str, str]:
    """The client's address (the real one behind trusted proxies: ProxyFix) as a keyed hash, for
    the hand-off cap per address; the address itself never leaves this process."""
    return {"address": hashed_address(current_app.extensions["address_key"], request.remote_addr or "")}


def _sender(value: object) -> str | None:
    return value if isinstance(value, str) and SENDER.match(value) else None


@bp.after_request
def allow_embedding_pages(resp: Response) -> Response:
    if request.path.startswith("/api/"):
        resp.headers["Access-Control-Allow-Origin"] = "*"
        resp.headers["Access-Control-Allow-Headers"] = "Content-Type"
        # GET only where nothing of a resident's travels: the public notices (a sender id in a URL
        # would end up in access logs, docs/privacy.md)
        public_read = request.path == "/api/notices"
        resp.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS" if public_read else "POST, OPTIONS"
    return resp


@bp.get("/healthz")
def healthz():
    return {"ok": True}


# City pages load widget.js by a fixed URL: it may be cached only briefly. The stylesheet it loads
# carries its content hash in its URL, so it can be cached for a year and still never be stale.
SCRIPT_MAX_AGE = 300
VERSIONED_MAX_AGE = 365 * 24 * 3600


@functools.lru_cache(maxsize=4)
def _asset_text(name: str, mtime: float) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=4)
def _css_version_of(mtime: float) -> str:
    return hashlib.sha256(_asset_text("widget.css", mtime).encode()).hexdigest()[:12]


def _css_version() -> str:
    """The stylesheet's content hash, computed once per version of the file (not per request)."""
    return _css_version_of((STATIC / "widget.css").stat().st_mtime)


def _asset(body: str, mimetype: str, max_age: int, immutable: bool = False) -> Response:
    """In memory (a few KB), so Flask-Compress compresses it; with an ETag for conditional GETs."""
    resp = Response(body, mimetype=mimetype)
    resp.cache_control.public = True
    resp.cache_control.max_age = max_age
    resp.cache_control.immutable = immutable
    resp.add_etag()
    return resp.make_conditional(request)


@bp.get("/widget.js")
def widget_js():
    path = STATIC / "widget.js"
    script = _asset_text("widget.js", path.stat().st_mtime).replace("__WIDGET_CSS_VERSION__", _css_version())
    return _asset(script, "text/javascript", SCRIPT_MAX_AGE)


@bp.get("/widget.css")
def widget_css():
    path = STATIC / "widget.css"
    current = request.args.get("v") == _css_version()
    return _asset(_asset_text("widget.css", path.stat().st_mtime), "text/css",
                  VERSIONED_MAX_AGE if current else SCRIPT_MAX_AGE, immutable=current)  # fmt: skip


@bp.get("/favicon.ico")
@bp.get("/favicon.svg")
def favicon():
    return send_from_directory(STATIC, "favicon.svg", mimetype="image/svg+xml", max_age=86400)


@bp.get("/")
def demo_page():
    """A mock ward-office page with the widget embedded the way a city page would do it."""
    return render_template("index.html")


@bp.route("/api/message", methods=["POST", "OPTIONS"])
def message():
    if request.method == "OPTIONS":
        return "", 204
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="send a JSON object {sender, message}"), 400
    sender = _sender(body.get("sender"))
    if sender is None:
        return jsonify(error="sender must be 8–64 letters, digits, '-' or '_'"), 400
    text = body.get("message")
    if not isinstance(text, str):
        return jsonify(error="message must be text"), 400
    if is_erase_request(text):  # before the rate limit: a resident may always leave
        return _erase(sender, language_of(text))
    limiter = current_app.extensions["rate_limiter"]
    if not limiter.allow("widget", sender):
        seconds = limiter.retry_after("widget", sender)
        said = say("utter_rate_limited", language_of(text), seconds=seconds)
        resp = jsonify(messages=[{"text": said}], error="rate_limited")
        return resp, 429, {"Retry-After": str(seconds)}
    try:
        # Rasa's channel refuses over-long text
        messages = _rasa().send(f"web-{sender}", text, "widget", metadata=_address_metadata())
    except requests.RequestException:
        current_app.logger.warning("Rasa server unreachable at %s", current_app.config["RASA_URL"])
        return jsonify(
            messages=[{"text": say("utter_bot_down", language_of(text))}], error="bot_unavailable"
        ), 503
    return jsonify(messages=messages)


def _erase(sender: str, lang: str) -> tuple[Response, int] | Response:
    """The web process answers this itself: the erasure is a database delete, not a dialogue."""
    try:
        counts = erase_conversation(current_app.extensions["settings"], f"web-{sender}")
    except RetentionError as err:
        current_app.logger.error("conversation not erased (%s)", err)  # never the sender id
        return jsonify(messages=[{"text": say("utter_erase_failed", lang)}], error="erase_failed"), 503
    kept = counts["open_tickets_kept"]
    name = "utter_conversation_erased_handoff_kept" if kept else "utter_conversation_erased"
    return jsonify(messages=[{"text": say(name, lang), "custom": {"erased": True}}])


NOTICES_MAX_AGE = 30  # a disaster banner appears, and goes, within half a minute of the console's change
# Per address, not per sender: a page view asks before anyone has written. A ward office's residents
# may share one address, so far more than the message budget; a page asks once per view and open.
NOTICES_RATE = "120/minute;2000/hour"


def _limiter(name: str, rate: str) -> SenderRateLimiter:
    """An endpoint's own limiter, made on first use in the app's storage (memory or Redis)."""
    key = f"{name}_rate_limiter"
    limiter = current_app.extensions.get(key)
    if limiter is None:
        storage = current_app.extensions["settings"].rate_limit_storage
        limiter = current_app.extensions[key] = SenderRateLimiter(rate, storage)
    return limiter


def _notices_limiter() -> SenderRateLimiter:
    return _limiter("notices", NOTICES_RATE)


@bp.get("/api/notices")
def notices():
    """What the widget shows at the top of its panel for the page's ward: the current notices and,
    in disaster mode, the alert for its red banner. Public text only (no author, no counts); a page
    without a ward gets a citywide alert only. Cached briefly by browsers and proxies alike."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.notices import board, store

    ward = request.args.get("ward") or None
    if ward is not None and ward not in WARDS:
        return jsonify(error="ward must be one of the 7 wards", notices=[], disaster=None), 400
    address = _address_metadata()["address"]
    if not _notices_limiter().allow("notices", address):
        return jsonify(error="rate_limited", notices=[], disaster=None), 429, {"Retry-After": "60"}
    database = current_app.extensions["settings"].database_url
    try:
        current = store.current(database, ward) if ward else []
        alert = board.alert_for(database, ward)
    except SQLAlchemyError:
        current_app.logger.warning("notices unavailable: the database did not answer")
        return jsonify(error="unavailable", notices=[], disaster=None), 503
    resp = jsonify(notices=[n.as_public() for n in current], disaster=alert.as_public() if alert else None)
    resp.cache_control.public = True
    resp.cache_control.max_age = NOTICES_MAX_AGE
    return resp


@bp.route("/api/session", methods=["POST", "OPTIONS"])
def session():
    """The embedding page knows the ward (data-ward): remember it for this conversation."""
    if request.method == "OPTIONS":
        return "", 204
    body = request.get_json(silent=True) or {}
    sender = _sender(body.get("sender"))
    ward = body.get("ward")
    if sender is None or ward not in WARDS:
        return jsonify(error="sender and one of the 7 wards are required"), 400
    try:
        _rasa().set_slot(f"web-{sender}", "ward", ward)
    except requests.RequestException:
        return jsonify(error="bot_unavailable"), 503
    return jsonify(ok=True)


@bp.route("/api/messages", methods=["POST", "OPTIONS"])
def staff_messages():
    """Replies staff sent from a hand-off, newer than `after` (Unix time). POST {sender, after}:
    the sender id is the only key to a conversation, so it never travels in a URL (URLs end up in
    access logs, proxies and browser history)."""
    if request.method == "OPTIONS":
        return "", 204
    body = request.get_json(silent=True)
    sender = _sender(body.get("sender")) if isinstance(body, dict) else None
    if sender is None:
        return jsonify(error="send a JSON object {sender, after}"), 400
    try:
        after = float(body.get("after") or 0)
        return jsonify(messages=_rasa().staff_messages(f"web-{sender}", after))
    except ValueError:
        return jsonify(error="after must be a Unix time"), 400
    except requests.RequestException:
        return jsonify(messages=[], error="bot_unavailable"), 503


# bookings (issue 19): the booking card's 「カレンダーに追加（.ics）」. Per sender, like /api/message:
# the booking number alone is not enough, the booking must be this sender's conversation's.
ICS_RATE = "30/minute;200/hour"


def _ics_limiter() -> SenderRateLimiter:
    return _limiter("ics", ICS_RATE)


@bp.route("/api/bookings/ics", methods=["POST", "OPTIONS"])
def booking_ics():
    """POST {sender, number} → the booking as text/calendar; 404 unless it is a live booking of
    that sender's conversation (the same answer for another's booking and for none)."""
    if request.method == "OPTIONS":
        return "", 204
    from sqlalchemy.exc import SQLAlchemyError

    from bot.bookings import reservations
    from bot.bookings.calendar import booking_ics as to_ics
    from bot.payloads import NUMBER_PATTERN

    body = request.get_json(silent=True)
    sender = _sender(body.get("sender")) if isinstance(body, dict) else None
    number = body.get("number") if isinstance(body, dict) else None
    if sender is None or not isinstance(number, str) or not re.fullmatch(NUMBER_PATTERN, number):
        return jsonify(error="send a JSON object {sender, number}"), 400
    if not _ics_limiter().allow("ics", sender):
        return jsonify(error="rate_limited"), 429, {"Retry-After": "60"}
    settings = current_app.extensions["settings"]
    try:
        found = reservations.find(settings.database_url, number)
    except SQLAlchemyError:
        current_app.logger.warning("bookings unavailable: the database did not answer")
        return jsonify(error="unavailable"), 503
    if found is None or found.conversation != f"web-{sender}" or found.status != "booked":
        return jsonify(error="not_found"), 404
    body_ics = to_ics(found, current_app.extensions["console"].knowledge())
    resp = Response(body_ics, mimetype="text/calendar")
    resp.headers["Content-Disposition"] = f'attachment; filename="booking-{found.number}.ics"'
    resp.headers["Access-Control-Expose-Headers"] = "Content-Disposition"
    resp.cache_control.no_store = True
    return resp
