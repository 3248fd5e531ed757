"""The multi-process deployment: nginx in front of several Rasa servers and action servers, the
web app under gunicorn, Rasa's tracker store on PostgreSQL and its lock store on Redis.

Every Rasa server reads and writes conversations in the shared tracker store and takes the
conversation's lock in Redis, so any of them can answer any message; nginx spreads requests and
moves on when a process is gone. `concierge cluster` starts it on one machine; docs/deploy.md
says how the same pieces spread over several.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bot.internal_auth import rasa_token
from bot.rasa_client import RasaClient
from bot.settings import Settings
from bot.supervisor.processes import (
    Processes,
    actions_command,
    actions_env,
    free_port,
    http_ok,
    rasa_command,
    rasa_env,
    tasks_command,
    worker_command,
    worker_env,
    write_rasa_config,
)

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf.template"


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")  # sbin: not on every PATH
    if not found:
        raise FileNotFoundError("nginx is not installed (Debian package nginx; `make test` installs it)")
    return found


@dataclass
class Cluster(Processes):
    rasa_count: int = 2
    action_count: int = 2
    web_workers: int = 2
    public_port: int = 0  # nginx → web app (residents and staff)
    rasa_lb_port: int = 0  # nginx → Rasa servers
    actions_lb_port: int = 0  # nginx → action servers
    rasa_ports: list[int] = field(default_factory=list)
    action_ports: list[int] = field(default_factory=list)
    web_port: int = 0
    lock_lifetime_s: int = 15

    def __post_init__(self) -> None:
        if not self.settings.task_queue_url.startswith("redis"):  # the queue every node shares
            self.settings = self.settings.replace(task_queue_url=self.settings.lock_store_url)
        super().__post_init__()
        host = self.settings.host
        self.public_port = self.public_port or free_port(host)
        self.rasa_lb_port = self.rasa_lb_port or free_port(host)
        self.actions_lb_port = self.actions_lb_port or free_port(host)
        self.rasa_ports = self.rasa_ports or [free_port(host) for _ in range(self.rasa_count)]
        self.action_ports = self.action_ports or [free_port(host) for _ in range(self.action_count)]
        self.web_port = self.web_port or free_port(host)

    def url(self, port: int) -> str:
        return f"http://{self.settings.host}:{port}"

    @property
    def public_url(self) -> str:
        host = self.settings.public_host
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '[::]') else host}:{self.public_port}"

    @property
    def rasa_token(self) -> str:
        return rasa_token(self.settings)

    @property
    def rasa_url(self) -> str:
        """The Rasa servers behind nginx."""
        return self.url(self.rasa_lb_port)

    @property
    def rasa_urls(self) -> list[str]:
        """Each Rasa server directly."""
        return [self.url(p) for p in self.rasa_ports]

    def nginx_conf(self) -> str:
        run = self.log_dir / "nginx"
        run.mkdir(parents=True, exist_ok=True)

        def servers(ports: list[int]) -> str:
            return "\n".join(
                f"        server {self.settings.host}:{p} max_fails=1 fail_timeout=5s;" for p in ports
            )

        values = {
            "USER": "user root;" if os.geteuid() == 0 else "",  # workers write temp files under var/
            "RUN": str(run),
            "LOGS": str(self.log_dir),
            "MAX_BODY": str(self.settings.max_body_bytes),
            "HOST": self.settings.host,
            "PUBLIC_HOST": listen_host(self.settings.public_host),
            "ADDRESS_RATE": str(self.settings.address_rate_per_s),
            "ADDRESS_BURST": str(self.settings.address_burst),
            "REAL_IP": real_ip_lines(self.settings.trusted_proxies),
            "WEB_PORT": str(self.web_port),
            "PUBLIC_PORT": str(self.public_port),
            "RASA_PORT": str(self.rasa_lb_port),
            "ACTIONS_PORT": str(self.actions_lb_port),
            "RASA_SERVERS": servers(self.rasa_ports),
            "ACTION_SERVERS": servers(self.action_ports),
        }
        text = TEMPLATE.read_text()
        for key, value in values.items():
            text = text.replace(f"@{key}@", value)
        path = run / "nginx.conf"
        path.write_text(text)
        return str(path)

    def start(self) -> None:
        for i, port in enumerate(self.action_ports, 1):
            self.spawn(f"actions-{i}", actions_command(port), actions_env(self.settings))
        conf = self.nginx_conf()
        self.spawn(
            "nginx",
            [nginx_binary(), "-c", conf, "-p", str(self.log_dir / "nginx")],
            self.settings.child_env(),
        )
        config = write_rasa_config(
            self.settings, self.log_dir / "rasa", f"{self.url(self.actions_lb_port)}/webhook"
        )
        # A conversation's lock outlives a crashed holder by this long (Rasa's default is 60 s).
        rasa = {**rasa_env(self.settings), "TICKET_LOCK_LIFETIME": str(self.lock_lifetime_s)}
        for i, port in enumerate(self.rasa_ports, 1):
            self.spawn(f"rasa-{i}", rasa_command(self.settings, port, config), rasa)
        self.spawn("worker", worker_command(), worker_env(self.settings))
        tasks = worker_env(self.settings.replace(rasa_url=self.rasa_url))
        self.spawn("tasks", tasks_command(), tasks)
        # the web app sits behind this nginx: it believes one hop of X-Forwarded-For (at least)
        web_settings = self.settings.replace(rasa_url=self.rasa_url, proxy_hops=self.settings.proxy_hops or 1)
        web_env = web_settings.child_env(PYTHONPATH=str(self.settings.root))
        gunicorn = [
            sys.executable, "-m", "gunicorn",
            "--workers", str(self.web_workers), "--threads", "8",
            "--bind", f"{self.settings.host}:{self.web_port}",
            "--timeout", "60", "--graceful-timeout", "10",
            "web.wsgi:app",
        ]  # fmt: skip
        self.spawn("web", gunicorn, web_env)

    def wait_ready(self, timeout: float = 240.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            self.check_alive()
            ready = all(RasaClient(u, token=self.rasa_token).is_ready() for u in self.rasa_urls)
            ready = ready and all(http_ok(f"{self.url(p)}/health") for p in self.action_ports)
            ready = ready and http_ok(f"{self.public_url}/healthz")
            if ready:
                return time.monotonic() - started
            time.sleep(0.5)
        raise TimeoutError(f"cluster not ready after {timeout:.0f}s; logs in {self.log_dir}")


def cluster_settings_problems(settings: Settings) -> list[str]:
    """What a multi-process deployment needs that these settings lack."""
    problems = []
    if not settings.tracker_db_url.startswith("postgresql"):
        problems.append("CONCIERGE_TRACKER_DB_URL must be a postgresql:// URL (Rasa's shared tracker store)")
    if not settings.db_url.startswith("postgresql"):
        problems.append("CONCIERGE_DB_URL must be a postgresql+psycopg:// URL (the concierge database)")
    if not settings.lock_store_url.startswith("redis"):
        problems.append("CONCIERGE_LOCK_STORE_URL must be a redis:// URL (Rasa's lock store)")
    if not is_loopback(settings.host):
        problems.append(
            "CONCIERGE_HOST must be a loopback address (the internal servers listen there); "
            "CONCIERGE_PUBLIC_HOST is where nginx's public port listens"
        )
    return problems


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen_host(host: str) -> str:
    """An address as nginx's `listen` wants it: an IPv6 one in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def real_ip_lines(trusted: tuple[str, ...]) -> str:
    """nginx's realip directives: the client address from X-Forwarded-For, believed only from
    these proxies (the city's load balancer), the rightmost untrusted one."""
    if not trusted:
        return "    # (no trusted proxy in front: the peer's address is the client's)"
    lines = [f"    set_real_ip_from {ipaddress.ip_network(t, strict=False)};" for t in trusted]
    return "\n".join([*lines, "    real_ip_header X-Forwarded-For;", "    real_ip_recursive on;"])
