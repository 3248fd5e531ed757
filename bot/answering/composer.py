"""Compose the resident-facing reply from a retrieval hit: office, counter, ward, hours, source.

All facts come from the knowledge base; this module only decides what to say in which order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from bot.answering.policy_facts import best_sentence
from bot.japanese import nfkc
from bot.knowledge import WARDS, Counter, Faq, KnowledgeBase, Office, PolicyChunk, Referral, Service, Source
from bot.payloads import OFFERS
from bot.phrases import PHRASES, bilingual
from bot.retrieval.index import Hit

# Payloads come from their declarations in bot/payloads.py: the residents' channel accepts those.
HANDOFF_BUTTON = {"title": "担当者と話したい", "payload": OFFERS["request_human"].payload()}
# 「別の区」: the ward intent without a ward; the bot asks which, then answers the same question there.
OTHER_WARD_PAYLOAD = OFFERS["inform_ward"].payload()
# A plain link to a map search for the office address (opened by the resident, never fetched here).
MAP_URL = "https://www.google.com/maps/search/?api=1&query={query}"
POLICY_EXCERPT_CHARS = 240
# A question about what to bring (then that is the fact the answer's text gives).
BRING_CUES = ("持ち物", "持っていく", "持って行く", "必要なもの", "必要な物", "必要書類", "what to bring")
HOURS_CUES = ("受付時間", "何時", "開いて", "開庁", "hours", "open")


def choice_title(doc) -> str:
    """What a 「もしかして」 button says (and sends back): the entry's own name (a policy chunk's
    heading rather than its citation)."""
    return doc.views[0].text if doc.kind == "policy" else doc.title.split("\n", 1)[0]


def ward_buttons() -> list[dict[str, str]]:
    return [{"title": w, "payload": OFFERS["inform_ward"].payload(ward=w)} for w in WARDS]


@dataclass
class Answer:
    text: str
    sources: list[Source] = field(default_factory=list)
    office: str | None = None
    counter: str | None = None  # its name, as cards and tickets show it
    counter_id: str | None = None  # what the dialogue remembers (the `last_counter` slot)
    ward: str | None = None
    buttons: list[dict[str, str]] = field(default_factory=list)
    unresolved: bool = False
    handoff: bool = False
    confidence: float = 0.0
    entry: str | None = None  # id of the knowledge entry answered from
    address: str = ""
    hours: list[str] = field(default_factory=list)
    bring: list[str] = field(default_factory=list)
    lang: str = "ja"  # the language it is written in (what the actions add follows it)

    def card(self) -> dict | None:
        """The office card the widget and LINE show: where to go, when, what to bring, source."""
        if not (self.office or self.counter):
            return None
        map_url = MAP_URL.format(query=quote(self.address)) if self.address else None
        first = self.sources[0] if self.sources else None
        sources = list({s.label: s.as_dict() for s in self.sources}.values())
        return {
            "office": self.office,
            "counter": self.counter,
            "ward": self.ward,
            "address": self.address,
            "hours": self.hours,
            "bring": self.bring,
            "map_url": map_url,
            "source": first.as_dict() if first else None,
            "sources": sources,
        }

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
            "card": self.card(),
        }


@dataclass(frozen=True)
class PolicyQuote:
    """The sentence of a policy chunk (with its neighbour when short) that answers a question."""

    chunk: PolicyChunk
    sentence: str


def _excerpt(text: str) -> str:
    return text if len(text) <= POLICY_EXCERPT_CHARS else text[:POLICY_EXCERPT_CHARS] + "…"


def _source_line(sources: list[Source], p: dict[str, str]) -> str:
    """One short line: the first source's document and section number (the card lists them all)."""
    labels = list(dict.fromkeys(s.short_label for s in sources))
    more = p["source_more"] if len(labels) > 1 else ""
    return p["source"].format(sources=labels[0] + more) if labels else ""


class AnswerComposer:
    def __init__(self, kb: KnowledgeBase, min_confidence: float) -> None:
        self.kb = kb
        self.min_confidence = min_confidence

    def compose(
        self,
        hit: Hit | None,
        ward: str | None,
        intent: str | None = None,
        lang: str = "ja",
        question: str = "",
        policy_quote: PolicyQuote | None = None,
    ) -> Answer:
        """The reply for the best entry; `policy_quote` is the policy sentence that answers the question
        (the policy chunk's own, or a fact to add to an FAQ or a service)."""
        p = PHRASES[lang]
        if hit is None or hit.confidence < self.min_confidence:
            return self.unresolved(ward, hit.confidence if hit else 0.0, lang)
        kind, ref = hit.doc.kind, hit.doc.ref
        if kind == "service":
            answer = self.service(self.kb.services[ref], ward, intent, lang, question)
        elif kind == "referral":
            answer = self.referral(self.kb.referrals[ref], ward, lang)
        elif kind == "office":
            answer = self.office(self.kb.offices[ref], lang)
        elif kind == "faq":
            answer = self.faq(self.kb.faqs[ref], ward, lang)
        else:
            chunk = self.kb.policy[ref]
            if policy_quote is None or policy_quote.chunk.id != chunk.id:
                sentence = best_sentence(question, chunk.text) if question else chunk.text
                policy_quote = PolicyQuote(chunk, sentence)
            answer = self.policy(policy_quote, lang)
        if policy_quote is not None and kind != "policy":
            # the entry says where or what; the policy sentence holds the asked date or figure
            answer.text += "\n" + self._policy_quote(policy_quote, lang)
            answer.sources.append(policy_quote.chunk.source)
        answer.confidence, answer.entry = hit.confidence, hit.doc.id
        answer.ward = answer.ward or ward
        answer.text += "\n" + _source_line(answer.sources, p)
        return answer

    def policy(self, quote: PolicyQuote, lang: str = "ja", confidence: float | None = None) -> Answer:
        """A sentence of the reform policy, quoted with its chapter (the source line is added by
        compose, or here when a `confidence` says the quote is the whole reply)."""
        answer = Answer(text=self._policy_quote(quote, lang), sources=[quote.chunk.source])
        if confidence is not None:
            answer.confidence, answer.entry = confidence, f"policy:{quote.chunk.id}"
            answer.text += "\n" + _source_line(answer.sources, PHRASES[lang])
        return answer

    @staticmethod
    def _policy_quote(quote: PolicyQuote, lang: str) -> str:
        """The sentence that answers the question (not the chunk's opening), with its citation."""
        chunk = quote.chunk
        return PHRASES[lang]["policy"].format(
            cite=chunk.cite, heading=chunk.heading, excerpt=_excerpt(quote.sentence)
        )

    def uncertain(self, hits: list[Hit], ward: str | None, lang: str = "ja") -> Answer:
        """Several entries are about equally likely and lead to different places: name them
        (「もしかして」) as quick replies, with a person, rather than pick one."""
        titles = list(dict.fromkeys(choice_title(h.doc) for h in hits))
        return Answer(
            text=PHRASES[lang]["not_sure"].format(choices="\n".join(f"・{t}" for t in titles)),
            ward=ward,
            buttons=[{"title": t[:20], "payload": t} for t in titles] + [HANDOFF_BUTTON],
            unresolved=True,
            confidence=hits[0].confidence,
        )

    def unresolved(self, ward: str | None, confidence: float, lang: str = "ja") -> Answer:
        return Answer(
            text=PHRASES[lang]["unresolved"],
            ward=ward,
            buttons=[HANDOFF_BUTTON],
            unresolved=True,
            confidence=confidence,
        )

    def _office_line(self, office: Office, lang: str) -> str:
        name = bilingual(office.name, office.name_en, lang)
        return f"{name}（{office.address}）" if office.address else name

    @staticmethod
    def _hours(holder: Office | Counter, lang: str) -> tuple[str, ...]:
        return holder.hours_en if lang == "en" and holder.hours_en else holder.hours

    def office(self, office: Office, lang: str = "ja") -> Answer:
        p = PHRASES[lang]
        if not office.is_open:
            name = bilingual(office.name, office.name_en, lang)
            text = p["closed"].format(office=name, closed=office.closed, note=office.note)
        else:
            text = p["office_intro"].format(office=self._office_line(office, lang))
            if office.hours:
                text += "\n" + p["hours"].format(hours=p["hours_sep"].join(self._hours(office, lang)))
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
    def _counter_phrase(service: Service, lang: str = "ja") -> str:
        p = PHRASES[lang]
        counter = service.counter
        if counter is None:
            return p["counter_default"]
        name = bilingual(counter.name, counter.name_en, lang)
        return (
            p["counter_in_section"].format(section=counter.section, counter=name) if counter.section else name
        )

    def faq(self, faq: Faq, ward: str | None, lang: str = "ja") -> Answer:
        """The FAQ answer, plus the counter of the first service it relates to."""
        p = PHRASES[lang]
        answer = Answer(text=faq.answer, sources=[faq.source])
        if faq.services and faq.services[0] in self.kb.services:
            service = self.kb.services[faq.services[0]]
            offices = self._offices_for(service, ward)
            place = self._office_line(offices[0], lang) if offices else p["your_ward_office"]
            answer.text += "\n" + p["faq_counter"].format(
                place=place,
                counter=self._counter_phrase(service, lang),
                service=bilingual(service.name, service.name_en, lang),
            )
            answer.office = offices[0].name if offices else None
            answer.counter = service.counter.name if service.counter else None
            answer.counter_id = service.counter.id if service.counter else None
            answer.sources.append(service.source)
        return answer

    def referral(self, referral: Referral, ward: str | None, lang: str = "ja") -> Answer:
        """Not the ward office's: who handles it, where, and what the ward office contributes (its
        own procedures offered as quick replies)."""
        p = PHRASES[lang]
        lines = [
            p["referral"].format(
                service=bilingual(referral.name, referral.name_en, lang),
                handled_by=bilingual(referral.handled_by, referral.handled_by_en, lang),
            ),
            referral.where,
        ]
        if referral.ward_office_part:
            lines.append(p["referral_ward_part"].format(part=referral.ward_office_part))
        services = [self.kb.services[s] for s in referral.services if s in self.kb.services]
        return Answer(
            text="\n".join(lines),
            sources=[referral.source, *(s.source for s in services)],
            office=referral.handled_by,
            ward=ward,
            buttons=[{"title": s.name[:20], "payload": s.name} for s in services],
        )

    def service(
        self, service: Service, ward: str | None, intent: str | None, lang: str = "ja", question: str = ""
    ) -> Answer:
        """Where to go, in one sentence, and the one fact most worth saying next; hours, what to
        bring, the address and the sources go in the card (a resident reads it in two seconds)."""
        p = PHRASES[lang]
        counter = service.counter
        sources = [service.source]
        name = bilingual(service.name, service.name_en, lang)
        where = self._counter_phrase(service, lang)
        offices = self._offices_for(service, ward)
        main = offices[0] if offices else None
        office_name = bilingual(main.name, main.name_en, lang) if main else ""
        buttons: list[dict[str, str]] = []
        holder = counter if counter and main and main.kind == counter.at else main
        hours = self._hours(holder, lang) if holder else ()
        if main and main.kind == "区役所":
            lines = [p["service_at_ward_office"].format(service=name, office=office_name, counter=where)]
        elif main:
            lines = [p["service_at_office"].format(service=name, office=office_name)]
        else:
            kind = p["kinds_sep"].join(service.office_kinds[:1]) or "区役所"
            lines = [p["service_at_kind"].format(service=name, kind=kind, counter=where)]
            if "区役所" in service.office_kinds:
                lines.append(p["ask_ward"])
                buttons = ward_buttons()
        if not buttons:
            asked = nfkc(question)
            if any(cue in asked for cue in BRING_CUES):
                intent = "ask_bring"
            elif any(cue in asked for cue in HOURS_CUES):
                intent = "ask_hours"
            lines += self._next_fact(service, offices, hours, intent, lang)[:1]
            buttons = self._next_steps(service, hours, lang) if main else []
        if service.not_at:
            sources.append(service.not_at.source)
        if main:
            sources.append(main.source)
        if counter:
            sources.append(counter.source)
        return Answer(
            text="\n".join(lines),
            sources=sources,
            office=main.name if main else None,
            counter=counter.name if counter else None,
            counter_id=counter.id if counter else None,
            ward=ward,
            buttons=buttons,
            address=main.address if main else "",
            hours=list(hours),
            bring=list(service.bring),
        )

    @staticmethod
    def _next_steps(service: Service, hours: tuple[str, ...], lang: str) -> list[dict[str, str]]:
        """Quick replies after an answer: the natural next questions, then a person. Sent back as
        text («…の受付時間»), so they work on every channel and through the NLU."""
        p = PHRASES[lang]
        steps = []
        if hours:
            steps.append(("step_hours", "ask_hours_of"))
        if service.bring:
            steps.append(("step_bring", "ask_bring_of"))
        chips = [{"title": p[title], "payload": p[ask].format(service=service.name)} for title, ask in steps]
        other_ward = {"title": p["step_other_ward"], "payload": OTHER_WARD_PAYLOAD}
        return [*chips, other_ward, HANDOFF_BUTTON]

    def _next_fact(
        self, service: Service, offices: list[Office], hours: tuple[str, ...], intent: str | None, lang: str
    ) -> list[str]:
        """What to say after where to go, most useful first: the hours when asked, a deadline, an
        office that no longer handles it, a way without coming in, other offices, a note."""
        p = PHRASES[lang]
        facts = []
        if intent == "ask_bring" and service.bring:
            facts.append(p["bring"].format(items="、".join(service.bring)))
        if intent == "ask_hours" and hours:
            facts.append(p["hours"].format(hours=p["hours_sep"].join(hours)))
        if service.deadline:
            facts.append(p["deadline"].format(deadline=service.deadline))
        if service.not_at:
            facts.append(service.not_at.note)
        if service.alternatives and lang == "ja":
            facts.append(service.alternatives)
        elif "コンビニ" in service.office_kinds:
            facts.append(p["convenience"])
        others = [o for o in offices[1:] if o.kind not in ("区役所", "コンビニ")]
        if others:
            facts.append(p["also_offices"].format(offices=p["list_sep"].join(o.name for o in others)))
        if service.note:
            facts.append(service.note)
        return facts

    def hours(self, ward: str | None, lang: str = "ja") -> Answer:
        """Opening hours of the resident's ward office, or of ward offices in general."""
        p = PHRASES[lang]
        office = self.kb.ward_office(ward) if ward else None
        if office:
            text = p["hours_of"].format(office=self._office_line(office, lang))
            text += "\n" + "\n".join(self._hours(office, lang))
            return Answer(
                text=text + "\n" + _source_line([office.source], p),
                sources=[office.source],
                office=office.name,
                ward=ward,
            )
        any_office = self.kb.ward_office(WARDS[0])
        hours = self._hours(any_office, lang) if any_office else ()
        text = p["hours_general"] + "\n" + "\n".join(hours) + "\n" + p["hours_ask_ward"]
        sources = [any_office.source] if any_office else []
        return Answer(text=text + "\n" + _source_line(sources, p), sources=sources, buttons=ward_buttons())
