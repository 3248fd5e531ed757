"""Chart geometry for /staff/analytics, drawn as SVG by the template (web/templates/staff/analytics.html).

Hand-built SVG rather than a library: the project has no charting library, and these three charts
(stacked bars, bars, horizontal bars) are a few rectangles each. Colours are classes in staff.css
(the console's CSP allows no inline style); every bar has a <title> and every chart a text
summary, and the numbers are in the tables next to them.
"""

from __future__ import annotations

from bot.analytics_figures import Figures, Row

OUTCOME_LABELS = {
    "answered": "回答",
    "not_sure": "自信なし",
    "handoff": "職員へ引継ぎ",
    "out_of_scope": "対象外",
    "sensitive": "配慮が必要",
}
WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 14, 26


def _short(day: str) -> str:
    """2026-12-04 → 12/4."""
    _, month, dom = day.split("-")
    return f"{int(month)}/{int(dom)}"


def _nice_top(value: int) -> int:
    """A round maximum for the axis (1, 2, 5, 10, 20, 50 …) at or above the value."""
    base = 1
    while True:
        for factor in (1, 2, 5):
            if base * factor >= value:
                return base * factor
        base *= 10


def _label_every(count: int) -> int:
    return max(1, -(-count // 10))  # at most about ten day labels


def _breakdown(row: Row) -> str:
    parts = [f"{OUTCOME_LABELS.get(o, o)} {n}" for o, n in row.outcomes.items() if n]
    return "、".join(parts) or "なし"


def questions_per_day(figures: Figures) -> dict:
    """Stacked bars: each day's questions split by outcome."""
    days = figures.days
    top = _nice_top(max((d.questions for d in days), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(days))
    bar = max(1.0, step * 0.7)
    every = _label_every(len(days))
    bars = []
    for i, d in enumerate(days):
        x = LEFT + i * step + (step - bar) / 2
        y = TOP + plot_h
        segments = []
        for outcome, n in d.outcomes.items():
            if not n:
                continue
            h = n / top * plot_h
            y -= h
            segments.append(
                {
                    "x": round(x, 1),
                    "y": round(y, 1),
                    "w": round(bar, 1),
                    "h": round(h, 1),
                    "cls": f"o-{outcome}",
                    "title": f"{_short(d.day)} {OUTCOME_LABELS.get(outcome, outcome)} {n}件",
                }
            )
        bars.append(
            {
                "segments": segments,
                "x": round(x + bar / 2, 1),
                "top": round(y, 1),
                "total": d.questions,
                "label": _short(d.day) if i % every == 0 else "",
                "show_total": len(days) <= 31 and d.questions,
            }
        )
    summary = "、".join(f"{_short(d.day)} {d.questions}件（{_breakdown(d)}）" for d in days if d.questions)
    return {**_frame(top), "bars": bars, "summary": summary or "この期間の質問はありません"}


def helpful_per_day(figures: Figures) -> dict:
    """Bars of each day's helpful rate (0–100%); a day without ratings has no bar and says so."""
    days = figures.days
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(days))
    bar = max(1.0, step * 0.7)
    every = _label_every(len(days))
    bars = []
    for i, d in enumerate(days):
        x = LEFT + i * step + (step - bar) / 2
        rate = d.helpful_rate
        h = (rate or 0) * plot_h
        text = "評価なし" if rate is None else f"{rate * 100:.0f}%（{d.rated}件中{d.helpful}件）"
        bars.append(
            {
                "x": round(x, 1),
                "y": round(TOP + plot_h - h, 1),
                "w": round(bar, 1),
                "h": round(h, 1),
                "cx": round(x + bar / 2, 1),
                "rated": d.rated,
                "value": "" if rate is None else f"{rate * 100:.0f}",
                "title": f"{_short(d.day)} 役に立った {text}",
                "label": _short(d.day) if i % every == 0 else "",
                "show_value": len(days) <= 31 and rate is not None,
            }
        )
    summary = "、".join(
        f"{_short(d.day)} {d.helpful_rate * 100:.0f}%（{d.rated}件）"
        for d in days
        if d.helpful_rate is not None
    )
    return {**_frame(100, unit="%"), "bars": bars, "summary": summary or "この期間の評価はありません"}


def per_ward(figures: Figures) -> dict:
    """Horizontal stacked bars: each ward's questions by outcome, with the helpful rate in text."""
    wards = figures.wards
    top = _nice_top(max((w.questions for w in wards), default=0))
    label_w, row_h, value_w = 64, 26, 150
    plot_w = WIDTH - label_w - value_w
    rows = []
    for i, w in enumerate(wards):
        y = TOP + i * row_h
        x = label_w
        segments = []
        for outcome, n in w.outcomes.items():
            if not n:
                continue
            width = n / top * plot_w
            segments.append(
                {
                    "x": round(x, 1),
                    "y": y,
                    "w": round(width, 1),
                    "h": row_h - 8,
                    "cls": f"o-{outcome}",
                    "title": f"{w.ward} {OUTCOME_LABELS.get(outcome, outcome)} {n}件",
                }
            )
            x += width
        helpful = "評価なし" if w.helpful_rate is None else f"役立 {w.helpful_rate * 100:.0f}%"
        rows.append(
            {
                "ward": w.ward,
                "y": y,
                "text_y": y + row_h / 2,
                "segments": segments,
                "end": round(x + 4, 1),
                "value": f"{w.questions}件・{helpful}",
            }
        )
    height = TOP + max(1, len(wards)) * row_h + 4
    summary = "、".join(f"{w.ward} {w.questions}件（{_breakdown(w)}）" for w in wards)
    return {
        "width": WIDTH,
        "height": height,
        "label_w": label_w,
        "rows": rows,
        "summary": summary or "この期間の質問はありません",
    }


def _frame(top: int, unit: str = "件") -> dict:
    plot_h = HEIGHT - TOP - BOTTOM
    ticks = [
        {"y": round(TOP + plot_h - f * plot_h, 1), "text": f"{round(top * f)}{unit}"} for f in (0, 0.5, 1)
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "base": TOP + plot_h,
        "label_y": HEIGHT - 8,
        "ticks": ticks,
        "top": top,
    }


def legend() -> list[dict]:
    return [{"cls": f"o-{o}", "text": t} for o, t in OUTCOME_LABELS.items()]
