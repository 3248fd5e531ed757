"""The concierge's own wording, per language. Facts never live here: only the sentences that
put knowledge entries together. Japanese is the default; English answers keep office and counter
names in Japanese beside the English."""

from __future__ import annotations

PHRASES: dict[str, dict[str, str]] = {
    "ja": {
        "service_at_ward_office": "「{service}」は、{office}の{counter}で受け付けています。",
        "service_at_office": "「{service}」は、{office}で受け付けています。",
        "service_at_kind": "「{service}」は、お住まいの区の{kind}の{counter}で受け付けています。",
        "ask_ward": "お住まいの区を教えていただければ、窓口の場所と受付時間をご案内します。",
        "also_offices": "ほかに {offices} でも手続きできます。",
        "convenience": "コンビニ交付（マイナンバーカードが必要）も利用できます。",
        "hours": "受付時間: {hours}",
        "bring": "お持ちいただくもの: {items}",
        "deadline": "期限: {deadline}",
        "source": "出典: {sources}",
        "source_more": " ほか",
        "step_hours": "受付時間",
        "step_bring": "持ち物",
        "step_other_ward": "別の区",
        "ask_hours_of": "{service}の受付時間",
        "ask_bring_of": "{service}の持ち物",
        "closed": "{office}は{closed}に廃止されました。{note}",
        "office_intro": "{office}についてのご案内です。",
        "faq_counter": "担当窓口: {place}の{counter}（{service}）",
        "your_ward_office": "お住まいの区の区役所",
        "policy": "{cite}「{heading}」より:\n{excerpt}",
        "referral": "「{service}」は区役所では扱っていません。{handled_by}の窓口です。",
        "not_sure": "ご質問がどれにあたるか、はっきりわかりませんでした。もしかして、次のどれかでしょうか。\n"
        "{choices}\nどれも違うときは「担当者と話したい」を選んでください。",
        "referral_ward_part": "区役所でできること: {part}",
        "unresolved": "申し訳ありません。そのご質問にお答えできる情報が見つかりませんでした。\n"
        "言い方を変えてもう一度お聞きいただくか、「担当者と話したい」と送ってください。",
        "hours_of": "{office}の受付時間は次のとおりです。",
        "hours_general": "区役所の受付時間は次のとおりです。",
        "hours_ask_ward": "お住まいの区を教えていただければ、その区役所の場所もご案内します。",
        "counter_default": "担当窓口",
        "counter_in_section": "{section}の{counter}",
        "list_sep": "、",
        "hours_sep": "／",
        "kinds_sep": "・",
    },
    "en": {
        "service_at_ward_office": "{service}: please go to the {counter} at {office}.",
        "service_at_office": "{service}: please go to {office}.",
        "service_at_kind": "{service}: handled by the {counter} at the ward office (区役所) of your ward.",
        "ask_ward": "Tell me your ward (区) and I will give you the office address and opening hours.",
        "also_offices": "Also at: {offices}.",
        "convenience": "With a My Number Card you can also get it at a convenience store (コンビニ交付).",
        "hours": "Hours: {hours}",
        "bring": "Please bring (in Japanese): {items}",
        "deadline": "Deadline (in Japanese): {deadline}",
        "source": "Source: {sources}",
        "source_more": " and others",
        "step_hours": "Hours",
        "step_bring": "What to bring",
        "step_other_ward": "Another ward",
        "ask_hours_of": "{service}の受付時間",
        "ask_bring_of": "{service}の持ち物",
        "closed": "{office} has closed ({closed}). {note}",
        "office_intro": "About {office}:",
        "faq_counter": "Counter: the {counter} at {place} ({service})",
        "your_ward_office": "your ward office (区役所)",
        "policy": "From {cite} 「{heading}」 (in Japanese):\n{excerpt}",
        "referral": "{service} is not handled at the ward office (区役所): it is handled by {handled_by}.",
        "not_sure": "I am not sure which of these you mean:\n{choices}\n"
        "If none of them, choose 「担当者と話したい」 to talk to a staff member.",
        "referral_ward_part": "At the ward office (in Japanese): {part}",
        "unresolved": "Sorry, I could not find an answer to that. Please ask in other words, "
        "or send 「担当者と話したい」 to talk to a staff member.",
        "hours_of": "Opening hours of {office}:",
        "hours_general": "Ward office (区役所) opening hours:",
        "hours_ask_ward": "Tell me your ward (区) and I will tell you where its office is.",
        "counter_default": "responsible counter",
        "counter_in_section": "{counter} ({section})",
        "list_sep": ", ",
        "hours_sep": " / ",
        "kinds_sep": ", ",
    },
}


def bilingual(japanese: str, english: str, lang: str) -> str:
    """A name as a resident reading `lang` needs it: English answers keep the Japanese name."""
    if lang == "en" and english:
        return f"{english} ({japanese})"
    return japanese


# What the channels say when the bot itself cannot answer.
BOT_DOWN = "ただいま応答できません。しばらくしてからもう一度お試しください。"
NOT_TEXT = (
    "スタンプや画像、位置情報にはお答えできません。お手数ですが、文字でご質問ください"
    "（例:「住民票はどこで取れる？」）。"
)
TOO_LONG = (
    "メッセージが長すぎます（{limit}文字まで）。お手数ですが、ご用件を短くまとめてもう一度お送りください。"
    "（Your message is too long: please keep it under {limit} characters.）"
)
RATE_LIMITED = (
    "短い間にたくさんのメッセージを受け取りました。{seconds}秒ほどおいてから、もう一度お送りください。"
    "（Too many messages in a short time: please wait {seconds} seconds and try again.）"
)
