"""Start and stop the concierge's processes: Rasa server, action server, web app.

Used by `concierge run` (make run), by the CLI when no Rasa server is running, and by tests.
Every server binds to the configured host (127.0.0.1 by default).
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
    env = dict(os.environ)
    env.update(RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", **extra)
    env["PYTHONPATH"] = str(settings.root)
    return env


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


def endpoints_yaml(settings: Settings, actions_url: str) -> str:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    return yaml.safe_dump(
        {"action_endpoint": {"url": actions_url}, "tracker_store": tracker_store_config(settings)},
        sort_keys=False,
    )


@dataclass
class Stack:
    """Running processes and their URLs."""

    settings: Settings
    rasa_port: int
    actions_port: int
    log_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def rasa_url(self) -> str:
        return f"http://{self.settings.host}:{self.rasa_port}"

    @property
    def actions_url(self) -> str:
        return f"http://{self.settings.host}:{self.actions_port}/webhook"

    def spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child
        self.procs[name] = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.settings.root, start_new_session=True
        )

    def start_actions(self) -> None:
        env = _child_env(self.settings, SANIC_HOST=self.settings.host)
        self.spawn(
            "actions",
            [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(self.actions_port)],
            env,
        )

    def start_rasa(self) -> None:
        endpoints = self.log_dir / f"endpoints-{self.rasa_port}.yml"
        endpoints.parent.mkdir(parents=True, exist_ok=True)
        endpoints.write_text(endpoints_yaml(self.settings, self.actions_url))
        rasa = self.settings.rasa_venv / "bin" / "rasa"
        cmd = [
            str(rasa),
            "run",
            "--enable-api",
            "--model",
            str(model_path(self.settings)),
            "--interface",
            self.settings.host,
            "--port",
            str(self.rasa_port),
            "--endpoints",
            str(endpoints),
            "--credentials",
            str(self.settings.root / "credentials.yml"),
        ]
        self.spawn("rasa", cmd, _child_env(self.settings))

    def wait_ready(self, timeout: float = 180.0) -> float:
        """Seconds until both servers answer; raises with the log tail if one dies."""
        started = time.monotonic()
        client = RasaClient(self.rasa_url)
        while time.monotonic() - started < timeout:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")
            if client.is_ready() and self._actions_ready():
                return time.monotonic() - started
            time.sleep(0.5)
        raise TimeoutError(f"servers not ready after {timeout:.0f}s; logs in {self.log_dir}")

    def _actions_ready(self) -> bool:
        try:
            return requests.get(f"http://{self.settings.host}:{self.actions_port}/health", timeout=2).ok
        except requests.RequestException:
            return False

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
        rasa_port or free_port(settings.host),
        actions_port or free_port(settings.host),
        log_dir or settings.var_dir / "logs",
    )
    try:
        stack.start_actions()
        stack.start_rasa()
        stack.wait_ready()
        yield stack
    finally:
        stack.stop()
