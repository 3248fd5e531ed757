"""How long the staff's figures take (bot/analytics_figures.py) at 10k and 100k answer events.

Synthetic events over 30 days and seven wards (every outcome, a third rated, keys from a few
thousand conversations) and one ticket per 50 events with a staff reply, in a fresh SQLite
database; the figures for the whole period and for one ward, best of three.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from bot.analytics_figures import compute
from bot.knowledge import WARDS, load_knowledge
from bot.settings import ROOT
from bot.storage.db import get_engine
from bot.storage.models import ANSWER_OUTCOMES, AnswerEvent, Ticket, TicketMessage

START = datetime(2026, 11, 1, tzinfo=UTC)


def _fill(url: str, n: int) -> None:
    span = 30 * 86400 / n
    events = [
        {"at": START + timedelta(seconds=i * span), "ward": WARDS[i % 7] if i % 11 else None,
         "outcome": ANSWER_OUTCOMES[0 if i % 10 < 6 else i % 5], "conversation": f"{i % 4001:064x}",
         "entry": f"faq-{i % 300}", "topic": f"話題{i % 300}", "helpful": (None, True, False)[i % 3]}
        for i in range(n)
    ]  # fmt: skip
    tickets = [
        {"id": t + 1, "ward": WARDS[t % 7], "department": "総合案内", "reason": "requested",
         "channel": "rest", "sender": "bench", "status": "answered",
         "created_at": START + timedelta(seconds=t * span * 50)}
        for t in range(n // 50)
    ]  # fmt: skip
    replies = [
        {"ticket_id": t["id"], "author": "staff", "text": "bench",
         "created_at": t["created_at"] + timedelta(minutes=t["id"] % 600)}
        for t in tickets
    ]  # fmt: skip
    with get_engine(url).begin() as conn:
        conn.execute(insert(AnswerEvent), events)
        conn.execute(insert(Ticket), tickets)
        conn.execute(insert(TicketMessage), replies)


def run(sizes: tuple[int, ...] = (10_000, 100_000)) -> dict[int, dict[str, float]]:
    kb = load_knowledge(ROOT / "knowledge")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            url = f"sqlite:///{Path(tmp) / f'figures-{n}.db'}"
            _fill(url, n)
            timings = {}
            for name, wards in (("all", None), ("one_ward", ["中原区"])):
                best = float("inf")
                for _ in range(3):
                    started = time.perf_counter()
                    compute(
                        url, date(2026, 11, 1), date(2026, 11, 30), wards, kb, now=START + timedelta(days=40)
                    )
                    best = min(best, time.perf_counter() - started)
                timings[f"{name}_ms"] = round(best * 1000, 1)
            out[n] = timings
    return out


if __name__ == "__main__":
    for n, t in run().items():
        print(n, t)
