"""The console's words and times: codes become Japanese, UTC becomes Japan time."""

from __future__ import annotations

from datetime import UTC, datetime

from web.console_text import REASON, TICKET_STATUS, editor_problem, field_of, jst, label


def test_times_are_shown_in_japan_time_as_people_write_them():
    assert jst("2026-11-27T10:25:45.853593") == "11月27日 19:25"  # stored naive UTC
    assert jst(datetime(2026, 12, 31, 15, 0, tzinfo=UTC), with_year=True) == "2027年1月1日 00:00"
    assert jst(None) == "—"


def test_codes_become_words_and_unknown_codes_stay_visible():
    assert label(TICKET_STATUS, "new") == "未対応" and label(REASON, "sensitive") == "配慮が必要な相談"
    assert label(TICKET_STATUS, "someday") == "someday"


def test_knowledge_problems_are_said_for_an_editor():
    missing = "services.yml:220: missing 'name' in entry 'juminhyo'"
    assert editor_problem(missing) == "「名称」が空です。入力してください。"
    assert field_of(missing) == "name"
    unknown = "services.yml:12: unknown source 'no-such' (see sources.yml)"
    assert editor_problem(unknown).startswith("「出典」の「no-such」は登録されていません。")
    assert field_of(unknown) == "source"
