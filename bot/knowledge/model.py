"""Typed records of the knowledge base and the look-ups answers need."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

WARDS: tuple[str, ...] = ("川崎区", "幸区", "中原区", "高津区", "宮前区", "多摩区", "麻生区")


@dataclass(frozen=True)
class Source:
    """Where a fact comes from: a registered source plus an optional section."""

    id: str
    title: str
    url: str | None
    section: str = ""

    @property
    def label(self) -> str:
        return (
            f"{self.title}{self.section}"
            if self.title.endswith("）")
            else f"{self.title} {self.section}".strip()
        )

    @property
    def short_label(self) -> str:
        """The document and its section number only (「区役所改革の基本方針（案）第4章 1(2)」): what
        an answer's one source line says; the card carries the full label and the link."""
        numbering = []
        for token in self.section.split():
            if not _SECTION_NUMBER.fullmatch(token):
                break
            numbering.append(token)
        return Source(self.id, self.title, self.url, " ".join(numbering)).label

    def as_dict(self) -> dict[str, str | None]:
        return {"title": self.label, "url": self.url}


# 第4章, 1(2), 2(3)ア, (4) — the numbering that starts a section, before its heading words.
_SECTION_NUMBER = re.compile(r"第\d+章|[\d()]+[ア-ン]?")


@dataclass(frozen=True)
class Schedule:
    """Opening hours as text and as rules, for 'when will someone answer'."""

    id: str
    text: str
    days: tuple[str, ...] = ()  # mon … sun
    weeks: tuple[int, ...] = ()  # only these weeks of the month (e.g. 2nd and 4th Saturday)
    open: str = ""  # "08:30"
    close: str = ""  # "17:00"
    # Closed on Japan's public holidays (振替休日 and 国民の休日 included).
    closed_on_holidays: bool = False
    # Closed from the first to the last of these month-days, across the new year ("12-29", "01-03").
    closed_span: tuple[str, str] | None = None


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str
    note: str
    source: Source


@dataclass(frozen=True)
class Office:
    id: str
    name: str
    kind: str
    wards: tuple[str, ...]
    source: Source
    address: str = ""
    hours: tuple[str, ...] = ()  # resolved hour texts
    hours_en: tuple[str, ...] = ()
    hour_ids: tuple[str, ...] = ()
    name_en: str = ""
    phone: str = ""
    status: str = "open"
    closed: str = ""
    note: str = ""
    review: bool = False

    @property
    def is_open(self) -> bool:
        return self.status != "closed"

    origin: str = ""  # file:line in knowledge/, for editors


@dataclass(frozen=True)
class Counter:
    id: str
    name: str
    at: str
    handles: str
    source: Source
    section: str = ""
    hours: tuple[str, ...] = ()
    hours_en: tuple[str, ...] = ()
    hour_ids: tuple[str, ...] = ()
    name_en: str = ""
    origin: str = ""  # file:line in knowledge/, for editors


@dataclass(frozen=True)
class NotAt:
    kinds: tuple[str, ...]
    note: str
    source: Source


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    source: Source
    aliases: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()
    name_en: str = ""
    aliases_en: tuple[str, ...] = ()
    counter: Counter | None = None
    office_kinds: tuple[str, ...] = ()
    office_ids: tuple[str, ...] = ()
    not_at: NotAt | None = None
    bring: tuple[str, ...] = ()
    alternatives: str = ""
    deadline: str = ""
    note: str = ""
    review: bool = False
    origin: str = ""  # file:line in knowledge/, for editors


@dataclass(frozen=True)
class Referral:
    """A matter residents bring to the ward office that another body handles (パスポート → 県):
    the bot says so plainly, where to go, and what the ward office does contribute."""

    id: str
    name: str
    handled_by: str
    where: str
    source: Source
    aliases: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()
    name_en: str = ""
    aliases_en: tuple[str, ...] = ()
    handled_by_en: str = ""
    ward_office_part: str = ""  # what the ward office contributes, e.g. 戸籍謄本 for a passport
    services: tuple[str, ...] = ()  # ids of the ward office's own services that contribute
    review: bool = False
    origin: str = ""  # file:line in knowledge/, for editors


@dataclass(frozen=True)
class Faq:
    id: str
    questions: tuple[str, ...]
    answer: str
    source: Source
    services: tuple[str, ...] = ()
    origin: str = ""  # file:line in knowledge/, for editors


@dataclass(frozen=True)
class PolicyChunk:
    id: str
    chapter: str
    section: str
    heading: str
    cite: str
    text: str
    source: Source
    origin: str = ""  # file:line in knowledge/, for editors
    # The headings above this one in its section (「(2) かわさき改革カフェ」 above 「イ 開催日時・場所」):
    # a table row 「南部地区 平成 27 年 9 月 19 日…」 is about the café only through them.
    context: str = ""
    # Headings of the seed that hold no text of their own and stand just before this chunk's
    # (「(1) 川崎市行財政改革に関する計画策定委員会 区役所のあり方検討部会」 before 「ア 設置目的」).
    above: tuple[str, ...] = ()


@dataclass(frozen=True)
class SensitiveTopic:
    """A topic where a resident may need care: specialist contacts come first."""

    id: str
    label: str
    keywords: tuple[str, ...]
    contacts: tuple[Contact, ...]
    counter: Counter | None = None
    origin: str = ""


# notices: board answers (issue 18)
@dataclass(frozen=True)
class Shelter:
    """A shelter or evacuation site the city designates: what the bot names in a disaster, always
    with the city's current list beside it (the list changes; this is never the whole of it)."""

    id: str
    name: str
    kind: str  # 指定避難所, 広域避難場所, 津波避難施設 …
    source: Source
    ward: str | None = None  # None: citywide (e.g. the municipal schools)
    name_en: str = ""
    address: str = ""
    note: str = ""
    review: bool = False
    origin: str = ""  # file:line in knowledge/, for editors


@dataclass(frozen=True)
class Town:
    name: str
    reading: str
    ward: str
    kind: str
    source: Source


@dataclass
class KnowledgeBase:
    """Everything in knowledge/, with the look-ups the answer composer needs."""

    offices: dict[str, Office] = field(default_factory=dict)
    counters: dict[str, Counter] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    referrals: dict[str, Referral] = field(default_factory=dict)
    faqs: dict[str, Faq] = field(default_factory=dict)
    policy: dict[str, PolicyChunk] = field(default_factory=dict)
    towns: list[Town] = field(default_factory=list)
    hours: dict[str, str] = field(default_factory=dict)  # schedule id → text
    ward_names_en: dict[str, str] = field(default_factory=dict)  # 中原区 → Nakahara
    schedules: dict[str, Schedule] = field(default_factory=dict)
    sensitive: list[SensitiveTopic] = field(default_factory=list)
    awaiting_review: dict[str, int] = field(default_factory=dict)  # file → entries marked review: true
    # notices: board answers (issue 18)
    shelters: list[Shelter] = field(default_factory=list)

    def offices_in(
        self, ward: str, kinds: tuple[str, ...] = (), include_closed: bool = False
    ) -> list[Office]:
        """Offices serving `ward`, in the order of `kinds` (all kinds if empty)."""
        found = [
            o
            for o in self.offices.values()
            if ward in o.wards and (include_closed or o.is_open) and (not kinds or o.kind in kinds)
        ]
        if kinds:
            found.sort(key=lambda o: kinds.index(o.kind))
        return found

    def ward_office(self, ward: str) -> Office | None:
        offices = self.offices_in(ward, ("区役所",))
        return offices[0] if offices else None

    def closed_offices(self) -> list[Office]:
        return [o for o in self.offices.values() if not o.is_open]

    # notices: board answers (issue 18)
    def shelters_for(self, ward: str) -> list[Shelter]:
        """The ward's own shelters first, then the citywide entries."""
        return [s for s in self.shelters if s.ward == ward] + [s for s in self.shelters if s.ward is None]
