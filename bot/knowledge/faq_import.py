"""Import a city's FAQ open data (CSV) into knowledge/faq.yml, each entry citing its row's URL.

The layout is the 自治体標準オープンデータセット「よくある質問（FAQ）」: a header row, then one
question per row. Only the columns below are read (matched after NFKC and with every space removed);
the others (全国地方公共団体コード, 回答日, 備考 …) are ignored:

  ID                                   the row's id in the city's data (required)
  質問 / 問い合わせ文 / 質問（問い合わせ文）   the question (required)
  回答 / 応答文 / 回答（応答文）             the answer (required)
  URL                                  the page the answer is from: the entry's source
  カテゴリ / 分類                       read but not kept: faq.yml has no place for it
  地方公共団体名                        names the sources the import adds

A row without a usable URL is refused, unless `source` names a sources.yml entry to cite instead.
Entry ids come from the CSV's ID (`import-<prefix>-<ID>`), so importing the file again changes its
entries rather than adding them twice. Every added or changed entry gets `review: true`: an editor
confirms it. The result is loaded with the loader on a copy of the folder before anything is written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString

from bot.knowledge.loader import KnowledgeError, load_knowledge
from bot.knowledge.write_lock import one_writer

# Normalised header (NFKC, no spaces, lower case) -> what the column holds.
HEADERS = {
    "id": "id",
    "質問": "question",
    "問い合わせ文": "question",
    "質問(問い合わせ文)": "question",
    "回答": "answer",
    "応答文": "answer",
    "回答(応答文)": "answer",
    "カテゴリ": "category",
    "分類": "category",
    "url": "url",
    "地方公共団体名": "municipality",
}
REQUIRED = ("id", "question", "answer")
PREFIX = "import-"
_SPACES = re.compile(r"\s+")
_NOT_ID = re.compile(r"[^a-z0-9]+")
# What Python's cp932 makes of bytes Shift_JIS does not define (0x80, 0xA0, 0xFD-0xFF) and NUL (UTF-16).
_NOT_SHIFT_JIS = re.compile("[\x00\x80\uf8f0-\uf8f3]")


class FaqCsvError(Exception):
    """The file cannot be imported at all (unreadable, no header): nothing is read from it."""


class FaqRow(BaseModel):
    """One row of the CSV, as the importer needs it."""

    line: int  # the physical line the row starts on
    id: str
    question: str
    answer: str
    category: str = ""
    url: str = ""
    municipality: str = ""

    @field_validator("id", "question", "category", "municipality", mode="before")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return _SPACES.sub(" ", value or "").strip()

    @field_validator("answer", mode="before")
    @classmethod
    def _answer(cls, value: str) -> str:
        lines = (value or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
        return "\n".join(line.strip() for line in lines).strip()

    @field_validator("id", "question", "answer")
    @classmethod
    def _required(cls, value: str) -> str:
        if not value:
            raise ValueError("missing")
        return value

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: str) -> str:
        value = (value or "").strip()
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc or _SPACES.search(value):
                raise ValueError(f"{value[:80]!r} is not an absolute http(s) address")
        return value


@dataclass
class Refused:
    line: int
    reason: str


@dataclass
class Outcome:
    """What the import does with one valid row."""

    line: int
    entry_id: str
    status: str  # added, changed or unchanged
    question: str
    diff: list[str] = field(default_factory=list)  # `field: old → new`, shortened


@dataclass
class ImportReport:
    path: Path
    outcomes: list[Outcome] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the loader's, on the imported copy
    written: bool = False

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)


def _normalise_header(text: str) -> str:
    return _SPACES.sub("", unicodedata.normalize("NFKC", text)).lower()


def slug(text: str) -> str:
    """Lower-case letters, digits and '-' (what knowledge ids may hold)."""
    return _NOT_ID.sub("-", unicodedata.normalize("NFKC", text).lower()).strip("-")


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Shift_JIS as Windows writes it (CP932)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp932")
    except UnicodeDecodeError as err:
        raise FaqCsvError(
            f"neither UTF-8 nor Shift_JIS (CP932): undecodable bytes at offset {err.start}"
        ) from None
    undefined = _NOT_SHIFT_JIS.search(text)
    if undefined:  # Python's cp932 passes these bytes through; no Shift_JIS text holds them
        raise FaqCsvError(
            f"neither UTF-8 nor Shift_JIS (CP932): a byte Shift_JIS lacks (character {undefined.start()})"
        )
    return text


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """Each CSV row with the physical line it starts on (csv's line_num is where it ends)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)  # a quote left open is an error
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise FaqCsvError(f"line {start}: {err}") from None
        yield start, row
        start = reader.line_num + 1


def _columns(header: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for i, name in enumerate(header):
        role = HEADERS.get(_normalise_header(name))
        if role is None:
            continue
        if role in columns:
            raise FaqCsvError(f"line 1: two columns for the {role}: {header[columns[role]]!r} and {name!r}")
        columns[role] = i
    missing = [r for r in REQUIRED if r not in columns]
    if missing:
        wanted = {"id": "ID", "question": "質問（問い合わせ文）", "answer": "回答（応答文）"}
        raise FaqCsvError(
            f"line 1: the header has no {', '.join(wanted[m] for m in missing)} column "
            f"(found: {', '.join(h.strip() for h in header)[:200]}; is the file UTF-8 or Shift_JIS?)"
        )
    return columns


def read_rows(path: Path) -> tuple[list[FaqRow], list[Refused]]:
    """The file's valid rows and the refused ones, each with its line and reason."""
    try:
        text = decode(path.read_bytes())
    except OSError as err:
        raise FaqCsvError(f"cannot read: {err.strerror or err}") from None
    rows = _rows(text)
    first = next(rows, None)
    if first is None:
        raise FaqCsvError("line 1: empty file (a header row is needed)")
    header = first[1]
    columns = _columns(header)
    valid: list[FaqRow] = []
    refused: list[Refused] = []
    for line, cells in rows:
        if not any(c.strip() for c in cells):
            continue  # a blank line, or a spreadsheet's row of empty cells
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
            refused.append(Refused(line, f"{len(cells)} fields, the header has {len(header)}"))
            continue
        values = {role: cells[i] if i < len(cells) else "" for role, i in columns.items()}
        try:
            valid.append(FaqRow(line=line, **values))
        except ValidationError as err:
            reasons = []
            for e in err.errors():
                column = header[columns[str(e["loc"][0])]].strip()
                msg = str(e["ctx"]["error"]) if e["type"] == "value_error" else e["msg"]
                reasons.append(f"missing {column}" if msg == "missing" else f"{column}: {msg}")
            refused.append(Refused(line, "; ".join(reasons)))
    return valid, refused


def _yaml() -> YAML:
    yaml = YAML()
    yaml.width = 4096
    yaml.preserve_quotes = True
    return yaml


def _load(yaml: YAML, path: Path) -> CommentedSeq:
    items = yaml.load(path.read_text(encoding="utf-8")) if path.exists() else None
    if items is not None and not isinstance(items, CommentedSeq):
        raise FaqCsvError(f"{path} is not a list of entries (see `concierge knowledge check`)")
    return items if items is not None else CommentedSeq()


def _dump(yaml: YAML, items: CommentedSeq) -> str:
    out = io.StringIO()
    yaml.dump(items, out)
    return out.getvalue()


def _short(text: str, limit: int = 40) -> str:
    text = text.replace("\n", "⏎")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_diff(old: str, new: str, context: int = 8) -> str:
    """What changed between two texts: the part between their common start and end, with a few
    characters around it, shortened."""
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    start, end = max(0, start - context), max(0, end - context)
    before = "…" if start else ""
    after = "…" if end else ""
    return (
        f"{before}{_short(old[start : len(old) - end])}{after} → "
        f"{before}{_short(new[start : len(new) - end])}{after}"
    )


class _Sources:
    """sources.yml entries the import cites: one per URL, reused on the next import."""

    def __init__(self, items: CommentedSeq, label: str) -> None:
        self.items = items
        self.label = label
        self.ids = {i.get("id") for i in items if isinstance(i, dict)}
        self.by_url = {
            i.get("url"): i["id"]
            for i in items
            if isinstance(i, dict) and str(i.get("id", "")).startswith(PREFIX) and i.get("url")
        }

    def for_url(self, url: str, municipality: str) -> str:
        if url in self.by_url:
            return self.by_url[url]
        base = f"{PREFIX}source-{hashlib.sha1(url.encode()).hexdigest()[:10]}"
        source_id, n = base, 1
        while source_id in self.ids:  # an editor pointed the hashed entry elsewhere
            n += 1
            source_id = f"{base}-{n}"
        title = f"{municipality}よくある質問" if municipality else f"よくある質問（{self.label}）"
        entry = CommentedMap(id=source_id, title=title, url=url, review=True)
        self.items.append(entry)
        self.ids.add(source_id)
        self.by_url[url] = source_id
        return source_id


def _entry_id(prefix: str, row_id: str) -> str:
    part = slug(row_id) or hashlib.sha1(row_id.encode()).hexdigest()[:8]
    return f"{PREFIX}{prefix}-{part}"


def _apply(row: FaqRow, entry_id: str, source: str, faqs: CommentedSeq, index: dict) -> Outcome:
    """Add the row's entry to faq.yml, or change the one an earlier import made."""
    answer = LiteralScalarString(row.answer) if "\n" in row.answer else row.answer
    existing = index.get(entry_id)
    if existing is None:
        questions = CommentedSeq([row.question])
        questions.fa.set_flow_style()
        entry = CommentedMap(id=entry_id, questions=questions, answer=answer, source=source, review=True)
        faqs.append(entry)
        index[entry_id] = entry
        return Outcome(row.line, entry_id, "added", row.question)
    old_questions = list(existing.get("questions") or [])
    before = {
        "question": str(old_questions[0]) if old_questions else "",
        "answer": str(existing.get("answer") or ""),
        "source": str(existing.get("source") or ""),
    }
    after = {"question": row.question, "answer": row.answer, "source": source}
    diff = [
        f"{name}: {short_diff(before[name], after[name])}" for name in before if before[name] != after[name]
    ]
    if not diff:
        return Outcome(row.line, entry_id, "unchanged", row.question)
    if before["question"] != row.question:
        if old_questions:  # questions an editor added after the first stay
            existing["questions"][0] = row.question
        else:
            existing["questions"] = CommentedSeq([row.question])
    existing["answer"] = answer
    existing["source"] = source
    existing["review"] = True  # changed text: an editor confirms it again
    return Outcome(row.line, entry_id, "changed", row.question, diff)


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def import_faq(
    csv_path: Path,
    folder: Path,
    prefix: str | None = None,
    source: str | None = None,
    dry_run: bool = False,
    lock_dir: Path | None = None,
) -> ImportReport:
    """Import the CSV's valid rows into folder/faq.yml (and their URLs into sources.yml), unless
    dry_run; the report says what each row did. Raises FaqCsvError if the file is unusable.
    With `lock_dir` (the settings' var_dir), the files are read and written under the knowledge
    write lock the console's publishes hold (bot/knowledge/write_lock.py)."""
    with one_writer(lock_dir) if lock_dir is not None else nullcontext():
        return _import_faq(Path(csv_path), Path(folder), prefix, source, dry_run)


def _import_faq(
    csv_path: Path, folder: Path, prefix: str | None, source: str | None, dry_run: bool
) -> ImportReport:
    entry_prefix = slug(prefix if prefix is not None else csv_path.stem)
    if not entry_prefix:
        raise FaqCsvError(f"the name {csv_path.stem!r} gives no id prefix: give --prefix (letters, digits)")
    rows, refused = read_rows(csv_path)
    report = ImportReport(csv_path, refused=refused)
    yaml = _yaml()
    faqs = _load(yaml, folder / "faq.yml")
    source_items = _load(yaml, folder / "sources.yml")
    sources = _Sources(source_items, csv_path.name)
    if source is not None and source not in sources.ids:
        raise FaqCsvError(f"--source {source!r} is not an id in {folder / 'sources.yml'}")
    index = {i.get("id"): i for i in faqs if isinstance(i, dict)}
    seen: dict[str, FaqRow] = {}
    for row in rows:
        entry_id = _entry_id(entry_prefix, row.id)
        if entry_id in seen:
            first = seen[entry_id]
            same = "duplicate ID" if first.id == row.id else f"ID {row.id!r} gives the same entry id as"
            report.refused.append(Refused(row.line, f"{same} {first.id!r} at line {first.line}"))
            continue
        if not row.url and source is None:
            report.refused.append(Refused(row.line, "no URL (give --source ID to cite a sources.yml entry)"))
            continue
        seen[entry_id] = row
        cited = sources.for_url(row.url, row.municipality) if row.url else str(source)
        report.outcomes.append(_apply(row, entry_id, cited, faqs, index))
    report.refused.sort(key=lambda r: r.line)
    if not any(o.status != "unchanged" for o in report.outcomes):
        return report  # nothing to write
    faq_text, sources_text = _dump(yaml, faqs), _dump(yaml, source_items)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "knowledge"
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("drafts"))
        (copy / "faq.yml").write_text(faq_text, encoding="utf-8")
        (copy / "sources.yml").write_text(sources_text, encoding="utf-8")
        try:
            load_knowledge(copy)
        except KnowledgeError as err:
            report.problems = err.problems
            return report
    if not dry_run:
        _write(folder / "sources.yml", sources_text)  # first: an unused source harms nothing
        _write(folder / "faq.yml", faq_text)
        report.written = True
    return report
