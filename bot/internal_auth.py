"""Secrets of the internal APIs (Rasa's HTTP API and REST channel, the action server) and the
keyed hash of a client address.

A secret comes from the settings when configured; otherwise one is generated once and kept under
var/secrets/ with mode 0600, so every process started on this machine (and a restart) shares it
without it ever passing on a command line. docs/security.md says what each one guards.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from bot.settings import Settings

# Rasa's HTTP API reads its token from this query parameter only (rasa/server.py requires_auth).
TOKEN_PARAM = "token"


def secrets_dir(settings: Settings) -> Path:
    return settings.var_dir / "secrets"


def stored_secret(path: Path) -> str:
    """The secret in `path`, created (mode 0600, never world-readable even for a moment) when
    missing. Two processes racing here end with the same secret: the file is linked into place
    only if no other process got there first."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        # a name of its own per caller (threads of one process too), created 0600 by mkstemp
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp = Path(name)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process wrote it first: use theirs
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return path.read_text().strip()


def _secret(settings: Settings, field: str) -> str:
    configured = getattr(settings, field).get_secret_value()
    return configured or stored_secret(secrets_dir(settings) / field)


def rasa_token(settings: Settings) -> str:
    """What the Rasa server's HTTP API (`--auth-token`) and REST channel accept."""
    return _secret(settings, "rasa_token")


def actions_token(settings: Settings) -> str:
    """The bearer token Rasa sends the action server (endpoints.yml headers)."""
    return _secret(settings, "actions_token")


def analytics_key(settings: Settings) -> str:
    """The key of the conversation hash in the answer figures (bot/analytics.py): with it the
    web process finds a conversation's rows to erase; without it a sender id cannot be tried
    against the table."""
    return _secret(settings, "analytics_key")


def with_internal_secrets(settings: Settings) -> Settings:
    """These settings with the tokens and the analytics key filled in, for the processes a
    supervisor starts (they get them through their environment, not from the files)."""
    return settings.replace(
        rasa_token=rasa_token(settings),
        actions_token=actions_token(settings),
        analytics_key=analytics_key(settings),
    )


def address_key(settings: Settings) -> bytes:
    """The key of the address hash (var/secrets/address_key): without it an address cannot be
    recovered from its hash by trying all 2^32 IPv4 addresses."""
    return stored_secret(secrets_dir(settings) / "address_key").encode()


def hashed_address(key: bytes, address: str) -> str:
    """A client address as the hand-off counter keeps it: a keyed hash, never the address."""
    return hmac.new(key, address.encode(), hashlib.sha256).hexdigest()[:32]


def bearer_matches(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries this bearer token (compared in constant time)."""
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
