"""Budgets kept with the `limits` library: messages per resident on the widget and LINE, and
failed staff logins per account and per address.

Each is a moving window. The store is in-process memory by default; a deployment with several web
processes points CONCIERGE_RATE_LIMIT_STORAGE at Redis so that every process counts the same
messages and the same failed logins.
"""

from __future__ import annotations

import logging
import time

from limits import parse, parse_many, storage, strategies

log = logging.getLogger(__name__)


def _shown(storage_uri: str) -> str:
    """The store's address for a log line, without any password in the URI."""
    return storage_uri.split("@")[-1]


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
            log.warning("rate-limit store %s unreachable; not limiting", _shown(self.storage_uri))
            return True

    def retry_after(self, channel: str, sender: str) -> int:
        """Seconds until the sender may write again (at least 1)."""
        try:
            resets = [self._limiter.get_window_stats(rule, channel, sender).reset_time for rule in self.rules]
        except Exception:
            return 1
        return max(1, int(max(resets) - time.time()) + 1)


class LoginThrottle:
    """Failed logins allowed per account and per address within a window (`limits` notation).

    An address gets more tries than an account: a ward office's staff share one address. A
    successful login forgets the account's failures. A store that cannot be reached throttles
    nobody (logged), as for residents' messages."""

    def __init__(
        self,
        per_account: str = "5/5minutes",
        per_address: str = "20/5minutes",
        storage_uri: str = "memory://",
    ) -> None:
        self.rules = {"account": parse(per_account), "address": parse(per_address)}
        self.storage_uri = storage_uri
        self._limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_uri))

    def _keys(self, name: str, address: str) -> dict[str, str]:
        return {"account": name, "address": address}

    def blocked(self, name: str, address: str) -> bool:
        try:
            return not all(
                self._limiter.test(self.rules[kind], "login", kind, key)
                for kind, key in self._keys(name, address).items()
            )
        except Exception:
            log.warning("login-throttle store %s unreachable; not throttling", _shown(self.storage_uri))
            return False

    def failed(self, name: str, address: str) -> None:
        try:
            for kind, key in self._keys(name, address).items():
                self._limiter.hit(self.rules[kind], "login", kind, key)
        except Exception:
            log.warning("login-throttle store %s unreachable; failure not counted", _shown(self.storage_uri))

    def succeeded(self, name: str) -> None:
        try:
            self._limiter.clear(self.rules["account"], "login", "account", name)
        except Exception:
            log.warning("login-throttle store %s unreachable", _shown(self.storage_uri))
