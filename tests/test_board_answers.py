"""Answers from the staff's board (issue 18) on SQLite with a frozen clock: a counter's status as
staff set it and when it is old, the next Saturday opening with holidays skipped and the published
臨時窓口・休日開庁, the shelters of a ward, and the greeting in disaster mode."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from bot.answering.board_answers import (
    clock_text,
    congestion_reply,
    disaster_greeting,
    find_counter,
    openings_reply,
    shelters_reply,
)
from bot.business_hours import JST
from bot.knowledge import load_knowledge
from bot.notices import board
from bot.payloads import KnowledgeIds, screen
from bot.settings import ROOT
from bot.wording import say

QUESTION = "中原区役所の区民課は今混んでる？"


@pytest.fixture(scope="module")
def kb():
    return load_knowledge(ROOT / "knowledge")


@pytest.fixture()
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'concierge.db'}"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=JST)


# --- congestion ------------------------------------------------------------------------------


def test_the_status_staff_set_is_what_the_bot_answers(kb, db):
    status = board.set_congestion(db, "中原区", "kumin", "staff-1", level="some", wait_minutes=20)
    now = status.set_at + timedelta(minutes=10)
    reply = congestion_reply(kb, db, "中原区", QUESTION, "ja", now)
    assert reply.text.startswith("中原区役所の区民課は、ただいま「やや混雑（待ち時間 約20分）」です")
    assert f"（{status.set_at.astimezone(JST):%H:%M}時点）" in reply.text
    assert say("utter_congestion_stale") not in reply.text
    board.set_congestion(db, "中原区", "kumin", "staff-1", level="busy")  # staff change it: so does the bot
    assert "「混雑」" in congestion_reply(kb, db, "中原区", QUESTION, "ja", now).text


def test_a_status_older_than_an_hour_is_said_to_be_old(kb, db):
    status = board.set_congestion(db, "中原区", "kumin", "staff-1", level="quiet")
    fresh = congestion_reply(kb, db, "中原区", QUESTION, "ja", status.set_at + timedelta(minutes=59))
    old = congestion_reply(kb, db, "中原区", QUESTION, "ja", status.set_at + timedelta(minutes=61))
    assert say("utter_congestion_stale") not in fresh.text
    assert old.text.endswith("\n" + say("utter_congestion_stale"))
    assert "空いています" in old.text


def test_the_time_a_status_was_set_is_said_in_japan_time():
    set_at = datetime(2026, 12, 3, 14, 5, tzinfo=JST)
    assert clock_text(set_at, set_at + timedelta(minutes=3)) == "14:05"
    assert clock_text(set_at, set_at + timedelta(days=1)) == "12/3 14:05"
    assert clock_text(datetime.fromisoformat("2026-12-03T05:05:00+00:00"), set_at) == "14:05"


def test_no_status_published_says_so_with_the_counters_hours(kb, db):
    board.set_congestion(db, "幸区", "kumin", "staff-2", level="busy")  # another ward's
    reply = congestion_reply(kb, db, "中原区", QUESTION, "ja", datetime.now(JST))
    assert reply.response == "utter_congestion_none"
    assert reply.values["counter"] == "区民課" and "8:30" in reply.values["hours"]
    assert "第2・第4土曜日" in reply.values["hours"]


def test_no_ward_asks_which_with_buttons_that_keep_the_counter(kb, db):
    reply = congestion_reply(kb, db, None, "区民課は今混んでる？", "ja", datetime.now(JST))
    assert reply.response == "utter_board_ask_ward"
    assert [b["title"] for b in reply.buttons][:3] == ["川崎区", "幸区", "中原区"]
    payload = reply.buttons[2]["payload"]
    assert payload == '/ask_congestion{"ward": "中原区", "counter": "kumin"}'
    assert screen(payload, KnowledgeIds(ROOT / "knowledge")) == payload  # the channel lets it through
    assert (
        screen('/ask_congestion{"ward": "中原区", "counter": "nope"}', KnowledgeIds(ROOT / "knowledge"))
        is None
    )


def test_no_counter_named_lists_the_wards_counters_with_a_status(kb, db):
    first = board.set_congestion(db, "中原区", "kumin", "staff-1", level="some")
    board.set_congestion(db, "中原区", "hoken-nenkin", "staff-1", wait_minutes=5)
    reply = congestion_reply(kb, db, "中原区", "窓口すいてますか", "ja", first.set_at + timedelta(minutes=61))
    lines = reply.text.splitlines()
    assert lines[0] == "中原区役所の窓口の混雑状況です。"
    assert lines[1].startswith("・保険年金課: 待ち時間 約5分（") and lines[2].startswith(
        "・区民課: やや混雑（"
    )
    assert all(line.endswith("※1時間以上前の情報です") for line in lines[1:])


def test_no_counter_and_no_status_asks_which_counter(kb, db):
    board.set_congestion(db, "幸区", "hoken-nenkin", "staff-2", level="busy")
    reply = congestion_reply(kb, db, "中原区", "窓口すいてますか", "ja", datetime.now(JST))
    assert reply.response == "utter_congestion_which_counter" and reply.values["office"] == "中原区役所"
    titles = [b["title"] for b in reply.buttons]
    assert titles[0] == "保険年金課" and "区民課" in titles and len(titles) <= 12  # posted somewhere first
    assert reply.buttons[0]["payload"] == '/ask_congestion{"ward": "中原区", "counter": "hoken-nenkin"}'


@pytest.mark.parametrize(
    ("text", "counter"),
    [
        (QUESTION, "kumin"),
        ("保険年金課の待ち時間", "hoken-nenkin"),
        ("だいＪＯＢセンターは混んでる？", "daijob"),  # full-width, NFKC; the nickname alone
        ("窓口すいてますか", None),
    ],
)
def test_the_counter_is_read_from_the_text(kb, text, counter):
    found = find_counter(kb, text)
    assert (found.id if found else None) == counter


def test_a_congestion_answer_in_english(kb, db):
    status = board.set_congestion(db, "中原区", "kumin", "staff-1", level="busy")
    reply = congestion_reply(
        kb, db, "中原区", "Is the Citizens' Section crowded?", "en", status.set_at, "kumin"
    )
    assert reply.text.startswith("区民課 at 中原区役所: 「混雑」 (waiting status as of ")


# --- openings --------------------------------------------------------------------------------


def test_a_saturday_that_is_a_public_holiday_is_skipped(kb, db):
    # August 2029: the 2nd Saturday is 山の日 (8/11): the next regular opening is the 4th, 8/25
    reply = openings_reply(kb, db, "中原区", "ja", at("2029-08-01 10:00"))
    first = reply.text.splitlines()[0]
    assert first.startswith("中原区役所の次の土曜開庁は 8月25日（土） 8:30〜12:30 です")
    assert reply.text.splitlines()[1] == say("utter_opening_no_specials")


@pytest.mark.parametrize(
    ("now", "day"),
    [
        ("2029-08-25 12:00", "8月25日（土） 8:30"),  # open now, until 12:30
        ("2029-08-25 12:30", "9月8日（土） 8:30"),  # closed for the day
        ("2030-11-10 09:00", "12月14日（土） 8:30"),  # 11/23 is 勤労感謝の日
        ("2026-12-27 09:00", "1月9日（土） 8:30"),  # past the 4th Saturday of December
    ],
)
def test_the_next_saturday_opening(kb, db, now, day):
    assert f"次の土曜開庁は {day}" in openings_reply(kb, db, "中原区", "ja", at(now)).text


def test_published_holiday_and_temporary_openings_are_listed_in_date_order(kb, db):
    today = date(2029, 8, 1)
    board.add_opening(db, "中原区", date(2029, 9, 2), "9:00", "12:00", "temporary", "staff-1", today=today)
    board.add_opening(
        db, "中原区", date(2029, 8, 11), "9:00", "12:30", "holiday", "staff-1",
        counters=["kumin", "hoken-nenkin"], note="転入・転出の届出のみ", today=today,
    )  # fmt: skip
    board.add_opening(db, "幸区", date(2029, 8, 12), "9:00", "12:00", "holiday", "staff-2", today=today)
    lines = openings_reply(kb, db, "中原区", "ja", at("2029-08-01 10:00")).text.splitlines()
    assert lines[1] == "臨時窓口・休日開庁のお知らせ:"
    assert lines[2] == "・8月11日（土） 09:00〜12:30 休日開庁（区民課・保険年金課） 転入・転出の届出のみ"
    assert lines[3] == "・9月2日（日） 09:00〜12:00 臨時窓口"
    assert len(lines) == 4  # 幸区's is not 中原区's
    later = openings_reply(kb, db, "中原区", "ja", at("2029-08-20 10:00")).text
    assert "8月11日" not in later and "9月2日" in later  # a past opening is gone


def test_openings_without_a_ward_ask_which(kb, db):
    reply = openings_reply(kb, db, None, "ja", at("2029-08-01 10:00"))
    assert reply.response == "utter_board_ask_ward"
    assert reply.buttons[0]["payload"] == '/ask_special_opening{"ward": "川崎区"}'
    assert all(screen(b["payload"]) == b["payload"] for b in reply.buttons)


# --- shelters and disaster mode --------------------------------------------------------------


def test_the_wards_shelters_with_their_source_and_the_citys_page(kb):
    reply = shelters_reply(kb, "中原区", "ja")
    text = say(reply.response, "ja", **reply.values)
    assert "・等々力緑地（広域避難場所） 川崎市中原区等々力1-1" in text
    assert text.index("等々力緑地") < text.index("市立の小学校・中学校・高等学校など（指定避難所）")
    assert "避難指示が出たときは、その指示に従って避難してください。" in text
    assert "https://" in text and text.splitlines()[-1].startswith(
        "出典: 川崎市公式ウェブサイト「防災・避難所」"
    )


def test_a_ward_without_its_own_entry_gets_the_citywide_guidance(kb):
    reply = shelters_reply(kb, "宮前区", "ja")
    text = say(reply.response, "ja", **reply.values)
    assert "広域避難場所" not in text.split("\n最新の一覧")[0]
    assert "市立の小学校・中学校・高等学校など" in text and "ハザードマップ" in text


def test_shelters_without_a_ward_ask_which(kb):
    reply = shelters_reply(kb, None, "ja")
    assert reply.buttons[6]["payload"] == '/ask_shelter{"ward": "麻生区"}'


def test_every_shelter_is_awaiting_review_and_cites_the_citys_disaster_page(kb):
    assert kb.shelters and all(s.review for s in kb.shelters)
    assert {s.source.id for s in kb.shelters} == {"kawasaki-bousai"}


def test_the_greeting_leads_with_the_alert_while_disaster_mode_is_on(db):
    assert disaster_greeting(db, "中原区", "ja") is None
    alert = board.start_disaster(db, "大雨による避難指示が出ています。", ["中原区", "高津区"], "admin")
    reply = disaster_greeting(db, "中原区", "ja")
    text = say(reply.response, "ja", **reply.values)
    assert text.startswith("【災害情報（中原区・高津区）】大雨による避難指示が出ています。")
    assert reply.buttons == [{"title": "避難所を調べる", "payload": '/ask_shelter{"ward": "中原区"}'}]
    assert disaster_greeting(db, "麻生区", "ja") is None  # not that ward's
    unknown = disaster_greeting(db, None, "ja")  # no ward known yet: the alert, and shelters ask which
    assert unknown.values["message"] == alert.message and unknown.buttons[0]["payload"] == "/ask_shelter"
    board.end_disaster(db, "admin")
    assert disaster_greeting(db, "中原区", "ja") is None and disaster_greeting(db, None, "ja") is None


def test_a_citywide_alert_covers_every_ward(db):
    board.start_disaster(db, "震度6弱の地震がありました。", [], "admin")
    reply = disaster_greeting(db, "麻生区", "en")
    assert reply.values["area"] == ""
    assert say(reply.response, "en", **reply.values).startswith("[Disaster information] 震度6弱")
    assert reply.buttons[0]["title"] == "Find shelters"
