"""Index rebuilds as jobs: the staff console asks, the worker process builds, the action servers
swap the new index in on their next question (Retriever.reload_if_changed).

A request is one small file under var/; asking twice before the worker runs builds once. Asking
also puts a task on this node's Huey queue (SQLite, var/index-tasks.db), which `concierge
knowledge worker` consumes. The queue is the node's own even in the cluster, whose LINE queue is
shared in Redis: the index and the knowledge folder are files of each node, so another node's
worker must not build this one's. The worker also looks for a waiting request when it starts and
every minute, so a request whose task was never queued, or whose build failed (a knowledge folder
with an error), is built later. The build itself is build_from_knowledge's, under its file lock,
so a rebuild started by an action server that found a broken index and one started here never
run together.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from huey import Huey, SqliteHuey, crontab

from bot.retrieval.encoders import Encoder, make_encoder
from bot.retrieval.maintenance import build_from_knowledge
from bot.settings import Settings

log = logging.getLogger(__name__)
REQUEST_FILE = "rebuild-request.json"
QUEUE_FILE = "index-tasks.db"


def request_rebuild(settings: Settings, by: str) -> None:
    """Ask the worker for a rebuild (written whole, then renamed: the worker never reads half)."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    tmp = settings.var_dir / f"{REQUEST_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"by": by, "at": datetime.now(UTC).isoformat()}), encoding="utf-8")
    tmp.replace(settings.var_dir / REQUEST_FILE)
    try:
        index_queue(settings).rebuild()
    except Exception as err:  # the queue's file locked or unwritable: the minute's check builds it
        log.warning("rebuild request not queued (%s); the worker finds it within a minute", err)


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


class IndexQueue:
    """This node's Huey queue of index rebuilds; the same code enqueues (web app) and builds
    (worker). Encoders load on the first build, so an idle worker stays small."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.huey: Huey = SqliteHuey(
            "index", filename=str(settings.var_dir / QUEUE_FILE), results=False, utc=True
        )
        self._encoders: list[Encoder] = []
        huey = self.huey

        @huey.task(name="rebuild_index")
        def rebuild() -> None:
            """Build if a request waits (a second task for the same request finds none)."""
            self.build_if_asked()

        @huey.periodic_task(crontab(minute="*"), name="rebuild_index_if_asked")
        def every_minute() -> None:
            """A request without a task, or whose build failed, is built at the next minute."""
            self.build_if_asked()

        @huey.on_startup()
        def at_start() -> None:
            """A request left while the worker was down."""
            self.build_if_asked()

        self.rebuild = rebuild

    def encoders(self) -> list[Encoder]:
        if not self._encoders:
            threads = max(1, self.settings.encoder_threads)
            self._encoders.extend(make_encoder(spec, threads) for spec in self.settings.encoders)
        return self._encoders

    def build_if_asked(self) -> dict | None:
        """run_pending; a failed build is logged, its request kept for the next try."""
        try:
            return run_pending(self.settings, self.encoders)
        except Exception:  # a knowledge folder with an error: keep the old index, try again later
            log.exception("index rebuild failed; the bot keeps the previous index")
            return None

    def run_worker(self) -> None:
        """Huey's consumer, one thread (builds never overlap), until SIGINT/SIGTERM."""
        consumer = self.huey.create_consumer(workers=1, initial_delay=0.1, backoff=1.5, max_delay=1.0)
        consumer.run()


def index_queue(settings: Settings) -> IndexQueue:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    return IndexQueue(settings)
