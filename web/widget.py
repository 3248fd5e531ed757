"""Residents' website channel: a JSON endpoint in front of Rasa's REST channel, and a test page."""

from __future__ import annotations

import requests
from flask import Blueprint, current_app, jsonify, render_template, request

bp = Blueprint("widget", __name__)

BOT_DOWN = "ただいま応答できません。しばらくしてからもう一度お試しください。"


@bp.get("/healthz")
def healthz():
    return {"ok": True}


@bp.get("/")
def index():
    return render_template("index.html")


@bp.post("/api/message")
def message():
    body = request.get_json(silent=True) or {}
    sender, text = str(body.get("sender") or "").strip(), str(body.get("message") or "")
    if not sender or len(sender) > 64:
        return jsonify(error="sender is required (at most 64 characters)"), 400
    if len(text) > current_app.config["MAX_MESSAGE_CHARS"]:
        text = text[: current_app.config["MAX_MESSAGE_CHARS"]]
    try:
        resp = requests.post(
            f"{current_app.config['RASA_URL']}/webhooks/rest/webhook",
            json={"sender": f"web-{sender}", "message": text},
            timeout=current_app.config["REQUEST_TIMEOUT"],
        )
        resp.raise_for_status()
        return jsonify(messages=resp.json())
    except requests.RequestException:
        current_app.logger.warning("Rasa server unreachable at %s", current_app.config["RASA_URL"])
        return jsonify(messages=[{"text": BOT_DOWN}], error="bot_unavailable"), 503
