"""Turn knowledge records into searchable documents with several 'views' each.

A view is one text the encoders embed: a question variant (embedded like a resident's
question) or a passage (an answer or description). A document scores by its best view.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bot.japanese import sentences
from bot.knowledge import KnowledgeBase
from bot.knowledge.model import Referral, Service


@dataclass(frozen=True)
class View:
    text: str
    role: str  # "query" for question-like texts, "passage" for answers


@dataclass(frozen=True)
class Document:
    id: str  # "<kind>:<knowledge id>"
    kind: str  # service | referral | faq | policy | office
    title: str
    views: tuple[View, ...]
    names: tuple[str, ...] = ()  # the entry's name and aliases: a question that says one is about it

    @property
    def ref(self) -> str:
        return self.id.split(":", 1)[1]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict) -> Document:
        return cls(
            id=raw["id"],
            kind=raw["kind"],
            title=raw["title"],
            views=tuple(View(**v) for v in raw["views"]),
            names=tuple(raw.get("names", ())),
        )


def _names(entry: Service | Referral) -> tuple[str, ...]:
    """What a resident may call an entry: its name and aliases, in Japanese and in English."""
    english = (entry.name_en, *entry.aliases_en) if entry.name_en else ()
    return (entry.name, *entry.aliases, *english)


def documents_from(kb: KnowledgeBase) -> list[Document]:
    docs: list[Document] = []
    for s in kb.services.values():
        views = [View(" ".join((s.name, *s.aliases)), "query")]
        views += [View(q, "query") for q in s.questions]
        if s.name_en:  # foreign residents ask in English
            views.append(View(", ".join((s.name_en, *s.aliases_en)), "query"))
        desc = f"{s.name}。"
        if s.counter:
            desc += f"担当は{s.counter.name}（{s.counter.handles}）。"
        if s.note:
            desc += s.note
        views.append(View(desc, "passage"))
        docs.append(Document(f"service:{s.id}", "service", s.name, tuple(views), _names(s)))
    for r in kb.referrals.values():
        views = [View(" ".join((r.name, *r.aliases)), "query")]
        views += [View(q, "query") for q in r.questions]
        if r.name_en:
            views.append(View(", ".join((r.name_en, *r.aliases_en)), "query"))
        views.append(View(f"{r.name}。{r.handled_by}が扱います。{r.where}", "passage"))
        docs.append(Document(f"referral:{r.id}", "referral", r.name, tuple(views), _names(r)))
    for f in kb.faqs.values():
        views = [View(q, "query") for q in f.questions] + [View(f.answer, "passage")]
        docs.append(Document(f"faq:{f.id}", "faq", f.questions[0], tuple(views)))
    for p in kb.policy.values():
        views = [View(p.heading, "query"), View(f"{p.heading}\n{p.text}", "passage")]
        if p.context:  # the headings above say what a sub-heading's table is about
            views.append(View(f"{p.context} {p.heading}", "query"))
        parts = sentences(p.text)
        if len(parts) > 1:  # a question about one fact meets the sentence that holds it
            views += [View(sentence, "passage") for sentence in parts]
        docs.append(Document(f"policy:{p.id}", "policy", p.cite, tuple(views)))
    for o in kb.offices.values():
        views = [View(f"{o.name} {o.kind} {' '.join(o.wards) if len(o.wards) == 1 else ''}".strip(), "query")]
        if o.name_en:
            views.append(View(o.name_en, "query"))
        if o.note:
            views.append(View(f"{o.name}。{o.note}", "passage"))
        docs.append(Document(f"office:{o.id}", "office", o.name, tuple(views), (o.name,)))
    return docs
