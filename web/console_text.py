"""What the staff console shows instead of codes: Japanese names of statuses, channels, reasons and
knowledge fields, times in Japan time as people write them, and editor-friendly problem messages.
Registered as Jinja filters by the staff blueprint."""

from __future__ import annotations

import difflib
import re
from datetime import UTC, date, datetime, timedelta, timezone

JST = timezone(timedelta(hours=9), "JST")  # Japan keeps no daylight saving time

TICKET_STATUS = {"new": "未対応", "claimed": "対応中", "answered": "回答済み", "closed": "完了"}
ISSUE_STATUS = {"new": "新規", "acknowledged": "確認済み", "answered": "FAQ作成済み", "closed": "完了"}
CHANNEL = {"widget": "ウェブ", "line": "LINE", "rest": "API"}
REASON = {"requested": "住民の希望", "not_helped": "回答で解決せず", "sensitive": "配慮が必要な相談"}
ROLE = {"ward_staff": "区の職員", "editor": "編集者", "admin": "管理者"}
KIND = {
    "service": "手続き",
    "faq": "よくある質問",
    "office": "庁舎・施設",
    "counter": "窓口",
    "hours": "受付時間",
    "towns": "町名・駅名",
}
DRAFT_STATUS = {"draft": "下書き", "submitted": "審査待ち", "published": "公開済み", "rejected": "差し戻し"}
FIELD = {
    "name": "名称",
    "aliases": "別名・言い換え",
    "questions": "質問の例",
    "bring": "持ち物",
    "note": "補足",
    "source": "出典",
    "answer": "回答",
    "id": "ID（英小文字・数字・-）",
    "review": "要確認（review）",
    "name_en": "名称（英語）",
    "kind": "種類",
    "ward": "区",
    "wards": "担当する区",
    "address": "住所",
    "hours": "受付時間の ID",
    "phone": "電話番号",
    "status": "状態（open / closed）",
    "closed": "閉鎖・休業",
    "opened": "開設",
    "note_source": "補足の出典",
    "at": "置かれる庁舎の種類",
    "section": "所属",
    "handles": "担当する内容",
    "text": "表示する文",
    "text_en": "表示する文（英語）",
    "days": "曜日（mon〜sun）",
    "weeks": "第何週（YAML、例: [2, 4]）",
    "open": "開始（例: 08:30）",
    "close": "終了（例: 17:00）",
    "ward_en": "区名（ローマ字）",
    "towns": "町名・駅名（YAML）",
}
NOTICE_STATUS = {"scheduled": "予約済み", "sending": "送信中", "sent": "送信済み", "cancelled": "取り消し"}
# What the console says about a notice's send time, a disaster-mode form, a congestion status or an
# opening before bot/notices (NoticeError, BoardError) is asked; those say the rest themselves.
NOTICE_PROBLEM = {
    "bad_time": "送信日時を選んでください（日本時間）。",
    "past_time": "送信日時が過ぎています。これから先の日時を選ぶか、「今すぐ送信」を選んでください。",
}
DISASTER_PROBLEM = {"no_ward": "対象の区を1つ以上選ぶか、「市内全域」を選んでください。"}
DISASTER_NOTICE_TITLE = "災害情報"
CONGESTION_PROBLEM = {"bad_minutes": "待ち時間は分の数（例: 20）で入力してください。"}
OPENING_PROBLEM = {
    "bad_date": "日付を選んでください。",
    "unknown_counter": "窓口の選び方が正しくありません。一覧から選んでください。",
}
WEEKDAY = "月火水木金土日"
# issue 19: consultation bookings (web/staff_bookings.py)
BOOKING_STATUS = {"booked": "予約中", "cancelled": "キャンセル", "arrived": "来庁済み", "no_show": "来庁なし"}
SLOT_STATUS = {"open": "受付中", "closed": "締切"}
SLOT_PROBLEM = {
    "bad_date": "日付を選んでください。",
    "bad_number": "長さ（分）と定員は数字で入力してください。",
    "unknown_counter": "窓口を一覧から選んでください。",
    "bad_exception": "除外する日は 2027-02-11 の形で、空白か「,」で区切って入力してください。",
    "no_knowledge": "窓口の一覧（ナレッジ）を読み込めません。管理者に連絡してください。",
}
BOOKING_PROBLEM = {
    "bad_day": "日付は 2026-12-01 の形で選んでください。",
    "no_message": "住民へのメッセージを入力してください。キャンセルの理由とお詫びを伝えます。",
    "too_long": "メッセージは2000文字以内にしてください。",
    "not_active": "この予約はもうキャンセルされたか、来庁の記録がついています。",
    "not_yet": "来庁の記録は予約の日になってからつけられます。",
    "no_delivery": "住民に届ける経路が設定されていないため、キャンセルできません。管理者に連絡してください。",
}
# The message box of a staff cancellation starts with this draft; staff edit it before sending.
BOOKING_CANCEL_DRAFT = (
    "ご予約（予約番号 {number}、{day} {start}〜{end}、{ward}役所 {counter}）は、"
    "区役所の都合によりお受けできなくなりました。申し訳ありません。\n"
    "お手数ですが、別の日時であらためてご予約ください。"
)
# ja('status', 'new') in a template → 未対応
FIGURES_PROBLEM = {
    "bad_date": "日付は 2026-12-01 の形で入力してください。",
    "until_before_since": "終わりの日が始めの日より前になっています。",
    "too_long": "期間は2年以内で指定してください。",
    "unknown_ward": "その区はありません。",
}
WORDS = {
    "status": TICKET_STATUS,
    "issue_status": ISSUE_STATUS,
    "channel": CHANNEL,
    "reason": REASON,
    "field": FIELD,
    "kind": KIND,
    "role": ROLE,
    "draft_status": DRAFT_STATUS,
    "notice_status": NOTICE_STATUS,
    "booking_status": BOOKING_STATUS,
    "slot_status": SLOT_STATUS,
}


def label(mapping: dict[str, str], code: str | None) -> str:
    """The Japanese name of a code (the code itself where none is known)."""
    return mapping.get(code or "", code or "—")


def jst(value: str | datetime | None, with_year: bool = False) -> str:
    """「11月27日 19:25」: a stored time (UTC, naive or aware, or its ISO text) in Japan time."""
    if not value:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(JST)
    text = f"{moment.month}月{moment.day}日 {moment:%H:%M}"
    return f"{moment.year}年{text}" if with_year else text


def day_ja(value: date) -> str:
    """「12月12日（土）」: a calendar day as the console and the residents' pages write it."""
    return f"{value.month}月{value.day}日（{WEEKDAY[value.weekday()]}）"


_MISSING = re.compile(r"missing '(\w+)' in entry")
_UNKNOWN_SOURCE = re.compile(r"unknown source '([^']*)'")
_UNKNOWN = re.compile(r"unknown (counter|office|service|hours|ward) '([^']*)'")
_PLACE = re.compile(r"^[\w./-]+\.yml:\d+: ")


def editor_problem(problem: str) -> str:
    """A knowledge-check problem said for an editor: which field, and what to do about it."""
    text = _PLACE.sub("", problem)
    if m := _MISSING.search(text):
        return f"「{FIELD.get(m.group(1), m.group(1))}」が空です。入力してください。"
    if m := _UNKNOWN_SOURCE.search(text):
        return (
            f"「出典」の「{m.group(1)}」は登録されていません。sources.yml にある出典の ID"
            "（例: seed / 第2章 2(4)ウ）を書いてください。"
        )
    if m := _UNKNOWN.search(text):
        return f"「{m.group(2)}」という {m.group(1)} はナレッジにありません。ID を確かめてください。"
    if "nearly duplicates" in text:
        return f"ほかの項目とほぼ同じ内容です。まとめるか、違いがわかるように書き分けてください。（{text}）"
    return text


def field_of(problem: str) -> str | None:
    """The field a problem is about, to show it beside that field."""
    if m := _MISSING.search(problem):
        return m.group(1)
    return "source" if _UNKNOWN_SOURCE.search(problem) else None


def diff_rows(before: str, after: str) -> list[tuple[str, str]]:
    """A unified diff of an entry's text as (class, line) rows for the console (added, removed,
    unchanged, or the @@ line of a hunk); the template escapes the text."""
    rows = []
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=3)
    for line in list(lines)[2:]:  # not the ---/+++ file names
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")
        rows.append((kind, line))
    return rows
