"""Rasa's Redis lock store with atomic ticket updates, for several Rasa servers.

Rasa Open Source's RedisLockStore reads a conversation's ticket lock, changes it and writes it back
in separate steps. Two Rasa servers that receive messages of one conversation at the same moment
can both draw ticket 0 and process together, and one of them then overwrites the other's events.
Here each read-modify-write is one Redis transaction (WATCH/MULTI/EXEC): a concurrent change makes
the transaction start again, so tickets stay unique and in order across servers.

A server that dies holding a conversation leaves its ticket until it expires
(TICKET_LOCK_LIFETIME). Rasa's waiting loop can lose its own ticket to expiry in that time and then
wait forever; here a waiter whose ticket expired queues again.

Runs inside the Rasa server (Rasa's environment); endpoints.yml names it as
`lock_store: {type: bot.rasa_server.lock_store.AtomicRedisLockStore, url: …, port: …, db: …}`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from typing import Any

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

# (the lock as it should be stored, or None to delete it; what the caller gets back)
Change = Callable[[TicketLock | None], tuple[TicketLock | None, Any]]
_UNCHANGED = object()


class AtomicRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config: EndpointConfig) -> None:
        super().__init__(host=endpoint_config.url or "localhost", **endpoint_config.kwargs)

    def _transaction(self, conversation_id: str, change: Change) -> Any:
        key = self.key_prefix + conversation_id
        with self.red.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    lock = TicketLock.from_dict(json.loads(raw)) if raw else None
                    new, result = change(lock)
                    pipe.multi()
                    if new is None:
                        pipe.delete(key)
                    elif new is not _UNCHANGED:
                        pipe.set(key, new.dumps())
                    pipe.execute()
                    return result
                except redis.WatchError:  # someone changed the lock meanwhile: read it again
                    continue

    @asynccontextmanager
    async def lock(
        self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME, wait_time_in_seconds: float = 0.1
    ) -> AsyncGenerator[TicketLock, None]:
        """Wait for this conversation's turn, then hold it for the block."""
        ticket = self.issue_ticket(conversation_id, lock_lifetime)
        try:
            while True:
                lock = self.get_lock(conversation_id)
                if lock is None or all(t.number != ticket for t in lock.tickets):
                    ticket = self.issue_ticket(conversation_id, lock_lifetime)  # ours expired: queue again
                    continue
                if not lock.is_locked(ticket):
                    break
                await asyncio.sleep(wait_time_in_seconds)
                self.update_lock(conversation_id)
            yield lock
        finally:
            self.cleanup(conversation_id, ticket)

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def take(lock: TicketLock | None) -> tuple[TicketLock, int]:
            lock = lock or TicketLock(conversation_id)
            return lock, lock.issue_ticket(lock_lifetime)

        try:
            return self._transaction(conversation_id, take)
        except redis.RedisError as err:
            raise LockError(f"Error while acquiring lock. Error:\n{err}") from err

    def update_lock(self, conversation_id: str) -> None:
        def expire(lock: TicketLock | None) -> tuple[Any, None]:
            if lock is None:
                return _UNCHANGED, None
            lock.remove_expired_tickets()
            return lock, None

        self._transaction(conversation_id, expire)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        self.cleanup(conversation_id, ticket_number)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Give the ticket back; the lock goes when nobody else waits (in the same transaction)."""

        def release(lock: TicketLock | None) -> tuple[Any, None]:
            if lock is None:
                return _UNCHANGED, None
            lock.remove_ticket_for(ticket_number)
            return (lock if lock.is_someone_waiting() else None), None

        self._transaction(conversation_id, release)
