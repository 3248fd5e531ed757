"""How many hand-off tickets one resident may open in a window: per sender id and per client
address (hashed by the web app before it reaches Rasa), since a client picks its own sender id.

Counted with the `limits` library in the rate-limit store (memory:// in one process, Redis when
several action servers share the counts). A store that cannot be reached limits nobody (logged):
a resident in crisis is never refused a person because Redis is down.
"""

from __future__ import annotations

import logging

from limits import parse, storage, strategies

from bot.settings import Settings

log = logging.getLogger(__name__)


class HandoffLimiter:
    def __init__(self, per_sender: str, per_address: str, storage_uri: str = "memory://") -> None:
        self.rules = {"sender": parse(per_sender), "address": parse(per_address)}
        self.storage_uri = storage_uri
        self._limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_uri))

    @classmethod
    def from_settings(cls, settings: Settings) -> HandoffLimiter:
        return cls(settings.handoffs_per_sender, settings.handoffs_per_address, settings.rate_limit_storage)

    def _keys(self, sender: str, address: str | None) -> dict[str, str]:
        keys = {"sender": sender}
        if address:  # the widget's; LINE and plain REST callers have none
            keys["address"] = address
        return keys

    def allowed(self, sender: str, address: str | None) -> bool:
        """Whether one more ticket fits every budget (nothing is counted)."""
        try:
            return all(
                self._limiter.test(self.rules[kind], "handoff", kind, key)
                for kind, key in self._keys(sender, address).items()
            )
        except Exception:  # any storage failure: logged, never fatal
            log.warning("hand-off limit store %s unreachable; not limiting", self.storage_uri.split("@")[-1])
            return True

    def opened(self, sender: str, address: str | None) -> None:
        """Count a ticket that was opened (or spooled)."""
        try:
            for kind, key in self._keys(sender, address).items():
                self._limiter.hit(self.rules[kind], "handoff", kind, key)
        except Exception:
            shown = self.storage_uri.split("@")[-1]
            log.warning("hand-off limit store %s unreachable; ticket not counted", shown)
