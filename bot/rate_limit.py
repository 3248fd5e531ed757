"""Per-sender message budgets for the residents' channels (widget and LINE).

Built on the `limits` library: a moving window per (channel, sender). The store is in-process
memory by default; a deployment with several web processes points CONCIERGE_RATE_LIMIT_STORAGE at
Redis so that every process counts the same messages.
"""

from __future__ import annotations

import logging
import time

from limits import parse_many, storage, strategies

log = logging.getLogger(__name__)


class SenderRateLimiter:
    def __init__(self, rules: str, storage_uri: str = "memory://") -> None:
        self.rules = parse_many(rules)
        self.storage_uri = storage_uri
        self._limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_uri))

    def allow(self, channel: str, sender: str) -> bool:
        """Count one message; False when any rule's budget is spent. A store that cannot be
        reached lets the message through: residents are not refused because Redis is down."""
        try:
            return all(self._limiter.hit(rule, channel, sender) for rule in self.rules)
        except Exception:  # any storage failure; logged, never fatal
            log.warning("rate-limit store %s unreachable; not limiting", self.storage_uri.split("@")[-1])
            return True

    def retry_after(self, channel: str, sender: str) -> int:
        """Seconds until the sender may write again (at least 1)."""
        try:
            resets = [self._limiter.get_window_stats(rule, channel, sender).reset_time for rule in self.rules]
        except Exception:
            return 1
        return max(1, int(max(resets) - time.time()) + 1)
