"""Answers from the staff's board (bot/notices/board.py) and the shelters in knowledge/: how busy a
counter is, the next Saturday opening and the published 臨時窓口・休日開庁, the shelters of a ward,
and the greeting while disaster mode is on.

Each function returns a `Reply`: the response of domain.yml to utter, its values and buttons, so
the action only sends it. The words are domain.yml's (through bot/wording.py for the parts a reply
is assembled from); the clock is a parameter, so tests freeze it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bot.business_hours import JST, WEEKDAY_JA, openings_from
from bot.japanese import nfkc
from bot.knowledge import WARDS, Counter, KnowledgeBase
from bot.knowledge.model import Office
from bot.notices import board
from bot.payloads import OFFERS
from bot.wording import say

SATURDAY_LOOKAHEAD_DAYS = 62  # 2nd and 4th Saturdays, one or two skipped for holidays: within two months
MAX_CHOICES = 12  # LINE shows 13 quick replies; one stays free for the hand-off


@dataclass
class Reply:
    """What the action utters: a response of domain.yml filled in with `values`, or `text`
    already assembled from responses in the resident's language."""

    response: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    buttons: list[dict[str, str]] = field(default_factory=list)


def ask_ward(intent: str, lang: str, **entities: str) -> Reply:
    """Which ward? The ward buttons carry the question's own payload, so a tap answers it."""
    offer = OFFERS[intent]
    buttons = [{"title": w, "payload": offer.payload(ward=w, **entities)} for w in WARDS]
    return Reply(response="utter_board_ask_ward", buttons=buttons)


def _office_name(kb: KnowledgeBase, ward: str, lang: str) -> tuple[Office | None, str]:
    office = kb.ward_office(ward)
    return office, office.name if office else say("utter_ward_office_of", lang, ward=ward)


def _hours(kb: KnowledgeBase, hour_ids: tuple[str, ...], sep: str) -> str:
    return sep.join(kb.hours[h] for h in hour_ids if h in kb.hours)


def clock_text(moment: datetime, now: datetime) -> str:
    """「14:05」 today (JST), 「12/5 14:05」 another day."""
    local, today = moment.astimezone(JST), now.astimezone(JST).date()
    return f"{local:%H:%M}" if local.date() == today else f"{local.month}/{local.day} {local:%H:%M}"


def day_text(day: date, lang: str) -> str:
    """「12月12日（土）」, or "Sat 12 Dec" in English."""
    if lang == "en":
        return day.strftime("%a %d %b")
    return f"{day.month}月{day.day}日（{WEEKDAY_JA[day.weekday()]}）"


# --- counter congestion ----------------------------------------------------------------------


def _counter_names(counter: Counter) -> list[str]:
    """How residents write the counter: its name, without a bracketed nickname, and the nickname."""
    name = nfkc(counter.name)
    names = [name]
    if "(" in name and name.endswith(")"):
        base, _, nickname = name[:-1].partition("(")
        names += [base.strip(), nickname.strip()]
    return [n for n in names if len(n) >= 2]


def find_counter(kb: KnowledgeBase, text: str) -> Counter | None:
    """The counter the text names (NFKC, longest name first): 「区民課」 → kumin."""
    norm = nfkc(text)
    candidates = sorted(
        ((n, c) for c in kb.counters.values() for n in _counter_names(c)), key=lambda nc: -len(nc[0])
    )
    return next((c for name, c in candidates if name in norm), None)


def congestion_reply(
    kb: KnowledgeBase,
    database_url: str,
    ward: str | None,
    text: str,
    lang: str,
    now: datetime,
    counter_id: str | None = None,
) -> Reply:
    """The status staff set for the counter named (or for every counter of the ward that has one)."""
    counter = kb.counters.get(counter_id or "") or find_counter(kb, text)
    if ward is None:
        return ask_ward("ask_congestion", lang, **({"counter": counter.id} if counter else {}))
    office, office_name = _office_name(kb, ward, lang)
    sep = say("utter_phrase_hours_sep", lang)
    if counter is not None:
        status = board.congestion(database_url, ward, counter.id)
        if status is None:
            hours = _hours(kb, counter.hour_ids or (office.hour_ids if office else ()), sep)
            return Reply(
                "utter_congestion_none", {"office": office_name, "counter": counter.name, "hours": hours}
            )
        text = say(
            "utter_congestion",
            lang,
            office=office_name,
            counter=counter.name,
            label=status.label,
            at=clock_text(status.set_at, now),
        )
        if status.stale(now):
            text += "\n" + say("utter_congestion_stale", lang)
        return Reply(text=text)
    statuses = [s for s in board.congestion_of_ward(database_url, ward) if s.counter_id in kb.counters]
    if statuses:
        lines = [
            say(
                "utter_congestion_line",
                lang,
                counter=kb.counters[s.counter_id].name,
                label=s.label,
                at=clock_text(s.set_at, now),
                stale=say("utter_congestion_line_stale", lang) if s.stale(now) else "",
            )
            for s in statuses
        ]
        return Reply(text=say("utter_congestion_ward", lang, office=office_name, lines="\n".join(lines)))
    return Reply(
        "utter_congestion_which_counter",
        {"office": office_name},
        buttons=[
            {"title": c.name, "payload": OFFERS["ask_congestion"].payload(ward=ward, counter=c.id)}
            for c in _counters_at_ward_office(kb, database_url)
        ],
    )


def _counters_at_ward_office(kb: KnowledgeBase, database_url: str) -> list[Counter]:
    """The counters to choose from: those staff post a status for in any ward first, then the ward
    office's own counters in the knowledge's order."""
    posted = dict.fromkeys(s.counter_id for s in board.congestion_of_ward(database_url))
    ordered = [kb.counters[c] for c in posted if c in kb.counters]
    ordered += [c for c in kb.counters.values() if c.at == "区役所" and c not in ordered]
    return ordered[:MAX_CHOICES]


# --- Saturday and special openings -----------------------------------------------------------


def openings_reply(kb: KnowledgeBase, database_url: str, ward: str | None, lang: str, now: datetime) -> Reply:
    """The ward office's next regular Saturday opening (holidays and the year-end break skipped)
    and every 臨時窓口・休日開庁 staff published from today on, soonest first."""
    if ward is None:
        return ask_ward("ask_special_opening", lang)
    office, office_name = _office_name(kb, ward, lang)
    parts = [_next_saturday(kb, office, office_name, lang, now)]
    openings = board.upcoming_openings(database_url, ward, today=now.astimezone(JST).date())
    if openings:
        sep = say("utter_phrase_kinds_sep", lang)
        lines = [
            say(
                "utter_opening_line",
                lang,
                day=day_text(o.day, lang),
                opens=o.opens,
                closes=o.closes,
                kind=o.kind_label,
                counters=_counter_list(kb, o.counters, sep),
                note=f" {o.note}" if o.note else "",
            )
            for o in openings
        ]
        parts.append(say("utter_opening_specials", lang, lines="\n".join(lines)))
    else:
        parts.append(say("utter_opening_no_specials", lang))
    return Reply(text="\n".join(parts))


def _counter_list(kb: KnowledgeBase, ids: tuple[str, ...], sep: str) -> str:
    names = [kb.counters[c].name if c in kb.counters else c for c in ids]
    return f"（{sep.join(names)}）" if names else ""


def _next_saturday(
    kb: KnowledgeBase, office: Office | None, office_name: str, lang: str, now: datetime
) -> str:
    hour_ids = office.hour_ids if office else ()
    saturdays = [kb.schedules[h] for h in hour_ids if h in kb.schedules and "sat" in kb.schedules[h].days]
    windows = sorted(w for s in saturdays for w in openings_from(s, now, SATURDAY_LOOKAHEAD_DAYS))
    hours = _hours(kb, tuple(s.id for s in saturdays) or hour_ids, say("utter_phrase_hours_sep", lang))
    if not windows:
        return say(
            "utter_opening_no_saturday", lang, office=office_name, days=SATURDAY_LOOKAHEAD_DAYS, hours=hours
        )
    start, end = windows[0]
    return say(
        "utter_opening_saturday",
        lang,
        office=office_name,
        day=day_text(start.date(), lang),
        opens=f"{start.hour}:{start:%M}",
        closes=f"{end.hour}:{end:%M}",
        hours=hours,
    )


# --- shelters and disaster mode --------------------------------------------------------------


def shelters_reply(kb: KnowledgeBase, ward: str | None, lang: str) -> Reply:
    """The ward's shelters from knowledge/shelters.yml with their source; always the city's page for
    the current list, and to follow evacuation orders."""
    if ward is None:
        return ask_ward("ask_shelter", lang)
    shelters = kb.shelters_for(ward)
    url = next((s.source.url for s in shelters if s.source.url), None) or _city_page(kb)
    if not shelters:
        return Reply("utter_shelters_general", {"ward": ward, "url": url})
    lines = [
        say(
            "utter_shelter_line",
            lang,
            name=s.name,
            kind=s.kind,
            address=f" {s.address}" if s.address else "",
            note=f" {s.note}" if s.note else "",
        )
        for s in shelters
    ]
    sources = "／".join(dict.fromkeys(s.source.short_label for s in shelters))
    return Reply("utter_shelters", {"ward": ward, "lines": "\n".join(lines), "url": url, "sources": sources})


def _city_page(kb: KnowledgeBase) -> str:
    """Without a shelter entry: the city's site, as the offices cite it."""
    return next((o.source.url for o in kb.offices.values() if o.source.url), "")


def disaster_greeting(database_url: str, ward: str | None, lang: str) -> Reply | None:
    """While disaster mode covers the resident's ward (or, ward unknown, any ward), the greeting
    leads with the staff's message and a button to look up shelters; None when it is off."""
    alert = board.alert_for(database_url, ward)
    if alert is None and ward is None:
        alert = next(iter(board.active_alerts(database_url)), None)
    if alert is None:
        return None
    wards = say("utter_phrase_kinds_sep", lang).join(alert.wards)
    area = "" if not wards else f" ({wards})" if lang == "en" else f"（{wards}）"
    offer = OFFERS["ask_shelter"]
    payload = offer.payload(ward=ward) if ward else offer.payload()
    return Reply(
        "utter_greet_disaster",
        {"area": area, "message": alert.message},
        buttons=[{"title": say("utter_shelter_button", lang), "payload": payload}],
    )
