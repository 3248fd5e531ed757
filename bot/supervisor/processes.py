"""Start and stop the concierge's processes: Rasa server, action server, index worker, task
worker (LINE events), web app.

Used by `concierge run` (make run), by the CLI when no Rasa server is running, and by tests.
Every server binds to the configured host (127.0.0.1 by default), and the internal ones want a
token: Rasa's HTTP API and REST channel the Rasa token, the action server the actions token
(bot/internal_auth.py; docs/security.md).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests
import yaml

from bot.internal_auth import actions_token, rasa_token, with_internal_secrets
from bot.rasa_client import RasaClient
from bot.settings import Settings


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def model_path(settings: Settings) -> Path:
    path = settings.models_dir / "concierge.tar.gz"
    if not path.exists():
        raise FileNotFoundError(f"no trained model at {path}: run `make train`")
    return path


def _child_env(settings: Settings, **extra: str) -> dict[str, str]:
    return settings.child_env(
        RASA_TELEMETRY_ENABLED="false",
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(settings.root),
        **extra,
    )


def tracker_store_config(settings: Settings) -> dict:
    """Rasa's SQL tracker store: SQLite under var/ by default, PostgreSQL from a URL."""
    if not settings.tracker_db_url:
        return {"type": "SQL", "dialect": "sqlite", "db": str(settings.var_dir / "rasa_tracker.db")}
    url = urlsplit(settings.tracker_db_url)
    config = {
        "type": "SQL",
        "dialect": url.scheme.split("+")[0],
        "url": url.hostname or "127.0.0.1",
        "db": url.path.lstrip("/"),
    }
    if url.port:
        config["port"] = url.port
    if url.username:
        config["username"] = url.username
    if url.password:
        config["password"] = url.password
    return config


def lock_store_config(settings: Settings) -> dict | None:
    """A Redis lock store, so that several Rasa servers take turns on one conversation (Rasa's own
    RedisLockStore with atomic updates: bot/rasa_server/lock_store.py)."""
    if not settings.lock_store_url:
        return None
    url = urlsplit(settings.lock_store_url)
    config = {
        "type": "bot.rasa_server.lock_store.AtomicRedisLockStore",
        "url": url.hostname or "127.0.0.1",
        "port": url.port or 6379,
        "db": int(url.path.lstrip("/") or 1),
        "key_prefix": "concierge",
    }
    if url.password:
        config["password"] = url.password
    return config


def endpoints_yaml(settings: Settings, actions_url: str) -> str:
    """Rasa sends the actions token as a header (a query parameter would land in access logs).
    Selective domain: no action reads the domain (Rasa renders the responses they name), so Rasa
    does not send all of it — 26 KB of JSON now that it holds the wording — with every call; an
    action that needs it (a form's validation) says so in domain.yml (`send_domain: true`)."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    action_endpoint = {
        "url": actions_url,
        "headers": {"Authorization": f"Bearer {actions_token(settings)}"},
        "enable_selective_domain": True,
    }
    endpoints = {"action_endpoint": action_endpoint, "tracker_store": tracker_store_config(settings)}
    lock_store = lock_store_config(settings)
    if lock_store:
        endpoints["lock_store"] = lock_store
    return yaml.safe_dump(endpoints, sort_keys=False)


def actions_command(port: int) -> list[str]:
    """rasa-sdk's server behind the actions token (actions/server.py)."""
    return [sys.executable, "-m", "actions.server", "--port", str(port)]


def credentials_yaml(settings: Settings) -> str:
    """The channels the Rasa server opens, with what they need of the settings (the Rasa server
    does not read our settings itself: it runs in its own environment)."""
    channel = {
        "max_message_chars": settings.max_message_chars,
        "token": rasa_token(settings),
        "knowledge_dir": str(settings.knowledge_dir),
    }
    return yaml.safe_dump({"bot.rasa_server.channels.ConciergeRestInput": channel}, sort_keys=False)


def rasa_command(settings: Settings, port: int, config_dir: Path) -> list[str]:
    """`config_dir` gets this server's endpoints.yml, credentials.yml and auth_token (see
    write_rasa_config); bot/rasa_server/launch.py hands the token to `rasa run --auth-token` so
    that it is not on the command line, which every local user can read."""
    return [
        str(settings.rasa_venv / "bin" / "python"),
        "-m",
        "bot.rasa_server.launch",
        "--auth-token-file",
        str(config_dir / "auth_token"),
        "run",
        "--enable-api",
        "--model",
        str(model_path(settings)),
        "--interface",
        settings.host,
        "--port",
        str(port),
        "--endpoints",
        str(config_dir / "endpoints.yml"),
        "--credentials",
        str(config_dir / "credentials.yml"),
    ]


def write_private(path: Path, text: str) -> None:
    """A file only its owner can read, from the first byte on (these hold tokens)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file of the same name may have had a wider mode
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def write_rasa_config(settings: Settings, config_dir: Path, actions_url: str) -> Path:
    config_dir.mkdir(parents=True, exist_ok=True)
    write_private(config_dir / "endpoints.yml", endpoints_yaml(settings, actions_url))
    write_private(config_dir / "credentials.yml", credentials_yaml(settings))
    write_private(config_dir / "auth_token", rasa_token(settings))
    return config_dir


def worker_command() -> list[str]:
    return [sys.executable, "-m", "bot.cli", "knowledge", "worker"]


def tasks_command() -> list[str]:
    """The task queue's consumer (LINE events, bot/tasks.py)."""
    return [sys.executable, "-m", "bot.cli", "tasks", "worker"]


def rasa_env(settings: Settings) -> dict[str, str]:
    return _child_env(
        settings,
        # Sanic reads SANIC_* settings from the environment: bodies over the cap get 413.
        SANIC_REQUEST_MAX_SIZE=str(settings.max_body_bytes),
        # an access-log line would carry the HTTP API's ?token=
        SANIC_ACCESS_LOG="false",
        # One message is a handful of small matrix products: extra TensorFlow and BLAS threads
        # only spin and take CPU from the other processes (docs/performance.md).
        TF_INTRA_OP_PARALLELISM_THREADS=str(settings.rasa_threads),
        TF_INTER_OP_PARALLELISM_THREADS=str(settings.rasa_threads),
        OMP_NUM_THREADS=str(settings.rasa_threads),
    )


def actions_env(settings: Settings) -> dict[str, str]:
    # load encoders, index and GiNZA before listening, so the first resident does not wait
    return _child_env(settings.replace(warm_up=True))


def worker_env(settings: Settings) -> dict[str, str]:
    return _child_env(settings)


@dataclass
class Processes:
    """Child processes started together, each logging to its own file, stopped together."""

    settings: Settings
    log_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # every child gets the same tokens through its environment
        self.settings = with_internal_secrets(self.settings)

    def spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child
        self.procs[name] = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.settings.root,
            start_new_session=True,
        )

    def check_alive(self) -> None:
        """Raise with the log tail of a process that has exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def kill(self, name: str, sig: int = 9) -> None:
        """Kill one process (and its children) at once, as a crash would."""
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=15)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 15)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
        self.procs.clear()


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


@dataclass
class Stack(Processes):
    """Rasa server + action server (+ the web app under `concierge run`) on one machine."""

    rasa_port: int = 0
    actions_port: int = 0

    @property
    def rasa_url(self) -> str:
        return f"http://{self.settings.host}:{self.rasa_port}"

    @property
    def rasa_token(self) -> str:
        """What a client of this stack's Rasa server sends (RasaClient(token=…), ?token=)."""
        return rasa_token(self.settings)

    @property
    def actions_url(self) -> str:
        return f"http://{self.settings.host}:{self.actions_port}/webhook"

    def start_actions(self) -> None:
        self.spawn("actions", actions_command(self.actions_port), actions_env(self.settings))

    def start_rasa(self) -> None:
        config = write_rasa_config(self.settings, self.log_dir / f"rasa-{self.rasa_port}", self.actions_url)
        self.spawn("rasa", rasa_command(self.settings, self.rasa_port, config), rasa_env(self.settings))

    def start_worker(self) -> None:
        """The index rebuilds the console asks for (bot/retrieval/rebuild_jobs.py)."""
        self.spawn("worker", worker_command(), worker_env(self.settings))

    def start_tasks(self) -> None:
        """The task queue's consumer, talking to this stack's Rasa server (LINE events)."""
        self.spawn("tasks", tasks_command(), worker_env(self.settings.replace(rasa_url=self.rasa_url)))

    def wait_ready(self, timeout: float = 180.0) -> float:
        """Seconds until both servers answer; raises with the log tail if one dies."""
        started = time.monotonic()
        client = RasaClient(self.rasa_url, token=rasa_token(self.settings))
        while time.monotonic() - started < timeout:
            self.check_alive()
            if client.is_ready() and http_ok(f"http://{self.settings.host}:{self.actions_port}/health"):
                return time.monotonic() - started
            time.sleep(0.5)
        raise TimeoutError(f"servers not ready after {timeout:.0f}s; logs in {self.log_dir}")


@contextlib.contextmanager
def running_stack(
    settings: Settings,
    rasa_port: int | None = None,
    actions_port: int | None = None,
    log_dir: Path | None = None,
) -> Iterator[Stack]:
    """Rasa + actions on the given (or free) ports for the duration of the block."""
    stack = Stack(
        settings,
        log_dir or settings.var_dir / "logs",
        rasa_port=rasa_port or free_port(settings.host),
        actions_port=actions_port or free_port(settings.host),
    )
    try:
        stack.start_actions()
        stack.start_rasa()
        stack.start_worker()
        stack.start_tasks()
        stack.wait_ready()
        yield stack
    finally:
        stack.stop()
