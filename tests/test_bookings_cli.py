"""`concierge bookings` (issue 19): publishing slots one by one and weekly, listing and closing them,
and the bookings list — on SQLite settings, through `bot.cli.main` and once as the installed
command. Dates are in 2030, so they stay in the future; 2030-02-11 (建国記念の日) is a holiday."""

from __future__ import annotations

import json
import subprocess
from datetime import date, datetime, time

import pytest

from bot import cli
from bot.bookings import reservations, slots
from bot.bookings.slots import JST
from bot.settings import ROOT, Settings

CONCIERGE = str(ROOT / ".venv" / "bin" / "concierge")
TUESDAY = "2030-02-05"
HOLIDAY = "2030-02-11"  # a Monday


@pytest.fixture()
def settings(tmp_path, monkeypatch) -> Settings:
    """The CLI builds its own Settings from the environment: point it at a database in tmp_path."""
    settings = Settings(var_dir=tmp_path / "var")
    for name, value in settings.as_env().items():
        monkeypatch.setenv(name, value)
    return settings


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def add(capsys, *more: str, date_: str = TUESDAY, time_: str = "10:00") -> tuple[int, str, str]:
    return run(
        capsys, "bookings", "slots", "add", "--ward", "中原区", "--counter", "kumin", "--date", date_,
        "--time", time_, *more,
    )  # fmt: skip


def test_a_good_slot_is_added_and_listed(settings, capsys):
    code, out, err = add(capsys, "--capacity", "3", "--minutes", "20")
    assert code == 0, err
    assert out.startswith("slot 1: 中原区 区民課 (kumin) 2030-02-05 10:00〜10:20, capacity 3")
    (slot,) = slots.listing(settings.database_url)
    assert (slot.day, slot.start, slot.minutes, slot.capacity, slot.status) == (
        date(2030, 2, 5), "10:00", 20, 3, "open"
    )  # fmt: skip
    code, out, _ = run(capsys, "bookings", "slots", "list", "--json")
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {
            "id": 1, "ward": "中原区", "counter": "kumin", "date": "2030-02-05", "time": "10:00",
            "end": "10:20", "minutes": 20, "capacity": 3, "booked": 0, "free": 3, "status": "open",
        }
    ]  # fmt: skip
    code, out, _ = run(capsys, "bookings", "slots", "list")
    assert out.split() == ["1", "中原区", "kumin", "2030-02-05", "10:00", "10:20", "3", "0", "3", "open"]


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        ({"date_": HOLIDAY}, "受付時間外"),  # a public holiday
        ({"date_": "2030-12-31"}, "受付時間外"),  # the year-end closure
        ({"time_": "17:30"}, "受付時間外"),  # after closing
        ({"date_": "2020-02-04"}, "過去の日付"),
    ],
)
def test_a_slot_the_counter_cannot_have_exits_2_with_the_reason(settings, capsys, argv, reason):
    code, out, err = add(capsys, **argv)
    assert code == 2 and out == ""
    assert reason in err
    assert slots.listing(settings.database_url) == []


def test_bad_input_exits_2_and_says_what_is_wrong(settings, capsys):
    assert add(capsys, "--capacity", "0")[0] == 2
    code, _, err = run(
        capsys, "bookings", "slots", "add", "--ward", "中原区", "--counter", "no-such", "--date", TUESDAY,
        "--time", "10:00",
    )  # fmt: skip
    assert code == 2 and "no-such" in err and "ナレッジにありません" in err
    code, _, err = run(
        capsys, "bookings", "slots", "add", "--ward", "横浜区", "--counter", "kumin", "--date", TUESDAY,
        "--time", "10:00",
    )  # fmt: skip
    assert code == 2 and "区の名前" in err
    code, _, err = add(capsys, date_="2030-2-5x")
    assert code == 2 and "--date 2030-2-5x: not a date" in err
    assert add(capsys)[0] == 0
    code, _, err = add(capsys)
    assert code == 2 and "すでにあります" in err  # the same slot twice
    assert len(slots.listing(settings.database_url)) == 1


def test_a_weekly_pattern_prints_what_was_added_and_what_was_skipped_and_why(settings, capsys):
    code, out, err = run(
        capsys, "bookings", "slots", "add-weekly", "--ward", "中原区", "--counter", "kumin",
        "--weekdays", "mon,tue", "--time", "14:00", "--capacity", "2",
        "--from", "2030-02-04", "--until", "2030-02-12", "--except", "2030-02-05",
    )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["added   slot 1", "added   slot 2"]
    assert "2030-02-04 14:00〜14:30" in lines[0] and "2030-02-12 14:00〜14:30" in lines[1]
    assert lines[2] == "skipped 2030-02-05 (火): 除外日"
    assert lines[3].startswith("skipped 2030-02-11 (月): ") and "受付時間外" in lines[3]
    assert lines[4] == "2 added, 2 skipped"
    assert [s.day.isoformat() for s in slots.listing(settings.database_url)] == ["2030-02-04", "2030-02-12"]
    code, _, err = run(
        capsys, "bookings", "slots", "add-weekly", "--ward", "中原区", "--counter", "kumin",
        "--weekdays", "funday", "--time", "14:00", "--from", "2030-02-04", "--until", "2030-02-12",
    )  # fmt: skip
    assert code == 2 and "曜日" in err
    code, out, _ = run(
        capsys, "bookings", "slots", "add-weekly", "--ward", "中原区", "--counter", "kumin",
        "--weekdays", "mon", "--time", "14:00", "--from", "2030-02-11", "--until", "2030-02-11",
    )  # fmt: skip
    assert code == 2 and out.endswith("0 added, 1 skipped\n")  # nothing published


def test_slots_list_filters_and_close_stops_new_bookings(settings, capsys):
    assert add(capsys)[0] == 0
    assert add(capsys, time_="11:00")[0] == 0
    run(
        capsys, "bookings", "slots", "add", "--ward", "幸区", "--counter", "kumin", "--date", TUESDAY,
        "--time", "10:00",
    )  # fmt: skip
    _, out, _ = run(capsys, "bookings", "slots", "list", "--ward", "幸区", "--json")
    assert [json.loads(line)["ward"] for line in out.splitlines()] == ["幸区"]
    _, out, _ = run(capsys, "bookings", "slots", "list", "--counter", "hoken-nenkin")
    assert out == ""
    code, out, _ = run(capsys, "bookings", "slots", "close", "1")
    assert code == 0 and out.startswith("slot 1 closed")
    code, _, err = run(capsys, "bookings", "slots", "close", "1")
    assert code == 1 and "no open slot 1" in err
    assert run(capsys, "bookings", "slots", "close", "99")[0] == 1
    now = datetime.combine(date(2030, 2, 4), time(9, 0), JST)
    with pytest.raises(reservations.BookingError) as refused:
        reservations.book(
            settings.database_url, ward="中原区", counter_id="kumin", day=date(2030, 2, 5), start="10:00",
            conversation="web-a", now=now,
        )  # fmt: skip
    assert refused.value.reason == "closed"
    _, out, _ = run(capsys, "bookings", "slots", "list", "--ward", "中原区", "--json")
    assert [json.loads(line)["status"] for line in out.splitlines()] == ["closed", "open"]


def test_bookings_json_lists_each_booking_without_its_conversation(settings, capsys):
    assert add(capsys, "--capacity", "2")[0] == 0
    run(
        capsys, "bookings", "slots", "add", "--ward", "幸区", "--counter", "kumin", "--date", "2030-02-07",
        "--time", "10:00",
    )  # fmt: skip
    now = datetime.combine(date(2030, 2, 4), time(9, 0), JST)
    line_user = "U" + "f" * 32
    first = reservations.book(
        settings.database_url, ward="中原区", counter_id="kumin", day=date(2030, 2, 5), start="10:00",
        conversation=line_user, channel="line", topic="印鑑登録", now=now,
    )  # fmt: skip
    second = reservations.book(
        settings.database_url, ward="幸区", counter_id="kumin", day=date(2030, 2, 7), start="10:00",
        conversation="web-abc", channel="widget", now=now,
    )  # fmt: skip
    reservations.cancel(settings.database_url, second.number, conversation="web-abc")
    code, out, _ = run(capsys, "bookings", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows == [
        {
            "number": first.number, "ward": "中原区", "counter": "kumin", "date": "2030-02-05",
            "time": "10:00", "end": "10:30", "status": "booked", "channel": "line", "topic": "印鑑登録",
            "slot": 1,
        },
        {
            "number": second.number, "ward": "幸区", "counter": "kumin", "date": "2030-02-07",
            "time": "10:00", "end": "10:30", "status": "cancelled", "channel": "widget", "topic": None,
            "slot": 2,
        },
    ]  # fmt: skip
    assert line_user not in out and "web-abc" not in out  # a resident's address is not for listing
    _, out, _ = run(capsys, "bookings", "--ward", "幸区", "--json")
    assert [json.loads(line)["number"] for line in out.splitlines()] == [second.number]
    _, out, _ = run(capsys, "bookings", "--since", "2030-02-06")
    assert out.split()[:2] == [second.number, "幸区"] and len(out.splitlines()) == 1
    assert run(capsys, "bookings", "--since", "tomorrow")[0] == 2
    # the installed command, as staff run it
    command = [CONCIERGE, "bookings", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, env=settings.child_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["number"] for line in done.stdout.splitlines()] == [first.number, second.number]
