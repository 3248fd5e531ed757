"""Booking through the real stack's REST channel (issue 19, done-when 1): twenty conversations send
the full /book payload for the last seat at once — one gets a booking number, the others the next
free slots, the database holds one booking; and a whole conversation: a question, 予約したい, the
quick replies, the booking, 予約を確認, キャンセル."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from datetime import timedelta

import pytest
import requests
from booking_support import full_payload, publish

from bot.bookings import reservations, slots
from bot.line_messaging import to_line_messages
from bot.payloads import OFFERS
from bot.rasa_client import RasaClient
from bot.settings import ROOT


def booking_of(messages: list[dict]) -> dict | None:
    for m in messages:
        custom = m.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get("booking"), dict):
            return custom["booking"]
    return None


def test_twenty_conversations_at_once_for_the_last_seat_get_one_booking(stack, stack_settings):
    last_seat = publish(stack_settings, "14:00", capacity=1)
    next_free = publish(stack_settings, "14:30", capacity=3, after=last_seat.day - timedelta(days=1))
    payload = full_payload(last_seat)
    run = uuid.uuid4().hex[:8]
    barrier = threading.Barrier(20)
    replies: dict[int, list[dict]] = {}

    def one(i: int) -> None:
        barrier.wait()
        resp = requests.post(
            f"{stack.rasa_url}/webhooks/rest/webhook",
            params={"token": stack.rasa_token},
            json={"sender": f"book-{run}-{i}", "message": payload},
            timeout=120,
        )
        resp.raise_for_status()
        replies[i] = resp.json()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(replies) == 20
    numbers = [b["number"] for r in replies.values() if (b := booking_of(r))]
    assert len(numbers) == 1, replies
    others = [r for r in replies.values() if booking_of(r) is None]
    assert len(others) == 19
    for reply in others:
        text = "\n".join(m.get("text", "") for m in reply)
        assert "埋まりました" in text and "予約番号" not in text and "理解できませんでした" not in text
        offered = [b["payload"] for m in reply for b in m.get("buttons") or []]
        assert full_payload(next_free) in offered and payload not in offered
    booked = [r for r in reservations.all_bookings(stack_settings.database_url) if r.slot.id == last_seat.id]
    assert [r.number for r in booked] == numbers and booked[0].conversation.startswith(f"book-{run}-")
    assert slots.get(stack_settings.database_url, last_seat.id).booked == 1
    # and `concierge bookings --json` (one JSON object a line) lists that one booking for the slot
    listed = subprocess.run(
        [sys.executable, "-m", "bot.cli", "bookings", "--ward", "中原区", "--json"],
        env=stack_settings.child_env(PYTHONPATH=str(ROOT)), cwd=ROOT, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    rows = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
    for_the_slot = [r for r in rows if r["slot"] == last_seat.id]
    assert [(r["number"], r["status"]) for r in for_the_slot] == [(numbers[0], "booked")]
    assert "conversation" not in for_the_slot[0] and f"book-{run}" not in listed.stdout


def test_a_whole_booking_conversation_through_the_rest_channel(stack, stack_settings):
    slot = publish(stack_settings, "11:00", capacity=2)
    client = RasaClient(stack.rasa_url, token=stack.rasa_token, timeout=120)
    sender = f"book-conv-{uuid.uuid4().hex[:8]}"
    client.ask(sender, "中原区で住民票の写しがほしい")
    propose = client.ask(sender, "相談の予約をしたい")
    assert propose.intent == "request_booking"
    assert "区民課" in propose.text and "住民票の写しの交付" in propose.text, propose.text
    this = propose.messages[-1]["buttons"][0]["payload"]
    assert this == '/book{"ward": "中原区", "counter": "kumin"}'
    days = client.send(sender, this)
    day_buttons = {b["title"]: b["payload"] for m in days for b in m.get("buttons") or []}
    label = f"{slot.day.month}月{slot.day.day}日"
    day_payload = next(p for t, p in day_buttons.items() if t.startswith(label))
    times = client.send(sender, day_payload)
    time_buttons = {b["title"]: b["payload"] for m in times for b in m.get("buttons") or []}
    assert time_buttons["11:00〜11:30"] == full_payload(slot)
    done = client.send(sender, time_buttons["11:00〜11:30"])
    booking = booking_of(done)
    assert (
        booking
        and booking["number"] in done[0]["text"]
        and "お名前や電話番号は必要ありません" in done[0]["text"]
    )
    assert "本人確認書類" in done[0]["text"]  # what to bring, from the entry answered
    line = to_line_messages(done)  # what a LINE resident gets: the number in the text, a quick reply
    assert booking["number"] in line[0].text and line[-1].quick_reply.items[0].action.data == "/my_bookings"
    stored = reservations.find(stack_settings.database_url, booking["number"])
    assert stored.topic == "住民票の写しの交付" and stored.conversation == sender
    # the form is over: a question is answered again
    assert "区民課" in client.ask(sender, "印鑑登録はどこでできますか").text
    mine = client.ask(sender, "予約を確認したい")
    assert mine.intent == "my_bookings" and booking["number"] in mine.text
    cancel = next(b["payload"] for m in mine.messages for b in m.get("buttons") or [] if "取消" in b["title"])
    gone = client.send(sender, cancel)
    assert "キャンセルしました" in gone[0]["text"]
    assert reservations.find(stack_settings.database_url, booking["number"]).status == "cancelled"
    # another conversation cannot cancel by number, and learns nothing
    stranger = client.send(f"{sender}-x", OFFERS["cancel_booking"].payload(number=booking["number"]))
    assert "見つかりませんでした" in stranger[0]["text"] and booking["number"] not in stranger[0]["text"]


def test_typed_answers_and_a_confirmation_through_the_rest_channel(stack, stack_settings):
    slot = publish(stack_settings, "13:00", capacity=1)
    client = RasaClient(stack.rasa_url, token=stack.rasa_token, timeout=120)
    sender = f"book-typed-{uuid.uuid4().hex[:8]}"
    ward = client.ask(sender, "区民課に予約したい")
    assert ward.intent == "request_booking" and "どの区" in ward.text, ward.text
    days = client.ask(sender, "中原区です")
    assert "ご希望の日" in days.text, days.text
    times = client.ask(sender, f"{slot.day.month}月{slot.day.day}日")
    assert "13:00〜13:30" in [b["title"] for m in times.messages for b in m.get("buttons") or []]
    confirm = client.ask(sender, "13時でお願いします")
    assert (
        "予約しますか" in confirm.text
        and reservations.of_conversation(stack_settings.database_url, sender) == []
    )
    done = client.ask(sender, "はい")
    booking = booking_of(done.messages)
    assert booking and reservations.find(stack_settings.database_url, booking["number"]).slot.id == slot.id


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("相談の予約をしたいのですが", "request_booking"),
        ("窓口の予約ってできますか？", "request_booking"),
        ("保険年金課に予約したい", "request_booking"),
        ("私の予約を確認したい", "my_bookings"),
        ("予約した内容を見せて", "my_bookings"),
        ("予約を取り消したいです", "cancel_booking"),
        ("予約キャンセルお願いします", "cancel_booking"),
        ("予約の日にちを変更したい", "change_booking"),
        ("住民票の写しがほしい", "ask_procedure"),  # not every message is about bookings
        ("市民館の部屋を予約したい", "ask_procedure"),
    ],
)
def test_residents_booking_words_are_understood(stack, text, intent):
    client = RasaClient(stack.rasa_url, token=stack.rasa_token, timeout=120)
    assert client.ask(f"book-nlu-{uuid.uuid4().hex[:8]}", text).intent == intent
