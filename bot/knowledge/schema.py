"""What each knowledge/*.yml file may say: one pydantic model per kind of entry.

These models are the one description of the files: a key no model has is refused (so a misspelt
`reveiw:` cannot drop what it holds), formats and references to other files are checked here, and
each model adds a valid entry to the runtime records of bot.knowledge.model.

References are checked against the ids the files declare, passed as the validation context
({file: ids}): an entry that is itself broken is reported once, not again by every entry naming it.
"""

from __future__ import annotations

import dataclasses
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from bot.knowledge.model import (
    WARDS,
    Contact,
    Counter,
    Faq,
    KnowledgeBase,
    NotAt,
    Office,
    PolicyChunk,
    Referral,
    Schedule,
    SensitiveTopic,
    Service,
    Shelter,
    Source,
    Town,
)


def _declared(file: str, what: str, ref: str, info: ValidationInfo) -> None:
    if ref not in info.context[file]:
        raise ValueError(f"unknown {what} {ref!r} (see {file})")


def _refers_to(file: str, what: str) -> AfterValidator:
    """The id of an entry of `file`."""

    def check(value: str, info: ValidationInfo) -> str:
        _declared(file, what, value, info)
        return value

    return AfterValidator(check)


def source_id(ref: str) -> str:
    """`seed / 第4章 1(2)` names the source `seed`, section 第4章 1(2)."""
    return ref.partition("/")[0].strip()


def _source(value: str, info: ValidationInfo) -> str:
    _declared("sources.yml", "source", source_id(value), info)
    return value


def _ward(value: str) -> str:
    if value not in WARDS:
        raise ValueError(f"unknown ward {value!r}")
    return value


def _month_day(value: str) -> str:
    if not re.fullmatch(r"(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", value):
        raise ValueError(f"closed day {value!r} is not MM-DD")
    return value


Text = Annotated[str, StringConstraints(min_length=1)]  # required: an empty text counts as missing
Id = Annotated[str, StringConstraints(min_length=1, pattern=r"^[a-z0-9-]+$")]
Url = Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
Clock = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]  # "08:30", quoted in YAML
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
MonthDay = Annotated[str, AfterValidator(_month_day)]
Ward = Annotated[str, AfterValidator(_ward)]
SourceRef = Annotated[Text, AfterValidator(_source)]
HoursId = Annotated[str, _refers_to("hours.yml", "hours")]
OfficeId = Annotated[str, _refers_to("offices.yml", "office")]
CounterId = Annotated[str, _refers_to("counters.yml", "counter")]
ServiceId = Annotated[str, _refers_to("services.yml", "service")]
R = TypeVar("R")


@dataclass
class Catalog:
    """The knowledge base being built, with the sources and schedules later entries resolve."""

    kb: KnowledgeBase = field(default_factory=KnowledgeBase)
    sources: dict[str, SourceEntry] = field(default_factory=dict)
    hours: dict[str, HoursEntry] = field(default_factory=dict)

    def source(self, ref: str) -> Source:
        section = ref.partition("/")[2].strip()
        entry = self.sources.get(source_id(ref))
        if entry is None:  # declared but broken: already reported
            return Source(id=source_id(ref), title=source_id(ref), url=None, section=section)
        return Source(id=entry.id, title=entry.title, url=entry.url, section=section)

    def hour_texts(self, ids: list[str], english: bool = False) -> tuple[str, ...]:
        schedules = [self.hours[i] for i in ids if i in self.hours]
        return tuple((h.text_en or h.text) if english else h.text for h in schedules)


def _record(cls: type[R], entry: Schema, **resolved: Any) -> R:
    """A runtime record: the entry's fields of the same name (lists as tuples), then `resolved`."""
    names = ({f.name for f in dataclasses.fields(cls)} & type(entry).model_fields.keys()) - resolved.keys()
    same = {name: getattr(entry, name) for name in names}
    return cls(**{n: tuple(v) if isinstance(v, list) else v for n, v in same.items()}, **resolved)


class Schema(BaseModel):
    """A YAML mapping whose keys are exactly its fields."""

    model_config = ConfigDict(extra="forbid")


class Entry(Schema, ABC):
    """One entry of a knowledge file."""

    review: bool = False  # an editor still has to confirm it

    @abstractmethod
    def add_to(self, catalog: Catalog, origin: str) -> None:
        """Add the entry's records; `origin` is its file:line, for editors."""


class Cited(Entry):
    source: SourceRef


class SourceEntry(Entry):
    """sources.yml: a citable document or page."""

    id: Id
    title: Text
    url: Url | None = None

    def add_to(self, catalog: Catalog, origin: str) -> None:
        catalog.sources[self.id] = self


class Closures(Schema):
    """`closed: {holidays: true, from: "12-29", to: "01-03", source: …}` of a schedule."""

    holidays: bool = False  # Japan's public holidays
    from_: MonthDay | None = Field(None, alias="from")
    to: MonthDay | None = None
    source: SourceRef

    @model_validator(mode="after")
    def _a_span_has_both_ends(self) -> Closures:
        if (self.from_ is None) != (self.to is None):
            raise ValueError("closed needs both 'from' and 'to'")
        return self


class HoursEntry(Cited):
    """hours.yml: an opening-hours schedule, as text and as rules."""

    id: Id
    text: Text
    text_en: str = ""
    days: list[Day] = []
    weeks: list[Annotated[int, Field(ge=1, le=5)]] = []  # of the month
    open: Clock = ""
    close: Clock = ""
    closed: Closures | None = None

    def add_to(self, catalog: Catalog, origin: str) -> None:
        catalog.hours[self.id] = self
        catalog.kb.hours[self.id] = self.text
        closed = self.closed
        catalog.kb.schedules[self.id] = _record(
            Schedule,
            self,
            closed_on_holidays=bool(closed and closed.holidays),
            closed_span=(closed.from_, closed.to) if closed and closed.from_ and closed.to else None,
        )


class OfficeEntry(Cited):
    """offices.yml: an office or facility."""

    id: Id
    name: Text
    name_en: str = ""
    kind: Text
    ward: Ward | None = None
    wards: list[Ward] = []
    address: str = ""
    hours: list[HoursId] = []
    phone: str = ""
    status: Literal["open", "closed"] = "open"
    closed: str = ""  # when it closed
    opened: str = ""  # when it opened (kept for editors; answers do not say it)
    note: str = ""
    note_source: SourceRef | None = None

    def add_to(self, catalog: Catalog, origin: str) -> None:
        catalog.kb.offices[self.id] = _record(
            Office,
            self,
            wards=tuple(self.wards) or ((self.ward,) if self.ward else ()),
            source=catalog.source(self.source),
            hours=catalog.hour_texts(self.hours),
            hours_en=catalog.hour_texts(self.hours, english=True),
            hour_ids=tuple(self.hours),
            origin=origin,
        )


class CounterEntry(Cited):
    """counters.yml: a counter inside an office (課・担当・センター)."""

    id: Id
    name: Text
    name_en: str = ""
    at: Text  # kind of office
    section: str = ""
    handles: Text
    hours: list[HoursId] = []

    def add_to(self, catalog: Catalog, origin: str) -> None:
        catalog.kb.counters[self.id] = _record(
            Counter,
            self,
            source=catalog.source(self.source),
            hours=catalog.hour_texts(self.hours),
            hours_en=catalog.hour_texts(self.hours, english=True),
            hour_ids=tuple(self.hours),
            origin=origin,
        )


class Topic(Cited):
    """What procedures and referrals share: how residents name and ask about the matter."""

    id: Id
    name: Text
    name_en: str = ""
    aliases: list[str] = []
    aliases_en: list[str] = []
    questions: list[str] = []


class NotAtEntry(Schema):
    """Where a procedure is no longer handled."""

    kinds: list[str] = []
    note: str = ""
    source: SourceRef


class ServiceEntry(Topic):
    """services.yml: a procedure residents ask about."""

    counter: CounterId | None = None
    offices: list[str] = Field(min_length=1)  # kinds of office that handle it, usual first
    office_ids: list[OfficeId] = []  # fixed offices, e.g. a 局
    not_at: NotAtEntry | None = None
    bring: list[str] = []
    alternatives: str = ""
    deadline: str = ""
    note: str = ""

    def add_to(self, catalog: Catalog, origin: str) -> None:
        gone = self.not_at
        not_at = _record(NotAt, gone, source=catalog.source(gone.source)) if gone else None
        catalog.kb.services[self.id] = _record(
            Service,
            self,
            source=catalog.source(self.source),
            counter=catalog.kb.counters.get(self.counter or ""),
            office_kinds=tuple(self.offices),
            not_at=not_at,
            origin=origin,
        )


class ReferralEntry(Topic):
    """referrals.yml: a matter residents bring to the ward office that another body handles."""

    handled_by: Text
    handled_by_en: str = ""
    where: Text  # where to go, plainly
    ward_office_part: str = ""  # what the ward office contributes, e.g. 戸籍謄本
    services: list[ServiceId] = []

    def add_to(self, catalog: Catalog, origin: str) -> None:
        catalog.kb.referrals[self.id] = _record(
            Referral, self, source=catalog.source(self.source), origin=origin
        )


class FaqEntry(Cited):
    """faq.yml: a question and its answer."""

    id: Id
    questions: list[str] = Field(min_length=1)
    answer: Text
    services: list[ServiceId] = []  # related procedures: the answer names their counter

    def add_to(self, catalog: Catalog, origin: str) -> None:
        catalog.kb.faqs[self.id] = _record(Faq, self, source=catalog.source(self.source), origin=origin)


class PolicyEntry(Cited):
    """policy.yml: a chunk of the reform policy, in document order."""

    id: Id
    chapter: str = ""
    section: str = ""
    heading: str = ""
    above: list[str] = []  # headings without text of their own just before this one
    cite: Text
    text: Text

    def add_to(self, catalog: Catalog, origin: str) -> None:
        catalog.kb.policy[self.id] = _record(
            PolicyChunk, self, source=catalog.source(self.source), origin=origin
        )


class TownEntry(Schema):
    name: Text
    reading: str = ""  # hiragana, for kana-only input
    kind: str = ""  # 駅 or 地区


class TownsEntry(Cited):
    """towns.yml: one ward's towns and stations."""

    ward: Ward
    ward_en: str = ""
    towns: list[TownEntry] = Field(min_length=1)

    def add_to(self, catalog: Catalog, origin: str) -> None:
        if self.ward_en:
            catalog.kb.ward_names_en[self.ward] = self.ward_en
        source = catalog.source(self.source)
        catalog.kb.towns += [_record(Town, t, ward=self.ward, source=source) for t in self.towns]


class ContactEntry(Schema):
    name: str = ""
    phone: str = ""
    note: str = ""
    source: SourceRef


class SensitiveEntry(Entry):
    """sensitive.yml: a topic where specialist contacts come first."""

    id: Id
    label: Text
    keywords: list[str] = Field(min_length=1)
    contacts: list[ContactEntry] = Field(min_length=1)
    counter: CounterId | None = None

    def add_to(self, catalog: Catalog, origin: str) -> None:
        contacts = tuple(_record(Contact, c, source=catalog.source(c.source)) for c in self.contacts)
        counter = catalog.kb.counters.get(self.counter or "")
        catalog.kb.sensitive.append(
            _record(SensitiveTopic, self, contacts=contacts, counter=counter, origin=origin)
        )


# notices: board answers (issue 18)
ShelterKind = Literal["指定避難所", "指定緊急避難場所", "広域避難場所", "津波避難施設", "福祉避難所"]


class ShelterEntry(Cited):
    """shelters.yml: a shelter or evacuation site the city designates (no `ward`: citywide)."""

    id: Id
    name: Text
    name_en: str = ""
    kind: ShelterKind
    ward: Ward | None = None
    address: str = ""
    note: str = ""

    def add_to(self, catalog: Catalog, origin: str) -> None:
        catalog.kb.shelters.append(_record(Shelter, self, source=catalog.source(self.source), origin=origin))


# Each file's model, in the order records are built: counters before the services and sensitive
# topics that hold them, schedules and sources before everything that names them.
FILES: dict[str, type[Entry]] = {
    "sources.yml": SourceEntry,
    "hours.yml": HoursEntry,
    "offices.yml": OfficeEntry,
    "counters.yml": CounterEntry,
    "services.yml": ServiceEntry,
    "referrals.yml": ReferralEntry,
    "faq.yml": FaqEntry,
    "policy.yml": PolicyEntry,
    "towns.yml": TownsEntry,
    "sensitive.yml": SensitiveEntry,
    # notices: board answers (issue 18)
    "shelters.yml": ShelterEntry,
}


def is_list(model: type[BaseModel], name: str) -> bool:
    """Whether a field holds a list (the staff console edits it one item per line)."""
    return get_origin(model.model_fields[name].annotation) is list
