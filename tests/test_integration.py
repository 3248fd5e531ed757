"""The live path: Rasa server + action server on free ports, asked through the REST webhook and the CLI."""

import json
import subprocess

import pytest
import requests

from bot.rasa_client import RasaClient
from bot.settings import ROOT


def test_rest_answer_names_counter_with_source(stack):
    reply = RasaClient(stack.rasa_url, token=stack.rasa_token).ask("it-1", "住民票の写しがほしい")
    assert "区民課" in reply.text and "出典:" in reply.text
    assert reply.intent == "ask_procedure"
    assert reply.custom["counter"] == "区民課"


@pytest.mark.parametrize(
    ("question", "counter"),
    [("住民票の写しがほしい", "区民課"), ("国保に入りたい", "保険年金課"), ("転入届を出したい", "区民課")],
)
def test_an_answer_for_a_known_ward_is_read_at_a_glance(stack, question, counter):
    """Where to go in the first line, at most 200 characters; hours, what to bring and the sources
    are in the card rather than repeated in the text."""
    client, sender = RasaClient(stack.rasa_url, token=stack.rasa_token), f"glance-{counter}-{question[:2]}"
    client.ask(sender, "幸区に住んでいます")
    reply = client.ask(sender, question)
    first_line = reply.text.splitlines()[0]
    assert "幸区役所" in first_line and counter in first_line and len(reply.text) <= 200, reply.text
    card = reply.custom["card"]
    assert card["hours"] and card["sources"] and card["address"]
    assert not any(h in reply.text for h in card["hours"])  # said once, in the card
    assert reply.text.splitlines()[-1].startswith("出典: ")


@pytest.mark.parametrize("message", ["", "あ" * 10_000, "😀😀😀", "<script>alert(1)</script>", "   "])
def test_bad_input_gets_a_polite_reply_and_the_server_stays_up(stack, message):
    resp = requests.post(
        f"{stack.rasa_url}/webhooks/rest/webhook",
        params={"token": stack.rasa_token}, json={"sender": "it-bad", "message": message}, timeout=60
    )
    assert resp.status_code == 200
    texts = [m.get("text", "") for m in resp.json()]
    assert any(texts) and not any("Traceback" in t for t in texts)
    assert RasaClient(stack.rasa_url, token=stack.rasa_token).is_ready()


def test_cli_batch_prints_one_json_line_per_question(stack, tmp_path):
    batch = tmp_path / "q.jsonl"
    batch.write_text(
        "\n".join(
            json.dumps(x, ensure_ascii=False)
            for x in [
                {"id": "a", "q": "国保 加入", "ward": "中原区"},
                {"id": "b", "q": "職員と話したい", "ward": "幸区"},
                {"id": "c", "q": "おすすめのラーメン屋は？"},
            ]
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "concierge"), "ask", "--batch", str(batch), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=stack.settings.replace(rasa_url=stack.rasa_url).child_env(),
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    keys = {"id", "text", "intent", "confidence", "office", "counter", "sources", "handoff", "unresolved"}
    assert all(set(r) == keys for r in rows)
    assert rows[0]["office"] == "中原区役所" and rows[0]["counter"] == "保険年金課" and rows[0]["sources"]
    assert rows[1]["handoff"] is True
    assert rows[2]["intent"] == "out_of_scope" or rows[2]["unresolved"] is True


def test_quick_replies_after_an_answer_lead_to_the_next_fact(stack):
    client, sender = RasaClient(stack.rasa_url, token=stack.rasa_token), "next-steps-1"
    client.ask(sender, "多摩区に住んでいます")
    said = client.send(sender, "住民票の写しがほしい")
    chips = {b["title"]: b["payload"] for m in said for b in m.get("buttons") or []}
    assert {"受付時間", "持ち物", "別の区", "担当者と話したい"} <= set(chips)
    bring = client.ask(sender, chips["持ち物"])
    assert "お持ちいただくもの: 本人確認書類" in bring.text and "多摩区役所" in bring.text.splitlines()[0]
    hours = client.ask(sender, chips["受付時間"])
    assert "受付時間: 平日" in hours.text
    which = client.send(sender, chips["別の区"])
    assert "どの区" in which[0]["text"] and len(which[0]["buttons"]) == 7
    saiwai = next(b["payload"] for b in which[0]["buttons"] if b["title"] == "幸区")
    again = client.ask(sender, saiwai)  # the same question, answered for the ward picked
    assert "住民票の写し" in again.text and "幸区役所の区民課" in again.text.splitlines()[0]
