"""Compose the resident-facing reply from a retrieval hit: office, counter, ward, hours, source.

All facts come from the knowledge base; this module only decides what to say in which order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.knowledge import WARDS, Faq, KnowledgeBase, Office, Service, Source
from bot.retrieval.index import Hit

HANDOFF_BUTTON = {"title": "担当者と話したい", "payload": "/request_human"}
POLICY_EXCERPT_CHARS = 240


def ward_buttons() -> list[dict[str, str]]:
    return [{"title": w, "payload": f'/inform_ward{{"ward": "{w}"}}'} for w in WARDS]


@dataclass
class Answer:
    text: str
    sources: list[Source] = field(default_factory=list)
    office: str | None = None
    counter: str | None = None
    ward: str | None = None
    buttons: list[dict[str, str]] = field(default_factory=list)
    unresolved: bool = False
    handoff: bool = False
    confidence: float = 0.0
    entry: str | None = None  # id of the knowledge entry answered from

    def payload(self) -> dict:
        """Structured part of the reply (REST 'custom'): for cards, the CLI and the logs."""
        seen, sources = set(), []
        for s in self.sources:
            if s.label not in seen:
                seen.add(s.label)
                sources.append(s.as_dict())
        return {
            "office": self.office,
            "counter": self.counter,
            "ward": self.ward,
            "sources": sources,
            "handoff": self.handoff,
            "unresolved": self.unresolved,
            "confidence": self.confidence,
            "entry": self.entry,
        }


def _source_line(sources: list[Source]) -> str:
    labels = list(dict.fromkeys(s.label for s in sources))
    return "出典: " + "／".join(labels)


def _office_line(office: Office) -> str:
    return f"{office.name}（{office.address}）" if office.address else office.name


class AnswerComposer:
    def __init__(self, kb: KnowledgeBase, min_confidence: float) -> None:
        self.kb = kb
        self.min_confidence = min_confidence

    def compose(self, hit: Hit | None, ward: str | None, intent: str | None = None) -> Answer:
        if hit is None or hit.confidence < self.min_confidence:
            return self.unresolved(ward, hit.confidence if hit else 0.0)
        kind, ref = hit.doc.kind, hit.doc.ref
        if kind == "service":
            answer = self.service(self.kb.services[ref], ward, intent)
        elif kind == "office":
            answer = self.office(self.kb.offices[ref])
        elif kind == "faq":
            answer = self.faq(self.kb.faqs[ref], ward)
        else:
            chunk = self.kb.policy[ref]
            excerpt = (
                chunk.text
                if len(chunk.text) <= POLICY_EXCERPT_CHARS
                else (chunk.text[:POLICY_EXCERPT_CHARS] + "…")
            )
            answer = Answer(text=f"{chunk.cite}「{chunk.heading}」より:\n{excerpt}", sources=[chunk.source])
        answer.confidence, answer.entry = hit.confidence, hit.doc.id
        answer.ward = answer.ward or ward
        answer.text += "\n" + _source_line(answer.sources)
        return answer

    def unresolved(self, ward: str | None, confidence: float) -> Answer:
        text = (
            "申し訳ありません。そのご質問にお答えできる情報が見つかりませんでした。\n"
            "言い方を変えてもう一度お聞きいただくか、「担当者と話したい」と送ってください。"
        )
        return Answer(text=text, ward=ward, buttons=[HANDOFF_BUTTON], unresolved=True, confidence=confidence)

    def office(self, office: Office) -> Answer:
        if not office.is_open:
            text = f"{office.name}は{office.closed}に廃止されました。{office.note}"
        else:
            text = f"{_office_line(office)}についてのご案内です。"
            if office.hours:
                text += "\n受付時間: " + "／".join(office.hours)
            if office.note:
                text += "\n" + office.note
        ward = office.wards[0] if len(office.wards) == 1 else None
        return Answer(text=text, sources=[office.source], office=office.name, ward=ward)

    def _offices_for(self, service: Service, ward: str | None) -> list[Office]:
        """Where this resident goes: fixed offices of the service, else those of their ward."""
        offices = [self.kb.offices[o] for o in service.office_ids]
        if not offices and ward:
            offices = self.kb.offices_in(ward, service.office_kinds)
        return offices

    @staticmethod
    def _counter_phrase(service: Service) -> str:
        counter = service.counter
        if counter is None:
            return "担当窓口"
        return f"{counter.section}の{counter.name}" if counter.section else counter.name

    def faq(self, faq: Faq, ward: str | None) -> Answer:
        """The FAQ answer, plus the counter of the first service it relates to."""
        answer = Answer(text=faq.answer, sources=[faq.source])
        if faq.services and faq.services[0] in self.kb.services:
            service = self.kb.services[faq.services[0]]
            offices = self._offices_for(service, ward)
            place = _office_line(offices[0]) if offices else "お住まいの区の区役所"
            answer.text += f"\n担当窓口: {place}の{self._counter_phrase(service)}（{service.name}）"
            answer.office = offices[0].name if offices else None
            answer.counter = service.counter.name if service.counter else None
            answer.sources.append(service.source)
        return answer

    def service(self, service: Service, ward: str | None, intent: str | None) -> Answer:
        counter = service.counter
        sources = [service.source]
        lines: list[str] = []
        where = self._counter_phrase(service)
        offices = self._offices_for(service, ward)
        main = offices[0] if offices else None
        buttons: list[dict[str, str]] = []
        if main and main.kind == "区役所":
            lines.append(f"「{service.name}」は、{_office_line(main)}の{where}で受け付けています。")
        elif main:
            lines.append(f"「{service.name}」は、{_office_line(main)}で受け付けています。")
        else:
            kinds = "・".join(service.office_kinds[:1]) or "区役所"
            lines.append(f"「{service.name}」は、お住まいの区の{kinds}の{where}で受け付けています。")
            elsewhere = [k for k in service.office_kinds[1:] if k != "コンビニ"]
            if elsewhere:
                lines.append("・".join(elsewhere) + "でも手続きできます。")
            if "区役所" in service.office_kinds:
                lines.append("お住まいの区を教えていただければ、窓口の場所と受付時間をご案内します。")
                buttons = ward_buttons()
        others = [o for o in offices[1:] if o.kind not in ("区役所", "コンビニ")]
        if others:
            lines.append("ほかに " + "、".join(o.name for o in others) + " でも手続きできます。")
        if "コンビニ" in service.office_kinds and not service.alternatives:
            lines.append("コンビニ交付（マイナンバーカードが必要）も利用できます。")
        if service.not_at:
            lines.append(service.not_at.note)
            sources.append(service.not_at.source)
        hours = (counter.hours if counter and main and main.kind == counter.at else ()) or (
            main.hours if main else ()
        )
        if hours:
            lines.append("受付時間: " + "／".join(hours))
        if service.bring:
            lines.append("お持ちいただくもの: " + "、".join(service.bring))
        if service.deadline:
            lines.append("期限: " + service.deadline)
        if service.alternatives:
            lines.append(service.alternatives)
        if service.note:
            lines.append(service.note)
        if main:
            sources.append(main.source)
        if counter:
            sources.append(counter.source)
        return Answer(
            text="\n".join(lines),
            sources=sources,
            office=main.name if main else None,
            counter=counter.name if counter else None,
            ward=ward,
            buttons=buttons,
        )

    def hours(self, ward: str | None) -> Answer:
        """Opening hours of the resident's ward office, or of ward offices in general."""
        office = self.kb.ward_office(ward) if ward else None
        if office:
            text = f"{_office_line(office)}の受付時間は次のとおりです。\n" + "\n".join(office.hours)
            return Answer(
                text=text + "\n" + _source_line([office.source]),
                sources=[office.source],
                office=office.name,
                ward=ward,
            )
        any_office = self.kb.ward_office(WARDS[0])
        hours = any_office.hours if any_office else ()
        text = "区役所の受付時間は次のとおりです。\n" + "\n".join(hours)
        text += "\nお住まいの区を教えていただければ、その区役所の場所もご案内します。"
        sources = [any_office.source] if any_office else []
        return Answer(text=text + "\n" + _source_line(sources), sources=sources, buttons=ward_buttons())
