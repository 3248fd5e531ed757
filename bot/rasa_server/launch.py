"""`rasa …` with `--auth-token-file PATH` instead of `--auth-token TOKEN`: the token is read from
a file only its owner can read and handed to Rasa's own argument parser in this process, so it
never appears in the process list (/proc/<pid>/cmdline is readable by every local user).

Runs in Rasa's environment: `.venv-rasa/bin/python -m bot.rasa_server.launch --auth-token-file F run …`.
"""

from __future__ import annotations

import sys
from pathlib import Path


def argv_with_token(argv: list[str]) -> list[str]:
    """`argv` with `--auth-token-file PATH` replaced by Rasa's `--auth-token` and the file's token."""
    if "--auth-token-file" not in argv:
        return argv
    at = argv.index("--auth-token-file")
    token = Path(argv[at + 1]).read_text().strip()
    if not token:
        raise SystemExit(f"{argv[at + 1]} is empty: refusing to run Rasa's HTTP API without a token")
    rest = argv[:at] + argv[at + 2 :]
    return [*rest, f"--auth-token={token}"]  # "=": a token may start with "-"


def main() -> None:
    from rasa.__main__ import main as rasa_main

    sys.argv = [sys.argv[0], *argv_with_token(sys.argv[1:])]
    rasa_main()


if __name__ == "__main__":
    main()
