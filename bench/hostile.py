"""Messages built to backtrack, through the REST channel of a local stack: each alone, then all at
once while another resident asks a normal question. Prints seconds per reply (figures, not a test;
the bound is asserted by tests/test_fuzz.py).

    .venv/bin/python -m bench.hostile
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.masking import FAMILIES, _repeated
from bot.settings import Settings
from bot.supervisor.processes import running_stack

CAP = 2000


def main() -> None:
    with running_stack(Settings()) as stack:
        url = f"{stack.rasa_url}/webhooks/rest/webhook"

        def send(text: str) -> float:
            started = time.monotonic()
            body = {"sender": f"b-{uuid.uuid4().hex[:8]}", "message": text}
            resp = requests.post(url, params={"token": stack.rasa_token}, json=body, timeout=120)
            resp.raise_for_status()
            return time.monotonic() - started

        send("住民票の写しがほしい")  # warm-up
        for unit in FAMILIES:
            print(f"alone     {unit!r:>22} x{CAP // len(unit):<5} {send(_repeated(unit, CAP)):6.2f} s")
        with ThreadPoolExecutor(len(FAMILIES)) as pool:
            in_flight = [pool.submit(send, _repeated(unit, CAP)) for unit in FAMILIES]
            time.sleep(0.3)
            calm = send("住民票の写しがほしい")
            together = [f.result() for f in in_flight]
        print(f"a normal question while {len(FAMILIES)} are in flight: {calm:.2f} s")
        print(f"those {len(FAMILIES)} together: max {max(together):.2f} s")


if __name__ == "__main__":
    main()
