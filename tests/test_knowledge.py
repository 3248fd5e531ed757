from pathlib import Path

import pytest

from bot.knowledge import WARDS, KnowledgeError, load_knowledge
from bot.settings import ROOT


def test_project_knowledge_loads_and_covers_every_ward():
    kb = load_knowledge(ROOT / "knowledge")
    assert len(kb.services) >= 20
    for ward in WARDS:
        office = kb.ward_office(ward)
        assert office is not None and office.address and office.hours
    assert all(s.source.title for s in kb.services.values())
    assert {o.name for o in kb.closed_offices()} >= {"宮前連絡所", "柿生連絡所"}


def test_missing_source_and_broken_reference_are_reported_with_lines(small_knowledge: Path):
    services = small_knowledge / "services.yml"
    text = services.read_text(encoding="utf-8")
    text = text.replace("counter: doro-koen", "counter: no-such-counter")
    text = text.replace("  source: seed / 第4章 1(2)\n", "")
    services.write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(small_knowledge)
    problems = "\n".join(err.value.problems)
    assert "services.yml:1: missing 'source'" in problems
    assert "unknown counter 'no-such-counter'" in problems


def test_check_command_reports_a_near_duplicate_with_its_place(small_knowledge: Path, capsys):
    from bot.cli import main

    assert main(["knowledge", "check", "--folder", str(small_knowledge)]) == 0
    services = small_knowledge / "services.yml"
    services.write_text(
        services.read_text(encoding="utf-8") + "- id: juminhyo-copy\n"
        "  name: 住民票の写し\n"
        "  questions: [住民票はどこで取れますか, 住民票を取りたい]\n"
        "  counter: kumin\n"
        "  offices: [区役所]\n"
        "  source: seed / 第4章 1(2)\n",
        encoding="utf-8",
    )
    assert main(["knowledge", "check", "--folder", str(small_knowledge)]) == 1
    err = capsys.readouterr().err
    assert (
        "services.yml:16: service:juminhyo-copy nearly duplicates service:juminhyo at services.yml:1" in err
    )


def test_check_command_fails_on_a_broken_reference(small_knowledge: Path, capsys):
    from bot.cli import main

    counters = small_knowledge / "counters.yml"
    counters.write_text(
        counters.read_text(encoding="utf-8").replace("id: kumin", "id: kumin-renamed"), encoding="utf-8"
    )
    assert main(["knowledge", "check", "--folder", str(small_knowledge)]) == 1
    assert "services.yml:1: unknown counter 'kumin'" in capsys.readouterr().err


REFERRAL = """\
- id: passport
  name: パスポートの申請
  name_en: Passport application
  aliases: [パスポート, 旅券]
  questions: [パスポートを作りたい]
  handled_by: 神奈川県パスポートセンター
  handled_by_en: Kanagawa Passport Center
  where: 神奈川県が窓口です。
  ward_office_part: 申請に使う戸籍謄本は区役所の区民課で取れます。
  services: [{service}]
  source: seed
  review: true
"""


def test_a_referral_says_who_handles_it_and_what_the_ward_office_does(small_knowledge: Path):
    from bot.answering.composer import AnswerComposer

    service = next(iter(load_knowledge(small_knowledge).services))
    (small_knowledge / "referrals.yml").write_text(REFERRAL.format(service=service), encoding="utf-8")
    kb = load_knowledge(small_knowledge)
    assert kb.awaiting_review["referrals.yml"] == 1
    answer = AnswerComposer(kb, 0.5).referral(kb.referrals["passport"], "中原区")
    first_line = answer.text.splitlines()[0]
    assert first_line.startswith("「パスポートの申請」は区役所では扱っていません。")
    assert first_line.endswith("神奈川県パスポートセンターの窓口です。")
    assert "区役所でできること: 申請に使う戸籍謄本" in answer.text
    assert answer.office == "神奈川県パスポートセンター" and not answer.unresolved
    assert [b["payload"] for b in answer.buttons] == [kb.services[service].name]
    english = AnswerComposer(kb, 0.5).referral(kb.referrals["passport"], None, "en")
    assert "not handled at the ward office" in english.text and "Kanagawa Passport Center" in english.text


def test_a_referral_naming_an_unknown_service_is_reported(small_knowledge: Path):
    (small_knowledge / "referrals.yml").write_text(REFERRAL.format(service="no-such"), encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(small_knowledge)
    assert "referrals.yml:1: unknown service 'no-such'" in "\n".join(err.value.problems)


def test_an_uncertain_answer_names_the_choices_and_a_person(small_knowledge: Path):
    from bot.answering.composer import HANDOFF_BUTTON, AnswerComposer
    from bot.retrieval.documents import documents_from
    from bot.retrieval.index import Hit

    kb = load_knowledge(small_knowledge)
    first, second = documents_from(kb)[:2]
    hits = [Hit(first, 2.0, 0.7, {}), Hit(second, 1.9, 0.72, {})]
    answer = AnswerComposer(kb, 0.5).uncertain(hits, "中原区")
    assert answer.unresolved and "もしかして" in answer.text
    assert [b["title"] for b in answer.buttons[:2]] == [first.title[:20], second.title[:20]]
    assert answer.buttons[-1] == HANDOFF_BUTTON


def test_a_heading_without_text_of_its_own_is_above_the_chunks_under_it():
    """「(1) …区役所のあり方検討部会」 holds no text: its member table and meeting dates are
    about the committee only through it, so the chunks after it in its section carry it."""
    policy = load_knowledge(ROOT / "knowledge").policy
    committee = "(1) 川崎市行財政改革に関する計画策定委員会 区役所のあり方検討部会"
    assert committee in policy["policy-087"].above
    for chunk in ("policy-087", "policy-088", "policy-089"):
        assert committee in policy[chunk].context
    assert policy["policy-091"].context.endswith(f"{committee} エ 検討結果")
    assert committee not in policy["policy-099"].context  # (2) かわさき改革カフェ comes after it
    assert "(2) かわさき改革カフェ" in policy["policy-099"].context


def test_a_misspelt_key_is_reported_with_its_file_and_line(small_knowledge: Path):
    """A misspelt key used to drop what it held without a word (the aliases were just gone)."""
    services = small_knowledge / "services.yml"
    rows = services.read_text(encoding="utf-8").splitlines()
    at = next(i for i, row in enumerate(rows) if row.startswith("  aliases:"))
    rows[at] = rows[at].replace("aliases:", "alaises:")
    services.write_text("\n".join(rows) + "\n", encoding="utf-8")
    entry_line = max(i for i, row in enumerate(rows[: at + 1], 1) if row.startswith("- id:"))
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(small_knowledge)
    (problem,) = [p for p in err.value.problems if "alaises" in p]
    assert problem == f"services.yml:{entry_line}: unknown key 'alaises' (did you mean 'aliases'?)"


def _problems_after(folder: Path, name: str, old: str, new: str) -> list[str]:
    """The problems the loader reports once `old` is replaced by `new` in one file of `folder`."""
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(folder)
    return err.value.problems


def test_every_knowledge_file_has_a_model_and_loads_without_a_problem():
    from bot.knowledge.schema import FILES

    folder = ROOT / "knowledge"
    assert {path.name for path in folder.glob("*.yml")} == set(FILES)  # no file is read unchecked
    kb = load_knowledge(folder)  # strict: any problem would raise
    assert kb.sensitive and kb.towns and kb.policy and kb.schedules


@pytest.mark.parametrize(
    ("name", "old", "new", "problem"),
    [
        (
            "offices.yml",
            "  kind: 連絡所",
            "  kind: 連絡所\n  reveiw: true",
            "offices.yml:8: unknown key 'reveiw' (did you mean 'review'?)",
        ),
        (
            "towns.yml",
            "reading:",
            "readin:",
            "towns.yml:1: unknown key 'towns.0.readin' (did you mean 'reading'?)",
        ),
        (
            "hours.yml",
            "  source: city-web\n",
            "  source: city-web\n  colse: '17:00'\n",
            "hours.yml:2: unknown key 'colse' (did you mean 'close'?)",
        ),
    ],
)
def test_an_unknown_key_is_reported_with_the_entrys_line_and_the_key_it_was_meant_to_be(
    small_knowledge: Path, name: str, old: str, new: str, problem: str
):
    assert _problems_after(small_knowledge, name, old, new) == [problem]


@pytest.mark.parametrize(
    ("name", "old", "new", "problem"),
    [
        (
            "offices.yml",
            "hours: [ward-weekday]",
            "hours: [ward-night]",
            "offices.yml:1: unknown hours 'ward-night' (see hours.yml)",
        ),
        (
            "counters.yml",
            "source: seed / 第2章 2(1)ア",
            "source: sead / 第2章 2(1)ア",
            "counters.yml:7: unknown source 'sead' (see sources.yml)",
        ),
        (
            "services.yml",
            "offices: [区役所]\n",
            "offices: [区役所]\n  office_ids: [no-such-office]\n",
            "services.yml:9: unknown office 'no-such-office' (see offices.yml)",
        ),
        (
            "hours.yml",
            "  source: city-web\n",
            "  closed: {holidays: true, source: no-such}\n  source: city-web\n",
            "hours.yml:2: unknown source 'no-such' (see sources.yml)",
        ),
    ],
)
def test_a_dangling_reference_is_reported_with_the_entrys_line(
    small_knowledge: Path, name: str, old: str, new: str, problem: str
):
    assert _problems_after(small_knowledge, name, old, new) == [problem]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "aliases: [住民票, じゅうみんひょう]",
            "aliases: 住民票",
            "services.yml:1: 'aliases': Input should be a valid list",
        ),
        (
            "offices: [区役所, コンビニ]",
            "offices: []",
            "services.yml:1: missing 'offices' in entry 'juminhyo'",
        ),
        ("id: doro\n", "id: Doro Koen\n", "services.yml:9: 'id': String should match pattern '^[a-z0-9-]+$'"),
    ],
)
def test_a_value_of_the_wrong_type_or_format_is_reported_with_the_entrys_line(
    small_knowledge: Path, old: str, new: str, problem: str
):
    assert _problems_after(small_knowledge, "services.yml", old, new) == [problem]


def test_an_unquoted_time_is_reported_not_read_as_a_number(small_knowledge: Path):
    """YAML reads `open: 8:30` unquoted as the number 510 (base 60): the schema wants "08:30"."""
    problems = _problems_after(
        small_knowledge, "hours.yml", "  source: city-web\n", "  open: 8:30\n  source: city-web\n"
    )
    assert problems == ["hours.yml:2: 'open': Input should be a valid string"]


def test_a_broken_entry_is_reported_once_not_by_every_entry_naming_it(small_knowledge: Path):
    problems = _problems_after(small_knowledge, "counters.yml", "name: 区民課", "name: ''")
    assert problems == ["counters.yml:1: missing 'name' in entry 'kumin'"]  # services.yml names kumin too


# notices: board answers (issue 18)
SHELTERS = """# shelters
- id: todoroki-ryokuchi
  name: 等々力緑地
  ward: 中原区
  kind: 広域避難場所
  source: city-web / 広域避難場所
  review: true
- id: city-schools
  name: 市立の小学校・中学校など
  kind: 指定避難所
  source: city-web
  review: true
"""


def test_shelters_load_with_their_ward_and_source(small_knowledge: Path):
    (small_knowledge / "shelters.yml").write_text(SHELTERS, encoding="utf-8")
    kb = load_knowledge(small_knowledge)
    assert [s.id for s in kb.shelters_for("中原区")] == ["todoroki-ryokuchi", "city-schools"]
    assert [s.id for s in kb.shelters_for("麻生区")] == ["city-schools"]  # citywide only
    assert kb.shelters[0].source.section == "広域避難場所" and kb.shelters[0].origin == "shelters.yml:2"
    assert kb.awaiting_review["shelters.yml"] == 2


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "  review: true\n",
            "  reveiw: true\n",
            "shelters.yml:2: unknown key 'reveiw' (did you mean 'review'?)",
        ),
        ("ward: 中原区", "ward: 横浜区", "shelters.yml:2: unknown ward '横浜区'"),
        (
            "source: city-web / 広域避難場所",
            "source: bousai-page",
            "shelters.yml:2: unknown source 'bousai-page' (see sources.yml)",
        ),
        (
            "kind: 広域避難場所",
            "kind: 公園",
            "shelters.yml:2: 'kind': Input should be '指定避難所', '指定緊急避難場所', '広域避難場所', "
            "'津波避難施設' or '福祉避難所'",
        ),
        (
            "id: city-schools",
            "id: todoroki-ryokuchi",
            "shelters.yml:8: duplicate id 'todoroki-ryokuchi' (first at shelters.yml:2)",
        ),
    ],
)
def test_a_broken_shelter_is_reported_with_its_file_and_line(
    small_knowledge: Path, old: str, new: str, problem: str
):
    (small_knowledge / "shelters.yml").write_text(SHELTERS, encoding="utf-8")
    assert _problems_after(small_knowledge, "shelters.yml", old, new) == [problem]
