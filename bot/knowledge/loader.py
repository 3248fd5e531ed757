"""Load knowledge/*.yml into a KnowledgeBase, reporting every problem as file:line."""

from __future__ import annotations

import dataclasses
import difflib
import re
from pathlib import Path
from typing import Any

import yaml

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
    Source,
    Town,
)

_LINE = "__line__"


class KnowledgeError(Exception):
    """The knowledge folder has problems; `problems` lists them as 'file:line: message'."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records the line of every mapping, for editor-friendly errors."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping[_LINE] = node.start_mark.line + 1
        return mapping


class _Reader:
    """Collects problems while turning raw mappings into records."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.problems: list[str] = []
        self.sources: dict[str, dict[str, Any]] = {}
        self.hours: dict[str, str] = {}
        self.hours_en: dict[str, str] = {}
        self.schedules: dict[str, Schedule] = {}
        self.awaiting_review: dict[str, int] = {}

    def read(self, name: str) -> list[dict[str, Any]]:
        path = self.folder / name
        if not path.exists():
            return []
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark else 0
            self.problems.append(f"{name}:{line}: YAML error: {exc}")
            return []
        if data is None:
            return []
        if not isinstance(data, list):
            self.problems.append(f"{name}:1: expected a list of entries")
            return []
        items = [item for item in data if isinstance(item, dict)]
        for item in items:
            item["__file__"] = name
            self._check_keys(name, item)
        flagged = sum(1 for item in items if item.get("review"))
        if flagged:
            self.awaiting_review[name] = flagged
        return items

    def where(self, item: dict[str, Any]) -> str:
        return f"{item.get('__file__', '?')}:{item.get(_LINE, 0)}"

    def _check_keys(self, name: str, item: dict[str, Any]) -> None:
        """A misspelt key (`reveiw:`) would silently drop what it holds: report it, with the key
        it was probably meant to be."""
        known = KNOWN_KEYS.get(name)
        if known is None:
            return
        for key in item:
            if key in known or key in ("__file__", _LINE):
                continue
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.problems.append(f"{self.where(item)}: unknown key '{key}'{hint}")

    def require(self, item: dict[str, Any], *keys: str) -> bool:
        missing = [k for k in keys if not item.get(k)]
        for key in missing:
            self.problems.append(f"{self.where(item)}: missing '{key}' in entry {item.get('id', '')!r}")
        return not missing

    def source(self, item: dict[str, Any], key: str = "source") -> Source:
        raw = item.get(key)
        if not raw:
            self.problems.append(
                f"{self.where(item)}: missing '{key}' in entry {item.get('id', item.get('name', ''))!r}"
            )
            return Source(id="", title="", url=None)
        sid, _, section = str(raw).partition("/")
        sid, section = sid.strip(), section.strip()
        meta = self.sources.get(sid)
        if meta is None:
            self.problems.append(f"{self.where(item)}: unknown source {sid!r} (see sources.yml)")
            return Source(id=sid, title=sid, url=None, section=section)
        return Source(id=sid, title=meta["title"], url=meta.get("url"), section=section)

    def hour_texts(self, item: dict[str, Any], english: bool = False) -> tuple[str, ...]:
        texts = []
        for hid in item.get("hours") or []:
            if hid not in self.hours:
                if not english:
                    self.problems.append(f"{self.where(item)}: unknown hours {hid!r} (see hours.yml)")
            else:
                texts.append(self.hours_en.get(hid, self.hours[hid]) if english else self.hours[hid])
        return tuple(texts)

    def ward_list(self, item: dict[str, Any]) -> tuple[str, ...]:
        wards = tuple(item.get("wards") or ([item["ward"]] if item.get("ward") else []))
        for ward in wards:
            if ward not in WARDS:
                self.problems.append(f"{self.where(item)}: unknown ward {ward!r}")
        return wards


# The keys each knowledge file's entries may have (knowledge/README.md says what they hold).
_COMMON_KEYS = frozenset({"id", "source", "review"})
KNOWN_KEYS: dict[str, frozenset[str]] = {
    "sources.yml": _COMMON_KEYS | {"title", "url"},
    "hours.yml": _COMMON_KEYS | {"text", "text_en", "days", "weeks", "open", "close", "closed"},
    "offices.yml": _COMMON_KEYS | {"name", "name_en", "kind", "ward", "wards", "address", "hours", "phone",
                                   "status", "closed", "opened", "note", "note_source"},
    "counters.yml": _COMMON_KEYS | {"name", "name_en", "at", "handles", "hours", "section"},
    "services.yml": _COMMON_KEYS | {"name", "name_en", "aliases", "aliases_en", "questions", "counter",
                                    "offices", "office_ids", "bring", "alternatives", "not_at", "deadline",
                                    "note"},
    "referrals.yml": _COMMON_KEYS | {"name", "name_en", "aliases", "aliases_en", "questions", "handled_by",
                                     "handled_by_en", "where", "ward_office_part", "services"},
    "faq.yml": _COMMON_KEYS | {"questions", "answer", "services"},
    "policy.yml": _COMMON_KEYS | {"chapter", "section", "heading", "above", "cite", "text"},
    "sensitive.yml": _COMMON_KEYS | {"label", "keywords", "contacts", "counter"},
    "towns.yml": {"ward", "ward_en", "towns", "source", "review"},
}  # fmt: skip


def _closures(reader: _Reader, item: dict[str, Any]) -> dict[str, Any]:
    """`closed: {holidays: true, from: "12-29", to: "01-03", source: …}` as Schedule fields."""
    closed = item.get("closed") or {}
    if closed:
        reader.source({**item, "source": closed.get("source")})  # reported at the schedule's line
    span = (str(closed["from"]), str(closed["to"])) if closed.get("from") and closed.get("to") else None
    for day in span or ():
        if not re.fullmatch(r"(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", day):
            reader.problems.append(f"{reader.where(item)}: closed day {day!r} is not MM-DD")
            span = None
    return {"closed_on_holidays": bool(closed.get("holidays")), "closed_span": span}


def _strs(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _topic_fields(reader: _Reader, item: dict[str, Any]) -> dict[str, Any]:
    """What procedures and referrals share: how residents name and ask about the matter."""
    return {
        "id": item["id"],
        "name": item["name"],
        "source": reader.source(item),
        "aliases": _strs(item.get("aliases")),
        "questions": _strs(item.get("questions")),
        "name_en": item.get("name_en", ""),
        "aliases_en": _strs(item.get("aliases_en")),
        "review": bool(item.get("review")),
        "origin": reader.where(item),
    }


def _check_services(reader: _Reader, item: dict[str, Any], kb: KnowledgeBase) -> None:
    for sid in _strs(item.get("services")):
        if sid not in kb.services:
            reader.problems.append(f"{reader.where(item)}: unknown service {sid!r}")


def _check_unique(reader: _Reader, items: list[dict[str, Any]], seen: dict[str, str]) -> None:
    for item in items:
        key = item.get("id")
        if key is None:
            continue
        if key in seen:
            reader.problems.append(f"{reader.where(item)}: duplicate id {key!r} (first at {seen[key]})")
        else:
            seen[key] = reader.where(item)


def load_knowledge(folder: Path, strict: bool = True) -> KnowledgeBase:
    """Read the knowledge folder. With strict, any problem raises KnowledgeError."""
    reader = _Reader(Path(folder))
    kb = KnowledgeBase()
    for item in reader.read("sources.yml"):
        if reader.require(item, "id", "title"):
            reader.sources[item["id"]] = item
    for item in reader.read("hours.yml"):
        if reader.require(item, "id", "text"):
            reader.source(item)
            reader.hours[item["id"]] = item["text"]
            reader.schedules[item["id"]] = Schedule(
                id=item["id"],
                text=item["text"],
                days=_strs(item.get("days")),
                weeks=tuple(int(w) for w in item.get("weeks") or ()),
                open=str(item.get("open", "")),
                close=str(item.get("close", "")),
                **_closures(reader, item),
            )
            if item.get("text_en"):
                reader.hours_en[item["id"]] = item["text_en"]

    offices, counters = reader.read("offices.yml"), reader.read("counters.yml")
    services, faqs, policy = reader.read("services.yml"), reader.read("faq.yml"), reader.read("policy.yml")
    referrals = reader.read("referrals.yml")
    seen: dict[str, str] = {}
    for group in (offices, counters, services, referrals, faqs, policy):
        _check_unique(reader, group, seen)

    for item in offices:
        if not reader.require(item, "id", "name", "kind"):
            continue
        kb.offices[item["id"]] = Office(
            id=item["id"],
            name=item["name"],
            kind=item["kind"],
            wards=reader.ward_list(item),
            source=reader.source(item),
            address=item.get("address", ""),
            hours=reader.hour_texts(item),
            hours_en=reader.hour_texts(item, english=True),
            hour_ids=_strs(item.get("hours")),
            name_en=item.get("name_en", ""),
            phone=str(item.get("phone", "")),
            status=item.get("status", "open"),
            closed=item.get("closed", ""),
            note=item.get("note", ""),
            review=bool(item.get("review")),
            origin=reader.where(item),
        )
    for item in counters:
        if not reader.require(item, "id", "name", "at", "handles"):
            continue
        kb.counters[item["id"]] = Counter(
            id=item["id"],
            name=item["name"],
            at=item["at"],
            handles=item["handles"],
            source=reader.source(item),
            section=item.get("section", ""),
            hours=reader.hour_texts(item),
            hours_en=reader.hour_texts(item, english=True),
            hour_ids=_strs(item.get("hours")),
            name_en=item.get("name_en", ""),
            origin=reader.where(item),
        )
    for item in services:
        if not reader.require(item, "id", "name", "offices"):
            continue
        counter = None
        if item.get("counter"):
            counter = kb.counters.get(item["counter"])
            if counter is None:
                reader.problems.append(f"{reader.where(item)}: unknown counter {item['counter']!r}")
        for oid in _strs(item.get("office_ids")):
            if oid not in kb.offices:
                reader.problems.append(f"{reader.where(item)}: unknown office {oid!r}")
        not_at = None
        if item.get("not_at"):
            raw = item["not_at"]
            raw.setdefault("__file__", item["__file__"])
            not_at = NotAt(kinds=_strs(raw.get("kinds")), note=raw.get("note", ""), source=reader.source(raw))
        kb.services[item["id"]] = Service(
            **_topic_fields(reader, item),
            counter=counter,
            office_kinds=_strs(item.get("offices")),
            office_ids=_strs(item.get("office_ids")),
            not_at=not_at,
            bring=_strs(item.get("bring")),
            alternatives=item.get("alternatives", ""),
            deadline=item.get("deadline", ""),
            note=item.get("note", ""),
        )
    for item in referrals:
        if not reader.require(item, "id", "name", "handled_by", "where"):
            continue
        _check_services(reader, item, kb)
        kb.referrals[item["id"]] = Referral(
            **_topic_fields(reader, item),
            handled_by=item["handled_by"],
            where=item["where"],
            handled_by_en=item.get("handled_by_en", ""),
            ward_office_part=item.get("ward_office_part", ""),
            services=_strs(item.get("services")),
        )
    for item in faqs:
        if not reader.require(item, "id", "questions", "answer"):
            continue
        _check_services(reader, item, kb)
        kb.faqs[item["id"]] = Faq(
            id=item["id"],
            questions=_strs(item["questions"]),
            answer=item["answer"],
            source=reader.source(item),
            services=_strs(item.get("services")),
            origin=reader.where(item),
        )
    for item in policy:
        if not reader.require(item, "id", "text", "cite"):
            continue
        kb.policy[item["id"]] = PolicyChunk(
            id=item["id"],
            chapter=item.get("chapter", ""),
            section=item.get("section", ""),
            heading=item.get("heading", ""),
            above=_strs(item.get("above")),
            cite=item["cite"],
            text=item["text"],
            source=reader.source(item),
            origin=reader.where(item),
        )
    _add_heading_context(kb.policy)
    for group in reader.read("towns.yml"):
        if not reader.require(group, "ward", "towns"):
            continue
        (ward,) = reader.ward_list(group) or ("",)
        src = reader.source(group)
        if group.get("ward_en"):
            kb.ward_names_en[ward] = group["ward_en"]
        for town in group["towns"]:
            kb.towns.append(
                Town(
                    name=town["name"],
                    reading=town.get("reading", ""),
                    ward=ward,
                    kind=town.get("kind", ""),
                    source=src,
                )
            )
    for item in reader.read("sensitive.yml"):
        if not reader.require(item, "id", "label", "keywords", "contacts"):
            continue
        contacts = []
        for raw in item["contacts"]:
            raw.setdefault("__file__", item["__file__"])
            contacts.append(
                Contact(
                    name=raw.get("name", ""),
                    phone=str(raw.get("phone", "")),
                    note=raw.get("note", ""),
                    source=reader.source(raw),
                )
            )
        counter = kb.counters.get(item.get("counter", "")) if item.get("counter") else None
        if item.get("counter") and counter is None:
            reader.problems.append(f"{reader.where(item)}: unknown counter {item['counter']!r}")
        kb.sensitive.append(
            SensitiveTopic(
                id=item["id"],
                label=item["label"],
                keywords=_strs(item["keywords"]),
                contacts=tuple(contacts),
                counter=counter,
                origin=reader.where(item),
            )
        )
    kb.hours = dict(reader.hours)
    kb.schedules = dict(reader.schedules)
    kb.awaiting_review = dict(reader.awaiting_review)
    if strict and reader.problems:
        raise KnowledgeError(reader.problems)
    return kb


# How deep a policy heading is, by its numbering: 「1 」 > 「(1)」 > 「ア 」 > 「(ア)」 > the rest (【】 ●).
_HEADING_LEVELS = (
    re.compile(r"^\d+ "),
    re.compile(r"^[(（]\d+[)）]"),
    re.compile(r"^[ア-ン] "),
    re.compile(r"^[(（][ア-ン][)）]"),
)


def _heading_level(heading: str) -> int:
    return next((i for i, p in enumerate(_HEADING_LEVELS) if p.match(heading)), len(_HEADING_LEVELS))


def _add_heading_context(policy: dict[str, PolicyChunk]) -> None:
    """Give each chunk the section and the nearest heading of every higher level before it in its
    section (chunks are in document order; a chunk's `above` headings stand just before its own)."""
    chunks = list(policy.values())
    for i, chunk in enumerate(chunks):
        level, above = _heading_level(chunk.heading), []
        before_it = [*reversed(chunk.above)]
        for before in reversed(chunks[:i]):
            if before.section != chunk.section:
                break
            before_it += [before.heading, *reversed(before.above)]
        for heading in before_it:
            if _heading_level(heading) < level:
                level = _heading_level(heading)
                above.insert(0, heading)
        context = " ".join([chunk.section, *above]).strip()
        policy[chunk.id] = dataclasses.replace(chunk, context=context)
