"""Only the payloads the bot offers reach the dialogue; anything else typed with "/" is text."""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
import yaml
from test_rasa_components import _run_in_rasa_env

from bot import payloads
from bot.payloads import Entity, KnowledgeIds, Offer, boolean, knowledge_id, neutralise, screen
from bot.settings import ROOT


def test_the_wards_are_the_knowledges_seven():
    from bot.knowledge import WARDS

    assert payloads.WARDS == WARDS


def _offered_by_the_bot() -> list[str]:
    """Every payload starting with "/" that the bot sends or makes a client send."""
    from bot.answering.composer import HANDOFF_BUTTON, OTHER_WARD_PAYLOAD, ward_buttons

    found = [b["payload"] for b in ward_buttons()] + [HANDOFF_BUTTON["payload"], OTHER_WARD_PAYLOAD]
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    for variations in domain["responses"].values():
        found += [b["payload"] for v in variations for b in v.get("buttons", [])]
    widget = (ROOT / "web" / "static" / "widget.js").read_text(encoding="utf-8")
    template = re.search(r"payload: `(/inform_ward[^`]*)`", widget).group(1)
    found += [template.replace("${w}", w) for w in payloads.WARDS]
    found += re.findall(r'payload: "(/[^"]*)"', widget)
    line = (ROOT / "bot" / "line_events.py").read_text(encoding="utf-8")  # the LINE worker
    found += re.findall(r'_ask\(user_id, "(/[^"]*)"\)', line)
    return [p for p in found if p.startswith("/")]


def test_every_payload_the_bot_offers_is_accepted_as_it_is():
    offered = _offered_by_the_bot()
    assert len(offered) >= 7 + 3  # ward buttons, hand-off, 「別の区」, the widget's starters, LINE's /greet
    assert "/greet" in offered and '/inform_ward{"ward": "麻生区"}' in offered
    for payload in offered:
        assert screen(payload) == payload, payload


@pytest.mark.parametrize(
    "text",
    [
        "/restart",
        "/session_start",
        '/inform_ward{"ward": "<b>x</b>"}',
        '/inform_ward{"ward": "横浜区"}',
        '/inform_ward{"ward": ["中原区"]}',
        '/inform_ward{"ward": "中原区", "place": "x"}',  # an entity the payload does not carry
        '/inform_ward{"ward": "中原区"',  # not JSON
        '/inform_ward["中原区"]',
        "/inform_ward@0.99",  # Rasa's confidence syntax
        '/inform_ward{"ward": "中原区"} and more',
        "/request_human{}x",
        "/Request_Human",
        "/ request_human",
        "/",
        "/" + "a" * 400,
        '/inform_ward{"ward": "' + "中" * 400 + '"}',
        "住民票がほしい",
    ],
)
def test_anything_else_is_refused(text):
    assert screen(text) is None


def test_a_refused_payload_keeps_its_words_without_rasas_prefix():
    assert neutralise("/restart") == "／restart"
    assert neutralise('  /inform_ward{"ward": "<b>x</b>"}') == '／inform_ward{"ward": "<b>x</b>"}'
    assert neutralise("\u3000/restart") == "／restart"  # Rasa strips full-width spaces too
    assert neutralise("住民票 a/b") == "住民票 a/b"


def test_rasa_parses_the_raw_payload_but_not_the_neutralised_text():
    """The real parser Rasa's RegexMessageHandler uses, in Rasa's environment."""
    raw = '/inform_ward{"ward": "<b>x</b>"}'
    out = _run_in_rasa_env(f"""
        import json
        from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
        from rasa.shared.nlu.training_data.message import Message
        from bot import payloads
        result = {{}}
        for text in ({raw!r}, payloads.neutralise({raw!r}), "/restart", payloads.neutralise("/restart")):
            parsed = YAMLStoryReader.unpack_regex_message(Message(data={{"text": text}}))
            result[text] = [(parsed.get("intent") or {{}}).get("name"), parsed.get("entities") or []]
        print(json.dumps(result, ensure_ascii=False))
    """)
    result = json.loads(out)
    assert result[raw][0] == "inform_ward" and result[raw][1][0]["value"] == "<b>x</b>"  # what we stop
    assert result["/restart"][0] == "restart"
    assert result[neutralise(raw)] == [None, []] and result["／restart"] == [None, []]


def test_a_coming_payload_is_one_declaration(monkeypatch, small_knowledge):
    counters = yaml.safe_load((small_knowledge / "counters.yml").read_text(encoding="utf-8"))
    counter = counters[0]["id"]
    feedback = Offer("feedback", {"helpful": Entity(boolean, required=True)})
    monkeypatch.setitem(payloads.OFFERS, "feedback", feedback)
    book = Offer("book", {"counter": Entity(knowledge_id("counters.yml"), required=True)})
    monkeypatch.setitem(payloads.OFFERS, "book", book)
    ids = KnowledgeIds(small_knowledge)
    assert screen('/feedback{"helpful": true}', ids) == '/feedback{"helpful": true}'
    assert screen('/feedback{"helpful": "yes"}', ids) is None and screen("/feedback", ids) is None
    assert screen(book.payload(counter=counter), ids) == book.payload(counter=counter)
    assert screen('/book{"counter": "no-such-counter"}', ids) is None
    assert screen(book.payload(counter=counter)) is None  # no knowledge folder: no id exists


def test_knowledge_ids_follow_an_edit_of_the_file(small_knowledge):
    ids = KnowledgeIds(small_knowledge)
    assert "new-counter" not in ids.of("counters.yml")
    path = small_knowledge / "counters.yml"
    added = "\n- id: new-counter\n  name: 新しい窓口\n"
    path.write_text(path.read_text(encoding="utf-8") + added, encoding="utf-8")
    assert "new-counter" in ids.of("counters.yml")
    assert ids.of("no-such-file.yml") == frozenset()


def test_screening_a_long_message_is_quick():
    text = "/inform_ward{" + '"ward": "' * 20000
    started = time.perf_counter()
    for _ in range(100):
        assert screen(text) is None and neutralise(text).startswith("／")
    assert time.perf_counter() - started < 0.5


# --- through the running Rasa server's REST channel (the widget and LINE both send through it) ---


def _say(stack, sender: str, text: str) -> list[dict]:
    from bot.rasa_client import RasaClient

    return RasaClient(stack.rasa_url, token=stack.rasa_token).send(sender, text)


def _tracker(stack, sender: str) -> dict:
    from bot.rasa_client import RasaClient

    return RasaClient(stack.rasa_url, token=stack.rasa_token).tracker(sender)


def _apologies() -> set[str]:
    from bot.wording import say

    return {say("utter_apology", lang) for lang in ("ja", "en")}


def test_a_typed_restart_gets_a_normal_reply(stack):
    sender = f"payload-{uuid.uuid4().hex[:6]}"
    replies = _say(stack, sender, "/restart")
    texts = [m.get("text", "") for m in replies]
    assert texts and not set(texts) & _apologies()
    user = [e for e in _tracker(stack, sender)["events"] if e["event"] == "user"]
    assert user[-1]["text"] == "／restart" and user[-1]["parse_data"]["intent"]["name"] != "restart"


def test_a_forged_ward_payload_never_reaches_the_ward_action(stack):
    sender = f"payload-{uuid.uuid4().hex[:6]}"
    replies = _say(stack, sender, '/inform_ward{"ward": "<b>x</b>"}')
    texts = [m.get("text", "") for m in replies]
    assert texts and not set(texts) & _apologies()
    tracker = _tracker(stack, sender)
    user = [e for e in tracker["events"] if e["event"] == "user"][-1]
    assert user["text"].startswith("／")
    assert all(e["value"] != "<b>x</b>" for e in user["parse_data"]["entities"])
    assert tracker["slots"].get("ward") != "<b>x</b>"
    assert "<b>x</b>" not in json.dumps(replies, ensure_ascii=False)


def test_an_offered_ward_payload_still_sets_the_ward(stack):
    sender = f"payload-{uuid.uuid4().hex[:6]}"
    replies = _say(stack, sender, '/inform_ward{"ward": "高津区"}')
    assert replies and not {m.get("text", "") for m in replies} & _apologies()
    assert _tracker(stack, sender)["slots"]["ward"] == "高津区"
