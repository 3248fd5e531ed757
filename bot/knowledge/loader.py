"""Load knowledge/*.yml into a KnowledgeBase, reporting every problem as file:line.

bot.knowledge.schema says what the files may hold; this module reads them, validates each entry
against its file's model, turns pydantic's errors (which name keys, not lines) into file:line
messages, and builds the records.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.knowledge.model import KnowledgeBase, PolicyChunk
from bot.knowledge.schema import FILES, Catalog, Entry

# One id names one entry across these files (as before the schema; sources, hours and sensitive
# topics have their own). A check across files, so not a model's.
_SHARED_IDS = ("offices.yml", "counters.yml", "services.yml", "referrals.yml", "faq.yml", "policy.yml")


class KnowledgeError(Exception):
    """The knowledge folder has problems; `problems` lists them as 'file:line: message'."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _read(path: Path, problems: list[str]) -> list[tuple[Any, str]]:
    """The file's entries, each with its origin `file:line` (the line its mapping starts on)."""
    if not path.exists():
        return []
    loader = yaml.SafeLoader(path.read_text(encoding="utf-8"))
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(f"{path.name}:{mark.line + 1 if mark else 0}: YAML error: {exc}")
        return []
    finally:
        loader.dispose()
    if data is None:
        return []
    if not isinstance(data, list):
        problems.append(f"{path.name}:1: expected a list of entries")
        return []
    return [(item, f"{path.name}:{n.start_mark.line + 1}") for item, n in zip(data, node.value, strict=True)]


def _id(raw: Any) -> str | None:
    """The id a raw entry declares, if any (read before validation, so not trusted to be a str)."""
    key = raw.get("id") if isinstance(raw, dict) else None
    return key if isinstance(key, str) else None


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel]:
    """The model of the mapping at `loc` in an entry (`contacts.0` of a sensitive topic: a contact)."""
    for key in loc:
        if isinstance(key, str):
            annotation = model.model_fields[key].annotation
            model = next(
                t
                for t in (annotation, *get_args(annotation))
                if inspect.isclass(t) and issubclass(t, BaseModel)
            )
    return model


def _did_you_mean(model: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """Pydantic names the unknown key; the key it was probably meant to be is ours to find."""
    fields = _model_at(model, loc[:-1]).model_fields
    close = difflib.get_close_matches(str(loc[-1]), sorted(f.alias or n for n, f in fields.items()), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _message(error: ErrorDetails, model: type[BaseModel], raw: Any) -> str:
    """One pydantic error in an editor's words."""
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] in ("missing", "string_too_short", "too_short"):
        return f"missing '{key}' in entry {_id(raw) or ''!r}"
    if error["type"] == "extra_forbidden":
        return f"unknown key '{key}'{_did_you_mean(model, error['loc'])}"
    if error["type"] == "value_error":  # our validators' own words
        return str(error["ctx"]["error"])
    return f"'{key}': {error['msg']}" if key else error["msg"]


def _validate(model: type[Entry], raw: Any, origin: str, declared: dict, problems: list[str]) -> Entry | None:
    try:
        return model.model_validate(raw, context=declared)
    except ValidationError as err:
        problems += [f"{origin}: {_message(e, model, raw)}" for e in err.errors()]
        return None


def _duplicate_ids(
    files: dict[str, list[tuple[Any, str]]], names: tuple[str, ...] = _SHARED_IDS
) -> list[str]:
    problems, seen = [], {}
    for raw, origin in (entry for name in names for entry in files[name]):
        key = _id(raw)
        if key is not None and key in seen:
            problems.append(f"{origin}: duplicate id {key!r} (first at {seen[key]})")
        elif key is not None:
            seen[key] = origin
    return problems


def load_knowledge(folder: Path, strict: bool = True) -> KnowledgeBase:
    """Read the knowledge folder. With strict, any problem raises KnowledgeError."""
    problems: list[str] = []
    files = {name: _read(Path(folder) / name, problems) for name in FILES}
    problems += _duplicate_ids(files)
    problems += _duplicate_ids(files, ("shelters.yml",))  # notices: board answers (issue 18)
    # What references may name: every id a file declares, even on an entry that is itself broken.
    declared = {name: {_id(raw) for raw, _ in entries} - {None} for name, entries in files.items()}
    catalog = Catalog()
    for name, model in FILES.items():
        for raw, origin in files[name]:
            entry = _validate(model, raw, origin, declared, problems)
            if entry is None:
                continue
            entry.add_to(catalog, origin)
            if entry.review:
                catalog.kb.awaiting_review[name] = catalog.kb.awaiting_review.get(name, 0) + 1
    _add_heading_context(catalog.kb.policy)
    if strict and problems:
        raise KnowledgeError(problems)
    return catalog.kb


# How deep a policy heading is, by its numbering: 「1 」 > 「(1)」 > 「ア 」 > 「(ア)」 > the rest (【】 ●).
_HEADING_LEVELS = (
    re.compile(r"^\d+ "),
    re.compile(r"^[(（]\d+[)）]"),
    re.compile(r"^[ア-ン] "),
    re.compile(r"^[(（][ア-ン][)）]"),
)


def _heading_level(heading: str) -> int:
    return next((i for i, p in enumerate(_HEADING_LEVELS) if p.match(heading)), len(_HEADING_LEVELS))


def _add_heading_context(policy: dict[str, PolicyChunk]) -> None:
    """Give each chunk the section and the nearest heading of every higher level before it in its
    section (chunks are in document order; a chunk's `above` headings stand just before its own)."""
    chunks = list(policy.values())
    for i, chunk in enumerate(chunks):
        level, above = _heading_level(chunk.heading), []
        before_it = [*reversed(chunk.above)]
        for before in reversed(chunks[:i]):
            if before.section != chunk.section:
                break
            before_it += [before.heading, *reversed(before.above)]
        for heading in before_it:
            if _heading_level(heading) < level:
                level = _heading_level(heading)
                above.insert(0, heading)
        context = " ".join([chunk.section, *above]).strip()
        policy[chunk.id] = dataclasses.replace(chunk, context=context)
