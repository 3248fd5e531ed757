"""Edit knowledge entries from the staff console, with the same checks as `concierge knowledge check`.

Edits go to the YAML files themselves (git stays the record), round-tripped with ruamel.yaml so
comments and layout survive. An edit is validated on a copy of the folder before anything is saved.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from bot.answering.composer import AnswerComposer
from bot.knowledge import KnowledgeBase, KnowledgeError, load_knowledge, schema

FILES = {"service": "services.yml", "faq": "faq.yml"}
# Which fields an editor can change; whether each is a list (one item per line in the form) is the
# schema's to say.
_EDITABLE = {
    "service": ("name", "aliases", "questions", "bring", "note", "source"),
    "faq": ("questions", "answer", "source"),
}
FIELDS = {
    kind: {name: schema.is_list(schema.FILES[FILES[kind]], name) for name in names}
    for kind, names in _EDITABLE.items()
}


@dataclass
class EditResult:
    problems: list[str]
    preview: str = ""
    saved: bool = False


def _yaml() -> YAML:
    yaml = YAML()
    yaml.width = 4096
    yaml.preserve_quotes = True
    return yaml


def list_entries(kb: KnowledgeBase, query: str = "") -> list[dict]:
    rows = [
        {"kind": "service", "id": s.id, "title": s.name, "origin": s.origin} for s in kb.services.values()
    ]
    rows += [
        {"kind": "faq", "id": f.id, "title": f.questions[0], "origin": f.origin} for f in kb.faqs.values()
    ]
    if query:
        rows = [r for r in rows if query in r["title"] or query in r["id"]]
    return rows


def _find(items: list, entry_id: str):
    for item in items:
        if isinstance(item, dict) and item.get("id") == entry_id:
            return item
    raise KeyError(entry_id)


def read_fields(folder: Path, kind: str, entry_id: str) -> dict[str, str]:
    """The entry's editable fields as form text (lists one item per line)."""
    items = _yaml().load((folder / FILES[kind]).read_text(encoding="utf-8"))
    item = _find(items, entry_id)
    return {
        name: "\n".join(str(v) for v in item.get(name) or []) if is_list else str(item.get(name) or "")
        for name, is_list in FIELDS[kind].items()
    }


def _edited_text(folder: Path, kind: str, entry_id: str, form: dict[str, str]) -> str:
    yaml = _yaml()
    items = yaml.load((folder / FILES[kind]).read_text(encoding="utf-8"))
    item = _find(items, entry_id)
    for name, is_list in FIELDS[kind].items():
        value = form.get(name, "")
        if is_list:
            lines = [line.strip() for line in value.splitlines() if line.strip()]
            if lines:
                item[name] = lines
            elif name in item:
                del item[name]
        elif value.strip():
            item[name] = value.strip()
        elif name in item:
            del item[name]
    out = io.StringIO()
    yaml.dump(items, out)
    return out.getvalue()


def edit(
    folder: Path, kind: str, entry_id: str, form: dict[str, str], min_confidence: float, save: bool
) -> EditResult:
    """Validate the edit on a copy of the folder, preview the answer, and save when asked and valid."""
    text = _edited_text(folder, kind, entry_id, form)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "knowledge"
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("drafts"))
        (copy / FILES[kind]).write_text(text, encoding="utf-8")
        try:
            kb = load_knowledge(copy)
        except KnowledgeError as err:
            return EditResult(problems=err.problems)
    composer = AnswerComposer(kb, min_confidence)
    if kind == "service":
        preview = composer.service(kb.services[entry_id], ward=None, intent=None).text
    else:
        preview = composer.faq(kb.faqs[entry_id], ward=None).text
    if save:
        target = folder / FILES[kind]
        tmp_path = target.with_suffix(".yml.tmp")
        tmp_path.write_text(text, encoding="utf-8")
        tmp_path.replace(target)
    return EditResult(problems=[], preview=preview, saved=save)
