"""Index rebuilds as jobs: the staff console asks, the worker process builds, the action servers
swap the new index in on their next question (Retriever.reload_if_changed).

A request is one small file under var/; asking twice before the worker runs builds once. The
build itself is build_from_knowledge's, under its file lock, so a rebuild started by an action
server that found a broken index and one started here never run together.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from bot.retrieval.encoders import Encoder, make_encoder
from bot.retrieval.maintenance import build_from_knowledge
from bot.settings import Settings

log = logging.getLogger(__name__)
REQUEST_FILE = "rebuild-request.json"


def request_rebuild(settings: Settings, by: str) -> None:
    """Ask the worker for a rebuild (written whole, then renamed: the worker never reads half)."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    tmp = settings.var_dir / f"{REQUEST_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"by": by, "at": datetime.now(UTC).isoformat()}), encoding="utf-8")
    tmp.replace(settings.var_dir / REQUEST_FILE)


def pending_rebuild(settings: Settings) -> dict | None:
    """The request waiting for the worker, if any ({"by", "at"})."""
    try:
        return json.loads((settings.var_dir / REQUEST_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:  # a damaged request still asks for a rebuild
        return {"by": "?", "at": ""}


def run_pending(settings: Settings, encoders: Callable[[], Sequence[Encoder]]) -> dict | None:
    """Build once if a rebuild was asked for; the build's figures, or None if none was waiting.
    A request that arrives during the build is left for the next round (its edit may be newer
    than what this build read)."""
    path = settings.var_dir / REQUEST_FILE
    try:
        asked = path.read_bytes()
    except FileNotFoundError:
        return None
    stats = build_from_knowledge(settings, encoders())
    try:
        if path.read_bytes() == asked:
            path.unlink()
    except FileNotFoundError:
        pass
    log.warning(
        "rebuilt the knowledge index on request: %s documents in %.1fs", stats["documents"], stats["seconds"]
    )
    return stats


def serve(settings: Settings, stopping: Callable[[], bool], poll_s: float = 1.0) -> None:
    """The worker's loop. Encoders load on the first job, so an idle worker stays small."""
    loaded: list[Encoder] = []

    def encoders() -> list[Encoder]:
        if not loaded:
            loaded.extend(make_encoder(spec, max(1, settings.encoder_threads)) for spec in settings.encoders)
        return loaded

    while not stopping():
        try:
            run_pending(settings, encoders)
        except Exception:  # a knowledge folder with an error: keep the old index, try again later
            log.exception("index rebuild failed; the bot keeps the previous index")
            time.sleep(10 * poll_s)
        time.sleep(poll_s)
