"""The topics a resident may subscribe to. Ids are stored; labels are what residents and staff see."""

from __future__ import annotations

TOPICS: dict[str, str] = {
    "bousai": "防災",
    "kosodate": "子育て",
    "madoguchi": "窓口のお知らせ・臨時開庁",
    "fukushi": "健康・福祉",
    "event": "イベント",
}
TOPIC_IDS: tuple[str, ...] = tuple(TOPICS)


def topic_id(value: str) -> str | None:
    """The topic's id from its id or its label (「防災」, 「窓口のお知らせ」 …), else None."""
    value = value.strip()
    if value in TOPICS:
        return value
    for tid, label in TOPICS.items():
        if value == label or value == label.split("・")[0]:
            return tid
    return None


def topic_label(tid: str) -> str:
    return TOPICS.get(tid, tid)
