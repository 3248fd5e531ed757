"""One writer of the knowledge files at a time, across threads and processes: the console's
publishes and rollbacks (gunicorn runs several workers) and `concierge knowledge import-faq` each
read an entry, check it and write the file; two of them interleaved would lose one's change."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_in_this_process = threading.Lock()  # flock is per open file: threads need their own lock too


@contextmanager
def one_writer(var_dir: Path) -> Iterator[None]:
    """Hold the knowledge write lock (var_dir/knowledge-publish.lock) for the block."""
    var_dir.mkdir(parents=True, exist_ok=True)
    with _in_this_process, open(var_dir / "knowledge-publish.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
