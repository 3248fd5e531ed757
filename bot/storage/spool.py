"""Records that could not reach the database, kept on local disk until they can.

A ticket must not be lost because PostgreSQL restarted or SQLite stayed locked: after its retries
the ticket is appended here (already masked), and written to the database by the next process
that reaches it. One JSON object per line; a file lock keeps writers and the drain apart.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _locked(self, mode: str):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, mode, encoding="utf-8")  # noqa: SIM115 - closed by the caller
        fcntl.flock(handle, fcntl.LOCK_EX)
        return handle

    def put(self, record: dict) -> None:
        """Append one record and make sure it is on disk before returning."""
        with self._locked("a") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def pending(self) -> int:
        if not self.path.exists():
            return 0
        return sum(1 for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip())

    def drain(self, write: Callable[[dict], object]) -> int:
        """Hand each record to `write`; keep those it fails on. Returns how many were written."""
        if not self.path.exists():
            return 0
        written = 0
        with self._locked("r+") as handle:
            kept: list[str] = []
            for line in handle.read().splitlines():
                if not line.strip():
                    continue
                try:
                    write(json.loads(line))
                    written += 1
                except Exception:  # the record stays for the next attempt
                    log.warning("spooled record not written yet; kept in %s", self.path)
                    kept.append(line)
            handle.seek(0)
            handle.truncate()
            handle.write("".join(f"{line}\n" for line in kept))
            handle.flush()
            os.fsync(handle.fileno())
        return written
