"""Edit knowledge entries from the staff console, with the same checks as `concierge knowledge check`.

Edits go to the YAML files themselves (git stays the record), round-tripped with ruamel.yaml so
comments and layout survive. Only the edited entry's lines change: the entry is re-dumped and its
lines spliced into the file's text, so a rollback that writes an entry's earlier text back restores
those bytes exactly. An edit is validated on a copy of the folder before anything is saved.
"""

from __future__ import annotations

import inspect
import io
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, get_args, get_origin

import yaml as pyyaml
from pydantic import BaseModel
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from bot.answering.composer import AnswerComposer
from bot.knowledge import KnowledgeBase, KnowledgeError, load_knowledge, schema

FILES = {
    "service": "services.yml",
    "faq": "faq.yml",
    "office": "offices.yml",
    "counter": "counters.yml",
    "hours": "hours.yml",
    "towns": "towns.yml",
}
KIND_OF_FILE = {name: kind for kind, name in FILES.items()}
# The key that names an entry in its file (a towns group is one ward's).
KEYS = {"towns": "ward"}
# Which fields an editor can change; how each is edited is the schema's to say (see _form_type).
_EDITABLE = {
    "service": ("name", "aliases", "questions", "bring", "note", "source", "review"),
    "faq": ("questions", "answer", "source", "review"),
    "office": (
        "name",
        "name_en",
        "kind",
        "ward",
        "wards",
        "address",
        "hours",
        "phone",
        "status",
        "closed",
        "opened",
        "note",
        "note_source",
        "source",
        "review",
    ),
    "counter": ("name", "name_en", "at", "section", "handles", "hours", "source", "review"),
    "hours": ("text", "text_en", "days", "weeks", "open", "close", "closed", "source", "review"),
    "towns": ("ward_en", "towns", "source", "review"),
}
# Kinds an editor may add a new entry of from the console.
NEW_KINDS = ("faq",)
FormType = Literal["text", "list", "yaml", "bool"]


def _plain(annotation) -> object:
    """The type under Annotated[...] and Optional."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    args = [a for a in get_args(annotation) if a is not type(None)]
    if args and get_origin(annotation) is not list and get_origin(annotation) is not Literal:
        return _plain(args[0]) if len(args) == 1 else annotation
    return annotation


def _form_type(model: type[BaseModel], name: str) -> FormType:
    """text: one line or a paragraph; list: one item per line (lists of texts); bool: a checkbox;
    yaml: a small YAML text, for what is nested (weekly hours' closures, a ward's towns, weeks)."""
    annotation = _plain(model.model_fields[name].annotation)
    if annotation is bool:
        return "bool"
    if get_origin(annotation) is list:
        item = _plain(get_args(annotation)[0])
        return "list" if item is str or get_origin(item) is Literal else "yaml"
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return "yaml"
    return "text"


FIELDS: dict[str, dict[str, FormType]] = {
    kind: {name: _form_type(schema.FILES[FILES[kind]], name) for name in names}
    for kind, names in _EDITABLE.items()
}


@dataclass
class EditResult:
    """What checking an edit found: problems as file:line, the bot's answer with the edit, and the
    entry's text in its file before and after (`full` is the whole file after, to write)."""

    problems: list[str]
    preview: str = ""
    before: str = ""
    after: str = ""
    file: str = ""
    entry_id: str = ""
    full: str = field(default="", repr=False)
    saved: bool = False


def _yaml() -> YAML:
    yaml = YAML()
    yaml.width = 4096
    yaml.preserve_quotes = True
    # `counter: null` stays so (ruamel writes an empty value by default)
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return yaml


def _key(kind: str) -> str:
    return KEYS.get(kind, "id")


def list_entries(kb: KnowledgeBase, query: str = "") -> list[dict]:
    rows = [
        {"kind": "service", "id": s.id, "title": s.name, "origin": s.origin} for s in kb.services.values()
    ]
    rows += [
        {"kind": "faq", "id": f.id, "title": f.questions[0], "origin": f.origin} for f in kb.faqs.values()
    ]
    rows += [{"kind": "office", "id": o.id, "title": o.name, "origin": o.origin} for o in kb.offices.values()]
    rows += [
        {"kind": "counter", "id": c.id, "title": c.name, "origin": c.origin} for c in kb.counters.values()
    ]
    rows += [{"kind": "hours", "id": h, "title": text, "origin": "hours.yml"} for h, text in kb.hours.items()]
    wards = dict.fromkeys(t.ward for t in kb.towns)
    rows += [{"kind": "towns", "id": w, "title": f"{w}の町名・駅名", "origin": "towns.yml"} for w in wards]
    if query:
        rows = [r for r in rows if query in r["title"] or query in r["id"]]
    return rows


def _find(items: list, key: str, entry_id: str):
    for item in items:
        if isinstance(item, dict) and item.get(key) == entry_id:
            return item
    raise KeyError(entry_id)


def _spans(text: str, key: str) -> dict[str, tuple[int, int]]:
    """Each entry's lines in the file's text: [first, last) line numbers, by its key. An entry runs
    from its `- ` line to the next entry's (comments between them go with the one before). Read
    with PyYAML's C composer: ruamel takes seconds over services.yml."""
    node = pyyaml.compose(text, Loader=getattr(pyyaml, "CSafeLoader", pyyaml.SafeLoader))
    items = node.value if isinstance(node, pyyaml.SequenceNode) else []
    starts = [item.start_mark.line for item in items]
    ends = [*starts[1:], len(text.splitlines())]
    spans = {}
    for item, start, end in zip(items, starts, ends, strict=True):
        if isinstance(item, pyyaml.MappingNode):
            name = next((v.value for k, v in item.value if k.value == key), None)
            if isinstance(name, str):
                spans[name] = (start, end)
    return spans


def _slice(text: str, key: str, entry_id: str) -> str:
    span = _spans(text, key).get(entry_id)
    return "".join(text.splitlines(keepends=True)[span[0] : span[1]]) if span else ""


def _splice(text: str, key: str, entry_id: str, new: str) -> str:
    """The file's text with the entry's lines replaced by `new` ("" removes it; appended if new)."""
    if new and not new.endswith("\n"):
        new += "\n"
    lines = text.splitlines(keepends=True)
    span = _spans(text, key).get(entry_id)
    if span is None:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        return "".join(lines) + new
    return "".join([*lines[: span[0]], new, *lines[span[1] :]])


def _file_text(folder: Path, kind: str) -> str:
    path = Path(folder) / FILES[kind]
    return path.read_text(encoding="utf-8") if path.exists() else ""


def entry_text(folder: Path, kind: str, entry_id: str) -> str:
    """The entry's lines in its file as they are now ("" when there is no such entry)."""
    return _slice(_file_text(folder, kind), _key(kind), entry_id)


def _yaml_text(value) -> str:
    if value is None:
        return ""
    out = io.StringIO()
    _yaml().dump(value, out)
    return out.getvalue().strip()


def _entry(folder: Path, kind: str, entry_id: str) -> CommentedMap:
    """The entry, round-trip loaded from its own lines only (services.yml whole takes seconds)."""
    text = entry_text(folder, kind, entry_id)
    if not text:
        raise KeyError(entry_id)
    return _find(_yaml().load(text), _key(kind), entry_id)


def read_fields(folder: Path, kind: str, entry_id: str) -> dict[str, str]:
    """The entry's editable fields as form text (lists one item per line)."""
    item = _entry(folder, kind, entry_id)
    fields = {}
    for name, form_type in FIELDS[kind].items():
        value = item.get(name)
        if form_type == "list":
            fields[name] = "\n".join(str(v) for v in value or [])
        elif form_type == "yaml":
            fields[name] = _yaml_text(value)
        elif form_type == "bool":
            fields[name] = "on" if value else ""
        else:
            fields[name] = "" if value is None else str(value)
    return fields


def empty_fields(kind: str) -> dict[str, str]:
    return {"id": "", **{name: "" for name in FIELDS[kind]}}


def _scalar(text: str):
    """A form's text as YAML will read it back as that text (quoted when 08:30 or yes would not)."""
    try:
        same = pyyaml.safe_load(text) == text
    except pyyaml.YAMLError:
        same = False
    return text if same else DoubleQuotedScalarString(text)


def _set(item: CommentedMap, name: str, value) -> None:
    if value is None:
        item.pop(name, None)
    elif item.get(name) != value:  # unchanged values keep their quotes and flow style
        item[name] = value


def _apply(
    item: CommentedMap, kind: str, form: dict[str, str], problems: list[str], file: str, first_line: int
) -> None:
    for name, form_type in FIELDS[kind].items():
        text = form.get(name, "") or ""
        if form_type == "list":
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            old = item.get(name)
            if lines and old is not None and [str(v) for v in old] == lines:
                continue
            kept = {str(v): v for v in old or []}  # unchanged items keep their quotes
            seq = CommentedSeq([kept.get(line, _scalar(line)) for line in lines])
            if isinstance(old, CommentedSeq) and old.fa.flow_style():
                seq.fa.set_flow_style()
            _set(item, name, seq if lines else None)
        elif form_type == "yaml":
            if not text.strip():
                _set(item, name, None)
                continue
            if text.strip() == _yaml_text(item.get(name)):
                continue
            try:
                _set(item, name, _yaml().load(text))
            except YAMLError as err:
                mark = getattr(err, "problem_mark", None)
                line = first_line + 1 + (mark.line if mark else 0)
                problems.append(f"{file}:{line}: '{name}': not valid YAML ({err})".replace("\n", " "))
        elif form_type == "bool":
            _set(item, name, True if text else None)
        else:
            _set(item, name, _scalar(text.strip()) if text.strip() else None)


def _nest_like(text: str, original: str) -> str:
    """ruamel dumps an entry's nested lists at its keys' column (`  - a`); files that indent them
    (`    - a`, towns.yml and services.yml) get them indented again, so unchanged lines stay so."""
    if "\n    - " not in original:
        return text
    out, nested = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("  - ") or (nested and line.startswith("    ")):
            nested = True
            out.append("  " + line)
        else:
            nested = False
            out.append(line)
    return "".join(out)


def _proposed(folder: Path, kind: str, entry_id: str | None, form: dict[str, str]) -> EditResult:
    """The entry's new text and the file's, without checking them."""
    file, key = FILES[kind], _key(kind)
    original = _file_text(folder, kind)
    spans = _spans(original, key)
    problems: list[str] = []
    if entry_id is None:  # a new entry: the id the editor gave, at the end of the file
        entry_id = (form.get("id") or "").strip()
        at = f"{file}:{len(original.splitlines()) + 1}"
        if not entry_id:
            problems.append(f"{at}: missing 'id' in entry ''")
        elif entry_id in spans:
            problems.append(f"{at}: duplicate id {entry_id!r} (first at {file}:{spans[entry_id][0] + 1})")
        if problems:
            return EditResult(problems=problems, file=file, entry_id=entry_id)
        item = CommentedMap([(key, _scalar(entry_id))])
        items, first_line = CommentedSeq([item]), len(original.splitlines())
    elif entry_id in spans:
        items = _yaml().load(_slice(original, key, entry_id))
        item, first_line = _find(items, key, entry_id), spans[entry_id][0]
    else:
        raise KeyError(entry_id)
    _apply(item, kind, form, problems, file, first_line)
    out = io.StringIO()
    _yaml().dump(items, out)
    after = _nest_like(out.getvalue(), original)
    before = _slice(original, key, entry_id)
    full = _splice(original, key, entry_id, after)
    return EditResult(problems=problems, before=before, after=after, file=file, entry_id=entry_id, full=full)


def _validated(
    folder: Path,
    kind: str,
    result: EditResult,
    min_confidence: float,
    duplicates: Callable[[KnowledgeBase], list[str]] | None,
) -> EditResult:
    """Load a copy of the folder with the file as it would be: the loader's problems (file:line),
    near duplicates when asked (the encoder is the caller's), and the bot's answer with it."""
    if result.problems:
        return result
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "knowledge"
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("drafts"))
        (copy / result.file).write_text(result.full, encoding="utf-8")
        try:
            kb = load_knowledge(copy)
        except KnowledgeError as err:
            result.problems = err.problems
            return result
    if duplicates is not None:
        result.problems = duplicates(kb)
    composer = AnswerComposer(kb, min_confidence)
    if kind == "service" and result.entry_id in kb.services:
        result.preview = composer.service(kb.services[result.entry_id], ward=None, intent=None).text
    elif kind == "faq" and result.entry_id in kb.faqs:
        result.preview = composer.faq(kb.faqs[result.entry_id], ward=None).text
    return result


def check(
    folder: Path,
    kind: str,
    entry_id: str | None,
    form: dict[str, str],
    min_confidence: float,
    duplicates: Callable[[KnowledgeBase], list[str]] | None = None,
) -> EditResult:
    """Validate an edit (entry_id None: a new entry, its id in form["id"]) on a copy of the folder."""
    return _validated(folder, kind, _proposed(folder, kind, entry_id, form), min_confidence, duplicates)


def check_restore(folder: Path, kind: str, entry_id: str, text: str, min_confidence: float) -> EditResult:
    """Validate writing an entry's earlier text back ("" removes the entry)."""
    file, key = FILES[kind], _key(kind)
    original = _file_text(folder, kind)
    result = EditResult(
        problems=[],
        before=_slice(original, key, entry_id),
        after=text,
        file=file,
        entry_id=entry_id,
        full=_splice(original, key, entry_id, text),
    )
    return _validated(folder, kind, result, min_confidence, None)


def write(folder: Path, result: EditResult) -> None:
    """Save a checked edit: written whole beside the file, then renamed over it (atomic)."""
    if result.problems:
        raise ValueError("an edit with problems is not saved")
    target = Path(folder) / result.file
    tmp_path = target.with_suffix(".yml.tmp")
    tmp_path.write_text(result.full, encoding="utf-8")
    tmp_path.replace(target)
